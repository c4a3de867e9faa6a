/* SPDX-License-Identifier: MIT */
/*
 * latchctl: the command-line client of latchd. Every daemon command goes
 * through liblatch; `user` edits a file-plugin database through userdb.
 */

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "latchctl.h"
#include "macro.h"
#include "userdb.h"

/* latchd's default [token] leeway, for offline verification. */
#define OFFLINE_LEEWAY 30

/* Options, and the bit each command must allow for them to be given. */
enum {
        OPT_TOKEN = 1 << 0,
        OPT_AUDIENCE = 1 << 1,
        OPT_ISSUER = 1 << 2,
        OPT_JWKS = 1 << 3,
        OPT_USER = 1 << 4,
        OPT_SERVICE = 1 << 5,
        OPT_GROUPS = 1 << 6,
        OPT_OPENMETRICS = 1 << 7,
        OPT_PROMETHEUS = 1 << 8,
        OPT_EXPIRES = 1 << 9,
};

static const char *arg_socket = NULL;
static bool arg_token = false;
static const char *arg_audience = NULL;
static const char *arg_issuer = NULL;
static const char *arg_jwks = NULL;
static const char *arg_user = NULL;
static const char *arg_service = NULL;
static const char *arg_groups = NULL;
static int64_t arg_expires = USERDB_EXPIRES_NEVER;
static bool arg_openmetrics = false, arg_prometheus = false;
static unsigned arg_given = 0;

static void help(void) {
        printf("Usage: latchctl [--socket PATH] [--json] COMMAND ...\n"
               "\n"
               "Talks to latchd, the latch authentication daemon.\n"
               "\n"
               "Commands:\n"
               "  hello                                 check that the daemon answers\n"
               "  authenticate SERVICE USER             check a password (from stdin or a prompt)\n"
               "  login SERVICE USER [--token] [--audience AUD]\n"
               "                                        make a session (password as above)\n"
               "  passwd SERVICE USER                   change a password through the service's stack\n"
               "  respond CONVERSATION                  answer a challenge (answers on stdin, one a line)\n"
               "  validate SESSION                      check a session\n"
               "  logout SESSION                        end a session\n"
               "  token issue SESSION [--audience AUD]  issue a token for a session\n"
               "  token verify TOKEN [--jwks FILE] [--audience AUD] [--issuer ISS]\n"
               "                                        verify a token (offline with --jwks)\n"
               "  jwks                                  print the public key set\n"
               "  sessions list [--user USER] [--service SERVICE]\n"
               "  sessions revoke (HANDLE | --user USER)\n"
               "  keys rotate                           make a new signing key\n"
               "  stats [--openmetrics | --prometheus]  print counters and gauges (or as metrics text)\n"
               "  status                                one screen: version, services, keys, store\n"
               "  reload                                reload configuration and stacks\n"
               "  user add|passwd FILE USER [--groups G,G] [--expires WHEN]\n"
               "  user expire FILE USER [--expires WHEN]\n"
               "  user del FILE USER                    edit a file-plugin user database; WHEN: now,\n"
               "                                        never, YYYY-MM-DD or Unix seconds\n"
               "  totp enroll|recovery|remove|status USER [--service SERVICE]\n"
               "                                        second factor: enroll (QR code, then a first\n"
               "                                        code), new recovery codes, remove, show\n"
               "  totp confirm USER [CODE]              confirm a pending enrollment\n"
               "  faillock show|reset USER [--service SERVICE]\n"
               "                                        a user's lockout tally; reset unlocks\n"
               "\n"
               "A SESSION or TOKEN given as '-' is read from stdin (one line).\n"
               "\n"
               "Options:\n"
               "  --socket PATH   daemon socket (default: $LATCH_SOCKET, else %s)\n"
               "  --json          print exactly one JSON object\n"
               "  --help          show this help\n"
               "  --version       show the version\n"
               "\n"
               "Exit status: 0 done; 1 refused; 2 usage error or unreadable input;\n"
               "3 daemon unreachable, unavailable or failed.\n",
               LATCH_SOCKET_PATH);
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static int client_open(latch_client **ret) {
        int r = latch_client_new(arg_socket, ret);
        if (r == LATCH_ERR_INVALID_ARGUMENT)
                return print_usage_error("invalid socket path");
        if (r != LATCH_OK)
                return print_error(exit_code_for(r), latch_error_name(r), "%s", latch_strerror(r));
        return EXIT_DONE;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(latch_reply *, latch_reply_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(latch_keyset *, latch_keyset_free);

/* A secret argument: the word itself, or a line of stdin for "-". */
static int secret_arg(const char *word, const char *prompt, char **ret) {
        if (!streq(word, "-")) {
                char *s = strdup(word);
                if (!s)
                        return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
                *ret = s;
                return EXIT_DONE;
        }
        return read_secret(prompt, false, ret);
}

/* A call: `secret` is the password or session the command read (NULL for
 * the calls that take none). */
typedef int (*call_fn)(latch_client *c, char **argv, const char *secret, latch_reply **ret);

enum secret_from {
        NO_SECRET,
        SECRET_PROMPT, /* stdin (one line) or a no-echo prompt */
        SECRET_ARG,    /* argv[0], where "-" means stdin */
};

/* Runs one call on a fresh client, with the secret it needs, and prints its
 * result with `print`. */
static int run_call_from(call_fn call, char **argv, enum secret_from from, const char *prompt,
                         int (*print)(const latch_reply *)) {
        _cleanup_(latch_client_freep) latch_client *c = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        _cleanup_(latch_secret_freep) char *secret = NULL;
        int r;

        r = client_open(&c);
        if (r != EXIT_DONE)
                return r;
        if (from != NO_SECRET) {
                r = from == SECRET_ARG ? secret_arg(argv[0], prompt, &secret) : read_secret(prompt, false, &secret);
                if (r != EXIT_DONE)
                        return r;
        }
        r = call(c, argv, secret, &reply);
        if (r != LATCH_OK)
                return print_client_error(c, r);
        return print(reply);
}

static int run_call(call_fn call, char **argv, int (*print)(const latch_reply *)) {
        return run_call_from(call, argv, NO_SECRET, NULL, print);
}

static int call_hello(latch_client *c, char **argv, const char *secret, latch_reply **ret) {
        return latch_hello(c, ret);
}

static int call_jwks(latch_client *c, char **argv, const char *secret, latch_reply **ret) {
        return latch_jwks(c, ret);
}

static int call_keys_rotate(latch_client *c, char **argv, const char *secret, latch_reply **ret) {
        return latch_keys_rotate(c, ret);
}

static int call_stats(latch_client *c, char **argv, const char *secret, latch_reply **ret) {
        return latch_stats(c, ret);
}

static int call_reload(latch_client *c, char **argv, const char *secret, latch_reply **ret) {
        return latch_reload(c, ret);
}

static int call_sessions_list(latch_client *c, char **argv, const char *secret, latch_reply **ret) {
        /* Up to 10,000 sessions of ~200 bytes: past the default 1 MiB cap. */
        (void) latch_client_set_max_response(c, 64u << 20);
        return latch_sessions_list(c, arg_user, arg_service, ret);
}

static int cmd_simple(char **argv, call_fn call) {
        return run_call(call, argv, print_reply);
}

static int cmd_hello(char **argv) { return cmd_simple(argv, call_hello); }
static int cmd_keys_rotate(char **argv) { return cmd_simple(argv, call_keys_rotate); }
static int print_metrics(const latch_reply *reply) {
        return print_stats_metrics(reply, arg_openmetrics ? METRICS_OPENMETRICS : METRICS_PROMETHEUS);
}

static int cmd_stats(char **argv) {
        if (arg_openmetrics && arg_prometheus)
                return print_usage_error("--openmetrics and --prometheus exclude each other");
        if ((arg_openmetrics || arg_prometheus) && arg_json)
                return print_usage_error("--json does not apply to metrics text");
        return run_call(call_stats, argv, arg_openmetrics || arg_prometheus ? print_metrics : print_reply);
}

static int cmd_status(char **argv) { return run_call(call_stats, argv, print_status); }
static int cmd_reload(char **argv) { return cmd_simple(argv, call_reload); }
static int cmd_jwks(char **argv) { return run_call(call_jwks, argv, print_jwks); }
static int cmd_sessions_list(char **argv) { return run_call(call_sessions_list, argv, print_sessions); }

static int call_sessions_revoke(latch_client *c, char **argv, const char *secret, latch_reply **ret) {
        return latch_sessions_revoke(c, argv[0], arg_user, ret);
}

static int cmd_sessions_revoke(char **argv) {
        if (!argv[0] == !arg_user)
                return print_usage_error("sessions revoke takes a HANDLE or --user USER (one of them)");
        return run_call(call_sessions_revoke, argv, print_reply);
}

static int call_validate(latch_client *c, char **argv, const char *session, latch_reply **ret) {
        return latch_validate(c, session, NULL, ret);
}
static int call_logout(latch_client *c, char **argv, const char *session, latch_reply **ret) {
        return latch_logout(c, session, ret);
}
static int call_token(latch_client *c, char **argv, const char *session, latch_reply **ret) {
        return latch_token(c, session, arg_audience, ret);
}

/*
 * Goes on with the conversation that call result `r` may have started: on
 * a terminal shows each prompt and reads each answer (no echo for secret
 * ones); with --json and no terminal prints the challenge and stops (exit 1:
 * `latchctl respond` continues); otherwise reads the answers from stdin, one
 * a line. Ends with the op's own result.
 */
static int converse(latch_client *c, int r, latch_reply **reply) {
        bool tty = isatty(STDIN_FILENO);

        while (r == LATCH_ERR_CHALLENGE) {
                const latch_reply *ch = latch_last_challenge(c);
                size_t n = ch ? latch_reply_count(ch, "prompts") : 0, k = 0;
                char *answers[8] = {};
                _cleanup_free_ char *id = NULL;
                int e = EXIT_DONE;

                if (!ch || n > 8)
                        return print_client_error(c, r);
                if (arg_json && !tty) {
                        _cleanup_(latch_secret_freep) char *text = latch_reply_json(ch, NULL);
                        if (!text)
                                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
                        print_json_text(text);
                        return EXIT_REFUSED;
                }
                id = strdup(latch_reply_string(ch, "conversation") ?: "");
                if (!id)
                        return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
                for (size_t i = 0; i < n && e == EXIT_DONE; i++) {
                        const char *style = latch_reply_item_string(ch, "prompts", i, "style") ?: "";
                        /* Shown as text: the prompt came from a plugin, maybe
                         * from a PAM module it relays, and must not drive
                         * the terminal. */
                        _cleanup_free_ char *msg =
                                text_escape(latch_reply_item_string(ch, "prompts", i, "message") ?: "", true);
                        bool secret = streq(style, "secret");
                        if (!msg) {
                                e = print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
                                break;
                        }
                        if (!secret && !streq(style, "text")) {
                                /* info and error: shown, never answered */
                                if (tty)
                                        fprintf(stderr, "%s\n", msg);
                                continue;
                        }
                        _cleanup_free_ char *label = NULL;
                        if (asprintf(&label, "%s%s", msg, msg[0] && msg[strlen(msg) - 1] == ' ' ? "" : " ") < 0)
                                label = NULL;
                        e = read_answer(label ?: msg, !secret, &answers[k]);
                        if (e == EXIT_DONE)
                                k++;
                }
                if (e == EXIT_DONE) {
                        latch_reply_free(*reply);
                        *reply = NULL;
                        r = latch_respond(c, id, (const char *const *) answers, k, reply);
                }
                for (size_t i = 0; i < k; i++)
                        latch_secret_free(answers[i]);
                if (e != EXIT_DONE)
                        return e;
        }
        if (r != LATCH_OK)
                return print_client_error(c, r);
        return print_reply(*reply);
}

/* authenticate and login: SERVICE USER. On a terminal the stack asks for
 * what it needs (the password first, as a rule); otherwise the password is
 * the first line of stdin. */
static int cmd_password_op(char **argv, bool login) {
        _cleanup_(latch_client_freep) latch_client *c = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        _cleanup_(latch_secret_freep) char *password = NULL;
        int r;

        r = client_open(&c);
        if (r != EXIT_DONE)
                return r;
        if (!isatty(STDIN_FILENO)) {
                r = read_secret("Password: ", false, &password);
                if (r != EXIT_DONE)
                        return r;
        }

        if (login)
                r = latch_login(c, argv[0], argv[1], password, NULL, arg_token, arg_audience, &reply);
        else
                r = latch_authenticate(c, argv[0], argv[1], password, NULL, &reply);
        return converse(c, r, &reply);
}

static int cmd_authenticate(char **argv) { return cmd_password_op(argv, false); }
static int cmd_login(char **argv) { return cmd_password_op(argv, true); }

/* passwd SERVICE USER: all of it is a conversation (the current password,
 * the new one twice, and whatever else the stack asks), so nothing is read
 * before the first challenge. Without a terminal the answers are the lines
 * of stdin, in order. */
static int cmd_passwd(char **argv) {
        _cleanup_(latch_client_freep) latch_client *c = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        int r;

        r = client_open(&c);
        if (r != EXIT_DONE)
                return r;
        r = latch_passwd(c, argv[0], argv[1], NULL, NULL, &reply);
        return converse(c, r, &reply);
}

/* respond CONVERSATION: the answers on stdin, one a line (as many lines as
 * there are), then goes on like authenticate/login. */
static int cmd_respond(char **argv) {
        _cleanup_(latch_client_freep) latch_client *c = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        char *answers[8] = {};
        size_t k = 0;
        int r;

        r = client_open(&c);
        if (r != EXIT_DONE)
                return r;
        while (k < 8) {
                r = read_answer_line(&answers[k]);
                if (r == -ENODATA)
                        break;
                if (r < 0) {
                        for (size_t i = 0; i < k; i++)
                                latch_secret_free(answers[i]);
                        if (r == -EILSEQ)
                                return print_error(EXIT_USAGE, "usage", "an answer contains a NUL byte");
                        return print_error(EXIT_USAGE, "usage", "cannot read the answers: %s", strerror(-r));
                }
                k++;
        }
        r = latch_respond(c, argv[0], (const char *const *) answers, k, &reply);
        for (size_t i = 0; i < k; i++)
                latch_secret_free(answers[i]);
        return converse(c, r, &reply);
}
/* validate, logout, token issue: SESSION, possibly "-". */
static int cmd_validate(char **argv) {
        return run_call_from(call_validate, argv, SECRET_ARG, "Session: ", print_reply);
}
static int cmd_logout(char **argv) {
        return run_call_from(call_logout, argv, SECRET_ARG, "Session: ", print_reply);
}
static int cmd_token_issue(char **argv) {
        return run_call_from(call_token, argv, SECRET_ARG, "Session: ", print_reply);
}

/* Prints {"claims": CLAIMS} as `verify` answers it, so both ways of
 * verifying print the same thing. */
static int print_claims(const char *claims_json) {
        size_t n = strlen(claims_json) + sizeof("{\"claims\":}");
        _cleanup_free_ char *text = malloc(n);
        if (!text)
                return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
        snprintf(text, n, "{\"claims\":%s}", claims_json);
        return print_json_text(text);
}

static int verify_offline(const char *token) {
        _cleanup_(latch_keyset_freep) latch_keyset *ks = NULL;
        _cleanup_free_ char *claims = NULL;
        const char *reason;
        int r;

        r = latch_jwks_load_file(arg_jwks, &ks);
        if (r == LATCH_ERR_IO)
                return print_error(EXIT_USAGE, "io", "cannot read %s: %s", arg_jwks, strerror(errno));
        if (r == LATCH_ERR_INVALID_ARGUMENT)
                return print_error(EXIT_USAGE, "usage", "%s: not a valid JWKS", arg_jwks);
        if (r != LATCH_OK)
                return print_error(exit_code_for(r), latch_error_name(r), "%s", latch_strerror(r));

        r = latch_token_verify(ks, token, arg_audience, arg_issuer, OFFLINE_LEEWAY, 0, &claims, NULL, &reason);
        if (r != LATCH_OK)
                return print_error(exit_code_for(r), latch_error_name(r), "%s", reason);
        return print_claims(claims);
}

static int verify_online(const char *token) {
        _cleanup_(latch_client_freep) latch_client *c = NULL;
        _cleanup_(latch_reply_freep) latch_reply *reply = NULL;
        int r;

        r = client_open(&c);
        if (r != EXIT_DONE)
                return r;
        r = latch_verify(c, token, arg_audience, &reply);
        if (r != LATCH_OK)
                return print_client_error(c, r);

        /* The op takes no issuer: check the claims latchd vouched for. */
        if (arg_issuer) {
                _cleanup_free_ char *claims = latch_reply_json(reply, "claims");
                json_t *o = claims ? json_loads(claims, 0, NULL) : NULL;
                bool match = streq_ptr(json_string_value(json_object_get(o, "iss")), arg_issuer);
                json_decref(o);
                if (!match)
                        return print_error(EXIT_REFUSED, latch_error_name(LATCH_ERR_INVALID_TOKEN),
                                           "issuer does not match");
        }
        return print_reply(reply);
}

static int cmd_token_verify(char **argv) {
        _cleanup_(latch_secret_freep) char *token = NULL;

        int r = secret_arg(argv[0], "Token: ", &token);
        if (r != EXIT_DONE)
                return r;
        return arg_jwks ? verify_offline(token) : verify_online(token);
}

/* ------------------------------------------------------------------------ */
/* user add|passwd|expire|del FILE USER */

static int user_result(int r, const char *file, const char *user, const char *done) {
        switch (r) {
        case 0:
                break;
        case USERDB_EDIT_NOT_DURABLE:
                /* The new file is in place and in force, so this is no
                 * failure (exit 0, the usual output): a non-zero exit would
                 * tell a script the old password still holds. Only its
                 * survival of a crash is in doubt, which is worth a warning
                 * on stderr (never stdout, which --json keeps to one object). */
                fprintf(stderr,
                        "latchctl: warning: %s: the change is made, but its folder could not be "
                        "synced; it may be lost in a crash\n",
                        term_text(file));
                break;
        case -EEXIST:
                return print_error(EXIT_REFUSED, "exists", "%s: user %s already exists", file, user);
        case -ENOENT:
                return print_error(EXIT_REFUSED, "not_found", "%s: no such user %s (or no such file)", file, user);
        case -EINVAL:
                return print_error(EXIT_USAGE, "usage", "invalid user name, groups or password");
        case -EACCES:
        case -EPERM:
        case -ELOOP:
        case -EISDIR:
        case -EFBIG:
                return print_error(EXIT_USAGE, "io", "%s: %s", file, strerror(-r));
        default:
                return print_error(EXIT_UNAVAILABLE, "io", "%s: %s", file, strerror(-r));
        }

        if (arg_json) {
                json_t *o = json_pack("{s:s,s:s}", "file", file, "user", user);
                if (!o)
                        return print_error(EXIT_UNAVAILABLE, "no_memory", "out of memory");
                json_dumpf(o, stdout, JSON_COMPACT);
                fputc('\n', stdout);
                json_decref(o);
        } else
                printf("%s: user %s %s\n", file, user, done);
        return EXIT_DONE;
}

static int cmd_user_add_passwd(char **argv, bool add) {
        _cleanup_(latch_secret_freep) char *password = NULL;

        int r = read_secret("New password: ", true, &password);
        if (r != EXIT_DONE)
                return r;
        if (add)
                r = userdb_add(argv[0], argv[1], password, arg_groups, arg_expires);
        else
                r = userdb_passwd(argv[0], argv[1], password, arg_groups, arg_expires);
        return user_result(r, argv[0], argv[1], add ? "added" : "updated");
}

static int cmd_user_add(char **argv) { return cmd_user_add_passwd(argv, true); }
static int cmd_user_passwd(char **argv) { return cmd_user_add_passwd(argv, false); }
static int cmd_user_expire(char **argv) {
        /* Without --expires: at once, as passwd -e. */
        int64_t when = arg_given & OPT_EXPIRES ? arg_expires : 0;
        return user_result(userdb_expire(argv[0], argv[1], when), argv[0], argv[1], "expiry set");
}
static int cmd_user_del(char **argv) {
        return user_result(userdb_del(argv[0], argv[1]), argv[0], argv[1], "deleted");
}

/* totp and faillock: plugin-admin.c. */
static int cmd_totp_enroll(char **argv) { return cmd_totp(arg_socket, arg_service, "enroll", argv); }
static int cmd_totp_confirm(char **argv) { return cmd_totp(arg_socket, arg_service, "confirm", argv); }
static int cmd_totp_recovery(char **argv) { return cmd_totp(arg_socket, arg_service, "recovery", argv); }
static int cmd_totp_remove(char **argv) { return cmd_totp(arg_socket, arg_service, "remove", argv); }
static int cmd_totp_status(char **argv) { return cmd_totp(arg_socket, arg_service, "status", argv); }
static int cmd_faillock_show(char **argv) { return cmd_faillock(arg_socket, arg_service, "show", argv); }
static int cmd_faillock_reset(char **argv) { return cmd_faillock(arg_socket, arg_service, "reset", argv); }

/* ------------------------------------------------------------------------ */
/* Dispatch */

static const struct command {
        const char *verb, *object; /* object NULL: a one-word command */
        int min_args, max_args;
        unsigned options;
        int (*run)(char **argv);
} commands[] = {
        { "hello",        NULL,      0, 0, 0,                                   cmd_hello },
        { "authenticate", NULL,      2, 2, 0,                                   cmd_authenticate },
        { "login",        NULL,      2, 2, OPT_TOKEN | OPT_AUDIENCE,            cmd_login },
        { "passwd",       NULL,      2, 2, 0,                                   cmd_passwd },
        { "respond",      NULL,      1, 1, 0,                                   cmd_respond },
        { "validate",     NULL,      1, 1, 0,                                   cmd_validate },
        { "logout",       NULL,      1, 1, 0,                                   cmd_logout },
        { "token",        "issue",   1, 1, OPT_AUDIENCE,                        cmd_token_issue },
        { "token",        "verify",  1, 1, OPT_JWKS | OPT_AUDIENCE | OPT_ISSUER, cmd_token_verify },
        { "jwks",         NULL,      0, 0, 0,                                   cmd_jwks },
        { "sessions",     "list",    0, 0, OPT_USER | OPT_SERVICE,              cmd_sessions_list },
        { "sessions",     "revoke",  0, 1, OPT_USER,                            cmd_sessions_revoke },
        { "keys",         "rotate",  0, 0, 0,                                   cmd_keys_rotate },
        { "stats",        NULL,      0, 0, OPT_OPENMETRICS | OPT_PROMETHEUS,    cmd_stats },
        { "status",       NULL,      0, 0, 0,                                   cmd_status },
        { "reload",       NULL,      0, 0, 0,                                   cmd_reload },
        { "user",         "add",     2, 2, OPT_GROUPS | OPT_EXPIRES,            cmd_user_add },
        { "user",         "passwd",  2, 2, OPT_GROUPS | OPT_EXPIRES,            cmd_user_passwd },
        { "user",         "expire",  2, 2, OPT_EXPIRES,                         cmd_user_expire },
        { "user",         "del",     2, 2, 0,                                   cmd_user_del },
        { "totp",         "enroll",  1, 1, OPT_SERVICE,                         cmd_totp_enroll },
        { "totp",         "confirm", 1, 2, OPT_SERVICE,                         cmd_totp_confirm },
        { "totp",         "recovery", 1, 1, OPT_SERVICE,                        cmd_totp_recovery },
        { "totp",         "remove",  1, 1, OPT_SERVICE,                         cmd_totp_remove },
        { "totp",         "status",  1, 1, OPT_SERVICE,                         cmd_totp_status },
        { "faillock",     "show",    1, 1, OPT_SERVICE,                         cmd_faillock_show },
        { "faillock",     "reset",   1, 1, OPT_SERVICE,                         cmd_faillock_reset },
};

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_SOCKET = 0x100, ARG_JSON, ARG_HELP, ARG_VERSION, ARG_TOKEN, ARG_AUDIENCE, ARG_ISSUER,
               ARG_JWKS, ARG_USER, ARG_SERVICE, ARG_GROUPS, ARG_OPENMETRICS, ARG_PROMETHEUS, ARG_EXPIRES };
        static const struct option options[] = {
                { "socket",   required_argument, NULL, ARG_SOCKET },
                { "json",     no_argument,       NULL, ARG_JSON },
                { "help",     no_argument,       NULL, ARG_HELP },
                { "version",  no_argument,       NULL, ARG_VERSION },
                { "token",    no_argument,       NULL, ARG_TOKEN },
                { "audience", required_argument, NULL, ARG_AUDIENCE },
                { "issuer",   required_argument, NULL, ARG_ISSUER },
                { "jwks",     required_argument, NULL, ARG_JWKS },
                { "user",     required_argument, NULL, ARG_USER },
                { "service",  required_argument, NULL, ARG_SERVICE },
                { "groups",   required_argument, NULL, ARG_GROUPS },
                { "expires",  required_argument, NULL, ARG_EXPIRES },
                { "openmetrics", no_argument,    NULL, ARG_OPENMETRICS },
                { "prometheus", no_argument,     NULL, ARG_PROMETHEUS },
                {}
        };
        bool help_wanted = false, version_wanted = false;
        int c;

        /* --json first, so that even errors in the options come out as JSON. */
        for (int i = 1; i < argc && !streq(argv[i], "--"); i++)
                if (streq(argv[i], "--json"))
                        arg_json = true;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":", options, NULL)) >= 0)
                switch (c) {
                case ARG_SOCKET:   arg_socket = optarg; break;
                case ARG_JSON:     arg_json = true; break;
                case ARG_HELP:     help_wanted = true; break;
                case ARG_VERSION:  version_wanted = true; break;
                case ARG_TOKEN:    arg_token = true; arg_given |= OPT_TOKEN; break;
                case ARG_AUDIENCE: arg_audience = optarg; arg_given |= OPT_AUDIENCE; break;
                case ARG_ISSUER:   arg_issuer = optarg; arg_given |= OPT_ISSUER; break;
                case ARG_JWKS:     arg_jwks = optarg; arg_given |= OPT_JWKS; break;
                case ARG_USER:     arg_user = optarg; arg_given |= OPT_USER; break;
                case ARG_SERVICE:  arg_service = optarg; arg_given |= OPT_SERVICE; break;
                case ARG_GROUPS:   arg_groups = optarg; arg_given |= OPT_GROUPS; break;
                case ARG_EXPIRES:
                        if (userdb_parse_expires(optarg, &arg_expires) < 0)
                                return print_usage_error("--expires takes now, never, YYYY-MM-DD "
                                                         "or Unix seconds, not '%s'", optarg);
                        arg_given |= OPT_EXPIRES;
                        break;
                case ARG_OPENMETRICS: arg_openmetrics = true; arg_given |= OPT_OPENMETRICS; break;
                case ARG_PROMETHEUS:  arg_prometheus = true; arg_given |= OPT_PROMETHEUS; break;
                case ':':
                        return print_usage_error("option '%s' needs an argument", argv[optind - 1]);
                default:
                        return print_usage_error("unknown option '%s'", argv[optind - 1]);
                }

        if (help_wanted) {
                help();
                return -1;
        }
        if (version_wanted) {
                printf("latchctl %s\n", LATCH_VERSION);
                return -1;
        }
        return EXIT_DONE;
}

int main(int argc, char *argv[]) {
        output_init();
        int r = parse_argv(argc, argv);
        if (r < 0)
                return EXIT_DONE; /* --help or --version */
        if (r != EXIT_DONE)
                return r;

        char **words = argv + optind;
        int n = argc - optind;
        if (n == 0)
                return print_usage_error("no command given");

        bool verb_known = false;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                const struct command *cmd = &commands[i];

                if (!streq(words[0], cmd->verb))
                        continue;
                verb_known = true;

                int skip = 1;
                if (cmd->object) {
                        if (n < 2 || !streq(words[1], cmd->object))
                                continue;
                        skip = 2;
                }

                int nargs = n - skip;
                if (nargs < cmd->min_args || nargs > cmd->max_args)
                        return print_usage_error("wrong number of arguments for '%s%s%s'", cmd->verb,
                                                 cmd->object ? " " : "", cmd->object ? cmd->object : "");
                if (arg_given & ~cmd->options)
                        return print_usage_error("an option given does not apply to '%s%s%s'", cmd->verb,
                                                 cmd->object ? " " : "", cmd->object ? cmd->object : "");
                return cmd->run(words + skip);
        }

        if (verb_known)
                return print_usage_error("unknown subcommand '%s %s'", words[0], n > 1 ? words[1] : "");
        return print_usage_error("unknown command '%s'", words[0]);
}
