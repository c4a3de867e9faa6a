/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"
#include "macro.h"
#include "session.h"

void session_id_new(char ret_id[SESSION_ID_LEN + 1], uint8_t ret_key[STORE_KEY_SIZE]) {
        uint8_t raw[SESSION_ID_BYTES];

        do {
                randombytes_buf(raw, sizeof raw);
                sodium_bin2base64(ret_id, SESSION_ID_LEN + 1, raw, sizeof raw,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        } while (ret_id[0] == '-');
        sodium_memzero(raw, sizeof raw);
        crypto_generichash(ret_key, STORE_KEY_SIZE, (const uint8_t *) ret_id, SESSION_ID_LEN, NULL, 0);
}

void session_handle_new(char ret_handle[STORE_HANDLE_LEN + 1]) {
        uint8_t raw[16];

        do {
                randombytes_buf(raw, sizeof raw);
                sodium_bin2base64(ret_handle, STORE_HANDLE_LEN + 1, raw, sizeof raw,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        } while (ret_handle[0] == '-');
}

bool session_id_key(const char *s, uint8_t ret_key[STORE_KEY_SIZE]) {
        size_t n = strnlen(s, SESSION_ID_LEN + 1);

        if (n != SESSION_ID_LEN)
                return false;
        /* base64url: a table, as this runs on every validate. */
        static const bool b64url[256] = { ['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
                                          ['-'] = true, ['_'] = true };
        for (size_t i = 0; i < n; i++)
                if (!b64url[(unsigned char) s[i]])
                        return false;
        crypto_generichash(ret_key, STORE_KEY_SIZE, (const uint8_t *) s, n, NULL, 0);
        return true;
}

int session_info_copy(const struct session_info *s, struct session_info *ret, char **ret_buf) {
        size_t nu = strlen(s->user) + 1, ns = strlen(s->service) + 1;
        size_t nc = s->claims_json ? strlen(s->claims_json) + 1 : 0;
        char *buf = malloc(nu + ns + nc);

        if (!buf)
                return -ENOMEM;
        *ret = *s;
        ret->user = memcpy(buf, s->user, nu);
        ret->service = memcpy(buf + nu, s->service, ns);
        ret->claims_json = nc ? memcpy(buf + nu + ns, s->claims_json, nc) : NULL;
        *ret_buf = buf;
        return 0;
}

json_t *session_to_json(const struct session_info *s, int64_t idle_expires_at, bool with_claims) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "handle", s->handle, "user", s->user, "service",
                              s->service, "created_at", (json_int_t) s->created_at, "last_seen_at",
                              (json_int_t) s->last_seen_at, "expires_at", (json_int_t) s->expires_at,
                              "idle_expires_at", (json_int_t) idle_expires_at);
        if (o && with_claims) {
                json_t *c = s->claims_json ? json_loads(s->claims_json, 0, NULL) : NULL;
                if (!json_is_object(c)) {
                        json_decref(c);
                        c = json_object();
                }
                json_object_set_new(o, "claims", c);
        }
        return o;
}

bool session_claims_canonical(const char *claims_json) {
        if (!claims_json)
                return true; /* stored as {} */
        json_t *c = json_loads(claims_json, 0, NULL);
        char *again = json_is_object(c) ? json_dumps(c, JSON_COMPACT) : NULL;
        bool same = again && streq(again, claims_json);

        json_decref(c);
        free(again);
        return same;
}
