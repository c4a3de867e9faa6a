/* SPDX-License-Identifier: MIT */
/*
 * The service-stack engine. Parsing follows libpam's pam_handlers.c and
 * pam_misc.c (line assembly, tokens, control parsing); evaluation is a
 * transcription of the decision logic of pam_dispatch.c:_pam_dispatch_aux()
 * (non-cached-chain, with pamh->former for resumption), which is what
 * pam_authenticate(), pam_acct_mgmt() and each pass of pam_chauthtok() run;
 * pam_chauthtok()'s two passes are libpam's pam_password.c. tests/stack/
 * checks the results against the real libpam on thousands of random stacks.
 */

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "stack.h"

#define N_RESULTS _LATCH_RESULT_MAX

/* Actions, with libpam's encoding: positive values are jumps. */
#define ACTION_IGNORE 0
#define ACTION_OK (-1)
#define ACTION_DONE (-2)
#define ACTION_BAD (-3)
#define ACTION_DIE (-4)
#define ACTION_RESET (-5)
#define ACTION_UNDEF (-6)

/* A jump longer than any stack behaves like every other too-long jump, so
 * counts are clamped to this and fit an int16_t. */
#define JUMP_MAX (STACK_ENTRIES_MAX + 1)

/* libpam's "impression" of the stack so far. */
#define IMPRESSION_UNDEF 0
#define IMPRESSION_POSITIVE 1
#define IMPRESSION_NEGATIVE (-1)

/* What libpam returns when nothing decided (PAM_MUST_FAIL_CODE). */
#define MUST_FAIL_CODE LATCH_PERM_DENIED

#define FILE_SIZE_MAX (1024 * 1024)
#define LINE_SIZE_MAX (64 * 1024)

static const char *const result_names[N_RESULTS] = {
        "success", "open_err", "symbol_err", "service_err", "system_err", "buf_err",
        "perm_denied", "auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown",
        "maxtries", "new_authtok_reqd", "acct_expired", "session_err", "cred_unavail",
        "cred_expired", "cred_err", "no_module_data", "conv_err", "authtok_err",
        "authtok_recover_err", "authtok_lock_busy", "authtok_disable_aging", "try_again",
        "ignore", "abort", "authtok_expired", "module_unknown", "bad_item", "conv_again",
        "incomplete",
};

static const struct {
        const char *name;
        int action;
} action_names[] = {
        { "ignore", ACTION_IGNORE }, { "ok", ACTION_OK },   { "done", ACTION_DONE },
        { "bad", ACTION_BAD },       { "die", ACTION_DIE }, { "reset", ACTION_RESET },
};

/* A line's type: an enum stack_type, or this for "session". */
#define LINE_IGNORED _STACK_TYPE_MAX
enum line_kind { KIND_MODULE, KIND_INCLUDE, KIND_SUBSTACK };

/* One parsed line of a file, before includes are expanded. */
struct pline {
        unsigned lineno;
        uint8_t type; /* enum stack_type, or LINE_IGNORED */
        uint8_t kind; /* enum line_kind */
        bool silent;  /* "-TYPE" */
        int16_t actions[N_RESULTS];
        char *word; /* the plugin, or the include/substack target */
        int argc;
        char **argv; /* one allocation holding the pointers and the strings */
};

/* A file of the services dir, parsed once per load however often included. */
struct pfile {
        char *name;
        char *path;
        int state; /* 1 parsed, -EINVAL had errors (reported), other -errno unreadable */
        struct pline *lines;
        size_t n_lines;
};

enum entry_kind { ENTRY_MODULE, ENTRY_SUBSTACK, ENTRY_MISSING };

/* One entry of a type's flattened stack, as libpam's struct handler. */
struct stack_entry {
        void *module;  /* ENTRY_MODULE only */
        uint8_t level; /* substack nesting */
        uint8_t kind;  /* enum entry_kind */
        int16_t actions[N_RESULTS];
};

struct stack {
        const struct services *owner;
        char *name;
        struct stack_entry *entries[_STACK_TYPE_MAX];
        size_t n_entries[_STACK_TYPE_MAX];
};

struct services {
        const struct stack_module_ops *ops;
        void *ops_userdata;
        struct stack *stacks; /* sorted by name */
        size_t n_stacks;
};

struct loader {
        const char *dir;
        struct services *services;
        stack_diag_fn diag;
        void *diag_userdata;
        struct pfile **files; /* each allocated alone: pointers stay valid */
        size_t n_files;
        char **reported; /* "path:line:message" of every report, to say each once */
        size_t n_reported;
        bool failed;
        int error; /* a hard error (-ENOMEM) that stops the load */
};

const char *stack_result_to_string(int result) {
        if (result < 0 || result >= N_RESULTS)
                return NULL;
        return result_names[result];
}

int stack_result_from_string(const char *name) {
        assert_return(name, -EINVAL);

        for (int i = 0; i < N_RESULTS; i++)
                if (streq(result_names[i], name))
                        return i;
        return -EINVAL;
}

/* ---- loading ---------------------------------------------------------- */

static void loader_report(struct loader *l, const char *path, unsigned line, const char *fmt, ...)
        _printf_(4, 5);

static void loader_report(struct loader *l, const char *path, unsigned line, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL, *key = NULL;
        va_list ap;
        int r;

        l->failed = true;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                l->error = -ENOMEM;
                return;
        }

        if (asprintf(&key, "%s:%u:%s", path, line, msg) < 0) {
                key = NULL;
                l->error = -ENOMEM;
                return;
        }
        for (size_t i = 0; i < l->n_reported; i++)
                if (streq(l->reported[i], key))
                        return;

        char **n = realloc(l->reported, (l->n_reported + 1) * sizeof(char *));
        if (!n) {
                l->error = -ENOMEM;
                return;
        }
        l->reported = n;
        l->reported[l->n_reported++] = TAKE_PTR(key);

        if (l->diag)
                l->diag(l->diag_userdata, path, line, msg);
}

static void pline_done(struct pline *p) {
        free(p->word);
        free(p->argv);
}

static void pfile_free(struct pfile *f) {
        if (!f)
                return;
        for (size_t i = 0; i < f->n_lines; i++)
                pline_done(&f->lines[i]);
        free(f->lines);
        free(f->name);
        free(f->path);
        free(f);
}

static void loader_done(struct loader *l) {
        for (size_t i = 0; i < l->n_files; i++)
                pfile_free(l->files[i]);
        free(l->files);
        for (size_t i = 0; i < l->n_reported; i++)
                free(l->reported[i]);
        free(l->reported);
}

static bool is_sep(char c) {
        /* libpam splits on these only: '\r' and friends belong to tokens. */
        return c == ' ' || c == '\t' || c == '\n';
}

/*
 * The next token of a line, as libpam's _pam_StrTok(): words end at ' ', '\t'
 * or '\n'; "[...]" is one token stripped of its brackets, ending at the first
 * ']' not written "\]" ("\]" becomes ']'), and the next token may follow the
 * ']' directly. The token is NUL-terminated in place. Returns 1 and the token
 * (and whether it was bracketed), 0 at the end of the line, -EBADMSG for an
 * unterminated '[' (which libpam would take to the end of the line).
 */
static int next_token(char **p, char **ret, bool *ret_bracketed) {
        char *s = *p, *end;
        bool bracketed = false;

        while (*s && is_sep(*s))
                s++;
        if (!*s) {
                *p = s;
                return 0;
        }

        if (*s == '[') {
                char *to;

                s++;
                for (to = end = s; *end && *end != ']'; to++, end++) {
                        if (end[0] == '\\' && end[1] == ']')
                                end++;
                        *to = *end;
                }
                if (*end != ']')
                        return -EBADMSG;
                *to = '\0';
                *p = end + 1;
                bracketed = true;
        } else {
                for (end = s; *end && !is_sep(*end); end++)
                        ;
                if (*end)
                        *end++ = '\0';
                *p = end;
        }

        *ret = s;
        if (ret_bracketed)
                *ret_bracketed = bracketed;
        return 1;
}

static void set_default_actions(int16_t actions[static N_RESULTS], int action) {
        for (int i = 0; i < N_RESULTS; i++)
                if (actions[i] == ACTION_UNDEF)
                        actions[i] = (int16_t) action;
}

/*
 * Parses the inside of "[value=action ...]" as libpam's _pam_parse_control():
 * white space may surround '='; "default" sets every value not yet set; a
 * later setting of the same value wins. Stricter than libpam in one way only:
 * each value=action must be followed by white space or the end. Returns 0,
 * or -EINVAL with a message in *ret_error.
 */
static int parse_control(char *s, int16_t actions[static N_RESULTS], char **ret_error) {
        for (;;) {
                const char *name, *act;
                size_t len;
                int ret, action;

                while (isspace((unsigned char) *s))
                        s++;
                if (!*s)
                        break;

                name = s;
                while (*s && *s != '=' && !isspace((unsigned char) *s))
                        s++;
                len = (size_t) (s - name);

                if (len == 7 && strncmp(name, "default", 7) == 0)
                        ret = N_RESULTS;
                else {
                        for (ret = 0; ret < N_RESULTS; ret++)
                                if (strlen(result_names[ret]) == len &&
                                    strncmp(result_names[ret], name, len) == 0)
                                        break;
                        if (ret == N_RESULTS) {
                                if (asprintf(ret_error, "unknown return value '%.*s' in control",
                                             (int) len, name) < 0)
                                        return -ENOMEM;
                                return -EINVAL;
                        }
                }

                while (isspace((unsigned char) *s))
                        s++;
                if (*s != '=') {
                        if (asprintf(ret_error, "expected '=' after '%.*s' in control", (int) len,
                                     name) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }
                s++;
                while (isspace((unsigned char) *s))
                        s++;

                act = s;
                while (*s && !isspace((unsigned char) *s))
                        s++;
                if (s == act) {
                        if (asprintf(ret_error, "missing action for '%.*s' in control", (int) len,
                                     name) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }

                action = ACTION_UNDEF;
                if (isdigit((unsigned char) *act)) {
                        const char *d;
                        long n = 0;

                        for (d = act; d < s && isdigit((unsigned char) *d); d++)
                                n = MIN(n * 10 + (*d - '0'), (long) JUMP_MAX);
                        if (d == s && n > 0)
                                action = (int) n;
                        else if (d == s) {
                                if (asprintf(ret_error, "jump of 0 for '%.*s' in control "
                                             "(use 'ignore')", (int) len, name) < 0)
                                        return -ENOMEM;
                                return -EINVAL;
                        }
                } else
                        for (size_t i = 0; i < ELEMENTSOF(action_names); i++)
                                if (strlen(action_names[i].name) == (size_t) (s - act) &&
                                    strncmp(action_names[i].name, act, (size_t) (s - act)) == 0) {
                                        action = action_names[i].action;
                                        break;
                                }
                if (action == ACTION_UNDEF) {
                        if (asprintf(ret_error, "bad action '%.*s' for '%.*s' in control",
                                     (int) (s - act), act, (int) len, name) < 0)
                                return -ENOMEM;
                        return -EINVAL;
                }

                if (ret == N_RESULTS)
                        set_default_actions(actions, action);
                else
                        actions[ret] = (int16_t) action;
        }

        set_default_actions(actions, ACTION_BAD);
        return 0;
}

/* The simple controls, as libpam's pam_handlers.c sets them up. */
static int simple_control(const char *word, int16_t actions[static N_RESULTS]) {
        int def;

        if (strcasecmp(word, "required") == 0 || strcasecmp(word, "requisite") == 0) {
                actions[LATCH_SUCCESS] = ACTION_OK;
                actions[LATCH_NEW_AUTHTOK_REQD] = ACTION_OK;
                actions[LATCH_IGNORE] = ACTION_IGNORE;
                def = strcasecmp(word, "required") == 0 ? ACTION_BAD : ACTION_DIE;
        } else if (strcasecmp(word, "optional") == 0) {
                actions[LATCH_SUCCESS] = ACTION_OK;
                actions[LATCH_NEW_AUTHTOK_REQD] = ACTION_OK;
                def = ACTION_IGNORE;
        } else if (strcasecmp(word, "sufficient") == 0) {
                actions[LATCH_SUCCESS] = ACTION_DONE;
                actions[LATCH_NEW_AUTHTOK_REQD] = ACTION_DONE;
                def = ACTION_IGNORE;
        } else
                return -EINVAL;

        set_default_actions(actions, def);
        return 0;
}

/* Copies argv into one allocation (pointers, then strings). */
static int argv_copy(char *const *words, int argc, char ***ret) {
        size_t size = (size_t) (argc + 1) * sizeof(char *);
        char **argv, *p;

        for (int i = 0; i < argc; i++)
                size += strlen(words[i]) + 1;
        argv = malloc(size);
        if (!argv)
                return -ENOMEM;
        p = (char *) (argv + argc + 1);
        for (int i = 0; i < argc; i++) {
                size_t n = strlen(words[i]) + 1;

                argv[i] = memcpy(p, words[i], n);
                p += n;
        }
        argv[argc] = NULL;
        *ret = argv;
        return 0;
}

/* Parses one logical line into *p. Returns 1 for a line, or -EINVAL after
 * reporting, or -ENOMEM. */
static int parse_line(struct loader *l, struct pfile *f, unsigned lineno, char *buf,
                      struct pline *p) {
        _cleanup_free_ char **words = NULL;
        _cleanup_free_ char *error = NULL;
        char *tok, *type, *control, *cur = buf;
        bool bracketed;
        size_t n_words = 0;
        int r;

        *p = (struct pline) { .lineno = lineno };
        for (int i = 0; i < N_RESULTS; i++)
                p->actions[i] = ACTION_UNDEF;

        r = next_token(&cur, &type, NULL);
        if (r < 0) {
                loader_report(l, f->path, lineno, "unterminated '['");
                return -EINVAL;
        }
        if (r == 0) {
                loader_report(l, f->path, lineno, "missing type");
                return -EINVAL;
        }

        if (type[0] == '-') {
                p->silent = true;
                type++;
        }
        r = stack_type_from_string(type, true);
        if (r >= 0)
                p->type = (uint8_t) r;
        else if (strcasecmp(type, "session") == 0)
                p->type = LINE_IGNORED;
        else {
                loader_report(l, f->path, lineno, "unknown type '%s'", type);
                return -EINVAL;
        }

        r = next_token(&cur, &control, &bracketed);
        if (r < 0) {
                loader_report(l, f->path, lineno, "unterminated '[' in control");
                return -EINVAL;
        }
        if (r == 0) {
                loader_report(l, f->path, lineno, "missing control");
                return -EINVAL;
        }
        /* As libpam: the keywords first (even bracketed), then value=action. */
        if (strcasecmp(control, "include") == 0)
                p->kind = KIND_INCLUDE;
        else if (strcasecmp(control, "substack") == 0)
                p->kind = KIND_SUBSTACK;
        else if (simple_control(control, p->actions) >= 0)
                p->kind = KIND_MODULE;
        else if (bracketed || strchr(control, '=')) {
                r = parse_control(control, p->actions, &error);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        loader_report(l, f->path, lineno, "%s", error);
                        return -EINVAL;
                }
                p->kind = KIND_MODULE;
        } else {
                loader_report(l, f->path, lineno, "unknown control '%s'", control);
                return -EINVAL;
        }

        r = next_token(&cur, &tok, NULL);
        if (r < 0) {
                loader_report(l, f->path, lineno, "unterminated '['");
                return -EINVAL;
        }
        if (r == 0) {
                if (p->kind == KIND_MODULE)
                        loader_report(l, f->path, lineno, "missing plugin");
                else
                        loader_report(l, f->path, lineno, "missing file name after '%s'", control);
                return -EINVAL;
        }
        p->word = strdup(tok);
        if (!p->word)
                return -ENOMEM;

        if (p->kind != KIND_MODULE) {
                if (strchr(p->word, '/') || streq(p->word, ".") || streq(p->word, "..")) {
                        loader_report(l, f->path, lineno,
                                      "'%s' must name a file in the services directory", p->word);
                        goto fail;
                }
                r = next_token(&cur, &tok, NULL);
                if (r != 0) {
                        loader_report(l, f->path, lineno, "unexpected argument after '%s %s'",
                                      control, p->word);
                        goto fail;
                }
                return 1;
        }

        for (;;) {
                r = next_token(&cur, &tok, NULL);
                if (r < 0) {
                        loader_report(l, f->path, lineno, "unterminated '[' in argument");
                        goto fail;
                }
                if (r == 0)
                        break;
                char **n = realloc(words, (n_words + 1) * sizeof(char *));
                if (!n) {
                        r = -ENOMEM;
                        goto fail_r;
                }
                words = n;
                words[n_words++] = tok;
        }
        if (n_words > 1024) {
                loader_report(l, f->path, lineno, "too many arguments");
                goto fail;
        }
        r = argv_copy(words, (int) n_words, &p->argv);
        if (r < 0)
                goto fail_r;
        p->argc = (int) n_words;
        return 1;

fail:
        r = -EINVAL;
fail_r:
        pline_done(p);
        *p = (struct pline) {};
        return r;
}

/*
 * Splits the file into logical lines as libpam's line assembler does: blank
 * and comment-only lines are skipped (also in the middle of a continued
 * line), '#' ends a line, and a line whose last non-blank character is '\'
 * continues on the next line (the '\' becoming a space). Each logical line is
 * numbered by its first physical line.
 */
static int parse_file_text(struct loader *l, struct pfile *f, const char *text, size_t size) {
        _cleanup_free_ char *logical = NULL;
        size_t len = 0, pos = 0;
        unsigned lineno = 0, start = 0;
        bool ok = true, skip = false;

        logical = malloc(LINE_SIZE_MAX + 1);
        if (!logical)
                return -ENOMEM;

        while (pos < size) {
                const char *line = text + pos, *nl, *s, *e;
                size_t n;
                bool cont = false;

                nl = memchr(line, '\n', size - pos);
                n = nl ? (size_t) (nl - line) : size - pos;
                pos += n + (nl ? 1 : 0);
                lineno++;

                s = line;
                e = line + n;
                while (s < e && (*s == ' ' || *s == '\t'))
                        s++;
                if (s == e || *s == '#')
                        continue;

                /* libpam would keep a '\r' inside the last word of the line:
                 * a plugin name or argument that silently differs. */
                if (memchr(s, '\r', (size_t) (e - s))) {
                        loader_report(l, f->path, lineno, "carriage return in line (CRLF file?)");
                        ok = false;
                        len = 0;
                        continue;
                }

                const char *hash = memchr(s, '#', (size_t) (e - s));
                if (hash)
                        e = hash;
                else {
                        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
                                e--;
                        if (e > s && e[-1] == '\\') {
                                e--;
                                cont = true;
                        }
                }

                /* The rest of a logical line already reported too long. */
                if (skip) {
                        skip = cont;
                        continue;
                }
                if (len == 0)
                        start = lineno;
                if (len + (size_t) (e - s) + 1 > LINE_SIZE_MAX) {
                        /* Reported, and the lines after it still checked. */
                        loader_report(l, f->path, start, "line too long");
                        ok = false;
                        len = 0;
                        skip = cont;
                        continue;
                }
                memcpy(logical + len, s, (size_t) (e - s));
                len += (size_t) (e - s);
                if (cont) {
                        logical[len++] = ' ';
                        continue;
                }
                logical[len] = '\0';
                len = 0;

                struct pline *nlines = realloc(f->lines, (f->n_lines + 1) * sizeof(struct pline));
                if (!nlines)
                        return -ENOMEM;
                f->lines = nlines;

                int r = parse_line(l, f, start, logical, &f->lines[f->n_lines]);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        ok = false;
                else
                        f->n_lines++;
                if (l->error < 0)
                        return l->error;
        }
        if (len > 0) {
                /* The file ended inside a continued line: libpam refuses the file. */
                loader_report(l, f->path, start, "file ends in a continued line");
                return -EINVAL;
        }

        return ok ? 0 : -EINVAL;
}

static int read_file(const char *path, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t size = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size > FILE_SIZE_MAX)
                return -EFBIG;

        /* Sized from fstat() with room to see EOF (and the NUL), growing
         * only if the file grows while we read. */
        size_t alloc = (size_t) st.st_size + 2;
        buf = malloc(alloc);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n;

                if (size + 1 >= alloc) {
                        if (alloc > FILE_SIZE_MAX)
                                return -EFBIG;
                        char *nbuf = realloc(buf, alloc * 2);
                        if (!nbuf)
                                return -ENOMEM;
                        buf = nbuf;
                        alloc *= 2;
                }
                n = read(fd, buf + size, alloc - 1 - size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                size += (size_t) n;
        }
        if (size > FILE_SIZE_MAX)
                return -EFBIG;
        buf[size] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* The parsed file `name`, parsing it on first use. NULL only on -ENOMEM
 * (l->error set); otherwise check ->state. */
static struct pfile *loader_get_file(struct loader *l, const char *name) {
        _cleanup_free_ char *text = NULL;
        struct pfile *f;
        size_t size;
        int r;

        for (size_t i = 0; i < l->n_files; i++)
                if (streq(l->files[i]->name, name))
                        return l->files[i];

        struct pfile **files = realloc(l->files, (l->n_files + 1) * sizeof(struct pfile *));
        if (!files) {
                l->error = -ENOMEM;
                return NULL;
        }
        l->files = files;
        f = calloc(1, sizeof(struct pfile));
        if (!f) {
                l->error = -ENOMEM;
                return NULL;
        }
        f->name = strdup(name);
        if (!f->name || asprintf(&f->path, "%s/%s", l->dir, name) < 0) {
                f->path = NULL;
                pfile_free(f);
                l->error = -ENOMEM;
                return NULL;
        }
        l->files[l->n_files++] = f;

        r = read_file(f->path, &text, &size);
        if (r < 0) {
                if (r == -ENOMEM) {
                        l->error = r;
                        return NULL;
                }
                f->state = r;
                return f;
        }
        if (memchr(text, '\0', size)) {
                loader_report(l, f->path, 0, "file contains a NUL byte");
                f->state = -EINVAL;
                return f;
        }

        r = parse_file_text(l, f, text, size);
        if (r == -ENOMEM) {
                l->error = r;
                return NULL;
        }
        f->state = r < 0 ? -EINVAL : 1;
        return f;
}

static struct stack_entry *stack_add_entry(struct loader *l, struct stack *st, enum stack_type type,
                                           const char *service_path) {
        struct stack_entry *e;

        if (st->n_entries[type] >= STACK_ENTRIES_MAX) {
                loader_report(l, service_path, 0, "more than %d %s entries", STACK_ENTRIES_MAX,
                              stack_type_to_string(type));
                return NULL;
        }
        e = realloc(st->entries[type], (st->n_entries[type] + 1) * sizeof(struct stack_entry));
        if (!e) {
                l->error = -ENOMEM;
                return NULL;
        }
        st->entries[type] = e;
        e = &e[st->n_entries[type]++];
        *e = (struct stack_entry) {};
        return e;
}

/*
 * Appends the `type` lines of f to st, expanding include and substack as
 * libpam does: an include inserts the target's lines of the same type at the
 * same level; a substack inserts a marker and then the lines one level down.
 * chain[0..depth] names the files being expanded, to catch cycles.
 */
static void flatten(struct loader *l, struct stack *st, enum stack_type type, const struct pfile *f,
                    unsigned level, unsigned depth, const char *chain[static STACK_DEPTH_MAX + 1],
                    const char *service_path) {
        for (size_t i = 0; i < f->n_lines && l->error >= 0; i++) {
                const struct pline *p = &f->lines[i];
                struct stack_entry *e;

                if (p->type != (uint8_t) type)
                        continue;

                if (p->kind != KIND_MODULE) {
                        const char *kw = p->kind == KIND_INCLUDE ? "include" : "substack";
                        struct pfile *t;
                        bool cycle = false;

                        for (unsigned k = 0; k <= depth; k++)
                                if (streq(chain[k], p->word))
                                        cycle = true;
                        if (cycle) {
                                char buf[1024];
                                size_t n = 0;

                                buf[0] = '\0';
                                for (unsigned k = 0; k <= depth && n < sizeof(buf); k++)
                                        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s -> ",
                                                               chain[k]);
                                loader_report(l, f->path, p->lineno, "%s cycle: %s%s", kw, buf,
                                              p->word);
                                continue;
                        }
                        if (depth + 1 > STACK_DEPTH_MAX) {
                                loader_report(l, f->path, p->lineno,
                                              "%s nested deeper than %d files", kw,
                                              STACK_DEPTH_MAX);
                                continue;
                        }

                        t = loader_get_file(l, p->word);
                        if (!t)
                                return;
                        if (t->state == -ENOENT) {
                                loader_report(l, f->path, p->lineno, "cannot %s '%s': no such file",
                                              kw, p->word);
                                continue;
                        }
                        /* Its own problems are reported; its good lines are
                         * still expanded, so that every problem shows at once. */
                        if (t->state == -EINVAL)
                                l->failed = true;
                        else if (t->state < 0) {
                                loader_report(l, f->path, p->lineno, "cannot %s '%s': %s", kw,
                                              p->word, strerror(-t->state));
                                continue;
                        }

                        if (p->kind == KIND_SUBSTACK) {
                                e = stack_add_entry(l, st, type, service_path);
                                if (!e)
                                        continue;
                                e->kind = ENTRY_SUBSTACK;
                                e->level = (uint8_t) level;
                                for (int k = 0; k < N_RESULTS; k++)
                                        e->actions[k] = ACTION_UNDEF; /* never consulted */
                        }
                        chain[depth + 1] = t->name;
                        flatten(l, st, type, t, level + (p->kind == KIND_SUBSTACK), depth + 1,
                                chain, service_path);
                        continue;
                }

                e = stack_add_entry(l, st, type, service_path);
                if (!e)
                        continue;
                e->level = (uint8_t) level;
                memcpy(e->actions, p->actions, sizeof(e->actions));

                _cleanup_free_ char *error = NULL;
                void *module = NULL;
                int r = l->services->ops->open(l->services->ops_userdata, p->word, p->argc,
                                               (const char *const *) p->argv, &module, &error);
                if (r >= 0) {
                        e->kind = ENTRY_MODULE;
                        e->module = module;
                } else if (r == -ENOENT && p->silent) {
                        /* libpam keeps a "faulty module" that fails each call. */
                        e->kind = ENTRY_MISSING;
                } else {
                        /* Drop the entry: it holds no module to close. */
                        st->n_entries[type]--;
                        if (r == -ENOMEM && !error) {
                                l->error = r;
                                return;
                        }
                        if (error)
                                loader_report(l, f->path, p->lineno, "%s", error);
                        else
                                loader_report(l, f->path, p->lineno, "cannot open plugin '%s': %s",
                                              p->word, strerror(-r));
                }
        }
}

static void stack_done(const struct services *s, struct stack *st) {
        for (int t = 0; t < _STACK_TYPE_MAX; t++) {
                for (size_t i = 0; i < st->n_entries[t]; i++)
                        if (st->entries[t][i].kind == ENTRY_MODULE && s->ops->close)
                                s->ops->close(s->ops_userdata, st->entries[t][i].module);
                free(st->entries[t]);
        }
        free(st->name);
}

void services_free(struct services *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_stacks; i++)
                stack_done(s, &s->stacks[i]);
        free(s->stacks);
        free(s);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct services *, services_free);

/* Builds the stack of service `name`. Returns 0 (problems are reported and
 * flagged in l), -ENOENT when there is no such file, or -ENOMEM. */
static int build_stack(struct loader *l, const char *name) {
        struct services *s = l->services;
        const char *chain[STACK_DEPTH_MAX + 1];
        struct pfile *f;
        struct stack *st;

        f = loader_get_file(l, name);
        if (!f)
                return l->error;
        if (f->state == -ENOENT)
                return -ENOENT;
        /* Its problems are reported; its good lines are still expanded (and
         * their plugins opened), so that every problem shows at once. */
        if (f->state == -EINVAL)
                l->failed = true;
        else if (f->state < 0) {
                loader_report(l, f->path, 0, "cannot read: %s", strerror(-f->state));
                return 0;
        }

        st = realloc(s->stacks, (s->n_stacks + 1) * sizeof(struct stack));
        if (!st)
                return -ENOMEM;
        s->stacks = st;
        st = &s->stacks[s->n_stacks];
        *st = (struct stack) { .owner = s };
        st->name = strdup(name);
        if (!st->name)
                return -ENOMEM;
        s->n_stacks++;

        chain[0] = f->name;
        for (int t = 0; t < _STACK_TYPE_MAX && l->error >= 0; t++)
                flatten(l, st, (enum stack_type) t, f, 0, 0, chain, f->path);
        return l->error;
}

static bool service_name_wanted(const char *name) {
        size_t n = strlen(name);

        if (name[0] == '.' || n == 0)
                return false;
        if (name[n - 1] == '~')
                return false;
        if ((n >= 4 && streq(name + n - 4, ".swp")) || (n >= 4 && streq(name + n - 4, ".bak")))
                return false;
        if (strstr(name, ".dpkg-") || strstr(name, ".rpm"))
                return false;
        return true;
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static void strv_freep(char ***p) {
        if (!*p)
                return;
        for (char **i = *p; *i; i++)
                free(*i);
        free(*p);
}

static int list_services(const char *dir, char ***ret) {
        _cleanup_(strv_freep) char **names = NULL;
        size_t n = 0;
        DIR *d;
        int r = 0;

        d = opendir(dir);
        if (!d)
                return negative_errno();

        names = calloc(1, sizeof(char *));
        if (!names) {
                closedir(d);
                return -ENOMEM;
        }

        for (;;) {
                struct dirent *de;
                struct stat st;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = negative_errno();
                        break;
                }
                if (!service_name_wanted(de->d_name))
                        continue;
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;

                char **nn = realloc(names, (n + 2) * sizeof(char *));
                if (!nn) {
                        r = -ENOMEM;
                        break;
                }
                names = nn;
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                names[++n] = NULL;
        }
        closedir(d);
        if (r < 0)
                return r;

        qsort(names, n, sizeof(char *), strcmp_ptr);
        *ret = TAKE_PTR(names);
        return 0;
}

static int stack_cmp(const void *a, const void *b);

static int load(const char *dir, const char *only, const struct stack_module_ops *ops,
                void *ops_userdata, stack_diag_fn diag, void *diag_userdata,
                struct services **ret) {
        _cleanup_(services_freep) struct services *s = NULL;
        _cleanup_(strv_freep) char **names = NULL;
        struct loader l = {
                .dir = dir, .diag = diag, .diag_userdata = diag_userdata,
        };
        struct stat st;
        int r = 0;

        assert_return(dir, -EINVAL);
        assert_return(ops && ops->open && ops->call, -EINVAL);
        assert_return(ret, -EINVAL);

        if (stat(dir, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;

        s = calloc(1, sizeof(struct services));
        if (!s)
                return -ENOMEM;
        s->ops = ops;
        s->ops_userdata = ops_userdata;
        l.services = s;

        if (only) {
                if (!*only || strchr(only, '/') || streq(only, ".") || streq(only, ".."))
                        return -EINVAL;
                r = build_stack(&l, only);
        } else {
                r = list_services(dir, &names);
                for (char **n = names; r >= 0 && n && *n; n++)
                        r = build_stack(&l, *n);
        }
        if (r >= 0 && l.error < 0)
                r = l.error;
        if (r >= 0 && l.failed)
                r = -EINVAL;
        loader_done(&l);
        if (r < 0)
                return r;

        qsort(s->stacks, s->n_stacks, sizeof(struct stack), stack_cmp);
        *ret = TAKE_PTR(s);
        return 0;
}

int services_load(const char *dir, const struct stack_module_ops *ops, void *ops_userdata,
                  stack_diag_fn diag, void *diag_userdata, struct services **ret) {
        return load(dir, NULL, ops, ops_userdata, diag, diag_userdata, ret);
}

int services_load_file(const char *dir, const char *name, const struct stack_module_ops *ops,
                       void *ops_userdata, stack_diag_fn diag, void *diag_userdata,
                       struct services **ret) {
        assert_return(name, -EINVAL);
        return load(dir, name, ops, ops_userdata, diag, diag_userdata, ret);
}

static int stack_cmp(const void *a, const void *b) {
        return strcmp(((const struct stack *) a)->name, ((const struct stack *) b)->name);
}

static int stack_name_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const struct stack *) elem)->name);
}

const struct stack *services_find(const struct services *s, const char *service) {
        if (!s || !service || s->n_stacks == 0)
                return NULL;
        return bsearch(service, s->stacks, s->n_stacks, sizeof(struct stack), stack_name_cmp);
}

size_t services_count(const struct services *s) {
        return s ? s->n_stacks : 0;
}

size_t stack_size(const struct stack *st, enum stack_type type) {
        if (!st || (unsigned) type >= _STACK_TYPE_MAX)
                return 0;
        return st->n_entries[type];
}

const struct stack *services_at(const struct services *s, size_t i) {
        return s && i < s->n_stacks ? &s->stacks[i] : NULL;
}

const char *stack_name(const struct stack *st) {
        return st ? st->name : NULL;
}

void *stack_module(const struct stack *st, enum stack_type type, size_t i) {
        if (!st || (unsigned) type >= _STACK_TYPE_MAX || i >= st->n_entries[type] ||
            st->entries[type][i].kind != ENTRY_MODULE)
                return NULL;
        return st->entries[type][i].module;
}

/* ---- evaluation ------------------------------------------------------- */

/*
 * _pam_dispatch_aux(). `called` (NULL, or CALLED_WORDS words) gets a bit for
 * every entry whose module was called. `former` (NULL: no resumption) is
 * libpam's pamh->former: when `resumed`, the impression, status and
 * substates are taken from it and the entries before its depth are skipped,
 * so the line that returned LATCH_INCOMPLETE is called again; when an entry
 * returns LATCH_INCOMPLETE they are saved in it.
 */
static int run(const struct stack *st, enum stack_type type, int flags, struct latch_req *req, uint64_t *called,
               struct stack_former *former, bool resumed) {
        const struct services *s = st->owner;
        const struct stack_entry *entries = st->entries[type];
        size_t n = st->n_entries[type];
        struct stack_substate *substates = former ? former->substates : (struct stack_substate[STACK_DEPTH_MAX + 1]){};
        int impression = IMPRESSION_UNDEF, status = MUST_FAIL_CODE;
        unsigned prev_level = 0, level;
        size_t skip = 0;

        if (n == 0)
                return MUST_FAIL_CODE; /* "no modules loaded for service" */

        if (former && resumed) {
                impression = former->impression;
                status = former->status;
                skip = former->depth;
        } else {
                substates[0].impression = impression;
                substates[0].status = status;
        }

        for (size_t i = 0; i < n; prev_level = level, i++) {
                const struct stack_entry *e = &entries[i];
                int retval, action;

                level = e->level;

                /* Lines that returned before the one that asked. */
                if (i < skip)
                        continue;

                /* Entering a substack: remember where "reset" goes back to. */
                if (prev_level < level) {
                        substates[level].impression = impression;
                        substates[level].status = status;
                }

                if (e->kind == ENTRY_SUBSTACK)
                        continue;
                if (e->kind == ENTRY_MISSING)
                        retval = LATCH_MODULE_UNKNOWN;
                else {
                        retval = s->ops->call(s->ops_userdata, e->module, type, flags, req);
                        if (called)
                                called[i / 64] |= UINT64_C(1) << (i % 64);
                }

                /* Save our place: the caller resumes here (libpam's
                 * pamh->former). */
                if (retval == LATCH_INCOMPLETE) {
                        if (former) {
                                former->impression = impression;
                                former->status = status;
                                former->depth = i;
                        }
                        return retval;
                }

                if (former && type == STACK_PASSWORD && (flags & LATCH_UPDATE_AUTHTOK) && retval == LATCH_SUCCESS)
                        former->updated = true;

                if (retval < 0 || retval >= N_RESULTS) {
                        retval = MUST_FAIL_CODE;
                        action = ACTION_BAD;
                } else
                        action = e->actions[retval];

                switch (action) {
                case ACTION_RESET:
                        impression = substates[level].impression;
                        status = substates[level].status;
                        break;

                case ACTION_OK:
                case ACTION_DONE:
                        if (impression == IMPRESSION_UNDEF ||
                            (impression == IMPRESSION_POSITIVE && status == LATCH_SUCCESS)) {
                                impression = IMPRESSION_POSITIVE;
                                status = retval;
                        }
                        /* "done" after a failure does not end the stack. */
                        if (impression == IMPRESSION_POSITIVE && action == ACTION_DONE)
                                goto decision_made;
                        break;

                case ACTION_BAD:
                case ACTION_DIE:
                        if (impression != IMPRESSION_NEGATIVE) {
                                impression = IMPRESSION_NEGATIVE;
                                status = retval == LATCH_IGNORE ? MUST_FAIL_CODE : retval;
                        }
                        if (action == ACTION_DIE)
                                goto decision_made;
                        break;

                case ACTION_IGNORE:
                        break;

                default:
                        /* A jump skips `action` entries of this level (a
                         * substack with everything in it counting as one) and
                         * never leaves the current substack. */
                        while (i + 1 < n && entries[i + 1].level >= level && action > 0) {
                                do
                                        i++;
                                while (i + 1 < n && entries[i + 1].level > level);
                                action--;
                        }
                        if (action > 0) {
                                /* "bad jump in stack": fail, but go on from here. */
                                impression = IMPRESSION_NEGATIVE;
                                status = MUST_FAIL_CODE;
                        }
                        break;
                }
                continue;

        decision_made:
                /* die/done end the current (sub)stack only. */
                while (i + 1 < n && entries[i + 1].level >= level)
                        i++;
        }

        if (status == LATCH_SUCCESS && impression != IMPRESSION_POSITIVE)
                status = MUST_FAIL_CODE;

        return status;
}

int stack_run(const struct stack *st, enum stack_type type, struct latch_req *req) {
        assert_return(st, LATCH_SYSTEM_ERR);
        assert_return((unsigned) type < _STACK_TYPE_MAX, LATCH_SYSTEM_ERR);

        return run(st, type, 0, req, NULL, NULL, false);
}

int stack_run_resumable(const struct stack *st, enum stack_type type, struct latch_req *req,
                        struct stack_former *former) {
        bool resumed;
        int r;

        assert_return(st, LATCH_SYSTEM_ERR);
        assert_return((unsigned) type < _STACK_TYPE_MAX, LATCH_SYSTEM_ERR);
        assert_return(former, LATCH_SYSTEM_ERR);

        resumed = former->waiting;
        r = run(st, type, 0, req, NULL, former, resumed);
        former->waiting = r == LATCH_INCOMPLETE;
        return r;
}

static void report_outcome(const struct stack *st, struct latch_req *req, const struct stack_auth_state *state,
                           int r) {
        const struct services *s = st->owner;
        const uint64_t(*called)[CALLED_WORDS] = state->called;

        for (int t = 0; t < _STACK_TYPE_MAX; t++)
                for (size_t i = 0; i < st->n_entries[t]; i++) {
                        void *module = st->entries[t][i].module;
                        bool seen = false;

                        if (!(called[t][i / 64] & (UINT64_C(1) << (i % 64))))
                                continue;

                        /* Report each module once, however many entries share it
                         * (NULL handles are never taken to be shared). */
                        for (int pt = 0; pt <= t && !seen && module; pt++)
                                for (size_t j = 0; j < (pt == t ? i : st->n_entries[pt]); j++)
                                        if ((called[pt][j / 64] & (UINT64_C(1) << (j % 64))) &&
                                            st->entries[pt][j].module == module) {
                                                seen = true;
                                                break;
                                        }
                        if (!seen)
                                s->ops->outcome(s->ops_userdata, module, req, r);
                }
}

int stack_authenticate(const struct stack *st, struct latch_req *req) {
        struct stack_auth_state state = {};
        int r;

        assert_return(st, LATCH_SYSTEM_ERR);
        r = stack_authenticate_step(st, req, &state);
        if (r == LATCH_INCOMPLETE)
                stack_authenticate_end(st, req, &state, r);
        return r;
}

/* One resumable run of `type` for a stepped request: resumes when the last
 * run of the state returned LATCH_INCOMPLETE. */
static int step_run(const struct stack *st, enum stack_type type, int flags, struct latch_req *req,
                    struct stack_auth_state *state) {
        int r;

        r = run(st, type, flags, req, state->called[type], &state->former, state->former.waiting);
        state->former.waiting = r == LATCH_INCOMPLETE;
        return r;
}

/*
 * pam_chauthtok()'s two passes over the password stack (libpam's
 * pam_password.c): the preliminary pass, and only when it answers
 * LATCH_SUCCESS the update pass. state->update is libpam's former.update:
 * set once the preliminary pass succeeded, so that a resumed update pass
 * does not run the preliminary one again. Returns LATCH_INCOMPLETE (the
 * state waits) or the final result (not reported yet).
 */
static int chauthtok_passes(const struct stack *st, struct latch_req *req, struct stack_auth_state *state,
                            int flags) {
        int r;

        state->type = STACK_PASSWORD;
        if (!state->update) {
                r = step_run(st, STACK_PASSWORD, flags | LATCH_PRELIM_CHECK, req, state);
                if (r != LATCH_SUCCESS)
                        return r;
                state->update = true;
        }
        r = step_run(st, STACK_PASSWORD, flags | LATCH_UPDATE_AUTHTOK, req, state);
        state->password_touched = state->password_touched || state->former.updated;
        if (r != LATCH_INCOMPLETE)
                state->update = false;
        return r;
}

static int step_done(const struct stack *st, struct latch_req *req, struct stack_auth_state *state, int r) {
        state->former.waiting = false;
        state->update = false;
        if (st->owner->ops->outcome)
                report_outcome(st, req, state, r);
        return r;
}

int stack_authenticate_step(const struct stack *st, struct latch_req *req, struct stack_auth_state *state) {
        const struct services *s;
        int r;

        assert_return(st, LATCH_SYSTEM_ERR);
        assert_return(state, LATCH_SYSTEM_ERR);
        s = st->owner;

        if (state->type == STACK_AUTH) {
                r = step_run(st, STACK_AUTH, 0, req, state);
                if (r == LATCH_INCOMPLETE)
                        return r;
                if (r != LATCH_SUCCESS)
                        return step_done(st, req, state, r);
                state->type = STACK_ACCOUNT;
        }
        if (state->type == STACK_ACCOUNT) {
                r = step_run(st, STACK_ACCOUNT, 0, req, state);
                if (r == LATCH_INCOMPLETE)
                        return r;
                /* An expired password: the login goes on as a password change
                 * (as login(1) calls pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)
                 * when pam_acct_mgmt() answers PAM_NEW_AUTHTOK_REQD), and its
                 * result is the change's. */
                if (r != LATCH_NEW_AUTHTOK_REQD || !state->change_expired)
                        return step_done(st, req, state, r);
                if (s->ops->expired_change)
                        s->ops->expired_change(s->ops_userdata, req);
                state->type = STACK_PASSWORD;
                state->update = false;
        }
        r = chauthtok_passes(st, req, state, LATCH_CHANGE_EXPIRED_AUTHTOK);
        if (r == LATCH_INCOMPLETE)
                return r;
        state->password_changed = r == LATCH_SUCCESS;
        return step_done(st, req, state, r);
}

int stack_chauthtok_step(const struct stack *st, struct latch_req *req, struct stack_auth_state *state, int flags) {
        int r;

        assert_return(st, LATCH_SYSTEM_ERR);
        assert_return(state, LATCH_SYSTEM_ERR);
        /* The passes' flags are the engine's to set, as libpam refuses them
         * from an application. */
        assert_return(!(flags & (LATCH_PRELIM_CHECK | LATCH_UPDATE_AUTHTOK)), LATCH_SYSTEM_ERR);
        assert_return(state->type == STACK_AUTH || state->type == STACK_PASSWORD, LATCH_SYSTEM_ERR);

        r = chauthtok_passes(st, req, state, flags);
        if (r == LATCH_INCOMPLETE)
                return r;
        state->password_changed = r == LATCH_SUCCESS;
        return step_done(st, req, state, r);
}

void stack_authenticate_end(const struct stack *st, struct latch_req *req, struct stack_auth_state *state,
                            int result) {
        if (!st || !state)
                return;
        state->former.waiting = false;
        state->update = false;
        if (st->owner->ops->outcome)
                report_outcome(st, req, state, result);
}
