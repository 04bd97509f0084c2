/* File-system helpers with the durability rules the store relies on:
 * write to a temporary file, fsync it, rename it into place, fsync the
 * directory. A crash leaves either the old file or the new one. */
#ifndef FP_CORE_FS_H
#define FP_CORE_FS_H

#include <stddef.h>
#include <sys/types.h>

#include "core/error.h"

/* mkdir -p with the given mode for created directories. */
int fp_mkdir_p(const char *path, mode_t mode, fp_error *err);
/* fsync the directory that holds `path` (the file's parent). */
int fp_fsync_parent(const char *path, fp_error *err);
int fp_fsync_dir(const char *dir, fp_error *err);
/* Read a whole file (at most max bytes; larger is an error). *out is
 * NUL-terminated and must be freed. */
int fp_read_file(const char *path, size_t max, char **out, size_t *len, fp_error *err);
/* Atomically replace path with data (tmp + fsync + rename + fsync dir). */
int fp_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
                         fp_error *err);
/* Write all of buf to fd, retrying on short writes and EINTR. */
int fp_write_all(int fd, const void *buf, size_t len);
/* Remove a directory tree (no symlink following). Missing is not an error. */
int fp_rm_rf(const char *path);

/* A random RFC 4122 version-4 UUID, 36 chars + NUL. */
int fp_uuid(char out[37]);
/* Fill buf with cryptographically random bytes. */
int fp_random_bytes(void *buf, size_t len);

#endif
