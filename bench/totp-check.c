/* SPDX-License-Identifier: MIT */

/*
 * latch-bench-totp: what a `totp` line adds to a login, in microseconds.
 *
 * It loads the totp plugin through latchd's plugin host on a store opened as
 * latchd opens it (commits synced), enrolls a user through the plugin's
 * admin actions, then times, one request at a time:
 *
 *   accepted  auth() asking for the code, then the call continuing it with
 *             the right code: the record read, the candidate codes, and the
 *             accepted time step written in one kv_update (outside a
 *             request's batch: a synced commit of its own)
 *   refused   the same with a wrong code (no write)
 *   codes     the HMACs alone: 2 * window + 1 candidate codes (window=1)
 *   session   a login's session write alone (one synced commit)
 *   login     an accepted code and then the session write, in a key-value
 *             batch as latchd runs a login: the step goes in the session's
 *             commit. The median of login - session, iteration by
 *             iteration, is what the line adds to a login.
 *
 * The pinned clock moves one period per accepted check, so every check uses
 * a new time step, as logins of one user do. Prints a table (or one JSON
 * object with --json): median, p99 and mean of each, in microseconds.
 *
 * Usage: latch-bench-totp [--json] [--iterations N] [--dir DIR] TOTP_SO
 */

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "otp.h"
#include "plugin-host.h"
#include "store.h"


static int64_t clock_now = INT64_C(1800000000);

/* A login's session write, as op-auth.c makes it. */
static int session_write(store *st, uint64_t i) {
        struct session_info info = {
                .user = "bench-user",
                .service = "bench",
                .claims_json = "{}",
                .claims_canonical = true,
                .created_at = clock_now,
                .last_seen_at = clock_now,
                .expires_at = clock_now + 3600,
                .idle_timeout = 3600,
        };
        uint8_t key[STORE_KEY_SIZE];

        randombytes_buf(key, sizeof key);
        snprintf(info.handle, sizeof info.handle, "bench%017" PRIu64, i % UINT64_C(100000000000000000));
        return store_session_create(st, key, &info);
}

static int64_t test_clock(void *userdata) {
        return clock_now;
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

struct figure {
        double median_us, p99_us, mean_us;
};

static struct figure summarise(uint64_t *ns, size_t n) {
        double sum = 0;
        qsort(ns, n, sizeof *ns, cmp_u64);
        for (size_t i = 0; i < n; i++)
                sum += (double) ns[i];
        return (struct figure){
                .median_us = (double) ns[n / 2] / 1000.0,
                .p99_us = (double) ns[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1000.0,
                .mean_us = sum / (double) n / 1000.0,
        };
}

static void quiet_log(void *userdata, int priority, const char *plugin, const struct latch_req *req,
                      const char *message) {
        if (priority <= 4)
                fprintf(stderr, "%s: %s\n", plugin, message);
}

/* One check: 0 and the line's result in *ret_result, or -1. */
static int check(struct plugin_line *l, const char *code, int *ret_result) {
        struct latch_req *req = NULL;
        int r;

        if (latch_req_new("login", "bench", "bench-user", "pw", NULL, &req) < 0)
                return -1;
        r = plugin_line_call(l, STACK_AUTH, req, 0);
        if (r == LATCH_INCOMPLETE) {
                if (latch_req_set_answers(req, (const char *const[]){ code }, 1) < 0) {
                        latch_req_free(req);
                        return -1;
                }
                r = plugin_line_call(l, STACK_AUTH, req, 0);
        }
        latch_req_free(req);
        *ret_result = r;
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "iterations", required_argument, NULL, 'n' },
                { "dir", required_argument, NULL, 'd' },
                {}
        };
        const char *parent = getenv("TMPDIR") ?: "/var/tmp";
        bool json = false;
        long n = 2000;
        int c;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0)
                switch (c) {
                case 'j': json = true; break;
                case 'n': n = strtol(optarg, NULL, 10); break;
                case 'd': parent = optarg; break;
                default: return 2;
                }
        if (optind != argc - 1 || n < 10) {
                fprintf(stderr, "usage: %s [--json] [--iterations N>=10] [--dir DIR] TOTP_SO\n", argv[0]);
                return 2;
        }
        if (sodium_init() < 0)
                return 1;

        char dir[4096];
        snprintf(dir, sizeof dir, "%s/latch-bench-totp-XXXXXX", parent);
        if (!mkdtemp(dir)) {
                perror("mkdtemp");
                return 1;
        }

        store *st = NULL;
        struct plugin_host *h = NULL;
        struct plugin_line *l = NULL;
        char *err = NULL, *msg = NULL;
        json_t *args = json_pack("{s:s}", "user", "bench-user"), *answer = NULL;
        uint64_t *acc = calloc((size_t) n, sizeof *acc), *ref = calloc((size_t) n, sizeof *ref),
                 *hm = calloc((size_t) n, sizeof *hm), *se = calloc((size_t) n, sizeof *se),
                 *lo = calloc((size_t) n, sizeof *lo);
        uint8_t secret[OTP_SECRET_MAX];
        int rc = 1, secretlen, result;
        char code[16];

        if (!args || !acc || !ref || !hm || !se || !lo || store_open(dir, &st) < 0 || plugin_host_new("/nonexistent", st, &h) < 0)
                goto out;
        plugin_host_set_clock(h, test_clock, NULL);
        plugin_host_set_log(h, quiet_log, NULL);
        if (plugin_line_open(h, argv[optind], 0, NULL, &l, &err) < 0) {
                fprintf(stderr, "%s\n", err ?: "cannot open the totp line");
                goto out;
        }

        /* Enroll and confirm, as latchctl totp enroll does. */
        if (plugin_line_admin(l, "enroll", args, false, false, &answer, &msg) < 0)
                goto out;
        secretlen = otp_base32_decode(json_string_value(json_object_get(answer, "secret")), secret, sizeof secret);
        if (secretlen <= 0)
                goto out;
        uint32_t v;
        otp_hotp(OTP_SHA1, secret, (size_t) secretlen, otp_step(clock_now, 30), 6, &v);
        otp_format(v, 6, code);
        json_object_set_new(args, "code", json_string(code));
        json_decref(answer);
        answer = NULL;
        if (plugin_line_admin(l, "confirm", args, false, false, &answer, &msg) < 0)
                goto out;

        for (long i = 0; i < n; i++) {
                uint64_t t0, t1;

                clock_now += 30;
                otp_hotp(OTP_SHA1, secret, (size_t) secretlen, otp_step(clock_now, 30), 6, &v);
                otp_format(v, 6, code);
                t0 = now_ns();
                if (check(l, code, &result) < 0)
                        goto out;
                t1 = now_ns();
                if (result != LATCH_SUCCESS) {
                        fprintf(stderr, "a right code was refused (result %d)\n", result);
                        goto out;
                }
                acc[i] = t1 - t0;

                /* The code just used is now a replay: refused without a write. */
                t0 = now_ns();
                if (check(l, code, &result) < 0)
                        goto out;
                t1 = now_ns();
                if (result != LATCH_AUTH_ERR) {
                        fprintf(stderr, "a used code was accepted (result %d)\n", result);
                        goto out;
                }
                ref[i] = t1 - t0;

                t0 = now_ns();
                for (int k = -1; k <= 1; k++)
                        otp_hotp(OTP_SHA1, secret, (size_t) secretlen, otp_step(clock_now, 30) + (uint64_t) k, 6, &v);
                t1 = now_ns();
                hm[i] = t1 - t0;

                t0 = now_ns();
                if (session_write(st, 2 * (uint64_t) i) < 0)
                        goto out;
                t1 = now_ns();
                se[i] = t1 - t0;

                /* A login with the code, as op-auth.c runs it. */
                struct store_kv_batch batch = {};
                clock_now += 30;
                otp_hotp(OTP_SHA1, secret, (size_t) secretlen, otp_step(clock_now, 30), 6, &v);
                otp_format(v, 6, code);
                t0 = now_ns();
                store_kv_batch_begin(st, &batch);
                if (check(l, code, &result) < 0 || result != LATCH_SUCCESS ||
                    session_write(st, 2 * (uint64_t) i + 1) < 0 || store_kv_batch_end(&batch) < 0) {
                        fprintf(stderr, "a login with a right code failed\n");
                        goto out;
                }
                t1 = now_ns();
                lo[i] = t1 - t0;
        }

        /* The median of the per-iteration differences: each pair ran back
         * to back, so a slow moment of the disk weighs on both. */
        int64_t *diff = calloc((size_t) n, sizeof *diff);
        if (!diff)
                goto out;
        for (long i = 0; i < n; i++)
                diff[i] = (int64_t) lo[i] - (int64_t) se[i];
        qsort(diff, (size_t) n, sizeof *diff, cmp_i64);
        double added = (double) diff[n / 2] / 1000.0;
        free(diff);
        struct figure fa = summarise(acc, (size_t) n), fr = summarise(ref, (size_t) n), fh = summarise(hm, (size_t) n),
                      fs = summarise(se, (size_t) n), fl = summarise(lo, (size_t) n);
        if (json)
                printf("{\"iterations\": %ld, \"accepted\": {\"median_us\": %.2f, \"p99_us\": %.2f, \"mean_us\": %.2f}, "
                       "\"refused\": {\"median_us\": %.2f, \"p99_us\": %.2f, \"mean_us\": %.2f}, "
                       "\"codes\": {\"median_us\": %.2f, \"p99_us\": %.2f, \"mean_us\": %.2f}, "
                       "\"session\": {\"median_us\": %.2f, \"p99_us\": %.2f, \"mean_us\": %.2f}, "
                       "\"login\": {\"median_us\": %.2f, \"p99_us\": %.2f, \"mean_us\": %.2f}, "
                       "\"added_in_login_us\": %.2f}\n",
                       n, fa.median_us, fa.p99_us, fa.mean_us, fr.median_us, fr.p99_us, fr.mean_us, fh.median_us,
                       fh.p99_us, fh.mean_us, fs.median_us, fs.p99_us, fs.mean_us, fl.median_us, fl.p99_us,
                       fl.mean_us, added);
        else {
                printf("totp line, %ld checks each (state in %s, commits synced)\n", n, parent);
                printf("%-44s %10s %10s %10s\n", "", "median µs", "p99 µs", "mean µs");
                printf("%-44s %10.1f %10.1f %10.1f\n", "accepted code, its own synced commit", fa.median_us,
                       fa.p99_us, fa.mean_us);
                printf("%-44s %10.1f %10.1f %10.1f\n", "refused code (a replay: no write)", fr.median_us, fr.p99_us,
                       fr.mean_us);
                printf("%-44s %10.1f %10.1f %10.1f\n", "the 3 HMAC-SHA-1 codes alone (window=1)", fh.median_us,
                       fh.p99_us, fh.mean_us);
                printf("%-44s %10.1f %10.1f %10.1f\n", "a login's session write alone", fs.median_us, fs.p99_us,
                       fs.mean_us);
                printf("%-44s %10.1f %10.1f %10.1f\n", "accepted code + session write, as in a login", fl.median_us,
                       fl.p99_us, fl.mean_us);
                printf("added by the totp line to a login (median of the differences): %.1f µs (%.2f x the 50 µs target)\n", added,
                       added / 50.0);
        }
        rc = 0;
out:
        if (rc && msg)
                fprintf(stderr, "%s\n", msg);
        free(err);
        free(msg);
        json_decref(args);
        json_decref(answer);
        plugin_line_close(l);
        plugin_host_free(h);
        store_close(st);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        free(acc);
        free(ref);
        free(hm);
        free(se);
        free(lo);
        sodium_memzero(secret, sizeof secret);
        return rc;
}
