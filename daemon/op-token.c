/* SPDX-License-Identifier: MIT */
/* token, verify, jwks, keys.rotate, and token issuance for login. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "daemon.h"
#include "dispatch.h"
#include "jwt.h"
#include "keys.h"
#include "log.h"
#include "ops-common.h"
#include "secret.h"
#include "session.h"
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

struct token_lookup {
        struct daemon *d;
        struct request *r;
        const char *audience;
        bool found;
};

static int token_for_session(void *userdata, const struct session_info *s) {
        struct token_lookup *t = userdata;
        char *token = NULL;
        int64_t exp = 0;

        t->found = true;
        if (!access_service_allowed(t->d, &t->r->conn->peer, s->service)) {
                reply_error(t->r, "forbidden", "this peer may not use this session's service");
                return 1;
        }
        if (!token_audience_allowed(t->d, s->service, t->audience)) {
                reply_error(t->r, "forbidden", "this service may not issue tokens for that audience");
                return 1;
        }
        int k = token_issue(t->d, s, t->audience, &token, &exp);
        if (k < 0) {
                log_msg(LOG_ERR, "token: cannot sign: %s", strerror(-k));
                reply_error(t->r, "internal", "cannot sign a token");
                return 1;
        }
        reply_ok(t->r, json_pack("{s:s, s:I}", "token", token, "expires_at", (json_int_t) exp));
        secret_free(token);
        return 1;
}

void op_token(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *session, *audience;
        uint8_t key[STORE_KEY_SIZE];
        char msg[256];

        if (arg_string(r->in.root, "session", true, OPS_MAX_SESSION, &session, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "audience", false, OPS_MAX_NAME, &audience, msg, sizeof msg) < 0) {
                reply_error(r, "bad_request", "%s", msg);
                return;
        }
        struct token_lookup t = { d, r, audience, false };
        int k = session_id_key(session, key) ? store_session_get(d->store, key, daemon_now(), token_for_session, &t)
                                              : -ENOENT;
        sodium_memzero(key, sizeof key);
        if (k == -ENOENT || (k >= 0 && !t.found))
                reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
        else if (k < 0)
                reply_error(r, "unavailable", "the session store failed; try again later");
}

static int session_exists(void *userdata, const struct session_info *s) {
        *(bool *) userdata = true;
        return 0;
}

void op_verify(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *token, *audience;
        json_t *claims = NULL;
        char msg[256];

        /* No length cap here (max_frame bounds it): the verifier refuses
         * tokens over 8 KiB with its own reason. */
        if (arg_string(r->in.root, "token", true, SIZE_MAX, &token, msg, sizeof msg) < 0 ||
            arg_string(r->in.root, "audience", false, OPS_MAX_NAME, &audience, msg, sizeof msg) < 0) {
                reply_error(r, "bad_request", "%s", msg);
                return;
        }
        struct jwt_verify_options opts = {
                .now = daemon_now(),
                .leeway = d->config->token_leeway,
                .audience = audience,
                .issuer = d->config->issuer,
        };
        int e = keyring_verify(d->keys, token, strlen(token), &opts, &claims);
        if (e == JWT_ERR_NOMEM || e == JWT_ERR_KEYSET) {
                /* Our failure, not the token's. */
                log_msg(LOG_ERR, "verify: %s", jwt_strerror(e));
                reply_error(r, "internal", "cannot verify tokens right now");
                return;
        }
        if (e != JWT_OK) {
                reply_error(r, "invalid_token", "%s", jwt_strerror(e));
                return;
        }
        const char *sid = json_string_value(json_object_get(claims, "sid"));
        bool live = false;
        int k = sid ? store_session_get_by_handle(d->store, sid, opts.now, session_exists, &live) : -ENOENT;
        if (k < 0 && k != -ENOENT) {
                json_decref(claims);
                reply_error(r, "unavailable", "the session store failed; try again later");
                return;
        }
        if (!live) {
                json_decref(claims);
                reply_error(r, "invalid_token", "the token's session has ended");
                return;
        }
        reply_ok(r, json_pack("{s:o}", "claims", claims));
}

void op_jwks(struct request *r) {
        struct daemon *d = r->conn->d;
        json_t *jwks = keyring_jwks(d->keys, d->config->algorithm);

        if (!jwks) {
                reply_error(r, "internal", "cannot build the key set");
                return;
        }
        json_t *keys = json_object_get(jwks, "keys");
        reply_ok(r, json_pack("{s:O}", "keys", keys));
        json_decref(jwks);
}

void op_keys_rotate(struct request *r) {
        struct daemon *d = r->conn->d;
        char kid[JWT_KID_LEN + 1];
        char uid[16];

        int k = keyring_rotate(d->keys, daemon_now(), token_max_lifetime(d), kid);
        if (k < 0) {
                log_msg(LOG_ERR, "keys.rotate: %s", strerror(-k));
                reply_error(r, "internal", "cannot rotate the signing key");
                return;
        }
        (void) daemon_publish_jwks(d);
        snprintf(uid, sizeof uid, "%u", (unsigned) r->conn->peer.uid);
        log_fields(LOG_NOTICE,
                   (const char *[]){ "LATCH_OP", "keys.rotate", "LATCH_RESULT", "ok", "LATCH_PEER_UID", uid,
                                     "LATCH_KID", kid, NULL },
                   "signing key rotated, new kid %s", kid);
        reply_ok(r, json_pack("{s:s}", "kid", kid));
}
