/* SPDX-License-Identifier: MIT */

/*
 * libFuzzer harness for the userdb parser (plugins/file/userdb.c): feeds the
 * input as a user file from memory and checks what a parse promises: every
 * diagnostic names a line inside the input, a failed parse reports at least
 * one, and a successful one yields valid names, findable by lookup.
 * Seed corpus: tests/fuzz/corpus/userdb/.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "userdb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_diag {
        unsigned lines; /* lines in the input */
        unsigned count;
};

static void fuzz_diag(void *userdata, const char *name, unsigned line, const char *message) {
        struct fuzz_diag *d = userdata;

        if (strcmp(name, "fuzz") != 0 || line == 0 || line > d->lines || !message ||
            message[0] == '\0')
                abort();
        d->count++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct fuzz_diag d = { .lines = 0 };
        struct userdb *db = NULL;

        for (size_t i = 0; i < size; i++)
                if (data[i] == '\n')
                        d.lines++;
        if (size == 0 || data[size - 1] != '\n')
                d.lines++;

        int r = userdb_parse_buffer(data, size, "fuzz", fuzz_diag, &d, &db);
        if (r < 0) {
                if (db || (r == -EBADMSG && d.count == 0))
                        abort();
                return 0;
        }
        if (d.count != 0)
                abort();

        for (size_t i = 0; i < userdb_size(db); i++) {
                const struct userdb_entry *e = userdb_get(db, i);
                if (!e || !userdb_name_valid(e->user) || userdb_lookup(db, e->user) != e ||
                    e->line == 0 || e->line > d.lines || e->groups[e->n_groups] != NULL ||
                    e->expires < USERDB_EXPIRES_NEVER)
                        abort();
                /* never expires, or expired at or after its time */
                if (e->expires != USERDB_EXPIRES_NEVER &&
                    (!userdb_expired(e, e->expires) ||
                     (e->expires > 0 && userdb_expired(e, e->expires - 1))))
                        abort();
                for (size_t k = 0; k < e->n_groups; k++)
                        if (!userdb_name_valid(e->groups[k]))
                                abort();
                /* locked and weak formats never verify, whatever the password */
                if (!userdb_hash_supported(e->hash) && userdb_verify(e->hash, "x") != 0)
                        abort();
        }
        if (userdb_get(db, userdb_size(db)) != NULL)
                abort();
        userdb_free(db);
        return 0;
}
