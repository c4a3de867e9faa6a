/* SPDX-License-Identifier: MIT */

/*
 * The plugin host: loading and refusing plugins, calls and results, the
 * request and its claims, and every host service as a plugin sees it (the
 * tp_good test plugin hands the test its struct latch_host and ctx).
 *
 * Arguments: the folder holding the tp_*.so test plugins, then NAME=PATH for
 * every shipped plugin.
 */

#include <dlfcn.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "macro.h"
#include "plugin-host.h"
#include "store.h"

static const char *tp_dir;
static int n_shipped;
static char **shipped; /* NAME=PATH */

/* ---- helpers ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

/* Every state dir lives under this one, removed by the group teardown even
 * when a test fails half-way. */
static char root_dir[] = "/tmp/latch-test-plugin-host-XXXXXX";

static int group_setup(void **unused) {
        return mkdtemp(root_dir) ? 0 : -1;
}

static int group_teardown(void **unused) {
        return nftw(root_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *make_state_dir(void) {
        char *d;
        assert_true(asprintf(&d, "%s/state-XXXXXX", root_dir) > 0);
        assert_non_null(mkdtemp(d)); /* 0700, as store_open() wants */
        return d;
}

static void remove_dir(char *d) {
        if (!d)
                return;
        nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(d);
}

static char *tp_path(const char *variant) {
        char *p;
        assert_true(asprintf(&p, "%s/tp_%s.so", tp_dir, variant) > 0);
        return p;
}

/* The good test plugin's exported globals, reached through its own handle
 * (dlopen() of a loaded object returns it again). */
struct tp {
        void *dl;
        const struct latch_host **host;
        struct latch_ctx **ctx;
        int *entry_calls;
        int *last_outcome;
        int *open_lines;
};

static void tp_get(struct tp *tp) {
        _cleanup_free_ char *p = tp_path("good");

        tp->dl = dlopen(p, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        assert_non_null(tp->dl); /* loaded by the host already */
        tp->host = dlsym(tp->dl, "tp_host");
        tp->ctx = dlsym(tp->dl, "tp_ctx");
        tp->entry_calls = dlsym(tp->dl, "tp_entry_calls");
        tp->last_outcome = dlsym(tp->dl, "tp_last_outcome");
        tp->open_lines = dlsym(tp->dl, "tp_open_lines");
        assert_non_null(tp->host);
        assert_non_null(tp->ctx);
        assert_non_null(tp->entry_calls);
        assert_non_null(tp->last_outcome);
        assert_non_null(tp->open_lines);
}

static void tp_put(struct tp *tp) {
        dlclose(tp->dl);
}

static struct plugin_host *host_new(store *st) {
        struct plugin_host *h = NULL;
        assert_int_equal(plugin_host_new(tp_dir, st, &h), 0);
        assert_non_null(h);
        return h;
}

/* Opens a line that the test expects to fail; returns the errno, checks the
 * message mentions `needle`. */
static int open_fails(struct plugin_host *h, const char *plugin, int argc, const char *const *argv,
                      const char *needle) {
        struct plugin_line *l = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = plugin_line_open(h, plugin, argc, argv, &l, &err);
        assert_true(r < 0);
        assert_null(l);
        assert_non_null(err);
        assert_null(strchr(err, '\n'));
        if (!strstr(err, needle))
                fail_msg("error '%s' does not mention '%s'", err, needle);
        return r;
}

/* ---- loading ---- */

static void test_shipped_plugins_load(void **unused) {
        _cleanup_free_ char *dir = make_state_dir();
        struct plugin_host *h;
        store *st = NULL;

        assert_int_equal(store_open(dir, &st), 0);
        h = host_new(st);

        /* Every shipped plugin loads and speaks our ABI; the ones whose
         * defaults need nothing outside also open without arguments. */
        assert_true(n_shipped >= 4);
        for (int i = 0; i < n_shipped; i++) {
                _cleanup_free_ char *name = strndup(shipped[i], strcspn(shipped[i], "="));
                const char *path = shipped[i] + strlen(name) + 1;
                _cleanup_free_ char *err = NULL;

                if (plugin_host_load(h, path, &err) < 0)
                        fail_msg("shipped plugin %s: %s", name, err);

                if (streq(name, "permit") || streq(name, "deny") || streq(name, "debug") ||
                    streq(name, "faillock")) {
                        struct plugin_line *l = NULL;
                        if (plugin_line_open(h, path, 0, NULL, &l, &err) < 0)
                                fail_msg("shipped plugin %s: %s", name, err);
                        assert_string_equal(plugin_line_name(l), name);
                        plugin_line_close(l);
                }
        }

        plugin_host_free(h);
        store_close(st);
        remove_dir(TAKE_PTR(dir));
}

/* Every shipped plugin checks its host the same way (LATCH_PLUGIN_DEFINE):
 * another ABI major is refused, and so is a host too small to have the
 * services the plugin calls; permit and deny call none. */
static void test_shipped_plugins_check_host(void **unused) {
        struct latch_host full = {
                .size = sizeof(struct latch_host),
                .abi_major = LATCH_PLUGIN_ABI_MAJOR,
                .abi_minor = LATCH_PLUGIN_ABI_MINOR,
        };
        struct latch_host other_major = full, header_only = full;

        other_major.abi_major = LATCH_PLUGIN_ABI_MAJOR + 1;
        header_only.size = LATCH_HOST_SIZE_FOR(abi_minor);

        assert_true(n_shipped >= 6);
        for (int i = 0; i < n_shipped; i++) {
                _cleanup_free_ char *name = strndup(shipped[i], strcspn(shipped[i], "="));
                const char *path = shipped[i] + strlen(name) + 1;
                bool calls_services = !streq(name, "permit") && !streq(name, "deny");
                latch_plugin_entry_fn entry;
                void *dl, *sym;

                dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                if (!dl)
                        fail_msg("shipped plugin %s: %s", name, dlerror());
                sym = dlsym(dl, LATCH_PLUGIN_ENTRY_SYMBOL);
                assert_non_null(sym);
                memcpy(&entry, &sym, sizeof(entry));

                if (!entry(&full))
                        fail_msg("shipped plugin %s refuses a whole host", name);
                if (entry(&other_major))
                        fail_msg("shipped plugin %s takes a host of ABI %d", name, LATCH_PLUGIN_ABI_MAJOR + 1);
                if (!entry(&header_only) != calls_services)
                        fail_msg("shipped plugin %s %s a host without services", name,
                                 calls_services ? "takes" : "refuses");
                assert_null(entry(NULL));
                dlclose(dl);
        }
}

static void test_bare_name_and_loaded_once(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct plugin_line *a = NULL, *b = NULL;
        _cleanup_free_ char *path = tp_path("good");
        struct tp tp;

        /* A bare name is looked up in plugin_dir; an absolute path naming
         * the same file is the same plugin, loaded once. */
        int entry_calls;

        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &a, NULL), 0);
        tp_get(&tp);
        entry_calls = *tp.entry_calls;
        assert_true(entry_calls >= 1);

        assert_int_equal(plugin_line_open(h, path, 0, NULL, &b, NULL), 0);
        assert_string_equal(plugin_line_name(a), "tp_good");
        assert_string_equal(plugin_line_name(b), "tp_good");
        assert_int_equal(*tp.entry_calls, entry_calls);
        assert_int_equal(*tp.open_lines, 2);
        plugin_line_close(a);
        plugin_line_close(b);
        assert_int_equal(*tp.open_lines, 0);
        tp_put(&tp);

        plugin_line_close(NULL);
        plugin_host_free(h);
        plugin_host_free(NULL);
}

static void test_missing_file(void **unused) {
        struct plugin_host *h = host_new(NULL);
        _cleanup_free_ char *expect = NULL;

        assert_true(asprintf(&expect, "cannot load plugin 'fiel': %s/fiel.so: ", tp_dir) > 0);
        assert_int_equal(open_fails(h, "fiel", 0, NULL, expect), -ENOENT);
        assert_int_equal(open_fails(h, "/nonexistent/x.so", 0, NULL, "/nonexistent/x.so"), -ENOENT);

        plugin_host_free(h);
}

static void test_bad_names(void **unused) {
        struct plugin_host *h = host_new(NULL);
        static const char *const bad[] = {
                "sub/tp_good", "./tp_good.so", "tp_good.so", "../tp_good", "..", "", "tp good", "/tmp/../x.so",
                "/..", "/a/..",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(open_fails(h, bad[i], 0, NULL, "invalid plugin"), -EINVAL);

        /* Not refused for looking like "..": a file name containing dots. */
        assert_int_equal(open_fails(h, "/nonexistent/..x.so", 0, NULL, "cannot load"), -ENOENT);

        plugin_host_free(h);
}

static void test_abi_major_refused(void **unused) {
        struct plugin_host *h = host_new(NULL);
        _cleanup_free_ char *path = tp_path("abi2"), *expect = NULL;

        assert_true(asprintf(&expect, "plugin %s speaks ABI 2.0, latchd speaks 1.%d", path, LATCH_PLUGIN_ABI_MINOR) > 0);
        assert_int_equal(open_fails(h, path, 0, NULL, expect), -EPROTONOSUPPORT);
        /* Refused again, not cached as loaded. */
        assert_int_equal(open_fails(h, "tp_abi2", 0, NULL, expect), -EPROTONOSUPPORT);

        plugin_host_free(h);
}

static void test_newer_minor_accepted(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct plugin_line *l = NULL;
        struct latch_req *req = NULL;

        assert_int_equal(plugin_line_open(h, "tp_minor", 0, NULL, &l, NULL), 0);
        assert_int_equal(latch_req_new("login", "svc", "alice", "pw", NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_SUCCESS);
        latch_req_free(req);
        plugin_line_close(l);
        plugin_host_free(h);
}

static void test_broken_plugins_refused(void **unused) {
        struct plugin_host *h = host_new(NULL);
        _cleanup_free_ char *nosym = tp_path("nosym"), *small = tp_path("small"), *noname = tp_path("noname"),
                            *nullentry = tp_path("nullentry");

        assert_int_equal(open_fails(h, "tp_nosym", 0, NULL, nosym), -ENOEXEC);
        assert_int_equal(open_fails(h, "tp_nosym", 0, NULL, "latch_plugin_entry"), -ENOEXEC);
        assert_int_equal(open_fails(h, "tp_small", 0, NULL, small), -ENOEXEC);
        assert_int_equal(open_fails(h, "tp_noname", 0, NULL, noname), -ENOEXEC);
        assert_int_equal(open_fails(h, "tp_nullentry", 0, NULL, nullentry), -EPROTONOSUPPORT);

        /* plugin_host_load() says the same without opening a line. */
        _cleanup_free_ char *err = NULL;
        assert_int_equal(plugin_host_load(h, "tp_small", &err), -ENOEXEC);
        assert_non_null(strstr(err, small));
        assert_int_equal(plugin_host_load(h, "tp_minor", NULL), 0);

        plugin_host_free(h);
}

static void test_open_failure_message(void **unused) {
        struct plugin_host *h = host_new(NULL);

        /* The plugin's own error line becomes the message. */
        assert_int_equal(open_fails(h, "tp_good", 1, (const char *const[]){"fail"}, "plugin 'tp_good': told to fail by 'fail'"),
                         -EINVAL);
        plugin_host_free(h);
}

/* ---- calls ---- */

static void test_results(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct latch_req *req = NULL;
        struct plugin_line *l;
        struct tp tp;
        static const struct {
                const char *arg;
                int expect;
        } cases[] = {
                {"result=0", LATCH_SUCCESS},
                {"result=7", LATCH_AUTH_ERR},
                {"result=31", LATCH_INCOMPLETE},
                {"result=32", LATCH_SYSTEM_ERR},
                {"result=99", LATCH_SYSTEM_ERR},
                {"result=-1", LATCH_SYSTEM_ERR},
                {"result=-22", LATCH_SYSTEM_ERR},
        };

        assert_int_equal(latch_req_new("authenticate", "svc", "alice", "pw", NULL, &req), 0);

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                l = NULL;
                assert_int_equal(plugin_line_open(h, "tp_good", 1, (const char *const[]){cases[i].arg}, &l, NULL), 0);
                assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), cases[i].expect);
                /* No account() → module_unknown, as libpam does for a missing
                 * pam_sm_acct_mgmt. */
                assert_int_equal(plugin_line_call(l, STACK_ACCOUNT, req, 0), LATCH_MODULE_UNKNOWN);
                assert_int_equal(plugin_line_call(l, (enum stack_type) 7, req, 0), LATCH_SYSTEM_ERR);
                plugin_line_close(l);
        }

        /* The outcome reaches the plugin. */
        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        tp_get(&tp);
        plugin_line_outcome(l, req, LATCH_PERM_DENIED);
        assert_int_equal(*tp.last_outcome, LATCH_PERM_DENIED);
        plugin_line_outcome(l, req, LATCH_SUCCESS);
        assert_int_equal(*tp.last_outcome, LATCH_SUCCESS);
        tp_put(&tp);
        plugin_line_close(l);

        latch_req_free(req);
        plugin_host_free(h);
}

/* ---- the request and the host services ---- */

/* A plugin built against the 1.0 header loads, and is called as before;
 * with no password it is asked for on its behalf, and the answer is what it
 * sees. */
static void test_abi10_plugin(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct latch_req *req = NULL;
        struct plugin_line *l = NULL;
        const char *msg;

        assert_int_equal(plugin_line_open(h, "tp_v10", 0, NULL, &l, NULL), 0);
        /* Its struct ends before `admin` (1.1): never read past it. */
        json_t *args = json_object(), *answer = NULL;
        char *why = NULL;
        assert_false(plugin_line_has_admin(l));
        assert_int_equal(plugin_line_admin(l, "show", args, false, false, &answer, &why), -EOPNOTSUPP);
        assert_null(answer);
        assert_non_null(strstr(why, "has no admin actions"));
        free(why);
        json_decref(args);
        _cleanup_free_ char *p = tp_path("v10");
        void *self = dlopen(p, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        assert_non_null(self);
        int *calls = dlsym(self, "tp10_calls");
        char *seen = dlsym(self, "tp10_seen");
        assert_non_null(calls);

        assert_int_equal(latch_req_new("login", "svc", "alice", "pw-1.0", NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_SUCCESS);
        assert_int_equal(*calls, 1);
        latch_req_free(req);

        assert_int_equal(latch_req_new("login", "svc", "alice", NULL, NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_INCOMPLETE);
        assert_int_equal(*calls, 1); /* not called without a password */
        assert_true(latch_req_challenge(req));
        assert_int_equal(latch_req_n_prompts(req), 1);
        assert_int_equal(latch_req_prompt(req, 0, &msg), LATCH_PROMPT_SECRET);
        assert_string_equal(msg, "Password:");
        assert_int_equal(latch_req_set_answers(req, NULL, 0), -EINVAL);
        assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "wrong" }, 1), 0);
        assert_true(latch_req_has_password(req));
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_AUTH_ERR);
        assert_int_equal(*calls, 2);
        assert_string_equal(seen, "wrong");
        latch_req_free(req);

        dlclose(self);
        plugin_line_close(l);
        plugin_host_free(h);
}

/* ABI 1.1: prompts, answers and the request's slot across the two calls. */
static void test_conversation(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct latch_req *req = NULL;
        struct plugin_line *l = NULL;
        const char *msg;

        assert_int_equal(plugin_line_open(h, "tp_conv", 0, NULL, &l, NULL), 0);
        _cleanup_free_ char *p = tp_path("conv");
        void *self = dlopen(p, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
        assert_non_null(self);
        int *cleanups = dlsym(self, "tpc_cleanups");
        assert_non_null(cleanups);

        for (int round = 0; round < 3; round++) {
                assert_int_equal(latch_req_new("login", "svc", "alice", "pw", NULL, &req), 0);
                assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_INCOMPLETE);
                assert_true(latch_req_challenge(req));
                assert_int_equal(latch_req_n_prompts(req), 2);
                assert_int_equal(latch_req_prompt(req, 0, &msg), LATCH_PROMPT_INFO);
                assert_string_equal(msg, "A code was sent.");
                assert_int_equal(latch_req_prompt(req, 1, &msg), LATCH_PROMPT_TEXT);
                assert_string_equal(msg, "Code:");
                assert_int_equal(latch_req_n_answers_expected(req), 1);
                /* Wrong counts change nothing. */
                assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "a", "b" }, 2), -EINVAL);
                assert_true(latch_req_challenge(req));
                if (round == 2) {
                        /* Abandoned: the slot's cleanup still runs. */
                        latch_req_free(req);
                        assert_int_equal(*cleanups, 3);
                        break;
                }
                assert_int_equal(latch_req_set_answers(req, (const char *const[]){ round ? "000000" : "123456" }, 1), 0);
                assert_false(latch_req_challenge(req));
                assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), round ? LATCH_AUTH_ERR : LATCH_SUCCESS);
                assert_false(latch_req_challenge(req));
                latch_req_free(req);
                assert_int_equal(*cleanups, round + 1);
        }

        dlclose(self);
        plugin_line_close(l);
        plugin_host_free(h);
}

/* What a prompt may say: text in any script, '\n' and '\t'; never what a
 * terminal would take as a command, nor what reorders or breaks the line
 * the user reads (a plugin, or a PAM module the pam plugin relays, must not
 * make a prompt look like something else). */
static void test_prompt_messages(void **unused) {
        static const char *const good[] = {
                "Password:", "Código de verificación:", "Пароль:", "暗証番号:", "כתובת:", "A\tcode\nwas sent.",
                "\xe2\x80\x8b\xe2\x80\x8d", /* U+200B, U+200D: invisible, but reorder nothing */
                "\xc2\xa0\xc2\xbf",             /* U+00A0, U+00BF: the first printable code points past C1 */
        };
        static const char *const bad[] = {
                "\x1b[2J\x1b[HPassword:",       /* C0: ESC */
                "Code:\r",                       /* C0: CR */
                "Code:\x7f",                     /* DEL */
                "\xc2\x9b" "2JPassword:",        /* U+009B: the 8-bit CSI */
                "\xc2\x9d" "0;title\xc2\x9c",   /* U+009D OSC ... U+009C ST */
                "\xc2\x80", "\xc2\x85", "\xc2\x9f", /* the ends and NEL of C1 */
                "Code:\xe2\x80\xa8Password:",    /* U+2028 LINE SEPARATOR */
                "Code:\xe2\x80\xa9",             /* U+2029 PARAGRAPH SEPARATOR */
                "\xe2\x80\xaa", "\xe2\x80\xab", "\xe2\x80\xac", "\xe2\x80\xad", /* LRE RLE PDF LRO */
                "Enter \xe2\x80\xae:edoc",        /* U+202E RIGHT-TO-LEFT OVERRIDE */
                "\xe2\x81\xa6", "\xe2\x81\xa7", "\xe2\x81\xa8", "\xe2\x81\xa9", /* LRI RLI FSI PDI */
                "\xc3(", "\xed\xa0\x80", "\xc0\xaf", /* not UTF-8: cut, a surrogate, overlong */
        };
        struct plugin_host *h = host_new(NULL);
        struct plugin_line *l = NULL;
        const char *msg;

        assert_int_equal(plugin_line_open(h, "tp_conv", 0, NULL, &l, NULL), 0);
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                struct latch_req *req = NULL;
                assert_int_equal(latch_req_new("login", "svc", "say", good[i], NULL, &req), 0);
                assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_INCOMPLETE);
                assert_int_equal(latch_req_prompt(req, 0, &msg), LATCH_PROMPT_INFO);
                assert_string_equal(msg, good[i]);
                latch_req_free(req);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct latch_req *req = NULL;
                assert_int_equal(latch_req_new("login", "svc", "say", bad[i], NULL, &req), 0);
                if (plugin_line_call(l, STACK_AUTH, req, 0) != LATCH_CONV_ERR)
                        fail_msg("prompt %zu taken", i);
                assert_int_equal(latch_req_n_prompts(req), 0);
                latch_req_free(req);
        }
        plugin_line_close(l);
        plugin_host_free(h);
}

static void test_items(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct latch_req *req = NULL, *req2 = NULL;
        struct plugin_line *l = NULL;
        const struct latch_host *host;
        struct tp tp;

        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        tp_get(&tp);
        host = *tp.host;
        assert_true(host->size >= offsetof(struct latch_host, kv_update) + sizeof(host->kv_update));
        assert_int_equal(host->abi_major, LATCH_PLUGIN_ABI_MAJOR);

        assert_int_equal(latch_req_new("login", "wiki", "alice", "s3cret", "192.0.2.1", &req), 0);
        assert_string_equal(host->item(req, LATCH_ITEM_OP), "login");
        assert_string_equal(host->item(req, LATCH_ITEM_SERVICE), "wiki");
        assert_string_equal(host->item(req, LATCH_ITEM_USER), "alice");
        assert_string_equal(host->item(req, LATCH_ITEM_PASSWORD), "s3cret");
        assert_string_equal(host->item(req, LATCH_ITEM_REMOTE), "192.0.2.1");
        assert_null(host->item(req, 0));
        assert_null(host->item(req, 99));

        assert_int_equal(latch_req_new("authenticate", "wiki", "bob", "", NULL, &req2), 0);
        assert_null(host->item(req2, LATCH_ITEM_REMOTE));
        assert_string_equal(host->item(req2, LATCH_ITEM_PASSWORD), "");

        assert_int_equal(latch_req_new(NULL, "wiki", "bob", "x", NULL, &req2), -EINVAL);
        latch_req_free(req2);
        /* No password: the conversation asks for one. */
        assert_int_equal(latch_req_new("login", "wiki", "bob", NULL, NULL, &req2), 0);
        assert_null(host->item(req2, LATCH_ITEM_PASSWORD));

        latch_req_free(req);
        latch_req_free(req2);
        latch_req_free(NULL);
        tp_put(&tp);
        plugin_line_close(l);
        plugin_host_free(h);
}

/* The dlsym() of a test plugin's exported variable, the plugin being loaded
 * by the host already. */
static void *tp_sym(const char *variant, const char *name, void **ret_dl) {
        _cleanup_free_ char *p = tp_path(variant);
        void *dl = dlopen(p, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD), *sym;

        assert_non_null(dl);
        sym = dlsym(dl, name);
        assert_non_null(sym);
        *ret_dl = dl;
        return sym;
}

/* ABI 1.2: password() with its flags, prompts and answers in both passes,
 * set_item and LATCH_ITEM_OLDPASSWORD, and answers that never become items
 * by themselves. */
static void test_password_change(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct latch_req *req = NULL;
        struct plugin_line *l = NULL;
        const char *msg;
        void *dl;

        assert_int_equal(plugin_line_open(h, "tp_pw", 0, NULL, &l, NULL), 0);
        int *flags = tp_sym("pw", "tpp_flags", &dl);
        int *calls = dlsym(dl, "tpp_calls");
        char *stored = dlsym(dl, "tpp_stored");
        int *bad_item_rc = dlsym(dl, "tpp_bad_item_rc"), *long_rc = dlsym(dl, "tpp_long_rc");
        assert_non_null(calls);
        assert_non_null(stored);

        assert_int_equal(latch_req_new("passwd", "svc", "alice", NULL, NULL, &req), 0);

        /* The preliminary pass asks for the current password. */
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK), LATCH_INCOMPLETE);
        assert_true(latch_req_challenge(req));
        assert_int_equal(latch_req_n_prompts(req), 1);
        assert_int_equal(latch_req_prompt(req, 0, &msg), LATCH_PROMPT_SECRET);
        assert_string_equal(msg, "Current password:");
        assert_int_equal(*bad_item_rc, -EINVAL);
        assert_int_equal(*long_rc, -EINVAL);
        assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "old-pw" }, 1), 0);
        /* In the password stack a secret answer is not the password. */
        assert_false(latch_req_has_password(req));
        assert_null(latch_req_item(req, LATCH_ITEM_OLDPASSWORD));
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK), LATCH_SUCCESS);
        assert_string_equal(latch_req_item(req, LATCH_ITEM_OLDPASSWORD), "old-pw");
        assert_null(latch_req_item(req, LATCH_ITEM_PASSWORD));

        /* The update pass asks for the new one twice and sets it. */
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        assert_int_equal(latch_req_n_prompts(req), 2);
        assert_int_equal(latch_req_prompt(req, 1, &msg), LATCH_PROMPT_SECRET);
        assert_string_equal(msg, "Retype new password:");
        assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "new-pw", "new-pw" }, 2), 0);
        assert_false(latch_req_has_password(req));
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK), LATCH_SUCCESS);
        assert_string_equal(stored, "new-pw");
        assert_string_equal(latch_req_item(req, LATCH_ITEM_PASSWORD), "new-pw");
        assert_true(latch_req_has_password(req));
        assert_int_equal(*calls, 4);
        assert_int_equal(flags[0], LATCH_PRELIM_CHECK);
        assert_int_equal(flags[1], LATCH_PRELIM_CHECK);
        assert_int_equal(flags[2], LATCH_UPDATE_AUTHTOK);
        assert_int_equal(flags[3], LATCH_UPDATE_AUTHTOK);
        latch_req_free(req);

        /* A wrong current password; two different new ones. */
        assert_int_equal(latch_req_new("passwd", "svc", "alice", NULL, NULL, &req), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK), LATCH_INCOMPLETE);
        assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "guess" }, 1), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK), LATCH_AUTH_ERR);
        assert_false(latch_req_challenge(req));
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_OLDPASSWORD, "old-pw"), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK), LATCH_INCOMPLETE);
        assert_int_equal(latch_req_set_answers(req, (const char *const[]){ "new-pw", "new-pX" }, 2), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK), LATCH_AUTHTOK_ERR);
        latch_req_free(req);

        /* An expired password during a login: the login's password is the
         * current one, the new one is asked for; the flag reaches the
         * plugin. */
        assert_int_equal(latch_req_new("login", "svc", "alice", "old-pw", NULL, &req), 0);
        latch_req_begin_expired_change(req);
        assert_false(latch_req_has_password(req));
        assert_string_equal(latch_req_item(req, LATCH_ITEM_OLDPASSWORD), "old-pw");
        *calls = 0;
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK | LATCH_CHANGE_EXPIRED_AUTHTOK),
                         LATCH_SUCCESS);
        assert_int_equal(flags[0], LATCH_PRELIM_CHECK | LATCH_CHANGE_EXPIRED_AUTHTOK);
        assert_int_equal(latch_req_n_prompts(req), 0);
        latch_req_free(req);

        /* Pass flags are for the password stack only, one pass at a time;
         * the plugin is not called with others. */
        assert_int_equal(latch_req_new("login", "svc", "alice", "pw", NULL, &req), 0);
        *calls = 0;
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, LATCH_PRELIM_CHECK), LATCH_SYSTEM_ERR);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, 0), LATCH_SYSTEM_ERR);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_CHANGE_EXPIRED_AUTHTOK), LATCH_SYSTEM_ERR);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK | LATCH_UPDATE_AUTHTOK),
                         LATCH_SYSTEM_ERR);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK | 0x8000), LATCH_SYSTEM_ERR);
        assert_int_equal(*calls, 0);
        /* tp_pw has no auth(). */
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_MODULE_UNKNOWN);
        latch_req_free(req);

        dlclose(dl);
        plugin_line_close(l);
        plugin_host_free(h);
}

/* Plugins without password(): a 1.2 plugin leaving it NULL, a 1.1 plugin
 * (whose struct ends before it) and a 1.0 one make a password line return
 * module_unknown, as a PAM module without pam_sm_chauthtok() does. The 1.1
 * plugin's admin actions are an administrator's alone. */
static void test_password_unknown(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct latch_req *req = NULL;
        struct plugin_line *l = NULL;
        const struct latch_host *host;
        struct tp tp;
        void *dl;

        assert_int_equal(latch_req_new("passwd", "svc", "alice", NULL, NULL, &req), 0);
        assert_int_equal(plugin_line_open(h, "tp_v11", 0, NULL, &l, NULL), 0);
        int *trap = tp_sym("v11", "tp11_trap_calls", &dl);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK), LATCH_MODULE_UNKNOWN);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_UPDATE_AUTHTOK), LATCH_MODULE_UNKNOWN);
        assert_int_equal(*trap, 0);
        assert_int_equal(plugin_line_call(l, STACK_AUTH, req, 0), LATCH_SUCCESS);
        dlclose(dl);

        /* Its admin entry serves administrators only: it cannot see
         * latch_admin.self, and would take a user's call for theirs. */
        int *admin_calls = tp_sym("v11", "tp11_admin_calls", &dl);
        json_t *args = json_pack("{s:s}", "user", "alice"), *answer = NULL;
        char *why = NULL;
        assert_true(plugin_line_has_admin(l));
        assert_int_equal(plugin_line_admin(l, "unlock", args, true, true, &answer, &why), -EPERM);
        assert_null(answer);
        assert_non_null(strstr(why, "(ABI 1.1) takes no self-service calls"));
        free(why);
        assert_int_equal(*admin_calls, 0);
        assert_int_equal(plugin_line_admin(l, "unlock", args, false, false, &answer, &why), 0);
        assert_string_equal(json_string_value(json_object_get(answer, "did")), "unlock");
        assert_int_equal(*admin_calls, 1);
        plugin_admin_answer_free(answer);
        json_decref(args);
        dlclose(dl);
        plugin_line_close(l);

        assert_int_equal(plugin_line_open(h, "tp_v10", 0, NULL, &l, NULL), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK), LATCH_MODULE_UNKNOWN);
        /* No password was asked for on the 1.0 plugin's behalf. */
        assert_false(latch_req_challenge(req));
        plugin_line_close(l);

        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        assert_int_equal(plugin_line_call(l, STACK_PASSWORD, req, LATCH_PRELIM_CHECK), LATCH_MODULE_UNKNOWN);
        /* set_item only inside a call, only for the two password items. */
        tp_get(&tp);
        host = *tp.host;
        assert_true(host->size >= LATCH_HOST_SIZE_FOR(set_item));
        assert_int_equal(host->set_item(req, LATCH_ITEM_OLDPASSWORD, "x"), -ENOTSUP);
        assert_null(host->item(req, LATCH_ITEM_OLDPASSWORD));
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_OLDPASSWORD, "cur"), 0);
        assert_string_equal(host->item(req, LATCH_ITEM_OLDPASSWORD), "cur");
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_OLDPASSWORD, NULL), 0);
        assert_null(host->item(req, LATCH_ITEM_OLDPASSWORD));
        assert_int_equal(latch_req_set_item(req, LATCH_ITEM_REMOTE, "x"), -EINVAL);
        assert_string_equal(host->item(req, LATCH_ITEM_OP), "passwd");
        tp_put(&tp);
        plugin_line_close(l);

        latch_req_free(req);
        plugin_host_free(h);
}

static int64_t fixed_clock(void *userdata) {
        return *(int64_t *) userdata;
}

static void test_clock(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct plugin_line *l = NULL;
        int64_t t = 1234567890;
        struct tp tp;

        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        tp_get(&tp);

        plugin_host_set_clock(h, fixed_clock, &t);
        assert_int_equal((*tp.host)->now(*tp.ctx), 1234567890);
        t = 42;
        assert_int_equal((*tp.host)->now(*tp.ctx), 42);

        plugin_host_set_clock(h, NULL, NULL);
        /* The wall clock again: after this code was written, at least. */
        assert_true((*tp.host)->now(*tp.ctx) > 1700000000);

        tp_put(&tp);
        plugin_line_close(l);
        plugin_host_free(h);
}

static void assert_claims(struct latch_req *req, const char *expect) {
        _cleanup_free_ char *s = json_dumps(latch_req_claims(req), JSON_COMPACT | JSON_SORT_KEYS);
        assert_non_null(s);
        assert_string_equal(s, expect);
}

static void test_claims(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct latch_req *req = NULL;
        struct plugin_line *l = NULL;
        const struct latch_host *host;
        static const char *const registered[] = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"};
        char long_name[66];
        struct tp tp;

        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        tp_get(&tp);
        host = *tp.host;
        assert_int_equal(latch_req_new("login", "wiki", "alice", "pw", NULL, &req), 0);

        assert_claims(req, "{}");
        assert_int_equal(host->claim_set_string(req, "email", "alice@example.org"), 0);
        assert_int_equal(host->claim_append_string(req, "groups", "staff"), 0);
        assert_int_equal(host->claim_append_string(req, "groups", "wheel"), 0);
        assert_int_equal(host->claim_set_string(req, "urn:x-latch:dept.name_1-a", "ops"), 0);
        assert_claims(req,
                      "{\"email\":\"alice@example.org\",\"groups\":[\"staff\",\"wheel\"],"
                      "\"urn:x-latch:dept.name_1-a\":\"ops\"}");

        /* Replacing. */
        assert_int_equal(host->claim_set_string(req, "email", "a@example.org"), 0);

        for (size_t i = 0; i < ELEMENTSOF(registered); i++) {
                assert_int_equal(host->claim_set_string(req, registered[i], "x"), -EPERM);
                assert_int_equal(host->claim_append_string(req, registered[i], "x"), -EPERM);
        }

        memset(long_name, 'a', 65);
        long_name[65] = '\0';
        assert_int_equal(host->claim_set_string(req, long_name, "x"), -EINVAL);
        long_name[64] = '\0';
        assert_int_equal(host->claim_set_string(req, long_name, "x"), 0);
        assert_int_equal(json_object_del(latch_req_claims(req), long_name), 0);

        assert_int_equal(host->claim_set_string(req, "", "x"), -EINVAL);
        assert_int_equal(host->claim_set_string(req, "a b", "x"), -EINVAL);
        assert_int_equal(host->claim_set_string(req, "a/b", "x"), -EINVAL);
        assert_int_equal(host->claim_set_string(req, NULL, "x"), -EINVAL);
        assert_int_equal(host->claim_set_string(req, "n", NULL), -EINVAL);
        assert_int_equal(host->claim_set_string(req, "n", "\xff\xfe"), -EINVAL); /* not UTF-8 */
        /* Appending to a string claim would change its type. */
        assert_int_equal(host->claim_append_string(req, "email", "x"), -EINVAL);

        assert_claims(req,
                      "{\"email\":\"a@example.org\",\"groups\":[\"staff\",\"wheel\"],"
                      "\"urn:x-latch:dept.name_1-a\":\"ops\"}");

        latch_req_free(req);
        tp_put(&tp);
        plugin_line_close(l);
        plugin_host_free(h);
}

struct claim_thread {
        const struct latch_host *host;
        struct latch_req *req;
        int id;
};

static void *claim_thread(void *p) {
        struct claim_thread *c = p;
        char v[32];

        for (int i = 0; i < 100; i++) {
                snprintf(v, sizeof(v), "g%d-%d", c->id, i);
                if (c->host->claim_append_string(c->req, "groups", v) < 0)
                        return (void *) 1;
                snprintf(v, sizeof(v), "c%d", c->id);
                if (c->host->claim_set_string(c->req, v, "x") < 0)
                        return (void *) 1;
        }
        return NULL;
}

static void test_claims_threads(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct latch_req *req = NULL;
        struct plugin_line *l = NULL;
        struct claim_thread c[8];
        pthread_t th[8];
        struct tp tp;

        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        tp_get(&tp);
        assert_int_equal(latch_req_new("login", "wiki", "alice", "pw", NULL, &req), 0);

        for (int i = 0; i < 8; i++) {
                c[i] = (struct claim_thread){.host = *tp.host, .req = req, .id = i};
                assert_int_equal(pthread_create(&th[i], NULL, claim_thread, &c[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
                void *ret;
                assert_int_equal(pthread_join(th[i], &ret), 0);
                assert_null(ret);
        }

        assert_int_equal(json_array_size(json_object_get(latch_req_claims(req), "groups")), 800);
        assert_int_equal(json_object_size(latch_req_claims(req)), 9);

        latch_req_free(req);
        tp_put(&tp);
        plugin_line_close(l);
        plugin_host_free(h);
}

/* ---- kv ---- */

static int kv_set_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        const char *v = userdata;
        size_t n = strlen(v);

        if (n > *newlen)
                return -ENOBUFS;
        memcpy(newbuf, v, n);
        *newlen = n;
        return 1;
}

static int kv_append_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        if (oldlen + 1 > *newlen)
                return -ENOBUFS;
        if (old)
                memcpy(newbuf, old, oldlen);
        ((char *) newbuf)[oldlen] = 'x';
        *newlen = oldlen + 1;
        return 1;
}

static int kv_delete_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        return 2;
}

static int kv_keep_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        return 0;
}

static int kv_fail_cb(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        return -EBADMSG;
}

static void test_kv_store(void **unused) {
        _cleanup_free_ char *dir = make_state_dir();
        struct plugin_host *h;
        struct plugin_line *l = NULL;
        const struct latch_host *host;
        struct latch_ctx *ctx;
        char buf[LATCH_KV_VALUE_MAX], key[LATCH_KV_KEY_MAX + 1];
        size_t len;
        store *st = NULL;
        struct tp tp;

        assert_int_equal(store_open(dir, &st), 0);
        h = host_new(st);
        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        tp_get(&tp);
        host = *tp.host;
        ctx = *tp.ctx;

        len = sizeof(buf);
        assert_int_equal(host->kv_get(ctx, "alice", 5, buf, &len), -ENOENT);

        assert_int_equal(host->kv_update(ctx, "alice", 5, kv_set_cb, (void *) "hello"), 0);
        len = sizeof(buf);
        assert_int_equal(host->kv_get(ctx, "alice", 5, buf, &len), 0);
        assert_int_equal(len, 5);
        assert_memory_equal(buf, "hello", 5);

        /* Too small a buffer: the size needed comes back. */
        len = 2;
        assert_int_equal(host->kv_get(ctx, "alice", 5, buf, &len), -ENOBUFS);
        assert_int_equal(len, 5);

        /* The callback sees the old value. */
        assert_int_equal(host->kv_update(ctx, "alice", 5, kv_append_cb, NULL), 0);
        len = sizeof(buf);
        assert_int_equal(host->kv_get(ctx, "alice", 5, buf, &len), 0);
        assert_int_equal(len, 6);
        assert_memory_equal(buf, "hellox", 6);

        /* Keep, errors, delete. */
        assert_int_equal(host->kv_update(ctx, "alice", 5, kv_keep_cb, NULL), 0);
        assert_int_equal(host->kv_update(ctx, "alice", 5, kv_fail_cb, NULL), -EBADMSG);
        len = sizeof(buf);
        assert_int_equal(host->kv_get(ctx, "alice", 5, buf, &len), 0);
        assert_int_equal(len, 6);

        /* The namespace is the plugin's name. */
        len = sizeof(buf);
        assert_int_equal(store_kv_get(st, "tp_good", "alice", 5, buf, &len), 0);
        assert_int_equal(len, 6);
        len = sizeof(buf);
        assert_int_equal(store_kv_get(st, "faillock", "alice", 5, buf, &len), -ENOENT);

        assert_int_equal(host->kv_update(ctx, "alice", 5, kv_delete_cb, NULL), 0);
        len = sizeof(buf);
        assert_int_equal(host->kv_get(ctx, "alice", 5, buf, &len), -ENOENT);

        /* Keys: 1..LATCH_KV_KEY_MAX bytes, any bytes. */
        memset(key, 'k', sizeof(key));
        assert_int_equal(host->kv_update(ctx, key, LATCH_KV_KEY_MAX, kv_set_cb, (void *) "v"), 0);
        len = sizeof(buf);
        assert_int_equal(host->kv_get(ctx, key, LATCH_KV_KEY_MAX, buf, &len), 0);
        assert_int_equal(host->kv_update(ctx, key, LATCH_KV_KEY_MAX + 1, kv_set_cb, (void *) "v"), -EINVAL);
        len = sizeof(buf);
        assert_int_equal(host->kv_get(ctx, key, LATCH_KV_KEY_MAX + 1, buf, &len), -EINVAL);
        assert_int_equal(host->kv_update(ctx, key, 0, kv_set_cb, (void *) "v"), -EINVAL);
        assert_int_equal(host->kv_update(ctx, "a\0b", 3, kv_set_cb, (void *) "nul"), 0);
        len = sizeof(buf);
        assert_int_equal(host->kv_get(ctx, "a\0b", 3, buf, &len), 0);
        assert_int_equal(len, 3);
        assert_memory_equal(buf, "nul", 3);

        tp_put(&tp);
        plugin_line_close(l);
        plugin_host_free(h);
        store_close(st);
        remove_dir(TAKE_PTR(dir));
}

static void test_kv_without_store(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct plugin_line *l = NULL;
        char buf[8];
        size_t len = sizeof(buf);
        struct tp tp;

        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        tp_get(&tp);
        assert_int_equal((*tp.host)->kv_get(*tp.ctx, "alice", 5, buf, &len), -ENOTSUP);
        assert_int_equal((*tp.host)->kv_update(*tp.ctx, "alice", 5, kv_set_cb, (void *) "x"), -ENOTSUP);
        tp_put(&tp);
        plugin_line_close(l);
        plugin_host_free(h);
}

/* ---- log ---- */

/* Runs fn with stderr sent to a file; returns what was written. */
static char *capture_stderr(void (*fn)(void *), void *userdata) {
        char path[] = "/tmp/latch-test-stderr-XXXXXX";
        int fd, saved;
        FILE *f;
        char *buf;
        long n;

        fd = mkostemp(path, O_CLOEXEC);
        assert_true(fd >= 0);
        unlink(path);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);

        fn(userdata);

        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);

        f = fdopen(fd, "r");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        rewind(f);
        buf = calloc(1, (size_t) n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        return buf;
}

struct log_case {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        struct latch_req *req;
};

static void log_some(void *p) {
        struct log_case *c = p;

        c->host->log(c->ctx, NULL, LATCH_LOG_WARNING, "plain line %d", 1);
        c->host->log(c->ctx, c->req, LATCH_LOG_NOTICE, "about the request %s", "now");
}

static void test_log(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct plugin_line *l = NULL;
        struct log_case c;
        _cleanup_free_ char *out = NULL;
        struct tp tp;

        log_open(true);
        log_set_max_priority(LOG_DEBUG);

        assert_int_equal(plugin_line_open(h, "tp_good", 0, NULL, &l, NULL), 0);
        tp_get(&tp);
        c.host = *tp.host;
        c.ctx = *tp.ctx;
        assert_int_equal(latch_req_new("login", "wiki", "alice", "hunter2-secret", "192.0.2.7", &c.req), 0);

        out = capture_stderr(log_some, &c);
        assert_non_null(strstr(out, "tp_good: plain line 1"));
        assert_non_null(strstr(out, "about the request now"));
        assert_non_null(strstr(out, "wiki"));
        assert_non_null(strstr(out, "alice"));
        assert_null(strstr(out, "hunter2-secret"));

        latch_req_free(c.req);
        tp_put(&tp);
        plugin_line_close(l);
        plugin_host_free(h);
}

struct open_case {
        struct plugin_host *h;
        int r;
        char *err;
};

static void open_failing(void *p) {
        struct open_case *c = p;
        struct plugin_line *l = NULL;

        c->r = plugin_line_open(c->h, "tp_good", 1, (const char *const[]){"fail"}, &l, &c->err);
}

static void test_open_error_not_logged(void **unused) {
        struct open_case c = {.h = host_new(NULL)};
        _cleanup_free_ char *out = NULL;

        log_open(true);
        log_set_max_priority(LOG_DEBUG);

        /* The reason reaches the caller, who logs it once; it is not also
         * logged by the host. */
        out = capture_stderr(open_failing, &c);
        assert_int_equal(c.r, -EINVAL);
        assert_non_null(strstr(c.err, "told to fail"));
        assert_null(strstr(out, "told to fail"));

        free(c.err);
        plugin_host_free(c.h);
}

struct open_thread {
        struct plugin_host *h;
        struct plugin_line *l;
        int r;
};

static void *open_thread_run(void *p) {
        struct open_thread *o = p;
        o->r = plugin_line_open(o->h, "tp_good", 0, NULL, &o->l, NULL);
        return NULL;
}

static void test_parallel_open(void **unused) {
        struct plugin_host *h = host_new(NULL);
        struct open_thread o[8];
        pthread_t th[8];
        struct tp tp;

        /* NULL host: refused, nothing touched. */
        struct plugin_line *l = NULL;
        assert_int_equal(plugin_line_open(NULL, "tp_good", 0, NULL, &l, NULL), -EINVAL);
        assert_null(l);

        for (int i = 0; i < 8; i++) {
                o[i] = (struct open_thread){.h = h};
                assert_int_equal(pthread_create(&th[i], NULL, open_thread_run, &o[i]), 0);
        }
        for (int i = 0; i < 8; i++) {
                assert_int_equal(pthread_join(th[i], NULL), 0);
                assert_int_equal(o[i].r, 0);
        }

        /* Loaded once, whatever the race. */
        tp_get(&tp);
        assert_int_equal(*tp.entry_calls, 1);
        assert_int_equal(*tp.open_lines, 8);
        tp_put(&tp);

        for (int i = 0; i < 8; i++)
                plugin_line_close(o[i].l);
        plugin_host_free(h);
}

int main(int argc, char *argv[]) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_shipped_plugins_load),
                cmocka_unit_test(test_shipped_plugins_check_host),
                cmocka_unit_test(test_bare_name_and_loaded_once),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_bad_names),
                cmocka_unit_test(test_abi_major_refused),
                cmocka_unit_test(test_newer_minor_accepted),
                cmocka_unit_test(test_broken_plugins_refused),
                cmocka_unit_test(test_open_failure_message),
                cmocka_unit_test(test_results),
                cmocka_unit_test(test_items),
                cmocka_unit_test(test_abi10_plugin),
                cmocka_unit_test(test_conversation),
                cmocka_unit_test(test_prompt_messages),
                cmocka_unit_test(test_password_change),
                cmocka_unit_test(test_password_unknown),
                cmocka_unit_test(test_clock),
                cmocka_unit_test(test_claims),
                cmocka_unit_test(test_claims_threads),
                cmocka_unit_test(test_kv_store),
                cmocka_unit_test(test_kv_without_store),
                cmocka_unit_test(test_log),
                cmocka_unit_test(test_open_error_not_logged),
                cmocka_unit_test(test_parallel_open),
        };

        if (argc < 2) {
                fprintf(stderr, "usage: %s TEST_PLUGIN_DIR [NAME=PATH...]\n", argv[0]);
                return 2;
        }
        tp_dir = argv[1];
        shipped = argv + 2;
        n_shipped = argc - 2;

        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
