/* SPDX-License-Identifier: MIT */
/* latch-bench crypto and argon2: in-process figures (JWT issue and verify
 * beside raw libsodium, argon2id alone and in parallel). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <latch/latch.h>

#include "bench.h"
#include "jwt.h"
#include "macro.h"
#include "session.h"
#include "store.h"

/* ---- in-process crypto ---- */

struct micro {
        const char *name;
        void (*fn)(void *u);
        double *per_batch; /* ns per op for each batch */
        unsigned n_batches;
        unsigned iters;
};

struct crypto_ctx {
        uint8_t pk[32], sk[64];
        char kid[JWT_KID_LEN + 1];
        json_t *claims;
        char *token;
        size_t token_len;
        const uint8_t *msg; /* signing input of token */
        size_t msg_len;
        uint8_t sig[64];
        struct jwt_keyset *ks;
        latch_keyset *lks;
        volatile int sink;
};

static struct crypto_ctx cc;

static void f_raw_sign(void *u) {
        uint8_t sig[64];
        crypto_sign_detached(sig, NULL, cc.msg, cc.msg_len, cc.sk);
        cc.sink += sig[0];
}

static void f_jwt_sign(void *u) {
        char *t = NULL;
        if (jwt_sign(cc.sk, cc.kid, "EdDSA", cc.claims, &t) != JWT_OK)
                die("jwt_sign failed");
        cc.sink += t[0];
        free(t);
}

static void f_raw_verify(void *u) {
        if (crypto_sign_verify_detached(cc.sig, cc.msg, cc.msg_len, cc.pk) != 0)
                die("raw verify failed");
}

static void f_jwt_verify(void *u) {
        struct jwt_verify_options opts = { .now = time(NULL), .leeway = 30, .audience = "bench", .issuer = "latch" };
        json_t *claims = NULL;
        int r = jwt_verify(cc.ks, cc.token, cc.token_len, &opts, &claims);
        if (r != JWT_OK)
                die("jwt_verify: %s", jwt_strerror(r));
        json_decref(claims);
}

static void f_latch_verify(void *u) {
        const char *reason = NULL;
        int r = latch_token_verify(cc.lks, cc.token, "bench", "latch", 30, 0, NULL, NULL, &reason);
        if (r != LATCH_OK)
                die("latch_token_verify: %s", reason ? reason : "?");
}

static void f_latch_verify_claims(void *u) {
        const char *reason = NULL;
        char *claims = NULL, *sub = NULL;
        int r = latch_token_verify(cc.lks, cc.token, "bench", "latch", 30, 0, &claims, &sub, &reason);
        if (r != LATCH_OK)
                die("latch_token_verify: %s", reason ? reason : "?");
        free(claims);
        free(sub);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static double median(double *v, unsigned n) {
        double *t = xmalloc(n * sizeof(double));
        memcpy(t, v, n * sizeof(double));
        qsort(t, n, sizeof(double), cmp_double);
        double m = n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
        free(t);
        return m;
}

static json_t *make_claims(size_t target) {
        time_t now = time(NULL);
        json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:[s,s]}", "iss", "latch", "sub", "alice",
                              "aud", "bench", "iat", (json_int_t) now, "nbf", (json_int_t) now, "exp",
                              (json_int_t) now + 300, "jti", "q8bW3u1c3zAsXk0F2Yv5mA", "sid",
                              "Zm9vYmFyYmF6cXV4MDEyMw", "groups", "users", "staff");
        if (!c)
                die("out of memory");
        char *t = json_dumps(c, JSON_COMPACT);
        size_t have = strlen(t) + strlen(",\"name\":\"\"");
        free(t);
        if (have < target) {
                char *pad = xmalloc(target - have + 1);
                memset(pad, 'x', target - have);
                pad[target - have] = 0;
                json_object_set_new(c, "name", json_string(pad));
                free(pad);
        }
        return c;
}

struct argon_thread {
        const char *hash;
        unsigned runs;
};

static void *argon_thread_main(void *u) {
        struct argon_thread *a = u;
        for (unsigned i = 0; i < a->runs; i++)
                if (crypto_pwhash_str_verify(a->hash, "bench-password", 14) != 0)
                        die("argon2id verify");
        return NULL;
}

/* Verifications per second with `threads` at once: what the machine gives
 * `workers` pool threads hashing side by side. */
static double argon_parallel_rate(const char *hash, unsigned threads, unsigned runs) {
        pthread_t *t = xmalloc(threads * sizeof(pthread_t));
        struct argon_thread a = { hash, runs };
        uint64_t t0 = mono_ns();
        for (unsigned i = 0; i < threads; i++)
                if (pthread_create(&t[i], NULL, argon_thread_main, &a) != 0)
                        die("pthread_create failed");
        for (unsigned i = 0; i < threads; i++)
                pthread_join(t[i], NULL);
        double secs = (double) (mono_ns() - t0) / 1e9;
        free(t);
        return threads * runs / secs;
}

/* N raw Ed25519 signatures of a message of `bytes` bytes, then N
 * verifications: the references of the token and verify ops in
 * instructions, counted by callgrind (bench/run: --toggle-collect on each
 * function, divided by N; the message as long as the signing input of the
 * tokens latchd issues in the run). */
int cmd_ed25519(unsigned n, unsigned bytes) {
        uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
        uint8_t *msg = xmalloc(bytes ? bytes : 1);
        unsigned bad = 0;

        crypto_sign_keypair(pk, sk);
        randombytes_buf(msg, bytes);
        for (unsigned i = 0; i < n; i++)
                crypto_sign_detached(sig, NULL, msg, bytes, sk);
        for (unsigned i = 0; i < n; i++)
                bad += crypto_sign_verify_detached(sig, msg, bytes, pk) != 0;
        sodium_memzero(sk, sizeof sk);
        free(msg);
        printf("{\"signatures\": %u, \"verifications\": %u, \"bytes\": %u, \"failed\": %u}\n", n, n, bytes, bad);
        return bad ? 1 : 0;
}

/* Hashes the bench password into `hash`, times `runs` verifies of it one
 * after another into ns[], then returns the verifies per second of every
 * CPU at once (`par_runs` rounds), their number in *ret_threads. */
static double argon_times(char hash[crypto_pwhash_STRBYTES], double *ns, unsigned runs, unsigned par_runs,
                          unsigned *ret_threads) {
        if (crypto_pwhash_str(hash, "bench-password", 14, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
                die("crypto_pwhash_str");
        for (unsigned i = 0; i < runs; i++) {
                uint64_t t0 = mono_ns();
                if (crypto_pwhash_str_verify(hash, "bench-password", 14) != 0)
                        die("argon2id verify");
                ns[i] = (double) (mono_ns() - t0);
        }
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        *ret_threads = ncpu > 0 ? (unsigned) ncpu : 1;
        return argon_parallel_rate(hash, *ret_threads, par_runs);
}

int cmd_crypto(double seconds) {
        if (crypto_sign_keypair(cc.pk, cc.sk) != 0)
                die("keypair");
        jwt_thumbprint(cc.pk, cc.kid);
        cc.claims = make_claims(300);
        char *ct = json_dumps(cc.claims, JSON_COMPACT);
        size_t claims_len = strlen(ct);
        free(ct);
        if (jwt_sign(cc.sk, cc.kid, "EdDSA", cc.claims, &cc.token) != JWT_OK)
                die("jwt_sign");
        cc.token_len = strlen(cc.token);
        const char *dot = strrchr(cc.token, '.');
        cc.msg = (const uint8_t *) cc.token;
        cc.msg_len = (size_t) (dot - cc.token);
        crypto_sign_detached(cc.sig, NULL, cc.msg, cc.msg_len, cc.sk);
        cc.ks = jwt_keyset_new();
        if (!cc.ks || jwt_keyset_add(cc.ks, cc.pk, NULL) != JWT_OK)
                die("keyset");
        char x[64], jwks[512];
        if (b64url_encode(cc.pk, 32, x, sizeof x) != JWT_OK)
                die("b64");
        snprintf(jwks, sizeof jwks,
                 "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\",\"kid\":\"%s\",\"use\":\"sig\","
                 "\"alg\":\"EdDSA\"}]}",
                 x, cc.kid);
        if (latch_jwks_parse(jwks, strlen(jwks), &cc.lks) != LATCH_OK)
                die("latch_jwks_parse");

        struct micro m[] = {
                { "raw_sign", f_raw_sign },
                { "jwt_sign", f_jwt_sign },
                { "raw_verify", f_raw_verify },
                { "jwt_verify", f_jwt_verify },
                { "latch_token_verify", f_latch_verify },
                { "latch_token_verify_claims", f_latch_verify_claims },
        };
        const unsigned n_m = ELEMENTSOF(m);
        const double batch_s = 0.02;
        /* Calibrate: iterations for a batch of ~20 ms. */
        for (unsigned i = 0; i < n_m; i++) {
                uint64_t t0 = mono_ns();
                unsigned k = 0;
                while (mono_ns() - t0 < 5000000u) {
                        m[i].fn(NULL);
                        k++;
                }
                m[i].iters = MAX(1u, (unsigned) ((double) k * batch_s / 0.005));
        }
        /* Interleave batches: noise from other processes hits every
         * primitive alike; the median batch is reported. */
        unsigned rounds = MAX(5u, (unsigned) (seconds / (batch_s * n_m)));
        for (unsigned i = 0; i < n_m; i++)
                m[i].per_batch = xmalloc(rounds * sizeof(double));
        for (unsigned r = 0; r < rounds; r++)
                for (unsigned i = 0; i < n_m; i++) {
                        uint64_t t0 = mono_ns();
                        for (unsigned k = 0; k < m[i].iters; k++)
                                m[i].fn(NULL);
                        m[i].per_batch[m[i].n_batches++] = (double) (mono_ns() - t0) / m[i].iters;
                }

        /* argon2id INTERACTIVE verify, as the file plugin does per login. */
        char hash[crypto_pwhash_STRBYTES];
        double a[7];
        unsigned threads;
        double par = argon_times(hash, a, ELEMENTSOF(a), 3, &threads);

        json_t *r = json_object();
        for (unsigned i = 0; i < n_m; i++) {
                json_object_set_new(r, m[i].name, json_pack("{s:f, s:i}", "ns", median(m[i].per_batch, m[i].n_batches),
                                                            "batches", (int) m[i].n_batches));
                free(m[i].per_batch);
        }
        json_object_set_new(r, "argon2id_verify", json_pack("{s:f, s:i, s:I, s:I}", "ns", median(a, ELEMENTSOF(a)),
                                                            "runs", (int) ELEMENTSOF(a), "opslimit",
                                                            (json_int_t) crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                                            "memlimit", (json_int_t) crypto_pwhash_MEMLIMIT_INTERACTIVE));
        json_object_set_new(r, "argon2id_parallel", json_pack("{s:i, s:f}", "threads", (int) threads, "per_second", par));
        json_object_set_new(r, "claims_bytes", json_integer((json_int_t) claims_len));
        json_object_set_new(r, "token_bytes", json_integer((json_int_t) cc.token_len));
        json_object_set_new(r, "signing_input_bytes", json_integer((json_int_t) cc.msg_len));
        print_json(r);
        json_decref(cc.claims);
        free(cc.token);
        jwt_keyset_free(cc.ks);
        latch_keyset_free(cc.lks);
        sodium_memzero(cc.sk, sizeof cc.sk);
        return 0;
}

/* argon2id INTERACTIVE alone, right before the login runs: one thread (the
 * median of `runs`), then every CPU's worth of threads at once. */
int cmd_argon2(unsigned runs) {
        char hash[crypto_pwhash_STRBYTES];
        double *a = xmalloc(runs * sizeof(double));
        unsigned threads;
        double par = argon_times(hash, a, runs, MAX(1u, runs / 2), &threads);
        print_json(json_pack("{s:{s:f, s:i}, s:{s:i, s:f}}", "argon2id_verify", "ns", median(a, runs), "runs",
                             (int) runs, "argon2id_parallel", "threads", (int) threads, "per_second", par));
        free(a);
        return 0;
}
