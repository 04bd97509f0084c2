#include "core/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"

int fp_mkdir_p(const char *path, mode_t mode, fp_error *err)
{
    char tmp[4096];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof tmp) return fp_error_set(err, ENAMETOOLONG, "mkdir %s", path);
    memcpy(tmp, path, len + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return fp_error_set(err, errno, "mkdir %s", tmp);
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST) return fp_error_set(err, errno, "mkdir %s", tmp);
    return 0;
}

int fp_fsync_dir(const char *dir, fp_error *err)
{
    cleanup_close int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fp_error_set(err, errno, "open directory %s", dir);
    if (fsync(fd) < 0) return fp_error_set(err, errno, "fsync directory %s", dir);
    return 0;
}

int fp_fsync_parent(const char *path, fp_error *err)
{
    char dir[4096];
    size_t len = strlen(path);
    if (len >= sizeof dir) return fp_error_set(err, ENAMETOOLONG, "%s", path);
    memcpy(dir, path, len + 1);
    char *slash = strrchr(dir, '/');
    if (!slash) return fp_fsync_dir(".", err);
    if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    return fp_fsync_dir(dir, err);
}

int fp_read_file(const char *path, size_t max, char **out, size_t *len, fp_error *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fp_error_set(err, errno, "open %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0) return fp_error_set(err, errno, "stat %s", path);
    if ((uint64_t)st.st_size > max)
        return fp_error_set(err, EFBIG, "%s is larger than %zu bytes", path, max);
    cleanup_free char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) return fp_error_set(err, ENOMEM, "read %s", path);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fp_error_set(err, errno, "read %s", path);
        if (n == 0) break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = fp_steal_ptr(buf);
    if (len) *len = got;
    return 0;
}

int fp_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fp_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, fp_error *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return fp_error_set(err, ENAMETOOLONG, "%s", path);
    cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return fp_error_set(err, errno, "create %s", tmp);
    if (fp_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
        int e = errno;
        unlink(tmp);
        return fp_error_set(err, e, "write %s", tmp);
    }
    if (rename(tmp, path) < 0) {
        int e = errno;
        unlink(tmp);
        return fp_error_set(err, e, "rename %s", path);
    }
    return fp_fsync_parent(path, err);
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT ? -1 : 0;
}

int fp_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int fp_random_bytes(void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fp_uuid(char out[37])
{
    unsigned char b[16];
    if (fp_random_bytes(b, sizeof b) < 0) return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}
