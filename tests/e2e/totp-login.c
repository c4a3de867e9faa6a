/* SPDX-License-Identifier: MIT */

/*
 * A liblatch client of a password + code login, for tests/e2e/test_totp_login.py:
 *
 *   totp-login SOCKET SERVICE USER PASSWORD CODE
 *
 * latch_login() with the password, which the totp line answers with a
 * challenge; it prints each prompt ("prompt: STYLE MESSAGE"), answers the
 * secret one with CODE through latch_respond(), and prints "session: ID" on
 * success. Exit 0 logged in, 1 refused (the error code printed), 3 other.
 */

#include <stdio.h>
#include <string.h>

#include <latch/latch.h>

int main(int argc, char **argv) {
        latch_client *c = NULL;
        latch_reply *reply = NULL;
        int r, rc = 3;

        if (argc != 6) {
                fprintf(stderr, "usage: %s SOCKET SERVICE USER PASSWORD CODE\n", argv[0]);
                return 2;
        }
        if (latch_client_new(argv[1], &c) != LATCH_OK)
                return 3;
        r = latch_login(c, argv[2], argv[3], argv[4], NULL, false, NULL, &reply);
        while (r == LATCH_ERR_CHALLENGE) {
                const latch_reply *ch = latch_last_challenge(c);
                const char *answers[8];
                size_t n = 0;
                char id[256];

                if (!ch)
                        break;
                snprintf(id, sizeof id, "%s", latch_reply_string(ch, "conversation") ?: "");
                for (size_t i = 0; i < latch_reply_count(ch, "prompts") && n < 8; i++) {
                        const char *style = latch_reply_item_string(ch, "prompts", i, "style");
                        printf("prompt: %s %s\n", style, latch_reply_item_string(ch, "prompts", i, "message"));
                        if (style && (!strcmp(style, "secret") || !strcmp(style, "text")))
                                answers[n++] = argv[5];
                }
                r = latch_respond(c, id, answers, n, &reply);
        }
        if (r == LATCH_OK) {
                printf("session: %s\n", latch_reply_string(reply, "session"));
                rc = 0;
        } else {
                printf("error: %s\n", latch_last_error_code(c) ?: latch_error_name(r));
                rc = r == LATCH_ERR_DENIED ? 1 : 3;
        }
        latch_reply_free(reply);
        latch_client_free(c);
        return rc;
}
