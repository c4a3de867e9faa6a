/* SPDX-License-Identifier: MIT */

/*
 * libFuzzer harness for jwt_verify(): every input is a token, checked against
 * a fixed key set (the RFC 8037 Appendix A key, kid
 * "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k", and a second key) at a fixed
 * time, with audience "svc" and issuer "latch". The seed corpus in
 * corpus/jwt/ holds tokens valid under exactly these settings and near misses
 * of them.
 */

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <sodium.h>

#include "jwt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NOW 1700000000

static const struct jwt_keyset *fuzz_keyset(void) {
        static struct jwt_keyset *ks;
        /* RFC 8037 A.2 and a second, arbitrary valid public key (the RFC
         * 8032 test 1 key). */
        static const uint8_t keys[2][32] = {
                { 0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
                  0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a },
                { 0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7, 0x4d, 0x1b, 0x7e, 0xbc,
                  0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c, 0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c },
        };

        if (!ks) {
                ks = jwt_keyset_new();
                if (!ks || jwt_keyset_add(ks, keys[0], NULL) != JWT_OK || jwt_keyset_add(ks, keys[1], NULL) != JWT_OK)
                        abort();
        }
        return ks;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const struct jwt_verify_options opts = {
                .now = FUZZ_NOW,
                .leeway = 30,
                .audience = "svc",
                .issuer = "latch",
        };
        json_t *claims = NULL;
        int r;

        r = jwt_verify(fuzz_keyset(), (const char *) data, size, &opts, &claims);
        if (r < 0 || r >= _JWT_ERROR_MAX)
                abort();
        if ((r == JWT_OK) != (claims != NULL))
                abort();
        if (r == JWT_OK && !json_is_object(claims))
                abort();
        json_decref(claims);
        return 0;
}
