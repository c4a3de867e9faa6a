/* SPDX-License-Identifier: MIT */
/* The ops token, verify, jwks and keys.rotate; tokens.c issues the tokens. */
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

/* The session is copied out of the store's read transaction and the
 * token signed and sent after it has ended: nothing slow, and no reply,
 * happens inside the transaction. */
struct token_lookup {
        struct session_info s;
        char *buf; /* owns s's strings */
        int r;
};

static int token_copy_session(void *userdata, const struct session_info *s) {
        struct token_lookup *t = userdata;

        t->r = session_info_copy(s, &t->s, &t->buf);
        return 1;
}

void op_token(struct request *r) {
        struct daemon *d = r->conn->d;
        const char *session, *audience;
        uint8_t key[STORE_KEY_SIZE];
        struct token_lookup t = { .r = -ENOENT };
        _cleanup_secret_ char *token = NULL;
        int64_t exp = 0;

        if (ops_session_args(r, "audience", &session, &audience) < 0)
                return;
        int k = ops_session_get(d, session, key, daemon_now(), token_copy_session, &t);
        sodium_memzero(key, sizeof key);
        if (k >= 0)
                k = t.r;
        if (k == -ENOENT)
                reply_error(r, "invalid_session", INVALID_SESSION_MESSAGE);
        else if (k == -ENOMEM)
                reply_error(r, "internal", "out of memory");
        else if (k < 0)
                ops_reply_store_error(r, "token", k);
        else if (!access_service_allowed(d, &r->conn->peer, t.s.service))
                reply_error(r, "forbidden", "this peer may not use this session's service");
        else if (!token_audience_allowed(d, t.s.service, audience))
                reply_error(r, "forbidden", "this service may not issue tokens for that audience");
        else if ((k = token_issue(d, &t.s, audience, &token, &exp)) < 0) {
                log_errno(LOG_ERR, k, "token: cannot sign");
                reply_error(r, "internal", "cannot sign a token");
        } else
                reply_ok(r, json_pack("{s:s, s:I}", "token", token, "expires_at", (json_int_t) exp));
        free(t.buf);
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
                ops_reply_store_error(r, "verify", k);
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
                log_errno(LOG_ERR, k, "keys.rotate");
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
