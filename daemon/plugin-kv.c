/* SPDX-License-Identifier: MIT */

/*
 * The plugins' key-value store on latchd's store (store_kv_get() and
 * store_kv_update(), one namespace per plugin). Apart from plugin-host.c so
 * that latch-worker, whose plugins have no key-value store, links no LMDB.
 */

#include "plugin-host.h"
#include "store.h"

static int kv_get(void *userdata, const char *ns, const void *key, size_t keylen, void *buf, size_t *len) {
        return store_kv_get(userdata, ns, key, keylen, buf, len);
}

static int kv_update(void *userdata, const char *ns, const void *key, size_t keylen, latch_kv_update_fn fn,
                     void *fn_userdata) {
        return store_kv_update(userdata, ns, key, keylen, fn, fn_userdata);
}

int plugin_host_new(const char *plugin_dir, store *st, struct plugin_host **ret) {
        const struct plugin_kv kv = {
                .get = kv_get,
                .update = kv_update,
                .userdata = st,
        };

        return plugin_host_new_kv(plugin_dir, st ? &kv : NULL, ret);
}
