/* SPDX-License-Identifier: MIT */
/*
 * The session store on LMDB.
 *
 * One environment, the file `sessions.mdb` (and its `sessions.mdb-lock`) in
 * the state directory, opened MDB_NOSUBDIR|MDB_NOTLS, mode 0600. Named
 * databases:
 *
 *   meta      "layout" -> u32 layout version (STORE_LAYOUT_VERSION)
 *   sessions  32-byte key -> record (see below)
 *   handles   22-char handle -> 32-byte key
 *   users     user -> 32-byte key (MDB_DUPSORT|MDB_DUPFIXED)
 *   expiry    8-byte big-endian biased expiry time + 32-byte key -> empty
 *   kv        ns '\0' key -> value (plugin storage)
 *
 * Every write is one LMDB write transaction, so a session exists with all its
 * index entries or not at all.
 *
 * A session record, little fuss about alignment since LMDB values are only
 * 2-byte aligned: every integer is read and written with memcpy().
 *
 *   0   u8   record version (1)
 *   1   u8   flags: bit 0 = the claims are canonical (see struct
 *             session_info); records written before the flag existed hold 0
 *             and are read as they always were
 *   2   u16  user length (without NUL)
 *   4   u16  service length
 *   6   u32  claims length
 *   10  u32  peer uid
 *   14  i64  created_at
 *   22  i64  last_seen_at
 *   30  i64  expires_at
 *   38  i64  idle_timeout
 *   46  char handle[22]
 *   68  user '\0' service '\0' claims '\0'
 *
 * The strings are stored NUL-terminated so that readers hand out pointers
 * into the mapped page without copying.
 *
 * Growing the map: mdb_env_set_mapsize() must not run while any transaction
 * of this process is active. Every transaction (read or write) holds
 * `map_lock` shared; the resize holds it exclusively. The lock prefers
 * writers, so a resize is not starved by a stream of reads; therefore a
 * session_fn callback must never call back into the same store (it would
 * take the lock recursively and could deadlock against a pending resize).
 *
 * Read transactions are kept, reset, in a small pool and renewed: with
 * MDB_NOTLS a reset transaction may be renewed by any thread, and renewing
 * skips the allocation and reader-slot search of mdb_txn_begin().
 *
 * Key-value updates (store_kv_update()) do not open a write transaction of
 * their own: the new value is recorded in `kv_pending` under `kv_lock`
 * (which is what serialises concurrent updates of a key), and every read and
 * update sees it at once. It reaches the file with a synced write that
 * carries the pending values: at once when the caller has no batch open,
 * else the batch's session creation (the same commit as the session) or
 * store_kv_batch_end(). Carrying writes take turns under `kv_flush_lock`,
 * so that an older value never lands after a newer one. When the write of
 * an update made outside a batch fails, the update is taken back (see
 * kv_update_take_back()): its caller reports the failure, so the change
 * must not take effect later either. In a batch it stays recorded and the
 * batch's end reports the failure. The environment is
 * never opened MDB_NOSYNC or MDB_NOMETASYNC for this: LMDB's MDB_NOSYNC
 * lets a system crash corrupt the file unless the file system keeps write
 * order, which is not promised here.
 */

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <sodium.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"
#include "store.h"

#define STORE_FILE_NAME "sessions.mdb"
#define STORE_LAYOUT_VERSION 1u
#define STORE_DEFAULT_MAP_SIZE ((size_t) 64 << 20)
#define STORE_MAX_READERS 256
#define STORE_READ_POOL_MAX 16

#define RECORD_VERSION 1
#define RECORD_HEADER_SIZE 68
#define RECORD_FLAG_CLAIMS_CANONICAL 0x01
#define USER_MAX 256
/* The user-wide revocations remembered for logins in flight. */
#define REVOCATIONS_MAX 1024
#define SERVICE_MAX 256
#define CLAIMS_MAX ((size_t) 1 << 20)
#define NS_MAX 200
#define EXPIRY_KEY_SIZE (8 + STORE_KEY_SIZE)
#define SLIDE_CHUNK 4096

/* Idle-expiry slides not yet written, merged by key: an open-addressing
 * table (the keys are hashes already, so their first bytes index it). */
struct slide {
        uint8_t key[STORE_KEY_SIZE];
        int64_t now; /* INT64_MIN: free slot */
};

struct slide_set {
        struct slide *slots;
        size_t cap, n; /* cap: 0 or a power of two */
};

/* A key-value update recorded and not yet written (see above). */
struct kv_pending {
        struct kv_pending *next;
        uint64_t seq;  /* the update's number: kv_seq when it was recorded */
        bool deleted;  /* the key is to be deleted */
        size_t klen, vlen;
        uint8_t key[NS_MAX + 1 + LATCH_KV_KEY_MAX];
        uint8_t val[LATCH_KV_VALUE_MAX];
};

struct store {
        MDB_env *env;
        MDB_dbi db_meta, db_sessions, db_handles, db_users, db_expiry, db_kv;

        /* Shared by every transaction, exclusive for mdb_env_set_mapsize(). */
        pthread_rwlock_t map_lock;
        bool map_lock_initialized;
        size_t map_size; /* written under map_lock held exclusively */
        bool broken;     /* a resize failed and left no mapping; likewise */

        pthread_mutex_t pool_lock;
        bool pool_lock_initialized;
        MDB_txn *pool[STORE_READ_POOL_MAX];
        size_t n_pool;

        atomic_uint_fast64_t readers_cleared;
        atomic_bool damaged; /* an -EUCLEAN was seen: writes are refused */

        /* Slides recorded by store_session_slide(): `pending` takes new
         * ones; `flushing` holds those a flush is writing. Both count for
         * reads and sweeps until written. slide_lock guards both (a leaf
         * lock, held briefly); flush_lock makes flushes take turns. */
        pthread_mutex_t slide_lock, flush_lock;
        bool slide_locks_initialized;
        struct slide_set pending, flushing;
        atomic_size_t n_slides; /* pending.n + flushing.n, for a lock-free "none" */

        /* Key-value updates recorded and not yet written. kv_lock guards
         * the list and kv_seq (a leaf lock, except that an update reads the
         * file under it); kv_flush_lock makes the writes that carry them
         * take turns. Every update numbered up to kv_durable is written and
         * synced. */
        pthread_mutex_t kv_lock, kv_flush_lock;
        bool kv_locks_initialized;
        struct kv_pending *kv_pending;
        uint64_t kv_seq;
        atomic_uint_fast64_t kv_durable;

        /* User-wide revocations, numbered from 1 (revocation_seq: the
         * last): each slot holds a revocation's number and the keyed hash
         * of its user. Written in the revocation's write transaction and
         * read in a login's create transaction, which LMDB's writer lock
         * puts in one order; the number is atomic for marks taken outside. */
        struct {
                uint64_t seq, user_hash;
        } revocations[REVOCATIONS_MAX];
        atomic_uint_fast64_t revocation_seq;
        uint8_t revocation_key[crypto_shorthash_KEYBYTES];

        char *path; /* state_dir/sessions.mdb */
};

/* Maps an LMDB return code to a negative errno, except the two conditions
 * the transaction loops handle themselves (map full, map resized by another
 * process), which pass through as their (negative, out of errno range) MDB
 * codes. */
static int lmdb_status(int rc) {
        switch (rc) {
        case 0:
                return 0;
        case MDB_MAP_FULL:
        case MDB_MAP_RESIZED:
                return rc;
        case MDB_NOTFOUND:
                return -ENOENT;
        case MDB_KEYEXIST:
                return -EEXIST;
        case ENOSPC:
        case EDQUOT:
        case EFBIG: /* RLIMIT_FSIZE or the file system's file size limit */
                return -ENOSPC;
        case ENOMEM:
                return -ENOMEM;
        /* Pages that do not hold what LMDB expects: the file is damaged
         * (bit rot, a bad restore, a write from outside). */
        case MDB_CORRUPTED:
        case MDB_PAGE_NOTFOUND:
        case MDB_PANIC:
        case MDB_BAD_TXN:
        case MDB_INVALID:
        case MDB_BAD_VALSIZE:
        case MDB_INCOMPATIBLE:
        case MDB_PAGE_FULL:   /* "internal error": a node larger than its page says */
        case EINVAL:          /* every argument was checked before: LMDB met a page it cannot use */
        case MDB_CURSOR_FULL: /* a tree deeper than any LMDB builds */
                return -EUCLEAN;
        default:
                return -EIO;
        }
}

/* LMDB reports a short write as EIO, which is how a disk that fills up in
 * the middle of a commit shows: tell that case apart by looking at the room
 * left (the file system's free blocks, and RLIMIT_FSIZE). */
static int store_classify_eio(store *s) {
        mdb_filehandle_t fd;
        struct statvfs vfs;
        struct rlimit rl;
        struct stat st;
        const uint64_t slack = 1 << 20;

        if (mdb_env_get_fd(s->env, &fd) != 0)
                return -EIO;
        if (fstatvfs(fd, &vfs) == 0) {
                uint64_t blocks = geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail;

                if (blocks * vfs.f_frsize < slack)
                        return -ENOSPC;
        }
        if (fstat(fd, &st) == 0 && getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (uint64_t) st.st_size + slack >= rl.rlim_cur)
                return -ENOSPC;
        return -EIO;
}

static void put_u16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof v); }
static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof v); }
static void put_i64(uint8_t *p, int64_t v) { memcpy(p, &v, sizeof v); }
static uint16_t get_u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, sizeof v); return v; }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, sizeof v); return v; }
static int64_t get_i64(const uint8_t *p) { int64_t v; memcpy(&v, p, sizeof v); return v; }

/* Expiry keys sort by time: big-endian, with the sign bit flipped so that
 * negative times (never expected, but representable) sort first. */
static void expiry_key(uint8_t out[EXPIRY_KEY_SIZE], int64_t t, const uint8_t key[STORE_KEY_SIZE]) {
        uint64_t u = (uint64_t) t ^ ((uint64_t) 1 << 63);

        for (size_t i = 0; i < 8; i++)
                out[i] = (uint8_t) (u >> (56 - 8 * i));
        memcpy(out + 8, key, STORE_KEY_SIZE);
}

static int64_t expiry_key_time(const uint8_t *p) {
        uint64_t u = 0;

        for (size_t i = 0; i < 8; i++)
                u = (u << 8) | p[i];
        return (int64_t) (u ^ ((uint64_t) 1 << 63));
}

static size_t record_size(size_t user_len, size_t service_len, size_t claims_len) {
        return RECORD_HEADER_SIZE + user_len + 1 + service_len + 1 + claims_len + 1;
}

static void record_encode(uint8_t *p, const struct session_info *info, const char *claims, size_t user_len,
                          size_t service_len, size_t claims_len) {
        p[0] = RECORD_VERSION;
        p[1] = info->claims_canonical || !info->claims_json ? RECORD_FLAG_CLAIMS_CANONICAL : 0;
        put_u16(p + 2, (uint16_t) user_len);
        put_u16(p + 4, (uint16_t) service_len);
        put_u32(p + 6, (uint32_t) claims_len);
        put_u32(p + 10, info->peer_uid);
        put_i64(p + 14, info->created_at);
        put_i64(p + 22, info->last_seen_at);
        put_i64(p + 30, info->expires_at);
        put_i64(p + 38, info->idle_timeout);
        memcpy(p + 46, info->handle, STORE_HANDLE_LEN);

        uint8_t *q = p + RECORD_HEADER_SIZE;
        memcpy(q, info->user, user_len + 1);
        q += user_len + 1;
        memcpy(q, info->service, service_len + 1);
        q += service_len + 1;
        memcpy(q, claims, claims_len + 1);
}

/* Whether s[0..n) is UTF-8 without NUL. */
static bool text_valid(const char *s, size_t n) {
        const uint8_t *p = (const uint8_t *) s, *end = p + n;

        while (p < end) {
                size_t k;
                uint32_t c;

                if (*p == 0)
                        return false;
                if (*p < 0x80) {
                        p++;
                        continue;
                }
                if ((*p & 0xE0) == 0xC0)
                        k = 1, c = *p & 0x1F;
                else if ((*p & 0xF0) == 0xE0)
                        k = 2, c = *p & 0x0F;
                else if ((*p & 0xF8) == 0xF0)
                        k = 3, c = *p & 0x07;
                else
                        return false;
                if ((size_t) (end - p) <= k)
                        return false;
                for (size_t i = 1; i <= k; i++) {
                        if ((p[i] & 0xC0) != 0x80)
                                return false;
                        c = (c << 6) | (p[i] & 0x3F);
                }
                if ((k == 1 && c < 0x80) || (k == 2 && c < 0x800) || (k == 3 && (c < 0x10000 || c > 0x10FFFF)) ||
                    (c >= 0xD800 && c <= 0xDFFF))
                        return false;
                p += k + 1;
        }
        return true;
}

static bool handle_chars_valid(const char *h) {
        for (size_t i = 0; i < STORE_HANDLE_LEN; i++)
                if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') || (h[i] >= '0' && h[i] <= '9') ||
                      h[i] == '-' || h[i] == '_'))
                        return false;
        return true;
}

/* A syntax check of JSON text, without allocating: claims kept canonical
 * are copied into replies as they are, so a flipped bit in them would make
 * a frame that is not JSON. Depth is bounded like the writer's. */
struct jscan {
        const char *p, *end;
        unsigned depth;
};

static void js_ws(struct jscan *j) {
        while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
                j->p++;
}

static bool js_lit(struct jscan *j, const char *lit) {
        size_t n = strlen(lit);

        if ((size_t) (j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
                return false;
        j->p += n;
        return true;
}

static bool js_string(struct jscan *j) {
        if (j->p >= j->end || *j->p != '"')
                return false;
        for (j->p++; j->p < j->end; j->p++) {
                unsigned char c = (unsigned char) *j->p;

                if (c == '"') {
                        j->p++;
                        return true;
                }
                if (c < 0x20)
                        return false;
                if (c == '\\') {
                        if (++j->p >= j->end)
                                return false;
                        if (*j->p == 'u') {
                                for (int i = 0; i < 4; i++) {
                                        char h = ++j->p < j->end ? *j->p : 0;
                                        if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                                                return false;
                                }
                        } else if (!strchr("\"\\/bfnrt", *j->p) || *j->p == '\0')
                                return false;
                }
        }
        return false;
}

static bool js_number(struct jscan *j) {
        const char *start = j->p;

        if (j->p < j->end && *j->p == '-')
                j->p++;
        if (j->p >= j->end || *j->p < '0' || *j->p > '9')
                return false;
        if (*j->p == '0')
                j->p++;
        else
                while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
                        j->p++;
        if (j->p < j->end && *j->p == '.') {
                j->p++;
                if (j->p >= j->end || *j->p < '0' || *j->p > '9')
                        return false;
                while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
                        j->p++;
        }
        if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
                j->p++;
                if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
                        j->p++;
                if (j->p >= j->end || *j->p < '0' || *j->p > '9')
                        return false;
                while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
                        j->p++;
        }
        return j->p > start;
}

static bool js_value(struct jscan *j);

static bool js_container(struct jscan *j, char open, char close) {
        bool object = open == '{';

        if (j->p >= j->end || *j->p != open || ++j->depth > 64)
                return false;
        j->p++;
        js_ws(j);
        if (j->p < j->end && *j->p == close) {
                j->p++;
                j->depth--;
                return true;
        }
        for (;;) {
                if (object) {
                        if (!js_string(j))
                                return false;
                        js_ws(j);
                        if (j->p >= j->end || *j->p != ':')
                                return false;
                        j->p++;
                }
                if (!js_value(j))
                        return false;
                js_ws(j);
                if (j->p < j->end && *j->p == ',') {
                        j->p++;
                        js_ws(j);
                        continue;
                }
                if (j->p < j->end && *j->p == close) {
                        j->p++;
                        j->depth--;
                        return true;
                }
                return false;
        }
}

static bool js_value(struct jscan *j) {
        js_ws(j);
        if (j->p >= j->end)
                return false;
        switch (*j->p) {
        case '{':
                return js_container(j, '{', '}');
        case '[':
                return js_container(j, '[', ']');
        case '"':
                return js_string(j);
        case 't':
                return js_lit(j, "true");
        case 'f':
                return js_lit(j, "false");
        case 'n':
                return js_lit(j, "null");
        default:
                return js_number(j);
        }
}

static bool json_object_text_valid(const char *s, size_t n) {
        struct jscan j = { .p = s, .end = s + n };

        if (!text_valid(s, n))
                return false;
        js_ws(&j);
        if (j.p >= j.end || *j.p != '{' || !js_value(&j))
                return false;
        js_ws(&j);
        return j.p == j.end;
}

/* A decoded record whose texts are not what any writer stored (a flipped
 * bit) is damage, caught here rather than as a reply that is not JSON
 * later. */
static int record_check_text(const struct session_info *info, size_t user_len, size_t service_len,
                             size_t claims_len) {
        /* User and service names need not be UTF-8 (a plugin may map a
         * user to any bytes), but never hold a NUL. */
        if (user_len == 0 || memchr(info->user, '\0', user_len) || memchr(info->service, '\0', service_len) ||
            !handle_chars_valid(info->handle))
                return -EUCLEAN;
        if (info->claims_canonical && !json_object_text_valid(info->claims_json, claims_len))
                return -EUCLEAN;
        return 0;
}

/* Fills *ret with pointers into `v` (borrowed for the life of the
 * transaction and until the next write to the page). -EUCLEAN if the
 * record is malformed. */
static int record_decode(const MDB_val *v, struct session_info *ret) {
        const uint8_t *p = v->mv_data;

        if (v->mv_size < RECORD_HEADER_SIZE || p[0] != RECORD_VERSION)
                return -EUCLEAN;

        size_t user_len = get_u16(p + 2), service_len = get_u16(p + 4), claims_len = get_u32(p + 6);
        if (v->mv_size != record_size(user_len, service_len, claims_len))
                return -EUCLEAN;

        const char *user = (const char *) p + RECORD_HEADER_SIZE;
        const char *service = user + user_len + 1;
        const char *claims = service + service_len + 1;
        if (user[user_len] != '\0' || service[service_len] != '\0' || claims[claims_len] != '\0')
                return -EUCLEAN;

        memcpy(ret->handle, p + 46, STORE_HANDLE_LEN);
        ret->handle[STORE_HANDLE_LEN] = '\0';
        ret->user = user;
        ret->service = service;
        ret->claims_json = claims;
        ret->claims_canonical = p[1] & RECORD_FLAG_CLAIMS_CANONICAL;
        ret->peer_uid = get_u32(p + 10);
        ret->created_at = get_i64(p + 14);
        ret->last_seen_at = get_i64(p + 22);
        ret->expires_at = get_i64(p + 30);
        ret->idle_timeout = get_i64(p + 38);
        return record_check_text(ret, user_len, service_len, claims_len);
}

static bool session_is_live(const struct session_info *info, int64_t now) {
        return session_idle_expires_at(info) > now;
}

/* ---- faults ---- */

/* A page of the map past the end of its file (the file was cut short while
 * mapped, or the disk failed under it) faults with SIGBUS on first read. The
 * handler turns that into one line on stderr and _exit(STORE_EXIT_FAULT):
 * only async-signal-safe calls, with the line written in advance. A fault
 * (SIGBUS, SIGSEGV, or SIGABRT from the C library) counts as the store's
 * when its address is in the map (not for SIGABRT),
 * or when the thread was inside LMDB in one of the store's transactions
 * (not in a caller's callback). Any other keeps its default action. */
static atomic_uintptr_t fault_map_start, fault_map_end;
static store *_Atomic fault_store;
static char fault_line[PATH_MAX + 512];
static size_t fault_line_len;
static _Thread_local volatile sig_atomic_t in_txn;

static void store_fault_handler(int sig, siginfo_t *si, void *ucontext) {
        uintptr_t a = (uintptr_t) si->si_addr;

        /* LMDB trusts the page numbers and sizes in the pages: a damaged
         * one can point past the map as well (SIGSEGV), or make it copy
         * past a buffer, which the C library reports by abort(). */
        if (in_txn > 0 ||
            (sig != SIGABRT && a >= atomic_load(&fault_map_start) && a < atomic_load(&fault_map_end))) {
                ssize_t n = write(STDERR_FILENO, fault_line, fault_line_len);
                (void) n;
                _exit(STORE_EXIT_FAULT);
        }
        /* Not the store's: what the signal would have done anyway. */
        signal(sig, SIG_DFL);
        raise(sig);
}

static void store_fault_track(store *s) {
        MDB_envinfo info;

        if (atomic_load(&fault_store) != s || mdb_env_info(s->env, &info) != 0)
                return;
        atomic_store(&fault_map_start, (uintptr_t) info.me_mapaddr);
        atomic_store(&fault_map_end, (uintptr_t) info.me_mapaddr + info.me_mapsize);
}

static void store_fault_forget(store *s) {
        store *expected = s;

        if (atomic_compare_exchange_strong(&fault_store, &expected, NULL)) {
                atomic_store(&fault_map_start, 0);
                atomic_store(&fault_map_end, 0);
        }
}

/* LMDB calls this where it would abort() on an inconsistency it found in
 * the pages (a damaged file): the same logged exit as a fault. */
static void store_assert(MDB_env *env, const char *msg) {
        ssize_t n = write(STDERR_FILENO, fault_line, fault_line_len);
        (void) n;
        _exit(STORE_EXIT_FAULT);
}

int store_catch_faults(store *s) {
        struct sigaction sa = { .sa_sigaction = store_fault_handler, .sa_flags = SA_SIGINFO };
        bool journal = getenv("JOURNAL_STREAM") || getenv("INVOCATION_ID");
        int n;

        assert_return(s, -EINVAL);

        n = snprintf(fault_line, sizeof fault_line,
                     "%sstore damaged: the session store %s failed under latchd (a page past the end of the "
                     "file: it was cut short, or the disk failed; or pages LMDB found inconsistent); exiting "
                     "with status %d. If a restart refuses it, restore it from a backup (see \"State: back up "
                     "and restore\" in docs/OPERATIONS.md)\n",
                     journal ? "<2>" : "latchd[crit]: ", s->path, STORE_EXIT_FAULT);
        if (n < 0)
                return -EIO;
        fault_line_len = MIN((size_t) n, sizeof fault_line - 1);

        atomic_store(&fault_store, s);
        store_fault_track(s);
        (void) mdb_env_set_assert(s->env, store_assert);
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, NULL) < 0 || sigaction(SIGSEGV, &sa, NULL) < 0 ||
            sigaction(SIGABRT, &sa, NULL) < 0)
                return negative_errno();
        return 0;
}

/* Runs a caller's session_fn: its code is not the store's, so a fault in
 * it is not counted as the store's. */
static int callback(session_fn fn, void *userdata, const struct session_info *info) {
        int r;

        in_txn--;
        r = fn(userdata, info);
        in_txn++;
        return r;
}

/* ---- pending slides ---- */

static void slide_set_wipe(struct slide_set *set) {
        if (set->slots) {
                explicit_bzero(set->slots, set->cap * sizeof *set->slots);
                free(set->slots);
        }
        *set = (struct slide_set) {};
}

/* The slot of `key`: its entry, or the free slot where it would go. The
 * table is never more than half full, so there always is one. */
static struct slide *slide_slot(const struct slide_set *set, const uint8_t key[STORE_KEY_SIZE]) {
        size_t mask = set->cap - 1;
        uint64_t h;

        memcpy(&h, key, sizeof h);
        for (size_t i = (size_t) h & mask;; i = (i + 1) & mask) {
                struct slide *sl = &set->slots[i];

                if (sl->now == INT64_MIN || memcmp(sl->key, key, STORE_KEY_SIZE) == 0)
                        return sl;
        }
}

static int64_t slide_find(const struct slide_set *set, const uint8_t key[STORE_KEY_SIZE]) {
        return set->n == 0 ? INT64_MIN : slide_slot(set, key)->now;
}

/* Records a slide, keeping the latest per key. */
static int slide_set_put(struct slide_set *set, const uint8_t key[STORE_KEY_SIZE], int64_t now) {
        struct slide *sl;

        if ((set->n + 1) * 2 > set->cap) {
                size_t cap = set->cap ? set->cap * 2 : 1024;
                struct slide_set bigger = { .cap = cap };

                if (cap > SIZE_MAX / sizeof(struct slide))
                        return -ENOMEM;
                bigger.slots = malloc(cap * sizeof(struct slide));
                if (!bigger.slots)
                        return -ENOMEM;
                for (size_t i = 0; i < cap; i++)
                        bigger.slots[i].now = INT64_MIN;
                for (size_t i = 0; i < set->cap; i++)
                        if (set->slots[i].now != INT64_MIN) {
                                *slide_slot(&bigger, set->slots[i].key) = set->slots[i];
                                bigger.n++;
                        }
                slide_set_wipe(set);
                *set = bigger;
        }

        sl = slide_slot(set, key);
        if (sl->now == INT64_MIN) {
                memcpy(sl->key, key, STORE_KEY_SIZE);
                sl->now = now;
                set->n++;
        } else if (now > sl->now)
                sl->now = now;
        return 0;
}

/* The latest slide of `key` not yet written, or INT64_MIN. */
static int64_t slide_get(store *s, const uint8_t key[STORE_KEY_SIZE]) {
        int64_t a, b;

        if (atomic_load_explicit(&s->n_slides, memory_order_relaxed) == 0)
                return INT64_MIN;
        pthread_mutex_lock(&s->slide_lock);
        a = slide_find(&s->pending, key);
        b = slide_find(&s->flushing, key);
        pthread_mutex_unlock(&s->slide_lock);
        return MAX(a, b);
}

/* What a reader sees: the record's last_seen, or a later slide not yet
 * written, whichever is later. */
static void slide_apply(store *s, const uint8_t key[STORE_KEY_SIZE], struct session_info *info) {
        int64_t t = slide_get(s, key);

        if (t > info->last_seen_at)
                info->last_seen_at = t;
}

int store_session_slide(store *s, const uint8_t key[STORE_KEY_SIZE], int64_t now) {
        int r;

        assert_return(s, -EINVAL);
        assert_return(key, -EINVAL);
        assert_return(now > INT64_MIN, -EINVAL);

        pthread_mutex_lock(&s->slide_lock);
        r = slide_set_put(&s->pending, key, now);
        atomic_store(&s->n_slides, s->pending.n + s->flushing.n);
        pthread_mutex_unlock(&s->slide_lock);
        return r;
}

size_t store_session_slides_pending(store *s) {
        size_t n;

        if (!s)
                return 0;
        pthread_mutex_lock(&s->slide_lock);
        n = s->pending.n;
        pthread_mutex_unlock(&s->slide_lock);
        return n;
}

/* ---- transactions ---- */

/* Notes damage on its way out of a public function. */
static int store_result(store *s, int r) {
        if (r == -EUCLEAN)
                atomic_store(&s->damaged, true);
        return r;
}


/* Aborts every pooled read transaction. Called with map_lock held
 * exclusively, or when closing. */
static void pool_drain(store *s) {
        while (s->n_pool > 0)
                mdb_txn_abort(s->pool[--s->n_pool]);
}

static int store_refresh_map_size(store *s) {
        MDB_envinfo info;
        int rc;

        rc = mdb_env_info(s->env, &info);
        if (rc != 0)
                return lmdb_status(rc);
        s->map_size = info.me_mapsize;
        store_fault_track(s);
        return 0;
}

/* Sets the map size to `new_size` (0: adopt the size another process set),
 * unless someone else already changed it since the caller saw `seen`. */
static int store_resize(store *s, size_t seen, size_t new_size) {
        int r = 0, rc;

        if (pthread_rwlock_wrlock(&s->map_lock) != 0)
                return -EIO;

        if (s->broken)
                r = -EIO;
        else if (new_size == 0 || s->map_size == seen) {
                /* No transaction of ours is active now; pooled (reset) ones
                 * are dropped too, so that none outlives the old mapping. */
                pool_drain(s);
                rc = mdb_env_set_mapsize(s->env, new_size);
                if (rc != 0 && new_size != 0) {
                        /* LMDB unmaps before it maps anew: if the larger
                         * mapping failed, get the old one back. */
                        r = rc == ENOMEM ? -ENOMEM : -EIO;
                        if (mdb_env_set_mapsize(s->env, seen) != 0)
                                s->broken = true;
                } else if (rc != 0) {
                        r = -EIO;
                        s->broken = true;
                }
                if (!s->broken && store_refresh_map_size(s) < 0)
                        s->broken = true;
        }

        pthread_rwlock_unlock(&s->map_lock);
        return r;
}

static int store_grow(store *s, size_t seen) {
        if (seen > SIZE_MAX / 2)
                return -ENOSPC;
        return store_resize(s, seen, seen * 2);
}

/* Begins a read transaction (renewing a pooled one when possible) and takes
 * map_lock shared; read_end() undoes both. */
static int read_begin(store *s, MDB_txn **ret) {
        for (;;) {
                MDB_txn *txn = NULL;
                int rc = 0, r;

                if (pthread_rwlock_rdlock(&s->map_lock) != 0)
                        return -EIO;
                if (_unlikely_(s->broken)) {
                        pthread_rwlock_unlock(&s->map_lock);
                        return -EIO;
                }

                pthread_mutex_lock(&s->pool_lock);
                if (s->n_pool > 0)
                        txn = s->pool[--s->n_pool];
                pthread_mutex_unlock(&s->pool_lock);

                if (txn) {
                        rc = mdb_txn_renew(txn);
                        if (rc != 0) {
                                mdb_txn_abort(txn);
                                txn = NULL;
                        }
                }
                if (!txn)
                        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
                if (rc == 0) {
                        in_txn++;
                        *ret = txn;
                        return 0;
                }

                pthread_rwlock_unlock(&s->map_lock);
                if (rc != MDB_MAP_RESIZED)
                        return lmdb_status(rc);
                r = store_resize(s, 0, 0);
                if (r < 0)
                        return r;
        }
}

static void read_end(store *s, MDB_txn *txn) {
        bool pooled = false;

        in_txn--;
        mdb_txn_reset(txn);
        pthread_mutex_lock(&s->pool_lock);
        if (s->n_pool < STORE_READ_POOL_MAX) {
                s->pool[s->n_pool++] = txn;
                pooled = true;
        }
        pthread_mutex_unlock(&s->pool_lock);
        if (!pooled)
                mdb_txn_abort(txn);

        pthread_rwlock_unlock(&s->map_lock);
}

/* The body of a write transaction: returns 0 (commit) or a negative errno or
 * MDB_MAP_FULL (abort). It may run more than once: after MDB_MAP_FULL the
 * transaction is aborted, the map doubled and the body run again. */
typedef int (*write_fn)(store *s, MDB_txn *txn, void *userdata);

static int store_write_once(store *s, write_fn fn, void *userdata);

/* Once damage was seen, no more writes: LMDB would follow the damaged
 * pages to write, and copying by their sizes can overrun its buffers. Reads
 * go on (they only read; a fault in them is caught). */
static int store_write(store *s, write_fn fn, void *userdata) {
        if (atomic_load(&s->damaged))
                return -EUCLEAN;
        return store_result(s, store_write_once(s, fn, userdata));
}

static int store_write_once(store *s, write_fn fn, void *userdata) {
        for (;;) {
                MDB_txn *txn;
                size_t seen;
                int r, rc;

                if (pthread_rwlock_rdlock(&s->map_lock) != 0)
                        return -EIO;
                if (_unlikely_(s->broken)) {
                        pthread_rwlock_unlock(&s->map_lock);
                        return -EIO;
                }
                seen = s->map_size;

                in_txn++;
                rc = mdb_txn_begin(s->env, NULL, 0, &txn);
                if (rc == 0) {
                        r = fn(s, txn, userdata);
                        if (r >= 0) {
                                /* mdb_txn_commit() frees txn on failure too. */
                                rc = mdb_txn_commit(txn);
                                r = rc == EIO ? store_classify_eio(s) : lmdb_status(rc);
                        } else
                                mdb_txn_abort(txn);
                } else
                        r = lmdb_status(rc);
                in_txn--;

                pthread_rwlock_unlock(&s->map_lock);

                if (r == MDB_MAP_FULL)
                        r = store_grow(s, seen);
                else if (r == MDB_MAP_RESIZED)
                        r = store_resize(s, 0, 0);
                else
                        return r;
                if (r < 0)
                        return r;
        }
}

/* ---- open / close ---- */

static int init_txn(store *s, MDB_txn *txn, void *userdata) {
        MDB_dbi main_dbi;
        MDB_val k = { .mv_size = 6, .mv_data = (void *) "layout" }, v;
        uint32_t version;
        unsigned create = 0;
        int rc;

        rc = mdb_dbi_open(txn, "meta", 0, &s->db_meta);
        if (rc == MDB_NOTFOUND) {
                MDB_stat st;

                /* No meta: only an empty environment is ours to set up. */
                rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
                if (rc == 0)
                        rc = mdb_stat(txn, main_dbi, &st);
                if (rc != 0)
                        return lmdb_status(rc);
                if (st.ms_entries > 0)
                        return -EINVAL;

                create = MDB_CREATE;
                rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->db_meta);
                if (rc != 0)
                        return lmdb_status(rc);
                version = STORE_LAYOUT_VERSION;
                v = (MDB_val) { .mv_size = sizeof version, .mv_data = &version };
                rc = mdb_put(txn, s->db_meta, &k, &v, 0);
                if (rc != 0)
                        return lmdb_status(rc);
        } else if (rc == MDB_INCOMPATIBLE)
                return -EINVAL;
        else if (rc != 0)
                return lmdb_status(rc);
        else {
                rc = mdb_get(txn, s->db_meta, &k, &v);
                if (rc == MDB_NOTFOUND || (rc == 0 && v.mv_size != sizeof version))
                        return -EINVAL;
                if (rc != 0)
                        return lmdb_status(rc);
                memcpy(&version, v.mv_data, sizeof version);
                if (version != STORE_LAYOUT_VERSION)
                        return -EINVAL;
        }

        const struct {
                const char *name;
                unsigned flags;
                MDB_dbi *dbi;
        } dbs[] = {
                { "sessions", 0, &s->db_sessions },
                { "handles", 0, &s->db_handles },
                /* Every value is a 32-byte key: DUPFIXED packs them. */
                { "users", MDB_DUPSORT | MDB_DUPFIXED, &s->db_users },
                { "expiry", 0, &s->db_expiry },
                { "kv", 0, &s->db_kv },
        };
        /* Every store of this layout has had all of them from its first
         * open: one missing from an existing store is damage (its name's
         * record), not a database to create, and a write through the
         * damage could only make it worse. */
        for (size_t i = 0; i < ELEMENTSOF(dbs); i++) {
                rc = mdb_dbi_open(txn, dbs[i].name, dbs[i].flags | create, dbs[i].dbi);
                if (rc == MDB_INCOMPATIBLE)
                        return -EINVAL;
                if (rc == MDB_NOTFOUND)
                        return -EUCLEAN;
                if (rc != 0)
                        return lmdb_status(rc);
        }
        return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* Formats a one-line explanation for the caller of store_open_checked(). */
_printf_(2, 3) static void problem(char **ret_problem, const char *fmt, ...) {
        va_list ap;

        if (!ret_problem || *ret_problem)
                return;
        va_start(ap, fmt);
        if (vasprintf(ret_problem, fmt, ap) < 0)
                *ret_problem = NULL;
        va_end(ap);
}

/* What group and others may never have on the state folder or a file in
 * it: a readable store leaks who is signed in; a writable lock file lets
 * anyone wedge every request. */
static int check_private(const char *path, const struct stat *st, bool dir, char **ret_problem) {
        if (st->st_uid != geteuid()) {
                problem(ret_problem, "%s belongs to uid %u, not to latchd's uid %u: fix it with chown %u %s", path,
                        (unsigned) st->st_uid, (unsigned) geteuid(), (unsigned) geteuid(), path);
                return -EPERM;
        }
        if (st->st_mode & 077) {
                problem(ret_problem, "%s has mode %04o: group and others may have no access to the state; fix it with chmod %s %s",
                        path, (unsigned) (st->st_mode & 07777), dir ? "0700" : "0600", path);
                return -EPERM;
        }
        return 0;
}

static bool is_store_file(const char *name) {
        return streq(name, STORE_FILE_NAME) || streq(name, STORE_FILE_NAME "-lock");
}

/* The state folder: ours and private, and so is every entry in it. The
 * store's two files must be regular files, not links: LMDB opens them by
 * name and would follow a link anywhere (and create its target). */
static int store_check_dir(const char *dir, char **ret_problem) {
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *e;
        struct stat st;
        int r;

        d = opendir(dir);
        if (!d) {
                r = negative_errno();
                problem(ret_problem, "%s: %s", dir, strerror(-r));
                return r;
        }
        if (fstat(dirfd(d), &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        r = check_private(dir, &st, true, ret_problem);
        if (r < 0)
                return r;

        errno = 0;
        while ((e = readdir(d))) {
                _cleanup_free_ char *path = NULL;

                if (streq(e->d_name, ".") || streq(e->d_name, ".."))
                        continue;
                if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
                        path = NULL;
                        return -ENOMEM;
                }
                if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return negative_errno();
                }
                if (S_ISLNK(st.st_mode)) {
                        if (is_store_file(e->d_name)) {
                                problem(ret_problem,
                                        "%s is a symbolic link: latchd does not follow links for its store; put the file itself there (remove the link and restore the file, see \"State: back up and restore\" in docs/OPERATIONS.md)",
                                        path);
                                return -ELOOP;
                        }
                        continue; /* a link's own mode means nothing; keys/ refuses links itself */
                }
                if (is_store_file(e->d_name) && !S_ISREG(st.st_mode)) {
                        problem(ret_problem, "%s is not a regular file", path);
                        return -EINVAL;
                }
                r = check_private(path, &st, S_ISDIR(st.st_mode), ret_problem);
                if (r < 0)
                        return r;
                errno = 0;
        }
        if (errno != 0)
                return negative_errno();
        return 0;
}

/* After mdb_env_open(): the files LMDB opened are the ones checked (no link
 * was swapped in meanwhile), and the data file holds every page its meta
 * page claims. A file cut short would be mapped all the same, and the
 * first read of a page past its end would kill the process with SIGBUS. */
static int store_check_files(store *s, char **ret_problem) {
        _cleanup_free_ char *lock = NULL;
        mdb_filehandle_t fd;
        MDB_envinfo info;
        MDB_stat est;
        struct stat st, lst;
        uint64_t need;
        int r, rc;

        rc = mdb_env_get_fd(s->env, &fd);
        if (rc != 0)
                return lmdb_status(rc);
        if (fstat(fd, &st) < 0 || lstat(s->path, &lst) < 0)
                return negative_errno();
        if (!S_ISREG(lst.st_mode) || st.st_dev != lst.st_dev || st.st_ino != lst.st_ino) {
                problem(ret_problem, "%s changed while it was opened (a link?): not using it", s->path);
                return -ELOOP;
        }
        r = check_private(s->path, &st, false, ret_problem);
        if (r < 0)
                return r;

        if (asprintf(&lock, "%s-lock", s->path) < 0) {
                lock = NULL;
                return -ENOMEM;
        }
        if (lstat(lock, &lst) < 0)
                return negative_errno();
        if (!S_ISREG(lst.st_mode)) {
                problem(ret_problem, "%s is not a regular file (a link?): not using it", lock);
                return -ELOOP;
        }
        r = check_private(lock, &lst, false, ret_problem);
        if (r < 0)
                return r;

        rc = mdb_env_info(s->env, &info);
        if (rc == 0)
                rc = mdb_env_stat(s->env, &est);
        if (rc != 0)
                return lmdb_status(rc);
        need = ((uint64_t) info.me_last_pgno + 1) * est.ms_psize;
        if ((uint64_t) st.st_size < need) {
                problem(ret_problem,
                        "%s is damaged: it is %llu bytes long, but its meta pages say it holds %llu (pages 0 to %llu of %u bytes); it was cut short. Restore it from a backup (see \"State: back up and restore\" in docs/OPERATIONS.md), or move it away to start with no sessions",
                        s->path, (unsigned long long) st.st_size, (unsigned long long) need,
                        (unsigned long long) info.me_last_pgno, est.ms_psize);
                return -EUCLEAN;
        }
        return 0;
}

/* Not thread-safe against other calls on the same handle: the caller makes
 * sure nothing else uses it any more. */
static int kv_flush(store *s, uint64_t upto);
static int store_write_kv(store *s, uint64_t upto, write_fn fn, void *userdata);
static uint64_t kv_batch_seq(store *s);
static void kv_pending_free_all(store *s);

void store_close(store *s) {
        if (!s)
                return;
        /* Slides not yet written: write them now, so that a clean stop
         * keeps every idle expiry a validate reported. */
        if (s->env && s->slide_locks_initialized && store_session_slides_pending(s) > 0)
                (void) store_session_flush_slides(s, NULL);
        /* Likewise key-value updates whose write failed (a full disk) and
         * that were not taken back (a batch's): they were never
         * acknowledged as durable, but they still count. */
        if (s->env && s->kv_locks_initialized && s->kv_pending)
                (void) kv_flush(s, s->kv_seq);
        store_fault_forget(s);
        pool_drain(s);
        if (s->env)
                mdb_env_close(s->env);
        if (s->slide_locks_initialized) {
                pthread_mutex_destroy(&s->slide_lock);
                pthread_mutex_destroy(&s->flush_lock);
                slide_set_wipe(&s->pending);
                slide_set_wipe(&s->flushing);
        }
        if (s->kv_locks_initialized) {
                kv_pending_free_all(s);
                pthread_mutex_destroy(&s->kv_lock);
                pthread_mutex_destroy(&s->kv_flush_lock);
        }
        if (s->pool_lock_initialized)
                pthread_mutex_destroy(&s->pool_lock);
        if (s->map_lock_initialized)
                pthread_rwlock_destroy(&s->map_lock);
        free(s->path);
        free(s);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(store *, store_close);

static int store_env_open_status(int rc) {
        switch (rc) {
        case MDB_INVALID:
        case MDB_VERSION_MISMATCH:
        case MDB_INCOMPATIBLE:
                return -EINVAL;
        case EACCES:
        case EPERM:
                return -EPERM;
        default:
                return lmdb_status(rc);
        }
}

/* ---- the open probe ---- */

/* Exit statuses of the probe child. */
enum {
        PROBE_READ = 0,    /* what open reads is readable */
        PROBE_UNSURE = 1,  /* it could not tell: open itself will say */
        PROBE_DAMAGED = 2, /* LMDB found the pages inconsistent */
};

static void probe_assert(MDB_env *env, const char *msg) {
        _exit(PROBE_DAMAGED);
}

static int probe_child(const char *path) {
        static const char *const names[] = { "meta", "sessions", "handles", "users", "expiry", "kv" };
        MDB_env *env;
        MDB_txn *txn;
        MDB_envinfo info;
        MDB_stat est;
        MDB_dbi dbi;
        struct stat st;

        /* Not the parent's handlers: a fault here is the answer. */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);

        if (mdb_env_create(&env) != 0 || mdb_env_set_maxdbs(env, 8) != 0 ||
            mdb_env_set_maxreaders(env, STORE_MAX_READERS) != 0)
                return PROBE_UNSURE;
        (void) mdb_env_set_assert(env, probe_assert);
        if (mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOTLS | MDB_RDONLY, 0600) != 0)
                return PROBE_UNSURE;
        /* A file cut short would fault too: store_check_files() names that. */
        if (stat(path, &st) < 0 || mdb_env_info(env, &info) != 0 || mdb_env_stat(env, &est) != 0 ||
            (uint64_t) st.st_size < ((uint64_t) info.me_last_pgno + 1) * est.ms_psize)
                return PROBE_UNSURE;
        if (mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) != 0)
                return PROBE_UNSURE;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                int rc = mdb_dbi_open(txn, names[i], 0, &dbi);

                if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
                        return PROBE_DAMAGED;
                if (rc != 0 && rc != MDB_NOTFOUND)
                        return PROBE_UNSURE;
                if (rc == 0 && i == 0) {
                        /* The layout version, as init_txn() reads it. */
                        MDB_val k = { .mv_size = 6, .mv_data = (void *) "layout" }, v;

                        rc = mdb_get(txn, dbi, &k, &v);
                        if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND)
                                return PROBE_DAMAGED;
                }
        }
        return PROBE_READ; /* and _exit: nothing to close */
}

/* LMDB trusts the pages it reads: in a damaged file, the records that
 * open reads (the names of the databases, the layout version) can send it
 * past the map (SIGSEGV, SIGBUS) or past a buffer (abort). Once the store
 * is open, store_catch_faults() turns such faults into a logged exit; open
 * itself does the same reads first in a child, with an environment of the
 * child's own (no LMDB handle crosses the fork), and a child killed by a
 * fault means the file is damaged. The reader slot its _exit leaves is
 * cleared by the mdb_reader_check() of the open that follows. 0, -EUCLEAN,
 * or a negative errno. */
static int store_probe(const char *path) {
        int status;
        pid_t pid;

        pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0)
                _exit(probe_child(path));
        while (waitpid(pid, &status, 0) < 0) {
                if (errno == ECHILD)
                        return 0; /* SIGCHLD ignored (inherited): reaped unseen, open itself will say */
                if (errno != EINTR)
                        return negative_errno();
        }
        if (WIFSIGNALED(status) &&
            (WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS || WTERMSIG(status) == SIGABRT))
                return -EUCLEAN;
        if (WIFEXITED(status) && WEXITSTATUS(status) == PROBE_DAMAGED)
                return -EUCLEAN;
        return 0;
}

int store_open_checked(const char *dir, const struct store_options *opts, store **ret, char **ret_problem) {
        _cleanup_(store_closep) store *s = NULL;
        _cleanup_free_ char *path = NULL;
        pthread_rwlockattr_t attr;
        struct stat st;
        bool existing;
        size_t map_size = STORE_DEFAULT_MAP_SIZE;
        unsigned flags = MDB_NOSUBDIR | MDB_NOTLS;
        int r, rc;

        assert_return(dir, -EINVAL);
        assert_return(ret, -EINVAL);

        if (opts) {
                if (opts->initial_map_size > 0)
                        map_size = opts->initial_map_size;
                if (opts->no_sync)
                        flags |= MDB_NOSYNC;
        }

        if (ret_problem)
                *ret_problem = NULL;

        r = store_check_dir(dir, ret_problem);
        if (r < 0)
                return r;

        if (asprintf(&path, "%s/%s", dir, STORE_FILE_NAME) < 0)
                return -ENOMEM;

        s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        randombytes_buf(s->revocation_key, sizeof s->revocation_key);

        if (pthread_rwlockattr_init(&attr) != 0)
                return -ENOMEM;
        pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
        rc = pthread_rwlock_init(&s->map_lock, &attr);
        pthread_rwlockattr_destroy(&attr);
        if (rc != 0)
                return -rc;
        s->map_lock_initialized = true;
        rc = pthread_mutex_init(&s->pool_lock, NULL);
        if (rc != 0)
                return -rc;
        s->pool_lock_initialized = true;
        rc = pthread_mutex_init(&s->slide_lock, NULL);
        if (rc != 0)
                return -rc;
        rc = pthread_mutex_init(&s->flush_lock, NULL);
        if (rc != 0) {
                pthread_mutex_destroy(&s->slide_lock);
                return -rc;
        }
        s->slide_locks_initialized = true;
        rc = pthread_mutex_init(&s->kv_lock, NULL);
        if (rc != 0)
                return -rc;
        rc = pthread_mutex_init(&s->kv_flush_lock, NULL);
        if (rc != 0) {
                pthread_mutex_destroy(&s->kv_lock);
                return -rc;
        }
        s->kv_locks_initialized = true;
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;

        /* Before this process has an environment of its own: the probe forks. */
        existing = lstat(path, &st) == 0 && st.st_size > 0;
        if (existing && S_ISREG(st.st_mode)) {
                r = store_probe(path);
                if (r == -EUCLEAN)
                        problem(ret_problem,
                                "%s is damaged: reading the names of its databases and its layout version failed (LMDB found its pages inconsistent). Restore it from a backup (see \"State: back up and restore\" in docs/OPERATIONS.md), or move it away to start with no sessions",
                                path);
                if (r < 0)
                        return r;
        }

        rc = mdb_env_create(&s->env);
        if (rc != 0)
                return lmdb_status(rc);
        rc = mdb_env_set_maxdbs(s->env, 8);
        if (rc == 0)
                rc = mdb_env_set_maxreaders(s->env, STORE_MAX_READERS);
        if (rc != 0)
                return lmdb_status(rc);

        /* A new file starts at the initial size. An existing one keeps the
         * size it grew to (LMDB takes it from the file when none is set
         * before opening), but never less than the initial size. */
        if (!existing) {
                rc = mdb_env_set_mapsize(s->env, map_size);
                if (rc != 0)
                        return lmdb_status(rc);
        }

        /* 0600: session records are nobody else's business. */
        rc = mdb_env_open(s->env, path, flags, 0600);
        if (rc != 0) {
                r = store_env_open_status(rc);
                if (r == -EINVAL)
                        problem(ret_problem,
                                "%s is not a latch session store, or is damaged: restore it from a backup (see \"State: back up and restore\" in docs/OPERATIONS.md), or move it away to start with no sessions",
                                path);
                return r;
        }

        /* LMDB 0.9 opens the lock file and its sync fd O_CLOEXEC, but not
         * the main data fd: mark it here, or every exec'd child (plugin
         * workers) would inherit an fd of the session database. */
        mdb_filehandle_t fd;
        rc = mdb_env_get_fd(s->env, &fd);
        if (rc != 0)
                return lmdb_status(rc);
        int fdflags = fcntl(fd, F_GETFD);
        if (fdflags < 0 || fcntl(fd, F_SETFD, fdflags | FD_CLOEXEC) < 0)
                return -EIO;

        /* Before the first transaction reads a page. */
        r = store_check_files(s, ret_problem);
        if (r < 0)
                return r;

        r = store_refresh_map_size(s);
        if (r < 0)
                return r;
        if (s->map_size < map_size) {
                /* No transaction is active yet: resizing is allowed. */
                rc = mdb_env_set_mapsize(s->env, map_size);
                if (rc != 0)
                        return lmdb_status(rc);
                r = store_refresh_map_size(s);
                if (r < 0)
                        return r;
        }

        int dead = 0;
        if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
                atomic_fetch_add(&s->readers_cleared, (uint64_t) dead);

        r = store_write(s, init_txn, NULL);
        if (r == -EINVAL || r == -EUCLEAN)
                problem(ret_problem,
                        "%s is not a latch session store of layout version %u, or is damaged: restore it from a backup (see \"State: back up and restore\" in docs/OPERATIONS.md), or move it away to start with no sessions",
                        path, STORE_LAYOUT_VERSION);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

int store_open_with_options(const char *dir, const struct store_options *opts, store **ret) {
        return store_open_checked(dir, opts, ret, NULL);
}

int store_open(const char *dir, store **ret) {
        return store_open_with_options(dir, NULL, ret);
}

/* ---- sessions ---- */

struct create_args {
        const uint8_t *key;
        const struct session_info *info;
        const char *claims;
        size_t user_len, service_len, claims_len;
        uint64_t mark; /* STORE_NO_MARK: no revocation check */
        uint64_t own;  /* the number of the caller's own revocation, or 0 */
};

static uint64_t user_hash(store *s, const char *user, size_t len) {
        uint8_t h[crypto_shorthash_BYTES];
        uint64_t v;

        crypto_shorthash(h, (const unsigned char *) user, len, s->revocation_key);
        memcpy(&v, h, sizeof v);
        return v;
}

/* In a write transaction: the next revocation, of `user`. */
static uint64_t revocation_record(store *s, const char *user, size_t len) {
        uint64_t seq = atomic_load(&s->revocation_seq) + 1;
        size_t slot = seq % REVOCATIONS_MAX;

        s->revocations[slot].seq = seq;
        s->revocations[slot].user_hash = user_hash(s, user, len);
        atomic_store(&s->revocation_seq, seq);
        return seq;
}

/* In a write transaction: was `user` revoked after `mark`, by any
 * revocation but number `own` (0: none)? When more revocations than are
 * remembered came since, it may have been: yes. */
static bool revoked_since(store *s, const char *user, size_t len, uint64_t mark, uint64_t own) {
        uint64_t last = atomic_load(&s->revocation_seq), h;

        if (last <= mark)
                return false;
        if (last - mark > REVOCATIONS_MAX)
                return true;
        h = user_hash(s, user, len);
        for (uint64_t q = mark + 1; q <= last; q++)
                if (q != own && s->revocations[q % REVOCATIONS_MAX].user_hash == h)
                        return true;
        return false;
}

uint64_t store_revocation_mark(store *s) {
        assert_return(s, 0);
        return atomic_load(&s->revocation_seq);
}

static int create_txn(store *s, MDB_txn *txn, void *userdata) {
        const struct create_args *a = userdata;
        uint8_t ekey[EXPIRY_KEY_SIZE];
        MDB_val k = { .mv_size = STORE_KEY_SIZE, .mv_data = (void *) a->key };
        MDB_val v = { .mv_size = record_size(a->user_len, a->service_len, a->claims_len) };
        MDB_val hk = { .mv_size = STORE_HANDLE_LEN, .mv_data = (void *) a->info->handle };
        MDB_val uk = { .mv_size = a->user_len, .mv_data = (void *) a->info->user };
        MDB_val ek = { .mv_size = sizeof ekey, .mv_data = ekey };
        MDB_val empty = { .mv_size = 0, .mv_data = (void *) "" };
        int rc;

        if (a->mark != STORE_NO_MARK && revoked_since(s, a->info->user, a->user_len, a->mark, a->own))
                return -ESTALE;

        /* Reserve the record in place, so it is encoded straight into the
         * dirty page without a temporary buffer. */
        rc = mdb_put(txn, s->db_sessions, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
        if (rc != 0)
                return lmdb_status(rc);
        record_encode(v.mv_data, a->info, a->claims, a->user_len, a->service_len, a->claims_len);

        rc = mdb_put(txn, s->db_handles, &hk, &k, MDB_NOOVERWRITE);
        if (rc != 0)
                return lmdb_status(rc);

        rc = mdb_put(txn, s->db_users, &uk, &k, MDB_NODUPDATA);
        if (rc != 0)
                return lmdb_status(rc);

        expiry_key(ekey, session_idle_expires_at(a->info), a->key);
        rc = mdb_put(txn, s->db_expiry, &ek, &empty, MDB_NOOVERWRITE);
        if (rc != 0)
                return lmdb_status(rc);
        return 0;
}

int store_session_create(store *s, const uint8_t key[STORE_KEY_SIZE], const struct session_info *info) {
        return store_session_create_since(s, key, info, STORE_NO_MARK, 0);
}

int store_session_create_since(store *s, const uint8_t key[STORE_KEY_SIZE], const struct session_info *info,
                               uint64_t mark, uint64_t own) {
        struct create_args a = { .key = key, .info = info, .mark = mark, .own = own };

        assert_return(s, -EINVAL);
        assert_return(key, -EINVAL);
        assert_return(info, -EINVAL);
        assert_return(info->user && info->service, -EINVAL);
        assert_return(strnlen(info->handle, STORE_HANDLE_LEN + 1) == STORE_HANDLE_LEN, -EINVAL);
        assert_return(info->idle_timeout >= 0, -EINVAL);

        a.claims = info->claims_json ?: "{}";
        a.user_len = strlen(info->user);
        a.service_len = strlen(info->service);
        a.claims_len = strlen(a.claims);
        /* The user is a key of a DUPSORT database: LMDB allows 511 bytes. */
        assert_return(a.user_len > 0 && a.user_len <= USER_MAX, -EINVAL);
        assert_return(a.service_len <= SERVICE_MAX, -EINVAL);
        assert_return(a.claims_len <= CLAIMS_MAX, -EINVAL);

        /* A login's key-value updates (a totp step) go in the same commit. */
        return store_write_kv(s, kv_batch_seq(s), create_txn, &a);
}

/* Looks up a session in any transaction; *ret borrows from the page. */
static int session_lookup(store *s, MDB_txn *txn, const uint8_t *key, struct session_info *ret) {
        MDB_val k = { .mv_size = STORE_KEY_SIZE, .mv_data = (void *) key }, v;
        int rc;

        rc = mdb_get(txn, s->db_sessions, &k, &v);
        if (rc != 0)
                return lmdb_status(rc);
        return record_decode(&v, ret);
}

/* Removes a session and every index entry of it. `key` must not point into
 * the database (it is used after deletions). */
static int session_remove(store *s, MDB_txn *txn, const uint8_t key[STORE_KEY_SIZE]) {
        struct session_info info;
        char handle[STORE_HANDLE_LEN + 1], user[USER_MAX + 1];
        uint8_t ekey[EXPIRY_KEY_SIZE];
        size_t user_len;
        int r, rc;

        r = session_lookup(s, txn, key, &info);
        if (r < 0)
                return r;

        /* Copy what the index deletions need before the page changes. */
        memcpy(handle, info.handle, sizeof handle);
        user_len = strlen(info.user);
        if (user_len > USER_MAX)
                return -EUCLEAN;
        memcpy(user, info.user, user_len + 1);
        expiry_key(ekey, session_idle_expires_at(&info), key);

        MDB_val k = { .mv_size = STORE_KEY_SIZE, .mv_data = (void *) key };
        MDB_val hk = { .mv_size = STORE_HANDLE_LEN, .mv_data = handle };
        MDB_val uk = { .mv_size = user_len, .mv_data = user };
        MDB_val ek = { .mv_size = sizeof ekey, .mv_data = ekey };

        rc = mdb_del(txn, s->db_sessions, &k, NULL);
        if (rc != 0)
                return lmdb_status(rc);

        /* A missing index entry is tolerated here (the session goes all the
         * same); store_check_consistency() is the place that reports it. */
        rc = mdb_del(txn, s->db_handles, &hk, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
                return lmdb_status(rc);
        rc = mdb_del(txn, s->db_users, &uk, &k);
        if (rc != 0 && rc != MDB_NOTFOUND)
                return lmdb_status(rc);
        rc = mdb_del(txn, s->db_expiry, &ek, NULL);
        if (rc != 0 && rc != MDB_NOTFOUND)
                return lmdb_status(rc);
        return 0;
}

/* Calls fn on the session at `key` in `txn`, its recorded slide applied;
 * -ENOENT when there is none or it is no longer live at `now`. */
static int session_get_txn(store *s, MDB_txn *txn, const uint8_t key[STORE_KEY_SIZE], int64_t now, session_fn fn,
                           void *userdata) {
        struct session_info info;
        int r;

        r = session_lookup(s, txn, key, &info);
        if (r != 0)
                return r;
        slide_apply(s, key, &info);
        if (!session_is_live(&info, now))
                return -ENOENT;
        return callback(fn, userdata, &info);
}

int store_session_get(store *s, const uint8_t key[STORE_KEY_SIZE], int64_t now, session_fn fn, void *userdata) {
        MDB_txn *txn;
        int r;

        assert_return(s, -EINVAL);
        assert_return(key, -EINVAL);
        assert_return(fn, -EINVAL);

        r = read_begin(s, &txn);
        if (r < 0)
                return r;

        r = session_get_txn(s, txn, key, now, fn, userdata);

        read_end(s, txn);
        return store_result(s, r);
}

static int handle_lookup(store *s, MDB_txn *txn, const char *handle, uint8_t ret_key[STORE_KEY_SIZE]) {
        MDB_val hk = { .mv_size = STORE_HANDLE_LEN, .mv_data = (void *) handle }, v;
        int rc;

        rc = mdb_get(txn, s->db_handles, &hk, &v);
        if (rc != 0)
                return lmdb_status(rc);
        if (v.mv_size != STORE_KEY_SIZE)
                return -EUCLEAN;
        memcpy(ret_key, v.mv_data, STORE_KEY_SIZE);
        return 0;
}

static bool handle_valid(const char *handle) {
        return handle && strnlen(handle, STORE_HANDLE_LEN + 1) == STORE_HANDLE_LEN;
}

int store_session_get_by_handle(store *s, const char *handle, int64_t now, session_fn fn, void *userdata) {
        uint8_t key[STORE_KEY_SIZE];
        MDB_txn *txn;
        int r;

        assert_return(s, -EINVAL);
        assert_return(fn, -EINVAL);
        assert_return(handle, -EINVAL);
        if (!handle_valid(handle))
                return -ENOENT;

        r = read_begin(s, &txn);
        if (r < 0)
                return r;

        r = handle_lookup(s, txn, handle, key);
        if (r == 0)
                r = session_get_txn(s, txn, key, now, fn, userdata);

        read_end(s, txn);
        return store_result(s, r);
}

struct touch_args {
        const uint8_t *key;
        int64_t now;
        /* A slide recorded while the session was live (store_session_slide()):
         * it applies even if the record's own idle expiry passed since. */
        bool slide;
};

static int touch_txn(store *s, MDB_txn *txn, void *userdata) {
        const struct touch_args *a = userdata;
        struct session_info info;
        uint8_t old_ekey[EXPIRY_KEY_SIZE], new_ekey[EXPIRY_KEY_SIZE];
        uint8_t stackbuf[512];
        _cleanup_free_ uint8_t *heapbuf = NULL;
        uint8_t *buf = stackbuf;
        int64_t old_exp;
        MDB_val k = { .mv_size = STORE_KEY_SIZE, .mv_data = (void *) a->key }, v;
        int rc;

        rc = mdb_get(txn, s->db_sessions, &k, &v);
        if (rc != 0)
                return lmdb_status(rc);
        rc = record_decode(&v, &info);
        if (rc < 0)
                return rc;
        if (a->slide ? info.expires_at <= a->now : !session_is_live(&info, a->now))
                return -ENOENT;
        if (a->now <= info.last_seen_at)
                return 0; /* never move backwards */

        old_exp = session_idle_expires_at(&info);
        expiry_key(old_ekey, old_exp, a->key);
        info.last_seen_at = a->now;
        expiry_key(new_ekey, session_idle_expires_at(&info), a->key);

        /* The page under v changes on put: work on a copy. */
        if (v.mv_size > sizeof stackbuf) {
                heapbuf = malloc(v.mv_size);
                if (!heapbuf)
                        return -ENOMEM;
                buf = heapbuf;
        }
        memcpy(buf, v.mv_data, v.mv_size);
        put_i64(buf + 22, a->now);
        v.mv_data = buf;

        rc = mdb_put(txn, s->db_sessions, &k, &v, 0);
        if (rc != 0)
                return lmdb_status(rc);

        if (memcmp(old_ekey, new_ekey, sizeof old_ekey) != 0) {
                MDB_val ok = { .mv_size = sizeof old_ekey, .mv_data = old_ekey };
                MDB_val nk = { .mv_size = sizeof new_ekey, .mv_data = new_ekey };
                MDB_val empty = { .mv_size = 0, .mv_data = (void *) "" };

                rc = mdb_del(txn, s->db_expiry, &ok, NULL);
                if (rc != 0 && rc != MDB_NOTFOUND)
                        return lmdb_status(rc);
                rc = mdb_put(txn, s->db_expiry, &nk, &empty, 0);
                if (rc != 0)
                        return lmdb_status(rc);
        }
        return 0;
}

int store_session_touch(store *s, const uint8_t key[STORE_KEY_SIZE], int64_t now) {
        struct touch_args a = { .key = key, .now = now };

        assert_return(s, -EINVAL);
        assert_return(key, -EINVAL);

        return store_write(s, touch_txn, &a);
}

struct touch_many_args {
        const uint8_t (*keys)[STORE_KEY_SIZE];
        const int64_t *nows;
        size_t n;
};

static int touch_many_txn(store *s, MDB_txn *txn, void *userdata) {
        const struct touch_many_args *a = userdata;

        for (size_t i = 0; i < a->n; i++) {
                struct touch_args t = { .key = a->keys[i], .now = a->nows[i] };
                int r = touch_txn(s, txn, &t);
                /* A session that went meanwhile has nothing to slide. */
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        return 0;
}

int store_session_touch_many(store *s, const uint8_t (*keys)[STORE_KEY_SIZE], const int64_t *nows, size_t n) {
        struct touch_many_args a = { .keys = keys, .nows = nows, .n = n };

        assert_return(s, -EINVAL);
        assert_return(keys || n == 0, -EINVAL);
        assert_return(nows || n == 0, -EINVAL);

        if (n == 0)
                return 0;
        return store_write(s, touch_many_txn, &a);
}

struct slide_chunk_args {
        const struct slide_set *set;
        size_t start, end, written;
};

/* Writes up to SLIDE_CHUNK slides from set->slots[start]: a bound on the
 * pages one transaction dirties, however many slides wait. It may run more
 * than once (map growth): a slide written twice is written once. */
static int slide_chunk_txn(store *s, MDB_txn *txn, void *userdata) {
        struct slide_chunk_args *a = userdata;
        size_t i, done = 0;

        for (i = a->start; i < a->set->cap && done < SLIDE_CHUNK; i++) {
                const struct slide *sl = &a->set->slots[i];
                struct touch_args t = { .key = sl->key, .now = sl->now, .slide = true };
                int r;

                if (sl->now == INT64_MIN)
                        continue;
                r = touch_txn(s, txn, &t);
                /* A session that went meanwhile has nothing to slide. */
                if (r < 0 && r != -ENOENT)
                        return r;
                done++;
        }
        a->end = i;
        a->written = done;
        return 0;
}

int store_session_flush_slides(store *s, size_t *ret_written) {
        size_t i = 0, written = 0;
        int r = 0;

        assert_return(s, -EINVAL);

        pthread_mutex_lock(&s->flush_lock);

        /* Readers keep seeing the slides in `flushing` until they are
         * written; new ones gather in `pending` meanwhile. */
        pthread_mutex_lock(&s->slide_lock);
        s->flushing = s->pending;
        s->pending = (struct slide_set) {};
        pthread_mutex_unlock(&s->slide_lock);

        while (i < s->flushing.cap) {
                struct slide_chunk_args a = { .set = &s->flushing, .start = i };

                r = store_write(s, slide_chunk_txn, &a);
                if (r < 0)
                        break;
                i = a.end;
                written += a.written;
        }

        pthread_mutex_lock(&s->slide_lock);
        if (r < 0)
                /* Not written: back to pending for the next flush (merged
                 * with any newer slide of the same session). */
                for (; i < s->flushing.cap; i++)
                        if (s->flushing.slots[i].now != INT64_MIN)
                                (void) slide_set_put(&s->pending, s->flushing.slots[i].key,
                                                     s->flushing.slots[i].now);
        slide_set_wipe(&s->flushing);
        atomic_store(&s->n_slides, s->pending.n);
        pthread_mutex_unlock(&s->slide_lock);

        pthread_mutex_unlock(&s->flush_lock);

        if (ret_written)
                *ret_written = written;
        return r;
}

static int delete_txn(store *s, MDB_txn *txn, void *userdata) {
        return session_remove(s, txn, userdata);
}

int store_session_delete(store *s, const uint8_t key[STORE_KEY_SIZE]) {
        uint8_t k[STORE_KEY_SIZE];

        assert_return(s, -EINVAL);
        assert_return(key, -EINVAL);

        memcpy(k, key, sizeof k);
        return store_write(s, delete_txn, k);
}

struct revoke_args {
        const char *what;
        const uint8_t *keep; /* revoke_user_txn: the session to leave, or NULL */
        size_t count;
        uint64_t mark; /* revoke_user_txn: the revocation's number */
};

static int revoke_handle_txn(store *s, MDB_txn *txn, void *userdata) {
        struct revoke_args *a = userdata;
        uint8_t key[STORE_KEY_SIZE];
        int r;

        a->count = 0;
        r = handle_lookup(s, txn, a->what, key);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = session_remove(s, txn, key);
        if (r == -ENOENT) {
                /* A dangling handle entry: drop it. */
                MDB_val hk = { .mv_size = STORE_HANDLE_LEN, .mv_data = (void *) a->what };
                return lmdb_status(mdb_del(txn, s->db_handles, &hk, NULL));
        }
        if (r < 0)
                return r;
        a->count = 1;
        return 0;
}

int store_session_revoke_handle(store *s, const char *handle, size_t *ret_count) {
        struct revoke_args a = { .what = handle };
        int r;

        assert_return(s, -EINVAL);
        assert_return(handle, -EINVAL);

        if (handle_valid(handle)) {
                r = store_write(s, revoke_handle_txn, &a);
                if (r < 0)
                        return r;
        }
        if (ret_count)
                *ret_count = a.count;
        return 0;
}

/* The first entry of user index key `uk` that is not `keep` (NULL: the
 * first), in *ret_v (borrowed from txn). An LMDB status. */
static int first_user_entry(store *s, MDB_txn *txn, MDB_val *uk, const uint8_t *keep, MDB_val *ret_v) {
        MDB_cursor *c;
        MDB_val k = *uk;
        int rc;

        if (!keep)
                return mdb_get(txn, s->db_users, uk, ret_v);
        rc = mdb_cursor_open(txn, s->db_users, &c);
        if (rc != 0)
                return rc;
        rc = mdb_cursor_get(c, &k, ret_v, MDB_SET_KEY);
        if (rc == 0 && ret_v->mv_size == STORE_KEY_SIZE && memcmp(ret_v->mv_data, keep, STORE_KEY_SIZE) == 0)
                rc = mdb_cursor_get(c, &k, ret_v, MDB_NEXT_DUP);
        mdb_cursor_close(c);
        return rc;
}

static int revoke_user_txn(store *s, MDB_txn *txn, void *userdata) {
        struct revoke_args *a = userdata;
        MDB_val uk = { .mv_size = strlen(a->what), .mv_data = (void *) a->what }, v;
        uint8_t key[STORE_KEY_SIZE];
        int r, rc;

        /* First, so that a login whose credentials were checked before
         * cannot make a session after (should this transaction fail, the
         * number stays: such a login is refused for nothing, never let
         * through). */
        a->mark = revocation_record(s, a->what, uk.mv_size);
        a->count = 0;
        for (;;) {
                /* The first duplicate each time (the second when the first
                 * is the one kept: duplicates are sorted, so it stays
                 * first): session_remove() deletes the entry we just read. */
                rc = first_user_entry(s, txn, &uk, a->keep, &v);
                if (rc == MDB_NOTFOUND)
                        return 0;
                if (rc != 0)
                        return lmdb_status(rc);
                if (v.mv_size != STORE_KEY_SIZE)
                        return -EUCLEAN;
                memcpy(key, v.mv_data, sizeof key);

                r = session_remove(s, txn, key);
                if (r == -ENOENT) {
                        MDB_val kv = { .mv_size = STORE_KEY_SIZE, .mv_data = key };
                        rc = mdb_del(txn, s->db_users, &uk, &kv);
                        if (rc != 0)
                                return lmdb_status(rc);
                        continue;
                }
                if (r < 0)
                        return r;
                /* Should the record name another user (a damaged index),
                 * the entry we followed is still there: drop it, or this
                 * loop would never end. */
                MDB_val kv = { .mv_size = STORE_KEY_SIZE, .mv_data = key };
                rc = mdb_del(txn, s->db_users, &uk, &kv);
                if (rc != 0 && rc != MDB_NOTFOUND)
                        return lmdb_status(rc);
                a->count++;
        }
}

int store_session_revoke_user(store *s, const char *user, size_t *ret_count) {
        return store_session_revoke_user_except(s, user, NULL, ret_count, NULL);
}

int store_session_revoke_user_except(store *s, const char *user, const uint8_t keep[STORE_KEY_SIZE],
                                     size_t *ret_count, uint64_t *ret_mark) {
        struct revoke_args a = { .what = user, .keep = keep };
        size_t len;
        int r;

        assert_return(s, -EINVAL);
        assert_return(user, -EINVAL);

        len = strlen(user);
        if (len > 0 && len <= USER_MAX) {
                r = store_write(s, revoke_user_txn, &a);
                if (r < 0)
                        return r;
        }
        if (ret_count)
                *ret_count = a.count;
        if (ret_mark)
                *ret_mark = a.mark;
        return 0;
}

static int list_one(const struct session_info *info, const char *service, int64_t now, session_fn fn,
                    void *userdata) {
        if (!session_is_live(info, now))
                return 0;
        if (service && !streq(service, info->service))
                return 0;
        return callback(fn, userdata, info);
}

int store_session_list(store *s, const char *user, const char *service, int64_t now, session_fn fn,
                       void *userdata) {
        MDB_cursor *c = NULL;
        MDB_txn *txn;
        MDB_val k, v;
        int r, rc;

        assert_return(s, -EINVAL);
        assert_return(fn, -EINVAL);

        if (user && (strlen(user) == 0 || strlen(user) > USER_MAX))
                return 0;

        r = read_begin(s, &txn);
        if (r < 0)
                return r;

        rc = mdb_cursor_open(txn, user ? s->db_users : s->db_sessions, &c);
        if (rc != 0) {
                r = lmdb_status(rc);
                goto finish;
        }

        if (user) {
                k = (MDB_val) { .mv_size = strlen(user), .mv_data = (void *) user };
                for (rc = mdb_cursor_get(c, &k, &v, MDB_SET); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
                        struct session_info info;

                        if (v.mv_size != STORE_KEY_SIZE) {
                                r = -EUCLEAN;
                                goto finish;
                        }
                        r = session_lookup(s, txn, v.mv_data, &info);
                        if (r == -ENOENT)
                                continue;
                        if (r < 0)
                                goto finish;
                        slide_apply(s, v.mv_data, &info);
                        r = list_one(&info, service, now, fn, userdata);
                        if (r != 0)
                                goto finish;
                }
        } else {
                for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
                        struct session_info info;

                        if (k.mv_size != STORE_KEY_SIZE) {
                                r = -EUCLEAN;
                                goto finish;
                        }
                        r = record_decode(&v, &info);
                        if (r < 0)
                                goto finish;
                        slide_apply(s, k.mv_data, &info);
                        r = list_one(&info, service, now, fn, userdata);
                        if (r != 0)
                                goto finish;
                }
        }
        r = rc == MDB_NOTFOUND ? 0 : lmdb_status(rc);

finish:
        if (c)
                mdb_cursor_close(c);
        read_end(s, txn);
        return store_result(s, r);
}

struct sweep_args {
        int64_t now;
        size_t batch;
        size_t removed;
};

static int sweep_txn(store *s, MDB_txn *txn, void *userdata) {
        struct sweep_args *a = userdata;
        MDB_cursor *c;
        int r = 0, rc;

        a->removed = 0;
        rc = mdb_cursor_open(txn, s->db_expiry, &c);
        if (rc != 0)
                return lmdb_status(rc);

        while (a->removed < a->batch) {
                uint8_t key[STORE_KEY_SIZE];
                MDB_val k, v;

                /* Always the first entry: the previous one was deleted. */
                rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
                if (rc == MDB_NOTFOUND)
                        break;
                if (rc != 0) {
                        r = lmdb_status(rc);
                        break;
                }
                if (k.mv_size != EXPIRY_KEY_SIZE) {
                        r = -EUCLEAN;
                        break;
                }
                if (expiry_key_time(k.mv_data) > a->now)
                        break;
                memcpy(key, (const uint8_t *) k.mv_data + 8, sizeof key);

                /* A slide not yet written may keep it alive: write that
                 * slide now (its expiry entry moves past `now`) rather
                 * than delete a session a validate reported live. */
                int64_t t = slide_get(s, key);
                if (t != INT64_MIN) {
                        struct session_info info;

                        r = session_lookup(s, txn, key, &info);
                        if (r == 0 && t > info.last_seen_at) {
                                info.last_seen_at = t;
                                if (session_is_live(&info, a->now)) {
                                        struct touch_args ta = { .key = key, .now = t, .slide = true };

                                        r = touch_txn(s, txn, &ta);
                                        if (r < 0)
                                                break;
                                        continue;
                                }
                        }
                        if (r < 0 && r != -ENOENT)
                                break;
                }

                r = session_remove(s, txn, key);
                if (r == -ENOENT) {
                        /* An expiry entry without its session: drop it so
                         * the sweep cannot stall on it. */
                        rc = mdb_cursor_del(c, 0);
                        r = lmdb_status(rc);
                }
                if (r < 0)
                        break;
                a->removed++;
        }

        mdb_cursor_close(c);
        return r;
}

int store_sweep(store *s, int64_t now, size_t batch, size_t *ret_removed) {
        struct sweep_args a = { .now = now, .batch = batch };
        int dead = 0, r;

        assert_return(s, -EINVAL);

        /* Slots of crashed readers would pin old pages forever. */
        if (mdb_reader_check(s->env, &dead) == 0 && dead > 0)
                atomic_fetch_add(&s->readers_cleared, (uint64_t) dead);

        if (batch > 0) {
                r = store_write(s, sweep_txn, &a);
                if (r < 0)
                        return r;
        }
        if (ret_removed)
                *ret_removed = a.removed;
        return 0;
}

int store_get_stats(store *s, struct store_stats *ret) {
        MDB_envinfo info;
        MDB_stat st, est;
        MDB_txn *txn;
        int r, rc;

        assert_return(s, -EINVAL);
        assert_return(ret, -EINVAL);

        r = read_begin(s, &txn);
        if (r < 0)
                return r;
        rc = mdb_stat(txn, s->db_sessions, &st);
        if (rc == 0)
                rc = mdb_env_info(s->env, &info);
        if (rc == 0)
                rc = mdb_env_stat(s->env, &est);
        read_end(s, txn);
        if (rc != 0)
                return lmdb_status(rc);

        *ret = (struct store_stats) {
                .sessions = st.ms_entries,
                .map_size = info.me_mapsize,
                .used_bytes = ((uint64_t) info.me_last_pgno + 1) * est.ms_psize,
                .readers_cleared = atomic_load(&s->readers_cleared),
        };
        return 0;
}

/* ---- consistency ---- */

int store_check_consistency(store *s) {
        MDB_cursor *c = NULL, *uc = NULL;
        MDB_stat st_s, st_h, st_u, st_e;
        MDB_txn *txn;
        MDB_val k, v;
        int r = 0, rc;

        assert_return(s, -EINVAL);

        r = read_begin(s, &txn);
        if (r < 0)
                return r;

        rc = mdb_cursor_open(txn, s->db_sessions, &c);
        if (rc == 0)
                rc = mdb_cursor_open(txn, s->db_users, &uc);
        if (rc != 0) {
                r = lmdb_status(rc);
                goto finish;
        }

        /* Every record decodes and has its three index entries; with equal
         * entry counts below (each record's entries being distinct), no
         * index holds anything else. */
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
                struct session_info info;
                uint8_t ekey[EXPIRY_KEY_SIZE], hkey[STORE_KEY_SIZE];
                MDB_val uk, ud = k, ek = { .mv_size = sizeof ekey, .mv_data = ekey }, ev;

                if (k.mv_size != STORE_KEY_SIZE || record_decode(&v, &info) < 0) {
                        r = -EUCLEAN;
                        goto finish;
                }

                r = handle_lookup(s, txn, info.handle, hkey);
                if (r == -ENOENT || (r == 0 && memcmp(hkey, k.mv_data, STORE_KEY_SIZE) != 0))
                        r = -EUCLEAN;
                if (r < 0)
                        goto finish;

                uk = (MDB_val) { .mv_size = strlen(info.user), .mv_data = (void *) info.user };
                rc = mdb_cursor_get(uc, &uk, &ud, MDB_GET_BOTH);
                if (rc != 0) {
                        r = rc == MDB_NOTFOUND ? -EUCLEAN : lmdb_status(rc);
                        goto finish;
                }

                expiry_key(ekey, session_idle_expires_at(&info), k.mv_data);
                rc = mdb_get(txn, s->db_expiry, &ek, &ev);
                if (rc != 0) {
                        r = rc == MDB_NOTFOUND ? -EUCLEAN : lmdb_status(rc);
                        goto finish;
                }
        }
        if (rc != MDB_NOTFOUND) {
                r = lmdb_status(rc);
                goto finish;
        }

        rc = mdb_stat(txn, s->db_sessions, &st_s);
        if (rc == 0)
                rc = mdb_stat(txn, s->db_handles, &st_h);
        if (rc == 0)
                rc = mdb_stat(txn, s->db_users, &st_u);
        if (rc == 0)
                rc = mdb_stat(txn, s->db_expiry, &st_e);
        if (rc != 0) {
                r = lmdb_status(rc);
                goto finish;
        }
        if (st_h.ms_entries != st_s.ms_entries || st_u.ms_entries != st_s.ms_entries ||
            st_e.ms_entries != st_s.ms_entries)
                r = -EUCLEAN;
        else
                r = 0;

finish:
        if (uc)
                mdb_cursor_close(uc);
        if (c)
                mdb_cursor_close(c);
        read_end(s, txn);
        return store_result(s, r);
}

/* ---- plugin key-value storage ---- */

/* Builds ns '\0' key into buf (at least NS_MAX + 1 + LATCH_KV_KEY_MAX). */
static int kv_key(const char *ns, const void *key, size_t keylen, uint8_t *buf, MDB_val *ret) {
        size_t nslen;

        if (!ns || !key || keylen == 0 || keylen > LATCH_KV_KEY_MAX)
                return -EINVAL;
        nslen = strlen(ns);
        if (nslen == 0 || nslen > NS_MAX)
                return -EINVAL;
        memcpy(buf, ns, nslen + 1);
        memcpy(buf + nslen + 1, key, keylen);
        *ret = (MDB_val) { .mv_size = nslen + 1 + keylen, .mv_data = buf };
        return 0;
}

/* ---- key-value updates recorded, and the writes that carry them ---- */

/* The batch open on this thread (store_kv_batch_begin()), or NULL. */
static _Thread_local struct store_kv_batch *kv_batch;

static struct kv_pending *kv_pending_find(store *s, const MDB_val *k) {
        for (struct kv_pending *p = s->kv_pending; p; p = p->next)
                if (p->klen == k->mv_size && memcmp(p->key, k->mv_data, p->klen) == 0)
                        return p;
        return NULL;
}

static void kv_pending_free(struct kv_pending *p) {
        explicit_bzero(p, sizeof *p); /* values may be secrets (a totp seed) */
        free(p);
}

static void kv_pending_free_all(store *s) {
        while (s->kv_pending) {
                struct kv_pending *p = s->kv_pending;
                s->kv_pending = p->next;
                kv_pending_free(p);
        }
}

/* What an update replaced, so that it can be taken back when its own write
 * fails (kv_update_take_back()): the key's pending entry (contents and
 * number), or none, the value then being the file's. The value may be a
 * secret (a totp seed): wipe it after use. */
struct kv_undo {
        bool pending; /* the key had a pending entry; the rest is that entry's */
        bool deleted;
        uint64_t seq;
        size_t vlen;
        uint8_t val[LATCH_KV_VALUE_MAX];
};

/* The pending updates, copied under kv_lock, as one write carries them. */
struct kv_snapshot {
        uint64_t seq; /* every update up to this one is in it */
        size_t n, size;
        struct kv_write {
                MDB_val key, val;
                bool deleted;
        } *w;         /* n entries, then their keys and values */
};

static void kv_snapshot_free(struct kv_snapshot *snap) {
        if (snap->w) {
                explicit_bzero(snap->w, snap->size);
                free(snap->w);
        }
        *snap = (struct kv_snapshot) {};
}

static int kv_snapshot_take(store *s, struct kv_snapshot *ret) {
        struct kv_snapshot snap = {};
        uint8_t *data;
        size_t i = 0;

        pthread_mutex_lock(&s->kv_lock);
        snap.seq = s->kv_seq;
        for (struct kv_pending *p = s->kv_pending; p; p = p->next) {
                snap.n++;
                snap.size += sizeof *snap.w + p->klen + p->vlen;
        }
        if (snap.n > 0) {
                snap.w = malloc(snap.size);
                if (!snap.w) {
                        pthread_mutex_unlock(&s->kv_lock);
                        return -ENOMEM;
                }
                data = (uint8_t *) (snap.w + snap.n);
                for (struct kv_pending *p = s->kv_pending; p; p = p->next, i++) {
                        snap.w[i].deleted = p->deleted;
                        snap.w[i].key = (MDB_val) { .mv_size = p->klen, .mv_data = memcpy(data, p->key, p->klen) };
                        data += p->klen;
                        snap.w[i].val = (MDB_val) { .mv_size = p->vlen, .mv_data = data };
                        if (p->vlen > 0)
                                memcpy(data, p->val, p->vlen);
                        data += p->vlen;
                }
        }
        pthread_mutex_unlock(&s->kv_lock);
        *ret = snap;
        return 0;
}

/* After the snapshot's write committed: what it wrote is no longer
 * pending, unless it was updated again since (a later number). */
static void kv_snapshot_written(store *s, const struct kv_snapshot *snap) {
        pthread_mutex_lock(&s->kv_lock);
        for (struct kv_pending **pp = &s->kv_pending; *pp;) {
                struct kv_pending *p = *pp;
                if (p->seq <= snap->seq) {
                        *pp = p->next;
                        kv_pending_free(p);
                } else
                        pp = &p->next;
        }
        pthread_mutex_unlock(&s->kv_lock);
        atomic_store(&s->kv_durable, snap->seq);
}

struct kv_carry {
        write_fn fn; /* the write carrying them, or NULL */
        void *userdata;
        struct kv_snapshot snap;
};

static int kv_carry_txn(store *s, MDB_txn *txn, void *userdata) {
        struct kv_carry *c = userdata;
        int r = 0, rc;

        if (c->fn) {
                r = c->fn(s, txn, c->userdata);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < c->snap.n; i++) {
                struct kv_write *w = &c->snap.w[i];
                if (w->deleted) {
                        rc = mdb_del(txn, s->db_kv, &w->key, NULL);
                        if (rc == MDB_NOTFOUND)
                                rc = 0;
                } else
                        rc = mdb_put(txn, s->db_kv, &w->key, &w->val, 0);
                if (rc != 0)
                        return lmdb_status(rc);
        }
        return r;
}

/* Runs the write fn (NULL: none) in one synced transaction that also
 * carries every pending key-value update when those up to number `upto`
 * are not all written yet. */
static int store_write_kv(store *s, uint64_t upto, write_fn fn, void *userdata) {
        struct kv_carry c = { .fn = fn, .userdata = userdata };
        int r;

        if (upto == 0 || atomic_load(&s->kv_durable) >= upto)
                return fn ? store_write(s, fn, userdata) : 0;

        pthread_mutex_lock(&s->kv_flush_lock);
        if (atomic_load(&s->kv_durable) >= upto) {
                /* Another write carried them meanwhile. */
                pthread_mutex_unlock(&s->kv_flush_lock);
                return fn ? store_write(s, fn, userdata) : 0;
        }
        r = kv_snapshot_take(s, &c.snap);
        if (r >= 0 && c.snap.n == 0) {
                /* Nothing pending: every update so far is written. */
                kv_snapshot_written(s, &c.snap);
                r = fn ? store_write(s, fn, userdata) : 0;
        } else if (r >= 0) {
                r = store_write(s, kv_carry_txn, &c);
                if (r >= 0)
                        kv_snapshot_written(s, &c.snap);
        }
        pthread_mutex_unlock(&s->kv_flush_lock);
        kv_snapshot_free(&c.snap);
        return r;
}

static int kv_flush(store *s, uint64_t upto) {
        return store_write_kv(s, upto, NULL, NULL);
}

void store_kv_batch_begin(store *s, struct store_kv_batch *b) {
        assert(s && b);
        assert(!kv_batch);
        b->store = s;
        kv_batch = b;
}

int store_kv_batch_end(struct store_kv_batch *b) {
        assert(kv_batch == b);
        kv_batch = NULL;
        if (!b->store)
                return 0;
        return kv_flush(b->store, b->seq);
}

/* The number of the thread's batch's last update on s, 0 if none. */
static uint64_t kv_batch_seq(store *s) {
        return kv_batch && kv_batch->store == s ? kv_batch->seq : 0;
}

/* Copies a value into buf (capacity *len; the size on return). */
static int kv_copy_out(const void *val, size_t vlen, void *buf, size_t *len) {
        if (vlen > *len) {
                *len = vlen;
                return -ENOBUFS;
        }
        if (vlen > 0)
                memcpy(buf, val, vlen);
        *len = vlen;
        return 0;
}

int store_kv_get(store *s, const char *ns, const void *key, size_t keylen, void *buf, size_t *len) {
        uint8_t kbuf[NS_MAX + 1 + LATCH_KV_KEY_MAX];
        struct kv_pending *p;
        MDB_txn *txn;
        MDB_val k, v;
        int r, rc;

        assert_return(s, -EINVAL);
        assert_return(len, -EINVAL);
        assert_return(buf || *len == 0, -EINVAL);

        r = kv_key(ns, key, keylen, kbuf, &k);
        if (r < 0)
                return r;

        /* A pending update is the current value. When there is none, the
         * file has the latest one: an update leaves the list only after
         * the write that carried it committed. */
        pthread_mutex_lock(&s->kv_lock);
        p = kv_pending_find(s, &k);
        if (p)
                r = p->deleted ? -ENOENT : kv_copy_out(p->val, p->vlen, buf, len);
        pthread_mutex_unlock(&s->kv_lock);
        if (p)
                return r;

        r = read_begin(s, &txn);
        if (r < 0)
                return r;
        rc = mdb_get(txn, s->db_kv, &k, &v);
        r = rc != 0 ? lmdb_status(rc) : kv_copy_out(v.mv_data, v.mv_size, buf, len);
        read_end(s, txn);
        return store_result(s, r);
}

/* Runs fn on the current value of k and records its result as pending.
 * Called with kv_lock held: updates take turns, each seeing the one before.
 * *ret_seq gets the update's number, or 0 when nothing changed; when it is
 * not 0 and ret_undo is not NULL, *ret_undo gets what the update replaced. */
static int kv_update_locked(store *s, MDB_val *k, latch_kv_update_fn fn, void *userdata, struct kv_undo *ret_undo,
                            uint64_t *ret_seq) {
        uint8_t oldbuf[LATCH_KV_VALUE_MAX], newbuf[LATCH_KV_VALUE_MAX];
        size_t oldlen = 0, newlen = sizeof newbuf;
        struct kv_pending *p = kv_pending_find(s, k);
        bool present;
        MDB_txn *txn;
        MDB_val v;
        int r, rc;

        *ret_seq = 0;
        if (p) {
                present = !p->deleted;
                oldlen = present ? p->vlen : 0;
                if (oldlen > 0)
                        memcpy(oldbuf, p->val, oldlen);
        } else {
                r = read_begin(s, &txn);
                if (r < 0)
                        return r;
                rc = mdb_get(txn, s->db_kv, k, &v);
                present = rc == 0;
                if (present && v.mv_size > sizeof oldbuf)
                        rc = MDB_BAD_VALSIZE; /* never written by store_kv_update() */
                if (rc == 0) {
                        oldlen = v.mv_size;
                        if (oldlen > 0)
                                memcpy(oldbuf, v.mv_data, oldlen);
                }
                read_end(s, txn);
                if (rc != 0 && rc != MDB_NOTFOUND)
                        return store_result(s, lmdb_status(rc));
        }

        r = fn(userdata, oldlen > 0 ? oldbuf : NULL, oldlen, newbuf, &newlen);
        explicit_bzero(oldbuf, oldlen);
        if (r < 0) {
                /* Keep the plugin's errno, but never let it pose as an MDB
                 * code. */
                r = r >= -4095 ? r : -EINVAL;
                goto out;
        }
        switch (r) {
        case 0:
                goto out;
        case 1:
                if (newlen > LATCH_KV_VALUE_MAX) {
                        r = -EINVAL;
                        goto out;
                }
                break;
        case 2:
                if (!present) {
                        r = 0; /* nothing to delete */
                        goto out;
                }
                newlen = 0;
                break;
        default:
                r = -EINVAL;
                goto out;
        }

        if (ret_undo) {
                ret_undo->pending = p != NULL;
                ret_undo->deleted = p && p->deleted;
                ret_undo->seq = p ? p->seq : 0;
                ret_undo->vlen = p ? p->vlen : 0;
                if (ret_undo->vlen > 0)
                        memcpy(ret_undo->val, p->val, p->vlen);
        }
        if (!p) {
                p = malloc(sizeof *p);
                if (!p) {
                        r = -ENOMEM;
                        goto out;
                }
                p->klen = k->mv_size;
                p->vlen = 0;
                memcpy(p->key, k->mv_data, k->mv_size);
                p->next = s->kv_pending;
                s->kv_pending = p;
        }
        explicit_bzero(p->val, p->vlen);
        p->deleted = r == 2;
        p->vlen = newlen;
        if (newlen > 0)
                memcpy(p->val, newbuf, newlen);
        p->seq = *ret_seq = ++s->kv_seq;
        r = 0;
out:
        explicit_bzero(newbuf, sizeof newbuf);
        return r;
}

/* The write of update `seq` of k, made outside a batch, failed with
 * `error`: takes the update back, unless something already depends on it.
 * Returns 0 when a write carried it after all, else `error`. */
static int kv_update_take_back(store *s, const MDB_val *k, uint64_t seq, const struct kv_undo *undo, int error) {
        struct kv_pending **pp, *p = NULL;
        uint64_t durable;
        int r = error;

        /* kv_flush_lock first, as every carrying write takes them
         * (store_write_kv(), then kv_snapshot_take()): no write runs
         * meanwhile, so the list and kv_durable agree. */
        pthread_mutex_lock(&s->kv_flush_lock);
        pthread_mutex_lock(&s->kv_lock);
        durable = atomic_load(&s->kv_durable);
        if (durable >= seq) {
                /* Another thread's write carried it between our failure
                 * and the locks: it is durable, as the caller wants. */
                r = 0;
                goto out;
        }
        for (pp = &s->kv_pending; *pp; pp = &(*pp)->next)
                if ((*pp)->klen == k->mv_size && memcmp((*pp)->key, k->mv_data, k->mv_size) == 0) {
                        p = *pp;
                        break;
                }
        /* Not written, so still listed: only a write that carried it takes
         * it off. A higher number means that another update of the key
         * came meanwhile and saw this one's value: it built on it (a
         * batch's update, which counts already, or one whose write failed
         * too and which restores this one's value when it is taken back),
         * so taking this one back would undo part of that one. The value
         * stays then, and the next write carries it, although the caller
         * reports the failure. */
        if (!p || p->seq != seq)
                goto out;

        if (!undo->pending || undo->seq <= durable) {
                /* The value before was the file's: none pending. (Or the
                 * previous entry's, written by a write that took its copy
                 * before this update came and committed after.) */
                *pp = p->next;
                kv_pending_free(p);
        } else {
                /* The previous update is still to be written, under its
                 * own number, which its batch may be waiting for. */
                explicit_bzero(p->val, p->vlen);
                p->deleted = undo->deleted;
                p->vlen = undo->vlen;
                if (undo->vlen > 0)
                        memcpy(p->val, undo->val, undo->vlen);
                p->seq = undo->seq;
        }
out:
        pthread_mutex_unlock(&s->kv_lock);
        pthread_mutex_unlock(&s->kv_flush_lock);
        return r;
}

int store_kv_update(store *s, const char *ns, const void *key, size_t keylen, latch_kv_update_fn fn,
                    void *userdata) {
        uint8_t kbuf[NS_MAX + 1 + LATCH_KV_KEY_MAX];
        struct kv_undo undo;
        uint64_t seq;
        bool batch;
        MDB_val k;
        int r;

        assert_return(s, -EINVAL);
        assert_return(fn, -EINVAL);

        r = kv_key(ns, key, keylen, kbuf, &k);
        if (r < 0)
                return r;
        /* As every write: none once damage was seen. */
        if (atomic_load(&s->damaged))
                return -EUCLEAN;

        /* In a batch the update stays recorded whatever happens to its
         * write (the batch's end reports a failure): nothing to undo. */
        batch = kv_batch && kv_batch->store == s;
        pthread_mutex_lock(&s->kv_lock);
        r = kv_update_locked(s, &k, fn, userdata, batch ? NULL : &undo, &seq);
        pthread_mutex_unlock(&s->kv_lock);
        if (r < 0 || seq == 0)
                return r;

        if (batch) {
                kv_batch->seq = seq;
                return 0;
        }
        r = kv_flush(s, seq);
        if (r < 0)
                r = kv_update_take_back(s, &k, seq, &undo, r);
        explicit_bzero(undo.val, undo.vlen);
        return r;
}
