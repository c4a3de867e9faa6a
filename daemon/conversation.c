/* SPDX-License-Identifier: MIT */
/*
 * The table of waiting conversations (conversation.h). A plain array: the
 * caps keep it small, lookups compare every id in constant time anyway, and
 * an entry's removal moves the last one into its place.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "conversation.h"
#include "macro.h"

#define USER_KEY_BYTES 16

struct conversation {
        char id[CONVERSATION_ID_LEN + 1];
        uid_t uid;
        uint8_t user_key[USER_KEY_BYTES]; /* BLAKE2b of service, NUL, user */
        uint64_t expires_usec;
        void *payload;
};

struct conversations {
        conversation_end_fn end;
        struct conversation *v; /* CONVERSATIONS_MAX entries, allocated once */
        size_t n;
};

int conversations_new(conversation_end_fn end, struct conversations **ret) {
        struct conversations *t;

        assert_return(end, -EINVAL);
        assert_return(ret, -EINVAL);

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        /* The whole table up front: a flood of conversations never grows
         * memory, it meets the cap. */
        t->v = calloc(CONVERSATIONS_MAX, sizeof(*t->v));
        if (!t->v) {
                free(t);
                return -ENOMEM;
        }
        t->end = end;
        *ret = t;
        return 0;
}

static void remove_at(struct conversations *t, size_t i) {
        t->v[i] = t->v[t->n - 1];
        sodium_memzero(&t->v[t->n - 1], sizeof(t->v[0]));
        t->n--;
}

size_t conversations_end_all(struct conversations *t) {
        size_t n = 0;

        if (!t)
                return 0;
        for (; t->n > 0; n++) {
                void *p = t->v[t->n - 1].payload;
                remove_at(t, t->n - 1);
                t->end(p, false);
        }
        return n;
}

void conversations_free(struct conversations *t) {
        if (!t)
                return;
        (void) conversations_end_all(t);
        free(t->v);
        free(t);
}

static void user_key(const char *service, const char *user, uint8_t ret[USER_KEY_BYTES]) {
        crypto_generichash_state h;

        crypto_generichash_init(&h, NULL, 0, USER_KEY_BYTES);
        crypto_generichash_update(&h, (const uint8_t *) service, strlen(service) + 1);
        crypto_generichash_update(&h, (const uint8_t *) user, strlen(user));
        crypto_generichash_final(&h, ret, USER_KEY_BYTES);
}

int conversation_add(struct conversations *t, uid_t uid, const char *service, const char *user,
                     uint64_t expires_usec, void *payload, char ret_id[CONVERSATION_ID_LEN + 1]) {
        uint8_t raw[CONVERSATION_ID_BYTES], key[USER_KEY_BYTES];
        size_t mine = 0, users = 0;

        assert_return(t, -EINVAL);
        assert_return(service, -EINVAL);
        assert_return(user, -EINVAL);
        assert_return(payload, -EINVAL);

        if (t->n >= CONVERSATIONS_MAX)
                return -EBUSY;
        user_key(service, user, key);
        for (size_t i = 0; i < t->n; i++) {
                mine += t->v[i].uid == uid;
                users += memcmp(t->v[i].user_key, key, sizeof key) == 0;
        }
        if (mine >= CONVERSATIONS_PER_PEER_MAX || users >= CONVERSATIONS_PER_USER_MAX)
                return -EBUSY;

        struct conversation *c = &t->v[t->n];
        memcpy(c->user_key, key, sizeof key);
        /* Never a leading '-', as session ids: the id is a command-line
         * argument (`latchctl respond ID`) that getopt would take for an
         * option. */
        do {
                randombytes_buf(raw, sizeof raw);
                sodium_bin2base64(c->id, sizeof c->id, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        } while (c->id[0] == '-');
        sodium_memzero(raw, sizeof raw);
        c->uid = uid;
        c->expires_usec = expires_usec;
        c->payload = payload;
        t->n++;

        memcpy(ret_id, c->id, sizeof c->id);
        return 0;
}

/* The index of `id`, or -1. Every entry is compared, in constant time. */
static ssize_t lookup(const struct conversations *t, const char *id) {
        ssize_t found = -1;

        if (!id || strlen(id) != CONVERSATION_ID_LEN)
                return -1;
        for (size_t i = 0; i < t->n; i++)
                if (sodium_memcmp(t->v[i].id, id, CONVERSATION_ID_LEN) == 0)
                        found = (ssize_t) i;
        return found;
}

void *conversation_find(struct conversations *t, const char *id, uid_t uid, uint64_t now_usec) {
        ssize_t i;

        if (!t)
                return NULL;
        i = lookup(t, id);
        if (i < 0 || t->v[i].uid != uid || now_usec >= t->v[i].expires_usec)
                return NULL;
        return t->v[i].payload;
}

void *conversation_take(struct conversations *t, const char *id, uid_t uid, uint64_t now_usec) {
        ssize_t i;
        void *p;

        if (!conversation_find(t, id, uid, now_usec))
                return NULL;
        i = lookup(t, id);
        p = t->v[i].payload;
        remove_at(t, (size_t) i);
        return p;
}

size_t conversations_expire(struct conversations *t, uint64_t now_usec) {
        size_t n = 0;

        if (!t)
                return 0;
        for (size_t i = 0; i < t->n;) {
                if (now_usec < t->v[i].expires_usec) {
                        i++;
                        continue;
                }
                void *p = t->v[i].payload;
                remove_at(t, i);
                t->end(p, true);
                n++;
        }
        return n;
}

size_t conversations_count(const struct conversations *t) {
        return t ? t->n : 0;
}
