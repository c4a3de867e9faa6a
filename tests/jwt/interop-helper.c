/* SPDX-License-Identifier: MIT */

/*
 * The C side of the interoperability test (interop.py):
 *
 *   interop-helper issue STATE_DIR JWKS_FILE
 *           opens a keyring in STATE_DIR, prints a token it signs (iss
 *           "latch", sub "alice", aud "interop", valid for 5 minutes) and
 *           writes the keyring's JWKS to JWKS_FILE
 *   interop-helper verify JWKS_FILE TOKEN AUDIENCE ISSUER
 *           verifies TOKEN against JWKS_FILE with jwt_verify() and prints its
 *           claims (compact, sorted keys); exit 1 and the reason on stderr
 *           when it is refused
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jwt.h"
#include "keys.h"
#include "macro.h"

static int issue(const char *state_dir, const char *jwks_file) {
        struct keyring *k = NULL;
        _cleanup_free_ char *token = NULL;
        int64_t now = (int64_t) time(NULL);
        json_t *claims;
        int r;

        r = keyring_open(state_dir, now, &k);
        if (r < 0) {
                fprintf(stderr, "keyring_open: %s\n", strerror(-r));
                return 2;
        }
        claims = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:[s,s]}",
                           "iss", "latch", "sub", "alice", "aud", "interop",
                           "iat", (json_int_t) now, "nbf", (json_int_t) now, "exp", (json_int_t) now + 300,
                           "jti", "interop-1", "sid", "handle-1", "groups", "wheel", "users");
        r = claims ? keyring_sign(k, "EdDSA", claims, &token) : -ENOMEM;
        json_decref(claims);
        if (r >= 0)
                r = keyring_write_jwks(k, jwks_file, "EdDSA");
        keyring_free(k);
        if (r < 0) {
                fprintf(stderr, "issue: %s\n", strerror(-r));
                return 2;
        }
        puts(token);
        return 0;
}

static int verify(const char *jwks_file, const char *token, const char *audience, const char *issuer) {
        _cleanup_free_ char *text = NULL, *out = NULL;
        struct jwt_keyset *ks = NULL;
        json_t *claims = NULL;
        size_t len = 0;
        FILE *f;
        int r;

        f = fopen(jwks_file, "re");
        if (!f) {
                perror(jwks_file);
                return 2;
        }
        text = malloc(65536);
        if (text)
                len = fread(text, 1, 65536, f);
        fclose(f);
        if (!text)
                return 2;

        r = jwt_keyset_parse(text, len, &ks);
        if (r != JWT_OK) {
                fprintf(stderr, "keyset: %s\n", jwt_strerror(r));
                return 2;
        }

        struct jwt_verify_options opts = {
                .now = (int64_t) time(NULL),
                .leeway = 30,
                .audience = audience,
                .issuer = issuer,
        };
        r = jwt_verify(ks, token, strlen(token), &opts, &claims);
        jwt_keyset_free(ks);
        if (r != JWT_OK) {
                fprintf(stderr, "refused: %s\n", jwt_strerror(r));
                return 1;
        }
        out = json_dumps(claims, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(claims);
        if (!out)
                return 2;
        puts(out);
        return 0;
}

int main(int argc, char **argv) {
        if (argc == 4 && streq(argv[1], "issue"))
                return issue(argv[2], argv[3]);
        if (argc == 6 && streq(argv[1], "verify"))
                return verify(argv[2], argv[3], argv[4], argv[5]);
        fprintf(stderr, "usage: %s issue STATE_DIR JWKS_FILE | verify JWKS_FILE TOKEN AUDIENCE ISSUER\n", argv[0]);
        return 2;
}
