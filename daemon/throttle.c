/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "throttle.h"

#define THROTTLE_BUCKETS 4096
#define THROTTLE_MAX_ENTRIES 200000
#define THROTTLE_BASE_USEC 250000ULL      /* the first delay */
#define THROTTLE_HALF_LIFE_USEC 60000000.0 /* failures halve every minute */
#define THROTTLE_REMOTE_SHARE 4           /* a remote's own key weighs failures / 4 */
#define THROTTLE_USER_SHARE 2             /* a user's key across remotes weighs failures / 2 */
#define THROTTLE_FREE_INFLIGHT 2          /* concurrent attempts of one key that cost nothing */

struct throttle_entry {
        struct throttle_entry *next;
        uint64_t hash;
        double failures;       /* decayed count */
        uint64_t updated_usec;
        unsigned inflight;
        unsigned divisor;      /* 1 for (remote, user) or user, THROTTLE_REMOTE_SHARE for remote */
        size_t keylen;
        char key[];
};

struct throttle {
        bool enabled;
        uint64_t max_delay_usec;
        uint8_t hash_key[crypto_shorthash_KEYBYTES];
        struct throttle_entry *buckets[THROTTLE_BUCKETS];
        size_t n;
};

int throttle_new(bool enabled, int64_t max_delay_sec, struct throttle **ret) {
        struct throttle *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        /* A keyed hash: a client choosing user names cannot flood a bucket. */
        crypto_shorthash_keygen(t->hash_key);
        throttle_configure(t, enabled, max_delay_sec);
        *ret = t;
        return 0;
}

void throttle_configure(struct throttle *t, bool enabled, int64_t max_delay_sec) {
        t->enabled = enabled;
        t->max_delay_usec = (uint64_t) max_delay_sec * 1000000;
}

void throttle_free(struct throttle *t) {
        if (!t)
                return;
        for (size_t i = 0; i < THROTTLE_BUCKETS; i++)
                while (t->buckets[i]) {
                        struct throttle_entry *e = t->buckets[i];
                        t->buckets[i] = e->next;
                        free(e);
                }
        free(t);
}

static void decay(struct throttle_entry *e, uint64_t now) {
        if (now > e->updated_usec && e->failures > 0)
                e->failures *= exp2(-(double) (now - e->updated_usec) / THROTTLE_HALF_LIFE_USEC);
        e->updated_usec = now;
}

/* Makes room when the table is full: drops the stalest idle entry of the
 * bucket (or, if it has none, of the next buckets), so that flooding the
 * table with fresh keys cannot switch the throttle off. */
static bool evict_one(struct throttle *t, struct throttle_entry **home) {
        size_t start = (size_t) (home - t->buckets);

        for (size_t k = 0; k < THROTTLE_BUCKETS; k++) {
                struct throttle_entry **b = &t->buckets[(start + k) % THROTTLE_BUCKETS];
                struct throttle_entry **victim = NULL;
                for (struct throttle_entry **p = b; *p; p = &(*p)->next)
                        if ((*p)->inflight == 0 && (!victim || (*p)->updated_usec < (*victim)->updated_usec))
                                victim = p;
                if (victim) {
                        struct throttle_entry *e = *victim;
                        *victim = e->next;
                        free(e);
                        t->n--;
                        return true;
                }
        }
        return false;
}

/* IPv6 clients usually hold a whole /64: key them by it, or one client
 * could rotate addresses to start afresh on every attempt. */
static const char *remote_key(const char *remote, char buf[INET6_ADDRSTRLEN + 4]) {
        struct in6_addr a;

        if (inet_pton(AF_INET6, remote, &a) != 1 || IN6_IS_ADDR_V4MAPPED(&a))
                return remote;
        memset(a.s6_addr + 8, 0, 8);
        if (!inet_ntop(AF_INET6, &a, buf, INET6_ADDRSTRLEN))
                return remote;
        strcat(buf, "/64");
        return buf;
}

static struct throttle_entry *lookup(struct throttle *t, const char *key, size_t keylen, unsigned divisor,
                                     uint64_t now) {
        uint64_t h;
        crypto_shorthash((uint8_t *) &h, (const uint8_t *) key, keylen, t->hash_key);
        struct throttle_entry **b = &t->buckets[h % THROTTLE_BUCKETS];
        for (struct throttle_entry *e = *b; e; e = e->next)
                if (e->hash == h && e->keylen == keylen && memcmp(e->key, key, keylen) == 0) {
                        decay(e, now);
                        return e;
                }
        if (t->n >= THROTTLE_MAX_ENTRIES && !evict_one(t, b))
                return NULL; /* every entry busy: fail open rather than lock everyone out */
        struct throttle_entry *e = calloc(1, sizeof(*e) + keylen);
        if (!e)
                return NULL;
        e->hash = h;
        e->keylen = keylen;
        e->divisor = divisor;
        e->updated_usec = now;
        memcpy(e->key, key, keylen);
        e->next = *b;
        *b = e;
        t->n++;
        return e;
}

static uint64_t delay_for(const struct throttle *t, const struct throttle_entry *e) {
        if (!e)
                return 0;
        /* Attempts in flight (this one excluded) count like failures, past
         * a couple that a real user may well make at once. */
        unsigned pending = e->inflight - 1 > THROTTLE_FREE_INFLIGHT ? e->inflight - 1 - THROTTLE_FREE_INFLIGHT : 0;
        double n = (e->failures + (double) pending) / e->divisor;
        if (n < 1.0)
                return 0;
        if (n > 40)
                return t->max_delay_usec;
        uint64_t d = (uint64_t) ((double) THROTTLE_BASE_USEC * exp2(n - 1.0));
        return MIN(d, t->max_delay_usec);
}

uint64_t throttle_begin(struct throttle *t, const char *user, const char *remote, uint64_t now,
                        struct throttle_ticket *ret) {
        char key[600];
        size_t n;

        *ret = (struct throttle_ticket){ 0 };
        if (!t->enabled)
                return 0;
        /* The user alone, across every remote: rotating addresses does not
         * start afresh (weighed lightly, so that an attacker elsewhere only
         * slows a victim down, and never locks them out: faillock does). */
        n = (size_t) snprintf(key, sizeof key, "u%c%s", 0, user);
        ret->e[2] = lookup(t, key, MIN(n, sizeof key - 1), remote ? THROTTLE_USER_SHARE : 1, now);
        if (remote) {
                char buf[INET6_ADDRSTRLEN + 4];
                const char *rk = remote_key(remote, buf);
                n = (size_t) snprintf(key, sizeof key, "r%s", rk);
                ret->e[0] = lookup(t, key, MIN(n, sizeof key - 1), THROTTLE_REMOTE_SHARE, now);
                n = (size_t) snprintf(key, sizeof key, "p%s%c%s", rk, 0, user);
                ret->e[1] = lookup(t, key, MIN(n, sizeof key - 1), 1, now);
        }
        uint64_t d = 0;
        for (int i = 0; i < 3; i++)
                if (ret->e[i]) {
                        ret->e[i]->inflight++;
                        d = MAX(d, delay_for(t, ret->e[i]));
                }
        return d;
}

void throttle_done(struct throttle *t, struct throttle_ticket *ticket, bool success, uint64_t now) {
        for (int i = 0; i < 3; i++) {
                struct throttle_entry *e = ticket->e[i];
                if (!e)
                        continue;
                e->inflight--;
                decay(e, now);
                if (!success)
                        e->failures += 1.0;
                else if (e->divisor != THROTTLE_REMOTE_SHARE)
                        e->failures = 0; /* a success clears the user's keys, not the remote's */
        }
        *ticket = (struct throttle_ticket){ 0 };
}

void throttle_cancel(struct throttle *t, struct throttle_ticket *ticket) {
        for (int i = 0; i < 3; i++)
                if (ticket->e[i])
                        ticket->e[i]->inflight--;
        *ticket = (struct throttle_ticket){ 0 };
}

void throttle_gc(struct throttle *t, uint64_t now) {
        for (size_t i = 0; i < THROTTLE_BUCKETS; i++) {
                struct throttle_entry **p = &t->buckets[i];
                while (*p) {
                        struct throttle_entry *e = *p;
                        decay(e, now);
                        if (e->inflight == 0 && e->failures < 0.05) {
                                *p = e->next;
                                free(e);
                                t->n--;
                        } else
                                p = &e->next;
                }
        }
}

size_t throttle_size(const struct throttle *t) { return t->n; }
