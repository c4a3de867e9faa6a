/* SPDX-License-Identifier: MIT */
/* latch-bench users and populate: a user database and a store full of
 * sessions, written before latchd starts. */
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>


#include "bench.h"
#include "session.h"

/* ---- users, populate ---- */

int cmd_users(const char *path, unsigned count, const char *password) {
        char hash[crypto_pwhash_STRBYTES];
        /* One argon2id INTERACTIVE hash (what `latchctl user add` writes)
         * shared by every user: each login still verifies one full hash. */
        if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
                die("crypto_pwhash_str failed");
        FILE *f = fopen(path, "we");
        if (!f)
                die("%s: %m", path);
        for (unsigned i = 0; i < count; i++)
                fprintf(f, "u%u:%s:users\n", i, hash);
        if (fclose(f) != 0)
                die("%s: %m", path);
        print_json(json_pack("{s:i}", "users", (int) count));
        return 0;
}

/* Sessions are created as logins would create them: created_at =
 * last_seen_at = the time of creation. The ids written to the ids file are
 * those of the last `sample` sessions: the youngest, so that validating them
 * soon after does not make latchd persist a new last_seen (a "touch", one
 * synced write each, done when the stored one is older than the touch
 * granularity, at most 60 s). Keys are hashes: the last ones are spread over
 * the whole B-tree like any others. --last-seen-ahead S dates last_seen S
 * seconds ahead: no touch for S more seconds (bench/run uses it for the
 * sessions validated during the sweep, to time the sweep apart from touches). */
int cmd_populate(const char *dir, uint64_t count, const char *service, unsigned users, double expire_at,
                        int64_t idle_timeout, const char *ids_path, uint64_t sample, int64_t last_seen_ahead) {
        store *st = NULL;
        struct store_options so = { .no_sync = true, .initial_map_size = (size_t) 256 << 20 };
        int r = store_open_with_options(dir, &so, &st);
        if (r < 0)
                die("%s: cannot open the store: %s", dir, strerror(-r));
        FILE *ids = fopen(ids_path, "we");
        if (!ids)
                die("%s: %m", ids_path);
        uint64_t first_sampled = sample > 0 && sample < count ? count - sample : 0;
        uint64_t written = 0;
        char user[32];
        static const char claims[] = "{\"groups\":[\"users\"]}";
        bool canonical = session_claims_canonical(claims); /* as latchd's login marks it */
        uint64_t t0 = mono_ns();

        for (uint64_t i = 0; i < count; i++) {
                char id[SESSION_ID_LEN + 1];
                uint8_t key[STORE_KEY_SIZE];
                int64_t now = time(NULL);
                struct session_info info = {
                        .user = user,
                        .service = service,
                        .claims_json = claims,
                        .created_at = now,
                        .last_seen_at = now + last_seen_ahead,
                        .expires_at = (int64_t) expire_at,
                        .idle_timeout = idle_timeout,
                        .peer_uid = getuid(),
                        .claims_canonical = canonical,
                };
                snprintf(user, sizeof user, "bulk%u", (unsigned) (i % users));
                session_id_new(id, key);
                session_handle_new(info.handle);
                r = store_session_create(st, key, &info);
                if (r < 0)
                        die("store_session_create: %s", strerror(-r));
                if (i >= first_sampled) {
                        fprintf(ids, "%s\n", id);
                        written++;
                }
                sodium_memzero(id, sizeof id);
                sodium_memzero(key, sizeof key);
        }
        uint64_t t1 = mono_ns();
        if (fclose(ids) != 0)
                die("%s: %m", ids_path);
        struct store_stats ss;
        r = store_get_stats(st, &ss);
        store_close(st);
        if (r < 0)
                die("store_get_stats: %s", strerror(-r));
        print_json(json_pack("{s:I, s:I, s:f, s:f, s:I, s:I}", "created", (json_int_t) count, "ids_written",
                             (json_int_t) written, "seconds", (double) (t1 - t0) / 1e9, "per_second",
                             (double) count / ((double) (t1 - t0) / 1e9), "stored", (json_int_t) ss.sessions,
                             "used_bytes", (json_int_t) ss.used_bytes));
        return 0;
}
