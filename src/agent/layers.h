/* The agent's cache of unpacked image layers, keyed by the layer's digest
 * (the digest of the blob as the manifest lists it):
 *
 *   CACHE/sha256/<hex>   an unpacked layer, ready to be an overlayfs lower
 *   CACHE/sha512/<hex>
 *   CACHE/tmp/<uuid>     a layer being unpacked
 *
 * A layer is unpacked into CACHE/tmp, made durable (syncfs) and renamed
 * under its digest, so a crash never leaves half a layer under a digest.
 * Concurrent callers for the same digest are safe: the one whose rename
 * loses removes its copy and uses the winner's. */
#ifndef FP_AGENT_LAYERS_H
#define FP_AGENT_LAYERS_H

#include <stddef.h>

#include "agent/unpack.h"
#include "core/error.h"

/* Make sure the layer with this digest is unpacked in the cache and write
 * its directory to out. The blob at blob_path is hashed first and must match
 * the digest (a wrong blob would sit under that digest for good). lim: see
 * fp_layer_unpack (NULL: defaults). */
int fp_layer_cache_ensure(const char *cache_dir, const char *digest, const char *blob_path,
                          const fp_unpack_limits *lim, char *out, size_t outlen, fp_error *err);

/* 1 if the layer is in the cache, 0 if not (or the digest is not valid). */
int fp_layer_cache_has(const char *cache_dir, const char *digest);

/* Remove cached layers whose digest is not in keep (NULL-terminated; NULL
 * keeps nothing) and the leftovers of interrupted unpacks in CACHE/tmp (an
 * unpack in progress holds a lock on its directory and is left alone).
 * Returns the number of layers removed, or -1. The caller keeps every layer
 * a mounted root file system uses. */
int fp_layer_cache_prune(const char *cache_dir, const char *const *keep, fp_error *err);

#endif
