/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>

#include <jansson.h>
#include <sodium.h>

#include "proto.h"

int worker_recv_payload(int fd, const uint8_t hdr[WIRE_HEADER], uint32_t max, uint64_t deadline, json_t **ret) {
        uint32_t n = wire_get_header(hdr);
        uint8_t *buf;
        json_t *o;
        int r;

        if (n == 0 || n > max)
                return -EBADMSG;
        buf = malloc(n);
        if (!buf)
                return -ENOMEM;
        r = wire_recv_all(fd, buf, n, deadline);
        o = r < 0 ? NULL : json_loadb((const char *) buf, n, JSON_REJECT_DUPLICATES, NULL);
        sodium_memzero(buf, n);
        free(buf);
        if (r < 0)
                return r;
        if (!json_is_object(o)) {
                json_decref(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}
