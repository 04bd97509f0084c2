/* A service's image on this node: held in the node's store for the
 * node's platform, resolved to the image manifest the node runs, its
 * layers unpacked into the agent's layer cache. */
#ifndef FP_AGENT_IMAGE_H
#define FP_AGENT_IMAGE_H

#include <stdint.h>

#include "agent/unpack.h"
#include "core/error.h"
#include "core/manifest.h"
#include "federation/federation.h"
#include "store/store.h"

/* Hold repo@digest (pulled through from the nearest holder; of an index
 * only this host's platform) and resolve it to the image manifest this
 * host runs: *m, to fp_manifest_free. Adds the bytes fetched to *bytes. */
int fp_agent_image_hold(fp_federation *fed, fp_store *store, const char *repo, const char *digest,
                        fp_manifest *m, uint64_t *bytes, fp_error *err);

/* Hold it and unpack every layer into the cache dir (each once, shared):
 * all a replacement needs before the instance it replaces is stopped. */
int fp_agent_image_prepare(fp_federation *fed, fp_store *store, const char *cache,
                           const fp_unpack_limits *lim, const char *repo, const char *digest,
                           uint64_t *bytes, fp_error *err);

#endif
