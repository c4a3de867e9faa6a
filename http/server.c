/* SPDX-License-Identifier: MIT */
/*
 * libmicrohttpd glue: one thread per connection (a login may wait seconds
 * on latchd's throttling without holding up anyone else's /auth), each with
 * its own liblatch client; request bodies are collected, capped and wiped;
 * the path picks the route.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http.h"
#include "macro.h"
#include "policy.h"

/* Long enough for latchd's failure backoff (throttle max_delay, 15 s by
 * default) and a slow PAM backend. */
#define LATCHD_TIMEOUT_MS 30000

int http_listen_unix(const char *path, mode_t mode) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (strlen(path) >= sizeof sa.sun_path)
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        /* Created with `mode` from the start, whatever the umask: no moment
         * when more peers may connect than `mode` lets in. */
        mode_t old = umask(0777 & ~mode);
        int r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        umask(old);
        if (r < 0)
                return negative_errno();
        if (listen(fd, SOMAXCONN) < 0) {
                r = negative_errno();
                (void) unlink(path);
                return r;
        }
        return TAKE_FD(fd);
}

static pthread_key_t client_key;
static pthread_once_t client_key_once = PTHREAD_ONCE_INIT;

static void client_destroy(void *p) {
        latch_client_free(p);
}

static void client_key_make(void) {
        if (pthread_key_create(&client_key, client_destroy) != 0)
                abort();
}

latch_client *http_client(const struct http_config *c) {
        latch_client *client;

        pthread_once(&client_key_once, client_key_make);
        client = pthread_getspecific(client_key);
        if (client)
                return client;
        if (latch_client_new(c->latchd_socket, &client) != LATCH_OK)
                return NULL;
        (void) latch_client_set_timeout(client, LATCHD_TIMEOUT_MS);
        if (pthread_setspecific(client_key, client) != 0) {
                latch_client_free(client);
                return NULL;
        }
        return client;
}

const char *http_header(const struct http_request *r, const char *name) {
        return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *http_query(const struct http_request *r, const char *name) {
        return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_remote(const struct http_request *r, char *buf, size_t size) {
        if (!r->config->proxy_header)
                return NULL;
        if (http_remote_from_header(http_header(r, r->config->proxy_header), buf, size) < 0)
                return NULL;
        return buf;
}

struct MHD_Response *http_response_new(const char *type, const char *body) {
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(body ? strlen(body) : 0, (void *) (body ? body : ""),
                                                MHD_RESPMEM_MUST_COPY);
        if (!resp)
                return NULL;
        if ((type && !http_response_header(resp, "Content-Type", type)) ||
            !http_response_header(resp, "Cache-Control", "no-store") ||
            !http_response_header(resp, "X-Content-Type-Options", "nosniff")) {
                MHD_destroy_response(resp);
                return NULL;
        }
        return resp;
}

/* libmicrohttpd's free callback of a secret body: wiped first. */
static void secret_body_free(void *body) {
        sodium_memzero(body, strlen(body));
        free(body);
}

struct MHD_Response *http_response_new_secret(const char *type, char *body) {
        struct MHD_Response *resp =
                MHD_create_response_from_buffer_with_free_callback(strlen(body), body, secret_body_free);
        if (!resp) {
                secret_body_free(body);
                return NULL;
        }
        if ((type && !http_response_header(resp, "Content-Type", type)) ||
            !http_response_header(resp, "Cache-Control", "no-store") ||
            !http_response_header(resp, "X-Content-Type-Options", "nosniff")) {
                MHD_destroy_response(resp);
                return NULL;
        }
        return resp;
}

bool http_response_header(struct MHD_Response *resp, const char *name, const char *value) {
        return http_header_value_is_safe(value) && MHD_add_response_header(resp, name, value) == MHD_YES;
}

enum MHD_Result http_respond(struct http_request *r, unsigned status, struct MHD_Response *resp) {
        if (!resp)
                return MHD_NO;
        enum MHD_Result k = MHD_queue_response(r->conn, status, resp);
        MHD_destroy_response(resp);
        return k;
}

enum MHD_Result http_respond_text(struct http_request *r, unsigned status, const char *text) {
        _cleanup_free_ char *line = NULL;
        if (asprintf(&line, "%s\n", text) < 0)
                return MHD_NO;
        return http_respond(r, status, http_response_new("text/plain; charset=utf-8", line));
}

static void request_free(struct http_request *r) {
        if (!r)
                return;
        if (r->body) {
                sodium_memzero(r->body, r->body_len);
                free(r->body);
        }
        free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe) {
        request_free(*req_cls);
        *req_cls = NULL;
}

static bool method_is(const struct http_request *r, const char *m) {
        return streq(r->method, m);
}

static enum MHD_Result dispatch(struct http_request *r) {
        bool get = method_is(r, "GET") || method_is(r, "HEAD");
        bool post = method_is(r, "POST");

        if (r->body_too_large)
                return http_respond_text(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");

        static const struct {
                const char *path;
                enum MHD_Result (*get)(struct http_request *r);
                enum MHD_Result (*post)(struct http_request *r);
        } routes[] = {
                { "/auth", route_auth, NULL },
                { "/login", route_login_form, route_login },
                { "/login/step", route_login_step_form, route_login_step },
                { "/login-redirect", route_login_redirect, NULL },
                { "/logout", NULL, route_logout },
                { "/password", route_password_form, route_password },
                { "/password/step", route_password_step_form, route_password_step },
                { "/token", route_token, NULL },
                { "/.well-known/jwks.json", route_jwks, NULL },
                { "/account/totp", route_account_totp, NULL },
                { "/account/totp/enroll", NULL, route_account_totp_enroll },
                { "/account/totp/enroll/step", route_account_totp_enroll_step_form, route_account_totp_enroll_step },
                { "/account/totp/confirm", NULL, route_account_totp_confirm },
                { "/account/totp/remove", NULL, route_account_totp_remove },
                { "/account/totp/remove/step", route_account_totp_remove_step_form, route_account_totp_remove_step },
        };
        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                if (!streq(r->url, routes[i].path))
                        continue;
                if (get && routes[i].get)
                        return routes[i].get(r);
                if (post && routes[i].post)
                        return routes[i].post(r);
                struct MHD_Response *resp = http_response_new("text/plain; charset=utf-8", "method not allowed\n");
                if (resp && !http_response_header(resp, "Allow", routes[i].get && routes[i].post ? "GET, HEAD, POST"
                                                                   : routes[i].get ? "GET, HEAD" : "POST")) {
                        MHD_destroy_response(resp);
                        resp = NULL;
                }
                return http_respond(r, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
        }
        return http_respond_text(r, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls) {
        const struct http_config *c = cls;
        struct http_request *r = *req_cls;

        if (!r) {
                /* The headers are in; the body (if any) comes in later calls. */
                r = calloc(1, sizeof *r);
                if (!r)
                        return MHD_NO;
                *r = (struct http_request) { .config = c, .conn = conn, .method = method, .url = url };
                *req_cls = r;
                const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
                if (cl && strtoull(cl, NULL, 10) > HTTP_BODY_MAX) {
                        /* Answering now means the body is never read. */
                        r->body_too_large = true;
                        return dispatch(r);
                }
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (r->body_too_large || n > HTTP_BODY_MAX - r->body_len) {
                        r->body_too_large = true;
                        return MHD_YES;
                }
                if (!r->body) {
                        r->body = malloc(HTTP_BODY_MAX + 1);
                        if (!r->body)
                                return MHD_NO;
                }
                memcpy(r->body + r->body_len, upload_data, n);
                r->body_len += n;
                r->body[r->body_len] = '\0';
                return MHD_YES;
        }
        return dispatch(r);
}

int http_server_start(const struct http_config *c, int fd, struct MHD_Daemon **ret) {
        struct MHD_Daemon *d = MHD_start_daemon(
                MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                on_request, (void *) c,
                MHD_OPTION_LISTEN_SOCKET, fd,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned) c->max_connections,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 60,
                /* Headers beyond this are refused with a 4xx by libmicrohttpd. */
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 32768,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                MHD_OPTION_STRICT_FOR_CLIENT, 1,
                MHD_OPTION_END);
        if (!d)
                return -EIO;
        *ret = d;
        return 0;
}
