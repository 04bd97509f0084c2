/* overlayfs mounts of cached layers. The options go through mount(2)'s data
 * page, so they are built in one buffer the size of a page; overlayfs lists
 * lowerdir from the TOP layer down, the reverse of an image's layer order. */
#include "agent/rootfs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fs.h"

/* ':' separates lower layers, ',' options, '\' escapes either: overlayfs
 * would split such a path, so it is refused rather than escaped (layer
 * paths are the cache's own, made of a digest). */
static int check_path(const char *what, const char *p, fp_error *err)
{
    if (!p || !*p) return fp_error_set(err, EINVAL, "overlay %s: empty path", what);
    if (strpbrk(p, ":,\\"))
        return fp_error_set(err, EINVAL, "overlay %s %s: ':', ',' and '\\' are not allowed", what,
                            p);
    return 0;
}

/* A single read-only layer: overlayfs refuses one lowerdir without an
 * upper, so bind it read-only (what containerd's overlay snapshotter does
 * for a one-layer view). The remount keeps the flags the source had
 * (nosuid, nodev, noexec): a bind must not grant more than its source. */
static int bind_readonly(const char *layer, const char *target, fp_error *err)
{
    if (mount(layer, target, NULL, MS_BIND, NULL) < 0)
        return fp_error_set(err, errno, "bind %s on %s", layer, target);
    struct statvfs sv;
    unsigned long flags = MS_REMOUNT | MS_BIND | MS_RDONLY;
    if (statvfs(target, &sv) == 0) {
        if (sv.f_flag & ST_NOSUID) flags |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV) flags |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
        if (sv.f_flag & ST_NOATIME) flags |= MS_NOATIME;
        if (sv.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
        if (sv.f_flag & ST_RELATIME) flags |= MS_RELATIME;
    }
    if (mount(NULL, target, NULL, flags, NULL) < 0) {
        int e = errno;
        /* never leave a writable view of the cache behind */
        umount2(target, MNT_DETACH);
        return fp_error_set(err, e, "remount %s read-only", target);
    }
    return 0;
}

int fp_rootfs_mount(const char *const *lowers, size_t n, const char *upper, const char *work,
                    const char *target, fp_error *err)
{
    if (!lowers || n == 0) return fp_error_set(err, EINVAL, "root file system: no layers");
    if (n > FP_ROOTFS_MAX_LAYERS)
        return fp_error_set(err, EINVAL, "root file system: %zu layers, overlayfs takes %d", n,
                            FP_ROOTFS_MAX_LAYERS);
    if (!upper != !work)
        return fp_error_set(err, EINVAL, "root file system: upper and work go together");
    if (!target || !*target) return fp_error_set(err, EINVAL, "root file system: no target");
    size_t need = strlen("lowerdir=") + 1;
    for (size_t i = 0; i < n; i++) {
        if (check_path("lowerdir", lowers[i], err) < 0) return -1;
        need += strlen(lowers[i]) + (i ? 1 : 0);
    }
    if (upper) {
        if (check_path("upperdir", upper, err) < 0 || check_path("workdir", work, err) < 0)
            return -1;
        need += strlen(",upperdir=") + strlen(upper) + strlen(",workdir=") + strlen(work);
    } else if (n == 1) {
        return bind_readonly(lowers[0], target, err);
    }
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) page = 4096;
    if (need > (size_t)page)
        return fp_error_set(err, E2BIG,
                            "overlay options for %zu layers take %zu bytes, more than a page "
                            "(%ld): shorten the layer cache path or flatten the image",
                            n, need, page);
    cleanup_free char *opts = malloc(need);
    if (!opts) return fp_error_set(err, ENOMEM, "overlay options");
    char *p = stpcpy(opts, "lowerdir=");
    for (size_t i = n; i-- > 0;) {
        p = stpcpy(p, lowers[i]);
        if (i) *p++ = ':';
    }
    if (upper) {
        if (fp_mkdir_p(upper, 0755, err) < 0 || fp_mkdir_p(work, 0700, err) < 0) return -1;
        p = stpcpy(stpcpy(p, ",upperdir="), upper);
        p = stpcpy(stpcpy(p, ",workdir="), work);
    }
    if (mount("overlay", target, "overlay", upper ? 0 : MS_RDONLY, opts) < 0)
        return fp_error_set(err, errno, "mount overlay (%zu layers%s) on %s", n,
                            upper ? ", writable" : "", target);
    return 0;
}

int fp_rootfs_unmount(const char *target, fp_error *err)
{
    if (umount2(target, MNT_DETACH) < 0) {
        /* EINVAL: not a mount point */
        if (errno == EINVAL || errno == ENOENT) return 0;
        return fp_error_set(err, errno, "unmount %s", target);
    }
    return 0;
}
