/* SPDX-License-Identifier: MIT */
/* Replies: read-only views of a successful response. */

#include <sodium.h>
#include <string.h>

#include "client-internal.h"
#include "macro.h"

_public_ void latch_reply_free(latch_reply *reply) {
        if (!reply)
                return;
        json_wipe_strings(reply->response);
        json_decref(reply->response);
        if (reply->raw) {
                sodium_memzero(reply->raw, strlen(reply->raw));
                free(reply->raw);
        }
        free(reply);
}

static json_t *reply_get(const latch_reply *reply, const char *key) {
        if (!reply || !key)
                return NULL;
        return json_object_get(reply->response, key);
}

static json_t *reply_item_get(const latch_reply *reply, const char *key, size_t index, const char *member) {
        if (!member)
                return NULL;
        return json_object_get(json_array_get(reply_get(reply, key), index), member);
}

_public_ const char *latch_reply_string(const latch_reply *reply, const char *key) {
        return json_string_value(reply_get(reply, key));
}

static int json_int(const json_t *v, int64_t *ret) {
        assert_return(ret, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(json_is_integer(v), LATCH_ERR_INVALID_ARGUMENT);
        *ret = (int64_t) json_integer_value(v);
        return LATCH_OK;
}

_public_ int latch_reply_int(const latch_reply *reply, const char *key, int64_t *ret) {
        return json_int(reply_get(reply, key), ret);
}

_public_ int latch_reply_bool(const latch_reply *reply, const char *key, bool *ret) {
        json_t *v = reply_get(reply, key);

        assert_return(ret, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(json_is_boolean(v), LATCH_ERR_INVALID_ARGUMENT);
        *ret = json_is_true(v);
        return LATCH_OK;
}

/* Serialises into one exactly-sized buffer: Jansson's own dump grows its
 * buffer by realloc, which would leave copies of a session id behind. */
static char *json_dump_exact(const json_t *v) {
        size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
        if (n == 0)
                return NULL;
        char *s = malloc(n + 1);
        if (!s)
                return NULL;
        if (json_dumpb(v, s, n, JSON_COMPACT | JSON_ENCODE_ANY) != n) {
                sodium_memzero(s, n);
                free(s);
                return NULL;
        }
        s[n] = '\0';
        return s;
}

_public_ char *latch_reply_json(const latch_reply *reply, const char *key) {
        if (!reply)
                return NULL;
        if (key) {
                json_t *v = json_object_get(reply->response, key);
                return v ? json_dump_exact(v) : NULL;
        }

        /* A shallow copy shares the member values, so dropping "id" and
         * "ok" from it costs nothing and touches nothing in the reply. */
        json_t *results = json_copy(reply->response);
        if (!results)
                return NULL;
        (void) json_object_del(results, "id");
        (void) json_object_del(results, "ok");
        char *s = json_dump_exact(results);
        json_decref(results);
        return s;
}

_public_ const char *latch_reply_raw(const latch_reply *reply) {
        return reply ? reply->raw : NULL;
}

_public_ size_t latch_reply_count(const latch_reply *reply, const char *key) {
        return json_array_size(reply_get(reply, key));
}

_public_ const char *latch_reply_item_string(const latch_reply *reply, const char *key, size_t index,
                                             const char *member) {
        return json_string_value(reply_item_get(reply, key, index, member));
}

_public_ int latch_reply_item_int(const latch_reply *reply, const char *key, size_t index, const char *member,
                                  int64_t *ret) {
        return json_int(reply_item_get(reply, key, index, member), ret);
}

_public_ void latch_secret_free(char *s) {
        if (!s)
                return;
        sodium_memzero(s, strlen(s));
        free(s);
}
