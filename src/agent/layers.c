/* The layer cache: unpack into CACHE/tmp, syncfs, rename under the digest.
 * The digest names a directory only after fp_digest_parse accepted it, so
 * it is "sha256" or "sha512" and lowercase hex, never a path of its own. */
#include "agent/layers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/unpack_proc.h"
#include "core/cleanup.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/log.h"

static int layer_path(const char *cache_dir, const char *digest, char *out, size_t outlen,
                      enum fp_digest_alg *alg, fp_error *err)
{
    enum fp_digest_alg a;
    if (!digest || fp_digest_parse(digest, strlen(digest), &a) != FP_DIGEST_OK) {
        char q[160];
        return fp_error_set(err, EINVAL, "layer digest %s is not a valid sha256/sha512 digest",
                            fp_log_quote(digest ? digest : "", q, sizeof q));
    }
    int n =
        snprintf(out, outlen, "%s/%s/%s", cache_dir, fp_digest_alg_name(a), fp_digest_hex(digest));
    if (n < 0 || (size_t)n >= outlen)
        return fp_error_set(err, ENAMETOOLONG, "layer cache path for %s", digest);
    if (alg) *alg = a;
    return 0;
}

static bool is_dir(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int fp_layer_cache_has(const char *cache_dir, const char *digest)
{
    char path[PATH_MAX];
    fp_error err;
    if (layer_path(cache_dir, digest, path, sizeof path, NULL, &err) < 0) return 0;
    return is_dir(path) ? 1 : 0;
}

static int verify_blob(const char *blob_path, const char *digest, enum fp_digest_alg alg,
                       fp_error *err)
{
    cleanup_close int fd = open(blob_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fp_error_set(err, errno, "open layer blob %s", blob_path);
    fp_hasher h;
    if (fp_hasher_init(&h, alg) < 0) return fp_error_set(err, ENOMEM, "hash %s", blob_path);
    char got[FP_DIGEST_MAX];
    int rc = fp_hasher_update_fd(&h, fd, UINT64_MAX) < 0 || fp_hasher_peek(&h, got) < 0 ? -1 : 0;
    int e = errno;
    fp_hasher_free(&h);
    if (rc < 0) return fp_error_set(err, e, "hash layer blob %s", blob_path);
    if (strcmp(got, digest) != 0)
        return fp_error_set(err, 0, "layer blob %s has digest %s, not %s", blob_path, got, digest);
    return 0;
}

/* A fresh CACHE/tmp/<uuid>, open and locked (flock) so that a prune running
 * at the same time leaves it alone; *lockfd holds the lock until closed. */
static int make_tmp(const char *cache_dir, char *tmp, size_t len, int *lockfd, fp_error *err)
{
    char tmpdir[PATH_MAX];
    if (snprintf(tmpdir, sizeof tmpdir, "%s/tmp", cache_dir) >= (int)sizeof tmpdir)
        return fp_error_set(err, ENAMETOOLONG, "%s", cache_dir);
    if (fp_mkdir_p(tmpdir, 0700, err) < 0) return -1;
    for (int tries = 0; tries < 8; tries++) {
        char id[37];
        if (fp_uuid(id) < 0) return fp_error_set(err, errno, "random name");
        if (snprintf(tmp, len, "%s/%s", tmpdir, id) >= (int)len)
            return fp_error_set(err, ENAMETOOLONG, "%s", tmpdir);
        if (mkdir(tmp, 0700) < 0) {
            if (errno == EEXIST) continue;
            return fp_error_set(err, errno, "mkdir %s", tmp);
        }
        int fd = open(tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno != ENOENT) return fp_error_set(err, errno, "open %s", tmp);
        struct stat sb;
        /* a prune may have taken it between mkdir and flock: then it is
         * gone (nlink 0) and we try another name */
        if (fd >= 0 && flock(fd, LOCK_EX) == 0 && fstat(fd, &sb) == 0 && sb.st_nlink > 0) {
            /* the layer root's mode is the image root's unless the tar
             * sets it; mkdir's mode went through the umask */
            if (fchmod(fd, 0755) < 0) {
                int e = errno;
                close(fd);
                return fp_error_set(err, e, "chmod %s", tmp);
            }
            *lockfd = fd;
            return 0;
        }
        if (fd >= 0) close(fd);
    }
    return fp_error_set(err, EAGAIN, "could not make a directory in %s", tmpdir);
}

int fp_layer_cache_ensure(const char *cache_dir, const char *digest, const char *blob_path,
                          const fp_unpack_limits *lim, char *out, size_t outlen, fp_error *err)
{
    char final[PATH_MAX];
    enum fp_digest_alg alg;
    if (layer_path(cache_dir, digest, final, sizeof final, &alg, err) < 0) return -1;
    size_t flen = strlen(final);
    if (flen >= outlen) return fp_error_set(err, ENAMETOOLONG, "layer path %s", final);
    if (is_dir(final)) {
        memcpy(out, final, flen + 1);
        return 0;
    }
    if (verify_blob(blob_path, digest, alg, err) < 0) return -1;

    char algdir[PATH_MAX];
    snprintf(algdir, sizeof algdir, "%s/%s", cache_dir, fp_digest_alg_name(alg));
    if (fp_mkdir_p(algdir, 0755, err) < 0) return -1;
    char tmp[PATH_MAX];
    cleanup_close int lock = -1;
    if (make_tmp(cache_dir, tmp, sizeof tmp, &lock, err) < 0) return -1;

    fp_unpack_stats st;
    fp_error rmerr;
    int unpacked = lim && lim->helper
                       ? fp_layer_unpack_child(lim->helper, blob_path, tmp, lim, &st, err)
                       : fp_layer_unpack(blob_path, tmp, lim, &st, err);
    if (unpacked < 0) {
        fp_layer_remove(tmp, &rmerr);
        return fp_error_prefix(err, "layer %s", digest);
    }
    /* one syncfs makes the whole layer durable, instead of an fsync per
     * file: only then may it appear under its digest */
    if (syncfs(lock) < 0) {
        int e = errno;
        fp_layer_remove(tmp, &rmerr);
        return fp_error_set(err, e, "sync layer %s", tmp);
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, final, RENAME_NOREPLACE) < 0) {
        int e = errno;
        fp_layer_remove(tmp, &rmerr);
        /* another caller unpacked the same layer first: same digest, same
         * content; use theirs */
        if ((e != EEXIST && e != ENOTEMPTY) || !is_dir(final))
            return fp_error_set(err, e, "rename %s to %s", tmp, final);
    } else {
        if (fp_fsync_dir(algdir, err) < 0) return -1;
        fp_info("event=layer_unpacked digest=%s entries=%" PRIu64 " bytes=%" PRIu64
                " whiteouts=%" PRIu64 " setuid_stripped=%" PRIu64,
                digest, st.entries, st.bytes, st.whiteouts, st.stripped_setuid);
    }
    memcpy(out, final, flen + 1);
    return 0;
}

static bool kept(const char *const *keep, const char *digest)
{
    for (size_t i = 0; keep && keep[i]; i++)
        if (strcmp(keep[i], digest) == 0) return true;
    return false;
}

/* Remove the leftovers of interrupted unpacks: every CACHE/tmp entry whose
 * lock is free (an unpack in progress holds its lock). */
static int prune_tmp(const char *cache_dir, fp_error *err)
{
    char tmpdir[PATH_MAX], path[PATH_MAX];
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", cache_dir);
    DIR *d = opendir(tmpdir);
    if (!d) return errno == ENOENT ? 0 : fp_error_set(err, errno, "open %s", tmpdir);
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name) >= (int)sizeof path) continue;
        cleanup_close int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) continue; /* in use */
        rc = fp_layer_remove(path, err);
    }
    closedir(d);
    return rc;
}

int fp_layer_cache_prune(const char *cache_dir, const char *const *keep, fp_error *err)
{
    static const char *const algs[] = {"sha256", "sha512"};
    int removed = 0;
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++) {
        char dir[PATH_MAX], path[PATH_MAX], digest[FP_DIGEST_MAX];
        if (snprintf(dir, sizeof dir, "%s/%s", cache_dir, algs[i]) >= (int)sizeof dir)
            return fp_error_set(err, ENAMETOOLONG, "%s", cache_dir);
        DIR *d = opendir(dir);
        if (!d) {
            if (errno == ENOENT) continue;
            return fp_error_set(err, errno, "open %s", dir);
        }
        struct dirent *de;
        int rc = 0;
        while (rc == 0 && (de = readdir(d))) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            /* a name too long for a digest is no layer of ours: not kept */
            if (snprintf(digest, sizeof digest, "%s:%s", algs[i], de->d_name) <
                    (int)sizeof digest &&
                kept(keep, digest))
                continue;
            if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path) continue;
            rc = fp_layer_remove(path, err);
            if (rc == 0) {
                char q[300];
                fp_info("event=layer_pruned alg=%s hex=%s", algs[i],
                        fp_log_quote(de->d_name, q, sizeof q));
                removed++;
            }
        }
        closedir(d);
        if (rc < 0) return -1;
    }
    if (prune_tmp(cache_dir, err) < 0) return -1;
    return removed;
}
