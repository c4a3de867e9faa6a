/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The op table: each op's name, handler and access class (access.h says
 * what each class admits; docs/PROTOCOL.md, "Who may call what"). Admin ops
 * are checked here, and so are service ops that name a service, before the
 * handler sees the request; an op that names a session checks the peer
 * against the session's service as soon as it finds it.
 */

#include <stdbool.h>

#include "access.h" /* the op handlers check service access */
#include "conn.h"
#include "request.h"

/* OP_MONITOR: admins, and peers in [access] stats_groups (read-only counters).
 * OP_ADMIN_OR_SESSION: admins; with a `session` argument, any peer, which
 * the handler checks against the session's service (the self-service
 * `plugin` op). */
enum op_access { OP_ANYONE, OP_SERVICE, OP_ADMIN, OP_MONITOR, OP_ADMIN_OR_SESSION };

struct op {
        const char *name;
        enum op_access access;
        void (*handler)(struct request *r);
};

extern const struct op ops[];
extern const unsigned n_ops;

/* Finds the op, checks access, runs the handler; every path replies. */
void dispatch_request(struct request *r);


/* Op handlers (op-*.c). */
void op_hello(struct request *r);
void op_stats(struct request *r);
void op_reload(struct request *r);
void op_plugin(struct request *r);
void op_authenticate(struct request *r);
void op_login(struct request *r);
/* A password change through the service's password stack (op-auth.c). */
void op_passwd(struct request *r);
/* Continues the conversation of an authenticate, login or passwd (op-auth.c). */
void op_respond(struct request *r);
/* The conversation table's end callback (conversation.h) for the
 * conversations op-auth.c starts. */
void op_auth_conversation_end(void *payload, bool expired);
void op_validate(struct request *r);
void op_logout(struct request *r);
void op_sessions_list(struct request *r);
void op_sessions_revoke(struct request *r);
void op_token(struct request *r);
void op_verify(struct request *r);
void op_jwks(struct request *r);
void op_keys_rotate(struct request *r);
