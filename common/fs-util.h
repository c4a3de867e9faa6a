/* SPDX-License-Identifier: MIT */
#pragma once

#include <errno.h>
#include <sys/stat.h>

#include "macro.h"

/* fstat()s an open file that must be a regular file (a key, a user
 * database): the fd's own stat, so the answer is about the content read
 * from it. Returns 0, a negative errno, or -EINVAL when it is not regular. */
static inline int fstat_regular(int fd, struct stat *ret) {
        if (fstat(fd, ret) < 0)
                return negative_errno();
        if (!S_ISREG(ret->st_mode))
                return -EINVAL;
        return 0;
}
