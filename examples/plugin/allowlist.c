/* SPDX-License-Identifier: MIT */

/*
 * allowlist: an example latch plugin. It lets only the users it names past
 * the account stack:
 *
 *   auth     required  file path=/etc/latch/users
 *   account  required  allowlist users=alice,bob role=wiki-editor
 *
 * users=NAME,NAME,...  who may log in (required; may be given more than
 *                      once, the lists add up)
 * role=NAME            appended to the "roles" claim of a listed user
 *                      (optional)
 *
 * account() returns LATCH_SUCCESS for a listed user and LATCH_PERM_DENIED
 * for anyone else. auth() returns LATCH_IGNORE: the plugin judges no
 * credential, so on an auth line it leaves the decision to the others.
 *
 * Build it against the installed SDK (see Makefile):
 *   cc -shared -fPIC $(pkg-config --cflags --libs latch-plugin) -o allowlist.so allowlist.c
 */

/* strdup() and strndup() */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <latch/plugin.h>

/* What open() makes for one stack line. Read-only once open() returns, so
 * any number of pool threads may use it at once without a lock. */
struct allowlist {
        const struct latch_host *host;
        struct latch_ctx *ctx;
        char **users;
        size_t n_users;
        char *role; /* NULL: add no claim */
};

static void allowlist_free(struct allowlist *a) {
        if (!a)
                return;
        for (size_t i = 0; i < a->n_users; i++)
                free(a->users[i]);
        free(a->users);
        free(a->role);
        free(a);
}

/* Adds each name of a comma-separated list; empty names are skipped. */
static int add_users(struct allowlist *a, const char *list) {
        const char *p = list;

        while (*p) {
                size_t n = strcspn(p, ",");
                if (n > 0) {
                        char **u = realloc(a->users, (a->n_users + 1) * sizeof(*u));
                        if (!u)
                                return -ENOMEM;
                        a->users = u;
                        a->users[a->n_users] = strndup(p, n);
                        if (!a->users[a->n_users])
                                return -ENOMEM;
                        a->n_users++;
                }
                p += n;
                if (*p == ',')
                        p++;
        }
        return 0;
}

static int allowlist_open(const struct latch_host *host, struct latch_ctx *ctx, int argc,
                          const char *const *argv, void **ret_state) {
        struct allowlist *a = calloc(1, sizeof(*a));
        int r;

        if (!a)
                return -ENOMEM;
        a->host = host;
        a->ctx = ctx;

        for (int i = 0; i < argc; i++) {
                if (strncmp(argv[i], "users=", 6) == 0) {
                        r = add_users(a, argv[i] + 6);
                        if (r < 0) {
                                allowlist_free(a);
                                return r;
                        }
                } else if (strncmp(argv[i], "role=", 5) == 0 && argv[i][5] != '\0') {
                        free(a->role);
                        a->role = strdup(argv[i] + 5);
                        if (!a->role) {
                                allowlist_free(a);
                                return -ENOMEM;
                        }
                } else {
                        /* An error logged during open() becomes the message
                         * latchd --check-config and the reload log show,
                         * prefixed with the stack file and line. */
                        host->log(ctx, NULL, LATCH_LOG_ERR, "unknown argument '%s'", argv[i]);
                        allowlist_free(a);
                        return -EINVAL;
                }
        }
        if (a->n_users == 0) {
                host->log(ctx, NULL, LATCH_LOG_ERR, "missing argument users=NAME[,NAME...]");
                allowlist_free(a);
                return -EINVAL;
        }

        *ret_state = a;
        return 0;
}

static void allowlist_close(void *state) {
        allowlist_free(state);
}

static int allowlist_auth(void *state, struct latch_req *req) {
        (void) state;
        (void) req;
        /* No opinion on the credential: no control acts on ignore. */
        return LATCH_IGNORE;
}

static int allowlist_account(void *state, struct latch_req *req) {
        const struct allowlist *a = state;
        /* Borrowed from the request: valid during this call only. */
        const char *user = a->host->item(req, LATCH_ITEM_USER);

        if (!user)
                return LATCH_SYSTEM_ERR;

        for (size_t i = 0; i < a->n_users; i++) {
                if (strcmp(user, a->users[i]) != 0)
                        continue;
                if (a->role) {
                        int r = a->host->claim_append_string(req, "roles", a->role);
                        if (r < 0) {
                                /* -errno: no claim, no login. */
                                a->host->log(a->ctx, req, LATCH_LOG_ERR, "cannot add the role claim: %s",
                                             strerror(-r));
                                return LATCH_SYSTEM_ERR;
                        }
                }
                return LATCH_SUCCESS;
        }

        /* The host adds the service, the user and the remote to the line. */
        a->host->log(a->ctx, req, LATCH_LOG_NOTICE, "not on the allowlist");
        return LATCH_PERM_DENIED;
}

static const struct latch_plugin allowlist_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "allowlist",
        .open = allowlist_open,
        .close = allowlist_close,
        .auth = allowlist_auth,
        .account = allowlist_account,
};

/* The one exported symbol. It refuses a host of another ABI major, and one
 * too old to have every service this plugin calls (a minor only appends, so
 * the host's size tells which exist): claim_append_string is the last of
 * them in struct latch_host. */
LATCH_PLUGIN_DEFINE(allowlist_plugin, claim_append_string)
