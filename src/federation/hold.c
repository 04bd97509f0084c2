/* Holding an image: make this node's store hold a manifest (an index's
 * children too) and every blob it references, fetching what is missing
 * from the nearest holders. Replication and the agent both do this. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/manifest.h"
#include "control/recallset.h"
#include "federation/fed_internal.h"
#include "federation/federation.h"

/* Make the store hold blob digest of repo; adds the bytes moved. */
static int hold_blob(fp_federation *f, fp_store *store, const char *repo, const char *digest,
                     const fp_fed_origin *o, uint64_t *bytes, fp_error *err)
{
    uint64_t size;
    if (fp_store_blob_stat(store, repo, digest, &size, err) == 0) return 0;
    if (fp_store_blob_link_referenced(store, repo, digest, err) == 0) return 0;
    if (!f) return fp_error_set(err, 0, "%s: blob %s is not here", repo, digest);
    fp_fetch *x;
    int rc = fp_fed_fetch_blob(f, repo, digest, true, o, &x, &size, err);
    if (rc != 0)
        return rc == FP_STORE_NOT_FOUND ? fp_error_set(err, 0, "no node holds %s", digest) : -1;
    rc = fp_fetch_wait(x);
    fp_fetch_unref(x);
    if (rc < 0) return fp_error_set(err, EIO, "fetching %s failed", digest);
    *bytes += size;
    return 0;
}

/* Make the store hold manifest digest of repo and everything it
 * references: an index's children too, or only want's when want is given
 * (a node runs one platform: the others' layers would be fetched for
 * nothing, and a source that lacks them would fail the hold). The tag is
 * set by the caller. */
static int hold_manifest(fp_federation *f, fp_store *store, const char *repo, const char *digest,
                         const fp_platform *want, const fp_fed_origin *o, unsigned depth,
                         uint64_t *bytes, fp_error *err)
{
    fp_manifest_row row;
    int rc = fp_store_manifest_get(store, repo, digest, true, true, &row, err);
    if (rc == FP_STORE_NOT_FOUND && !f)
        return fp_error_set(err, 0, "%s@%s is not here", repo, digest);
    if (rc == FP_STORE_NOT_FOUND) {
        rc = fp_fed_pull_manifest(f, repo, digest, true, o, err);
        if (rc == FP_STORE_NOT_FOUND) return fp_error_set(err, 0, "no node holds %s", digest);
        if (rc == 0) rc = fp_store_manifest_get(store, repo, digest, true, true, &row, err);
    }
    if (rc != 0) return -1;
    fp_manifest m;
    char why[256];
    rc = fp_manifest_parse(row.body, row.size, row.media_type, &m, why, sizeof why);
    char child[FP_DIGEST_MAX] = "";
    bool one = rc == 0 && m.is_index && want;
    if (one && fp_platform_pick(row.body, row.size, want, child, why, sizeof why) < 0) {
        fp_manifest_free(&m);
        rc = -1;
    }
    free(row.body);
    if (rc < 0) return fp_error_set(err, 0, "manifest %s: %s", digest, why);
    if (m.is_index && depth > 0) {
        fp_manifest_free(&m);
        return fp_error_set(err, 0, "index nested too deep");
    }
    if (!m.is_index) rc = hold_blob(f, store, repo, m.config.digest, o, bytes, err);
    for (size_t i = 0; rc == 0 && i < m.nrefs; i++) {
        if (m.refs[i].has_urls) continue; /* foreign layers stay foreign */
        if (one && strcmp(m.refs[i].digest, child) != 0) continue;
        rc = m.is_index
                 ? hold_manifest(f, store, repo, m.refs[i].digest, NULL, o, depth + 1, bytes, err)
                 : hold_blob(f, store, repo, m.refs[i].digest, o, bytes, err);
    }
    fp_manifest_free(&m);
    return rc;
}

int fp_fed_hold(fp_federation *f, fp_store *store, const char *repo, const char *digest,
                const fp_fed_origin *o, uint64_t *bytes, fp_error *err)
{
    return fp_fed_hold_platform(f, store, repo, digest, NULL, o, bytes, err);
}

int fp_fed_hold_platform(fp_federation *f, fp_store *store, const char *repo, const char *digest,
                         const fp_platform *want, const fp_fed_origin *o, uint64_t *bytes,
                         fp_error *err)
{
    uint64_t moved = 0;
    fp_fed_origin none = {.hops = 0};
    if (f && fp_recall_set_has(f->recalled, digest))
        return fp_error_set(err, EACCES, "%s@%s is recalled", repo, digest);
    int rc = hold_manifest(f, store, repo, digest, want, o ? o : &none, 0, &moved, err);
    if (bytes) *bytes += moved;
    return rc;
}
