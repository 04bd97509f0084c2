/* A container's root file system: its image's cached layers (see
 * agent/layers.h) stacked with overlayfs, read-only, or writable with an
 * upper directory of the container's own. The layers stay untouched either
 * way, so any number of containers share them. */
#ifndef FP_AGENT_ROOTFS_H
#define FP_AGENT_ROOTFS_H

#include <stddef.h>

#include "core/error.h"

/* overlayfs's limit on lower layers */
#define FP_ROOTFS_MAX_LAYERS 500

/* Mount the layers at target: lowers[0] is the BOTTOM (first) layer of the
 * image, lowers[n-1] the top. upper == NULL: read-only (MS_RDONLY, lowerdir
 * only; a single layer is bind-mounted read-only, as overlayfs wants two
 * lower layers without an upper). Otherwise upper and work (created if
 * missing, on one file system) make a writable root. Paths with ':', ','
 * or '\' are refused (overlayfs separators); the options must fit in a page,
 * or the mount fails with an error saying so. */
int fp_rootfs_mount(const char *const *lowers, size_t n, const char *upper, const char *work,
                    const char *target, fp_error *err);

/* Detach the root file system at target (MNT_DETACH: a process still inside
 * keeps it until it leaves). Nothing mounted there is not an error. */
int fp_rootfs_unmount(const char *target, fp_error *err);

#endif
