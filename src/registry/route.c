#include "registry/route.h"

#include <string.h>

/* Does path[0..len) end with "/<word>/<last>" where last has no '/'?
 * On success *name_end is where the name stops and *last points at last. */
static int suffix(const char *path, size_t len, const char *word, size_t *name_end,
                  const char **last)
{
    const char *slash = NULL;
    for (size_t i = len; i > 0; i--)
        if (path[i - 1] == '/') {
            slash = path + i - 1;
            break;
        }
    if (!slash) return 0;
    size_t wl = strlen(word);
    size_t before = (size_t)(slash - path);
    if (before < wl + 1 || memcmp(slash - wl, word, wl) != 0 || slash[-(long)wl - 1] != '/')
        return 0;
    *name_end = before - wl - 1;
    *last = slash + 1;
    return 1;
}

static void set(fp_route *r, enum fp_route_kind kind, const char *name, size_t name_len,
                const char *ref, size_t ref_len)
{
    if (name_len > FP_NAME_MAX || !fp_name_valid(name, name_len)) {
        r->kind = FP_ROUTE_NAME_INVALID;
        return;
    }
    if (ref_len >= sizeof r->ref) {
        /* longer than any tag, digest or id: keep a marker that fails validation */
        ref = "\x01";
        ref_len = 1;
    }
    r->kind = kind;
    memcpy(r->name, name, name_len);
    r->name[name_len] = '\0';
    memcpy(r->ref, ref, ref_len);
    r->ref[ref_len] = '\0';
}

void fp_route_parse(const char *path, fp_route *r)
{
    memset(r, 0, sizeof *r);
    r->kind = FP_ROUTE_NONE;
    static const char resolve[] = "/api/v1/resolve/";
    if (!strncmp(path, resolve, sizeof resolve - 1)) {
        const char *name = path + sizeof resolve - 1;
        set(r, FP_ROUTE_RESOLVE, name, strlen(name), "", 0);
        return;
    }
    if (strncmp(path, "/v2", 3) != 0) return;
    if (strcmp(path, "/v2") == 0 || strcmp(path, "/v2/") == 0) {
        r->kind = FP_ROUTE_BASE;
        return;
    }
    if (path[3] != '/') return;
    const char *p = path + 4; /* after "/v2/" */
    size_t len = strlen(p);
    if (strcmp(p, "_catalog") == 0) {
        r->kind = FP_ROUTE_CATALOG;
        return;
    }
    size_t ne;
    const char *last;
    if (len > 10 && strcmp(p + len - 10, "/tags/list") == 0) {
        set(r, FP_ROUTE_TAGS, p, len - 10, "", 0);
        return;
    }
    /* ".../blobs/uploads/" and ".../blobs/uploads" start an upload */
    if (len > 15 && strcmp(p + len - 15, "/blobs/uploads/") == 0) {
        set(r, FP_ROUTE_UPLOAD_START, p, len - 15, "", 0);
        return;
    }
    if (len > 14 && strcmp(p + len - 14, "/blobs/uploads") == 0) {
        set(r, FP_ROUTE_UPLOAD_START, p, len - 14, "", 0);
        return;
    }
    if (suffix(p, len, "uploads", &ne, &last) && ne >= 6 && memcmp(p + ne - 6, "/blobs", 6) == 0) {
        set(r, FP_ROUTE_UPLOAD, p, ne - 6, last, strlen(last));
        return;
    }
    static const struct {
        const char *word;
        enum fp_route_kind kind;
    } endpoints[] = {
        {"manifests", FP_ROUTE_MANIFEST},
        {"blobs", FP_ROUTE_BLOB},
        {"referrers", FP_ROUTE_REFERRERS},
    };
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++) {
        if (suffix(p, len, endpoints[i].word, &ne, &last) && *last) {
            set(r, endpoints[i].kind, p, ne, last, strlen(last));
            return;
        }
    }
}

static const char *const family_names[FP_FAM_COUNT] = {
    "base",  "catalog", "tags",      "manifests", "blobs",  "uploads",     "referrers", "resolve",
    "token", "join",    "node_auth", "heartbeat", "nodes",  "replication", "services",  "recalls",
    "usage", "logs",    "audit",     "metrics",   "health", "other",
};

const char *fp_route_family_name(enum fp_route_family f)
{
    return f < FP_FAM_COUNT ? family_names[f] : "other";
}

enum fp_route_family fp_route_family(const char *path, enum fp_route_kind kind)
{
    switch (kind) {
    case FP_ROUTE_BASE:
        return FP_FAM_BASE;
    case FP_ROUTE_CATALOG:
        return FP_FAM_CATALOG;
    case FP_ROUTE_TAGS:
        return FP_FAM_TAGS;
    case FP_ROUTE_MANIFEST:
        return FP_FAM_MANIFESTS;
    case FP_ROUTE_BLOB:
        return FP_FAM_BLOBS;
    case FP_ROUTE_UPLOAD_START:
    case FP_ROUTE_UPLOAD:
        return FP_FAM_UPLOADS;
    case FP_ROUTE_REFERRERS:
        return FP_FAM_REFERRERS;
    case FP_ROUTE_RESOLVE:
        return FP_FAM_RESOLVE;
    case FP_ROUTE_NAME_INVALID:
    case FP_ROUTE_NONE:
        break;
    }
    /* exact paths, or a prefix when it ends with '/' */
    static const struct {
        const char *path;
        enum fp_route_family fam;
    } api[] = {
        {"/auth/token", FP_FAM_TOKEN},
        {"/api/v1/join", FP_FAM_JOIN},
        {"/api/v1/revoked", FP_FAM_NODE_AUTH},
        {"/api/v1/signer", FP_FAM_NODE_AUTH},
        {"/api/v1/authdata", FP_FAM_NODE_AUTH},
        {"/api/v1/heartbeat", FP_FAM_HEARTBEAT},
        {"/api/v1/nodes", FP_FAM_NODES},
        {"/api/v1/replication", FP_FAM_REPLICATION},
        {"/api/v1/replication/", FP_FAM_REPLICATION},
        {"/api/v1/services", FP_FAM_SERVICES},
        {"/api/v1/services/", FP_FAM_SERVICES},
        {"/api/v1/agent/desired", FP_FAM_SERVICES},
        {"/api/v1/instances", FP_FAM_SERVICES},
        {"/api/v1/violations", FP_FAM_SERVICES},
        {"/api/v1/recalls", FP_FAM_RECALLS},
        {"/api/v1/recalls/", FP_FAM_RECALLS},
        {"/api/v1/usage", FP_FAM_USAGE},
        {"/api/v1/events", FP_FAM_USAGE},
        {"/api/v1/logs/", FP_FAM_LOGS},
        {"/api/v1/audit", FP_FAM_AUDIT},
        {"/metrics", FP_FAM_METRICS},
        {"/healthz", FP_FAM_HEALTH},
        {"/readyz", FP_FAM_HEALTH},
    };
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        size_t n = strlen(api[i].path);
        if (api[i].path[n - 1] == '/' ? !strncmp(path, api[i].path, n) : !strcmp(path, api[i].path))
            return api[i].fam;
    }
    /* a registry path refused before it was parsed (not one with a bad name) */
    if (kind == FP_ROUTE_NONE) {
        fp_route r;
        fp_route_parse(path, &r);
        if (r.kind != FP_ROUTE_NONE && r.kind != FP_ROUTE_NAME_INVALID)
            return fp_route_family(path, r.kind);
    }
    return FP_FAM_OTHER;
}
