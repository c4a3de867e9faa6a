/* SPDX-License-Identifier: MIT */
/* The daemon's lifecycle (new, start, run, free), reload, stack sets,
 * periodic work (sweeps, key rotation), and the glue between the stack
 * engine and the plugin host. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "conversation.h"
#include "daemon.h"
#include "dispatch.h"
#include "keys.h"
#include "log.h"
#include "plugin-host.h"
#include "server.h"
#include "stack.h"
#include "store.h"
#include "throttle.h"
#include "tokens.h"
#include "workqueue.h"

#define SWEEP_BATCH 1000
#define SWEEP_SLICE_USEC 50000 /* one writer job sweeps for at most this long */
#define KEYS_CHECK_USEC (60ULL * 1000000)
#define STOP_GRACE_USEC (10ULL * 1000000)
#define WRITER_QUEUE 65536

struct stackset *stackset_ref(struct stackset *s) {
        s->refs++;
        return s;
}

void stackset_unref(struct stackset *s) {
        if (!s || --s->refs > 0)
                return;
        services_free(s->services);
        free(s);
}

static int glue_open(void *userdata, const char *plugin, int argc, const char *const *argv, void **ret_module,
                     char **ret_error) {
        struct plugin_line *l = NULL;
        int r = plugin_line_open(userdata, plugin, argc, argv, &l, ret_error);
        if (r < 0)
                return r;
        *ret_module = l;
        return 0;
}

static void glue_close(void *userdata, void *module) { plugin_line_close(module); }

static int glue_call(void *userdata, void *module, enum stack_type type, int flags, struct latch_req *req) {
        int r = plugin_line_call(module, type, req, flags);
        /* faillock answers auth_err only for a locked user (see its
         * manual): the lockouts it enforced, for `stats`. Worker thread. */
        if (r == LATCH_AUTH_ERR && streq(plugin_line_name(module), "faillock"))
                stats_count_faillock_refusal();
        return r;
}

static void glue_outcome(void *userdata, void *module, struct latch_req *req, int result) {
        plugin_line_outcome(module, req, result);
}

static void glue_expired_change(void *userdata, struct latch_req *req) {
        latch_req_begin_expired_change(req);
}

const struct stack_module_ops daemon_stack_ops = {
        .open = glue_open,
        .close = glue_close,
        .call = glue_call,
        .outcome = glue_outcome,
        .expired_change = glue_expired_change,
};

static void log_diag(void *userdata, const char *file, unsigned line, const char *message) {
        unsigned *count = userdata;
        if (count)
                (*count)++;
        if (line > 0)
                log_msg(LOG_ERR, "%s:%u: %s", file, line, message);
        else
                log_msg(LOG_ERR, "%s: %s", file, message);
}

int daemon_load_stacks(struct daemon *d, const struct config *c, struct stackset **ret) {
        int k = plugin_host_configure(d->plugins, c->plugins, c->n_plugins, NULL);
        if (k < 0) {
                return log_errno(LOG_ERR, k, "cannot configure the plugin host");
        }
        struct stackset *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->refs = 1;
        int r = services_load(c->services_dir, &daemon_stack_ops, d->plugins, log_diag, NULL, &s->services);
        if (r == -ENOENT) {
                log_msg(LOG_WARNING, "%s: no such folder: every service is unknown", c->services_dir);
                s->services = NULL;
                r = 0;
        }
        if (r < 0) {
                free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int daemon_reload(struct daemon *d) {
        struct config *c = NULL;
        struct stackset *s = NULL;
        int r;

        if (d->config_file) {
                r = config_load(d->config_file, log_diag, NULL, &c);
                if (r < 0) {
                        log_msg(LOG_ERR, "reload: %s has errors; keeping the running configuration", d->config_file);
                        d->stats.reloads_failed++;
                        return r;
                }
        } else {
                r = config_default(&c);
                if (r < 0)
                        return r;
        }
        /* What was fixed at start-up stays: the socket, the state and the
         * plugin folder need a restart to change. */
        if (!streq(c->plugin_dir, d->config->plugin_dir) || !streq(c->jwks_file, d->config->jwks_file) ||
            (!d->state_dir_override && !streq(c->state_dir, d->config->state_dir)) || c->workers != d->config->workers)
                log_msg(LOG_NOTICE, "reload: state_dir, plugin_dir, jwks_file and workers change only on restart");
        free(c->plugin_dir);
        c->plugin_dir = strdup(d->config->plugin_dir);
        free(c->state_dir);
        c->state_dir = strdup(d->config->state_dir);
        free(c->jwks_file);
        c->jwks_file = strdup(d->config->jwks_file);
        c->workers = d->config->workers;
        if (!c->plugin_dir || !c->state_dir || !c->jwks_file) {
                config_free(c);
                return -ENOMEM;
        }

        r = daemon_load_stacks(d, c, &s);
        if (r < 0) {
                log_msg(LOG_ERR, "reload: the service stacks have errors; keeping the running configuration");
                (void) plugin_host_configure(d->plugins, d->config->plugins, d->config->n_plugins, NULL);
                d->stats.reloads_failed++;
                config_free(c);
                return r;
        }
        stackset_unref(d->stacks);
        d->stacks = s;
        config_free(d->config);
        d->config = c;
        throttle_configure(d->throttle, c->throttle, c->throttle_max_delay);
        d->stats.reloads_ok++;
        log_msg(LOG_INFO, "configuration reloaded: %zu service(s)", s->services ? services_count(s->services) : 0);
        (void) daemon_publish_jwks(d);
        return 0;
}

int daemon_publish_jwks(struct daemon *d) {
        int r = keyring_write_jwks(d->keys, d->config->jwks_file, d->config->algorithm);
        if (r < 0)
                log_errno(LOG_WARNING, r, "cannot write %s", d->config->jwks_file);
        return r;
}

/* Sweeps run on the writer thread in slices of small transactions, so
 * logins, logouts and validates keep flowing while many sessions expire. */
struct sweep_job {
        struct work work;
        struct daemon *d;
        int64_t now;
        size_t removed;
        bool more;
        int result;
        uint64_t started;
};

static void sweep_run(struct work *w) {
        struct sweep_job *j = (struct sweep_job *) w;
        uint64_t until = now_usec() + SWEEP_SLICE_USEC;

        j->more = false;
        for (;;) {
                size_t n = 0;
                j->result = store_sweep(j->d->store, j->now, SWEEP_BATCH, &n);
                if (j->result < 0)
                        return;
                j->removed += n;
                if (n < SWEEP_BATCH)
                        return;
                if (now_usec() >= until) {
                        j->more = true;
                        return;
                }
        }
}

static void sweep_done(struct work *w) {
        struct sweep_job *j = (struct sweep_job *) w;
        struct daemon *d = j->d;

        if (j->result < 0) {
                log_errno(LOG_ERR, j->result, "sweep: session store");
        } else if (j->more && !d->stopping && workqueue_submit(d->writer, &j->work) == 0) {
                return; /* next slice */
        }
        d->sweep_running = false;
        d->stats.sweeps++;
        d->stats.swept_sessions += j->removed;
        d->stats.last_sweep_usec = now_usec() - j->started;
        if (j->removed > 0)
                log_msg(LOG_INFO, "sweep removed %zu expired session(s) in %llu ms", j->removed,
                        (unsigned long long) (d->stats.last_sweep_usec / 1000));
        free(j);
}

static int on_sweep_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        /* One sweep at a time: a long one (a million sessions expiring at
         * once) is still going in slices; starting more would only queue
         * them behind it and garble its figures. */
        struct sweep_job *j = d->sweep_running ? NULL : calloc(1, sizeof(*j));

        if (j) {
                *j = (struct sweep_job){ .work = { .run = sweep_run, .done = sweep_done },
                                         .d = d,
                                         .now = daemon_now(),
                                         .started = now_usec() };
                if (workqueue_submit(d->writer, &j->work) < 0)
                        free(j);
                else
                        d->sweep_running = true;
        }
        throttle_gc(d->throttle, now_usec());
        (void) sd_event_source_set_time_relative(s, (uint64_t) d->config->sweep_interval * 1000000);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* Retired keys should leave the key set soon after their last token
 * expires: check at least twice per token lifetime, at most once a minute. */
static uint64_t keys_check_interval(const struct daemon *d) {
        uint64_t half = (uint64_t) token_max_lifetime(d) * 1000000 / 2;
        return MAX(UINT64_C(1000000), MIN(KEYS_CHECK_USEC, half));
}

static int on_keys_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;
        int64_t now = daemon_now();
        bool changed = false;

        int n = keyring_prune(d->keys, now);
        if (n > 0) {
                log_msg(LOG_INFO, "dropped %d retired signing key(s)", n);
                changed = true;
        }
        if (d->config->rotate_every > 0 && now - keyring_current_created_at(d->keys) >= d->config->rotate_every) {
                char kid[JWT_KID_LEN + 1];
                if (keyring_rotate(d->keys, now, token_max_lifetime(d), kid) == 0) {
                        log_fields(LOG_NOTICE,
                                   (const char *[]){ "LATCH_OP", "keys.rotate", "LATCH_RESULT", "ok", "LATCH_KID",
                                                     kid, NULL },
                                   "signing key rotated on schedule, new kid %s", kid);
                        changed = true;
                } else
                        log_msg(LOG_ERR, "scheduled key rotation failed");
        }
        if (changed)
                (void) daemon_publish_jwks(d);
        (void) sd_event_source_set_time_relative(s, keys_check_interval(d));
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

/* Expired conversations end within a second of their deadline (a respond
 * after it is refused at once, whatever the timer). */
static int on_conversation_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;

        (void) conversations_expire(d->conversations, now_usec());
        (void) sd_event_source_set_time_relative(s, 1000000);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int daemon_start_timers(struct daemon *d) {
        int r = sd_event_add_time_relative(d->event, &d->conversation_timer, CLOCK_MONOTONIC, 1000000, 100000,
                                           on_conversation_timer, d);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(d->event, &d->sweep_timer, CLOCK_MONOTONIC,
                                           (uint64_t) d->config->sweep_interval * 1000000, 1000000, on_sweep_timer, d);
        if (r < 0)
                return r;
        /* Check keys soon after start (a restart may find keys to drop). */
        return sd_event_add_time_relative(d->event, &d->keys_timer, CLOCK_MONOTONIC, 1000000, 1000000,
                                          on_keys_timer, d);
}

/* ---- lifecycle ---- */

static int ensure_state_dir(const char *dir) {
        struct stat st;

        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (stat(dir, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return 0;
}

static unsigned inflight_total(struct daemon *d) {
        unsigned n = 0;
        for (struct conn *c = d->conns; c; c = c->next)
                n += c->inflight;
        return n;
}

static int on_stop_check(sd_event_source *s, uint64_t usec, void *userdata) {
        struct daemon *d = userdata;

        /* And the endings of the conversations that were waiting: they
         * report their failure on the pool. */
        if ((inflight_total(d) == 0 && d->conversations_ending == 0) || now_usec() >= d->stop_deadline) {
                sd_event_exit(d->event, 0);
                return 0;
        }
        (void) sd_event_source_set_time_relative(s, 20000);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct daemon *d = userdata;

        if (d->stopping)
                return 0;
        d->stopping = true;
        d->stop_deadline = now_usec() + STOP_GRACE_USEC;
        log_msg(LOG_INFO, "stopping: finishing requests in flight");
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
        server_stop(d);
        /* No answer to a waiting conversation can come in any more: each
         * ends now as a failure for the lines that took part (faillock,
         * the throttle), as an expired one does. */
        size_t ended = conversations_end_all(d->conversations);
        if (ended > 0)
                log_msg(LOG_INFO, "stopping: %zu conversation(s) waiting for an answer ended", ended);
        return sd_event_add_time_relative(d->event, NULL, CLOCK_MONOTONIC, 0, 1000, on_stop_check, d);
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        struct daemon *d = userdata;
        (void) sd_notify(0, "RELOADING=1");
        log_msg(LOG_INFO, "SIGHUP: reloading the configuration");
        (void) daemon_reload(d);
        (void) sd_notify(0, "READY=1\nSTATUS=Serving");
        return 0;
}

static int daemon_load_config(struct daemon *d, const struct daemon_options *o) {
        int r;

        if (o->config_file) {
                r = config_load(o->config_file, o->diag ? o->diag : log_diag, o->diag ? o->diag_userdata : NULL,
                                &d->config);
                if (r < 0) {
                        log_msg(LOG_ERR, "cannot load %s", o->config_file);
                        return r;
                }
        } else {
                r = config_default(&d->config);
                if (r < 0)
                        return log_errno(LOG_ERR, r, "cannot set up the default configuration");
        }
        if (o->state_dir_override) {
                free(d->config->state_dir);
                d->config->state_dir = strdup(o->state_dir_override);
                if (!d->config->state_dir)
                        return log_errno(LOG_ERR, -ENOMEM, "--state-dir");
        }
        return 0;
}

static int daemon_open_state(struct daemon *d) {
        const char *dir = d->config->state_dir;
        int r;

        r = ensure_state_dir(dir);
        if (r < 0)
                return log_errno(LOG_ERR, r, "state_dir %s", dir);
        char *problem = NULL;
        r = store_open_checked(dir, NULL, &d->store, &problem);
        if (r < 0) {
                if (problem)
                        log_msg(LOG_ERR, "cannot open the session store: %s", problem);
                else
                        log_msg(LOG_ERR, "cannot open the session store in %s: %s", dir, strerror(-r));
                free(problem);
                return r;
        }
        r = store_catch_faults(d->store);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot catch the session store's faults");
        r = keyring_open(dir, daemon_now(), &d->keys);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot open the signing keys in %s/keys%s", dir,
                                 r == -EPERM ? " (key files must be private to latchd's user)" : "");
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct daemon *, daemon_free);

int daemon_new(const struct daemon_options *o, struct daemon **ret) {
        _cleanup_(daemon_freep) struct daemon *d = NULL;
        int r;

        assert_return(o && ret, -EINVAL);

        d = calloc(1, sizeof(*d));
        if (!d)
                return log_errno(LOG_ERR, -ENOMEM, "cannot start");
        d->listen_fd = -1;
        d->config_file = o->config_file;
        d->socket_override = o->socket_override;
        d->state_dir_override = o->state_dir_override;

        r = daemon_load_config(d, o);
        if (r < 0)
                return r;

        /* Signals are taken through sd-event's signalfd: block them before
         * any thread exists so that every thread inherits the mask. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* A loop of our own, not the thread's default: the default one
         * checks its thread (a gettid()) on every turn. */
        r = sd_event_new(&d->event);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot create the event loop");
        d->started_usec = now_usec();

        r = daemon_open_state(d);
        if (r < 0)
                return r;
        r = plugin_host_new(d->config->plugin_dir, d->store, &d->plugins);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot set up the plugin host");
        r = daemon_load_stacks(d, d->config, &d->stacks);
        if (r < 0) {
                log_msg(LOG_ERR, "the service stacks in %s have errors; not starting", d->config->services_dir);
                return r;
        }
        r = throttle_new(d->config->throttle, d->config->throttle_max_delay, &d->throttle);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot set up the throttle");
        r = conversations_new(op_auth_conversation_end, &d->conversations);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot set up the conversation table");
        /* Argon2id takes 64 MiB per hash: one per worker, and a bounded
         * queue past that, answered `unavailable` when full. */
        r = workqueue_new(d->event, "latchd-work", d->config->workers, d->config->workers * 64, 10, &d->pool);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot start the worker pool");
        r = workqueue_new(d->event, "latchd-write", 1, WRITER_QUEUE, 0, &d->writer);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot start the writer thread");

        *ret = TAKE_PTR(d);
        return 0;
}

int daemon_start(struct daemon *d) {
        int r;

        r = server_listen(d);
        if (r < 0)
                return r;
        r = server_start(d);
        if (r < 0)
                return r;
        (void) daemon_publish_jwks(d);
        r = daemon_start_timers(d);
        if (r < 0)
                return log_errno(LOG_ERR, r, "cannot arm the timers");
        if ((r = sd_event_add_signal(d->event, NULL, SIGTERM, on_stop_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGINT, on_stop_signal, d)) < 0 ||
            (r = sd_event_add_signal(d->event, NULL, SIGHUP, on_hup, d)) < 0)
                return log_errno(LOG_ERR, r, "cannot take signals");
        (void) sd_event_set_watchdog(d->event, true);
        return 0;
}

int daemon_run(struct daemon *d) {
        log_msg(LOG_INFO, "latchd %s ready on %s (%s), %zu service(s), %u worker(s)", LATCH_VERSION,
                d->socket_activated ? "the socket from systemd" : d->socket_path,
                d->socket_activated ? "socket-activated" : "bound",
                d->stacks->services ? services_count(d->stacks->services) : 0, d->config->workers);
        (void) sd_notifyf(0, "READY=1\nSTATUS=Serving\nMAINPID=%d", (int) getpid());

        int r = sd_event_loop(d->event);
        if (r < 0)
                return log_errno(LOG_ERR, r, "event loop failed");
        return 0;
}

void daemon_free(struct daemon *d) {
        if (!d)
                return;
        while (d->conns)
                conn_close(d->conns);
        conn_set_close(d);
        /* A worker stuck in a plugin that never returns cannot be joined:
         * leave it to the exit. Otherwise join cleanly (ASan checks this).
         * Conversations still waiting end first, while the pool runs, so
         * that their failure reaches the lines that took part; with a
         * stuck pool it is closed, and they end on this thread. */
        if (d->pool && workqueue_pending(d->pool) == 0) {
                (void) conversations_end_all(d->conversations);
                workqueue_free(d->pool);
                d->pool = NULL;
        } else
                workqueue_close(d->pool);
        if (d->writer) {
                workqueue_free(d->writer);
                d->writer = NULL;
        }
        free(d->touches);
        server_close(d);
        /* Waiting conversations hold requests and their stack set. */
        conversations_free(d->conversations);
        d->conversations = NULL;
        d->conversation_timer = sd_event_source_disable_unref(d->conversation_timer);
        if (!d->pool) {
                stackset_unref(d->stacks);
                plugin_host_free(d->plugins);
                store_close(d->store);
        }
        throttle_free(d->throttle);
        keyring_free(d->keys);
        d->sweep_timer = sd_event_source_disable_unref(d->sweep_timer);
        d->keys_timer = sd_event_source_disable_unref(d->keys_timer);
        sd_event_unref(d->event);
        config_free(d->config);
        free(d);
}
