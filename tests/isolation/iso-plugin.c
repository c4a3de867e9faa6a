/* SPDX-License-Identifier: MIT */

/*
 * Test plugins for isolation, one source built four ways:
 *
 *   crash  auth, and password() in the update pass, dereference NULL,
 *          unless the user is "ok"
 *   hang   auth sleeps forever, unless the user is "ok"
 *   slow   auth sleeps 200 ms
 *   echo   auth succeeds and reports what it sees as claims: "pid" (the
 *          process it runs in), "fds" (every fd open in that process),
 *          "password_ok" ("yes" when the password is "secret"), "now"
 *          (host->now()), "args" (the line's arguments) and "groups"
 *          (appended twice); it logs a line per call and per outcome.
 *          open() refuses, logging why, when an argument is "fail".
 *          Users "asker..." are asked a code (below); the user "say" gets
 *          its password posted as an info prompt (LATCH_INCOMPLETE when
 *          the host took it, LATCH_CONV_ERR when it refused it).
 *          password() (ABI 1.2) changes "old-pw": the preliminary pass
 *          asks for the current password unless LATCH_ITEM_OLDPASSWORD is
 *          set, and sets it; the update pass asks for the new one twice
 *          unless LATCH_ITEM_PASSWORD is set, sets it and clears
 *          LATCH_ITEM_OLDPASSWORD. Each call appends its flags to the
 *          "flags" claim and says in "same_worker" whether a continuation
 *          reached the process that asked.
 *
 * Every variant but echo adds the "pid" claim when it answers.
 */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <latch/plugin.h>

static const struct latch_host *host;

struct state {
        struct latch_ctx *ctx;
        int argc;
        char **argv;
};

static void claim_pid(struct latch_req *req) {
        char pid[32];
        snprintf(pid, sizeof(pid), "%d", (int) getpid());
        host->claim_set_string(req, "pid", pid);
}

static int iso_open(const struct latch_host *h, struct latch_ctx *ctx, int argc, const char *const *argv,
                    void **ret_state) {
        struct state *s;

        for (int i = 0; i < argc; i++)
                if (strcmp(argv[i], "fail") == 0) {
                        h->log(ctx, NULL, LATCH_LOG_ERR, "refusing to open, as asked");
                        return -EINVAL;
                }
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->ctx = ctx;
        s->argc = argc;
        s->argv = calloc((size_t) argc + 1, sizeof(char *));
        for (int i = 0; s->argv && i < argc; i++)
                s->argv[i] = strdup(argv[i]);
        h->log(ctx, NULL, LATCH_LOG_INFO, "opened with %d argument(s)", argc);
        *ret_state = s;
        return 0;
}

static void iso_close(void *state) {
        struct state *s = state;
        if (!s)
                return;
        for (int i = 0; s->argv && i < s->argc; i++)
                free(s->argv[i]);
        free(s->argv);
        free(s);
}

static __attribute__((unused)) int user_is_ok(struct latch_req *req) {
        const char *user = host->item(req, LATCH_ITEM_USER);
        return user && strcmp(user, "ok") == 0;
}

#if defined(ISO_CRASH)
/* A real SIGSEGV, not UBSan's report of one (the tests read latchd's log,
 * where a worker's stderr lands, for sanitizer reports). */
__attribute__((no_sanitize("undefined"))) static int iso_auth(void *state, struct latch_req *req) {
        if (!user_is_ok(req)) {
                volatile int *p = NULL;
                *p = 1;
        }
        claim_pid(req);
        return LATCH_SUCCESS;
}

/* The update pass of a password change dies, as after changing the
 * password and before answering. */
__attribute__((no_sanitize("undefined"))) static int iso_password(void *state, struct latch_req *req, int flags) {
        if ((flags & LATCH_UPDATE_AUTHTOK) && !user_is_ok(req)) {
                volatile int *p = NULL;
                *p = 1;
        }
        return LATCH_SUCCESS;
}
#define ISO_NAME "crash"
#elif defined(ISO_HANG)
static int iso_auth(void *state, struct latch_req *req) {
        while (!user_is_ok(req))
                pause();
        claim_pid(req);
        return LATCH_SUCCESS;
}
#define ISO_NAME "hang"
#elif defined(ISO_SLOW)
static int iso_auth(void *state, struct latch_req *req) {
        struct timespec ts = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        claim_pid(req);
        return LATCH_SUCCESS;
}
#define ISO_NAME "slow"
#elif defined(ISO_ECHO)
static int iso_auth(void *state, struct latch_req *req) {
        struct state *s = state;
        const char *pw = host->item(req, LATCH_ITEM_PASSWORD);
        char buf[32];
        DIR *d;

        /* ABI 1.1: "asker..." is asked a code; the request's slot (which must
         * still be in this process) holds the pid that asked. */
        if (strcmp(host->item(req, LATCH_ITEM_USER), "say") == 0)
                return host->prompt(req, LATCH_PROMPT_INFO, pw ?: "") == 0 ? LATCH_INCOMPLETE : LATCH_CONV_ERR;
        if (strncmp(host->item(req, LATCH_ITEM_USER), "asker", 5) == 0) {
                pid_t *asked = host->get_data(req);
                if (!asked) {
                        asked = malloc(sizeof(*asked));
                        if (!asked || host->set_data(req, asked, free) < 0)
                                return LATCH_BUF_ERR;
                        *asked = getpid();
                        if (host->prompt(req, LATCH_PROMPT_SECRET, "Code:") != 0)
                                return LATCH_CONV_ERR;
                        return LATCH_INCOMPLETE;
                }
                claim_pid(req);
                host->claim_set_string(req, "same_worker", *asked == getpid() ? "yes" : "no");
                host->claim_set_string(req, "password", host->item(req, LATCH_ITEM_PASSWORD) ?: "(none)");
                return host->answer(req, 0) && strcmp(host->answer(req, 0), "4242") == 0 ? LATCH_SUCCESS
                                                                                        : LATCH_AUTH_ERR;
        }

        claim_pid(req);
        d = opendir("/proc/self/fd");
        if (d) {
                struct dirent *e;
                while ((e = readdir(d)))
                        if (e->d_name[0] != '.' && atoi(e->d_name) != dirfd(d))
                                host->claim_append_string(req, "fds", e->d_name);
                closedir(d);
        }
        host->claim_set_string(req, "password_ok", pw && strcmp(pw, "secret") == 0 ? "yes" : "no");
        snprintf(buf, sizeof(buf), "%lld", (long long) host->now(s->ctx));
        host->claim_set_string(req, "now", buf);
        for (int i = 0; i < s->argc; i++)
                host->claim_append_string(req, "args", s->argv[i]);
        host->claim_append_string(req, "groups", "g1");
        host->claim_append_string(req, "groups", "g2");
        host->log(s->ctx, req, LATCH_LOG_NOTICE, "hello from pid %d", (int) getpid());
        return LATCH_SUCCESS;
}

/* The process that posted the prompts of this request's pending call. */
static int same_worker_claim(struct latch_req *req) {
        pid_t *asked = host->get_data(req);

        if (asked) {
                host->claim_set_string(req, "same_worker", *asked == getpid() ? "yes" : "no");
                (void) host->set_data(req, NULL, NULL);
        }
        return 0;
}

static int ask(struct latch_req *req, const char *m1, const char *m2) {
        pid_t *asked = malloc(sizeof(*asked));

        if (!asked || host->set_data(req, asked, free) < 0) {
                free(asked);
                return LATCH_BUF_ERR;
        }
        *asked = getpid();
        if (host->prompt(req, LATCH_PROMPT_SECRET, m1) != 0 || (m2 && host->prompt(req, LATCH_PROMPT_SECRET, m2) != 1))
                return LATCH_CONV_ERR;
        return LATCH_INCOMPLETE;
}

static int iso_password(void *state, struct latch_req *req, int flags) {
        const char *old = host->item(req, LATCH_ITEM_OLDPASSWORD), *new;
        char buf[32];

        snprintf(buf, sizeof(buf), "%d", flags);
        host->claim_append_string(req, "flags", buf);
        same_worker_claim(req);

        if (flags & LATCH_PRELIM_CHECK) {
                if (!old) {
                        const char *a = host->answer(req, 0);
                        if (!a)
                                return ask(req, "Current password:", NULL);
                        if (host->set_item(req, LATCH_ITEM_OLDPASSWORD, a) < 0)
                                return LATCH_BUF_ERR;
                        old = host->item(req, LATCH_ITEM_OLDPASSWORD);
                }
                return strcmp(old, "old-pw") == 0 ? LATCH_SUCCESS : LATCH_AUTH_ERR;
        }
        if (!old || strcmp(old, "old-pw") != 0)
                return LATCH_SYSTEM_ERR;
        new = host->item(req, LATCH_ITEM_PASSWORD);
        if (!new) {
                const char *a = host->answer(req, 0), *b = host->answer(req, 1);
                if (!a)
                        return ask(req, "New password:", "Retype new password:");
                if (!b || strcmp(a, b) != 0)
                        return LATCH_AUTHTOK_ERR;
                if (host->set_item(req, LATCH_ITEM_PASSWORD, a) < 0)
                        return LATCH_BUF_ERR;
        }
        /* Done with the current password: a cleared item travels too. */
        return host->set_item(req, LATCH_ITEM_OLDPASSWORD, NULL) < 0 ? LATCH_BUF_ERR : LATCH_SUCCESS;
}

static void iso_outcome(void *state, struct latch_req *req, int result) {
        struct state *s = state;
        host->log(s->ctx, req, LATCH_LOG_INFO, "outcome %d", result);
}
#define ISO_NAME "echo"
#else
#error "build with one of ISO_CRASH, ISO_HANG, ISO_SLOW, ISO_ECHO"
#endif

static int iso_account(void *state, struct latch_req *req) { return LATCH_SUCCESS; }

static const struct latch_plugin plugin = {
        LATCH_PLUGIN_HEADER,
        .name = ISO_NAME,
        .open = iso_open,
        .close = iso_close,
        .auth = iso_auth,
        .account = iso_account,
#ifdef ISO_ECHO
        .outcome = iso_outcome,
#endif
#if defined(ISO_ECHO) || defined(ISO_CRASH)
        .password = iso_password,
#endif
};

LATCH_PLUGIN_EXPORT const struct latch_plugin *latch_plugin_entry(const struct latch_host *h) {
        if (!latch_host_compatible(h, LATCH_HOST_SIZE_FOR(set_item)))
                return NULL;
        host = h;
        return &plugin;
}
