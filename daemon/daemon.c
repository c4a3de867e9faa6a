/* SPDX-License-Identifier: MIT */
/* Reload, stack sets, periodic work (sweeps, key rotation), and the glue
 * between the stack engine and the plugin host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conn.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "plugin-host.h"
#include "stack.h"
#include "store.h"
#include "throttle.h"
#include "tokens.h"
#include "workqueue.h"

#define SWEEP_BATCH 1000
#define SWEEP_SLICE_USEC 50000 /* one writer job sweeps for at most this long */
#define KEYS_CHECK_USEC (60ULL * 1000000)

int64_t daemon_now(void) { return (int64_t) time(NULL); }

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

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

static int glue_call(void *userdata, void *module, enum stack_type type, struct latch_req *req) {
        int r = plugin_line_call(module, type, req);
        /* faillock answers auth_err only for a locked user (see its
         * manual): the lockouts it enforced, for `stats`. Worker thread. */
        if (r == LATCH_AUTH_ERR && streq(plugin_line_name(module), "faillock"))
                stats_count_faillock_refusal();
        return r;
}

static void glue_outcome(void *userdata, void *module, struct latch_req *req, int result) {
        plugin_line_outcome(module, req, result);
}

const struct stack_module_ops daemon_stack_ops = {
        .open = glue_open,
        .close = glue_close,
        .call = glue_call,
        .outcome = glue_outcome,
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

int daemon_start_timers(struct daemon *d) {
        int r = sd_event_add_time_relative(d->event, &d->sweep_timer, CLOCK_MONOTONIC,
                                           (uint64_t) d->config->sweep_interval * 1000000, 1000000, on_sweep_timer, d);
        if (r < 0)
                return r;
        /* Check keys soon after start (a restart may find keys to drop). */
        return sd_event_add_time_relative(d->event, &d->keys_timer, CLOCK_MONOTONIC, 1000000, 1000000,
                                          on_keys_timer, d);
}
