/* SPDX-License-Identifier: MIT */

/*
 * LD_PRELOAD'ed into latchctl by test-latchctl: an fsync() that fails with
 * EIO for folders and syncs anything else, so that the sync of the folder
 * after a user database's rename fails, which no file system does on demand.
 */

#include <errno.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

__attribute__((visibility("default"))) int fsync(int fd) {
        struct stat st;

        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
                errno = EIO;
                return -1;
        }
        return (int) syscall(SYS_fsync, fd);
}
