/* SPDX-License-Identifier: MIT */
/*
 * Token issuance (tokens.h): the claims of a session's JWT, the audiences a
 * service may name, and how long a retired signing key stays published.
 * The ops that use it are in op-token.c and op-auth.c.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-state.h"
#include "jsonw.h"
#include "keys.h"
#include "macro.h"
#include "tokens.h"

static const char *const registered_claims[] = { "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid" };

bool token_audience_allowed(const struct daemon *d, const char *service, const char *audience) {
        const struct service_config *sc = config_service(d->config, service);

        if (!audience || streq(audience, sc && sc->audience ? sc->audience : service))
                return true;
        for (size_t i = 0; sc && i < sc->n_audiences; i++)
                if (streq(audience, sc->audiences[i]))
                        return true;
        return false;
}

int64_t token_max_lifetime(const struct daemon *d) {
        int64_t m = d->config->token_lifetime;
        for (size_t i = 0; i < d->config->n_services; i++)
                m = MAX(m, config_token_lifetime(d->config, &d->config->services[i]));
        return m + d->config->token_leeway;
}

/* The claims' text as the Jansson path below writes it, without Jansson:
 * possible when the stored claims are canonical (their text is what
 * json_dumpb() writes for them) and name no registered claim (none to
 * delete), and every string is valid UTF-8 (Jansson would refuse it).
 * Returns the length written to buf, or 0 to leave it to Jansson. */
static size_t claims_direct(char *buf, size_t cap, const struct session_info *s, const char *issuer,
                            const char *audience, int64_t now, int64_t exp, const char *jti) {
        const char *claims = s->claims_json ? s->claims_json : "{}";
        size_t claims_n = strlen(claims), iss_n = strlen(issuer), sub_n = strlen(s->user), aud_n = strlen(audience);
        struct out w = { (uint8_t *) buf, 0 };

        if (!s->claims_canonical || claims_n < 2 || claims[0] != '{' || claims[claims_n - 1] != '}')
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(registered_claims); i++) {
                char quoted[8];
                snprintf(quoted, sizeof quoted, "\"%s\"", registered_claims[i]);
                if (strstr(claims, quoted))
                        return 0; /* perhaps a member to delete: Jansson knows */
        }
        if (!wire_utf8_valid(issuer, iss_n) || !wire_utf8_valid(s->user, sub_n) ||
            !wire_utf8_valid(audience, aud_n))
                return 0;
        if (claims_n + JSTR_MAX(iss_n) + JSTR_MAX(sub_n) + JSTR_MAX(aud_n) + 3 * I64_MAX_CHARS + strlen(jti) +
                    STORE_HANDLE_LEN + 128 > cap)
                return 0;
        put_mem(&w, claims, claims_n - 1);
        if (claims_n > 2)
                put_lit(&w, ",");
        put_lit(&w, "\"iss\":");
        put_jstr(&w, issuer, iss_n);
        put_lit(&w, ",\"sub\":");
        put_jstr(&w, s->user, sub_n);
        put_lit(&w, ",\"aud\":");
        put_jstr(&w, audience, aud_n);
        put_lit(&w, ",\"iat\":");
        put_i64(&w, now);
        put_lit(&w, ",\"nbf\":");
        put_i64(&w, now);
        put_lit(&w, ",\"exp\":");
        put_i64(&w, exp);
        put_lit(&w, ",\"jti\":\"");
        put_mem(&w, jti, strlen(jti));
        put_lit(&w, "\",\"sid\":\"");
        put_mem(&w, s->handle, STORE_HANDLE_LEN);
        put_lit(&w, "\"}");
        return w.n;
}

int token_issue(struct daemon *d, const struct session_info *s, const char *audience, char **ret_token,
                int64_t *ret_exp) {
        const struct service_config *sc = config_service(d->config, s->service);
        int64_t now = daemon_now();
        int64_t exp = MIN(now + config_token_lifetime(d->config, sc), s->expires_at);
        uint8_t jti_raw[16];
        char jti[32];

        if (!audience)
                audience = sc && sc->audience ? sc->audience : s->service;

        randombytes_buf(jti_raw, sizeof jti_raw);
        sodium_bin2base64(jti, sizeof jti, jti_raw, sizeof jti_raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);

        /* Most tokens: the claims written straight from the stored text. */
        char direct[4096];
        size_t n = claims_direct(direct, sizeof direct, s, d->config->issuer, audience, now, exp, jti);
        if (n > 0) {
                int r = keyring_sign_payload(d->keys, d->config->algorithm, direct, n, ret_token);
                if (r < 0)
                        return r;
                *ret_exp = exp;
                return 0;
        }

        json_t *claims = s->claims_json ? json_loads(s->claims_json, 0, NULL) : NULL;
        if (!json_is_object(claims)) {
                json_decref(claims);
                claims = json_object();
                if (!claims)
                        return -ENOMEM;
        }
        /* Plugins cannot set registered claims (the host refuses), but a
         * stored record is data: never let it override ours. */
        for (size_t i = 0; i < ELEMENTSOF(registered_claims); i++)
                json_object_del(claims, registered_claims[i]);

        if (json_object_set_new(claims, "iss", json_string(d->config->issuer)) < 0 ||
            json_object_set_new(claims, "sub", json_string(s->user)) < 0 ||
            json_object_set_new(claims, "aud", json_string(audience)) < 0 ||
            json_object_set_new(claims, "iat", json_integer(now)) < 0 ||
            json_object_set_new(claims, "nbf", json_integer(now)) < 0 ||
            json_object_set_new(claims, "exp", json_integer(exp)) < 0 ||
            json_object_set_new(claims, "jti", json_string(jti)) < 0 ||
            json_object_set_new(claims, "sid", json_string(s->handle)) < 0) {
                json_decref(claims);
                return -ENOMEM;
        }
        int r = keyring_sign(d->keys, d->config->algorithm, claims, ret_token);
        json_decref(claims);
        if (r < 0)
                return r;
        *ret_exp = exp;
        return 0;
}
