/* SPDX-License-Identifier: MIT */
/* The typed calls, one per op of wire protocol v1, and the generic one. */

#include <string.h>

#include "client-internal.h"
#include "macro.h"

/* Finishes the request and sends it; reports a writer error (a string that
 * is not UTF-8, no memory) on the handle. */
static int client_request_send(latch_client *c, struct client_request *req, latch_reply **ret) {
        int r = client_request_end(req);
        if (r != LATCH_OK) {
                client_request_done(req);
                return client_fail(c, r, r == LATCH_ERR_INVALID_ARGUMENT ? "argument is not valid UTF-8" : NULL);
        }
        return client_call(c, req, ret);
}

/* One string argument of an op: left out when value is NULL, which is an
 * error (recorded on the handle, so that callers can print
 * latch_last_message() whatever failed) when it is required. */
struct arg {
        const char *name;
        const char *value;
        bool required;
};

#define ARGS(...) (const struct arg[]){ __VA_ARGS__ }, ELEMENTSOF(((const struct arg[]){ __VA_ARGS__ }))

static int check_args(latch_client *c, const struct arg *args, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (args[i].required && !args[i].value)
                        return client_fail(c, LATCH_ERR_INVALID_ARGUMENT, "missing argument: %s", args[i].name);
        return LATCH_OK;
}

static void add_args(struct client_request *req, const struct arg *args, size_t n) {
        for (size_t i = 0; i < n; i++)
                client_request_add_string(req, args[i].name, args[i].value);
}

/* The typed calls are this with their op's arguments. */
static int string_op(latch_client *c, const char *op, const struct arg *args, size_t n, latch_reply **ret) {
        struct client_request req;

        assert_return(c, LATCH_ERR_INVALID_ARGUMENT);
        int r = check_args(c, args, n);
        if (r != LATCH_OK)
                return r;
        client_request_begin(&req, op);
        add_args(&req, args, n);
        return client_request_send(c, &req, ret);
}

static int simple_op(latch_client *c, const char *op, latch_reply **ret) {
        return string_op(c, op, NULL, 0, ret);
}

_public_ int latch_hello(latch_client *client, latch_reply **ret) {
        return simple_op(client, "hello", ret);
}

_public_ int latch_authenticate(latch_client *client, const char *service, const char *user,
                                const char *password, const char *remote, latch_reply **ret) {
        return string_op(client, "authenticate",
                         ARGS({ "service", service, true }, { "user", user, true }, { "password", password, false },
                              { "remote", remote, false }),
                         ret);
}

_public_ int latch_login(latch_client *client, const char *service, const char *user, const char *password,
                         const char *remote, bool want_token, const char *audience, latch_reply **ret) {
        const struct arg args[] = {
                { "service", service, true }, { "user", user, true },         { "password", password, false },
                { "remote", remote, false },  { "audience", audience, false },
        };
        struct client_request req;

        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        int r = check_args(client, args, ELEMENTSOF(args));
        if (r != LATCH_OK)
                return r;
        client_request_begin(&req, "login");
        add_args(&req, args, ELEMENTSOF(args));
        if (want_token)
                client_request_add_bool(&req, "token", true);
        return client_request_send(client, &req, ret);
}

_public_ int latch_passwd(latch_client *client, const char *service, const char *user, const char *remote,
                          const char *session, latch_reply **ret) {
        return string_op(client, "passwd",
                         ARGS({ "service", service, true }, { "user", user, true }, { "remote", remote, false },
                              { "session", session, false }),
                         ret);
}

_public_ int latch_respond(latch_client *client, const char *conversation, const char *const *answers,
                           size_t n_answers, latch_reply **ret) {
        struct client_request req;

        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        int r = check_args(client, ARGS({ "conversation", conversation, true }));
        if (r != LATCH_OK)
                return r;
        if (n_answers > 0 && !answers)
                return client_fail(client, LATCH_ERR_INVALID_ARGUMENT, "answers is NULL");
        for (size_t i = 0; i < n_answers; i++)
                if (!answers[i])
                        return client_fail(client, LATCH_ERR_INVALID_ARGUMENT, "answer %zu is NULL", i);

        client_request_begin(&req, "respond");
        client_request_add_string(&req, "conversation", conversation);
        client_request_add_string_array(&req, "answers", answers, n_answers);
        return client_request_send(client, &req, ret);
}

_public_ int latch_plugin(latch_client *client, const char *plugin, const char *action, const char *session,
                          const char *password, const char *const *args, size_t n_args, latch_reply **ret) {
        const struct arg fixed[] = {
                { "plugin", plugin, true }, { "action", action, true }, { "session", session, false },
                { "password", password, false },
        };
        struct client_request req;

        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        int r = check_args(client, fixed, ELEMENTSOF(fixed));
        if (r != LATCH_OK)
                return r;
        if (password && !session)
                return client_fail(client, LATCH_ERR_INVALID_ARGUMENT, "a password re-authenticates a session: give one");
        if (n_args > 0 && !args)
                return client_fail(client, LATCH_ERR_INVALID_ARGUMENT, "args is NULL");
        for (size_t i = 0; i < n_args; i++) {
                const char *name = args[2 * i], *value = args[2 * i + 1];
                if (!name || !value)
                        return client_fail(client, LATCH_ERR_INVALID_ARGUMENT, "argument %zu is NULL", i);
                /* The op's own members are set above, once. */
                for (size_t k = 0; k < ELEMENTSOF(fixed); k++)
                        if (streq(name, fixed[k].name) || streq(name, "op") || streq(name, "id"))
                                return client_fail(client, LATCH_ERR_INVALID_ARGUMENT,
                                                   "argument '%s' is not the plugin's", name);
        }

        client_request_begin(&req, "plugin");
        add_args(&req, fixed, ELEMENTSOF(fixed));
        for (size_t i = 0; i < n_args; i++)
                client_request_add_string(&req, args[2 * i], args[2 * i + 1]);
        return client_request_send(client, &req, ret);
}

_public_ int latch_validate(latch_client *client, const char *session, const char *service, latch_reply **ret) {
        return string_op(client, "validate", ARGS({ "session", session, true }, { "service", service, false }), ret);
}

_public_ int latch_logout(latch_client *client, const char *session, latch_reply **ret) {
        return string_op(client, "logout", ARGS({ "session", session, true }), ret);
}

_public_ int latch_token(latch_client *client, const char *session, const char *audience, latch_reply **ret) {
        return string_op(client, "token", ARGS({ "session", session, true }, { "audience", audience, false }), ret);
}

_public_ int latch_verify(latch_client *client, const char *token, const char *audience, latch_reply **ret) {
        return string_op(client, "verify", ARGS({ "token", token, true }, { "audience", audience, false }), ret);
}

_public_ int latch_jwks(latch_client *client, latch_reply **ret) {
        return simple_op(client, "jwks", ret);
}

_public_ int latch_sessions_list(latch_client *client, const char *user, const char *service, latch_reply **ret) {
        return string_op(client, "sessions.list", ARGS({ "user", user, false }, { "service", service, false }), ret);
}

_public_ int latch_sessions_revoke(latch_client *client, const char *handle, const char *user, latch_reply **ret) {
        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        if (!handle == !user)
                return client_fail(client, LATCH_ERR_INVALID_ARGUMENT, "give exactly one of handle and user");
        return string_op(client, "sessions.revoke", ARGS({ "handle", handle, false }, { "user", user, false }), ret);
}

_public_ int latch_keys_rotate(latch_client *client, latch_reply **ret) {
        return simple_op(client, "keys.rotate", ret);
}

_public_ int latch_stats(latch_client *client, latch_reply **ret) {
        return simple_op(client, "stats", ret);
}

_public_ int latch_reload(latch_client *client, latch_reply **ret) {
        return simple_op(client, "reload", ret);
}

_public_ int latch_call_json(latch_client *client, const char *request_json, char **ret_response_json) {
        struct client_request req;
        latch_reply *reply = NULL;
        bool idempotent;
        int r;

        assert_return(client, LATCH_ERR_INVALID_ARGUMENT);
        r = check_args(client, ARGS({ "request_json", request_json, true }));
        if (r != LATCH_OK)
                return r;

        /* Parsed only to learn the op; the text goes out as given. */
        size_t len = strlen(request_json);
        json_t *request = json_loadb(request_json, len, JSON_REJECT_DUPLICATES, NULL);
        const char *op = json_string_value(json_object_get(request, "op"));
        if (!json_is_object(request) || !op) {
                json_wipe_strings(request);
                json_decref(request);
                return client_fail(client, LATCH_ERR_INVALID_ARGUMENT,
                                   "request is not a JSON object with a string \"op\"");
        }
        idempotent = op_is_idempotent(op);
        json_wipe_strings(request);
        json_decref(request);

        r = client_request_from_text(&req, request_json, len, idempotent);
        if (r != LATCH_OK) {
                client_request_done(&req);
                return client_fail(client, r, r == LATCH_ERR_INVALID_ARGUMENT ? "request too large" : NULL);
        }

        r = client_call(client, &req, &reply);
        if (r != LATCH_OK)
                return r;

        if (ret_response_json) {
                /* The reply's text moves out whole, so no copy of it is left. */
                *ret_response_json = TAKE_PTR(reply->raw);
        }
        latch_reply_free(reply);
        return LATCH_OK;
}
