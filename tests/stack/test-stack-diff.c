/* SPDX-License-Identifier: MIT */
/*
 * The differential test: random stacks evaluated by the real Linux-PAM and by
 * the latch engine must give the same result, for auth, for account and for
 * password changes (pam_chauthtok() against stack_chauthtok_step(): a
 * preliminary pass over the whole stack, then the update pass if it
 * succeeded; each line has a result per pass).
 *
 * Each random stack (1-6 lines, random controls including [value=action]
 * maps with jumps, "default" and odd spacing, include/substack of generated
 * sub-files, "-TYPE" lines whose module is missing, ignored session lines)
 * is written twice: as PAM service files using pam_debug.so with
 * auth=RESULT acct=RESULT prechauthtok=RESULT chauthtok=RESULT, and as latch
 * service files using a fake "debug" plugin with the same semantics
 * (debug-ops.h). libpam runs them in this
 * process through pam_start_confdir() on a private directory (one process
 * evaluates all stacks, with no file written outside it); a subset also goes
 * through pamtester(1) (authenticate, acct_mgmt, chauthtok) with files in
 * /etc/pam.d (root only; the files carry a unique prefix and are removed at
 * exit, on failure and on signals).
 *
 * Logins: each stack is also run as login(1) runs PAM (pam_authenticate(),
 * pam_acct_mgmt(), and pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK) when that
 * answered PAM_NEW_AUTHTOK_REQD, on one handle) against one
 * stack_authenticate_step() with change_expired; two stacks in five are
 * "login-like" (a line of each type, results mostly success, account lines
 * often new_authtok_reqd) so that expired passwords are common.
 *
 * libpam 1.5's pam_chauthtok() treats no result of the preliminary pass
 * specially: each pass is an ordinary _pam_dispatch() (no frozen chain, as
 * pam_setcred() has), the update pass runs only when the first returned
 * PAM_SUCCESS, and its result is the answer. Mutating the engine (no update
 * pass; an update pass after a failed preliminary one; the preliminary pass
 * run again when a waiting update pass resumes) makes this test report
 * mismatches; so does a login that does not go on through the password
 * stack.
 *
 * Conversations: with STACK_DIFF_ASKER naming tests/stack/pam_asker.so, a
 * third of the module lines are "askers" instead, which return
 * PAM_INCOMPLETE before deciding (pam_asker.c; "asker" in debug-ops.h).
 * libpam's application calls pam_authenticate()/pam_acct_mgmt()/
 * pam_chauthtok() again while they answer PAM_INCOMPLETE, and libpam resumes
 * at the module that returned it with its saved state (pamh->former, and
 * former.update for the pass of pam_chauthtok()); latch runs
 * stack_run_resumable() (stack_chauthtok_step()) again the same way. At most ROUNDS_MAX rounds each (a pam_debug line
 * returning incomplete would ask for ever), and the final results must be
 * equal. Stacks with askers skip the pamtester subset (pamtester gives up
 * on PAM_INCOMPLETE).
 *
 * Environment: STACK_DIFF_SEED (default 20261123), STACK_DIFF_COUNT (default
 * 3000), STACK_DIFF_PAMTESTER (default 60; 0 disables), STACK_DIFF_ASKER.
 * Exit 77 when libpam or pam_debug.so is unusable.
 */

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <security/pam_appl.h>

#include "debug-ops.h"
#include "stack.h"

#define SKIP 77

/* ---- PRNG (xorshift64*): deterministic from the seed ---- */

static uint64_t rng_state;

static uint64_t rng(void) {
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * UINT64_C(2685821657736338717);
}

static unsigned pick(unsigned n) {
        return (unsigned) (rng() % n);
}

static bool chance(unsigned percent) {
        return pick(100) < percent;
}

/* ---- the stack model ---- */

enum { KIND_MODULE, KIND_MISSING, KIND_INCLUDE, KIND_SUBSTACK };

struct gline {
        const char *type;
        int kind;
        int target; /* sub-file index for include/substack */
        char control[512];
        char args[256];
        bool asker;
};

/* tests/stack/pam_asker.so, or NULL: no askers. */
static const char *asker_path;
static unsigned asker_ids;
#define ROUNDS_MAX 8

#define N_FILES 3 /* 0: the service, 1 and 2: sub-files */
#define LINES_MAX 6 /* per file */

struct gfile {
        struct gline lines[LINES_MAX];
        int n;
};

/* done, ok and reset are the actions with the subtlest rules: more of them. */
static const char *const actions[] = { "ignore", "ok", "done", "bad", "die", "reset",
                                       "done", "reset", "ok" };
#define N_ACTIONS (sizeof(actions) / sizeof(actions[0]))

/* Results a stack line returns: mostly the interesting ones. */
static const char *random_result(void) {
        static const char *const common[] = {
                "success", "success", "success", "auth_err", "perm_denied", "user_unknown",
                "ignore", "ignore", "new_authtok_reqd", "acct_expired", "authinfo_unavail",
                "maxtries", "abort", "module_unknown", "authtok_err", "try_again",
        };
        if (chance(75))
                return common[pick(sizeof(common) / sizeof(common[0]))];
        return stack_result_to_string((int) pick(_LATCH_RESULT_MAX));
}

static void random_bracket(char *buf, size_t size) {
        size_t n = 0;
        unsigned pairs = 1 + pick(5);

        n += (size_t) snprintf(buf + n, size - n, "[");
        for (unsigned i = 0; i < pairs; i++) {
                const char *value = chance(15) ? "default"
                                               : (chance(50) ? random_result()
                                                             : stack_result_to_string((int) pick(
                                                                       _LATCH_RESULT_MAX)));
                char action[16];
                const char *eq = chance(5) ? " = " : "=";

                if (chance(25))
                        snprintf(action, sizeof(action), "%u", chance(85) ? 1 + pick(3) : 4 + pick(6));
                else
                        snprintf(action, sizeof(action), "%s", actions[pick(N_ACTIONS)]);
                n += (size_t) snprintf(buf + n, size - n, "%s%s%s%s", i > 0 ? " " : "", value, eq,
                                       action);
        }
        snprintf(buf + n, size - n, "]");
}

/* The type most lines of the current stack get, so that each stack has a
 * long part of one type rather than three short ones. */
static const char *main_type, *other_type, *third_type;
/* A stack whose lines mostly succeed, and whose account lines often say the
 * password expired: logins that go on to change it. */
static bool login_like;
#define N_TYPES _STACK_TYPE_MAX

static void random_line(struct gline *l, int file) {
        static const char *const simple[] = { "required", "requisite", "sufficient", "optional" };
        static const char *const simple_odd[] = { "Required", "REQUISITE", "Sufficient", "[optional]" };
        unsigned t = pick(100);

        *l = (struct gline) {};
        l->type = t < 65 ? main_type : t < 88 ? other_type : t < 97 ? third_type : "session";

        if (file < N_FILES - 1 && chance(15)) {
                l->kind = chance(50) ? KIND_INCLUDE : KIND_SUBSTACK;
                l->target = file + 1 + (int) pick((unsigned) (N_FILES - 1 - file));
                snprintf(l->control, sizeof(l->control), "%s",
                         l->kind == KIND_INCLUDE ? "include" : "substack");
                return;
        }

        l->kind = chance(5) ? KIND_MISSING : KIND_MODULE;
        if (chance(45))
                random_bracket(l->control, sizeof(l->control));
        else
                snprintf(l->control, sizeof(l->control), "%s",
                         chance(10) ? simple_odd[pick(4)] : simple[pick(4)]);

        if (l->kind == KIND_MODULE) {
                size_t n = 0;

                if (asker_path && chance(33)) {
                        l->asker = true;
                        n += (size_t) snprintf(l->args + n, sizeof(l->args) - n, " id=%u", asker_ids++);
                }

                if (chance(10))
                        n += (size_t) snprintf(l->args + n, sizeof(l->args) - n, " [x y\\]z]");
                if (chance(90))
                        n += (size_t) snprintf(l->args + n, sizeof(l->args) - n, " auth=%s",
                                               login_like && chance(80) ? "success" : random_result());
                if (chance(90))
                        n += (size_t) snprintf(l->args + n, sizeof(l->args) - n, " acct=%s",
                                               login_like && chance(70) ? (chance(50) ? "new_authtok_reqd" : "success")
                                                                        : random_result());
                if (chance(90))
                        n += (size_t) snprintf(l->args + n, sizeof(l->args) - n, " prechauthtok=%s",
                                               login_like && chance(70) ? "success" : random_result());
                if (chance(90))
                        n += (size_t) snprintf(l->args + n, sizeof(l->args) - n, " chauthtok=%s",
                                               login_like && chance(70) ? "success" : random_result());
        }
}

static void random_stack(struct gfile files[N_FILES]) {
        static const char *const types[N_TYPES] = { "auth", "account", "password" };
        unsigned m = pick(N_TYPES), o = (m + 1 + pick(N_TYPES - 1)) % N_TYPES;

        login_like = chance(40);
        main_type = types[m];
        other_type = types[o];
        third_type = types[N_TYPES - m - o];
        for (int f = 0; f < N_FILES; f++) {
                files[f].n = 1 + (int) pick(f == 0 ? 6 : 5);
                if (login_like && f == 0 && files[f].n < N_TYPES)
                        files[f].n = N_TYPES;
                for (int i = 0; i < files[f].n; i++) {
                        random_line(&files[f].lines[i], f);
                        /* A login-like service has a line of each type. */
                        if (login_like && f == 0 && i < N_TYPES)
                                files[f].lines[i].type = types[i];
                }
        }
}

/* Writes file f of the stack, for PAM (pam == true) or for latch. `names`
 * are the file names to use for include targets, prefixed with `incdir`:
 * Debian's libpam 1.5.2 looks up a relative include in /etc/pam.d even under
 * pam_start_confdir(), so confdir stacks include by absolute path. */
static int write_file(const char *path, const struct gfile *gf, bool pam, const char *incdir,
                      const char *const names[N_FILES]) {
        FILE *out = fopen(path, "we");
        if (!out)
                return -errno;
        fprintf(out, "# generated\n");
        for (int i = 0; i < gf->n; i++) {
                const struct gline *l = &gf->lines[i];

                switch (l->kind) {
                case KIND_INCLUDE:
                case KIND_SUBSTACK:
                        fprintf(out, "%s %s %s%s\n", l->type, l->control, incdir,
                                names[l->target]);
                        break;
                case KIND_MISSING:
                        fprintf(out, "-%s %s %s\n", l->type, l->control,
                                pam ? "pam_latchtest_missing.so" : "missing");
                        break;
                default:
                        fprintf(out, "%s\t%s  %s%s\n", l->type, l->control,
                                pam ? (l->asker ? asker_path : "pam_debug.so") : (l->asker ? "asker" : "debug"),
                                l->args);
                }
        }
        if (fclose(out) < 0)
                return -errno;
        return 0;
}

static void print_stack(FILE *out, const struct gfile files[N_FILES]) {
        static const char *const names[N_FILES] = { "svc", "sub1", "sub2" };

        for (int f = 0; f < N_FILES; f++) {
                fprintf(out, "  --- %s\n", names[f]);
                for (int i = 0; i < files[f].n; i++) {
                        const struct gline *l = &files[f].lines[i];

                        if (l->kind == KIND_INCLUDE || l->kind == KIND_SUBSTACK)
                                fprintf(out, "  %s %s %s\n", l->type, l->control, names[l->target]);
                        else
                                fprintf(out, "  %s%s %s %s%s\n", l->kind == KIND_MISSING ? "-" : "",
                                        l->type, l->control,
                                        l->kind == KIND_MISSING ? "pam_latchtest_missing.so"
                                        : l->asker              ? "pam_asker.so"
                                                                : "pam_debug.so",
                                        l->args);
                }
        }
}

/* ---- libpam ---- */

static int null_conv(int n, const struct pam_message **msg, struct pam_response **resp,
                     void *data) {
        /* pam_debug only shows PAM_TEXT_INFO and never frees a response. */
        *resp = NULL;
        return PAM_SUCCESS;
}

static int pam_eval(const char *confdir, const char *service, enum stack_type type) {
        struct pam_conv conv = { null_conv, NULL };
        pam_handle_t *pamh = NULL;
        int r;

        r = pam_start_confdir(service, "latchtest", &conv, confdir, &pamh);
        if (r != PAM_SUCCESS)
                return -1000 - r;
        /* An application whose module asked calls again: libpam resumes. */
        for (int round = 0; round < ROUNDS_MAX; round++) {
                r = type == STACK_AUTH      ? pam_authenticate(pamh, PAM_SILENT)
                    : type == STACK_ACCOUNT ? pam_acct_mgmt(pamh, PAM_SILENT)
                                            : pam_chauthtok(pamh, PAM_SILENT);
                if (r != PAM_INCOMPLETE)
                        break;
        }
        pam_end(pamh, r);
        return r;
}

/* A login as login(1) or sshd runs it: pam_authenticate(), then
 * pam_acct_mgmt(), and when that answers PAM_NEW_AUTHTOK_REQD,
 * pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK), on one handle, each resumed
 * while it answers PAM_INCOMPLETE. *ret_expired tells whether the change
 * ran. */
static int pam_login(const char *confdir, const char *service, bool *ret_expired) {
        struct pam_conv conv = { null_conv, NULL };
        pam_handle_t *pamh = NULL;
        int r, step = 0;

        *ret_expired = false;
        r = pam_start_confdir(service, "latchtest", &conv, confdir, &pamh);
        if (r != PAM_SUCCESS)
                return -1000 - r;
        for (int round = 0; round < 3 * ROUNDS_MAX; round++) {
                r = step == 0   ? pam_authenticate(pamh, PAM_SILENT)
                    : step == 1 ? pam_acct_mgmt(pamh, PAM_SILENT)
                                : pam_chauthtok(pamh, PAM_SILENT | PAM_CHANGE_EXPIRED_AUTHTOK);
                if (r == PAM_INCOMPLETE)
                        continue;
                if (step == 0 && r == PAM_SUCCESS)
                        step = 1;
                else if (step == 1 && r == PAM_NEW_AUTHTOK_REQD) {
                        step = 2;
                        *ret_expired = true;
                } else
                        break;
        }
        pam_end(pamh, r);
        return r;
}

/* ---- pamtester, with files in /etc/pam.d ---- */

#define ETC_PAMD "/etc/pam.d"
static char etc_names[N_FILES][128];
static volatile sig_atomic_t etc_written;

static void etc_cleanup(void) {
        if (!etc_written)
                return;
        for (int f = 0; f < N_FILES; f++) {
                char path[1024];

                snprintf(path, sizeof(path), ETC_PAMD "/%s", etc_names[f]);
                (void) unlink(path);
        }
}

static void on_signal(int sig) {
        etc_cleanup();
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Removes files left by an earlier run that was killed hard. */
static void etc_remove_stale(void) {
        DIR *d = opendir(ETC_PAMD);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                long pid;
                char path[1024];

                if (sscanf(de->d_name, "latch-stacktest-%ld-", &pid) != 1)
                        continue;
                if (pid == (long) getpid() || kill((pid_t) pid, 0) == 0 || errno != ESRCH)
                        continue;
                snprintf(path, sizeof(path), ETC_PAMD "/%s", de->d_name);
                (void) unlink(path);
        }
        closedir(d);
}

static int pamtester_eval(const char *service, enum stack_type type) {
        char cmd[512], line[1024];
        int result = -2;
        FILE *p;

        snprintf(cmd, sizeof(cmd), "pamtester -v %s latchtest %s 2>&1 </dev/null", service,
                 type == STACK_AUTH ? "authenticate" : type == STACK_ACCOUNT ? "acct_mgmt" : "chauthtok");
        p = popen(cmd, "re");
        if (!p)
                return -3;
        while (fgets(line, sizeof(line), p)) {
                const char *msg;

                line[strcspn(line, "\n")] = '\0';
                if (strncmp(line, "pamtester: ", 11) != 0)
                        continue;
                msg = line + 11;
                if (strstr(msg, "successfully") || strstr(msg, "account management done")) {
                        result = PAM_SUCCESS;
                        continue;
                }
                for (int i = 0; i < _PAM_RETURN_VALUES; i++)
                        if (strcmp(msg, pam_strerror(NULL, i)) == 0) {
                                result = i;
                                break;
                        }
        }
        (void) pclose(p);
        return result;
}

/* ---- latch ---- */

static void diag_print(void *userdata, const char *file, unsigned line, const char *message) {
        fprintf(stderr, "  latch: %s:%u: %s\n", file, line, message);
}

static unsigned resumed[N_TYPES]; /* latch evaluations that resumed a stack */

/* The same login through stack_authenticate_step() with change_expired, on a
 * fresh load (the askers count their calls afresh, as on a new PAM handle). */
static int latch_login(const char *dir, bool *ret_expired) {
        struct services *s = NULL;
        struct stack_auth_state state = { .change_expired = true };
        const struct stack *st;
        int r;

        r = services_load_file(dir, "svc", &debug_ops, NULL, diag_print, NULL, &s);
        if (r < 0)
                return r;
        st = services_find(s, "svc");
        for (int round = 0; round < 3 * ROUNDS_MAX; round++) {
                r = stack_authenticate_step(st, NULL, &state);
                if (r != LATCH_INCOMPLETE)
                        break;
        }
        if (r == LATCH_INCOMPLETE)
                stack_authenticate_end(st, NULL, &state, LATCH_CONV_ERR);
        *ret_expired = state.type == STACK_PASSWORD;
        if (state.password_changed != (r == LATCH_SUCCESS && *ret_expired))
                r = -EBADE; /* the flag lies */
        services_free(s);
        return r;
}

static bool has_asker(const struct gfile files[N_FILES]) {
        for (int f = 0; f < N_FILES; f++)
                for (int i = 0; i < files[f].n; i++)
                        if (files[f].lines[i].asker)
                                return true;
        return false;
}

static int latch_eval(const char *dir, int results[N_TYPES], size_t sizes[N_TYPES]) {
        struct services *s = NULL;
        const struct stack *st;
        int r;

        r = services_load_file(dir, "svc", &debug_ops, NULL, diag_print, NULL, &s);
        if (r < 0)
                return r;
        st = services_find(s, "svc");
        if (!st) {
                services_free(s);
                return -ENOENT;
        }
        for (int t = 0; t < N_TYPES; t++) {
                struct stack_former former = {};
                struct stack_auth_state state = {};

                for (int round = 0; round < ROUNDS_MAX; round++) {
                        results[t] = t == STACK_PASSWORD ? stack_chauthtok_step(st, NULL, &state, 0)
                                                         : stack_run_resumable(st, (enum stack_type) t, NULL, &former);
                        if (results[t] != LATCH_INCOMPLETE)
                                break;
                        resumed[t]++;
                }
                if (results[t] == LATCH_INCOMPLETE && t == STACK_PASSWORD)
                        stack_authenticate_end(st, NULL, &state, LATCH_CONV_ERR);
                sizes[t] = stack_size(st, (enum stack_type) t);
        }
        services_free(s);
        return 0;
}

static const char *name_of(int r) {
        const char *n = stack_result_to_string(r);
        return n ? n : "?";
}

static int write_stack(const char *dir, const struct gfile files[N_FILES], bool pam,
                       const char *incdir, const char *const names[N_FILES]) {
        for (int f = 0; f < N_FILES; f++) {
                char path[512];
                int r;

                snprintf(path, sizeof(path), "%s/%s", dir, names[f]);
                r = write_file(path, &files[f], pam, incdir, names);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int sanity_check(const char *pamdir) {
        static const struct {
                const char *text;
                int auth, acct, password;
        } cases[] = {
                { "auth required pam_debug.so auth=auth_err\naccount required pam_debug.so acct=acct_expired\n"
                  "password required pam_debug.so prechauthtok=try_again chauthtok=authtok_err\n",
                  PAM_AUTH_ERR, PAM_ACCT_EXPIRED, PAM_TRY_AGAIN },
                { "auth required pam_debug.so\naccount required pam_debug.so\n"
                  "password required pam_debug.so chauthtok=authtok_err\n",
                  PAM_SUCCESS, PAM_SUCCESS, PAM_AUTHTOK_ERR },
                { "auth required pam_debug.so\naccount required pam_debug.so\npassword required pam_debug.so\n",
                  PAM_SUCCESS, PAM_SUCCESS, PAM_SUCCESS },
        };
        char path[512];

        snprintf(path, sizeof(path), "%s/svc", pamdir);
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                FILE *f = fopen(path, "we");
                if (!f)
                        return -errno;
                fputs(cases[i].text, f);
                fclose(f);
                int a = pam_eval(pamdir, "svc", STACK_AUTH), b = pam_eval(pamdir, "svc", STACK_ACCOUNT),
                    c = pam_eval(pamdir, "svc", STACK_PASSWORD);
                if (a != cases[i].auth || b != cases[i].acct || c != cases[i].password) {
                        fprintf(stderr, "libpam/pam_debug unusable here (got %d/%d/%d for case %zu)\n",
                                a, b, c, i);
                        return -ENOPKG;
                }
        }
        return 0;
}

/* Keeps pam_debug.so mapped, so that each pam_end() does not unload it and
 * each pam_start() map it again: most of the test's time otherwise. Where the
 * module lives does not matter for correctness, only for speed. */
static void keep_pam_debug_loaded(void) {
        static const char *const paths[] = {
                "/lib/x86_64-linux-gnu/security/pam_debug.so",
                "/usr/lib/x86_64-linux-gnu/security/pam_debug.so",
                "/lib/security/pam_debug.so",
                "/usr/lib/security/pam_debug.so",
                "/usr/lib64/security/pam_debug.so",
        };

        for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
                if (dlopen(paths[i], RTLD_NOW | RTLD_LOCAL))
                        return;
}

static void rm_rf(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                char path[512];

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                (void) unlink(path);
        }
        closedir(d);
        (void) rmdir(dir);
}

int main(void) {
        unsigned with_askers = 0;

        const char *e;
        uint64_t seed = 20261123;
        unsigned count = 3000, n_pamtester = 60;
        char tmp[] = "/tmp/latch-stackdiff-XXXXXX", pamdir[256], pamdir_slash[260], latchdir[256];
        static const char *const local_names[N_FILES] = { "svc", "sub1", "sub2" };
        const char *etc_name_ptrs[N_FILES];
        unsigned mismatches = 0, ran = 0, pamtester_ran = 0, nonempty[N_TYPES] = {}, pamtester_ran_type[N_TYPES] = {}, logins_expired = 0, logins_changed = 0, hist[N_TYPES][_LATCH_RESULT_MAX] = {};
        int r;

        if ((e = getenv("STACK_DIFF_SEED")))
                seed = strtoull(e, NULL, 0);
        if ((e = getenv("STACK_DIFF_COUNT")))
                count = (unsigned) strtoul(e, NULL, 0);
        if ((e = getenv("STACK_DIFF_ASKER")) && *e == '/')
                asker_path = e;
        if ((e = getenv("STACK_DIFF_PAMTESTER")))
                n_pamtester = (unsigned) strtoul(e, NULL, 0);
        rng_state = seed ? seed : 1;

        if (!mkdtemp(tmp)) {
                perror("mkdtemp");
                return 1;
        }
        snprintf(pamdir, sizeof(pamdir), "%s/pam", tmp);
        snprintf(pamdir_slash, sizeof(pamdir_slash), "%s/", pamdir);
        snprintf(latchdir, sizeof(latchdir), "%s/latch", tmp);
        if (mkdir(pamdir, 0700) < 0 || mkdir(latchdir, 0700) < 0) {
                perror("mkdir");
                return 1;
        }
        /* An empty "other" keeps libpam from complaining about its absence;
         * it adds no module, so an empty type still means "no modules". */
        {
                char path[512];
                snprintf(path, sizeof(path), "%s/other", pamdir);
                FILE *f = fopen(path, "we");
                if (f)
                        fclose(f);
        }

        r = sanity_check(pamdir);

        keep_pam_debug_loaded();
        if (r < 0) {
                rm_rf(pamdir);
                rm_rf(latchdir);
                rmdir(tmp);
                return SKIP;
        }

        if (geteuid() != 0 || system("command -v pamtester >/dev/null 2>&1") != 0) {
                fprintf(stderr, "not root or no pamtester: skipping the pamtester subset\n");
                n_pamtester = 0;
        }
        if (n_pamtester > 0) {
                etc_remove_stale();
                for (int f = 0; f < N_FILES; f++) {
                        snprintf(etc_names[f], sizeof(etc_names[f]), "latch-stacktest-%ld-%s",
                                 (long) getpid(), local_names[f]);
                        etc_name_ptrs[f] = etc_names[f];
                }
                atexit(etc_cleanup);
                signal(SIGINT, on_signal);
                signal(SIGTERM, on_signal);
                signal(SIGHUP, on_signal);
                signal(SIGABRT, on_signal);
                signal(SIGSEGV, on_signal);
        }

        for (unsigned n = 0; n < count; n++) {
                struct gfile files[N_FILES];
                int pam_r[N_TYPES], latch_r[N_TYPES];
                size_t sizes[N_TYPES];

                random_stack(files);
                if (write_stack(pamdir, files, true, pamdir_slash, local_names) < 0 ||
                    write_stack(latchdir, files, false, "", local_names) < 0) {
                        perror("write");
                        mismatches++;
                        break;
                }

                r = latch_eval(latchdir, latch_r, sizes);
                if (r < 0) {
                        fprintf(stderr, "stack %u: latch refused a valid stack: %s\n", n,
                                strerror(-r));
                        print_stack(stderr, files);
                        mismatches++;
                        continue;
                }
                for (int t = 0; t < N_TYPES; t++) {
                        pam_r[t] = pam_eval(pamdir, "svc", (enum stack_type) t);
                        if (pam_r[t] >= 0 && pam_r[t] < _LATCH_RESULT_MAX)
                                hist[t][pam_r[t]]++;
                        if (sizes[t] > 0)
                                nonempty[t]++;
                }
                ran++;

                /* A whole login, expired password included. */
                {
                        bool pam_expired = false, latch_expired = false;
                        int pl = pam_login(pamdir, "svc", &pam_expired), ll = latch_login(latchdir, &latch_expired);

                        logins_expired += pam_expired;
                        logins_changed += pam_expired && pl == PAM_SUCCESS;
                        if (pl != ll || pam_expired != latch_expired) {
                                mismatches++;
                                if (mismatches <= 10) {
                                        fprintf(stderr,
                                                "MISMATCH stack %u (seed %llu): login pam=%s%s latch=%s%s\n", n,
                                                (unsigned long long) seed, name_of(pl),
                                                pam_expired ? " (expired)" : "", ll < 0 ? strerror(-ll) : name_of(ll),
                                                latch_expired ? " (expired)" : "");
                                        print_stack(stderr, files);
                                }
                                continue;
                        }
                }

                if (pam_r[0] != latch_r[0] || pam_r[1] != latch_r[1] || pam_r[2] != latch_r[2]) {
                        mismatches++;
                        if (mismatches <= 10) {
                                fprintf(stderr,
                                        "MISMATCH stack %u (seed %llu): auth pam=%s latch=%s, "
                                        "account pam=%s latch=%s, password pam=%s latch=%s\n",
                                        n, (unsigned long long) seed, name_of(pam_r[0]),
                                        name_of(latch_r[0]), name_of(pam_r[1]), name_of(latch_r[1]),
                                        name_of(pam_r[2]), name_of(latch_r[2]));
                                print_stack(stderr, files);
                        }
                        continue;
                }

                /* The pamtester subset: real /etc/pam.d files, a real PAM
                 * application. Only the types that have modules: otherwise
                 * libpam would fall back to /etc/pam.d/other. */
                if (has_asker(files))
                        with_askers++;
                if (pamtester_ran < n_pamtester && n % 7 == 0 && !has_asker(files)) {
                        int pt[N_TYPES];
                        bool bad = false;

                        etc_written = 1;
                        if (write_stack(ETC_PAMD, files, true, "", etc_name_ptrs) < 0) {
                                perror("write " ETC_PAMD);
                                mismatches++;
                                break;
                        }
                        for (int t = 0; t < N_TYPES; t++) {
                                pt[t] = sizes[t] > 0 ? pamtester_eval(etc_names[0], (enum stack_type) t) : latch_r[t];
                                bad = bad || pt[t] != latch_r[t];
                                pamtester_ran_type[t] += sizes[t] > 0;
                        }
                        pamtester_ran++;
                        if (bad) {
                                mismatches++;
                                fprintf(stderr,
                                        "MISMATCH (pamtester) stack %u: auth pamtester=%d latch=%s, "
                                        "account pamtester=%d latch=%s, password pamtester=%d latch=%s\n",
                                        n, pt[0], name_of(latch_r[0]), pt[1], name_of(latch_r[1]), pt[2],
                                        name_of(latch_r[2]));
                                print_stack(stderr, files);
                        }
                }
        }

        etc_cleanup();
        etc_written = 0;
        rm_rf(pamdir);
        rm_rf(latchdir);
        rmdir(tmp);

        printf("differential test: seed %llu, %u stacks compared with libpam (auth, account and "
               "password), %u also through pamtester (%u auth, %u account, %u password); %u with auth "
               "modules, %u with account modules, %u with password modules; %u mismatches\n",
               (unsigned long long) seed, ran, pamtester_ran, pamtester_ran_type[0], pamtester_ran_type[1],
               pamtester_ran_type[2], nonempty[0], nonempty[1], nonempty[2], mismatches);
        printf("  logins (auth, account, then the password stack when the account stack answered "
               "new_authtok_reqd): %u expired, %u of them changed the password\n", logins_expired, logins_changed);
        printf("  conversations: %u stacks with modules that return incomplete before deciding; "
               "%u auth, %u account and %u password changes resumed\n", with_askers, resumed[0], resumed[1],
               resumed[2]);
        for (int t = 0; t < N_TYPES; t++) {
                printf("  %s results:", stack_type_to_string((enum stack_type) t));
                for (int i = 0; i < _LATCH_RESULT_MAX; i++)
                        if (hist[t][i])
                                printf(" %s=%u", name_of(i), hist[t][i]);
                printf("\n");
        }

        return mismatches == 0 && ran == count ? 0 : 1;
}
