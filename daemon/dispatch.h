/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The op table and who may call what (docs/PROTOCOL.md, "Who may call what").
 *
 *   anyone    any peer that can open the socket
 *   service   further checked per service by the op: a peer must be allowed
 *             by that service's allow_users/allow_groups (or the service has
 *             neither key)
 *   admin     uid 0 or a member of [access] admin_groups
 */

#include <stdbool.h>

#include "conn.h"
#include "request.h"

enum op_access { OP_ANYONE, OP_SERVICE, OP_ADMIN };

struct op {
        const char *name;
        enum op_access access;
        void (*handler)(struct request *r);
};

extern const struct op ops[];
extern const unsigned n_ops;

/* Finds the op, checks access, runs the handler; every path replies. */
void dispatch_request(struct request *r);

bool access_is_admin(const struct daemon *d, const struct peer *p);
/* Whether the peer may use `service` (which need not have a section). */
bool access_service_allowed(const struct daemon *d, const struct peer *p, const char *service);

/* Op handlers (op-*.c). */
void op_hello(struct request *r);
void op_stats(struct request *r);
void op_reload(struct request *r);
void op_authenticate(struct request *r);
void op_login(struct request *r);
void op_validate(struct request *r);
void op_logout(struct request *r);
void op_sessions_list(struct request *r);
void op_sessions_revoke(struct request *r);
void op_token(struct request *r);
void op_verify(struct request *r);
void op_jwks(struct request *r);
void op_keys_rotate(struct request *r);
