/* SPDX-License-Identifier: MIT */

/*
 * Tests of daemon/keys.c, the signing keyring, in a fresh state folder each:
 * creation and permissions, reloading, refusal of exposed or corrupt key
 * files, rotation with retirement across a restart, pruning, a rotation cut
 * short by a crash, and the JWKS (in memory and written to a file).
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "jwt.h"
#include "keys.h"
#include "macro.h"

#define T0 1700000000

struct fixture {
        char dir[64];
        char keys[128];
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));

        if (!f)
                return -1;
        strcpy(f->dir, "/tmp/latch-test-keys-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        snprintf(f->keys, sizeof(f->keys), "%s/keys", f->dir);
        *state = f;
        return 0;
}

static void rm_rf(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;

        if (d) {
                while ((de = readdir(d))) {
                        char sub[512];
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
                        rm_rf(sub);
                }
                closedir(d);
                rmdir(path);
        } else
                unlink(path);
}

static int teardown(void **state) {
        struct fixture *f = *state;

        rm_rf(f->dir);
        free(f);
        return 0;
}

/* Names of the regular entries of a folder, "a,b,c" in sorted order. */
static char *list_dir(const char *path) {
        struct dirent **names;
        char *s = calloc(1, 4096);
        int n;

        assert_non_null(s);
        n = scandir(path, &names, NULL, alphasort);
        assert_true(n >= 0);
        for (int i = 0; i < n; i++) {
                if (names[i]->d_name[0] != '.' || !(streq(names[i]->d_name, ".") || streq(names[i]->d_name, ".."))) {
                        if (*s)
                                strcat(s, ",");
                        strcat(s, names[i]->d_name);
                }
                free(names[i]);
        }
        free(names);
        return s;
}

static char *key_path(const struct fixture *f, const char *kid) {
        char *p;
        assert_true(asprintf(&p, "%s/%s.key", f->keys, kid) >= 0);
        return p;
}

static char *sign(struct keyring *k, int64_t exp) {
        json_t *claims = json_pack("{s:s,s:s,s:I}", "iss", "latch", "sub", "alice", "exp", (json_int_t) exp);
        char *token = NULL;

        assert_non_null(claims);
        assert_int_equal(keyring_sign(k, "EdDSA", claims, &token), 0);
        json_decref(claims);
        return token;
}

static int verify(struct keyring *k, const char *token, int64_t now) {
        struct jwt_verify_options opts = { .now = now, .leeway = 0, .issuer = "latch" };
        return keyring_verify(k, token, strlen(token), &opts, NULL);
}

/* The kid in a token's header. */
static char *token_kid(const char *token) {
        uint8_t buf[512];
        size_t n;
        json_t *h;
        char *kid;

        assert_int_equal(b64url_decode(token, (size_t) (strchr(token, '.') - token), buf, sizeof(buf), &n), 0);
        h = json_loadb((char *) buf, n, 0, NULL);
        assert_non_null(h);
        kid = strdup(json_string_value(json_object_get(h, "kid")));
        json_decref(h);
        return kid;
}

static void test_open_creates(void **state) {
        struct fixture *f = *state;
        struct keyring *k = NULL;
        _cleanup_free_ char *path = NULL, *listing = NULL, *token = NULL, *kid = NULL;
        char expected[128];
        struct stat st;

        assert_int_equal(keyring_open(f->dir, T0, &k), 0);
        assert_non_null(k);
        assert_int_equal(strlen(keyring_current_kid(k)), JWT_KID_LEN);
        assert_int_equal(keyring_current_created_at(k), T0);

        assert_int_equal(stat(f->keys, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);

        path = key_path(f, keyring_current_kid(k));
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, geteuid());

        /* Exactly one file, no temporary left behind. */
        listing = list_dir(f->keys);
        snprintf(expected, sizeof(expected), "%s.key", keyring_current_kid(k));
        assert_string_equal(listing, expected);

        /* It signs, with its kid, and verifies its own tokens. */
        token = sign(k, T0 + 300);
        kid = token_kid(token);
        assert_string_equal(kid, keyring_current_kid(k));
        assert_int_equal(verify(k, token, T0), JWT_OK);
        assert_int_equal(verify(k, token, T0 + 300), JWT_ERR_EXPIRED);

        keyring_free(k);
        keyring_free(NULL);
}

static void test_reopen(void **state) {
        struct fixture *f = *state;
        struct keyring *k = NULL;
        _cleanup_free_ char *token = NULL;
        char kid[JWT_KID_LEN + 1];

        assert_int_equal(keyring_open(f->dir, T0, &k), 0);
        strcpy(kid, keyring_current_kid(k));
        token = sign(k, T0 + 300);
        keyring_free(k);

        /* A restart later: same key, same creation time, old tokens verify. */
        k = NULL;
        assert_int_equal(keyring_open(f->dir, T0 + 1000, &k), 0);
        assert_string_equal(keyring_current_kid(k), kid);
        assert_int_equal(keyring_current_created_at(k), T0);
        assert_int_equal(verify(k, token, T0 + 10), JWT_OK);
        keyring_free(k);
}

static void test_refuses_exposed(void **state) {
        struct fixture *f = *state;
        struct keyring *k = NULL, *k2 = (struct keyring *) 0x1;
        _cleanup_free_ char *path = NULL;

        assert_int_equal(keyring_open(f->dir, T0, &k), 0);
        path = key_path(f, keyring_current_kid(k));
        keyring_free(k);

        /* A group-readable key file. */
        assert_int_equal(chmod(path, 0640), 0);
        assert_int_equal(keyring_open(f->dir, T0, &k2), -EPERM);
        assert_ptr_equal(k2, (struct keyring *) 0x1);
        /* An other-readable one. */
        assert_int_equal(chmod(path, 0604), 0);
        assert_int_equal(keyring_open(f->dir, T0, &k2), -EPERM);
        assert_int_equal(chmod(path, 0600), 0);

        /* A folder others may list. */
        assert_int_equal(chmod(f->keys, 0750), 0);
        assert_int_equal(keyring_open(f->dir, T0, &k2), -EPERM);
        assert_int_equal(chmod(f->keys, 0701), 0);
        assert_int_equal(keyring_open(f->dir, T0, &k2), -EPERM);
        assert_int_equal(chmod(f->keys, 0700), 0);

        /* A file owned by someone else (only root can arrange that). */
        if (geteuid() == 0) {
                assert_int_equal(chown(path, 65534, 65534), 0);
                assert_int_equal(keyring_open(f->dir, T0, &k2), -EPERM);
                assert_int_equal(chown(path, geteuid(), getegid()), 0);
        }

        assert_int_equal(keyring_open(f->dir, T0, &k2), 0);
        keyring_free(k2);
}

static void test_refuses_corrupt(void **state) {
        struct fixture *f = *state;
        struct keyring *k = NULL, *k2 = (struct keyring *) 0x1;
        _cleanup_free_ char *path = NULL, *renamed = NULL;
        uint8_t buf[128];
        ssize_t n;
        int fd;

        assert_int_equal(keyring_open(f->dir, T0, &k), 0);
        path = key_path(f, keyring_current_kid(k));
        keyring_free(k);

        fd = open(path, O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        n = read(fd, buf, sizeof(buf));
        assert_int_equal(n, 64);

        /* Truncated. */
        assert_int_equal(ftruncate(fd, 63), 0);
        assert_int_equal(keyring_open(f->dir, T0, &k2), -EINVAL);
        /* One byte of the seed changed: the kid no longer matches the name. */
        buf[40] ^= 1;
        assert_int_equal(pwrite(fd, buf, 64, 0), 64);
        assert_int_equal(keyring_open(f->dir, T0, &k2), -EINVAL);
        buf[40] ^= 1;
        /* A wrong format tag. */
        buf[7] = 2;
        assert_int_equal(pwrite(fd, buf, 64, 0), 64);
        assert_int_equal(keyring_open(f->dir, T0, &k2), -EINVAL);
        buf[7] = 1;
        assert_int_equal(pwrite(fd, buf, 64, 0), 64);
        close(fd);
        assert_ptr_equal(k2, (struct keyring *) 0x1);

        /* Intact again. */
        assert_int_equal(keyring_open(f->dir, T0, &k2), 0);
        keyring_free(k2);

        /* Renamed to another (well-formed) kid. */
        renamed = key_path(f, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
        assert_int_equal(rename(path, renamed), 0);
        k2 = (struct keyring *) 0x1;
        assert_int_equal(keyring_open(f->dir, T0, &k2), -EINVAL);
        assert_ptr_equal(k2, (struct keyring *) 0x1);
}

static void test_rotate_prune(void **state) {
        struct fixture *f = *state;
        struct keyring *k = NULL;
        _cleanup_free_ char *old_token = NULL, *new_token = NULL, *kid_in_token = NULL, *old_path = NULL;
        char old_kid[JWT_KID_LEN + 1], new_kid[JWT_KID_LEN + 1];
        const int64_t retire_after = 600;
        struct stat st;

        assert_int_equal(keyring_open(f->dir, T0, &k), 0);
        strcpy(old_kid, keyring_current_kid(k));
        old_path = key_path(f, old_kid);
        /* Long-lived, so that only the key's retirement can end it. */
        old_token = sign(k, T0 + 100000);

        assert_int_equal(keyring_rotate(k, T0 + 100, retire_after, new_kid), 0);
        assert_string_not_equal(new_kid, old_kid);
        assert_string_equal(keyring_current_kid(k), new_kid);
        assert_int_equal(keyring_current_created_at(k), T0 + 100);

        /* The new key signs; both verify. */
        new_token = sign(k, T0 + 100000);
        kid_in_token = token_kid(new_token);
        assert_string_equal(kid_in_token, new_kid);
        assert_int_equal(verify(k, new_token, T0 + 100), JWT_OK);
        assert_int_equal(verify(k, old_token, T0 + 100), JWT_OK);

        _cleanup_free_ char *new_path = key_path(f, new_kid);
        assert_int_equal(stat(new_path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* Nothing to drop before the retirement time... */
        assert_int_equal(keyring_prune(k, T0 + 100 + retire_after - 1), 0);
        assert_int_equal(verify(k, old_token, T0 + 100 + retire_after - 1), JWT_OK);

        /* ...and a restart keeps the retired key published. */
        keyring_free(k);
        k = NULL;
        assert_int_equal(keyring_open(f->dir, T0 + 200, &k), 0);
        assert_string_equal(keyring_current_kid(k), new_kid);
        assert_int_equal(verify(k, old_token, T0 + 200), JWT_OK);
        assert_int_equal(keyring_prune(k, T0 + 200), 0);

        json_t *jwks = keyring_jwks(k, "EdDSA");
        assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 2);
        json_decref(jwks);

        /* At the retirement time it goes, file and all. */
        assert_int_equal(keyring_prune(k, T0 + 100 + retire_after), 1);
        assert_int_equal(stat(old_path, &st), -1);
        assert_int_equal(errno, ENOENT);
        assert_int_equal(verify(k, old_token, T0 + 100 + retire_after), JWT_ERR_KID);
        assert_int_equal(verify(k, new_token, T0 + 100 + retire_after), JWT_OK);
        assert_int_equal(keyring_prune(k, T0 + 100000), 0); /* the current key is never dropped */

        jwks = keyring_jwks(k, "EdDSA");
        assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 1);
        json_decref(jwks);
        keyring_free(k);

        /* And it stays gone after a restart. */
        k = NULL;
        assert_int_equal(keyring_open(f->dir, T0 + 1000, &k), 0);
        assert_int_equal(verify(k, old_token, T0 + 1000), JWT_ERR_KID);
        keyring_free(k);
}

/* A crash after the new key was written but before the old one was marked
 * retired: loading finishes the rotation. */
static void test_rotate_cut_short(void **state) {
        struct fixture *f = *state;
        struct keyring *k = NULL;
        _cleanup_free_ char *old_path = NULL, *old_token = NULL;
        char old_kid[JWT_KID_LEN + 1], new_kid[JWT_KID_LEN + 1];
        uint8_t before[64];
        int fd;

        assert_int_equal(keyring_open(f->dir, T0, &k), 0);
        strcpy(old_kid, keyring_current_kid(k));
        old_path = key_path(f, old_kid);
        old_token = sign(k, T0 + 100000);

        fd = open(old_path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, before, sizeof(before)), 64);
        close(fd);

        assert_int_equal(keyring_rotate(k, T0 + 10, 300, new_kid), 0);
        keyring_free(k);

        /* Put the old file back as it was before the rotation. */
        fd = open(old_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, before, sizeof(before)), 64);
        close(fd);

        k = NULL;
        assert_int_equal(keyring_open(f->dir, T0 + 20, &k), 0);
        assert_string_equal(keyring_current_kid(k), new_kid);
        assert_int_equal(verify(k, old_token, T0 + 20), JWT_OK);
        assert_int_equal(keyring_prune(k, T0 + 309), 0);
        assert_int_equal(keyring_prune(k, T0 + 310), 1);
        assert_int_equal(verify(k, old_token, T0 + 310), JWT_ERR_KID);
        keyring_free(k);
}

static void test_jwks(void **state) {
        struct fixture *f = *state;
        struct keyring *k = NULL;
        _cleanup_free_ char *jwks_path = NULL, *text = NULL, *listing = NULL, *before = NULL;
        char kid2[JWT_KID_LEN + 1];
        struct jwt_keyset *ks = NULL;
        json_t *jwks, *jwk;
        struct stat st;
        size_t i;

        assert_int_equal(keyring_open(f->dir, T0, &k), 0);
        _cleanup_free_ char *kid1 = strdup(keyring_current_kid(k));
        assert_int_equal(keyring_rotate(k, T0 + 1, 100, kid2), 0);

        jwks = keyring_jwks(k, "Ed25519");
        assert_non_null(jwks);
        assert_int_equal(json_object_size(jwks), 1);
        assert_int_equal(json_array_size(json_object_get(jwks, "keys")), 2);
        json_array_foreach(json_object_get(jwks, "keys"), i, jwk) {
                uint8_t pk[32];
                char thumb[JWT_KID_LEN + 1];
                size_t n;
                json_t *x = json_object_get(jwk, "x");

                assert_int_equal(json_object_size(jwk), 6);
                assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "OKP");
                assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "Ed25519");
                assert_string_equal(json_string_value(json_object_get(jwk, "use")), "sig");
                assert_string_equal(json_string_value(json_object_get(jwk, "alg")), "Ed25519");
                /* The current key first. */
                assert_string_equal(json_string_value(json_object_get(jwk, "kid")), i == 0 ? kid2 : kid1);
                assert_int_equal(b64url_decode(json_string_value(x), json_string_length(x), pk, sizeof(pk), &n), 0);
                assert_int_equal(n, 32);
                jwt_thumbprint(pk, thumb);
                assert_string_equal(thumb, json_string_value(json_object_get(jwk, "kid")));
        }
        json_decref(jwks);
        assert_null(keyring_jwks(k, "HS256"));

        /* Written atomically with mode 0644, replacing what was there. */
        assert_true(asprintf(&jwks_path, "%s/jwks.json", f->dir) >= 0);
        FILE *old = fopen(jwks_path, "we");
        assert_non_null(old);
        fputs("old", old);
        fclose(old);
        assert_int_equal(chmod(jwks_path, 0600), 0);
        before = list_dir(f->dir);
        assert_int_equal(keyring_write_jwks(k, jwks_path, "EdDSA"), 0);
        assert_int_equal(stat(jwks_path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        listing = list_dir(f->dir);
        assert_string_equal(listing, before); /* no temporary file left */

        FILE *in = fopen(jwks_path, "re");
        assert_non_null(in);
        text = calloc(1, 8192);
        size_t len = fread(text, 1, 8191, in);
        fclose(in);
        assert_int_equal(jwt_keyset_parse(text, len, &ks), JWT_OK);
        assert_int_equal(jwt_keyset_size(ks), 2);

        /* The file verifies what the keyring signs. */
        _cleanup_free_ char *token = sign(k, T0 + 50);
        struct jwt_verify_options opts = { .now = T0 };
        assert_int_equal(jwt_verify(ks, token, strlen(token), &opts, NULL), JWT_OK);
        jwt_keyset_free(ks);

        assert_int_equal(keyring_write_jwks(k, jwks_path, "none"), -EINVAL);
        assert_int_equal(keyring_write_jwks(k, "/nonexistent-latch-dir/jwks.json", "EdDSA"), -ENOENT);
        keyring_free(k);
}

static void test_open_errors(void **state) {
        struct fixture *f = *state;
        struct keyring *k = (struct keyring *) 0x1;
        char missing[128];

        snprintf(missing, sizeof(missing), "%s/missing", f->dir);
        assert_int_equal(keyring_open(missing, T0, &k), -ENOENT);
        assert_ptr_equal(k, (struct keyring *) 0x1);

        /* keys/ is not a folder; a failed open closes nothing of the
         * caller's (a stand-in for stdin sits on fd 0 if it was closed). */
        int fd0 = fcntl(0, F_GETFD) < 0 ? open("/dev/null", O_RDONLY) : -1;
        assert_true(fcntl(0, F_GETFD) >= 0);
        close(open(f->keys, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        assert_int_equal(keyring_open(f->dir, T0, &k), -ENOTDIR);
        assert_ptr_equal(k, (struct keyring *) 0x1);
        assert_true(fcntl(0, F_GETFD) >= 0);
        if (fd0 == 0)
                close(fd0);
        assert_int_equal(unlink(f->keys), 0);

        /* Unrelated files are left alone; leftovers of a crash are removed. */
        char path[256];
        assert_int_equal(mkdir(f->keys, 0700), 0);
        snprintf(path, sizeof(path), "%s/README", f->keys);
        close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
        snprintf(path, sizeof(path), "%s/.abc.tmp", f->keys);
        close(open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        assert_int_equal(keyring_open(f->dir, T0, &k), 0);
        _cleanup_free_ char *listing = list_dir(f->keys);
        char expected[128];
        if (strcmp(keyring_current_kid(k), "README") < 0)
                snprintf(expected, sizeof(expected), "%s.key,README", keyring_current_kid(k));
        else
                snprintf(expected, sizeof(expected), "README,%s.key", keyring_current_kid(k));
        assert_string_equal(listing, expected);
        keyring_free(k);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_creates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_exposed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuses_corrupt, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rotate_prune, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rotate_cut_short, setup, teardown),
                cmocka_unit_test_setup_teardown(test_jwks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
