/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Who is asking, and what they may do: the daemon's whole peer policy.
 *
 *   anyone    any peer that can open the socket (hello, verify, jwks)
 *   admin     uid 0 or a member of [access] admin_groups
 *   monitor   admins, and members of [access] stats_groups: `stats` only
 *   service   a service with allow_users/allow_groups admits the listed
 *             uids and the members of the listed groups (root is not
 *             special here: list it if it should pass); a service with
 *             neither key, or without a section, admits every peer
 *
 * The peer's identity comes from the kernel (SO_PEERCRED, SO_PEERGROUPS)
 * at accept time, never from anything the client says.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct daemon;

struct peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t *groups;   /* supplementary groups (SO_PEERGROUPS) */
        size_t n_groups;
};

/* Fills *ret from a connected Unix socket. On success the caller owns
 * ret->groups (peer_done() frees it). */
int peer_from_socket(int fd, struct peer *ret);
void peer_done(struct peer *p);

/* Whether the peer's primary or a supplementary group is one of gids. */
bool peer_in_groups(const struct peer *p, const gid_t *gids, size_t n);

bool access_is_admin(const struct daemon *d, const struct peer *p);
/* Whether the peer may read `stats`: an admin, or a member of
 * [access] stats_groups (latch-http's /metrics, a monitoring agent). */
bool access_may_monitor(const struct daemon *d, const struct peer *p);

/* Whether the peer may use `service` (which need not have a section). Every
 * op that names a service, or acts on a session of one, asks this before
 * anything else, so that a refused peer learns nothing but "forbidden". */
bool access_service_allowed(const struct daemon *d, const struct peer *p, const char *service);
