/* SPDX-License-Identifier: MIT */
#pragma once

/* What userdb.c (parsing, hashes) and userdb-edit.c (the editors) share. */

#include <stdbool.h>
#include <stddef.h>

/* ' ' or '\t': what may precede a comment's '#'. */
bool userdb_is_blank(char c);

/* The length of an acceptable password (1..USERDB_PASSWORD_MAX bytes), or 0
 * when it must be refused (NULL, empty, too long). */
size_t userdb_password_len(const char *password);

/* Reads fd to its end (at most USERDB_FILE_MAX bytes, else -EFBIG) into a
 * malloc'd buffer, which the caller wipes and frees; *ret_buf stays NULL for
 * an empty file. Returns 0 or a negative errno. */
int userdb_read_all(int fd, char **ret_buf, size_t *ret_len);
