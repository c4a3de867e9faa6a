/* SPDX-License-Identifier: MIT */
/*
 * Tests of the LMDB session store (daemon/store.c): sessions, a randomized
 * model check, crash consistency, sweeps, map growth, kv (and kv batches), size,
 * slides.
 * test-store-files.c holds the tests of the store's files.
 *
 * Each test works in its own fresh directory under $TMPDIR (or /tmp).
 * STORE_TEST_SEED fixes the seed of the randomized tests; the seed in use is
 * printed so that a failure can be replayed.
 */

#include "store-test.h"

/* ---- 1. CRUD ---- */

static void test_crud(void **state) {
        char *dir = make_dir();
        store *s = open_store(dir, 0, false);
        struct session_info a, b, bad;
        uint8_t ka[STORE_KEY_SIZE], kb[STORE_KEY_SIZE], kx[STORE_KEY_SIZE];
        struct got g = {};
        struct store_stats st;
        size_t n;

        make_key(ka, 1);
        make_key(kb, 2);
        make_key(kx, 99);

        /* a: idle 600 s, absolute 1000 + 3600. */
        make_info(&a, 1, "alice", "wiki", "{\"groups\":[\"users\"]}", 1000, 4600, 600);
        assert_int_equal(store_session_create(s, ka, &a), 0);

        /* Duplicate key, and duplicate handle under another key. */
        make_info(&b, 2, "bob", "mail", NULL, 1000, 2000, 10000);
        assert_int_equal(store_session_create(s, ka, &b), -EEXIST);
        make_info(&bad, 1, "carol", "mail", NULL, 1000, 2000, 10000);
        assert_int_equal(store_session_create(s, kx, &bad), -EEXIST);
        assert_int_equal(store_session_get(s, kx, 1000, got_fn, &g), -ENOENT);
        assert_int_equal(store_check_consistency(s), 0);

        /* Bad arguments. */
        make_info(&bad, 50, "carol", "mail", NULL, 1000, 2000, 10);
        bad.handle[5] = '\0';
        assert_int_equal(store_session_create(s, kx, &bad), -EINVAL);
        make_info(&bad, 50, "", "mail", NULL, 1000, 2000, 10);
        assert_int_equal(store_session_create(s, kx, &bad), -EINVAL);

        /* b: absolute expiry 2000 comes first; claims NULL is stored as {}. */
        assert_int_equal(store_session_create(s, kb, &b), 0);

        assert_int_equal(store_session_get(s, ka, 1000, got_fn, &g), 0);
        assert_int_equal(g.calls, 1);
        assert_string_equal(g.handle, a.handle);
        assert_string_equal(g.user, "alice");
        assert_string_equal(g.service, "wiki");
        assert_string_equal(g.claims, "{\"groups\":[\"users\"]}");
        assert_int_equal(g.created_at, 1000);
        assert_int_equal(g.last_seen_at, 1000);
        assert_int_equal(g.expires_at, 4600);
        assert_int_equal(g.idle_timeout, 600);
        assert_int_equal(g.peer_uid, 1000);

        memset(&g, 0, sizeof g);
        assert_int_equal(store_session_get_by_handle(s, b.handle, 1500, got_fn, &g), 0);
        assert_int_equal(g.calls, 1);
        assert_string_equal(g.user, "bob");
        assert_string_equal(g.claims, "{}");
        assert_int_equal(store_session_get_by_handle(s, "AAAAAAAAAAAAAAAAAAAAAA", 1500, got_fn, &g), -ENOENT);
        assert_int_equal(store_session_get_by_handle(s, "short", 1500, got_fn, &g), -ENOENT);

        /* Idle expiry: last_seen 1000 + 600. */
        assert_int_equal(store_session_get(s, ka, 1599, got_fn, &g), 0);
        assert_int_equal(store_session_get(s, ka, 1600, got_fn, &g), -ENOENT);
        assert_int_equal(store_session_get_by_handle(s, a.handle, 1600, got_fn, &g), -ENOENT);

        /* Absolute expiry of b at 2000, though idle allows 11000. */
        assert_int_equal(store_session_get(s, kb, 1999, got_fn, &g), 0);
        assert_int_equal(store_session_get(s, kb, 2000, got_fn, &g), -ENOENT);

        /* Touch slides idle expiry... */
        assert_int_equal(store_session_touch(s, ka, 1500), 0);
        memset(&g, 0, sizeof g);
        assert_int_equal(store_session_get(s, ka, 2099, got_fn, &g), 0);
        assert_int_equal(g.last_seen_at, 1500);
        assert_int_equal(store_session_get(s, ka, 2100, got_fn, &g), -ENOENT);
        /* ... but not a dead session back to life. */
        assert_int_equal(store_session_touch(s, ka, 2100), -ENOENT);
        /* A touch in the past changes nothing. */
        assert_int_equal(store_session_touch(s, ka, 1200), 0);
        assert_int_equal(store_session_get(s, ka, 2099, got_fn, &g), 0);
        assert_int_equal(g.last_seen_at, 1500);

        /* ... and never past expires_at. */
        assert_int_equal(store_session_touch(s, ka, 2000), 0);
        assert_int_equal(store_session_touch(s, ka, 2500), 0);
        assert_int_equal(store_session_touch(s, ka, 3000), 0);
        assert_int_equal(store_session_touch(s, ka, 3500), 0);
        assert_int_equal(store_session_touch(s, ka, 4000), 0);
        assert_int_equal(store_session_touch(s, ka, 4500), 0);
        memset(&g, 0, sizeof g);
        assert_int_equal(store_session_get(s, ka, 4599, got_fn, &g), 0);
        assert_int_equal(g.last_seen_at, 4500);
        assert_int_equal(g.expires_at, 4600);
        assert_int_equal(store_session_get(s, ka, 4600, got_fn, &g), -ENOENT);
        assert_int_equal(store_session_touch(s, ka, 4600), -ENOENT);
        assert_int_equal(store_session_touch(s, kx, 1000), -ENOENT);
        assert_int_equal(store_check_consistency(s), 0);

        /* The sweep finds a by its moved expiry entry (4600), not the old. */
        assert_int_equal(store_sweep(s, 4599, 10, &n), 0);
        assert_int_equal(n, 1); /* b, absolute 2000 */
        assert_int_equal(store_sweep(s, 4600, 10, &n), 0);
        assert_int_equal(n, 1); /* a */
        assert_int_equal(store_get_stats(s, &st), 0);
        assert_int_equal(st.sessions, 0);
        assert_int_equal(store_check_consistency(s), 0);

        /* List with filters: users u0..u2 × services svc0..svc1, 2 each. */
        uint8_t keys[12][STORE_KEY_SIZE];
        const char *users[] = { "u0", "u1", "u2" }, *services[] = { "svc0", "svc1" };
        for (size_t i = 0; i < 12; i++) {
                struct session_info info;

                make_key(keys[i], 100 + i);
                make_info(&info, 100 + i, users[i % 3], services[(i / 3) % 2], NULL, 10000,
                          /* #11 expires early */ i == 11 ? 10500 : 20000, 5000);
                assert_int_equal(store_session_create(s, keys[i], &info), 0);
        }
        /* i%3 = user, (i/3)%2 = service; #11 is u2/svc1. */
        assert_int_equal(list_count(s, NULL, NULL, 10000), 12);
        assert_int_equal(list_count(s, NULL, NULL, 10500), 11);
        assert_int_equal(list_count(s, "u0", NULL, 10000), 4);
        assert_int_equal(list_count(s, "u2", NULL, 10500), 3);
        assert_int_equal(list_count(s, NULL, "svc1", 10000), 6);
        assert_int_equal(list_count(s, NULL, "svc1", 10600), 5);
        assert_int_equal(list_count(s, "u2", "svc1", 10000), 2);
        assert_int_equal(list_count(s, "u2", "svc1", 10600), 1);
        assert_int_equal(list_count(s, "nobody", NULL, 10000), 0);
        assert_int_equal(list_count(s, NULL, "none", 10000), 0);
        assert_int_equal(list_count(s, NULL, NULL, 15000), 0); /* idle 5000 */
        n = 0;
        assert_int_equal(store_session_list(s, NULL, NULL, 10000, stop_fn, &n), 7);
        assert_int_equal(n, 1);
        n = 0;
        assert_int_equal(store_session_list(s, "u1", NULL, 10000, stop_fn, &n), 7);
        assert_int_equal(n, 1);

        /* Delete. */
        assert_int_equal(store_session_delete(s, keys[0]), 0);
        assert_int_equal(store_session_delete(s, keys[0]), -ENOENT);
        assert_int_equal(store_session_get(s, keys[0], 10000, got_fn, &g), -ENOENT);
        assert_int_equal(list_count(s, "u0", NULL, 10000), 3);

        /* Revoke by handle. */
        struct session_info h;
        make_info(&h, 101, "x", "x", NULL, 0, 0, 0);
        assert_int_equal(store_session_revoke_handle(s, h.handle, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(store_session_revoke_handle(s, h.handle, &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(store_session_get(s, keys[1], 10000, got_fn, &g), -ENOENT);
        assert_int_equal(store_session_revoke_handle(s, "bogus", NULL), 0);

        /* Revoke a user's sessions but one: u2 has 4 (one expired but not
         * swept: it goes too); keys[5] stays, and a key of another user
         * kept changes nothing for u2. */
        assert_int_equal(store_session_revoke_user_except(s, "u2", keys[5], &n, NULL), 0);
        assert_int_equal(n, 3);
        assert_int_equal(store_session_get(s, keys[5], 10000, got_fn, &g), 0);
        assert_int_equal(store_session_get(s, keys[2], 10000, got_fn, &g), -ENOENT);
        assert_int_equal(list_count(s, "u2", NULL, 0), 1);
        assert_int_equal(list_count(s, "u0", NULL, 10000), 3);
        assert_int_equal(store_check_consistency(s), 0);
        assert_int_equal(store_session_revoke_user_except(s, "u2", keys[5], &n, NULL), 0);
        assert_int_equal(n, 0);

        /* Revoke a user: the last of u2's. */
        assert_int_equal(store_session_revoke_user_except(s, "u2", keys[3], &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(store_session_revoke_user(s, "u2", &n), 0);
        assert_int_equal(n, 0);
        assert_int_equal(list_count(s, "u2", NULL, 0), 0);
        assert_int_equal(list_count(s, NULL, NULL, 10000), 6);
        assert_int_equal(store_get_stats(s, &st), 0);
        assert_int_equal(st.sessions, 6);
        assert_true(st.map_size >= 64u << 20);
        assert_true(st.used_bytes > 0);
        assert_int_equal(store_check_consistency(s), 0);

        /* Durable across reopen. */
        store_close(s);
        s = open_store(dir, 0, false);
        assert_int_equal(list_count(s, NULL, NULL, 10000), 6);
        assert_int_equal(store_session_get(s, keys[3], 10000, got_fn, &g), 0);
        assert_int_equal(store_check_consistency(s), 0);

        store_close(s);
        store_close(NULL);
        remove_dir(dir);
}

/* ---- 2. randomized consistency against a model ---- */

#define MODEL_MAX 600
#define N_USERS 8

struct model_session {
        bool present;
        uint64_t id;
        uint8_t key[STORE_KEY_SIZE];
        char handle[STORE_HANDLE_LEN + 1];
        int user, service;
        int64_t created, last_seen, expires, idle;
};

static const char *model_users[N_USERS] = { "root", "alice", "bob", "carol", "dave", "eve", "mallory", "trent" };
static const char *model_services[] = { "wiki", "mail", "ssh" };

static int64_t model_exp(const struct model_session *m) {
        return MIN(m->last_seen + m->idle, m->expires);
}

static int cmp_sweep(const void *a, const void *b) {
        const struct model_session *x = *(const struct model_session *const *) a;
        const struct model_session *y = *(const struct model_session *const *) b;

        if (model_exp(x) != model_exp(y))
                return model_exp(x) < model_exp(y) ? -1 : 1;
        return memcmp(x->key, y->key, STORE_KEY_SIZE);
}

struct verify_ctx {
        struct model_session *m;
        size_t n, seen, mismatches;
};

static int verify_fn(void *userdata, const struct session_info *s) {
        struct verify_ctx *v = userdata;

        v->seen++;
        for (size_t i = 0; i < v->n; i++) {
                struct model_session *m = &v->m[i];

                if (!m->present || !streq(m->handle, s->handle))
                        continue;
                if (!streq(s->user, model_users[m->user]) || !streq(s->service, model_services[m->service]) ||
                    s->created_at != m->created || s->last_seen_at != m->last_seen ||
                    s->expires_at != m->expires || s->idle_timeout != m->idle)
                        v->mismatches++;
                return 0;
        }
        v->mismatches++;
        return 0;
}

static void test_random_consistency(void **state) {
        char *dir = make_dir();
        store *s = open_store(dir, 0, true);
        struct model_session *m = calloc(MODEL_MAX, sizeof *m);
        size_t n = 0, n_present = 0;
        uint64_t rs = seed, next_id = 1;
        int64_t now = 100000;
        const unsigned ops = 6000;

        assert_non_null(m);
        print_message("random consistency: seed %" PRIu64 "\n", seed);

        for (unsigned op = 0; op < ops; op++) {
                unsigned what = rnd_below(&rs, 100);
                struct model_session *x = n > 0 ? &m[rnd_below(&rs, n)] : NULL;
                struct got g = {};
                size_t cnt;
                int r;

                now += rnd_below(&rs, 4);

                if (what < 35 || !x) {
                        struct session_info info;
                        struct model_session ms = {};
                        bool dup_key = x && x->present && rnd_below(&rs, 20) == 0;
                        bool dup_handle = !dup_key && x && x->present && rnd_below(&rs, 20) == 0;

                        ms.id = next_id++;
                        make_key(ms.key, ms.id);
                        make_handle(ms.handle, ms.id);
                        if (dup_key)
                                memcpy(ms.key, x->key, STORE_KEY_SIZE);
                        if (dup_handle)
                                memcpy(ms.handle, x->handle, sizeof ms.handle);
                        ms.user = rnd_below(&rs, N_USERS);
                        ms.service = rnd_below(&rs, ELEMENTSOF(model_services));
                        ms.created = ms.last_seen = now;
                        ms.expires = now + 50 + rnd_below(&rs, 20000);
                        ms.idle = 20 + rnd_below(&rs, 4000);
                        info = (struct session_info) {
                                .user = model_users[ms.user],
                                .service = model_services[ms.service],
                                .created_at = ms.created,
                                .last_seen_at = ms.last_seen,
                                .expires_at = ms.expires,
                                .idle_timeout = ms.idle,
                        };
                        memcpy(info.handle, ms.handle, sizeof info.handle);

                        r = store_session_create(s, ms.key, &info);
                        if (dup_key || dup_handle) {
                                assert_int_equal(r, -EEXIST);
                                continue;
                        }
                        assert_int_equal(r, 0);
                        ms.present = true;
                        if (n == MODEL_MAX) {
                                /* Reuse a slot whose session is gone. */
                                size_t i;
                                for (i = 0; i < n && m[i].present; i++)
                                        ;
                                if (i == n) {
                                        assert_int_equal(store_session_delete(s, ms.key), 0);
                                        continue;
                                }
                                m[i] = ms;
                        } else
                                m[n++] = ms;
                        n_present++;
                } else if (what < 50) {
                        bool live = x->present && model_exp(x) > now;
                        r = rnd_below(&rs, 2) ? store_session_get(s, x->key, now, got_fn, &g)
                                              : store_session_get_by_handle(s, x->handle, now, got_fn, &g);
                        assert_int_equal(r, live ? 0 : -ENOENT);
                        if (live) {
                                assert_string_equal(g.user, model_users[x->user]);
                                assert_string_equal(g.service, model_services[x->service]);
                                assert_int_equal(g.last_seen_at, x->last_seen);
                        }
                } else if (what < 65) {
                        bool live = x->present && model_exp(x) > now;
                        assert_int_equal(store_session_touch(s, x->key, now), live ? 0 : -ENOENT);
                        if (live)
                                x->last_seen = MAX(x->last_seen, now);
                } else if (what < 73) {
                        assert_int_equal(store_session_delete(s, x->key), x->present ? 0 : -ENOENT);
                        if (x->present)
                                n_present--;
                        x->present = false;
                } else if (what < 78) {
                        assert_int_equal(store_session_revoke_handle(s, x->handle, &cnt), 0);
                        assert_int_equal(cnt, x->present ? 1 : 0);
                        if (x->present)
                                n_present--;
                        x->present = false;
                } else if (what < 80) {
                        int u = rnd_below(&rs, N_USERS);
                        size_t expect = 0;
                        for (size_t i = 0; i < n; i++)
                                if (m[i].present && m[i].user == u) {
                                        m[i].present = false;
                                        expect++;
                                }
                        assert_int_equal(store_session_revoke_user(s, model_users[u], &cnt), 0);
                        assert_int_equal(cnt, expect);
                        n_present -= expect;
                } else if (what < 90) {
                        size_t batch = 1 + rnd_below(&rs, 15), n_cand = 0, removed;
                        struct model_session **cand = calloc(n + 1, sizeof *cand);

                        assert_non_null(cand);
                        for (size_t i = 0; i < n; i++)
                                if (m[i].present && model_exp(&m[i]) <= now)
                                        cand[n_cand++] = &m[i];
                        qsort(cand, n_cand, sizeof *cand, cmp_sweep);
                        assert_int_equal(store_sweep(s, now, batch, &removed), 0);
                        assert_int_equal(removed, MIN(batch, n_cand));
                        for (size_t i = 0; i < removed; i++)
                                cand[i]->present = false;
                        n_present -= removed;
                        free(cand);
                } else {
                        int u = rnd_below(&rs, N_USERS + 1) - 1;
                        int sv = rnd_below(&rs, ELEMENTSOF(model_services) + 1) - 1;
                        size_t expect = 0;
                        for (size_t i = 0; i < n; i++)
                                if (m[i].present && model_exp(&m[i]) > now && (u < 0 || m[i].user == u) &&
                                    (sv < 0 || m[i].service == sv))
                                        expect++;
                        assert_int_equal(list_count(s, u < 0 ? NULL : model_users[u],
                                                    sv < 0 ? NULL : model_services[sv], now),
                                         expect);
                }

                if (op % 500 == 0)
                        assert_int_equal(store_check_consistency(s), 0);
        }

        /* Everything the store holds, expired or not, against the model. */
        struct verify_ctx v = { .m = m, .n = n };
        struct store_stats st;
        assert_int_equal(store_session_list(s, NULL, NULL, INT64_MIN, verify_fn, &v), 0);
        assert_int_equal(v.mismatches, 0);
        assert_int_equal(v.seen, n_present);
        assert_int_equal(store_get_stats(s, &st), 0);
        assert_int_equal(st.sessions, n_present);
        assert_int_equal(store_check_consistency(s), 0);
        print_message("random consistency: %u ops, %zu sessions at the end\n", ops, n_present);

        /* The checker does catch a damaged index: remove a user entry behind
         * the store's back. */
        if (n_present > 0) {
                size_t i;
                for (i = 0; !m[i].present; i++)
                        ;
                store_close(s);

                MDB_env *env;
                MDB_txn *txn;
                MDB_dbi dbi;
                char *path;
                assert_true(asprintf(&path, "%s/sessions.mdb", dir) > 0);
                assert_int_equal(mdb_env_create(&env), 0);
                assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
                assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR, 0600), 0);
                assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
                assert_int_equal(mdb_dbi_open(txn, "users", MDB_DUPSORT | MDB_DUPFIXED, &dbi), 0);
                MDB_val k = { strlen(model_users[m[i].user]), (void *) model_users[m[i].user] };
                MDB_val d = { STORE_KEY_SIZE, m[i].key };
                assert_int_equal(mdb_del(txn, dbi, &k, &d), 0);
                assert_int_equal(mdb_txn_commit(txn), 0);
                mdb_env_close(env);
                free(path);

                s = open_store(dir, 0, true);
                assert_int_equal(store_check_consistency(s), -EUCLEAN);
        }

        store_close(s);
        free(m);
        remove_dir(dir);
}

/* ---- 3. crash consistency ---- */

struct crash_msg {
        char op; /* 'C' created, 'd' about to delete, 'D' deleted */
        uint8_t key[STORE_KEY_SIZE];
};

static void write_all(int fd, const void *p, size_t n) {
        if (write(fd, p, n) != (ssize_t) n)
                _exit(3);
}

_Noreturn static void crash_child(const char *dir, int fd, uint64_t round) {
        uint8_t live[512][STORE_KEY_SIZE];
        size_t n_live = 0;
        uint64_t rs = seed ^ (round * 7919);
        store *s = NULL;

        if (store_open(dir, &s) < 0)
                _exit(2);
        /* Hold a reader slot (pooled) so that the parent can see it cleared. */
        uint8_t k0[STORE_KEY_SIZE] = {};
        (void) store_session_get(s, k0, 0, noop_fn, NULL);

        for (uint64_t i = 0; i < 1000000; i++) {
                struct crash_msg msg = { .op = 'C' };
                struct session_info info;
                uint64_t id = (round << 32) | i;

                make_key(msg.key, id);
                make_info(&info, id, i % 2 ? "alice" : "bob", "wiki", "{\"groups\":[\"users\"]}", 1000,
                          1000000000, 1000000000);
                if (store_session_create(s, msg.key, &info) != 0)
                        _exit(4);
                write_all(fd, &msg, sizeof msg);
                if (n_live < ELEMENTSOF(live))
                        memcpy(live[n_live++], msg.key, STORE_KEY_SIZE);

                if (i % 3 == 2 && n_live > 0) {
                        size_t j = rnd_below(&rs, n_live);

                        msg.op = 'd';
                        memcpy(msg.key, live[j], STORE_KEY_SIZE);
                        write_all(fd, &msg, sizeof msg);
                        if (store_session_delete(s, msg.key) != 0)
                                _exit(5);
                        msg.op = 'D';
                        write_all(fd, &msg, sizeof msg);
                        memcpy(live[j], live[--n_live], STORE_KEY_SIZE);
                }
        }
        _exit(0);
}

struct acked {
        uint8_t key[STORE_KEY_SIZE];
        char state; /* 'C', 'd' (delete in flight), 'D' */
};

static void test_crash(void **state) {
        char *dir = make_dir();
        struct acked *acks = NULL;
        size_t n_acks = 0, cap = 0;
        uint64_t rs = seed ^ 0xC0FFEE;
        const unsigned rounds = 5;

        for (unsigned round = 0; round < rounds; round++) {
                int p[2];
                pid_t pid;
                struct crash_msg msg;
                store *s, *watcher;
                struct store_stats st;
                size_t before = n_acks, deletes = 0;

                assert_int_equal(pipe2(p, O_CLOEXEC), 0);
                pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        close(p[0]);
                        crash_child(dir, p[1], round);
                }
                close(p[1]);

                /* Wait for the first acknowledgement, then open our own
                 * handle alongside the child's, then kill it at a random
                 * moment. */
                assert_int_equal(read(p[0], &msg, sizeof msg), (ssize_t) sizeof msg);
                assert_int_equal(msg.op, 'C');
                watcher = open_store(dir, 0, false);
                usleep(20000 + rnd_below(&rs, 300000));
                assert_int_equal(kill(pid, SIGKILL), 0);
                int status;
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

                /* The acknowledgements: the one read above, then the rest. */
                for (;;) {
                        if (n_acks == cap) {
                                cap = cap ? cap * 2 : 1024;
                                acks = realloc(acks, cap * sizeof *acks);
                                assert_non_null(acks);
                        }
                        if (msg.op == 'C') {
                                memcpy(acks[n_acks].key, msg.key, STORE_KEY_SIZE);
                                acks[n_acks++].state = 'C';
                        } else {
                                for (size_t i = n_acks; i-- > 0;)
                                        if (memcmp(acks[i].key, msg.key, STORE_KEY_SIZE) == 0) {
                                                acks[i].state = msg.op;
                                                break;
                                        }
                                deletes += msg.op == 'D';
                        }
                        ssize_t l = read(p[0], &msg, sizeof msg);
                        if (l == 0)
                                break;
                        assert_int_equal(l, (ssize_t) sizeof msg);
                }
                close(p[0]);

                /* The dead child's reader slot is found and cleared. */
                assert_int_equal(store_sweep(watcher, 0, 0, NULL), 0);
                assert_int_equal(store_get_stats(watcher, &st), 0);
                assert_true(st.readers_cleared >= 1);
                store_close(watcher);

                s = open_store(dir, 0, false);
                assert_int_equal(store_check_consistency(s), 0);
                size_t present = 0;
                for (size_t i = 0; i < n_acks; i++) {
                        int r = store_session_get(s, acks[i].key, 2000, noop_fn, NULL);

                        if (acks[i].state == 'C')
                                assert_int_equal(r, 0);
                        else if (acks[i].state == 'D')
                                assert_int_equal(r, -ENOENT);
                        else
                                assert_true(r == 0 || r == -ENOENT);
                        present += r == 0;
                }
                assert_int_equal(store_get_stats(s, &st), 0);
                /* At most one unacknowledged create per round may have
                 * committed. */
                assert_true(st.sessions >= present && st.sessions <= present + round + 1);
                print_message("crash round %u: %zu creates and %zu deletes acknowledged, %zu sessions\n", round,
                              n_acks - before, deletes, present);
                /* Settle in-flight deletes before the next round. */
                for (size_t i = 0; i < n_acks; i++)
                        if (acks[i].state == 'd') {
                                int r = store_session_delete(s, acks[i].key);
                                assert_true(r == 0 || r == -ENOENT);
                                acks[i].state = 'D';
                        }
                store_close(s);
        }

        free(acks);
        remove_dir(dir);
}

/* ---- 4. sweep with concurrent readers ---- */

#define N_LIVE 100

struct reader_ctx {
        store *s;
        uint8_t (*keys)[STORE_KEY_SIZE];
        int64_t now;
        atomic_bool stop;
        atomic_size_t ok, failed;
};

static void *reader_thread(void *p) {
        struct reader_ctx *c = p;

        for (size_t i = 0; !atomic_load(&c->stop); i++) {
                if (store_session_get(c->s, c->keys[i % N_LIVE], c->now, noop_fn, NULL) == 0)
                        atomic_fetch_add(&c->ok, 1);
                else
                        atomic_fetch_add(&c->failed, 1);
        }
        return NULL;
}

static void wait_for_reader(struct reader_ctx *c, size_t n) {
        while (atomic_load(&c->ok) + atomic_load(&c->failed) < n)
                sched_yield();
}

static void test_sweep(void **state) {
        char *dir = make_dir();
        store *s = open_store(dir, 0, true);
        uint8_t (*live)[STORE_KEY_SIZE] = calloc(N_LIVE, STORE_KEY_SIZE);
        const size_t n_expired = 100000;
        const int64_t now = 10000000;
        struct reader_ctx c = { .s = s, .keys = live, .now = now };
        struct store_stats st;
        size_t total = 0, removed, rounds = 0;
        pthread_t t;
        char user[16];

        assert_non_null(live);
        for (size_t i = 0; i < N_LIVE; i++) {
                struct session_info info;

                make_key(live[i], 5000000 + i);
                make_info(&info, 5000000 + i, "alive", "wiki", NULL, 0, now + 1000000, 100000000);
                assert_int_equal(store_session_create(s, live[i], &info), 0);
        }
        for (size_t i = 0; i < n_expired; i++) {
                struct session_info info;
                uint8_t key[STORE_KEY_SIZE];

                snprintf(user, sizeof user, "user%04zu", i % 5000);
                make_key(key, i);
                /* Absolute expiry in the past of `now`, spread out. */
                make_info(&info, i, user, "webapp", "{\"groups\":[\"users\"]}", 0, 1000 + (int64_t) (i % 9973),
                          10000000);
                assert_int_equal(store_session_create(s, key, &info), 0);
        }
        assert_int_equal(store_get_stats(s, &st), 0);
        assert_int_equal(st.sessions, N_LIVE + n_expired);

        assert_int_equal(pthread_create(&t, NULL, reader_thread, &c), 0);
        wait_for_reader(&c, 100);
        do {
                assert_int_equal(store_sweep(s, now, 1000, &removed), 0);
                total += removed;
                rounds++;
        } while (removed == 1000);
        wait_for_reader(&c, atomic_load(&c.ok) + 100);
        atomic_store(&c.stop, true);
        assert_int_equal(pthread_join(t, NULL), 0);

        print_message("sweep: %zu removed in %zu transactions; reader: %zu gets ok, %zu failed\n", total, rounds,
                      atomic_load(&c.ok), atomic_load(&c.failed));
        assert_int_equal(total, n_expired);
        assert_int_equal(atomic_load(&c.failed), 0);
        assert_true(atomic_load(&c.ok) > 0);

        assert_int_equal(store_get_stats(s, &st), 0);
        assert_int_equal(st.sessions, N_LIVE);
        /* Indexes hold exactly the live sessions. */
        assert_int_equal(store_check_consistency(s), 0);
        assert_int_equal(list_count(s, NULL, NULL, INT64_MIN), N_LIVE);
        assert_int_equal(list_count(s, "user0001", NULL, INT64_MIN), 0);
        assert_int_equal(store_sweep(s, now, 1000, &removed), 0);
        assert_int_equal(removed, 0);

        store_close(s);
        free(live);
        remove_dir(dir);
}

/* ---- 5. map growth ---- */

static void test_map_growth(void **state) {
        char *dir = make_dir();
        const size_t initial = 256 << 10;
        store *s = open_store(dir, initial, true);
        uint8_t (*live)[STORE_KEY_SIZE] = calloc(N_LIVE, STORE_KEY_SIZE);
        struct reader_ctx c = { .s = s, .keys = live, .now = 1000 };
        struct store_stats st;
        char claims[400];
        size_t i, grows = 0, last = 0;
        pthread_t t;

        assert_non_null(live);
        memset(claims, 0, sizeof claims);
        strcpy(claims, "{\"groups\":[\"");
        memset(claims + strlen(claims), 'g', 300);
        strcat(claims, "\"]}");

        for (i = 0; i < N_LIVE; i++) {
                struct session_info info;

                make_key(live[i], 1000000 + i);
                make_info(&info, 1000000 + i, "reader", "wiki", NULL, 0, 1000000, 1000000);
                assert_int_equal(store_session_create(s, live[i], &info), 0);
        }

        /* Readers keep running across the resizes. */
        assert_int_equal(pthread_create(&t, NULL, reader_thread, &c), 0);
        assert_int_equal(store_get_stats(s, &st), 0);
        last = st.map_size;
        assert_int_equal(last, initial);
        for (i = 0; i < 200000 && st.map_size < 8 * initial; i++) {
                struct session_info info;
                uint8_t key[STORE_KEY_SIZE];

                make_key(key, i);
                make_info(&info, i, "grower", "wiki", claims, 0, 1000000, 1000000);
                assert_int_equal(store_session_create(s, key, &info), 0);
                assert_int_equal(store_get_stats(s, &st), 0);
                if (st.map_size != last) {
                        assert_int_equal(st.map_size, 2 * last);
                        grows++;
                        last = st.map_size;
                }
        }
        atomic_store(&c.stop, true);
        assert_int_equal(pthread_join(t, NULL), 0);
        print_message("map growth: %zu sessions, map %zu -> %" PRIu64 " bytes (%zu doublings); reader %zu ok\n", i,
                      initial, st.map_size, grows, atomic_load(&c.ok));
        assert_true(grows >= 3);
        assert_int_equal(atomic_load(&c.failed), 0);
        assert_int_equal(list_count(s, "grower", NULL, 0), i);
        assert_int_equal(store_check_consistency(s), 0);

        /* The grown size sticks on reopen. */
        store_close(s);
        s = open_store(dir, initial, true);
        assert_int_equal(store_get_stats(s, &st), 0);
        assert_true(st.map_size >= 8 * initial);
        assert_int_equal(list_count(s, "grower", NULL, 0), i);

        store_close(s);
        free(live);
        remove_dir(dir);
}

/* ---- 7. kv ---- */

static int incr_fn(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        uint64_t v = 0;

        if (old) {
                if (oldlen != sizeof v)
                        return -EBADMSG;
                memcpy(&v, old, sizeof v);
        }
        v++;
        assert_true(*newlen >= sizeof v);
        memcpy(newbuf, &v, sizeof v);
        *newlen = sizeof v;
        return 1;
}

static int ret_fn(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        return *(int *) userdata;
}

struct kv_thread {
        store *s;
        int failures;
};

static void *kv_thread_fn(void *p) {
        struct kv_thread *t = p;

        for (int i = 0; i < 1000; i++)
                if (store_kv_update(t->s, "counter", "hits", 4, incr_fn, NULL) != 0)
                        t->failures++;
        return NULL;
}

static void test_kv(void **state) {
        char *dir = make_dir();
        store *s = open_store(dir, 0, true);
        struct kv_thread th[4];
        pthread_t t[4];
        uint64_t v = 0;
        uint8_t small[2];
        size_t len;
        int ret;

        len = sizeof v;
        assert_int_equal(store_kv_get(s, "counter", "hits", 4, &v, &len), -ENOENT);

        for (size_t i = 0; i < 4; i++) {
                th[i] = (struct kv_thread) { .s = s };
                assert_int_equal(pthread_create(&t[i], NULL, kv_thread_fn, &th[i]), 0);
        }
        for (size_t i = 0; i < 4; i++) {
                assert_int_equal(pthread_join(t[i], NULL), 0);
                assert_int_equal(th[i].failures, 0);
        }
        len = sizeof v;
        assert_int_equal(store_kv_get(s, "counter", "hits", 4, &v, &len), 0);
        assert_int_equal(len, sizeof v);
        assert_int_equal(v, 4000);

        /* Too small a buffer tells the size needed. */
        len = sizeof small;
        assert_int_equal(store_kv_get(s, "counter", "hits", 4, small, &len), -ENOBUFS);
        assert_int_equal(len, sizeof v);

        /* Namespaces are apart: "counter"/"hits" is not "counterh"/"its". */
        len = sizeof v;
        assert_int_equal(store_kv_get(s, "counterh", "its", 3, &v, &len), -ENOENT);
        assert_int_equal(store_kv_get(s, "other", "hits", 4, &v, &len), -ENOENT);

        /* 0 leaves it, a negative errno aborts, 2 deletes. */
        ret = 0;
        assert_int_equal(store_kv_update(s, "counter", "hits", 4, ret_fn, &ret), 0);
        ret = -EPERM;
        assert_int_equal(store_kv_update(s, "counter", "hits", 4, ret_fn, &ret), -EPERM);
        len = sizeof v;
        assert_int_equal(store_kv_get(s, "counter", "hits", 4, &v, &len), 0);
        assert_int_equal(v, 4000);
        ret = 2;
        assert_int_equal(store_kv_update(s, "counter", "hits", 4, ret_fn, &ret), 0);
        assert_int_equal(store_kv_get(s, "counter", "hits", 4, &v, &len), -ENOENT);
        assert_int_equal(store_kv_update(s, "counter", "hits", 4, ret_fn, &ret), 0);

        /* Bad keys. */
        char big[LATCH_KV_KEY_MAX + 1] = {};
        assert_int_equal(store_kv_update(s, "counter", big, sizeof big, incr_fn, NULL), -EINVAL);
        assert_int_equal(store_kv_update(s, "counter", "", 0, incr_fn, NULL), -EINVAL);
        assert_int_equal(store_kv_update(s, "", "k", 1, incr_fn, NULL), -EINVAL);
        assert_int_equal(store_kv_update(s, "counter", big, LATCH_KV_KEY_MAX, incr_fn, NULL), 0);

        store_close(s);
        remove_dir(dir);
}

/* ---- 7b. kv batches: deferred, carried by the session's commit ---- */

/* Raises a u64 to *(uint64_t *) userdata when it is below; refuses (0)
 * otherwise, as the totp plugin records an accepted time step. */
static int raise_fn(void *userdata, const void *old, size_t oldlen, void *newbuf, size_t *newlen) {
        uint64_t want = *(uint64_t *) userdata, v = 0;

        if (old) {
                if (oldlen != sizeof v)
                        return -EBADMSG;
                memcpy(&v, old, sizeof v);
        }
        if (v >= want)
                return 0;
        memcpy(newbuf, &want, sizeof want);
        *newlen = sizeof want;
        return 1;
}

static uint64_t kv_value(store *s, const char *key) {
        uint64_t v = 0;
        size_t len = sizeof v;
        int r = store_kv_get(s, "totp", key, strlen(key), &v, &len);

        if (r == -ENOENT)
                return 0;
        assert_int_equal(r, 0);
        assert_int_equal(len, sizeof v);
        return v;
}

/* A process that records step 7 for "bob" in the way `how` names, then
 * ends without closing the store (as by kill -9: what it wrote through
 * LMDB is in the file, nothing it kept in memory is). */
_Noreturn static void batch_child(const char *dir, char how) {
        struct store_kv_batch b = {};
        struct session_info info;
        uint8_t key[STORE_KEY_SIZE];
        uint64_t step = 7;
        store *s = NULL;

        if (store_open(dir, &s) < 0)
                _exit(2);
        if (how != 'i')
                store_kv_batch_begin(s, &b);
        if (store_kv_update(s, "totp", "bob", 3, raise_fn, &step) != 0)
                _exit(3);
        if (kv_value(s, "bob") != 7)
                _exit(4);
        switch (how) {
        case 's': /* a login: the session's commit carries it */
                make_key(key, 1);
                make_info(&info, 1, "bob", "wiki", NULL, 1000, 1000000000, 1000000000);
                if (store_session_create(s, key, &info) != 0)
                        _exit(5);
                break;
        case 'e': /* an authentication: the batch's end writes it */
                if (store_kv_batch_end(&b) != 0)
                        _exit(6);
                break;
        }
        _exit(0);
}

static uint64_t batch_round(char how) {
        char *dir = make_dir();
        int status;
        pid_t pid;
        store *s;
        uint64_t v;

        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                batch_child(dir, how);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        s = open_store(dir, 0, false);
        v = kv_value(s, "bob");
        store_close(s);
        remove_dir(dir);
        return v;
}

struct race {
        store *s;
        pthread_barrier_t *go;
        char key[16];
        bool won;
        uint64_t seen; /* the value read inside the batch, after the update */
};

static void *race_thread(void *p) {
        struct race *r = p;
        struct store_kv_batch b = {};
        uint64_t step = 5;

        pthread_barrier_wait(r->go);
        store_kv_batch_begin(r->s, &b);
        /* Recorded with no commit yet: the other threads must see it. */
        assert_int_equal(store_kv_update(r->s, "totp", r->key, strlen(r->key), raise_fn, &step), 0);
        r->won = b.seq != 0;
        r->seen = kv_value(r->s, r->key);
        assert_int_equal(store_kv_batch_end(&b), 0);
        return NULL;
}

static void test_kv_batch(void **state) {
        enum { THREADS = 6, ROUNDS = 100 };
        pthread_barrier_t go;
        pthread_t t[THREADS];
        struct race r[THREADS];

        /* What a process leaves in the file when it dies right after each
         * way of recording: deferred and never carried, nothing; carried by
         * the session's commit, by the batch's end, or written at once
         * (no batch), the value. */
        assert_int_equal(batch_round('n'), 0);
        assert_int_equal(batch_round('s'), 7);
        assert_int_equal(batch_round('e'), 7);
        assert_int_equal(batch_round('i'), 7);

        /* Concurrent batches raising one key to the same step: exactly one
         * wins; every one reads the step afterwards, before any commit of
         * its own; the file holds it once all ended. */
        char *dir = make_dir();
        store *s = open_store(dir, 0, false);
        assert_int_equal(pthread_barrier_init(&go, NULL, THREADS), 0);
        for (unsigned round = 0; round < ROUNDS; round++) {
                size_t winners = 0;

                for (size_t i = 0; i < THREADS; i++) {
                        r[i] = (struct race) { .s = s, .go = &go };
                        snprintf(r[i].key, sizeof r[i].key, "user%u", round);
                        assert_int_equal(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
                }
                for (size_t i = 0; i < THREADS; i++) {
                        assert_int_equal(pthread_join(t[i], NULL), 0);
                        winners += r[i].won;
                        assert_int_equal(r[i].seen, 5);
                }
                assert_int_equal(winners, 1);
        }
        assert_int_equal(pthread_barrier_destroy(&go), 0);
        store_close(s);

        s = open_store(dir, 0, false);
        for (unsigned round = 0; round < ROUNDS; round++) {
                char key[16];
                snprintf(key, sizeof key, "user%u", round);
                assert_int_equal(kv_value(s, key), 5);
        }
        store_close(s);
        remove_dir(dir);
}

/* ---- 8. bytes per session, get() cost ---- */

static double now_sec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Pages per database, read with LMDB directly (read-only, alongside). */
static void print_db_pages(const char *dir, size_t n) {
        static const char *const names[] = { "sessions", "handles", "users", "expiry" };
        MDB_env *env;
        MDB_txn *txn;
        char *path;

        assert_true(asprintf(&path, "%s/sessions.mdb", dir) > 0);
        assert_int_equal(mdb_env_create(&env), 0);
        assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
        assert_int_equal(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_RDONLY, 0600), 0);
        assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                MDB_dbi dbi;
                MDB_stat st;

                assert_int_equal(mdb_dbi_open(txn, names[i], 0, &dbi), 0);
                assert_int_equal(mdb_stat(txn, dbi, &st), 0);
                size_t pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
                print_message("size:   %-8s %6zu pages, %5.1f bytes per session, depth %u\n", names[i], pages,
                              (double) pages * st.ms_psize / n, st.ms_depth);
        }
        mdb_txn_abort(txn);
        mdb_env_close(env);
        free(path);
}

static void test_size(void **state) {
        char *dir = make_dir();
        store *s = open_store(dir, 0, true);
        const size_t n = 100000;
        struct store_stats before, after;
        uint64_t rs = seed;
        char user[16];

        assert_int_equal(store_get_stats(s, &before), 0);
        for (size_t i = 0; i < n; i++) {
                struct session_info info;
                uint8_t key[STORE_KEY_SIZE];
                int64_t t = 1700000000 + (int64_t) i / 10;

                /* ~2 sessions per user, "u" + 7 digits. */
                snprintf(user, sizeof user, "u%07zu", rnd_below(&rs, n / 2));
                make_key(key, i);
                make_info(&info, i, user, "webapp", "{\"groups\":[\"users\"]}", t, t + 8 * 3600, 1800);
                assert_int_equal(store_session_create(s, key, &info), 0);
        }
        assert_int_equal(store_get_stats(s, &after), 0);
        assert_int_equal(after.sessions, n);
        double per = (double) (after.used_bytes - before.used_bytes) / n;
        print_message("size: %zu sessions use %" PRIu64 " bytes of LMDB pages: %.0f bytes per session "
                      "(including indexes)\n", n, after.used_bytes - before.used_bytes, per);
        /* Generous sanity bound only; the figure is reported. */
        assert_true(per > 100 && per < 2048);

        print_db_pages(dir, n);

        /* A rough cost of get() on a warm map, single thread. */
        const size_t gets = 200000;
        double t0 = now_sec();
        for (size_t i = 0; i < gets; i++) {
                uint8_t key[STORE_KEY_SIZE];

                make_key(key, rnd_below(&rs, n));
                assert_int_equal(store_session_get(s, key, 1700000000, noop_fn, NULL), 0);
        }
        double t1 = now_sec();
        for (size_t i = 0; i < gets; i++) {
                uint8_t key[STORE_KEY_SIZE];

                make_key(key, rnd_below(&rs, n));
        }
        double t2 = now_sec();
        print_message("get: %.2f us per call (key hashing excluded)\n",
                      ((t1 - t0) - (t2 - t1)) * 1e6 / gets);

        store_close(s);
        remove_dir(dir);
}

/* ---- 10. slides ---- */

static void test_slides(void **state) {
        /* More than any one flush transaction takes (and than the 8,192 the
         * daemon once capped a batch at). */
        const size_t n = 20000;
        char *dir = make_dir();
        store *s = open_store(dir, 0, true);
        uint8_t (*keys)[STORE_KEY_SIZE] = calloc(n, STORE_KEY_SIZE);
        struct got g = {};
        size_t removed, written;

        assert_non_null(keys);
        for (size_t i = 0; i < n; i++) {
                struct session_info info;

                make_key(keys[i], 11000000 + i);
                /* Created at 1000, idle 100 s: stored idle expiry 1100. */
                make_info(&info, 11000000 + i, "carol", "wiki", NULL, 1000, 1000000, 100);
                assert_int_equal(store_session_create(s, keys[i], &info), 0);
        }

        /* Slides at 1050; for half of them a later one too, and an older
         * one after it, which must not win. */
        for (size_t i = 0; i < n; i++)
                assert_int_equal(store_session_slide(s, keys[i], 1050), 0);
        for (size_t i = 0; i < n; i += 2) {
                assert_int_equal(store_session_slide(s, keys[i], 1070), 0);
                assert_int_equal(store_session_slide(s, keys[i], 1060), 0);
        }
        assert_int_equal(store_session_slides_pending(s), n);

        /* Not written yet, yet they count: reads see them, past the stored
         * idle expiry the sessions are alive, and a sweep keeps them. */
        assert_int_equal(store_session_get(s, keys[0], 1120, got_fn, &g), 0);
        assert_int_equal(g.last_seen_at, 1070);
        assert_int_equal(store_session_get(s, keys[1], 1120, got_fn, &g), 0);
        assert_int_equal(g.last_seen_at, 1050);
        assert_int_equal(list_count(s, "carol", NULL, 1120), n);
        assert_int_equal(list_count(s, NULL, NULL, 1120), n);
        assert_int_equal(store_sweep(s, 1120, 100000, &removed), 0);
        assert_int_equal(removed, 0);
        assert_int_equal(store_check_consistency(s), 0);

        /* One session goes before the flush: its slide has nothing to do. */
        assert_int_equal(store_session_delete(s, keys[3]), 0);

        assert_int_equal(store_session_flush_slides(s, &written), 0);
        assert_int_equal(written, n);
        assert_int_equal(store_session_slides_pending(s), 0);
        assert_int_equal(store_check_consistency(s), 0);

        /* Written: they hold across a reopen, and the sweep now removes
         * exactly the sessions whose slid expiry passed. */
        store_close(s);
        s = open_store(dir, 0, true);
        assert_int_equal(store_session_get(s, keys[0], 1165, got_fn, &g), 0);
        assert_int_equal(g.last_seen_at, 1070);
        assert_int_equal(store_session_get(s, keys[3], 1120, noop_fn, NULL), -ENOENT);
        assert_int_equal(list_count(s, NULL, NULL, 1160), n / 2);
        assert_int_equal(store_sweep(s, 1160, 100000, &removed), 0);
        assert_int_equal(removed, n / 2 - 1);
        assert_int_equal(store_check_consistency(s), 0);

        /* Slides left at close are written by store_close(). */
        assert_int_equal(store_session_slide(s, keys[0], 1160), 0);
        store_close(s);
        s = open_store(dir, 0, true);
        assert_int_equal(store_session_get(s, keys[0], 1250, got_fn, &g), 0);
        assert_int_equal(g.last_seen_at, 1160);

        store_close(s);
        free(keys);
        remove_dir(dir);
}

/* A login's mark, taken before its credentials were checked: a revocation
 * of its user after it (a password change) leaves no room for its session;
 * one of another user, or one before the mark, does. */
static void test_revoked_since(void **state) {
        char *dir = make_dir();
        store *s = open_store(dir, 0, true);
        struct session_info info;
        uint8_t key[STORE_KEY_SIZE];
        struct got g = {};
        uint64_t mark, mine;
        size_t n;

        mark = store_revocation_mark(s);
        assert_int_equal(store_session_revoke_user(s, "bob", &n), 0); /* none to revoke: still counts */
        make_key(key, 1);
        make_info(&info, 1, "alice", "svc", NULL, 1000, 9000, 500);
        assert_int_equal(store_session_create_since(s, key, &info, mark, 0), 0);
        make_key(key, 2);
        make_info(&info, 2, "bob", "svc", NULL, 1000, 9000, 500);
        assert_int_equal(store_session_create_since(s, key, &info, mark, 0), -ESTALE);
        assert_int_equal(store_session_get(s, key, 1000, got_fn, &g), -ENOENT); /* nothing written */
        assert_int_equal(store_session_create_since(s, key, &info, store_revocation_mark(s), 0), 0);
        assert_int_equal(store_session_get(s, key, 1000, got_fn, &g), 0);

        /* A login that changed an expired password revoked the user itself:
         * that one does not count, another user's neither, but any other
         * of the same user's, before or after its own, does. */
        mark = store_revocation_mark(s);
        assert_int_equal(store_session_revoke_user_except(s, "bob", NULL, &n, &mine), 0);
        assert_int_equal(n, 1);
        assert_int_equal(mine, store_revocation_mark(s));
        assert_int_equal(store_session_revoke_user(s, "carol", &n), 0);
        make_key(key, 4);
        make_info(&info, 4, "bob", "svc", NULL, 1000, 9000, 500);
        assert_int_equal(store_session_create_since(s, key, &info, mark, mine), 0);
        assert_int_equal(store_session_revoke_user(s, "bob", &n), 0);
        make_key(key, 5);
        make_info(&info, 5, "bob", "svc", NULL, 1000, 9000, 500);
        assert_int_equal(store_session_create_since(s, key, &info, mark, mine), -ESTALE);
        mark = store_revocation_mark(s);
        assert_int_equal(store_session_revoke_user(s, "bob", &n), 0);      /* an admin's, first */
        assert_int_equal(store_session_revoke_user_except(s, "bob", NULL, &n, &mine), 0);
        assert_int_equal(store_session_create_since(s, key, &info, mark, mine), -ESTALE);
        assert_int_equal(store_session_revoke_user_except(s, "", NULL, &n, &mine), 0);
        assert_int_equal(mine, 0); /* no user: no revocation */

        /* More revocations than are remembered: refused, to be safe. */
        mark = store_revocation_mark(s);
        for (unsigned i = 0; i < 1024; i++)
                assert_int_equal(store_session_revoke_user(s, "carol", NULL), 0);
        assert_int_equal(store_session_create_since(s, key, &info, mark, 0), 0);
        assert_int_equal(store_session_revoke_user(s, "carol", NULL), 0);
        make_key(key, 6);
        make_info(&info, 6, "bob", "svc", NULL, 1000, 9000, 500);
        assert_int_equal(store_session_create_since(s, key, &info, mark, 0), -ESTALE);
        assert_int_equal(store_session_create_since(s, key, &info, STORE_NO_MARK, 0), 0);
        assert_int_equal(store_check_consistency(s), 0);

        store_close(s);
        remove_dir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crud),
                cmocka_unit_test(test_revoked_since),
                cmocka_unit_test(test_random_consistency),
                cmocka_unit_test(test_crash),
                cmocka_unit_test(test_sweep),
                cmocka_unit_test(test_map_growth),
                cmocka_unit_test(test_kv),
                cmocka_unit_test(test_kv_batch),
                cmocka_unit_test(test_size),
                cmocka_unit_test(test_slides),
        };

        return store_test_main(tests, ELEMENTSOF(tests), "store");
}
