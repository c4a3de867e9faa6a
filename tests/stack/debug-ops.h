/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A fake module table for the stack tests. The plugin "debug" behaves as
 * Linux-PAM's pam_debug: the first argument "auth=NAME" (or "acct=NAME")
 * names the result of the auth (account) call, "prechauthtok=NAME" and
 * "chauthtok=NAME" those of the password stack's preliminary and update
 * passes; a name pam_debug does not know means success, as does a missing
 * argument. The flags of every password call are recorded. The plugin "missing" does not
 * exist (-ENOENT); "broken" fails to open with a message. "asker" is
 * "debug" that returns LATCH_INCOMPLETE on its odd-numbered calls of each
 * type (each password pass counting as a type) and its result on the even ones, as tests/stack/pam_asker.c does
 * in libpam (a stack that got LATCH_INCOMPLETE is resumed at the line that
 * returned it, which is called again). Calls and outcomes
 * are counted per module, atomically, so threads may share one table.
 */

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stack.h"

/* Results and asker counts: per enum stack_type, the password stack's two
 * passes apart. */
enum { DEBUG_AUTH, DEBUG_ACCT, DEBUG_PRELIM, DEBUG_UPDATE, _DEBUG_EVENTS };

struct debug_module {
        int result[_DEBUG_EVENTS];
        bool asker;
        int asked[_DEBUG_EVENTS]; /* asker: calls so far, per event */
        int password_flags[8];    /* the flags of the first password calls */
        atomic_int password_calls;
        atomic_int calls;
        atomic_int outcomes;
        atomic_int last_outcome;
        struct debug_module *next;
};

struct debug_ops_state {
        struct debug_module *modules; /* every open module, newest first */
        int n_open;
        atomic_int expired_changes; /* expired_change() calls */
};

static int debug_parse(const char *event, int argc, const char *const *argv) {
        size_t n = strlen(event);

        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], event, n) == 0 && argv[i][n] == '=') {
                        int r = stack_result_from_string(argv[i] + n + 1);
                        return r < 0 ? LATCH_SUCCESS : r;
                }
        return LATCH_SUCCESS;
}

static int debug_open(void *userdata, const char *plugin, int argc, const char *const *argv,
                      void **ret_module, char **ret_error) {
        struct debug_ops_state *state = userdata;
        struct debug_module *m;

        if (strcmp(plugin, "missing") == 0) {
                if (asprintf(ret_error, "plugin '%s' not found", plugin) < 0)
                        *ret_error = NULL;
                return -ENOENT;
        }
        if (strcmp(plugin, "broken") == 0) {
                if (asprintf(ret_error, "plugin '%s': bad argument", plugin) < 0)
                        *ret_error = NULL;
                return -EINVAL;
        }
        if (strcmp(plugin, "debug") != 0 && strcmp(plugin, "asker") != 0)
                return -ENOENT;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->result[DEBUG_AUTH] = debug_parse("auth", argc, argv);
        m->result[DEBUG_ACCT] = debug_parse("acct", argc, argv);
        m->result[DEBUG_PRELIM] = debug_parse("prechauthtok", argc, argv);
        m->result[DEBUG_UPDATE] = debug_parse("chauthtok", argc, argv);
        m->asker = strcmp(plugin, "asker") == 0;
        atomic_init(&m->last_outcome, -1);
        if (state) {
                m->next = state->modules;
                state->modules = m;
                state->n_open++;
        }
        *ret_module = m;
        return 0;
}

static void debug_close(void *userdata, void *module) {
        struct debug_ops_state *state = userdata;

        if (state) {
                for (struct debug_module **p = &state->modules; *p; p = &(*p)->next)
                        if (*p == module) {
                                *p = (*p)->next;
                                break;
                        }
                state->n_open--;
        }
        free(module);
}

static int debug_call(void *userdata, void *module, enum stack_type type, int flags, struct latch_req *req) {
        struct debug_module *m = module;
        int ev = type == STACK_AUTH      ? DEBUG_AUTH
                 : type == STACK_ACCOUNT ? DEBUG_ACCT
                 : flags & LATCH_PRELIM_CHECK ? DEBUG_PRELIM
                                              : DEBUG_UPDATE;

        atomic_fetch_add(&m->calls, 1);
        if (type == STACK_PASSWORD) {
                int n = atomic_fetch_add(&m->password_calls, 1);
                if (n < 8)
                        m->password_flags[n] = flags;
        } else if (flags != 0)
                return LATCH_SYSTEM_ERR; /* auth and account are called without flags */
        if (m->asker && ++m->asked[ev] % 2 == 1)
                return LATCH_INCOMPLETE;
        return m->result[ev];
}

static void debug_outcome(void *userdata, void *module, struct latch_req *req, int result) {
        struct debug_module *m = module;

        atomic_fetch_add(&m->outcomes, 1);
        atomic_store(&m->last_outcome, result);
}

static void debug_expired_change(void *userdata, struct latch_req *req) {
        struct debug_ops_state *state = userdata;

        if (state)
                atomic_fetch_add(&state->expired_changes, 1);
}

static const struct stack_module_ops debug_ops = {
        .open = debug_open,
        .close = debug_close,
        .call = debug_call,
        .outcome = debug_outcome,
        .expired_change = debug_expired_change,
};
