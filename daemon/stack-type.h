/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The stacks a service has, named as a stack line's TYPE names them: one
 * enum and one spelling for the stack engine (stack.h), the plugin host
 * (plugin_line_call()) and latch-worker's protocol ({"call": "auth"}).
 * "password" is Linux-PAM's pam_chauthtok() stack (a password change).
 * Linux-PAM's "session" is not a stack here: stack files may hold such
 * lines, which are checked and ignored.
 */

#include <errno.h>
#include <string.h>
#include <strings.h>

enum stack_type {
        STACK_AUTH = 0,
        STACK_ACCOUNT = 1,
        STACK_PASSWORD = 2,
        _STACK_TYPE_MAX
};

/* "auth", "account", "password", or NULL for anything else. */
static inline const char *stack_type_to_string(enum stack_type t) {
        switch (t) {
        case STACK_AUTH:
                return "auth";
        case STACK_ACCOUNT:
                return "account";
        case STACK_PASSWORD:
                return "password";
        default:
                return NULL;
        }
}

/* The type `s` names, or -EINVAL. Stack files spell types in any case
 * (`ignore_case`), latch-worker's protocol in lower case only. */
static inline int stack_type_from_string(const char *s, int ignore_case) {
        for (int t = 0; t < _STACK_TYPE_MAX; t++) {
                const char *name = stack_type_to_string((enum stack_type) t);
                if (ignore_case ? strcasecmp(s, name) == 0 : strcmp(s, name) == 0)
                        return t;
        }
        return -EINVAL;
}
