/* The recalled images, as every node applies them (`fogport recall`,
 * docs/security.md "Recall"). The cloud keeps the recalls in control.db
 * (control/recalls.h) and serves them at GET /api/v1/recalls; fogs and
 * edges fetch that list with their credential and keep it in
 * DATA/node/recalls.json. Each node loads it into one fp_recall_set that
 * its registry (refuses recalled manifests and their blobs), its
 * federation (never fetches them) and its agent (never runs them) share.
 *
 * A record, as the cloud serves it:
 *   {"digest": "sha256:...", "repo": "iot_service", "ref": "iot_service:1.0",
 *    "user": "admin", "time": 1700000000, "reason": "...",
 *    "children": [digests of an index's manifests, recalled with it],
 *    "tags": [tags of repo that pointed at it when it was recalled],
 *    "blobs": [config and layers of the recalled manifests]}
 * The digest and its children are refused in every repository. A blob is
 * refused in repo only while no manifest of repo that is not recalled
 * references it: a shared base layer stays available to the images that
 * share it. A tag in "tags" that this node cannot resolve to a manifest
 * that is not recalled is answered as recalled too (a fog that deleted the
 * image must not answer "unknown" and look merely empty). */
#ifndef FP_CONTROL_RECALLSET_H
#define FP_CONTROL_RECALLSET_H

#include <jansson.h>
#include <stdbool.h>

#include "core/digest.h"
#include "core/error.h"
#include "store/store.h"

typedef struct fp_recall_set fp_recall_set;

int fp_recall_set_new(fp_recall_set **out, fp_error *err);
void fp_recall_set_free(fp_recall_set *s);

/* Replace the whole set with records (a JSON array as above; records
 * without a valid digest are skipped). 1 when it changed, 0 when it was
 * the same, -1 on error (the set is left as it was). */
int fp_recall_set_replace(fp_recall_set *s, const json_t *records, fp_error *err);
/* The records (a new reference to an array nobody changes). */
json_t *fp_recall_set_records(fp_recall_set *s);
size_t fp_recall_set_count(fp_recall_set *s);
/* A digest of the records ("" for a NULL set): equal at the cloud and a
 * node exactly when both hold the same recalls. The cloud answers each
 * heartbeat with its version, so a node that is behind fetches the list at
 * once instead of at its next revocation interval. */
void fp_recall_set_version(fp_recall_set *s, char out[FP_DIGEST_MAX]);

/* Is manifest digest recalled? False for a NULL set. */
bool fp_recall_set_has(fp_recall_set *s, const char *digest);
/* Was repo:tag a tag of a recalled image (see above)? */
bool fp_recall_set_tag(fp_recall_set *s, const char *repo, const char *tag);
/* Must blob digest of repo be refused: part of a recalled image of repo,
 * and referenced by no manifest of repo in store that is not recalled? */
bool fp_recall_set_blob_denied(fp_recall_set *s, fp_store *store, const char *repo,
                               const char *digest);

/* A fog or edge: delete the recalled manifests (with their tags) from the
 * store and unlink the blobs only they referenced from their repository
 * (the bytes go at the next gc). Returns how many manifests went. */
int fp_recall_set_apply(fp_recall_set *s, fp_store *store, fp_error *err);

#endif
