/* SPDX-License-Identifier: MIT */

/*
 * Plugins for test-plugin-host, one source built in several variants
 * (-DTP_VARIANT_*): a well-behaved one that hands the test its host services,
 * and broken ones the host must refuse.
 */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <latch/plugin.h>

#if defined(TP_VARIANT_GOOD)

/* Exported beside the entry so the test can call the host services exactly
 * as a plugin sees them. */
LATCH_PLUGIN_EXPORT const struct latch_host *tp_host;
LATCH_PLUGIN_EXPORT struct latch_ctx *tp_ctx;
LATCH_PLUGIN_EXPORT int tp_entry_calls;
LATCH_PLUGIN_EXPORT int tp_last_outcome = -1;
LATCH_PLUGIN_EXPORT int tp_open_lines;

struct tp_state {
        int result;
};

static int tp_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                   void **ret_state) {
        struct tp_state *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        for (int i = 0; i < argc; i++) {
                if (strcmp(argv[i], "fail") == 0) {
                        host->log(ctx, NULL, LATCH_LOG_ERR, "told to fail by '%s'", argv[i]);
                        free(s);
                        return -EINVAL;
                }
                if (strncmp(argv[i], "result=", 7) == 0)
                        s->result = atoi(argv[i] + 7);
        }
        tp_host = host;
        tp_ctx = ctx;
        tp_open_lines++;
        *ret_state = s;
        return 0;
}

static void tp_close(void *state) {
        tp_open_lines--;
        free(state);
}

static int tp_auth(void *state, struct latch_req *req) {
        return ((struct tp_state *) state)->result;
}

static void tp_outcome(void *state, struct latch_req *req, int result) {
        tp_last_outcome = result;
}

static const struct latch_plugin tp_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "tp-good",
        .open = tp_open,
        .close = tp_close,
        .auth = tp_auth,
        .account = NULL, /* → module_unknown */
        .outcome = tp_outcome,
};

LATCH_PLUGIN_EXPORT const struct latch_plugin *latch_plugin_entry(const struct latch_host *host) {
        tp_entry_calls++;
        return &tp_plugin;
}

#elif defined(TP_VARIANT_CONV)

/* ABI 1.1: asks for a code (with an info line first), keeps a counter in
 * the request's slot across the two calls, and accepts "123456". For the
 * user "say" it posts the request's password as an info prompt instead:
 * LATCH_INCOMPLETE when the host took it, LATCH_CONV_ERR when it refused. */
LATCH_PLUGIN_EXPORT int tpc_cleanups;

static const struct latch_host *tpc_host;

static int tpc_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                    void **ret_state) {
        tpc_host = host;
        *ret_state = NULL;
        return 0;
}

static void tpc_cleanup(void *data) {
        tpc_cleanups++;
        free(data);
}

static int tpc_auth(void *state, struct latch_req *req) {
        int *calls = tpc_host->get_data(req);
        const char *code;

        if (strcmp(tpc_host->item(req, LATCH_ITEM_USER), "say") == 0)
                return tpc_host->prompt(req, LATCH_PROMPT_INFO, tpc_host->item(req, LATCH_ITEM_PASSWORD)) == 0
                               ? LATCH_INCOMPLETE
                               : LATCH_CONV_ERR;
        if (!calls) {
                calls = calloc(1, sizeof(*calls));
                if (!calls || tpc_host->set_data(req, calls, tpc_cleanup) < 0)
                        return LATCH_BUF_ERR;
        }
        (*calls)++;
        code = tpc_host->answer(req, 1);
        if (*calls == 1) {
                if (code)
                        return LATCH_SYSTEM_ERR; /* nothing to answer yet */
                if (tpc_host->prompt(req, LATCH_PROMPT_INFO, "A code was sent.") != 0 ||
                    tpc_host->prompt(req, LATCH_PROMPT_TEXT, "Code:") != 1)
                        return LATCH_CONV_ERR;
                return LATCH_INCOMPLETE;
        }
        if (tpc_host->answer(req, 0) != NULL || !code)
                return LATCH_SYSTEM_ERR; /* info lines get no answer */
        return strcmp(code, "123456") == 0 ? LATCH_SUCCESS : LATCH_AUTH_ERR;
}

static const struct latch_plugin tpc_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "tp-conv",
        .open = tpc_open,
        .auth = tpc_auth,
};

LATCH_PLUGIN_DEFINE(tpc_plugin, get_data)

#elif defined(TP_VARIANT_PW)

/* ABI 1.2: a password change as the plugin ABI describes it. The
 * preliminary pass asks for the current password when LATCH_ITEM_OLDPASSWORD
 * is unset, sets it, and accepts "old-pw"; the update pass asks for the new
 * password twice when LATCH_ITEM_PASSWORD is unset, refuses two different
 * entries, sets it and "stores" it in tpp_stored. Every call's flags are
 * kept; set_item's refusals are tried on each call. */
LATCH_PLUGIN_EXPORT int tpp_flags[16];
LATCH_PLUGIN_EXPORT int tpp_calls;
LATCH_PLUGIN_EXPORT char tpp_stored[64];
LATCH_PLUGIN_EXPORT int tpp_bad_item_rc, tpp_long_rc;

static const struct latch_host *tpp_host;

static int tpp_open(const struct latch_host *host, struct latch_ctx *ctx, int argc, const char *const *argv,
                    void **ret_state) {
        tpp_host = host;
        *ret_state = NULL;
        return 0;
}

static int tpp_password(void *state, struct latch_req *req, int flags) {
        const struct latch_host *h = tpp_host;
        static char toolong[LATCH_ANSWER_MAX + 2];
        const char *old, *new;

        if (tpp_calls < 16)
                tpp_flags[tpp_calls] = flags;
        tpp_calls++;
        tpp_bad_item_rc = h->set_item(req, LATCH_ITEM_USER, "mallory");
        memset(toolong, 'x', sizeof toolong - 1);
        tpp_long_rc = h->set_item(req, LATCH_ITEM_PASSWORD, toolong);

        old = h->item(req, LATCH_ITEM_OLDPASSWORD);
        if (flags & LATCH_PRELIM_CHECK) {
                if (!old) {
                        const char *a = h->answer(req, 0);
                        if (!a)
                                return h->prompt(req, LATCH_PROMPT_SECRET, "Current password:") == 0 ? LATCH_INCOMPLETE
                                                                                                   : LATCH_CONV_ERR;
                        if (h->set_item(req, LATCH_ITEM_OLDPASSWORD, a) < 0)
                                return LATCH_BUF_ERR;
                        old = h->item(req, LATCH_ITEM_OLDPASSWORD);
                        if (!old || old == a)
                                return LATCH_SYSTEM_ERR; /* the item is the host's copy */
                }
                return strcmp(old, "old-pw") == 0 ? LATCH_SUCCESS : LATCH_AUTH_ERR;
        }
        if (!(flags & LATCH_UPDATE_AUTHTOK) || !old || strcmp(old, "old-pw") != 0)
                return LATCH_SYSTEM_ERR;
        new = h->item(req, LATCH_ITEM_PASSWORD);
        if (!new) {
                const char *a = h->answer(req, 0), *b = h->answer(req, 1);
                if (!a) {
                        if (h->prompt(req, LATCH_PROMPT_SECRET, "New password:") != 0 ||
                            h->prompt(req, LATCH_PROMPT_SECRET, "Retype new password:") != 1)
                                return LATCH_CONV_ERR;
                        return LATCH_INCOMPLETE;
                }
                if (!b || strcmp(a, b) != 0)
                        return LATCH_AUTHTOK_ERR;
                if (h->set_item(req, LATCH_ITEM_PASSWORD, a) < 0)
                        return LATCH_BUF_ERR;
                new = h->item(req, LATCH_ITEM_PASSWORD);
        }
        strncpy(tpp_stored, new, sizeof tpp_stored - 1);
        return LATCH_SUCCESS;
}

static const struct latch_plugin tpp_plugin = {
        LATCH_PLUGIN_HEADER,
        .name = "tp-pw",
        .open = tpp_open,
        .password = tpp_password,
};

LATCH_PLUGIN_DEFINE(tpp_plugin, set_item)

#elif defined(TP_VARIANT_V11)

/* A plugin of ABI 1.1: its struct ends before password(). The memory after
 * it holds a function the host must never call (it would read past a
 * real 1.1 plugin's struct). */
LATCH_PLUGIN_EXPORT int tp11_trap_calls;

static int tp11_auth(void *state, struct latch_req *req) {
        return LATCH_SUCCESS;
}

static int tp11_trap(void *state, struct latch_req *req, int flags) {
        tp11_trap_calls++;
        return LATCH_SUCCESS;
}

/* Its admin actions: it cannot tell a user's own call from an
 * administrator's (latch_admin.self is 1.2), so the host must only let
 * administrators reach it. */
LATCH_PLUGIN_EXPORT int tp11_admin_calls;

static int tp11_admin(void *state, struct latch_admin *a) {
        tp11_admin_calls++;
        return a->reply_string(a, "did", a->action);
}

static const struct latch_plugin tp11_plugin = {
        .size = offsetof(struct latch_plugin, password),
        .abi_major = LATCH_PLUGIN_ABI_MAJOR,
        .abi_minor = 1,
        .name = "tp-v11",
        .auth = tp11_auth,
        .admin = tp11_admin,
        .password = tp11_trap,
};

LATCH_PLUGIN_DEFINE(tp11_plugin, get_data)

#elif defined(TP_VARIANT_NOSYM)

/* Exports something, but not the entry. */
LATCH_PLUGIN_EXPORT int latch_plugin_entry_typo(void);
LATCH_PLUGIN_EXPORT int latch_plugin_entry_typo(void) {
        return 0;
}

#else

# if defined(TP_VARIANT_ABI2)
#  define TP_SIZE sizeof(struct latch_plugin)
#  define TP_MAJOR (LATCH_PLUGIN_ABI_MAJOR + 1)
#  define TP_MINOR 0
#  define TP_NAME "tp-abi2"
# elif defined(TP_VARIANT_MINOR)
/* A plugin built against a newer 1.x: bigger struct, newer minor. */
#  define TP_SIZE (sizeof(struct latch_plugin) + 32)
#  define TP_MAJOR LATCH_PLUGIN_ABI_MAJOR
#  define TP_MINOR (LATCH_PLUGIN_ABI_MINOR + 3)
#  define TP_NAME "tp-minor"
# elif defined(TP_VARIANT_SMALL)
#  define TP_SIZE 16
#  define TP_MAJOR LATCH_PLUGIN_ABI_MAJOR
#  define TP_MINOR LATCH_PLUGIN_ABI_MINOR
#  define TP_NAME "tp-small"
# elif defined(TP_VARIANT_NONAME)
#  define TP_SIZE sizeof(struct latch_plugin)
#  define TP_MAJOR LATCH_PLUGIN_ABI_MAJOR
#  define TP_MINOR LATCH_PLUGIN_ABI_MINOR
#  define TP_NAME NULL
# elif defined(TP_VARIANT_NULLENTRY)
#  define TP_ENTRY_NULL 1
#  define TP_SIZE sizeof(struct latch_plugin)
#  define TP_MAJOR LATCH_PLUGIN_ABI_MAJOR
#  define TP_MINOR LATCH_PLUGIN_ABI_MINOR
#  define TP_NAME "tp-nullentry"
# else
#  error "unknown TP_VARIANT"
# endif

static int tp_auth(void *state, struct latch_req *req) {
        return LATCH_SUCCESS;
}

/* Room after the 1.0 fields, as a newer minor would have. */
static const struct {
        struct latch_plugin p;
        char newer_fields[32];
} tp_plugin = {
        .p = {
                .size = TP_SIZE,
                .abi_major = TP_MAJOR,
                .abi_minor = TP_MINOR,
                .name = TP_NAME,
                .auth = tp_auth,
        },
};

LATCH_PLUGIN_EXPORT const struct latch_plugin *latch_plugin_entry(const struct latch_host *host) {
# ifdef TP_ENTRY_NULL
        (void) tp_plugin;
        return NULL; /* refuses this host */
# else
        return &tp_plugin.p;
# endif
}

#endif
