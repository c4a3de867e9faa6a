/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * latchd.conf and its drop-ins (latchd.conf(5)), parsed with inih.
 *
 * A config is immutable once loaded; a reload builds a new one and swaps it
 * only when the whole load succeeded.
 */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Called for each problem: "FILE", LINE (0 when not about a line), message. */
typedef void (*config_diag_fn)(void *userdata, const char *file, unsigned line, const char *message);

struct service_config {
        char *name;
        int64_t idle_timeout;      /* seconds; -1: from [session] */
        int64_t absolute_timeout;  /* -1: from [session] */
        int64_t token_lifetime;    /* -1: from [token] */
        char *audience;            /* NULL: the service name */
        char **audiences;          /* further audiences its tokens may name */
        size_t n_audiences;
        uid_t *allow_uids;
        size_t n_allow_uids;
        gid_t *allow_gids;
        size_t n_allow_gids;
        bool restricted;           /* allow_users or allow_groups was set */
        bool revoke_on_password_change; /* default yes: a change revokes the user's other sessions */
        unsigned line;             /* where the section starts, for messages */
        char *file;
};

struct plugin_config {
        char *name;
        int64_t timeout_ms;        /* deadline of one call */
        int isolate;               /* -1: default for that plugin, 0 no, 1 yes */
        uint32_t max_requests;     /* an isolated worker is replaced after this many */
        uint32_t max_waiting;      /* isolated workers kept for waiting conversations, per line */
        char *worker_socket;       /* NULL: spawn latch-worker processes; else connect here */
};

struct config {
        char *file;                /* the main file as given */
        char *dir;                 /* its folder: relative paths resolve here */

        char *socket;
        char *state_dir;
        char *services_dir;
        char *plugin_dir;
        char *jwks_file;
        unsigned workers;          /* pool threads; resolved: never 0 */
        unsigned max_connections;
        uint32_t max_frame;
        int64_t client_timeout;    /* seconds */
        int64_t conversation_timeout; /* seconds: an unanswered challenge is forgotten */

        int64_t idle_timeout;
        int64_t absolute_timeout;
        int64_t sweep_interval;

        char *issuer;
        int64_t token_lifetime;
        int64_t token_leeway;
        char *algorithm;           /* "EdDSA" or "Ed25519" */
        int64_t rotate_every;      /* 0: never */

        gid_t *admin_gids;
        size_t n_admin_gids;
        gid_t *stats_gids;         /* [access] stats_groups: may call `stats` */
        size_t n_stats_gids;

        bool throttle;
        int64_t throttle_max_delay;

        struct service_config *services;
        size_t n_services;
        struct plugin_config *plugins;
        size_t n_plugins;
};

/* Loads `file` (which must exist) and FILE.d/ *.conf in lexical order, later
 * keys winning. Every problem goes to diag. Returns 0 and a new config, or
 * -EINVAL when any problem was reported, -ENOENT / -EACCES when the main
 * file cannot be read (also reported), -ENOMEM. */
int config_load(const char *file, config_diag_fn diag, void *userdata, struct config **ret);

/* As config_load(), but when problems were reported (-EINVAL) *ret still
 * gets the config as far as it loaded, each bad value left at its default:
 * --check-config goes on with it to check the stacks and plugins too, so
 * that one run shows every problem. Never run a daemon on it. */
int config_load_partial(const char *file, config_diag_fn diag, void *userdata, struct config **ret);

/* Only the built-in defaults (for running without a config file). */
int config_default(struct config **ret);

void config_free(struct config *c); /* NULL is fine */

/* The [service.NAME] section, or NULL. */
const struct service_config *config_service(const struct config *c, const char *name);
/* The [plugin.NAME] section, or NULL. */
const struct plugin_config *config_plugin(const struct config *c, const char *name);

/* Effective per-service values, falling back to [session]/[token]. */
int64_t config_idle_timeout(const struct config *c, const struct service_config *s);
int64_t config_absolute_timeout(const struct config *c, const struct service_config *s);
int64_t config_token_lifetime(const struct config *c, const struct service_config *s);
/* Whether a password change through service s (NULL: a service without a
 * section) revokes the user's other sessions: yes unless the section says no. */
bool config_revoke_on_password_change(const struct service_config *s);

/* "90s", "30min", "8h", "2d" or plain seconds → seconds. -EINVAL, -ERANGE. */
int parse_duration(const char *s, int64_t *ret);
int parse_bool(const char *s, bool *ret);
