/* SPDX-License-Identifier: MIT */
/* latchd: the command line, the process's hardening, --check-config, and
 * the daemon's lifecycle (daemon.c) from new to free. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "plugin-host.h"
#include "secret.h"
#include "stack.h"
#include "store.h"



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
        struct daemon_options o = { .diag = print_diag };
        unsigned problems = 0;
        bool check = false;
        int c;

        while ((c = getopt_long(argc, argv, "c:s:S:Vh", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        o.config_file = optarg;
                        break;
                case 's':
                        o.socket_override = optarg;
                        break;
                case 'S':
                        o.state_dir_override = optarg;
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
        if (!o.config_file && access(LATCH_CONFIG_FILE, F_OK) == 0)
                o.config_file = LATCH_CONFIG_FILE;

        if (sodium_init() < 0) {
                fprintf(stderr, "latchd: libsodium failed to initialise\n");
                return 1;
        }
        /* Jansson's copies of requests and answers are wiped when freed. */
        json_set_alloc_funcs(malloc, secret_json_free);
        if (check)
                return check_config(o.config_file);

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

        o.diag_userdata = &problems;
        struct daemon *d = NULL;
        int r = daemon_new(&o, &d);
        if (r >= 0)
                r = daemon_start(d);
        if (r >= 0)
                r = daemon_run(d);
        daemon_free(d);
        log_msg(LOG_INFO, "stopped");
        return r < 0 ? 1 : 0;
}
