/* SPDX-License-Identifier: MIT */
/*
 * pam_asker: a PAM module for the differential test that, like a module
 * waiting for its application's conversation, returns PAM_INCOMPLETE before
 * deciding. Arguments as pam_debug's (auth=NAME, acct=NAME, prechauthtok=NAME,
 * chauthtok=NAME: the result of the auth and account calls and of
 * pam_chauthtok()'s two passes, success by default) plus id=N, a name for
 * its state: its odd-numbered calls (per id and call type, each pass its
 * own, counted on the PAM handle with pam_set_data()) return PAM_INCOMPLETE,
 * its even-numbered ones the result. libpam calls it again when the
 * application calls pam_authenticate()/pam_acct_mgmt()/pam_chauthtok()
 * again: it resumes the stack here.
 * The latch side of the test has the same module as "asker" (debug-ops.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <security/pam_modules.h>

/* Linux-PAM's return names, indexed by value (as latch's result names). */
static const char *const names[] = {
        "success", "open_err", "symbol_err", "service_err", "system_err", "buf_err",
        "perm_denied", "auth_err", "cred_insufficient", "authinfo_unavail", "user_unknown",
        "maxtries", "new_authtok_reqd", "acct_expired", "session_err", "cred_unavail",
        "cred_expired", "cred_err", "no_module_data", "conv_err", "authtok_err",
        "authtok_recover_err", "authtok_lock_busy", "authtok_disable_aging", "try_again",
        "ignore", "abort", "authtok_expired", "module_unknown", "bad_item", "conv_again",
        "incomplete",
};

static int parse(const char *event, int argc, const char **argv) {
        size_t n = strlen(event);

        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], event, n) == 0 && argv[i][n] == '=') {
                        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
                                if (strcmp(argv[i] + n + 1, names[k]) == 0)
                                        return (int) k;
                        return PAM_SUCCESS;
                }
        return PAM_SUCCESS;
}

static void cleanup(pam_handle_t *pamh, void *data, int error_status) {
        free(data);
}

static int call(pam_handle_t *pamh, const char *event, int argc, const char **argv) {
        const char *id = "0";
        char key[64];
        const void *p = NULL;
        int *calls;

        for (int i = 0; i < argc; i++)
                if (strncmp(argv[i], "id=", 3) == 0)
                        id = argv[i] + 3;
        snprintf(key, sizeof key, "pam_asker_%s_%s", event, id);
        if (pam_get_data(pamh, key, &p) != PAM_SUCCESS || !p) {
                calls = calloc(1, sizeof(*calls));
                if (!calls || pam_set_data(pamh, key, calls, cleanup) != PAM_SUCCESS) {
                        free(calls);
                        return PAM_BUF_ERR;
                }
        } else
                calls = (int *) p;
        if (++*calls % 2 == 1)
                return PAM_INCOMPLETE;
        return parse(event, argc, argv);
}

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_authenticate(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return call(pamh, "auth", argc, argv);
}

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_setcred(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return PAM_SUCCESS;
}

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_acct_mgmt(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return call(pamh, "acct", argc, argv);
}

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_chauthtok(pam_handle_t *pamh, int flags, int argc, const char **argv) {
        return call(pamh, flags & PAM_PRELIM_CHECK ? "prechauthtok" : "chauthtok", argc, argv);
}
