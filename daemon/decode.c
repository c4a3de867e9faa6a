/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "decode.h"

/* Jansson recurses once per nesting level; requests are flat, so anything
 * deeper than a few levels is refused by a linear scan before parsing. */
static bool depth_ok(const char *buf, size_t len) {
        unsigned depth = 0;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = buf[i];
                if (in_string) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_string = false;
                        continue;
                }
                if (c == '"')
                        in_string = true;
                else if (c == '{' || c == '[') {
                        if (++depth > DECODE_MAX_DEPTH)
                                return false;
                } else if ((c == '}' || c == ']') && depth > 0)
                        depth--;
        }
        return true;
}

static const char *json_problem(enum json_error_code code) {
        switch (code) {
        case json_error_out_of_memory:
                return "out of memory";
        case json_error_stack_overflow:
                return "nested too deeply";
        case json_error_invalid_utf8:
                return "invalid UTF-8";
        case json_error_premature_end_of_input:
                return "premature end of input";
        case json_error_end_of_input_expected:
                return "data after the object";
        case json_error_null_character:
        case json_error_null_byte_in_key:
                return "NUL character";
        case json_error_duplicate_key:
                return "duplicate member";
        case json_error_numeric_overflow:
                return "number out of range";
        default:
                return "syntax error";
        }
}

int decode_request(const char *buf, size_t len, struct decoded *ret, char *msg, size_t msglen) {
        json_error_t err;

        *ret = (struct decoded){ 0 };
        if (!depth_ok(buf, len)) {
                snprintf(msg, msglen, "request nests deeper than %d levels", DECODE_MAX_DEPTH);
                return -EBADMSG;
        }
        json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
        if (!root) {
                /* Never Jansson's own text: it quotes the input near the
                 * error, and the input may hold a password. */
                snprintf(msg, msglen, "invalid JSON: %s at byte %d", json_problem(json_error_code(&err)),
                         err.position);
                return -EBADMSG;
        }
        if (!json_is_object(root)) {
                json_decref(root);
                snprintf(msg, msglen, "a request must be a JSON object");
                return -EBADMSG;
        }
        ret->root = root;
        ret->id = json_object_get(root, "id");
        json_t *op = json_object_get(root, "op");
        if (!op) {
                snprintf(msg, msglen, "missing 'op'");
                return -EBADMSG;
        }
        if (!json_is_string(op)) {
                snprintf(msg, msglen, "'op' must be a string");
                return -EBADMSG;
        }
        ret->op = json_string_value(op);
        return 0;
}

void decoded_done(struct decoded *d) {
        json_decref(d->root);
        *d = (struct decoded){ 0 };
}

int arg_string(json_t *root, const char *name, bool required, size_t maxlen, const char **ret, char *msg,
               size_t msglen) {
        json_t *v = json_object_get(root, name);

        if (!v || json_is_null(v)) {
                if (required) {
                        snprintf(msg, msglen, "missing '%s'", name);
                        return -EBADMSG;
                }
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v)) {
                snprintf(msg, msglen, "'%s' must be a string", name);
                return -EBADMSG;
        }
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        if (n > maxlen) {
                snprintf(msg, msglen, "'%s' is longer than %zu bytes", name, maxlen);
                return -EBADMSG;
        }
        if (memchr(s, '\0', n)) {
                snprintf(msg, msglen, "'%s' must not contain NUL", name);
                return -EBADMSG;
        }
        *ret = s;
        return 0;
}

int arg_bool(json_t *root, const char *name, bool *ret, char *msg, size_t msglen) {
        json_t *v = json_object_get(root, name);

        if (!v || json_is_null(v)) {
                *ret = false;
                return 0;
        }
        if (!json_is_boolean(v)) {
                snprintf(msg, msglen, "'%s' must be true or false", name);
                return -EBADMSG;
        }
        *ret = json_is_true(v);
        return 0;
}
