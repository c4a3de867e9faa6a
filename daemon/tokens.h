/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

struct daemon;

/* Signs a JWT for a live session (docs/TOKENS.md): the session's
 * plugin claims, then iss, sub, aud (audience, else the service's
 * configured audience, else its name), iat, nbf, exp (never past the
 * session's absolute expiry), jti, sid. Loop thread. Returns 0 and a
 * malloc()ed token, or a negative errno. */
int token_issue(struct daemon *d, const struct session_info *s, const char *audience, char **ret_token,
                int64_t *ret_exp);

/* Whether tokens of `service` may name `audience`: its own audience (the
 * configured one, else its name) or one listed in [service.NAME]
 * audiences. Without this a peer of one service could mint tokens that
 * another service's apps accept, bypassing that service's stack. */
bool token_audience_allowed(const struct daemon *d, const char *service, const char *audience);

/* The longest a token may live under the current config, plus the leeway:
 * how long a retired key must stay published. */
int64_t token_max_lifetime(const struct daemon *d);
