/* Mapping a request path to an API endpoint. Repository names contain
 * slashes, so the endpoint is recognised from the end of the path
 * (".../manifests/<ref>", ".../blobs/uploads/<id>", ".../tags/list", ...),
 * and the name in front of it must pass fp_name_valid. */
#ifndef FP_REGISTRY_ROUTE_H
#define FP_REGISTRY_ROUTE_H

#include "core/digest.h"
#include "core/name.h"

enum fp_route_kind {
    FP_ROUTE_NONE,         /* not an API path: 404 */
    FP_ROUTE_NAME_INVALID, /* an API path with an invalid repository name */
    FP_ROUTE_BASE,         /* /v2/ */
    FP_ROUTE_CATALOG,      /* /v2/_catalog */
    FP_ROUTE_TAGS,         /* /v2/<name>/tags/list */
    FP_ROUTE_MANIFEST,     /* /v2/<name>/manifests/<reference> */
    FP_ROUTE_BLOB,         /* /v2/<name>/blobs/<digest> */
    FP_ROUTE_UPLOAD_START, /* /v2/<name>/blobs/uploads/ */
    FP_ROUTE_UPLOAD,       /* /v2/<name>/blobs/uploads/<id> */
    FP_ROUTE_REFERRERS,    /* /v2/<name>/referrers/<digest> */
    FP_ROUTE_RESOLVE,      /* /api/v1/resolve/<name>: the nearest node holding it */
};

typedef struct fp_route {
    enum fp_route_kind kind;
    char name[FP_NAME_MAX + 1];
    char ref[FP_DIGEST_MAX + 8]; /* tag, digest or upload id (unvalidated) */
} fp_route;

void fp_route_parse(const char *path, fp_route *r);

/* Route families: what metrics count requests by (a bounded set, never
 * the raw path). */
enum fp_route_family {
    FP_FAM_BASE,
    FP_FAM_CATALOG,
    FP_FAM_TAGS,
    FP_FAM_MANIFESTS,
    FP_FAM_BLOBS,
    FP_FAM_UPLOADS,
    FP_FAM_REFERRERS,
    FP_FAM_RESOLVE,
    FP_FAM_TOKEN,
    FP_FAM_JOIN,
    FP_FAM_NODE_AUTH, /* revoked, signer, authdata: what nodes sync */
    FP_FAM_HEARTBEAT,
    FP_FAM_NODES,
    FP_FAM_REPLICATION,
    FP_FAM_SERVICES,
    FP_FAM_RECALLS,
    FP_FAM_USAGE,
    FP_FAM_LOGS,
    FP_FAM_AUDIT,
    FP_FAM_METRICS,
    FP_FAM_HEALTH,
    FP_FAM_OTHER,
    FP_FAM_COUNT
};
/* The family of a request: from its parsed route when it has one (kind
 * not FP_ROUTE_NONE), else from its path. */
enum fp_route_family fp_route_family(const char *path, enum fp_route_kind kind);
const char *fp_route_family_name(enum fp_route_family f);

#endif
