/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <ini.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "config.h"
#include "macro.h"
#include <stdarg.h>

/* Parsing state for one load: the file being read and its current line. */
struct parse {
        struct config *c;
        const char *file;
        unsigned line;
        FILE *f;
        config_diag_fn diag;
        void *userdata;
        unsigned errors;
};

static void diag(struct parse *p, const char *fmt, ...) _printf_(2, 3);
static void diag(struct parse *p, const char *fmt, ...) {
        char msg[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        p->errors++;
        if (p->diag)
                p->diag(p->userdata, p->file, p->line, msg);
}

int parse_duration(const char *s, int64_t *ret) {
        static const struct {
                const char *suffix;
                int64_t mult;
        } units[] = {
                { "", 1 }, { "s", 1 }, { "sec", 1 }, { "min", 60 }, { "m", 60 },
                { "h", 3600 }, { "d", 86400 },
        };
        char *end;

        if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s)
                return -EINVAL;
        if (errno == ERANGE)
                return -ERANGE;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        /* Nothing in latch lasts a century: larger is a typo. */
                        if (v > (unsigned long long) (100LL * 365 * 86400 / units[i].mult))
                                return -ERANGE;
                        *ret = (int64_t) v * units[i].mult;
                        return 0;
                }
        return -EINVAL;
}

int parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "yes", "true", "on", "1" };
        static const char *const no[] = { "no", "false", "off", "0" };

        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0)
                        return *ret = true, 0;
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0)
                        return *ret = false, 0;
        return -EINVAL;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        char *end;

        if (!*s || *s == '-' || *s == '+' || *s == ' ')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end)
                return -EINVAL;
        if (errno == ERANGE || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* Relative paths are relative to the main config file's folder. */
static int set_path(struct parse *p, char **field, const char *value) {
        char *v;

        if (!*value) {
                diag(p, "empty path");
                return 0;
        }
        if (value[0] == '/' || !p->c->dir)
                v = strdup(value);
        else if (asprintf(&v, "%s/%s", p->c->dir, value) < 0)
                v = NULL;
        if (!v)
                return -ENOMEM;
        free(*field);
        *field = v;
        return 0;
}

static int set_string(char **field, const char *value) {
        char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        free(*field);
        *field = v;
        return 0;
}

static void free_string_list(char **list, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(list[i]);
        free(list);
}

/* A list of words separated by commas and/or spaces. */
static int set_string_list(char ***list, size_t *n, const char *value) {
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        free_string_list(*list, *n);
        *list = NULL;
        *n = 0;
        for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
                char **a = realloc(*list, (*n + 1) * sizeof(char *));
                if (!a)
                        return -ENOMEM;
                *list = a;
                if (!(a[*n] = strdup(t)))
                        return -ENOMEM;
                (*n)++;
        }
        return 0;
}

static void set_duration(struct parse *p, int64_t *field, const char *name, const char *value, bool zero_ok) {
        int64_t v;
        int r = parse_duration(value, &v);
        if (r == -ERANGE)
                diag(p, "%s: duration out of range: '%s'", name, value);
        else if (r < 0)
                diag(p, "%s: not a duration (use e.g. 90s, 30min, 8h, 1d): '%s'", name, value);
        else if (v == 0 && !zero_ok)
                diag(p, "%s: must be greater than zero", name);
        else
                *field = v;
}

/* Splits a list of names on commas and/or spaces, resolving each through
 * `resolve`. Unknown names are errors: a typo in an access list must not
 * silently open or close a door. */
static int set_id_list(struct parse *p, const char *name, const char *value, bool groups, uint32_t **ids,
                       size_t *n) {
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        free(*ids);
        *ids = NULL;
        *n = 0;
        for (char *t = strtok_r(copy, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
                uint32_t id;
                if (groups) {
                        struct group *g = getgrnam(t);
                        if (!g) {
                                diag(p, "%s: unknown group '%s'", name, t);
                                continue;
                        }
                        id = g->gr_gid;
                } else {
                        struct passwd *pw = getpwnam(t);
                        if (!pw) {
                                diag(p, "%s: unknown user '%s'", name, t);
                                continue;
                        }
                        id = pw->pw_uid;
                }
                uint32_t *a = realloc(*ids, (*n + 1) * sizeof(uint32_t));
                if (!a)
                        return -ENOMEM;
                *ids = a;
                a[(*n)++] = id;
        }
        return 0;
}

static bool valid_section_name(const char *s) {
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      *s == '-' || *s == '_' || *s == '.' || *s == '@'))
                        return false;
        return true;
}

static struct service_config *service_get(struct parse *p, const char *name) {
        struct config *c = p->c;
        for (size_t i = 0; i < c->n_services; i++)
                if (streq(c->services[i].name, name))
                        return &c->services[i];
        struct service_config *a = realloc(c->services, (c->n_services + 1) * sizeof(*a));
        if (!a)
                return NULL;
        c->services = a;
        struct service_config *s = &a[c->n_services];
        *s = (struct service_config){
                .name = strdup(name),
                .idle_timeout = -1,
                .absolute_timeout = -1,
                .token_lifetime = -1,
                .revoke_on_password_change = true,
                .line = p->line,
                .file = strdup(p->file),
        };
        if (!s->name || !s->file) {
                free(s->name);
                free(s->file);
                return NULL;
        }
        c->n_services++;
        return s;
}

static struct plugin_config *plugin_get(struct parse *p, const char *name) {
        struct config *c = p->c;
        for (size_t i = 0; i < c->n_plugins; i++)
                if (streq(c->plugins[i].name, name))
                        return &c->plugins[i];
        struct plugin_config *a = realloc(c->plugins, (c->n_plugins + 1) * sizeof(*a));
        if (!a)
                return NULL;
        c->plugins = a;
        struct plugin_config *pc = &a[c->n_plugins];
        *pc = (struct plugin_config){
                .name = strdup(name),
                .timeout_ms = 10000,
                .isolate = -1,
                .max_requests = 10000,
                .max_waiting = 16,
        };
        if (!pc->name)
                return NULL;
        c->n_plugins++;
        return pc;
}

static int handle_daemon(struct parse *p, const char *name, const char *value) {
        struct config *c = p->c;
        uint64_t u;

        if (streq(name, "socket"))
                return set_path(p, &c->socket, value);
        if (streq(name, "state_dir"))
                return set_path(p, &c->state_dir, value);
        if (streq(name, "services_dir"))
                return set_path(p, &c->services_dir, value);
        if (streq(name, "plugin_dir"))
                return set_path(p, &c->plugin_dir, value);
        if (streq(name, "jwks_file"))
                return set_path(p, &c->jwks_file, value);
        if (streq(name, "workers")) {
                if (parse_uint(value, 256, &u) < 0)
                        diag(p, "workers: expected a number from 0 to 256: '%s'", value);
                else
                        c->workers = (unsigned) u;
                return 0;
        }
        if (streq(name, "max_connections")) {
                if (parse_uint(value, 1000000, &u) < 0 || u == 0)
                        diag(p, "max_connections: expected a number from 1 to 1000000: '%s'", value);
                else
                        c->max_connections = (unsigned) u;
                return 0;
        }
        if (streq(name, "max_frame")) {
                if (parse_uint(value, 16 * 1024 * 1024, &u) < 0 || u < 256)
                        diag(p, "max_frame: expected bytes from 256 to 16777216: '%s'", value);
                else
                        c->max_frame = (uint32_t) u;
                return 0;
        }
        if (streq(name, "client_timeout")) {
                set_duration(p, &c->client_timeout, name, value, false);
                return 0;
        }
        if (streq(name, "conversation_timeout")) {
                set_duration(p, &c->conversation_timeout, name, value, false);
                return 0;
        }
        diag(p, "unknown key '%s' in [daemon]", name);
        return 0;
}

static int handle_key(struct parse *p, const char *section, const char *name, const char *value) {
        struct config *c = p->c;
        bool b;

        if (streq(section, "daemon"))
                return handle_daemon(p, name, value);

        if (streq(section, "session")) {
                if (streq(name, "idle_timeout"))
                        set_duration(p, &c->idle_timeout, name, value, false);
                else if (streq(name, "absolute_timeout"))
                        set_duration(p, &c->absolute_timeout, name, value, false);
                else if (streq(name, "sweep_interval"))
                        set_duration(p, &c->sweep_interval, name, value, false);
                else
                        diag(p, "unknown key '%s' in [session]", name);
                return 0;
        }

        if (streq(section, "token")) {
                if (streq(name, "issuer")) {
                        if (!*value)
                                diag(p, "issuer: must not be empty");
                        else
                                return set_string(&c->issuer, value);
                } else if (streq(name, "lifetime"))
                        set_duration(p, &c->token_lifetime, name, value, false);
                else if (streq(name, "leeway"))
                        set_duration(p, &c->token_leeway, name, value, true);
                else if (streq(name, "algorithm")) {
                        if (!streq(value, "EdDSA") && !streq(value, "Ed25519"))
                                diag(p, "algorithm: expected EdDSA or Ed25519: '%s'", value);
                        else
                                return set_string(&c->algorithm, value);
                } else if (streq(name, "rotate_every"))
                        set_duration(p, &c->rotate_every, name, value, true);
                else
                        diag(p, "unknown key '%s' in [token]", name);
                return 0;
        }

        if (streq(section, "access")) {
                if (streq(name, "admin_groups"))
                        return set_id_list(p, name, value, true, &c->admin_gids, &c->n_admin_gids);
                if (streq(name, "stats_groups"))
                        return set_id_list(p, name, value, true, &c->stats_gids, &c->n_stats_gids);
                diag(p, "unknown key '%s' in [access]", name);
                return 0;
        }

        if (streq(section, "throttle")) {
                if (streq(name, "enabled")) {
                        if (parse_bool(value, &b) < 0)
                                diag(p, "enabled: expected yes or no: '%s'", value);
                        else
                                c->throttle = b;
                } else if (streq(name, "max_delay"))
                        set_duration(p, &c->throttle_max_delay, name, value, true);
                else
                        diag(p, "unknown key '%s' in [throttle]", name);
                return 0;
        }

        if (strncmp(section, "service.", 8) == 0) {
                const char *sname = section + 8;
                if (!valid_section_name(sname)) {
                        diag(p, "invalid service name in [%s]", section);
                        return 0;
                }
                struct service_config *s = service_get(p, sname);
                if (!s)
                        return -ENOMEM;
                if (streq(name, "idle_timeout"))
                        set_duration(p, &s->idle_timeout, name, value, false);
                else if (streq(name, "absolute_timeout"))
                        set_duration(p, &s->absolute_timeout, name, value, false);
                else if (streq(name, "token_lifetime"))
                        set_duration(p, &s->token_lifetime, name, value, false);
                else if (streq(name, "audience")) {
                        if (!*value)
                                diag(p, "audience: must not be empty");
                        else
                                return set_string(&s->audience, value);
                } else if (streq(name, "audiences")) {
                        return set_string_list(&s->audiences, &s->n_audiences, value);
                } else if (streq(name, "revoke_on_password_change")) {
                        if (parse_bool(value, &b) < 0)
                                diag(p, "revoke_on_password_change: expected yes or no: '%s'", value);
                        else
                                s->revoke_on_password_change = b;
                } else if (streq(name, "allow_users")) {
                        s->restricted = true;
                        return set_id_list(p, name, value, false, &s->allow_uids, &s->n_allow_uids);
                } else if (streq(name, "allow_groups")) {
                        s->restricted = true;
                        return set_id_list(p, name, value, true, &s->allow_gids, &s->n_allow_gids);
                } else
                        diag(p, "unknown key '%s' in [%s]", name, section);
                return 0;
        }

        if (strncmp(section, "plugin.", 7) == 0) {
                const char *pname = section + 7;
                if (!valid_section_name(pname)) {
                        diag(p, "invalid plugin name in [%s]", section);
                        return 0;
                }
                struct plugin_config *pc = plugin_get(p, pname);
                uint64_t u;
                int64_t d;
                if (!pc)
                        return -ENOMEM;
                if (streq(name, "timeout")) {
                        d = pc->timeout_ms / 1000;
                        set_duration(p, &d, name, value, false);
                        pc->timeout_ms = d * 1000;
                } else if (streq(name, "isolate")) {
                        if (parse_bool(value, &b) < 0)
                                diag(p, "isolate: expected yes or no: '%s'", value);
                        else
                                pc->isolate = b;
                } else if (streq(name, "max_requests")) {
                        if (parse_uint(value, UINT32_MAX, &u) < 0 || u == 0)
                                diag(p, "max_requests: expected a positive number: '%s'", value);
                        else
                                pc->max_requests = (uint32_t) u;
                } else if (streq(name, "max_waiting")) {
                        if (parse_uint(value, 1024, &u) < 0 || u == 0)
                                diag(p, "max_waiting: expected a number from 1 to 1024: '%s'", value);
                        else
                                pc->max_waiting = (uint32_t) u;
                } else if (streq(name, "worker_socket"))
                        return set_path(p, &pc->worker_socket, value);
                else
                        diag(p, "unknown key '%s' in [%s]", name, section);
                return 0;
        }

        diag(p, "unknown section [%s]", section);
        return 0;
}

/* inih calls this for every key; a section header alone produces a call with
 * name == NULL only when built with INI_CALL_HANDLER_ON_NEW_SECTION, which
 * Debian's build is not, so empty [service.X] sections are simply ignored. */
static int conf_ini_handler(void *userdata, const char *section, const char *name, const char *value) {
        struct parse *p = userdata;
        unsigned before = p->errors;
        int r = handle_key(p, section, name, value);
        if (r < 0)
                diag(p, "%s", strerror(-r));
        return r < 0 || p->errors != before ? 0 : 1;
}

/* inih reads line by line through this, which lets us know the line number
 * of every key (Debian's inih is built without INI_HANDLER_LINENO). */
static char *conf_ini_reader(char *str, int num, void *stream) {
        struct parse *p = stream;
        char *r = fgets(str, num, p->f);
        if (!r)
                return NULL;
        p->line++;
        /* inih reports only the first line it cannot parse; check every
         * line's shape here so that each is reported. */
        const char *t = str + strspn(str, " \t\r\n");
        if (*t == '[') {
                if (!strchr(t, ']'))
                        diag(p, "syntax error: a section header needs a closing ']'");
        } else if (*t && *t != '#' && *t != ';' && !strchr(t, '=')) {
                diag(p, "syntax error: expected [section], key = value, or a comment");
        }
        return r;
}

static int parse_file(struct parse *p, const char *file, bool must_exist) {
        FILE *f;

        p->file = file;
        p->line = 0;
        f = fopen(file, "re");
        if (!f) {
                int r = -errno;
                if (r == -ENOENT && !must_exist)
                        return 0;
                diag(p, "cannot open: %s", strerror(-r));
                return r;
        }
        p->f = f;
        int r = ini_parse_stream(conf_ini_reader, p, conf_ini_handler, p);
        fclose(f);
        p->f = NULL;
        /* r > 0 is a line already reported by the reader or the handler. */
        if (r < 0) {
                diag(p, "cannot read: %s", r == -2 ? "out of memory" : "I/O error");
                return -EIO;
        }
        return 0;
}

static int config_init_defaults(struct config *c) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

        c->socket = strdup(LATCH_SOCKET_PATH);
        c->state_dir = strdup(LATCH_STATE_DIR);
        c->services_dir = strdup(LATCH_SERVICES_DIR);
        c->plugin_dir = strdup(LATCH_PLUGIN_DIR);
        c->jwks_file = strdup(LATCH_JWKS_FILE);
        c->issuer = strdup("latch");
        c->algorithm = strdup("EdDSA");
        if (!c->socket || !c->state_dir || !c->services_dir || !c->plugin_dir || !c->jwks_file || !c->issuer ||
            !c->algorithm)
                return -ENOMEM;
        c->workers = ncpu > 0 ? (unsigned) ncpu : 1;
        c->max_connections = 1024;
        c->max_frame = 65536;
        c->client_timeout = 60;
        c->conversation_timeout = 120;
        c->idle_timeout = 30 * 60;
        c->absolute_timeout = 8 * 3600;
        c->sweep_interval = 60;
        c->token_lifetime = 5 * 60;
        c->token_leeway = 30;
        c->rotate_every = 0;
        c->throttle = true;
        c->throttle_max_delay = 15;
        c->admin_gids = malloc(sizeof(gid_t));
        if (!c->admin_gids)
                return -ENOMEM;
        c->admin_gids[0] = 0;
        c->n_admin_gids = 1;
        return 0;
}

int config_default(struct config **ret) {
        struct config *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        int r = config_init_defaults(c);
        if (r < 0) {
                config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

static int dropin_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".conf");
}

static int load(const char *file, config_diag_fn diagfn, void *userdata, bool partial, struct config **ret);

int config_load(const char *file, config_diag_fn diagfn, void *userdata, struct config **ret) {
        return load(file, diagfn, userdata, false, ret);
}

int config_load_partial(const char *file, config_diag_fn diagfn, void *userdata, struct config **ret) {
        return load(file, diagfn, userdata, true, ret);
}

static int load(const char *file, config_diag_fn diagfn, void *userdata, bool partial, struct config **ret) {
        struct config *c = NULL;
        struct parse p = { .diag = diagfn, .userdata = userdata };
        int r;

        r = config_default(&c);
        if (r < 0)
                return r;
        p.c = c;
        c->file = strdup(file);
        const char *slash = strrchr(file, '/');
        if (!slash)
                c->dir = getcwd(NULL, 0);
        else if (slash == file)
                c->dir = strdup("/");
        else
                c->dir = strndup(file, (size_t) (slash - file));
        if (!c->file || !c->dir) {
                config_free(c);
                return -ENOMEM;
        }
        /* Paths from the defaults are absolute; paths from the files resolve
         * against the main file's folder, made absolute here so that a
         * daemon that changes directory keeps finding them. */
        if (c->dir && c->dir[0] != '/') {
                char cwd[PATH_MAX];
                char *abs;
                if (!getcwd(cwd, sizeof cwd) || asprintf(&abs, "%s/%s", cwd, c->dir) < 0) {
                        config_free(c);
                        return -ENOMEM;
                }
                free(c->dir);
                c->dir = abs;
        }

        r = parse_file(&p, file, true);
        if (r < 0 && r != -EIO) {
                config_free(c);
                return r;
        }

        _cleanup_free_ char *ddir = NULL;
        if (asprintf(&ddir, "%s.d", file) < 0) {
                config_free(c);
                return -ENOMEM;
        }
        struct dirent **names = NULL;
        int n = scandir(ddir, &names, dropin_filter, alphasort);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", ddir, names[i]->d_name) >= 0)
                        (void) parse_file(&p, path, false);
                free(names[i]);
        }
        free(names);

        if (c->workers == 0) {
                long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
                c->workers = ncpu > 0 ? (unsigned) ncpu : 1;
        }
        if (p.errors > 0) {
                if (partial)
                        *ret = c;
                else
                        config_free(c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

void config_free(struct config *c) {
        if (!c)
                return;
        free(c->file);
        free(c->dir);
        free(c->socket);
        free(c->state_dir);
        free(c->services_dir);
        free(c->plugin_dir);
        free(c->jwks_file);
        free(c->issuer);
        free(c->algorithm);
        free(c->admin_gids);
        free(c->stats_gids);
        for (size_t i = 0; i < c->n_services; i++) {
                free(c->services[i].name);
                free(c->services[i].file);
                free(c->services[i].audience);
                free_string_list(c->services[i].audiences, c->services[i].n_audiences);
                free(c->services[i].allow_uids);
                free(c->services[i].allow_gids);
        }
        free(c->services);
        for (size_t i = 0; i < c->n_plugins; i++) {
                free(c->plugins[i].name);
                free(c->plugins[i].worker_socket);
        }
        free(c->plugins);
        free(c);
}

const struct service_config *config_service(const struct config *c, const char *name) {
        for (size_t i = 0; i < c->n_services; i++)
                if (streq(c->services[i].name, name))
                        return &c->services[i];
        return NULL;
}

const struct plugin_config *config_plugin(const struct config *c, const char *name) {
        for (size_t i = 0; i < c->n_plugins; i++)
                if (streq(c->plugins[i].name, name))
                        return &c->plugins[i];
        return NULL;
}

int64_t config_idle_timeout(const struct config *c, const struct service_config *s) {
        return s && s->idle_timeout >= 0 ? s->idle_timeout : c->idle_timeout;
}

int64_t config_absolute_timeout(const struct config *c, const struct service_config *s) {
        return s && s->absolute_timeout >= 0 ? s->absolute_timeout : c->absolute_timeout;
}

bool config_revoke_on_password_change(const struct service_config *s) {
        return !s || s->revoke_on_password_change;
}

int64_t config_token_lifetime(const struct config *c, const struct service_config *s) {
        return s && s->token_lifetime >= 0 ? s->token_lifetime : c->token_lifetime;
}
