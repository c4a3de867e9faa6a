/* SPDX-License-Identifier: MIT */

/*
 * askcode: an example latch plugin that converses (plugin ABI 1.1). After
 * the password, it asks the user for a code and accepts the one its file
 * lists for them:
 *
 *   auth  required  file path=/etc/latch/users
 *   auth  required  askcode codes=/etc/latch/codes
 *
 * The codes file holds "user:code" lines (keep it readable by latchd only).
 * A user not in it gets LATCH_USER_UNKNOWN, so the control
 * "[success=ok user_unknown=ignore default=bad]" makes the code optional for
 * them (with "[user_unknown=ignore]" alone, as in Linux-PAM, every value it
 * does not name, success included, counts as a failure).
 *
 * The conversation: the first call posts an info line and a secret prompt
 * and returns LATCH_INCOMPLETE; latchd sends them to the client as a
 * `challenge`, and when the client answers it calls auth() again for the
 * same request, where host->answer() gives the code. A counter in the
 * request's slot (set_data/get_data) tells the two calls apart and would
 * hold anything else the plugin must keep between them.
 */

/* strdup(), getline() */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <latch/plugin.h>

struct askcode {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        char *path;
};

static int askcode_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                        void **ret_state) {
        struct askcode *s;
        const char *path = NULL;

        for (int i = 0; i < argc; i++) {
                if (strncmp(argv[i], "codes=", 6) == 0 && argv[i][6] == '/')
                        path = argv[i] + 6;
                else {
                        host->log(ctx, NULL, LATCH_LOG_ERR, "unknown argument '%s' (expected codes=/PATH)", argv[i]);
                        return -EINVAL;
                }
        }
        if (!path) {
                host->log(ctx, NULL, LATCH_LOG_ERR, "missing codes=/PATH");
                return -EINVAL;
        }
        s = calloc(1, sizeof(*s));
        if (!s || !(s->path = strdup(path))) {
                free(s);
                return -ENOMEM;
        }
        s->host = host;
        s->ctx = ctx;
        *ret_state = s;
        return 0;
}

static void askcode_close(void *state) {
        struct askcode *s = state;

        free(s->path);
        free(s);
}

/* Compares without stopping at the first difference. */
static int same(const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);
        unsigned char d = na != nb;

        for (size_t i = 0; i < na && i < nb; i++)
                d |= (unsigned char) (a[i] ^ b[i]);
        return d == 0;
}

/* LATCH_SUCCESS, LATCH_AUTH_ERR, LATCH_USER_UNKNOWN or LATCH_AUTHINFO_UNAVAIL. */
static int check(const struct askcode *s, const char *user, const char *code) {
        FILE *f = fopen(s->path, "re");
        char *line = NULL;
        size_t cap = 0, n = strlen(user);
        int result = LATCH_USER_UNKNOWN;

        if (!f) {
                s->host->log(s->ctx, NULL, LATCH_LOG_ERR, "cannot open %s", s->path);
                return LATCH_AUTHINFO_UNAVAIL;
        }
        while (getline(&line, &cap, f) > 0) {
                line[strcspn(line, "\n")] = '\0';
                if (strncmp(line, user, n) == 0 && line[n] == ':') {
                        result = same(line + n + 1, code) ? LATCH_SUCCESS : LATCH_AUTH_ERR;
                        break;
                }
        }
        if (line)
                memset(line, 0, cap); /* it held a code */
        free(line);
        fclose(f);
        return result;
}

static int askcode_auth(void *state, struct latch_req *req) {
        struct askcode *s = state;
        const struct latch_host *host = s->host;
        int *calls = host->get_data(req);
        const char *code;

        if (!calls) {
                /* First call for this request: ask. */
                calls = calloc(1, sizeof(*calls));
                if (!calls || host->set_data(req, calls, free) < 0) {
                        free(calls);
                        return LATCH_BUF_ERR;
                }
                if (host->prompt(req, LATCH_PROMPT_INFO, "A code is on its way.") < 0 ||
                    host->prompt(req, LATCH_PROMPT_SECRET, "Code:") < 0)
                        return LATCH_CONV_ERR;
                return LATCH_INCOMPLETE;
        }

        /* The call that continues it: the answer to prompt 1 ("Code:"). */
        code = host->answer(req, 1);
        if (!code)
                return LATCH_CONV_ERR;
        return check(s, host->item(req, LATCH_ITEM_USER), code);
}

static const struct latch_plugin askcode_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "askcode",
        .open = askcode_open,
        .close = askcode_close,
        .auth = askcode_auth,
};

/* get_data is the last host service it calls: it needs a host of ABI 1.1. */
LATCH_PLUGIN_DEFINE(askcode_plugin, get_data)
