/* SPDX-License-Identifier: MIT */

/*
 * The host side of a plugin's admin() entry point (ABI 1.1): struct
 * latch_admin over a request's JSON arguments and a JSON answer.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "plugin-host-internal.h"

struct admin_call {
        struct latch_admin pub; /* first: the plugin's pointer is the call's */
        json_t *args;           /* borrowed */
        json_t *answer;         /* owned */
        char *message;          /* from fail() */
};

static bool name_reserved(const char *name) {
        return !name || !*name || streq(name, "id") || streq(name, "ok") || streq(name, "error") ||
               streq(name, "message");
}

static const char *admin_arg(const struct latch_admin *a, const char *name) {
        const struct admin_call *c = (const struct admin_call *) a;
        json_t *v = name ? json_object_get(c->args, name) : NULL;
        return json_is_string(v) ? json_string_value(v) : NULL;
}

static int admin_set(struct latch_admin *a, const char *name, json_t *v) {
        struct admin_call *c = (struct admin_call *) a;

        if (!v)
                return -ENOMEM;
        if (name_reserved(name)) {
                json_decref(v);
                return -EINVAL;
        }
        return json_object_set_new(c->answer, name, v) < 0 ? -ENOMEM : 0;
}

static int admin_append(struct latch_admin *a, const char *name, json_t *v) {
        struct admin_call *c = (struct admin_call *) a;
        json_t *arr;

        if (!v)
                return -ENOMEM;
        if (name_reserved(name)) {
                json_decref(v);
                return -EINVAL;
        }
        arr = json_object_get(c->answer, name);
        if (!json_is_array(arr)) {
                arr = json_array();
                if (!arr || json_object_set_new(c->answer, name, arr) < 0) {
                        json_decref(v);
                        return -ENOMEM;
                }
        }
        return json_array_append_new(arr, v) < 0 ? -ENOMEM : 0;
}

static int admin_reply_string(struct latch_admin *a, const char *name, const char *value) {
        return value ? admin_set(a, name, json_string(value)) : -EINVAL;
}

static int admin_reply_int(struct latch_admin *a, const char *name, int64_t value) {
        return admin_set(a, name, json_integer((json_int_t) value));
}

static int admin_reply_bool(struct latch_admin *a, const char *name, int value) {
        return admin_set(a, name, json_boolean(value));
}

static int admin_reply_append_string(struct latch_admin *a, const char *name, const char *value) {
        return value ? admin_append(a, name, json_string(value)) : -EINVAL;
}

static int admin_reply_append_int(struct latch_admin *a, const char *name, int64_t value) {
        return admin_append(a, name, json_integer((json_int_t) value));
}

static int admin_reply_array(struct latch_admin *a, const char *name) {
        return admin_set(a, name, json_array());
}

static _printf_(2, 3) void admin_fail(struct latch_admin *a, const char *fmt, ...) {
        struct admin_call *c = (struct admin_call *) a;
        va_list ap;
        char *m;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        free(c->message);
        c->message = m;
}

static void json_wipe_strings(json_t *v) {
        const char *key;
        json_t *m;
        size_t i;

        if (json_is_string(v))
                sodium_memzero((char *) json_string_value(v), json_string_length(v));
        else if (json_is_object(v))
                json_object_foreach(v, key, m)
                        json_wipe_strings(m);
        else if (json_is_array(v))
                json_array_foreach(v, i, m)
                        json_wipe_strings(m);
}

void plugin_admin_answer_free(json_t *answer) {
        json_wipe_strings(answer);
        json_decref(answer);
}

bool plugin_line_has_admin(const struct plugin_line *l) {
        const struct latch_plugin *p;

        if (!l || l->iso || !l->ctx.module)
                return false;
        p = l->ctx.module->plugin;
        return p->size >= offsetof(struct latch_plugin, admin) + sizeof(p->admin) && p->admin;
}

int plugin_line_admin(struct plugin_line *l, const char *action, json_t *args, bool self, bool reauthenticated,
                      json_t **ret_answer, char **ret_message) {
        struct admin_call c = {
                .pub = {
                        .size = sizeof(struct latch_admin),
                        .action = action,
                        .arg = admin_arg,
                        .reply_string = admin_reply_string,
                        .reply_int = admin_reply_int,
                        .reply_bool = admin_reply_bool,
                        .reply_append_string = admin_reply_append_string,
                        .reply_append_int = admin_reply_append_int,
                        .reply_array = admin_reply_array,
                        .fail = admin_fail,
                        .self = self,
                        .reauthenticated = self && reauthenticated,
                },
                .args = args,
        };
        int r;

        assert_return(l && action && ret_answer && ret_message, -EINVAL);

        if (!plugin_line_has_admin(l)) {
                r = asprintf(ret_message, "plugin '%s' has no admin actions%s", l->name,
                             l->iso ? " when isolated" : "");
                if (r < 0)
                        *ret_message = NULL;
                return -EOPNOTSUPP;
        }
        /* A plugin built before ABI 1.2 cannot see `self`: it would take a
         * user's own call for an administrator's. */
        const struct latch_plugin *p = l->ctx.module->plugin;
        if (self && p->abi_minor < 2) {
                r = asprintf(ret_message, "plugin '%s' (ABI %u.%u) takes no self-service calls", l->name,
                             (unsigned) p->abi_major, (unsigned) p->abi_minor);
                if (r < 0)
                        *ret_message = NULL;
                return -EPERM;
        }
        c.answer = json_object();
        if (!c.answer)
                return -ENOMEM;

        r = p->admin(l->state, &c.pub);
        if (r > 0)
                r = 0; /* the ABI says 0: be lenient with a positive value */
        if (r < 0) {
                plugin_admin_answer_free(c.answer);
                if (!c.message && asprintf(&c.message, "'%s' failed: %s", action, strerror(-r)) < 0)
                        c.message = NULL;
                *ret_message = c.message;
                return r;
        }
        free(c.message);
        *ret_answer = c.answer;
        return 0;
}
