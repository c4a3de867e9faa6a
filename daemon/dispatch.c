/* SPDX-License-Identifier: MIT */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "conn.h"
#include "daemon-state.h"
#include "dispatch.h"
#include "log.h"

const struct op ops[] = {
        { "hello", OP_ANYONE, op_hello },
        { "authenticate", OP_SERVICE, op_authenticate },
        { "login", OP_SERVICE, op_login },
        { "respond", OP_SERVICE, op_respond },
        { "passwd", OP_SERVICE, op_passwd },
        { "validate", OP_SERVICE, op_validate },
        { "logout", OP_SERVICE, op_logout },
        { "token", OP_SERVICE, op_token },
        { "verify", OP_ANYONE, op_verify },
        { "jwks", OP_ANYONE, op_jwks },
        { "sessions.list", OP_ADMIN, op_sessions_list },
        { "sessions.revoke", OP_ADMIN, op_sessions_revoke },
        { "keys.rotate", OP_ADMIN, op_keys_rotate },
        { "stats", OP_MONITOR, op_stats },
        { "reload", OP_ADMIN, op_reload },
        { "plugin", OP_ADMIN_OR_SESSION, op_plugin },
};
const unsigned n_ops = ELEMENTSOF(ops);

/* A service op that names a service is checked against it before anything
 * else of the request is looked at: a refused peer learns "forbidden" and
 * nothing more (not whether the service has a stack, which audiences it may
 * issue tokens for, or what it thinks of the arguments). Ops that name a
 * session check its service as soon as they find it. */
static bool service_refused(struct request *r) {
        const char *service = json_string_value(json_object_get(r->in.root, "service"));
        struct conn *c = r->conn;

        if (!service || access_service_allowed(c->d, &c->peer, service))
                return false;
        log_fields(LOG_NOTICE,
                   (const char *[]){ "LATCH_OP", r->op->name, "LATCH_SERVICE", service, "LATCH_RESULT", "forbidden",
                                     NULL },
                   "client %s: %s refused: may not use service '%s'", c->peer_desc, r->op->name, log_esc(service));
        reply_error(r, "forbidden", "this peer may not use this service");
        return true;
}

void dispatch_request(struct request *r) {
        struct daemon *d = r->conn->d;

        for (unsigned i = 0; i < n_ops; i++) {
                if (!streq(ops[i].name, r->in.op))
                        continue;
                r->op = &ops[i];
                r->op_index = (int) i;
                /* A session is a string: a null one is absent (as arg_string()
                 * has it), which must not spare the check. */
                bool admin_needed = ops[i].access == OP_ADMIN ||
                                    (ops[i].access == OP_ADMIN_OR_SESSION &&
                                     !json_is_string(json_object_get(r->in.root, "session")));
                if ((admin_needed && !access_is_admin(d, &r->conn->peer)) ||
                    (ops[i].access == OP_MONITOR && !access_may_monitor(d, &r->conn->peer))) {
                        log_fields(LOG_NOTICE,
                                   (const char *[]){ "LATCH_OP", ops[i].name, "LATCH_RESULT", "forbidden", NULL },
                                   "client %s: %s refused: not an admin", r->conn->peer_desc, ops[i].name);
                        reply_error(r, "forbidden", "'%s' needs an admin peer%s", ops[i].name,
                                    ops[i].access == OP_MONITOR          ? " or one in [access] stats_groups"
                                    : ops[i].access == OP_ADMIN_OR_SESSION ? " (or a user's own session)"
                                                                           : "");
                        return;
                }
                if (ops[i].access == OP_SERVICE && service_refused(r))
                        return;
                ops[i].handler(r);
                return;
        }
        reply_error(r, "unknown_op", "unknown op");
}
