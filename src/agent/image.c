/* From a service's image digest to what the agent runs: held for this
 * host's platform, resolved through an index, layers unpacked. */
#include "agent/image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/layers.h"
#include "core/platform.h"

int fp_agent_image_hold(fp_federation *fed, fp_store *store, const char *repo, const char *digest,
                        fp_manifest *m, uint64_t *bytes, fp_error *err)
{
    fp_platform host;
    fp_platform_host(&host);
    if (fp_fed_hold_platform(fed, store, repo, digest, &host, NULL, bytes, err) < 0) return -1;
    char d[FP_DIGEST_MAX];
    snprintf(d, sizeof d, "%s", digest);
    for (int depth = 0;; depth++) {
        fp_manifest_row row;
        int got = fp_store_manifest_get(store, repo, d, true, true, &row, err);
        if (got == FP_STORE_NOT_FOUND)
            return fp_error_set(err, 0, "manifest %s is no longer here", d);
        if (got != 0) return fp_error_prefix(err, "manifest %s", d);
        char why[512];
        int rc = fp_manifest_parse(row.body, row.size, row.media_type, m, why, sizeof why);
        if (rc == 0 && m->is_index) {
            fp_manifest_free(m);
            rc = depth > 0 ? fp_error_set(err, 0, "nested index")
                 : fp_platform_pick(row.body, row.size, &host, d, why, sizeof why) < 0
                     ? fp_error_set(err, 0, "%s", why)
                     : 0;
            free(row.body);
            if (rc < 0) return -1;
            continue;
        }
        free(row.body);
        if (rc < 0) return fp_error_set(err, 0, "manifest %s: %s", d, why);
        return 0;
    }
}

int fp_agent_image_prepare(fp_federation *fed, fp_store *store, const char *cache,
                           const fp_unpack_limits *lim, const char *repo, const char *digest,
                           uint64_t *bytes, fp_error *err)
{
    fp_manifest m;
    if (fp_agent_image_hold(fed, store, repo, digest, &m, bytes, err) < 0) return -1;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < m.nrefs; i++) {
        char blob[FP_PATH_MAX + 256], dir[FP_PATH_MAX];
        if (fp_store_blob_path(store, m.refs[i].digest, blob, sizeof blob) < 0)
            rc = fp_error_set(err, 0, "layer %s: bad digest", m.refs[i].digest);
        else
            rc = fp_layer_cache_ensure(cache, m.refs[i].digest, blob, lim, dir, sizeof dir, err);
    }
    fp_manifest_free(&m);
    return rc;
}
