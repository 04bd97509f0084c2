/* Image layer unpacking: one OCI layer blob (a tar, gzip- or zstd-compressed
 * or not) into a directory that becomes an overlayfs lower layer.
 *
 * A layer comes from a registry and is untrusted; unpacking runs as root, so
 * this is a security boundary. Every path is resolved inside the layer
 * directory (openat2 RESOLVE_IN_ROOT), nothing is written through a final
 * symlink, and the layer is refused as a whole on the first entry that could
 * reach outside it, create a device, or exceed the limits. What is refused
 * and why: docs/agent-unpack.md. */
#ifndef FP_AGENT_UNPACK_H
#define FP_AGENT_UNPACK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

#define FP_UNPACK_DEFAULT_MAX_BYTES   (8ULL << 30)
#define FP_UNPACK_DEFAULT_MAX_ENTRIES 200000ULL

typedef struct fp_unpack_limits {
    uint64_t max_bytes;   /* total bytes of file content a layer may write (0: default 8 GiB) */
    uint64_t max_entries; /* entries per layer (0: default 200000) */
    bool allow_setuid;    /* keep setuid/setgid bits (default: strip them) */
    /* fp_layer_cache_ensure unpacks in a child process running this
     * fogport (`fogport unpack-layer`; agent/unpack_proc.h), or in the
     * calling process when NULL */
    const char *helper;
} fp_unpack_limits;

typedef struct fp_unpack_stats {
    uint64_t bytes;           /* file content written (declared size of skipped data included) */
    uint64_t entries;         /* tar entries read, whiteouts included */
    uint64_t whiteouts;       /* .wh.NAME and .wh..wh..opq converted to overlayfs form */
    uint64_t stripped_setuid; /* entries whose setuid/setgid bit was dropped */
} fp_unpack_stats;

/* Unpack one layer blob (tar; gzip or zstd compressed or not, detected from
 * the bytes) into dir (exists, empty) as an overlayfs lower layer. lim and st
 * may be NULL (defaults; no stats). On failure dir holds part of the layer
 * and nothing outside it was touched; the caller removes dir. No file is
 * fsynced: the caller makes the whole layer durable at once. */
int fp_layer_unpack(const char *blob_path, const char *dir, const fp_unpack_limits *lim,
                    fp_unpack_stats *st, fp_error *err);

/* Remove an unpacked (or partly unpacked) layer directory with everything
 * in it. Unlike fp_rm_rf it works at any depth: a layer can nest directories
 * deeper than PATH_MAX below a symlink. Nothing is followed. Missing is not
 * an error. */
int fp_layer_remove(const char *dir, fp_error *err);

#endif
