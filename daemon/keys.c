/* SPDX-License-Identifier: MIT */

/*
 * The signing keyring. See keys.h for the contract and the threading rule.
 *
 * A key file, KID.key, is 64 bytes:
 *
 *   0  8  tag "LATCHKY" and format version 1
 *   8  8  created at (big-endian Unix seconds)
 *  16  8  retired until (0: never retired)
 *  24  8  "predecessors retired until": when this key became current, every
 *         older key was to be published until then
 *  32 32  Ed25519 seed
 *
 * Rotation writes the new key first (durably) and only then rewrites the old
 * ones as retired. The new key's third field makes the first write alone
 * enough: after a crash between the two, loading finds two unretired keys,
 * signs with the newest and gives the older ones the retirement time the
 * newest recorded. The kid is not stored, it is derived from the seed and
 * must match the file name, so a renamed or damaged file is noticed.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs-util.h"
#include "jwt.h"
#include "keys.h"
#include "macro.h"

#define KEY_FILE_SIZE 64
#define KEY_SUFFIX ".key"
#define TMP_SUFFIX ".tmp"
static const uint8_t key_tag[8] = { 'L', 'A', 'T', 'C', 'H', 'K', 'Y', 1 };

struct key {
        char kid[JWT_KID_LEN + 1];
        uint8_t pk[crypto_sign_PUBLICKEYBYTES];
        uint8_t *sk;                    /* sodium_malloc(), read-only */
        int64_t created_at;
        int64_t retire_at;              /* 0: not retired (yet) */
        int64_t predecessors_retire_at;
        bool active_on_disk;            /* its file still says "not retired" */
};

struct keyring {
        int dfd;                        /* state_dir/keys */
        struct key *keys;               /* keys[0] is current; the rest newest first */
        size_t n_keys;
        size_t n_allocated;
        struct jwt_keyset *keyset;      /* every key in keys[] */
};

static void key_done(struct key *key) {
        sodium_free(key->sk); /* wipes; accepts NULL */
        key->sk = NULL;
}

static void put_be64(uint8_t *p, int64_t v) {
        uint64_t u = (uint64_t) v;
        for (int i = 7; i >= 0; i--, u >>= 8)
                p[i] = (uint8_t) u;
}

static int64_t get_be64(const uint8_t *p) {
        uint64_t u = 0;
        for (int i = 0; i < 8; i++)
                u = (u << 8) | p[i];
        return (int64_t) u;
}

static int64_t add_sat(int64_t a, int64_t b) {
        int64_t r;
        if (__builtin_add_overflow(a, b, &r))
                return b > 0 ? INT64_MAX : INT64_MIN;
        return r;
}

static int write_all(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Writes buf as dfd/name through dfd/tmp: fsync, rename, fsync of the
 * folder. On failure the temporary file is removed and name is untouched. */
static int write_file_atomic(int dfd, const char *tmp, const char *name, const void *buf, size_t len, mode_t mode) {
        _cleanup_close_ int fd = -1;
        int r;

        /* A leftover of a crash would make O_EXCL fail. */
        if (unlinkat(dfd, tmp, 0) < 0 && errno != ENOENT)
                return negative_errno();

        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, mode);
        if (fd < 0)
                return negative_errno();

        /* The umask must not decide who may read a key or the JWKS. */
        if (fchmod(fd, mode) < 0)
                r = negative_errno();
        else
                r = write_all(fd, buf, len);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r == 0) {
                r = close(TAKE_FD(fd)) < 0 ? negative_errno() : 0;
        }
        if (r == 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = negative_errno();
        if (r < 0) {
                (void) unlinkat(dfd, tmp, 0);
                return r;
        }

        if (fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

static int key_write(int dfd, const struct key *key) {
        char name[JWT_KID_LEN + sizeof(KEY_SUFFIX)], tmp[1 + JWT_KID_LEN + sizeof(TMP_SUFFIX)];
        uint8_t buf[KEY_FILE_SIZE];
        int r;

        memcpy(buf, key_tag, sizeof(key_tag));
        put_be64(buf + 8, key->created_at);
        put_be64(buf + 16, key->retire_at);
        put_be64(buf + 24, key->predecessors_retire_at);
        crypto_sign_ed25519_sk_to_seed(buf + 32, key->sk);

        snprintf(name, sizeof(name), "%s" KEY_SUFFIX, key->kid);
        snprintf(tmp, sizeof(tmp), ".%s" TMP_SUFFIX, key->kid);
        r = write_file_atomic(dfd, tmp, name, buf, sizeof(buf), 0600);

        sodium_memzero(buf, sizeof(buf));
        return r;
}

/* Fills key->pk, key->sk (read-only afterwards) and key->kid from a seed. */
static int key_from_seed(struct key *key, const uint8_t seed[crypto_sign_SEEDBYTES]) {
        key->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
        if (!key->sk)
                return -ENOMEM;
        if (crypto_sign_seed_keypair(key->pk, key->sk, seed) != 0 ||
            sodium_mprotect_readonly(key->sk) != 0) {
                key_done(key);
                return -EIO;
        }
        jwt_thumbprint(key->pk, key->kid);
        return 0;
}

static int key_generate(struct key *key, int64_t now, int64_t predecessors_retire_at) {
        uint8_t seed[crypto_sign_SEEDBYTES];
        int r;

        *key = (struct key) {
                .created_at = now,
                .predecessors_retire_at = predecessors_retire_at,
                .active_on_disk = true,
        };
        randombytes_buf(seed, sizeof(seed));
        r = key_from_seed(key, seed);
        sodium_memzero(seed, sizeof(seed));
        return r;
}

static bool is_key_name(const char *name) {
        size_t n = strlen(name);

        if (n != JWT_KID_LEN + strlen(KEY_SUFFIX) || !streq(name + JWT_KID_LEN, KEY_SUFFIX))
                return false;
        for (size_t i = 0; i < JWT_KID_LEN; i++) {
                char c = name[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_'))
                        return false;
        }
        return true;
}

static bool is_tmp_name(const char *name) {
        size_t n = strlen(name);
        return name[0] == '.' && n > strlen(TMP_SUFFIX) && streq(name + n - strlen(TMP_SUFFIX), TMP_SUFFIX);
}

/* Group or others may not even look: the folder and the files hold secrets. */
static int check_private(const struct stat *st) {
        if (st->st_uid != geteuid() || (st->st_mode & 077) != 0)
                return -EPERM;
        return 0;
}

static int key_read(int dfd, const char *name, struct key *ret) {
        _cleanup_close_ int fd = -1;
        uint8_t buf[KEY_FILE_SIZE];
        struct key key = {};
        struct stat st;
        ssize_t n;
        int r;

        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        r = fstat_regular(fd, &st);
        if (r < 0)
                return r;
        r = check_private(&st);
        if (r < 0)
                return r;
        if (st.st_size != KEY_FILE_SIZE)
                return -EINVAL;

        do
                n = pread(fd, buf, sizeof(buf), 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();

        if (n != KEY_FILE_SIZE || memcmp(buf, key_tag, sizeof(key_tag)) != 0) {
                r = -EINVAL;
                goto finish;
        }
        key.created_at = get_be64(buf + 8);
        key.retire_at = get_be64(buf + 16);
        key.predecessors_retire_at = get_be64(buf + 24);
        key.active_on_disk = key.retire_at == 0;
        if (key.retire_at < 0 || key.predecessors_retire_at < 0) {
                r = -EINVAL;
                goto finish;
        }

        r = key_from_seed(&key, buf + 32);
        if (r < 0)
                goto finish;

        /* The name is the thumbprint of what the file holds. */
        if (strncmp(name, key.kid, JWT_KID_LEN) != 0) {
                key_done(&key);
                r = -EINVAL;
                goto finish;
        }

        *ret = key;
finish:
        sodium_memzero(buf, sizeof(buf));
        return r;
}

void keyring_free(struct keyring *k) {
        if (!k)
                return;
        for (size_t i = 0; i < k->n_keys; i++)
                key_done(&k->keys[i]);
        free(k->keys);
        jwt_keyset_free(k->keyset);
        safe_close(k->dfd);
        free(k);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct keyring *, keyring_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct jwt_keyset *, jwt_keyset_free);

static int keyring_reserve(struct keyring *k, size_t n) {
        struct key *keys;
        size_t m;

        if (k->n_allocated >= n)
                return 0;
        m = MAX(n, k->n_allocated * 2);
        keys = reallocarray(k->keys, m, sizeof(struct key));
        if (!keys)
                return -ENOMEM;
        k->keys = keys;
        k->n_allocated = m;
        return 0;
}

/* The keyring speaks negative errno, as the rest of latchd does: jwt.c's
 * failures other than a refused token map here, where they enter. */
static int errno_from_jwt(int e) {
        switch (e) {
        case JWT_ERR_NOMEM:
                return -ENOMEM;
        case JWT_ERR_TOO_LARGE:
                return -EMSGSIZE;
        case JWT_ERR_DUPLICATE_KID:
                return -EEXIST;
        default:
                return -EINVAL;
        }
}

/* A key set of keys[skip..] plus `extra` (if not NULL); skip drops nothing
 * when it is SIZE_MAX. */
static int keyset_build(const struct keyring *k, const struct key *extra, size_t skip, struct jwt_keyset **ret) {
        _cleanup_(jwt_keyset_freep) struct jwt_keyset *ks = NULL;
        int r;

        ks = jwt_keyset_new();
        if (!ks)
                return -ENOMEM;
        if (extra) {
                r = jwt_keyset_add(ks, extra->pk, extra->kid);
                if (r != JWT_OK)
                        return errno_from_jwt(r);
        }
        for (size_t i = 0; i < k->n_keys; i++) {
                if (i == skip)
                        continue;
                r = jwt_keyset_add(ks, k->keys[i].pk, k->keys[i].kid);
                if (r != JWT_OK)
                        return errno_from_jwt(r);
        }
        *ret = TAKE_PTR(ks);
        return 0;
}

/* Newest first; equal times fall back on the kid, for a stable choice. */
static int key_compare(const void *a, const void *b) {
        const struct key *x = a, *y = b;

        if (x->created_at != y->created_at)
                return x->created_at > y->created_at ? -1 : 1;
        return -strcmp(x->kid, y->kid);
}

static int keyring_load(struct keyring *k, int64_t now) {
        DIR *d;
        struct dirent *de;
        size_t current = SIZE_MAX;
        int fd, r = 0;

        fd = fcntl(k->dfd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        d = fdopendir(fd);
        if (!d) {
                r = negative_errno();
                safe_close(fd);
                return r;
        }

        for (;;) {
                errno = 0;
                de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                r = negative_errno();
                        break;
                }
                if (is_tmp_name(de->d_name)) {
                        /* Left behind by a crash mid-write; the real file is intact. */
                        (void) unlinkat(k->dfd, de->d_name, 0);
                        continue;
                }
                if (!is_key_name(de->d_name))
                        continue;

                r = keyring_reserve(k, k->n_keys + 1);
                if (r < 0)
                        break;
                r = key_read(k->dfd, de->d_name, &k->keys[k->n_keys]);
                if (r < 0)
                        break;
                k->n_keys++;
        }
        closedir(d);
        if (r < 0)
                return r;

        if (k->n_keys > 1)
                qsort(k->keys, k->n_keys, sizeof(struct key), key_compare);
        for (size_t i = 0; i < k->n_keys; i++)
                if (k->keys[i].retire_at == 0) {
                        current = i;
                        break;
                }

        if (current == SIZE_MAX) {
                /* First start, or every key retired: make one. */
                struct key key;

                r = keyring_reserve(k, k->n_keys + 1);
                if (r < 0)
                        return r;
                r = key_generate(&key, now, 0);
                if (r < 0)
                        return r;
                r = key_write(k->dfd, &key);
                if (r < 0) {
                        key_done(&key);
                        return r;
                }
                memmove(k->keys + 1, k->keys, k->n_keys * sizeof(struct key));
                k->keys[0] = key;
                k->n_keys++;
        } else if (current != 0) {
                struct key key = k->keys[current];
                memmove(k->keys + 1, k->keys, current * sizeof(struct key));
                k->keys[0] = key;
        }

        /* Older keys left unretired by a rotation cut short: finish it in
         * memory (their files are rewritten at the next rotation). Without a
         * recorded time they stay published until then. */
        for (size_t i = 1; i < k->n_keys; i++)
                if (k->keys[i].retire_at == 0)
                        k->keys[i].retire_at = k->keys[0].predecessors_retire_at;

        return keyset_build(k, NULL, SIZE_MAX, &k->keyset);
}

int keyring_open(const char *state_dir, int64_t now, struct keyring **ret) {
        _cleanup_(keyring_freep) struct keyring *k = NULL;
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int r;

        assert_return(state_dir, -EINVAL);
        assert_return(ret, -EINVAL);

        if (sodium_init() < 0)
                return -EIO;

        if (asprintf(&path, "%s/keys", state_dir) < 0) {
                path = NULL;
                return -ENOMEM;
        }
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return negative_errno();

        k = calloc(1, sizeof(struct keyring));
        if (!k)
                return -ENOMEM;
        k->dfd = -1;
        k->dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (k->dfd < 0)
                return negative_errno();
        if (fstat(k->dfd, &st) < 0)
                return negative_errno();
        r = check_private(&st);
        if (r < 0)
                return r;

        r = keyring_load(k, now);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(k);
        return 0;
}

const char *keyring_current_kid(const struct keyring *k) {
        assert_return(k, NULL);
        return k->keys[0].kid;
}

int64_t keyring_current_created_at(const struct keyring *k) {
        assert_return(k, 0);
        return k->keys[0].created_at;
}

int keyring_sign(const struct keyring *k, const char *alg, const json_t *claims, char **ret_token) {
        assert_return(k, -EINVAL);
        int r = jwt_sign(k->keys[0].sk, k->keys[0].kid, alg, claims, ret_token);
        return r == JWT_OK ? 0 : errno_from_jwt(r);
}

int keyring_sign_payload(const struct keyring *k, const char *alg, const char *payload, size_t payload_len,
                         char **ret_token) {
        assert_return(k, -EINVAL);
        int r = jwt_sign_payload(k->keys[0].sk, k->keys[0].kid, alg, payload, payload_len, ret_token);
        return r == JWT_OK ? 0 : errno_from_jwt(r);
}

int keyring_verify(const struct keyring *k, const char *token, size_t len,
                   const struct jwt_verify_options *opts, json_t **ret_claims) {
        assert_return(k, JWT_ERR_KEYSET);
        return jwt_verify(k->keyset, token, len, opts, ret_claims);
}

int keyring_rotate(struct keyring *k, int64_t now, int64_t retire_after, char ret_kid[JWT_KID_LEN + 1]) {
        _cleanup_(jwt_keyset_freep) struct jwt_keyset *ks = NULL;
        struct key key;
        int64_t until;
        int r;

        assert_return(k, -EINVAL);
        assert_return(retire_after >= 0, -EINVAL);
        assert_return(ret_kid, -EINVAL);

        until = add_sat(now, retire_after);

        /* Everything that can fail without touching the disk comes first. */
        r = keyring_reserve(k, k->n_keys + 1);
        if (r < 0)
                return r;
        r = key_generate(&key, now, until);
        if (r < 0)
                return r;
        r = keyset_build(k, &key, SIZE_MAX, &ks);
        if (r < 0)
                goto fail;

        /* From here on, the rotation is decided by this one file. */
        r = key_write(k->dfd, &key);
        if (r < 0)
                goto fail;

        memmove(k->keys + 1, k->keys, k->n_keys * sizeof(struct key));
        k->keys[0] = key;
        k->n_keys++;
        jwt_keyset_free(k->keyset);
        k->keyset = TAKE_PTR(ks);

        for (size_t i = 1; i < k->n_keys; i++) {
                struct key *old = &k->keys[i];

                if (old->retire_at == 0)
                        old->retire_at = until;
                /* Best effort: should this fail, loading still retires the key
                 * from the new key's record, only perhaps later than it could. */
                if (old->active_on_disk && key_write(k->dfd, old) >= 0)
                        old->active_on_disk = false;
        }

        memcpy(ret_kid, key.kid, JWT_KID_LEN + 1);
        return 0;

fail:
        key_done(&key);
        return r;
}

int keyring_prune(struct keyring *k, int64_t now) {
        size_t i = 1, dropped = 0;
        int r = 0;

        assert_return(k, -EINVAL);

        while (i < k->n_keys) {
                struct key *key = &k->keys[i];
                char name[JWT_KID_LEN + sizeof(KEY_SUFFIX)];

                if (key->retire_at == 0 || key->retire_at > now) {
                        i++;
                        continue;
                }

                snprintf(name, sizeof(name), "%s" KEY_SUFFIX, key->kid);
                if (unlinkat(k->dfd, name, 0) < 0 && errno != ENOENT) {
                        r = negative_errno();
                        break;
                }
                key_done(key);
                memmove(key, key + 1, (k->n_keys - i - 1) * sizeof(struct key));
                k->n_keys--;
                dropped++;
        }

        if (dropped > 0) {
                struct jwt_keyset *ks = NULL;

                if (fsync(k->dfd) < 0 && r == 0)
                        r = negative_errno();
                /* The key set must stop accepting what is gone from disk. */
                int q = keyset_build(k, NULL, SIZE_MAX, &ks);
                if (q < 0)
                        return q;
                jwt_keyset_free(k->keyset);
                k->keyset = ks;
        }

        if (r < 0)
                return r;
        return (int) MIN(dropped, (size_t) INT_MAX);
}

json_t *keyring_jwks(const struct keyring *k, const char *alg) {
        json_t *keys, *jwks;

        assert_return(k, NULL);
        assert_return(alg && (streq(alg, "EdDSA") || streq(alg, "Ed25519")), NULL);

        keys = json_array();
        if (!keys)
                return NULL;
        for (size_t i = 0; i < k->n_keys; i++) {
                char x[sodium_base64_ENCODED_LEN(crypto_sign_PUBLICKEYBYTES,
                                                 sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
                json_t *jwk;

                if (b64url_encode(k->keys[i].pk, sizeof(k->keys[i].pk), x, sizeof(x)) != JWT_OK)
                        goto fail;
                jwk = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}",
                                "kty", "OKP", "crv", "Ed25519", "x", x,
                                "kid", k->keys[i].kid, "use", "sig", "alg", alg);
                if (!jwk || json_array_append_new(keys, jwk) < 0)
                        goto fail;
        }

        jwks = json_pack("{s:o}", "keys", keys);
        return jwks; /* json_pack() took keys, even on failure */

fail:
        json_decref(keys);
        return NULL;
}

int keyring_write_jwks(const struct keyring *k, const char *path, const char *alg) {
        _cleanup_free_ char *dir = NULL, *tmp = NULL, *text = NULL;
        _cleanup_close_ int dfd = -1;
        const char *base, *slash;
        json_t *jwks;
        int r;

        assert_return(k, -EINVAL);
        assert_return(path && *path, -EINVAL);

        jwks = keyring_jwks(k, alg);
        if (!jwks)
                return alg && (streq(alg, "EdDSA") || streq(alg, "Ed25519")) ? -ENOMEM : -EINVAL;
        text = json_dumps(jwks, JSON_INDENT(2));
        json_decref(jwks);
        if (!text)
                return -ENOMEM;

        slash = strrchr(path, '/');
        if (slash) {
                dir = slash == path ? strdup("/") : strndup(path, (size_t) (slash - path));
                base = slash + 1;
        } else {
                dir = strdup(".");
                base = path;
        }
        if (!dir)
                return -ENOMEM;
        if (!*base)
                return -EINVAL;
        /* One writer at a time (see keys.h), so a fixed name is enough. */
        if (asprintf(&tmp, ".%s" TMP_SUFFIX, base) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();

        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the NUL; the length is explicit below */
        r = write_file_atomic(dfd, tmp, base, text, len + 1, 0644);
        text[len] = '\0';
        return r;
}
