/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "access.h"
#include "daemon-state.h"

int peer_from_socket(int fd, struct peer *ret) {
        struct ucred uc;
        socklen_t len = sizeof uc;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        *ret = (struct peer){ .pid = uc.pid, .uid = uc.uid, .gid = uc.gid };

        /* Supplementary groups, for allow_groups/admin_groups. Most peers
         * have few: try a stack buffer, and size from the kernel's answer
         * (ERANGE) otherwise. */
        gid_t stack_groups[64];
        len = sizeof stack_groups;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, stack_groups, &len) == 0) {
                if (len > 0) {
                        ret->groups = malloc(len);
                        if (!ret->groups)
                                return -ENOMEM;
                        memcpy(ret->groups, stack_groups, len);
                        ret->n_groups = len / sizeof(gid_t);
                }
        } else if (errno == ERANGE) {
                ret->groups = malloc(len);
                if (!ret->groups)
                        return -ENOMEM;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, ret->groups, &len) < 0) {
                        int r = -errno;
                        peer_done(ret);
                        return r;
                }
                ret->n_groups = len / sizeof(gid_t);
        }
        return 0;
}

void peer_done(struct peer *p) {
        free(p->groups);
        p->groups = NULL;
        p->n_groups = 0;
}

bool peer_in_groups(const struct peer *p, const gid_t *gids, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (p->gid == gids[i])
                        return true;
                for (size_t j = 0; j < p->n_groups; j++)
                        if (p->groups[j] == gids[i])
                                return true;
        }
        return false;
}

bool access_is_admin(const struct daemon *d, const struct peer *p) {
        return p->uid == 0 || peer_in_groups(p, d->config->admin_gids, d->config->n_admin_gids);
}

bool access_may_monitor(const struct daemon *d, const struct peer *p) {
        return access_is_admin(d, p) || peer_in_groups(p, d->config->stats_gids, d->config->n_stats_gids);
}

bool access_service_allowed(const struct daemon *d, const struct peer *p, const char *service) {
        const struct service_config *s = config_service(d->config, service);

        if (!s || !s->restricted)
                return true;
        for (size_t i = 0; i < s->n_allow_uids; i++)
                if (p->uid == s->allow_uids[i])
                        return true;
        return peer_in_groups(p, s->allow_gids, s->n_allow_gids);
}
