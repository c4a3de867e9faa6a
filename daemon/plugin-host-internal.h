/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Private to the plugin host (its interface is plugin-host.h): what its two
 * halves share, and nothing else includes.
 *
 *   plugin-host.c       the host proper: loads plugins, offers them the host
 *                       services, runs in-process lines, owns the request.
 *   plugin-isolation.c  isolated lines: starts latch-worker processes (or
 *                       connects to a worker_socket), keeps up to four of
 *                       them per line for calls and up to max_waiting for
 *                       waiting conversations, talks to them
 *                       (worker/proto.h) and reaps them.
 *
 * plugin-host.c reaches the isolated half only through the table of struct
 * plugin_isolation_ops, which plugin_host_configure() (plugin-isolation.c)
 * installs. latch-worker's host is never configured and runs its one line
 * in-process, so latch-worker links none of the code that starts, keeps and
 * reaps workers.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <latch/plugin.h>

#include "macro.h"
#include "plugin-host.h"

/* One loaded shared object, kept until the host is freed. */
struct plugin_module {
        struct plugin_module *next;
        char *path;  /* as dlopen()ed */
        char *name;  /* basename without ".so": log prefix and kv namespace */
        void *dl;
        const struct latch_plugin *plugin;
};

struct plugin_isolation;
struct plugin_isolation_ops;

struct plugin_host {
        char *plugin_dir;
        struct plugin_kv kv; /* all NULL: kv_get and kv_update answer -ENOTSUP */
        int64_t (*now)(void *userdata);
        void *now_userdata;
        plugin_log_fn log_fn;
        void *log_userdata;

        pthread_mutex_t lock; /* guards `modules` and dlerror() */
        struct plugin_module *modules;

        /* Set by plugin_host_configure(); until then every line runs
         * in-process. Read and written on the loop thread only. */
        const struct plugin_isolation_ops *isolation_ops;
        struct plugin_isolation *isolation;
};

/* What a plugin holds as its `struct latch_ctx *`: the line's identity. */
struct latch_ctx {
        struct plugin_host *host;
        struct plugin_module *module; /* NULL on an isolated line */
        /* While open() runs, error lines are kept here (first one wins) and
         * handed back in the open error rather than logged. */
        bool opening;
        char *open_error;
};

struct isolated_line;
struct worker;

struct plugin_line {
        struct latch_ctx ctx; /* first: the plugin's ctx pointer is the line's */
        void *state;
        const char *name;      /* the module's name, or iso_name */
        char *iso_name;
        bool has_outcome;      /* set at open, read-only afterwards */
        struct isolated_line *iso; /* NULL: the plugin runs in this process */
};

/* One prompt a plugin posted (host->prompt()). */
struct req_prompt {
        int style;
        char *message;
};

/* A line's slot in a request (host->set_data()), or an isolated line's
 * worker kept for the request while a conversation waits. */
struct req_slot {
        const struct plugin_line *line;
        void *data;
        void (*cleanup)(void *data);
        struct worker *pinned; /* isolated lines: the worker holding the plugin's state */
};

struct latch_req {
        char *op;
        char *service;
        char *user;
        char *password; /* secret: wiped on free; NULL until sent or answered */
        char *oldpassword; /* secret (LATCH_ITEM_OLDPASSWORD): wiped; NULL until set */
        char *remote;
        unsigned items_changed; /* 1 << item, for each item host->set_item() set */
        bool password_unsure; /* an update-pass call reached a worker, whose answer was lost */

        pthread_mutex_t claims_lock;
        json_t *claims;

        /* The conversation. A request is called by one thread at a time
         * (the stack runs its lines in turn), so none of this is locked. */
        const struct plugin_line *calling; /* the line inside auth()/account()/password(), or NULL */
        int calling_type; /* the enum stack_type of the last call (answers to prompts of the
                           * password stack never become the password) */
        struct req_prompt prompts[LATCH_PROMPTS_MAX]; /* posted by the call that returned INCOMPLETE */
        size_t n_prompts;
        bool challenge;    /* the last call returned INCOMPLETE and may be continued */
        char **answers;    /* one per prompt (NULL for info/error): secrets, wiped */
        size_t n_answers;
        struct req_slot *slots;
        size_t n_slots;
};

/* Forget the prompts posted / the answers given (wiped). */
void req_prompts_clear(struct latch_req *r);
void req_answers_clear(struct latch_req *r);
/* Posts a prompt as host->prompt() does, without the in-a-call check:
 * returns its index or a negative errno. */
int req_post_prompt(struct latch_req *req, int style, const char *message);

/* The slot of `l` in `req`, made when `create` (NULL when absent or out of
 * memory). */
struct req_slot *latch_req_slot(struct latch_req *req, const struct plugin_line *l, bool create);

/* The isolated half, as plugin-host.c calls it. */
struct plugin_isolation_ops {
        /* Opens `plugin` as an isolated line when the configuration says its
         * lines run isolated: returns 1 and the line in *ret; 0 when the
         * line runs in-process (nothing was done); or a negative errno and
         * a message as plugin_line_open() does. */
        int (*line_open)(struct plugin_host *h, const char *plugin, int argc, const char *const *argv,
                         struct plugin_line **ret, char **ret_error);
        /* Lets the line's workers go and frees l->iso (not the line). */
        void (*line_close)(struct plugin_line *l);
        /* plugin_line_call() and plugin_line_outcome() on an isolated
         * line (the latter only when the plugin has an outcome()). */
        int (*call)(struct plugin_line *l, enum stack_type type, struct latch_req *req, int flags);
        void (*outcome)(struct plugin_line *l, struct latch_req *req, int result);
        /* Kills the worker kept for a request whose conversation ended
         * without continuing it (its plugin state goes with it). */
        void (*unpin)(const struct plugin_line *l, struct worker *w);
        /* Reaps (or, after a grace, kills) the workers let go, and frees
         * h->isolation. */
        void (*host_free)(struct plugin_host *h);
};

/* From plugin-host.c, for the isolated half. */

/* Sets *ret_error (when not NULL) to a malloc()ed message, or NULL when out
 * of memory (the errno returned alongside still tells). */
_printf_(2, 3) void plugin_set_error(char **ret_error, const char *fmt, ...);

/* Maps `plugin` as a stack line names it to a file and a short name. */
int plugin_resolve(const struct plugin_host *h, const char *plugin, char **ret_path, char **ret_name,
                   char **ret_error);

/* Logs a line about plugin `name` (and `req`, when not NULL). A plugin's own
 * lines get the plugin's name and the request in front; `raw` lines (the
 * host's own) name the plugin already. */
void plugin_host_emit(const struct plugin_host *h, int priority, const char *name, const struct latch_req *req,
                      bool raw, const char *msg);
_printf_(6, 7) void plugin_host_emitf(const struct plugin_host *h, int priority, const char *name,
                                      const struct latch_req *req, bool raw, const char *fmt, ...);

/* The clock plugins see (host->now()). */
int64_t plugin_host_now(const struct plugin_host *h);

/* The host services claim_set_string and claim_append_string, with their
 * checks: an isolated plugin's claims come back through them. */
int plugin_claim_set_string(struct latch_req *req, const char *name, const char *value);
int plugin_claim_append_string(struct latch_req *req, const char *name, const char *value);
