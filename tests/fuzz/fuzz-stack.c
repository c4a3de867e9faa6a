/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the service-stack parser and engine: writes the input
 * as the service file "svc" of a private directory (made once, with two fixed
 * files "common" and "sub" that inputs may include), loads it with a fake
 * module table, runs every stack, a whole authentication (with an expired
 * password's change) and a password change when it loads, and frees
 * everything. Diagnostics are checked to name a file and are
 * otherwise dropped.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fake_module {
        int result[4]; /* auth, account, password prelim, password update */
};

static int fake_result(const char *event, int argc, const char *const *argv) {
        size_t n = strlen(event);

        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], event, n) == 0 && argv[i][n] == '=') {
                        int r = stack_result_from_string(argv[i] + n + 1);
                        return r < 0 ? atoi(argv[i] + n + 1) : r; /* also out-of-range values */
                }
        return LATCH_SUCCESS;
}

static int fake_open(void *userdata, const char *plugin, int argc, const char *const *argv,
                     void **ret_module, char **ret_error) {
        struct fake_module *m;

        if (strcmp(plugin, "missing") == 0)
                return -ENOENT;
        if (strcmp(plugin, "broken") == 0) {
                *ret_error = strdup("broken plugin");
                return -EINVAL;
        }
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->result[STACK_AUTH] = fake_result("auth", argc, argv);
        m->result[STACK_ACCOUNT] = fake_result("acct", argc, argv);
        m->result[2] = fake_result("prechauthtok", argc, argv);
        m->result[3] = fake_result("chauthtok", argc, argv);
        *ret_module = m;
        return 0;
}

static void fake_close(void *userdata, void *module) {
        free(module);
}

static int fake_call(void *userdata, void *module, enum stack_type type, int flags, struct latch_req *req) {
        const struct fake_module *m = module;

        if (type != STACK_PASSWORD)
                return m->result[type];
        /* At most one pass flag (none from stack_run()). */
        if ((flags & LATCH_PRELIM_CHECK) && (flags & LATCH_UPDATE_AUTHTOK))
                abort();
        return m->result[flags & LATCH_PRELIM_CHECK ? 2 : 3];
}

static void fake_outcome(void *userdata, void *module, struct latch_req *req, int result) {
        if (result < 0 || result >= _LATCH_RESULT_MAX)
                abort(); /* the engine only ever reports a valid result */
}

static const struct stack_module_ops fake_ops = {
        .open = fake_open,
        .close = fake_close,
        .call = fake_call,
        .outcome = fake_outcome,
};

static void diag_check(void *userdata, const char *file, unsigned line, const char *message) {
        if (!file || !message || !*message)
                abort();
}

static char dir[64];

static int write_file(const char *name, const void *data, size_t size) {
        char path[128];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        if (size > 0 && write(fd, data, size) != (ssize_t) size) {
                close(fd);
                return -EIO;
        }
        close(fd);
        return 0;
}

static void cleanup(void) {
        static const char *const names[] = { "svc", "common", "sub" };
        char path[128];

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
                (void) unlink(path);
        }
        (void) rmdir(dir);
}

static void setup_once(void) {
        static const char common[] = "auth requisite debug auth=auth_err\n"
                                     "account [success=1 default=ignore] debug\n"
                                     "account required debug acct=acct_expired\n"
                                     "password requisite debug prechauthtok=authtok_err\n";
        static const char sub[] = "auth [success=done default=die] debug\n"
                                  "-auth sufficient missing\n"
                                  "auth substack common\n"
                                  "password [success=done default=die] debug chauthtok=try_again\n"
                                  "password substack common\n";

        if (dir[0])
                return;
        strcpy(dir, "/tmp/latch-fuzz-stack-XXXXXX");
        if (!mkdtemp(dir) || write_file("common", common, sizeof(common) - 1) < 0 ||
            write_file("sub", sub, sizeof(sub) - 1) < 0)
                abort();
        atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct services *s = NULL;
        const struct stack *st;

        if (size > 64 * 1024)
                return 0;
        setup_once();
        if (write_file("svc", data, size) < 0)
                abort();

        if (services_load_file(dir, "svc", &fake_ops, NULL, diag_check, NULL, &s) < 0)
                return 0;
        st = services_find(s, "svc");
        if (!st)
                abort();
        for (int t = 0; t < _STACK_TYPE_MAX; t++) {
                int r = stack_run(st, (enum stack_type) t, NULL);
                if (r < 0 || r >= _LATCH_RESULT_MAX)
                        abort();
        }
        (void) stack_authenticate(st, NULL);
        {
                struct stack_auth_state state = { .change_expired = true };
                int r = stack_authenticate_step(st, NULL, &state);
                if (r < 0 || r >= _LATCH_RESULT_MAX ||
                    state.password_changed != (r == LATCH_SUCCESS && state.type == STACK_PASSWORD))
                        abort();
                if (r == LATCH_INCOMPLETE)
                        stack_authenticate_end(st, NULL, &state, LATCH_CONV_ERR);
        }
        {
                struct stack_auth_state state = {};
                int r = stack_chauthtok_step(st, NULL, &state, 0);
                if (r < 0 || r >= _LATCH_RESULT_MAX || state.password_changed != (r == LATCH_SUCCESS))
                        abort();
                if (r == LATCH_INCOMPLETE)
                        stack_authenticate_end(st, NULL, &state, LATCH_CONV_ERR);
        }
        services_free(s);
        return 0;
}
