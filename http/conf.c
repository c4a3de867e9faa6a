/* SPDX-License-Identifier: MIT */
/* latch-http's settings: a small INI file read with inih. */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "macro.h"

static int set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static int parse_bool(const char *v, bool *ret) {
        if (strcasecmp(v, "yes") == 0 || strcasecmp(v, "true") == 0 || strcasecmp(v, "on") == 0 || streq(v, "1"))
                *ret = true;
        else if (strcasecmp(v, "no") == 0 || strcasecmp(v, "false") == 0 || strcasecmp(v, "off") == 0 || streq(v, "0"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

/* An HTTP header name (RFC 9110 token). */
static bool header_name_is_valid(const char *s) {
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
                      *s == '_'))
                        return false;
        return true;
}

/* "scheme://host[:port]", as browsers send Origin: no path, no blanks. */
static bool origin_is_valid(const char *s) {
        const char *rest;

        if (strncmp(s, "https://", 8) == 0)
                rest = s + 8;
        else if (strncmp(s, "http://", 7) == 0)
                rest = s + 7;
        else
                return false;
        if (!*rest || strlen(s) > 255)
                return false;
        for (; *rest; rest++)
                if (*rest <= ' ' || *rest >= 0x7f || strchr("/?#@\\", *rest))
                        return false;
        return true;
}

/* Cookie names as liblatch accepts them (RFC 6265 token). */
static bool cookie_name_is_valid(const char *s) {
        if (!*s || strlen(s) > 200)
                return false;
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                if (c <= 0x20 || c >= 0x7f || strchr("()<>@,;:\\\"/[]?={}", c))
                        return false;
        }
        return true;
}

static int set_origins(struct http_config *c, const char *value) {
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;
        size_t n = 0;
        char *list[HTTP_MAX_ORIGINS] = {};

        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, " \t,", &save); t; t = strtok_r(NULL, " \t,", &save)) {
                if (n >= HTTP_MAX_ORIGINS || !origin_is_valid(t))
                        goto fail;
                /* Browsers send the origin in lower case, without a default port. */
                list[n] = strdup(t);
                if (!list[n])
                        goto fail;
                n++;
        }
        for (size_t i = 0; i < c->n_origins; i++)
                free(c->origins[i]);
        memcpy(c->origins, list, sizeof list);
        c->n_origins = n;
        return 0;
fail:
        for (size_t i = 0; i < n; i++)
                free(list[i]);
        return -EINVAL;
}

bool http_metrics_listen_is_valid(const char *value) {
        if (value[0] == '/')
                return strlen(value) < 108;
        const char *colon = strrchr(value, ':');
        if (!colon || !colon[1] || strlen(colon + 1) > 5 || strspn(colon + 1, "0123456789") != strlen(colon + 1))
                return false;
        unsigned long port = strtoul(colon + 1, NULL, 10);
        if (port < 1 || port > 65535)
                return false;
        size_t hn = (size_t) (colon - value);
        if (hn == 5 && strncmp(value, "[::1]", 5) == 0)
                return true;
        /* 127.0.0.0/8, as inet_pton() reads it when latch-http binds (a
         * plain dotted quad: no sign, no leading zero, no blank). */
        char host[16];
        struct in_addr a;
        if (hn >= sizeof host)
                return false;
        memcpy(host, value, hn);
        host[hn] = '\0';
        return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

int http_config_set(struct http_config *c, const char *key, const char *value) {
        if (streq(key, "listen") || streq(key, "latchd_socket")) {
                if (!*value || strlen(value) >= 108)
                        return -EINVAL;
                return set_string(streq(key, "listen") ? &c->listen : &c->latchd_socket, value);
        }
        if (streq(key, "service")) {
                if (!*value || strlen(value) > 128 || strchr(value, '/'))
                        return -EINVAL;
                return set_string(&c->service, value);
        }
        if (streq(key, "cookie_name")) {
                if (!cookie_name_is_valid(value))
                        return -EINVAL;
                _cleanup_free_ char *csrf = NULL, *step = NULL;
                if (asprintf(&csrf, "%s-csrf", value) < 0 || asprintf(&step, "%s-step", value) < 0)
                        return -ENOMEM;
                int r = set_string(&c->cookie_name, value);
                if (r < 0)
                        return r;
                free(c->csrf_cookie_name);
                c->csrf_cookie_name = TAKE_PTR(csrf);
                free(c->step_cookie_name);
                c->step_cookie_name = TAKE_PTR(step);
                return 0;
        }
        if (streq(key, "token_on_auth"))
                return parse_bool(value, &c->token_on_auth);
        if (streq(key, "proxy_header")) {
                if (strcasecmp(value, "none") == 0 || !*value) {
                        free(c->proxy_header);
                        c->proxy_header = NULL;
                        return 0;
                }
                if (!header_name_is_valid(value))
                        return -EINVAL;
                return set_string(&c->proxy_header, value);
        }
        if (streq(key, "allowed_origins"))
                return set_origins(c, value);
        if (streq(key, "title")) {
                if (strlen(value) > 200)
                        return -EINVAL;
                return set_string(&c->title, value);
        }
        if (streq(key, "metrics_listen")) {
                if (!*value || strcasecmp(value, "none") == 0) {
                        free(c->metrics_listen);
                        c->metrics_listen = NULL;
                        return 0;
                }
                if (!http_metrics_listen_is_valid(value))
                        return -EINVAL;
                return set_string(&c->metrics_listen, value);
        }
        if (streq(key, "max_connections")) {
                char *end;
                errno = 0;
                unsigned long v = strtoul(value, &end, 10);
                if (errno || end == value || *end || v < 1 || v > 65536)
                        return -EINVAL;
                c->max_connections = (unsigned) v;
                return 0;
        }
        return -ENOENT;
}

int http_config_init(struct http_config *c) {
        *c = (struct http_config) { .max_connections = 512 };
        if (http_config_set(c, "listen", "/run/latch/http.sock") < 0 || http_config_set(c, "service", "http") < 0 ||
            http_config_set(c, "cookie_name", "__Host-latch") < 0 ||
            http_config_set(c, "proxy_header", "X-Real-IP") < 0 || http_config_set(c, "title", "Sign in") < 0) {
                http_config_done(c);
                return -ENOMEM;
        }
        return 0;
}

void http_config_done(struct http_config *c) {
        free(c->listen);
        free(c->latchd_socket);
        free(c->service);
        free(c->cookie_name);
        free(c->csrf_cookie_name);
        free(c->step_cookie_name);
        free(c->proxy_header);
        free(c->title);
        free(c->metrics_listen);
        for (size_t i = 0; i < c->n_origins; i++)
                free(c->origins[i]);
        *c = (struct http_config) {};
}

struct load_state {
        struct http_config *c;
        const char *path;
        FILE *f;
        int line;
        bool mid_line;          /* the last chunk read did not end the line */
        bool had_key;           /* a key was read: an indented line continues it */
        int first_syntax_error; /* the line inih returns for a syntax error */
        int error;
};

/* What inih refuses without calling the handler: a line that is neither
 * blank, a comment, a "[section]" nor "key = value" (or "key: value").
 * Reported here, for every such line, since inih names only the first. */
static bool line_is_syntax_error(const char *line, bool had_key) {
        const char *p = line;
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
                p++;
        if (!*p || *p == '#' || *p == ';')
                return false;
        if (p > line && had_key) /* a continuation line */
                return false;
        if (*p == '[')
                return !strchr(p, ']');
        return !strpbrk(p, "=:");
}

/* inih reads through this so that we know each key's line (Debian's inih
 * is built without INI_HANDLER_LINENO). A line longer than inih's buffer
 * comes in several chunks and counts once. */
static char *conf_reader(char *str, int num, void *stream) {
        struct load_state *s = stream;
        char *r = fgets(str, num, s->f);
        if (!r)
                return NULL;
        bool continued = s->mid_line;
        s->mid_line = !strchr(r, '\n') && !feof(s->f);
        if (continued)
                return r;
        s->line++;
        const char *p = r + strspn(r, " \t");
        if (*p == '[' && strchr(p, ']') && strncmp(p, "[http]", 6) != 0) {
                /* Its keys are not reported one by one (conf_handler). */
                fprintf(stderr, "%s:%d: unknown section %.*s (only [http] is read)\n", s->path, s->line,
                        (int) (strchr(p, ']') - p + 1), p);
                s->error = -EINVAL;
        } else if (line_is_syntax_error(r, s->had_key)) {
                fprintf(stderr, "%s:%d: syntax error: expected [section], key = value, or a # comment\n", s->path,
                        s->line);
                if (s->first_syntax_error == 0)
                        s->first_syntax_error = s->line;
                s->error = -EINVAL;
        }
        return r;
}

static int conf_handler(void *userdata, const char *section, const char *key, const char *value) {
        struct load_state *s = userdata;
        int line = s->line;

        s->had_key = true;
        if (!streq(section, "http")) /* the section's line was reported */
                return 1;
        int r = http_config_set(s->c, key, value);
        if (r == -ENOMEM) {
                s->error = r;
                return 0;
        }
        if (r == -ENOENT) {
                fprintf(stderr, "%s:%d: unknown key '%s'\n", s->path, line, key);
                s->error = -EINVAL;
        } else if (r < 0) {
                fprintf(stderr, "%s:%d: bad value for '%s'\n", s->path, line, key);
                s->error = -EINVAL;
        }
        return 1;
}

int http_config_load(struct http_config *c, const char *path, bool missing_ok) {
        struct load_state s = { .c = c, .path = path };

        FILE *f = fopen(path, "re");
        if (!f) {
                if (errno == ENOENT && missing_ok)
                        return 0;
                int r = -errno;
                fprintf(stderr, "%s: cannot open: %s\n", path, strerror(errno));
                return r;
        }
        s.f = f;
        int k = ini_parse_stream(conf_reader, &s, conf_handler, &s);
        fclose(f);
        /* Every problem has been printed, each with its line, unless inih
         * refused a line our check let through. */
        if (k > 0 && k != s.first_syntax_error) {
                fprintf(stderr, "%s:%d: syntax error\n", path, k);
                return -EINVAL;
        }
        if (s.error < 0)
                return s.error;
        if (k != 0) {
                fprintf(stderr, "%s: cannot read\n", path);
                return -EIO;
        }
        return 0;
}
