/* SPDX-License-Identifier: MIT */

/*
 * otp.c: RFC 4226 Appendix D and RFC 6238 Appendix B vectors (all three
 * algorithms), base32, code parsing, URIs, and agreement with Debian's
 * oathtool on random secrets, algorithms, lengths, periods and times.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "otp.h"

static void test_hotp_rfc4226(void **unused) {
        static const uint32_t expect[] = { 755224, 287082, 359152, 969429, 338314,
                                           254676, 287922, 162583, 399871, 520489 };
        const uint8_t *key = (const uint8_t *) "12345678901234567890";

        for (uint64_t c = 0; c < 10; c++) {
                uint32_t v;
                assert_int_equal(otp_hotp(OTP_SHA1, key, 20, c, 6, &v), 0);
                assert_int_equal(v, expect[c]);
        }
}

/* RFC 6238 Appendix B: 8 digits, 30 s, a seed of the hash's size. */
static void test_totp_rfc6238(void **unused) {
        static const struct {
                int64_t t;
                const char *code[3];
        } v[] = {
                { 59, { "94287082", "46119246", "90693936" } },
                { 1111111109, { "07081804", "68084774", "25091201" } },
                { 1111111111, { "14050471", "67062674", "99943326" } },
                { 1234567890, { "89005924", "91819424", "93441116" } },
                { 2000000000, { "69279037", "90698825", "38618901" } },
                { INT64_C(20000000000), { "65353130", "77737706", "47863826" } },
        };
        static const char *const seed[3] = {
                "12345678901234567890",
                "12345678901234567890123456789012",
                "1234567890123456789012345678901234567890123456789012345678901234",
        };

        for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
                for (int a = 0; a < 3; a++) {
                        uint32_t code;
                        char buf[16];
                        assert_int_equal(otp_hotp((enum otp_algorithm) a, (const uint8_t *) seed[a],
                                                  strlen(seed[a]), otp_step(v[i].t, 30), 8, &code),
                                         0);
                        otp_format(code, 8, buf);
                        assert_string_equal(buf, v[i].code[a]);
                }
}

static void test_hotp_bad(void **unused) {
        uint32_t v;
        const uint8_t k[1] = { 1 };
        assert_int_equal(otp_hotp(OTP_SHA1, k, 1, 0, 5, &v), -EINVAL);
        assert_int_equal(otp_hotp(OTP_SHA1, k, 1, 0, 9, &v), -EINVAL);
        assert_int_equal(otp_hotp(OTP_SHA1, k, 0, 0, 6, &v), -EINVAL);
        assert_int_equal(otp_hotp(_OTP_ALGORITHM_MAX, k, 1, 0, 6, &v), -EINVAL);
}

static void test_base32(void **unused) {
        /* RFC 4648 section 10, without padding. */
        static const char *const enc[] = { "", "MY", "MZXQ", "MZXW6", "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI" };
        const char *plain = "foobar";
        char buf[64];
        uint8_t out[64];

        for (size_t n = 0; n <= 6; n++) {
                assert_int_equal(otp_base32_encode((const uint8_t *) plain, n, buf, sizeof buf), (int) strlen(enc[n]));
                assert_string_equal(buf, enc[n]);
                assert_int_equal(otp_base32_decode(enc[n], out, sizeof out), (int) n);
                assert_memory_equal(out, plain, n);
        }
        /* Padding, lower case and spaces are accepted. */
        assert_int_equal(otp_base32_decode("mzxw 6yq=", out, sizeof out), 4);
        assert_memory_equal(out, "foob", 4);
        /* Outside the alphabet, non-zero trailing bits, a dangling symbol. */
        assert_int_equal(otp_base32_decode("MZXW1", out, sizeof out), -EINVAL);
        assert_int_equal(otp_base32_decode("MZ", out, sizeof out), -EINVAL);
        assert_int_equal(otp_base32_decode("MYA", out, sizeof out), -EINVAL);
        assert_int_equal(otp_base32_decode("MZXW6YTB", out, 4), -ENOBUFS);
        assert_int_equal(otp_base32_encode((const uint8_t *) plain, 6, buf, 10), -ENOBUFS);
}

static void test_parse_code(void **unused) {
        uint32_t v;
        assert_int_equal(otp_parse_code("012345", 6, &v), 0);
        assert_int_equal(v, 12345);
        assert_int_equal(otp_parse_code("012 345", 6, &v), 0);
        assert_int_equal(v, 12345);
        assert_int_equal(otp_parse_code("12345", 6, &v), -EINVAL);
        assert_int_equal(otp_parse_code("1234567", 6, &v), -EINVAL);
        assert_int_equal(otp_parse_code("12345a", 6, &v), -EINVAL);
        assert_int_equal(otp_parse_code("", 6, &v), -EINVAL);
        assert_int_equal(otp_parse_code("-12345", 6, &v), -EINVAL);
        assert_int_equal(otp_parse_code("12345678", 8, &v), 0);
        assert_int_equal(v, 12345678);
}

static void test_uri(void **unused) {
        const uint8_t secret[] = "12345678901234567890";
        char *uri = otp_uri("ACME Co", "jo@x", secret, 20, OTP_SHA256, 8, 60);
        assert_non_null(uri);
        assert_string_equal(uri, "otpauth://totp/ACME%20Co:jo%40x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                                 "&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60");
        free(uri);
        assert_int_equal(otp_algorithm_from_string("SHA512"), OTP_SHA512);
        assert_int_equal(otp_algorithm_from_string("md5"), -EINVAL);
}

/* What `oathtool --totp` prints for these settings at time t. */
static void oathtool_code(const char *b32, enum otp_algorithm alg, unsigned digits, unsigned period, int64_t t,
                          char *out, size_t outsize) {
        char cmd[512];
        FILE *f;

        snprintf(cmd, sizeof cmd, "oathtool --totp=%s -b -d %u -s %us -N @%lld %s", otp_algorithm_uri_name(alg),
                 digits, period, (long long) t, b32);
        f = popen(cmd, "r");
        assert_non_null(f);
        assert_non_null(fgets(out, (int) outsize, f));
        assert_int_equal(pclose(f), 0);
        out[strcspn(out, "\n")] = '\0';
}

/* Random secrets, settings and times: oathtool and otp.c agree. */
static void test_oathtool_agrees(void **unused) {
        static const unsigned periods[] = { 30, 60, 15 };

        for (int i = 0; i < 24; i++) {
                uint8_t secret[OTP_SECRET_SIZE];
                char b[64], ours[16], theirs[32];
                enum otp_algorithm alg = (enum otp_algorithm) (i % 3);
                unsigned digits = i % 2 ? 8 : 6, period = periods[(i / 3) % 3];
                int64_t t = 1000000000 + (int64_t) randombytes_uniform(1000000000);
                uint32_t v;

                randombytes_buf(secret, sizeof secret);
                assert_true(otp_base32_encode(secret, sizeof secret, b, sizeof b) > 0);
                assert_int_equal(otp_hotp(alg, secret, sizeof secret, otp_step(t, period), digits, &v), 0);
                otp_format(v, digits, ours);
                oathtool_code(b, alg, digits, period, t, theirs, sizeof theirs);
                assert_string_equal(ours, theirs);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hotp_rfc4226),
                cmocka_unit_test(test_totp_rfc6238),
                cmocka_unit_test(test_hotp_bad),
                cmocka_unit_test(test_base32),
                cmocka_unit_test(test_parse_code),
                cmocka_unit_test(test_uri),
                cmocka_unit_test(test_oathtool_agrees),
        };
        if (sodium_init() < 0)
                return 1;
        return cmocka_run_group_tests(tests, NULL, NULL);
}
