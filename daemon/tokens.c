/* SPDX-License-Identifier: MIT */
/*
 * Token issuance (tokens.h): the claims of a session's JWT, the audiences a
 * service may name, and how long a retired signing key stays published.
 * The ops that use it are in op-token.c and op-auth.c.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon-state.h"
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

int token_issue(struct daemon *d, const struct session_info *s, const char *audience, char **ret_token,
                int64_t *ret_exp) {
        const struct service_config *sc = config_service(d->config, s->service);
        int64_t now = daemon_now();
        int64_t exp = MIN(now + config_token_lifetime(d->config, sc), s->expires_at);
        uint8_t jti_raw[16];
        char jti[32];

        if (!audience)
                audience = sc && sc->audience ? sc->audience : s->service;

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

        randombytes_buf(jti_raw, sizeof jti_raw);
        sodium_bin2base64(jti, sizeof jti, jti_raw, sizeof jti_raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
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
