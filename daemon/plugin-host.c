/* SPDX-License-Identifier: MIT */

/*
 * The plugin host proper (plugin-host.h): loading plugins, the host
 * services, in-process lines and the request. Isolated lines are
 * plugin-isolation.c's, reached through h->isolation_ops (see
 * plugin-host-internal.h).
 */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"
#include "plugin-host-internal.h"
#include "secret.h"
#include "utf8.h"
#include "wire.h"

/* The size of struct latch_plugin in ABI 1.0: a plugin of any 1.x minor has
 * at least these fields. */
#define LATCH_PLUGIN_SIZE_1_0 \
        (offsetof(struct latch_plugin, outcome) + sizeof(((struct latch_plugin *) NULL)->outcome))

/* Whether a plugin's struct (of `size` bytes as it knows it) has `field`:
 * minor versions only append, so an older plugin's struct ends before it. */
#define PLUGIN_HAS(p, field) \
        ((p)->size >= offsetof(struct latch_plugin, field) + sizeof(((struct latch_plugin *) NULL)->field))

#define CLAIM_NAME_MAX 64

static const struct latch_host host_services;

/* ---- helpers ---- */

/* Returns the formatted text in a new string, or NULL when out of memory. */
static _printf_(1, 0) char *format_va(const char *fmt, va_list ap) {
        char *s;

        if (vasprintf(&s, fmt, ap) < 0)
                return NULL;
        return s;
}

_printf_(2, 3) void plugin_set_error(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (!ret_error)
                return;

        va_start(ap, fmt);
        *ret_error = format_va(fmt, ap); /* NULL on ENOMEM: the errno still tells */
        va_end(ap);
}

static bool plugin_name_is_valid(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '_' || *s == '-'))
                        return false;
        return true;
}

static bool path_has_dotdot(const char *path) {
        for (const char *p = path; (p = strstr(p, "..")); p += 2)
                if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
                        return true;
        return false;
}

int plugin_resolve(const struct plugin_host *h, const char *plugin, char **ret_path, char **ret_name,
                   char **ret_error) {
        _cleanup_free_ char *path = NULL, *name = NULL;

        if (plugin[0] == '/') {
                const char *base;
                size_t n;

                if (path_has_dotdot(plugin)) {
                        plugin_set_error(ret_error, "invalid plugin path '%s': '..' is not allowed", plugin);
                        return -EINVAL;
                }
                base = strrchr(plugin, '/') + 1;
                n = strlen(base);
                if (n > 3 && streq(base + n - 3, ".so"))
                        n -= 3;
                if (n == 0) {
                        plugin_set_error(ret_error, "invalid plugin path '%s'", plugin);
                        return -EINVAL;
                }
                path = strdup(plugin);
                name = strndup(base, n);
        } else {
                if (!plugin_name_is_valid(plugin)) {
                        plugin_set_error(ret_error,
                                  "invalid plugin name '%s': use a name of [A-Za-z0-9_-] or an absolute path",
                                  plugin);
                        return -EINVAL;
                }
                if (asprintf(&path, "%s/%s.so", h->plugin_dir, plugin) < 0)
                        path = NULL;
                name = strdup(plugin);
        }
        if (!path || !name)
                return -ENOMEM;

        *ret_path = TAKE_PTR(path);
        *ret_name = TAKE_PTR(name);
        return 0;
}

static void plugin_module_free(struct plugin_module *m) {
        if (!m)
                return;
        if (m->dl)
                dlclose(m->dl);
        free(m->path);
        free(m->name);
        free(m);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct plugin_module *, plugin_module_free);

/* dlopen()s and checks one plugin. Takes ownership of path and name, even on
 * failure. Called with h->lock held (dlerror() and the module list). */
static int plugin_module_load(const char *plugin, char *path, char *name,
                              struct plugin_module **ret, char **ret_error) {
        _cleanup_(plugin_module_freep) struct plugin_module *m = NULL;
        latch_plugin_entry_fn entry;
        const struct latch_plugin *p;

        m = calloc(1, sizeof(*m));
        if (!m) {
                free(path);
                free(name);
                return -ENOMEM;
        }
        m->path = path;
        m->name = name;

        m->dl = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);
        if (!m->dl) {
                const char *e = dlerror();
                int r = access(m->path, F_OK) < 0 && errno == ENOENT ? -ENOENT : -ELIBBAD;

                plugin_set_error(ret_error, "cannot load plugin '%s': %s", plugin, e ?: "unknown dlopen() error");
                return r;
        }

        /* A data-to-function pointer conversion that POSIX guarantees for
         * dlsym(); going through memcpy keeps -Wpedantic quiet. */
        void *sym = dlsym(m->dl, LATCH_PLUGIN_ENTRY_SYMBOL);
        if (!sym) {
                plugin_set_error(ret_error, "plugin %s has no entry symbol %s", m->path, LATCH_PLUGIN_ENTRY_SYMBOL);
                return -ENOEXEC;
        }
        memcpy(&entry, &sym, sizeof(entry));

        p = entry(&host_services);
        if (!p) {
                plugin_set_error(ret_error, "plugin %s refused latchd's ABI %d.%d", m->path, LATCH_PLUGIN_ABI_MAJOR,
                          LATCH_PLUGIN_ABI_MINOR);
                return -EPROTONOSUPPORT;
        }
        /* size, abi_major and abi_minor sit at the same place in every ABI;
         * nothing else may be read before the major is known to match. */
        if (p->abi_major != LATCH_PLUGIN_ABI_MAJOR) {
                plugin_set_error(ret_error, "plugin %s speaks ABI %u.%u, latchd speaks %d.%d", m->path,
                          (unsigned) p->abi_major, (unsigned) p->abi_minor, LATCH_PLUGIN_ABI_MAJOR,
                          LATCH_PLUGIN_ABI_MINOR);
                return -EPROTONOSUPPORT;
        }
        if (p->size < LATCH_PLUGIN_SIZE_1_0) {
                plugin_set_error(ret_error, "plugin %s: struct latch_plugin has %u bytes, ABI %d.0 needs %zu",
                          m->path, (unsigned) p->size, LATCH_PLUGIN_ABI_MAJOR, LATCH_PLUGIN_SIZE_1_0);
                return -ENOEXEC;
        }
        if (!p->name) {
                plugin_set_error(ret_error, "plugin %s: struct latch_plugin has no name", m->path);
                return -ENOEXEC;
        }
        m->plugin = p;

        *ret = TAKE_PTR(m);
        return 0;
}

static int plugin_host_get_module(struct plugin_host *h, const char *plugin, struct plugin_module **ret,
                                  char **ret_error) {
        char *path = NULL, *name = NULL;
        struct plugin_module *m;
        int r;

        r = plugin_resolve(h, plugin, &path, &name, ret_error);
        if (r < 0)
                return r;

        pthread_mutex_lock(&h->lock);
        for (m = h->modules; m; m = m->next)
                if (streq(m->path, path))
                        break;
        if (m) {
                free(path);
                free(name);
                r = 0;
        } else {
                r = plugin_module_load(plugin, path, name, &m, ret_error);
                if (r >= 0) {
                        m->next = h->modules;
                        h->modules = m;
                }
        }
        pthread_mutex_unlock(&h->lock);
        if (r < 0)
                return r;

        *ret = m;
        return 0;
}

/* ---- logging ---- */

/* Every line a plugin logs, and every line the host logs about a plugin,
 * goes through here. A plugin's lines get the plugin's name (and the
 * request's service and user) in front; the host's own (`raw`) already name
 * the plugin ("plugin 'pam': worker crashed ..."). */
void plugin_host_emit(const struct plugin_host *h, int priority, const char *name, const struct latch_req *req,
                      bool raw, const char *msg) {
        if (h && h->log_fn) {
                h->log_fn(h->log_userdata, priority, name, req, msg);
                return;
        }
        /* log_fields() escapes the field values; the text is escaped here. */
        const char *const fields[] = {"LATCH_PLUGIN", name,
                                      "LATCH_SERVICE", req ? req->service : NULL,
                                      "LATCH_USER", req ? req->user : NULL,
                                      "LATCH_REMOTE", req ? req->remote : NULL,
                                      NULL};
        if (raw)
                log_fields(priority, fields, "%s", log_esc_text(msg));
        else if (!req)
                log_fields(priority, fields, "%s: %s", name, log_esc_text(msg));
        else
                log_fields(priority, fields, "%s (service '%s', user '%s'): %s", name, log_esc(req->service),
                           log_esc(req->user), log_esc_text(msg));
}

static void host_emit(const struct plugin_host *h, int priority, const char *name, const struct latch_req *req,
                      const char *msg) {
        plugin_host_emit(h, priority, name, req, false, msg);
}

_printf_(6, 7) void plugin_host_emitf(const struct plugin_host *h, int priority, const char *name,
                                      const struct latch_req *req, bool raw, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        msg = format_va(fmt, ap);
        va_end(ap);
        if (!msg)
                return;
        plugin_host_emit(h, priority, name, req, raw, msg);
}

void plugin_host_set_log(struct plugin_host *h, plugin_log_fn fn, void *userdata) {
        if (!h)
                return;
        h->log_fn = fn;
        h->log_userdata = userdata;
}

/* ---- host services ---- */

static _printf_(4, 5) void host_log(const struct latch_ctx *cctx, const struct latch_req *req, int priority,
                                    const char *fmt, ...) {
        struct latch_ctx *ctx = (struct latch_ctx *) cctx; /* the host's own object */
        _cleanup_free_ char *msg = NULL;
        const char *name = ctx && ctx->module ? ctx->module->name : "plugin";
        va_list ap;

        if (!fmt)
                return;

        va_start(ap, fmt);
        msg = format_va(fmt, ap);
        va_end(ap);
        if (!msg)
                return;

        /* A plugin may not raise alerts or emergencies, nor pick a facility. */
        priority = MAX(LOG_ERR, LOG_PRI(priority));

        if (ctx && ctx->opening && priority <= LOG_ERR) {
                if (!ctx->open_error)
                        ctx->open_error = TAKE_PTR(msg);
                return;
        }

        host_emit(ctx ? ctx->host : NULL, priority, name, req, msg);
}

int64_t plugin_host_now(const struct plugin_host *h) {
        if (h && h->now)
                return h->now(h->now_userdata);
        return (int64_t) time(NULL);
}

static int64_t host_now(const struct latch_ctx *ctx) {
        return plugin_host_now(ctx ? ctx->host : NULL);
}

static const char *host_item(const struct latch_req *req, int item) {
        if (!req)
                return NULL;

        switch (item) {
        case LATCH_ITEM_SERVICE:
                return req->service;
        case LATCH_ITEM_USER:
                return req->user;
        case LATCH_ITEM_PASSWORD:
                return req->password;
        case LATCH_ITEM_REMOTE:
                return req->remote;
        case LATCH_ITEM_OP:
                return req->op;
        case LATCH_ITEM_OLDPASSWORD:
                return req->oldpassword;
        default:
                return NULL;
        }
}

static char **secret_item_slot(struct latch_req *r, int item) {
        switch (item) {
        case LATCH_ITEM_PASSWORD:
                return &r->password;
        case LATCH_ITEM_OLDPASSWORD:
                return &r->oldpassword;
        default:
                return NULL;
        }
}

int latch_req_set_item(struct latch_req *r, int item, const char *value) {
        char **slot, *copy = NULL;

        assert_return(r, -EINVAL);
        slot = secret_item_slot(r, item);
        if (!slot)
                return -EINVAL;
        if (value) {
                size_t n = strlen(value);
                if (n > LATCH_ANSWER_MAX)
                        return -EINVAL;
                copy = secret_strndup(value, n);
                if (!copy)
                        return -ENOMEM;
        }
        secret_free(*slot);
        *slot = copy;
        return 0;
}

const char *latch_req_item(const struct latch_req *r, int item) {
        if (!r)
                return NULL;
        if (item == LATCH_ITEM_PASSWORD)
                return r->password;
        if (item == LATCH_ITEM_OLDPASSWORD)
                return r->oldpassword;
        return NULL;
}

unsigned latch_req_take_items_changed(struct latch_req *r) {
        unsigned m;

        if (!r)
                return 0;
        m = r->items_changed;
        r->items_changed = 0;
        return m;
}

void latch_req_begin_expired_change(struct latch_req *r) {
        if (!r)
                return;
        /* The password the login was made with is the current one now:
         * moved, not copied, so that one copy of it exists. */
        secret_free(r->oldpassword);
        r->oldpassword = TAKE_PTR(r->password);
}

/* host->set_item() (ABI 1.2): only inside a call, as pam_set_item() of
 * PAM_AUTHTOK and PAM_OLDAUTHTOK is only for modules. */
static int host_set_item(struct latch_req *req, int item, const char *value) {
        int r;

        if (!req || !req->calling)
                return -ENOTSUP;
        r = latch_req_set_item(req, item, value);
        if (r >= 0)
                req->items_changed |= 1U << item;
        return r;
}

static int claim_name_check(const char *name) {
        static const char *const registered[] = {"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid"};
        size_t n;

        if (!name)
                return -EINVAL;
        n = strlen(name);
        if (n < 1 || n > CLAIM_NAME_MAX)
                return -EINVAL;
        for (const char *p = name; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '_' || *p == '.' || *p == ':' || *p == '-'))
                        return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(registered); i++)
                if (streq(name, registered[i]))
                        return -EPERM;
        return 0;
}

int plugin_claim_set_string(struct latch_req *req, const char *name, const char *value) {
        json_t *v;
        int r;

        if (!req || !value)
                return -EINVAL;
        r = claim_name_check(name);
        if (r < 0)
                return r;

        v = json_string(value); /* NULL for invalid UTF-8 as well */
        if (!v)
                return -EINVAL;

        pthread_mutex_lock(&req->claims_lock);
        r = json_object_set_new(req->claims, name, v) < 0 ? -ENOMEM : 0;
        pthread_mutex_unlock(&req->claims_lock);
        return r;
}

int plugin_claim_append_string(struct latch_req *req, const char *name, const char *value) {
        json_t *v, *a;
        int r = 0;

        if (!req || !value)
                return -EINVAL;
        r = claim_name_check(name);
        if (r < 0)
                return r;

        v = json_string(value);
        if (!v)
                return -EINVAL;

        pthread_mutex_lock(&req->claims_lock);
        a = json_object_get(req->claims, name);
        if (!a) {
                a = json_array();
                if (!a || json_object_set_new(req->claims, name, a) < 0)
                        r = -ENOMEM;
        } else if (!json_is_array(a))
                r = -EINVAL; /* set as a string before: appending would change its type */
        if (r >= 0 && json_array_append_new(a, TAKE_PTR(v)) < 0)
                r = -ENOMEM;
        pthread_mutex_unlock(&req->claims_lock);

        json_decref(v);
        return r;
}

static int host_kv_get(const struct latch_ctx *ctx, const void *key, size_t keylen, void *buf, size_t *len) {
        if (!ctx || !ctx->host)
                return -EINVAL;
        if (!ctx->host->kv.get)
                return -ENOTSUP;
        if (!key || keylen == 0 || keylen > LATCH_KV_KEY_MAX || !len || (!buf && *len > 0))
                return -EINVAL;

        return ctx->host->kv.get(ctx->host->kv.userdata, ctx->module->name, key, keylen, buf, len);
}

static int host_kv_update(const struct latch_ctx *ctx, const void *key, size_t keylen, latch_kv_update_fn fn,
                          void *userdata) {
        if (!ctx || !ctx->host)
                return -EINVAL;
        if (!ctx->host->kv.update)
                return -ENOTSUP;
        if (!key || keylen == 0 || keylen > LATCH_KV_KEY_MAX || !fn)
                return -EINVAL;

        return ctx->host->kv.update(ctx->host->kv.userdata, ctx->module->name, key, keylen, fn, userdata);
}

/* ---- host services: conversations (ABI 1.1) ---- */

/* A prompt holds text to show: no C0 control but '\n' and '\t', no DEL,
 * and nothing utf8_cp_deceives() names (C1 controls, separators, bidi
 * controls), with which a plugin, or a PAM module whose messages the pam
 * plugin relays, could make a prompt read as something else. */
static bool prompt_message_ok(const char *m) {
        size_t n = strlen(m);

        if (n == 0 || n > LATCH_PROMPT_MESSAGE_MAX || !wire_utf8_valid(m, n))
                return false;
        for (const unsigned char *p = (const unsigned char *) m; *p;) {
                uint32_t cp;
                size_t used = utf8_decode((const char *) p, &cp);
                if (used == 0 || (cp < 0x20 && cp != '\n' && cp != '\t') || cp == 0x7f || utf8_cp_deceives(cp))
                        return false;
                p += used;
        }
        return true;
}

int req_post_prompt(struct latch_req *req, int style, const char *message) {
        char *m;

        if (style < LATCH_PROMPT_SECRET || style > LATCH_PROMPT_INFO || !message || !prompt_message_ok(message))
                return -EINVAL;
        if (req->n_prompts >= LATCH_PROMPTS_MAX)
                return -E2BIG;
        m = strdup(message);
        if (!m)
                return -ENOMEM;
        req->prompts[req->n_prompts] = (struct req_prompt){ .style = style, .message = m };
        return (int) req->n_prompts++;
}

static int host_prompt(struct latch_req *req, int style, const char *message) {
        if (!req || !req->calling)
                return -ENOTSUP;
        return req_post_prompt(req, style, message);
}

static const char *host_answer(const struct latch_req *req, int index) {
        if (!req || !req->calling || index < 0 || (size_t) index >= req->n_answers)
                return NULL;
        return req->answers[index];
}

struct req_slot *latch_req_slot(struct latch_req *req, const struct plugin_line *l, bool create) {
        struct req_slot *a;

        for (size_t i = 0; i < req->n_slots; i++)
                if (req->slots[i].line == l)
                        return &req->slots[i];
        if (!create)
                return NULL;
        a = realloc(req->slots, (req->n_slots + 1) * sizeof(*a));
        if (!a)
                return NULL;
        req->slots = a;
        a[req->n_slots] = (struct req_slot){ .line = l };
        return &a[req->n_slots++];
}

static int host_set_data(struct latch_req *req, void *data, void (*cleanup)(void *data)) {
        struct req_slot *s;

        if (!req || !req->calling)
                return -ENOTSUP;
        s = latch_req_slot(req, req->calling, true);
        if (!s)
                return -ENOMEM;
        if (s->cleanup && s->data != data)
                s->cleanup(s->data);
        s->data = data;
        s->cleanup = cleanup;
        return 0;
}

static void *host_get_data(const struct latch_req *req) {
        struct req_slot *s;

        if (!req || !req->calling)
                return NULL;
        s = latch_req_slot((struct latch_req *) req, req->calling, false);
        return s ? s->data : NULL;
}

static const struct latch_host host_services = {
        .size = sizeof(struct latch_host),
        .abi_major = LATCH_PLUGIN_ABI_MAJOR,
        .abi_minor = LATCH_PLUGIN_ABI_MINOR,
        .log = host_log,
        .now = host_now,
        .item = host_item,
        .claim_set_string = plugin_claim_set_string,
        .claim_append_string = plugin_claim_append_string,
        .kv_get = host_kv_get,
        .kv_update = host_kv_update,
        .prompt = host_prompt,
        .answer = host_answer,
        .set_data = host_set_data,
        .get_data = host_get_data,
        .set_item = host_set_item,
};

/* ---- the host ---- */

int plugin_host_new_kv(const char *plugin_dir, const struct plugin_kv *kv, struct plugin_host **ret) {
        struct plugin_host *h;

        assert_return(plugin_dir, -EINVAL);
        assert_return(ret, -EINVAL);

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->plugin_dir = strdup(plugin_dir);
        if (!h->plugin_dir) {
                free(h);
                return -ENOMEM;
        }
        if (kv)
                h->kv = *kv;
        pthread_mutex_init(&h->lock, NULL);

        *ret = h;
        return 0;
}

void plugin_host_free(struct plugin_host *h) {
        if (!h)
                return;

        if (h->isolation_ops)
                h->isolation_ops->host_free(h);

        while (h->modules) {
                struct plugin_module *m = h->modules;
                h->modules = m->next;
                plugin_module_free(m);
        }
        pthread_mutex_destroy(&h->lock);
        free(h->plugin_dir);
        free(h);
}

void plugin_host_set_clock(struct plugin_host *h, int64_t (*now)(void *userdata), void *userdata) {
        if (!h)
                return;
        h->now = now;
        h->now_userdata = userdata;
}

int plugin_host_load(struct plugin_host *h, const char *plugin, char **ret_error) {
        struct plugin_module *m;

        assert_return(h, -EINVAL);
        assert_return(plugin, -EINVAL);

        return plugin_host_get_module(h, plugin, &m, ret_error);
}

int plugin_line_open(struct plugin_host *h, const char *plugin, int argc, const char *const *argv,
                     struct plugin_line **ret, char **ret_error) {
        struct plugin_module *m;
        struct plugin_line *l;
        void *state = NULL;
        int r;

        assert_return(h, -EINVAL);
        assert_return(plugin, -EINVAL);
        assert_return(argc >= 0, -EINVAL);
        assert_return(argc == 0 || argv, -EINVAL);
        assert_return(ret, -EINVAL);

        if (h->isolation_ops) {
                r = h->isolation_ops->line_open(h, plugin, argc, argv, ret, ret_error);
                if (r != 0)
                        return MIN(r, 0);
        }

        r = plugin_host_get_module(h, plugin, &m, ret_error);
        if (r < 0)
                return r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->ctx.host = h;
        l->ctx.module = m;
        l->name = m->name;
        l->has_outcome = m->plugin->outcome != NULL;

        if (m->plugin->open) {
                l->ctx.opening = true;
                r = m->plugin->open(&host_services, &l->ctx, argc, argv, &state);
                l->ctx.opening = false;
                if (r < 0) {
                        if (l->ctx.open_error)
                                plugin_set_error(ret_error, "plugin '%s': %s", m->name, l->ctx.open_error);
                        else
                                plugin_set_error(ret_error, "plugin '%s' failed to open: %s", m->name, strerror(-r));
                        free(l->ctx.open_error);
                        free(l);
                        return r;
                }
                /* Error lines from an open() that succeeded are still worth
                 * seeing. */
                if (l->ctx.open_error) {
                        host_emit(h, LOG_ERR, m->name, NULL, l->ctx.open_error);
                        free(l->ctx.open_error);
                        l->ctx.open_error = NULL;
                }
        }
        l->state = state;

        *ret = l;
        return 0;
}

void plugin_line_close(struct plugin_line *l) {
        if (!l)
                return;
        if (l->iso)
                l->ctx.host->isolation_ops->line_close(l);
        else if (l->ctx.module && l->ctx.module->plugin->close)
                l->ctx.module->plugin->close(l->state);
        free(l->iso_name);
        free(l);
}

const char *plugin_line_name(const struct plugin_line *l) {
        assert_return(l, NULL);
        return l->name;
}

bool plugin_line_is_isolated(const struct plugin_line *l) {
        assert_return(l, false);
        return l->iso;
}

bool plugin_line_has_outcome(const struct plugin_line *l) {
        assert_return(l, false);
        return l->has_outcome;
}

int plugin_line_call(struct plugin_line *l, enum stack_type type, struct latch_req *req, int flags) {
        const struct latch_plugin *p;
        int (*fn)(void *state, struct latch_req *req) = NULL;
        int r;

        assert_return(l, LATCH_SYSTEM_ERR);
        assert_return(req, LATCH_SYSTEM_ERR);
        assert_return((unsigned) type < _STACK_TYPE_MAX, LATCH_SYSTEM_ERR);
        /* As the ABI promises password(): exactly one pass, perhaps for an
         * expired password, nothing else; and no flags for auth or account. */
        if (type == STACK_PASSWORD)
                assert_return((flags & ~(LATCH_PRELIM_CHECK | LATCH_UPDATE_AUTHTOK | LATCH_CHANGE_EXPIRED_AUTHTOK)) == 0 &&
                                      !(flags & LATCH_PRELIM_CHECK) != !(flags & LATCH_UPDATE_AUTHTOK),
                              LATCH_SYSTEM_ERR);
        else
                assert_return(flags == 0, LATCH_SYSTEM_ERR);

        /* Prompts belong to the call that posted them. */
        req_prompts_clear(req);
        req->challenge = false;
        req->calling_type = (int) type;

        if (l->iso) {
                r = l->ctx.host->isolation_ops->call(l, type, req, flags);
                req_answers_clear(req);
                return r;
        }

        p = l->ctx.module->plugin;
        if (type == STACK_PASSWORD) {
                /* A plugin of ABI 1.0 or 1.1 has no password(): its struct
                 * ends before it, and reading past it reads garbage. */
                if (!PLUGIN_HAS(p, password) || !p->password) {
                        req_answers_clear(req);
                        return LATCH_MODULE_UNKNOWN;
                }
        } else {
                fn = type == STACK_AUTH ? p->auth : p->account;
                if (!fn) {
                        req_answers_clear(req);
                        return LATCH_MODULE_UNKNOWN;
                }
        }

        /* A 1.0 plugin cannot ask, and has always been given a password:
         * ask for it on its behalf (the answer becomes the password). */
        if (fn && !req->password && p->abi_minor == 0) {
                r = req_post_prompt(req, LATCH_PROMPT_SECRET, "Password:");
                if (r < 0) {
                        req_answers_clear(req);
                        return LATCH_SYSTEM_ERR;
                }
                req->challenge = true;
                return LATCH_INCOMPLETE;
        }

        req->calling = l;
        r = fn ? fn(l->state, req) : p->password(l->state, req, flags);
        req->calling = NULL;
        req_answers_clear(req);
        if (r < 0 || r >= _LATCH_RESULT_MAX) {
                plugin_host_emitf(l->ctx.host, LOG_ERR, l->name, NULL, false,
                                  "%s() returned %d, which is no result; taking it as system_err",
                                  stack_type_to_string(type), r);
                r = LATCH_SYSTEM_ERR;
        }
        if (r == LATCH_INCOMPLETE && l->ctx.module->plugin->abi_minor >= 1)
                req->challenge = true;
        else
                req_prompts_clear(req);
        return r;
}

void plugin_line_outcome(struct plugin_line *l, struct latch_req *req, int result) {
        if (!l || !req)
                return;
        req_prompts_clear(req);
        req_answers_clear(req);
        if (l->iso) {
                if (l->has_outcome)
                        l->ctx.host->isolation_ops->outcome(l, req, result);
                return;
        }
        if (l->ctx.module->plugin->outcome)
                l->ctx.module->plugin->outcome(l->state, req, result);
}

/* ---- the request ---- */

void req_prompts_clear(struct latch_req *r) {
        for (size_t i = 0; i < r->n_prompts; i++)
                free(r->prompts[i].message);
        r->n_prompts = 0;
}

void req_answers_clear(struct latch_req *r) {
        for (size_t i = 0; i < r->n_answers; i++)
                secret_free(r->answers[i]);
        free(r->answers);
        r->answers = NULL;
        r->n_answers = 0;
}

bool latch_req_challenge(const struct latch_req *r) {
        return r && r->challenge;
}

bool latch_req_password_unsure(const struct latch_req *r) {
        return r && r->password_unsure;
}

size_t latch_req_n_prompts(const struct latch_req *r) {
        return r && r->challenge ? r->n_prompts : 0;
}

int latch_req_prompt(const struct latch_req *r, size_t i, const char **ret_message) {
        assert_return(r, -EINVAL);
        if (!r->challenge || i >= r->n_prompts)
                return -ERANGE;
        if (ret_message)
                *ret_message = r->prompts[i].message;
        return r->prompts[i].style;
}

static bool style_answers(int style) {
        return style == LATCH_PROMPT_SECRET || style == LATCH_PROMPT_TEXT;
}

size_t latch_req_n_answers_expected(const struct latch_req *r) {
        size_t n = 0;

        for (size_t i = 0; r && r->challenge && i < r->n_prompts; i++)
                n += style_answers(r->prompts[i].style);
        return n;
}

bool latch_req_has_password(const struct latch_req *r) {
        return r && r->password;
}

int latch_req_set_answers(struct latch_req *r, const char *const *answers, size_t n) {
        char **a;
        size_t k = 0;

        assert_return(r, -EINVAL);
        assert_return(n == 0 || answers, -EINVAL);
        if (!r->challenge || n != latch_req_n_answers_expected(r))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!answers[i] || strlen(answers[i]) > LATCH_ANSWER_MAX)
                        return -EINVAL;

        a = calloc(r->n_prompts ?: 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_prompts; i++) {
                if (!style_answers(r->prompts[i].style))
                        continue;
                a[i] = secret_strndup(answers[k], strlen(answers[k]));
                if (!a[i])
                        goto nomem;
                k++;
        }
        /* As pam_get_authtok() sets PAM_AUTHTOK: the first password asked
         * for is the request's password from now on. Not in the password
         * stack, where the current password, the new one and its repetition
         * are all asked: its plugins set the items themselves. */
        for (size_t i = 0; i < r->n_prompts && !r->password && r->calling_type != STACK_PASSWORD; i++)
                if (r->prompts[i].style == LATCH_PROMPT_SECRET) {
                        r->password = secret_strndup(a[i], strlen(a[i]));
                        if (!r->password)
                                goto nomem;
                }

        req_answers_clear(r);
        r->answers = a;
        r->n_answers = r->n_prompts;
        r->challenge = false;
        req_prompts_clear(r);
        return 0;

nomem:
        for (size_t i = 0; i < r->n_prompts; i++)
                secret_free(a[i]);
        free(a);
        return -ENOMEM;
}

int latch_req_new(const char *op, const char *service, const char *user, const char *password,
                  const char *remote, struct latch_req **ret) {
        struct latch_req *r;

        assert_return(op, -EINVAL);
        assert_return(service, -EINVAL);
        assert_return(user, -EINVAL);
        assert_return(ret, -EINVAL);

        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->claims_lock, NULL);
        r->op = strdup(op);
        r->service = strdup(service);
        r->user = strdup(user);
        r->password = password ? secret_strndup(password, strlen(password)) : NULL;
        r->remote = remote ? strdup(remote) : NULL;
        r->claims = json_object();
        if (!r->op || !r->service || !r->user || (password && !r->password) || (remote && !r->remote) ||
            !r->claims) {
                latch_req_free(r);
                return -ENOMEM;
        }

        *ret = r;
        return 0;
}

void latch_req_free(struct latch_req *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_slots; i++) {
                struct req_slot *sl = &r->slots[i];
                if (sl->cleanup)
                        sl->cleanup(sl->data);
                if (sl->pinned)
                        sl->line->ctx.host->isolation_ops->unpin(sl->line, sl->pinned);
        }
        free(r->slots);
        req_prompts_clear(r);
        req_answers_clear(r);
        free(r->op);
        free(r->service);
        free(r->user);
        secret_free(r->password);
        secret_free(r->oldpassword);
        free(r->remote);
        json_decref(r->claims);
        pthread_mutex_destroy(&r->claims_lock);
        free(r);
}

json_t *latch_req_claims(struct latch_req *r) {
        assert_return(r, NULL);
        return r->claims;
}
