/* SPDX-License-Identifier: MIT */
/* latchd: start-up, the event loop, and a graceful stop. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "conn.h"
#include "daemon.h"
#include "keys.h"
#include "log.h"
#include "plugin-host.h"
#include "server.h"
#include "stack.h"
#include "store.h"
#include "throttle.h"
#include "workqueue.h"

#define STOP_GRACE_USEC (10ULL * 1000000)
#define WRITER_QUEUE 65536

/* Jansson copies request text (passwords included) into buffers of its own
 * and frees them unwiped: in latchd every block it frees is wiped first. */
static void json_free_wiped(void *p) {
        if (!p)
                return;
        sodium_memzero(p, malloc_usable_size(p));
        free(p);
}

static void help(void) {
        printf("Usage: latchd [OPTIONS]\n\n"
               "The latch authentication daemon.\n\n"
               "  -c, --config FILE     configuration file (default " LATCH_CONFIG_FILE ")\n"
               "  -s, --socket PATH     listen here when not socket-activated\n"
               "  -S, --state-dir DIR   session store and signing keys\n"
               "      --check-config    check the config, stacks and plugins, then exit\n"
               "  -V, --version         print the version\n"
               "  -h, --help            this help\n");
}

static void print_diag(void *userdata, const char *file, unsigned line, const char *message) {
        unsigned *n = userdata;
        (*n)++;
        if (line > 0)
                fprintf(stderr, "%s:%u: %s\n", file, line, message);
        else
                fprintf(stderr, "%s: %s\n", file, message);
}

/* The stack loader reports a file's syntax first and its plugins after, one
 * type at a time: --check-config gathers the reports and prints them in
 * file and line order. */
struct diag_entry {
        char *file, *message;
        unsigned line;
        size_t seq;
};

struct diag_list {
        struct diag_entry *v;
        size_t n;
        unsigned problems;
};

static void collect_diag(void *userdata, const char *file, unsigned line, const char *message) {
        struct diag_list *l = userdata;
        struct diag_entry *v;

        l->problems++;
        v = realloc(l->v, (l->n + 1) * sizeof(*v));
        if (v) {
                l->v = v;
                v[l->n] = (struct diag_entry){ .file = strdup(file), .message = strdup(message), .line = line,
                                               .seq = l->n };
                if (v[l->n].file && v[l->n].message) {
                        l->n++;
                        return;
                }
                free(v[l->n].file);
                free(v[l->n].message);
        }
        /* No memory to sort: say it now rather than lose it. */
        unsigned ignored = 0;
        print_diag(&ignored, file, line, message);
}

static int diag_cmp(const void *a, const void *b) {
        const struct diag_entry *x = a, *y = b;
        int c = strcmp(x->file, y->file);
        if (c != 0)
                return c;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void diag_list_flush(struct diag_list *l) {
        unsigned ignored = 0;

        qsort(l->v, l->n, sizeof(*l->v), diag_cmp);
        for (size_t i = 0; i < l->n; i++) {
                print_diag(&ignored, l->v[i].file, l->v[i].line, l->v[i].message);
                free(l->v[i].file);
                free(l->v[i].message);
        }
        free(l->v);
        l->v = NULL;
        l->n = 0;
}

extern const struct stack_module_ops daemon_stack_ops;

/* Removes the scratch store folder of --check-config (flat: files only). */
static void remove_tree(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *e;

        if (!d)
                return;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.')
                        (void) unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
        (void) rmdir(dir);
}

/* --check-config: every problem as FILE:LINE: message; 0 or 1. */
static int check_config(const char *file) {
        struct config *c = NULL;
        struct plugin_host *h = NULL;
        struct services *s = NULL;
        struct diag_list stack_diags = {};
        unsigned problems = 0;
        bool config_bad = false;
        int r;

        /* A config with problems still names the stacks and plugins to
         * check: every problem of every file shows in one run. */
        if (file)
                r = config_load_partial(file, print_diag, &problems, &c);
        else
                r = config_default(&c);
        if (r == -EINVAL && c)
                config_bad = true;
        else if (r < 0) {
                if (problems == 0)
                        fprintf(stderr, "%s: %s\n", file ? file : "defaults", strerror(-r));
                return 1;
        }
        /* Plugins may check their store at open (faillock does): give them
         * a scratch one, so that checking never touches the real state. */
        char scratch[] = "/tmp/latchd-check-XXXXXX";
        store *st = NULL;
        if (mkdtemp(scratch) && store_open(scratch, &st) < 0)
                st = NULL;
        r = plugin_host_new(c->plugin_dir, st, &h);
        if (r < 0) {
                fprintf(stderr, "%s: cannot set up the plugin host: %s\n", c->plugin_dir, strerror(-r));
                store_close(st);
                remove_tree(scratch);
                config_free(c);
                return 1;
        }
        r = plugin_host_configure(h, c->plugins, c->n_plugins, NULL);
        if (r < 0) {
                fprintf(stderr, "cannot configure the plugin host: %s\n", strerror(-r));
                plugin_host_free(h);
                store_close(st);
                remove_tree(scratch);
                config_free(c);
                return 1;
        }
        r = services_load(c->services_dir, &daemon_stack_ops, h, collect_diag, &stack_diags, &s);
        diag_list_flush(&stack_diags);
        problems += stack_diags.problems;
        if (r == -ENOENT)
                fprintf(stderr, "%s: no such folder (every service would be unknown)\n", c->services_dir);
        else if (r < 0 && stack_diags.problems == 0)
                fprintf(stderr, "%s: %s\n", c->services_dir, strerror(-r));
        /* A [service.X] section without a stack file is likely a typo. */
        for (size_t i = 0; i < c->n_services; i++)
                if (s && !services_find(s, c->services[i].name))
                        fprintf(stderr, "%s:%u: [service.%s] has no stack file in %s (warning)\n",
                                c->services[i].file, c->services[i].line, c->services[i].name, c->services_dir);
        if (r == 0 && !config_bad)
                printf("configuration OK: %zu service(s)\n", services_count(s));
        services_free(s);
        plugin_host_free(h);
        store_close(st);
        remove_tree(scratch);
        config_free(c);
        return !config_bad && (r == 0 || r == -ENOENT) ? 0 : 1;
}

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
        static uint64_t deadline;

        if (!deadline)
                deadline = now_usec() + STOP_GRACE_USEC;
        if (inflight_total(d) == 0 || now_usec() >= deadline) {
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
        log_msg(LOG_INFO, "stopping: finishing requests in flight");
        (void) sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
        server_stop(d);
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

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "socket", required_argument, NULL, 's' },
                { "state-dir", required_argument, NULL, 'S' },
                { "check-config", no_argument, NULL, 'C' },
                { "version", no_argument, NULL, 'V' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        struct daemon d = { .listen_fd = -1 };
        const char *config_file = NULL;
        bool check = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:s:S:Vh", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        config_file = optarg;
                        break;
                case 's':
                        d.socket_override = optarg;
                        break;
                case 'S':
                        d.state_dir_override = optarg;
                        break;
                case 'C':
                        check = true;
                        break;
                case 'V':
                        printf("latchd %s\n", LATCH_VERSION);
                        return 0;
                case 'h':
                        help();
                        return 0;
                default:
                        fprintf(stderr, "Try 'latchd --help'.\n");
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "latchd: unexpected argument '%s'\nTry 'latchd --help'.\n", argv[optind]);
                return 2;
        }
        if (!config_file && access(LATCH_CONFIG_FILE, F_OK) == 0)
                config_file = LATCH_CONFIG_FILE;

        if (sodium_init() < 0) {
                fprintf(stderr, "latchd: libsodium failed to initialise\n");
                return 1;
        }
        json_set_alloc_funcs(malloc, json_free_wiped);
        if (check)
                return check_config(config_file);

        log_open(false);
        /* Secrets live in this process: no core dumps, no ptrace by peers
         * of the same uid, and files private by default. */
        (void) prctl(PR_SET_DUMPABLE, 0);
        (void) setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
        /* One fd per client: take the hard limit, not the 1024 soft default
         * (select() is never used here). */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &nofile);
        }
        umask(0077);

        d.config_file = config_file;
        if (config_file) {
                unsigned problems = 0;
                r = config_load(config_file, print_diag, &problems, &d.config);
                if (r < 0) {
                        log_msg(LOG_ERR, "cannot load %s", config_file);
                        return 1;
                }
        } else if (config_default(&d.config) < 0)
                return 1;
        if (d.state_dir_override) {
                free(d.config->state_dir);
                d.config->state_dir = strdup(d.state_dir_override);
                if (!d.config->state_dir)
                        return 1;
        }

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
        r = sd_event_new(&d.event);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot create the event loop: %s", strerror(-r));
                return 1;
        }
        d.started_usec = now_usec();

        r = ensure_state_dir(d.config->state_dir);
        if (r < 0) {
                log_msg(LOG_ERR, "state_dir %s: %s", d.config->state_dir, strerror(-r));
                goto finish;
        }
        r = store_open(d.config->state_dir, &d.store);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot open the session store in %s: %s%s", d.config->state_dir, strerror(-r),
                        r == -EPERM ? " (it must belong to latchd's user and not be writable by others)"
                        : r == -EINVAL ? " (not a latch store, or corrupt)"
                                       : "");
                goto finish;
        }
        r = keyring_open(d.config->state_dir, daemon_now(), &d.keys);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot open the signing keys in %s/keys: %s%s", d.config->state_dir, strerror(-r),
                        r == -EPERM ? " (key files must be private to latchd's user)" : "");
                goto finish;
        }
        r = plugin_host_new(d.config->plugin_dir, d.store, &d.plugins);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot set up the plugin host: %s", strerror(-r));
                goto finish;
        }
        r = daemon_load_stacks(&d, d.config, &d.stacks);
        if (r < 0) {
                log_msg(LOG_ERR, "the service stacks in %s have errors; not starting", d.config->services_dir);
                goto finish;
        }
        r = throttle_new(d.config->throttle, d.config->throttle_max_delay, &d.throttle);
        if (r < 0)
                goto finish;
        /* Argon2id takes 64 MiB per hash: one per worker, and a bounded
         * queue past that, answered `unavailable` when full. */
        r = workqueue_new(d.event, "latchd-work", d.config->workers, d.config->workers * 64, 10, &d.pool);
        if (r < 0)
                goto finish;
        r = workqueue_new(d.event, "latchd-write", 1, WRITER_QUEUE, 0, &d.writer);
        if (r < 0)
                goto finish;

        r = server_listen(&d);
        if (r < 0)
                goto finish;
        r = server_start(&d);
        if (r < 0)
                goto finish;
        (void) daemon_publish_jwks(&d);
        r = daemon_start_timers(&d);
        if (r < 0)
                goto finish;
        if ((r = sd_event_add_signal(d.event, NULL, SIGTERM, on_stop_signal, &d)) < 0 ||
            (r = sd_event_add_signal(d.event, NULL, SIGINT, on_stop_signal, &d)) < 0 ||
            (r = sd_event_add_signal(d.event, NULL, SIGHUP, on_hup, &d)) < 0)
                goto finish;
        (void) sd_event_set_watchdog(d.event, true);

        log_msg(LOG_INFO, "latchd %s ready on %s (%s), %zu service(s), %u worker(s)", LATCH_VERSION,
                d.socket_activated ? "the socket from systemd" : d.socket_path,
                d.socket_activated ? "socket-activated" : "bound", d.stacks->services ? services_count(d.stacks->services) : 0,
                d.config->workers);
        (void) sd_notifyf(0, "READY=1\nSTATUS=Serving\nMAINPID=%d", (int) getpid());

        r = sd_event_loop(d.event);
        if (r < 0)
                log_msg(LOG_ERR, "event loop failed: %s", strerror(-r));

finish:
        while (d.conns)
                conn_close(d.conns);
        conn_set_close(&d);
        /* A worker stuck in a plugin that never returns cannot be joined:
         * leave it to the exit. Otherwise join cleanly (ASan checks this). */
        if (d.pool && workqueue_pending(d.pool) == 0) {
                workqueue_free(d.pool);
                d.pool = NULL;
        }
        if (d.writer) {
                workqueue_free(d.writer);
                d.writer = NULL;
        }
        free(d.touches);
        server_close(&d);
        if (!d.pool) {
                stackset_unref(d.stacks);
                plugin_host_free(d.plugins);
                store_close(d.store);
        }
        throttle_free(d.throttle);
        keyring_free(d.keys);
        d.sweep_timer = sd_event_source_disable_unref(d.sweep_timer);
        d.keys_timer = sd_event_source_disable_unref(d.keys_timer);
        sd_event_unref(d.event);
        config_free(d.config);
        log_msg(LOG_INFO, "stopped");
        return r < 0 ? 1 : 0;
}
