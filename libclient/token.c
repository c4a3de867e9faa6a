/* SPDX-License-Identifier: MIT */
/* Offline token verification: a thin wrapper of common/jwt.h, which latchd
 * uses too, so both accept exactly the same tokens. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "jwt.h"
#include "latch/latch.h"
#include "macro.h"

/* A JWKS is a few keys; anything near this is not one. */
#define JWKS_MAX (1024 * 1024)

/* The public handle is the jwt keyset itself, under the public name. */
static const struct jwt_keyset *keyset_jwt(const latch_keyset *ks) {
        return (const struct jwt_keyset *) ks;
}

_public_ int latch_jwks_parse(const char *json, size_t len, latch_keyset **ret) {
        struct jwt_keyset *ks = NULL;

        assert_return(json && ret, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(len <= JWKS_MAX, LATCH_ERR_INVALID_ARGUMENT);

        int r = jwt_keyset_parse(json, len, &ks);
        if (r == JWT_ERR_NOMEM)
                return LATCH_ERR_NO_MEMORY;
        if (r != JWT_OK)
                return LATCH_ERR_INVALID_ARGUMENT;

        *ret = (latch_keyset *) ks;
        return LATCH_OK;
}

_public_ int latch_jwks_load_file(const char *path, latch_keyset **ret) {
        struct stat st;

        assert_return(path && ret, LATCH_ERR_INVALID_ARGUMENT);

        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return LATCH_ERR_IO;
        if (fstat(fd, &st) < 0)
                return LATCH_ERR_IO;
        if (!S_ISREG(st.st_mode)) {
                errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
                return LATCH_ERR_IO;
        }
        if (st.st_size > JWKS_MAX) {
                errno = EFBIG;
                return LATCH_ERR_IO;
        }

        /* Read to EOF rather than trusting st_size: latchd rewrites the file
         * by rename, but a hand-edited one may change under us. */
        size_t cap = (size_t) st.st_size + 1, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return LATCH_ERR_NO_MEMORY;
        for (;;) {
                if (len == cap) {
                        if (cap > JWKS_MAX) {
                                errno = EFBIG;
                                return LATCH_ERR_IO;
                        }
                        char *b = realloc(buf, cap * 2);
                        if (!b)
                                return LATCH_ERR_NO_MEMORY;
                        buf = b;
                        cap *= 2;
                }
                ssize_t n = read(fd, buf + len, cap - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return LATCH_ERR_IO;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }

        return latch_jwks_parse(buf, len, ret);
}

_public_ size_t latch_keyset_size(const latch_keyset *keyset) {
        return keyset ? jwt_keyset_size(keyset_jwt(keyset)) : 0;
}

_public_ void latch_keyset_free(latch_keyset *keyset) {
        jwt_keyset_free((struct jwt_keyset *) keyset);
}

_public_ int latch_token_verify(const latch_keyset *keyset, const char *token, const char *audience,
                                const char *issuer, int64_t leeway, int64_t now, char **ret_claims_json,
                                char **ret_sub, const char **ret_reason) {
        json_t *claims = NULL;

        if (ret_reason)
                *ret_reason = "invalid argument";
        assert_return(keyset && token, LATCH_ERR_INVALID_ARGUMENT);
        assert_return(leeway >= 0, LATCH_ERR_INVALID_ARGUMENT);

        struct jwt_verify_options opts = {
                .now = now != 0 ? now : (int64_t) time(NULL),
                .leeway = leeway,
                .audience = audience,
                .issuer = issuer,
        };

        int r = jwt_verify(keyset_jwt(keyset), token, strlen(token), &opts, &claims);
        if (r != JWT_OK) {
                if (ret_reason)
                        *ret_reason = jwt_strerror(r);
                return r == JWT_ERR_NOMEM ? LATCH_ERR_NO_MEMORY : LATCH_ERR_INVALID_TOKEN;
        }

        _cleanup_free_ char *text = NULL, *sub = NULL;
        if (ret_claims_json) {
                text = json_dumps(claims, JSON_COMPACT);
                if (!text)
                        goto nomem;
        }
        if (ret_sub) {
                const char *s = json_string_value(json_object_get(claims, "sub"));
                if (s) {
                        sub = strdup(s);
                        if (!sub)
                                goto nomem;
                }
        }
        json_decref(claims);

        if (ret_claims_json)
                *ret_claims_json = TAKE_PTR(text);
        if (ret_sub)
                *ret_sub = TAKE_PTR(sub);
        if (ret_reason)
                *ret_reason = NULL;
        return LATCH_OK;

nomem:
        json_decref(claims);
        if (ret_reason)
                *ret_reason = "out of memory";
        return LATCH_ERR_NO_MEMORY;
}
