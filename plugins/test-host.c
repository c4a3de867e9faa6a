/* SPDX-License-Identifier: MIT */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-host.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char *log_buf;
static size_t log_len;

static void host_log(const struct latch_ctx *ctx, const struct latch_req *req, int priority,
                     const char *fmt, ...) LATCH_PLUGIN_PRINTF(4, 5);
static void host_log(const struct latch_ctx *ctx, const struct latch_req *req, int priority,
                     const char *fmt, ...) {
        char line[1024];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        fprintf(stderr, "[%s <%d>%s%s] %s\n", ctx && ctx->name ? ctx->name : "?", priority,
                req && req->user ? " user=" : "", req && req->user ? req->user : "", line);

        pthread_mutex_lock(&log_lock);
        size_t n = strlen(line);
        char *b = realloc(log_buf, log_len + n + 2);
        if (b) {
                log_buf = b;
                memcpy(log_buf + log_len, line, n);
                log_len += n;
                log_buf[log_len++] = '\n';
                log_buf[log_len] = '\0';
        }
        pthread_mutex_unlock(&log_lock);
}

void test_host_log_reset(void) {
        pthread_mutex_lock(&log_lock);
        free(log_buf);
        log_buf = NULL;
        log_len = 0;
        pthread_mutex_unlock(&log_lock);
}

unsigned test_host_log_count(const char *needle) {
        unsigned n = 0;

        pthread_mutex_lock(&log_lock);
        for (const char *p = log_buf; p && *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);
                if (memmem(p, len, needle, strlen(needle)))
                        n++;
                p += len + (nl ? 1 : 0);
        }
        pthread_mutex_unlock(&log_lock);
        return n;
}

static int64_t host_now(const struct latch_ctx *ctx) { return TEST_HOST_NOW; }

static const char *host_item(const struct latch_req *req, int item) {
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

static bool claim_registered(const char *name) {
        static const char *const reg[] = { "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid" };
        for (size_t i = 0; i < sizeof reg / sizeof reg[0]; i++)
                if (strcmp(name, reg[i]) == 0)
                        return true;
        return false;
}

static int host_claim_set_string(struct latch_req *req, const char *name, const char *value) {
        if (claim_registered(name))
                return -EPERM;
        return json_object_set_new(req->claims, name, json_string(value)) < 0 ? -ENOMEM : 0;
}

static int host_claim_append_string(struct latch_req *req, const char *name, const char *value) {
        if (claim_registered(name))
                return -EPERM;
        json_t *a = json_object_get(req->claims, name);
        if (!a) {
                a = json_array();
                if (!a || json_object_set_new(req->claims, name, a) < 0)
                        return -ENOMEM;
        }
        if (!json_is_array(a))
                return -EINVAL;
        return json_array_append_new(a, json_string(value)) < 0 ? -ENOMEM : 0;
}

static int host_kv_get(const struct latch_ctx *ctx, const void *key, size_t keylen, void *buf,
                       size_t *len) {
        return -ENOTSUP;
}

static int host_kv_update(const struct latch_ctx *ctx, const void *key, size_t keylen,
                          latch_kv_update_fn fn, void *userdata) {
        return -ENOTSUP;
}

static int host_prompt(struct latch_req *req, int style, const char *message) {
        if (style < LATCH_PROMPT_SECRET || style > LATCH_PROMPT_INFO || !message)
                return -EINVAL;
        if (req->n_prompts >= LATCH_PROMPTS_MAX)
                return -E2BIG;
        req->styles[req->n_prompts] = style;
        req->prompts[req->n_prompts] = strdup(message);
        return req->n_prompts++;
}

static const char *host_answer(const struct latch_req *req, int index) {
        return index >= 0 && index < req->n_answers ? req->answers[index] : NULL;
}

static int host_set_data(struct latch_req *req, void *data, void (*cleanup)(void *data)) {
        if (req->cleanup && req->data != data)
                req->cleanup(req->data);
        req->data = data;
        req->cleanup = cleanup;
        return 0;
}

static void *host_get_data(const struct latch_req *req) { return req->data; }

static void wipe_free(char **p) {
        if (*p) {
                explicit_bzero(*p, strlen(*p));
                free(*p);
                *p = NULL;
        }
}

static int host_set_item(struct latch_req *req, int item, const char *value) {
        char **copy;
        const char **cur;

        switch (item) {
        case LATCH_ITEM_PASSWORD:
                copy = &req->password_copy;
                cur = &req->password;
                break;
        case LATCH_ITEM_OLDPASSWORD:
                copy = &req->oldpassword_copy;
                cur = &req->oldpassword;
                break;
        default:
                return -EINVAL;
        }
        if (value && strlen(value) > LATCH_ANSWER_MAX)
                return -EINVAL;
        char *n = NULL;
        if (value && !(n = strdup(value)))
                return -ENOMEM;
        wipe_free(copy);
        *copy = n;
        *cur = n;
        req->n_set_items++;
        return 0;
}

const struct latch_host test_host = {
        .size = sizeof(struct latch_host),
        .abi_major = LATCH_PLUGIN_ABI_MAJOR,
        .abi_minor = LATCH_PLUGIN_ABI_MINOR,
        .log = host_log,
        .now = host_now,
        .item = host_item,
        .claim_set_string = host_claim_set_string,
        .claim_append_string = host_claim_append_string,
        .kv_get = host_kv_get,
        .kv_update = host_kv_update,
        .prompt = host_prompt,
        .answer = host_answer,
        .set_data = host_set_data,
        .get_data = host_get_data,
        .set_item = host_set_item,
};

struct latch_req test_req(const char *user, const char *password) {
        return (struct latch_req) {
                .service = "test",
                .user = user,
                .password = password,
                .op = "authenticate",
                .claims = json_object(),
        };
}

struct latch_req test_req_passwd(const char *user) {
        struct latch_req req = test_req(user, NULL);
        req.op = "passwd";
        return req;
}

static void drop_prompts(struct latch_req *req) {
        for (int i = 0; i < req->n_prompts; i++)
                free(req->prompts[i]);
        req->n_prompts = 0;
}

void test_req_answer(struct latch_req *req, int n, const char *const *answers) {
        drop_prompts(req);
        if (n < 0)
                n = 0;
        if (n > LATCH_PROMPTS_MAX)
                n = LATCH_PROMPTS_MAX;
        for (int i = 0; i < n; i++)
                req->answers[i] = answers[i];
        req->n_answers = n;
}

int test_password(const struct latch_plugin *plugin, void *state, struct latch_req *req,
                  int flags) {
        if (plugin->size < offsetof(struct latch_plugin, password) + sizeof(plugin->password) ||
            !plugin->password)
                return LATCH_MODULE_UNKNOWN;
        return plugin->password(state, req, flags);
}

void test_req_done(struct latch_req *req) {
        json_decref(req->claims);
        req->claims = NULL;
        drop_prompts(req);
        req->n_answers = 0;
        wipe_free(&req->password_copy);
        wipe_free(&req->oldpassword_copy);
        req->password = NULL;
        req->oldpassword = NULL;
        if (req->cleanup)
                req->cleanup(req->data);
        req->cleanup = NULL;
        req->data = NULL;
}

int test_host_load(const char *path, void **ret_dl, const struct latch_plugin **ret_plugin) {
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
                return -1;
        }
        latch_plugin_entry_fn entry;
        *(void **) &entry = dlsym(dl, LATCH_PLUGIN_ENTRY_SYMBOL);
        if (!entry) {
                fprintf(stderr, "%s: no %s\n", path, LATCH_PLUGIN_ENTRY_SYMBOL);
                dlclose(dl);
                return -1;
        }
        const struct latch_plugin *p = entry(&test_host);
        if (!p || p->size < sizeof(struct latch_plugin) ||
            p->abi_major != LATCH_PLUGIN_ABI_MAJOR || !p->name) {
                fprintf(stderr, "%s: entry refused the host or has a bad header\n", path);
                dlclose(dl);
                return -1;
        }
        *ret_dl = dl;
        *ret_plugin = p;
        return 0;
}

int test_host_foreign_exports(const char *path, bool *ret_has_entry) {
        char cmd[4096], line[1024];
        int foreign = 0;
        bool has_entry = false;

        snprintf(cmd, sizeof cmd, "nm -D --defined-only '%s'", path);
        FILE *f = popen(cmd, "r");
        if (!f)
                return -1;
        while (fgets(line, sizeof line, f)) {
                char *tok[3] = {};
                int n = 0;
                for (char *save = NULL, *t = strtok_r(line, " \t\n", &save); t && n < 3;
                     t = strtok_r(NULL, " \t\n", &save))
                        tok[n++] = t;
                if (n < 2)
                        continue;
                char *name = tok[n - 1];
                const char *type = tok[n - 2];
                /* "latch_plugin_entry@@LATCH_PLUGIN_1": drop the version */
                char *at = strchr(name, '@');
                if (at)
                        *at = '\0';
                if (strcmp(name, "latch_plugin_entry") == 0 && strcmp(type, "T") == 0)
                        has_entry = true;
                else if (strcmp(name, "LATCH_PLUGIN_1") == 0 && strcmp(type, "A") == 0)
                        continue;
                else {
                        fprintf(stderr, "%s exports %s (%s)\n", path, name, type);
                        foreign++;
                }
        }
        if (pclose(f) != 0)
                return -1;
        *ret_has_entry = has_entry;
        return foreign;
}
