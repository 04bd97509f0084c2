/* /v2/<name>/manifests/<reference>: GET, HEAD, PUT, DELETE. A manifest is
 * checked before it is stored (valid JSON of a supported kind, digest
 * matching a by-digest reference, every referenced blob and child manifest
 * present in this repository) and stored byte for byte. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/recallset.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "core/range.h"
#include "core/manifest.h"
#include "registry/request.h"

#define MAX_TAGS_PER_PUT 64
#define TOUCH_EVERY_S    60

static bool ref_is_digest(const char *ref)
{
    return strchr(ref, ':') != NULL;
}

/* Validates the reference for reads/deletes; responds and returns false if bad. */
static bool check_ref(fp_req *r)
{
    const char *ref = r->route.ref;
    if (ref_is_digest(ref)) return fp_req_digest_ok(r, ref);
    if (!fp_tag_valid(ref, strlen(ref))) {
        fp_respond_error(r, 404, "MANIFEST_UNKNOWN", "manifest unknown: invalid tag");
        return false;
    }
    return true;
}

/* A node that pulls through: fetch what is missing, and re-validate a tag
 * that came from another node once it is older than [federation] tag_ttl.
 * When no holder answers, a stale tag is still served: a fog keeps working
 * while the cloud is away. */
static int pull_through(fp_req *r, bool by_digest, bool head, int rc, fp_manifest_row *row,
                        fp_error *err)
{
    fp_federation *fed = r->reg->fed;
    fp_fed_origin o;
    fp_req_fed_origin(r, &o);
    if (!fed || rc < 0) return rc;
    unsigned ttl = r->reg->cfg->fed_tag_ttl_s;
    bool stale = rc == 0 && !by_digest && row->tag_cached &&
                 (int64_t)time(NULL) - row->tag_updated >= (int64_t)ttl;
    bool forward = fp_fed_may_forward(fed, &o);
    if (rc == 0 && (!stale || !forward)) fp_fed_count(fed, FP_FED_MANIFEST, FP_FED_LOCAL);
    if (!forward || (rc == 0 && !stale)) return rc;
    fp_error perr;
    int p = fp_fed_pull_manifest(fed, r->route.name, r->route.ref, by_digest, &o, &perr);
    if (p != 0) {
        if (rc == 0) {
            fp_info("event=stale_tag_served repo=%s tag=%s", r->route.name, r->route.ref);
            return 0;
        }
        if (p < 0) *err = perr;
        return p < 0 ? -1 : FP_STORE_NOT_FOUND;
    }
    if (rc == 0) free(row->body);
    return fp_store_manifest_get(r->reg->store, r->route.name, r->route.ref, by_digest, !head, row,
                                 err);
}

static void get_manifest(fp_req *r)
{
    bool head = r->method == M_HEAD;
    bool by_digest = ref_is_digest(r->route.ref);
    /* a recalled image is refused to everyone, token or not, and never
     * fetched from another node */
    if (by_digest && fp_req_refuse_recalled(r, r->route.ref)) return;
    fp_manifest_row row;
    fp_error err;
    int rc = fp_store_manifest_get(r->reg->store, r->route.name, r->route.ref, by_digest, !head,
                                   &row, &err);
    if (rc == 0 && fp_recall_set_has(r->reg->recalled, row.digest)) {
        free(row.body);
        fp_req_refuse_recalled(r, row.digest);
        return;
    }
    rc = pull_through(r, by_digest, head, rc, &row, &err);
    if (rc != 0 &&
        ((rc < 0 && err.errnum == EACCES) ||
         (!by_digest && fp_recall_set_tag(r->reg->recalled, r->route.name, r->route.ref)))) {
        /* deleted here, refused upstream: say why rather than "unknown" */
        fp_respond_error(r, 403, "DENIED", "%s:%s is recalled", r->route.name, r->route.ref);
        return;
    }
    if (rc != 0) {
        fp_respond_store_error(r, rc, &err, "MANIFEST_UNKNOWN", "manifest unknown to registry");
        return;
    }
    if (fp_req_refuse_recalled(r, row.digest)) { /* pulled through just now */
        free(row.body);
        return;
    }
    /* cache eviction takes the least recently used images first: note the
     * use, at most once a minute (a write) */
    int64_t now = (int64_t)time(NULL);
    fp_error terr;
    if (now - row.last_used >= TOUCH_EVERY_S &&
        fp_store_manifest_touch(r->reg->store, r->route.name, row.digest, now, &terr) < 0)
        fp_debug("event=touch_failed repo=%s digest=%s error=\"%s\"", r->route.name, row.digest,
                 terr.msg);
    char etag[FP_DIGEST_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", row.digest);
    const char *inm = fp_req_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (inm && strcmp(inm, etag) == 0) {
        free(row.body);
        fp_respond_empty(r, 304, "Docker-Content-Digest", row.digest, "ETag", etag, (char *)NULL);
        return;
    }
    struct MHD_Response *resp;
    if (head) {
        /* Content-Length from the size, no body and no copy */
        resp = fp_response_sized(row.size);
    } else {
        resp = MHD_create_response_from_buffer(row.size, row.body, MHD_RESPMEM_MUST_FREE);
        if (!resp) free(row.body);
        r->bytes_out = row.size;
    }
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, row.media_type);
        MHD_add_response_header(resp, "Docker-Content-Digest", row.digest);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    }
    fp_respond(r, 200, resp);
}

static void delete_manifest(fp_req *r)
{
    if (!r->reg->cfg->delete_enabled) {
        fp_respond_error(r, 405, "UNSUPPORTED", "deletion is disabled on this registry");
        return;
    }
    fp_error err;
    int rc = fp_store_manifest_delete(r->reg->store, r->route.name, r->route.ref,
                                      ref_is_digest(r->route.ref), &err);
    if (rc != 0)
        fp_respond_store_error(r, rc, &err, "MANIFEST_UNKNOWN", "manifest unknown to registry");
    else
        fp_respond_empty(r, 202, (char *)NULL);
    if (rc == 0) fp_audit_on_delete(r); /* at the cloud: in its audit trail */
}

static int manifest_body(fp_req *r, const char *data, size_t len)
{
    if (r->body.len + len > r->body_limit)
        return fp_req_fail(r, 413, "MANIFEST_INVALID", "manifest larger than %llu bytes",
                           (unsigned long long)r->body_limit);
    if (fp_buf_append(&r->body, data, len) < 0)
        return fp_req_fail(r, 500, "UNKNOWN", "out of memory");
    return 0;
}

struct tag_list {
    const char *tags[MAX_TAGS_PER_PUT + 1];
    size_t n;
    bool invalid;
    bool too_many;
};

static enum MHD_Result collect_tag(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct tag_list *tl = cls;
    if (strcmp(key, "tag") != 0) return MHD_YES;
    if (!value || !fp_tag_valid(value, strlen(value))) {
        tl->invalid = true;
        return MHD_NO;
    }
    if (tl->n >= MAX_TAGS_PER_PUT) {
        tl->too_many = true;
        return MHD_NO;
    }
    tl->tags[tl->n++] = value;
    return MHD_YES;
}

static void put_manifest_end(fp_req *r)
{
    const char *ref = r->route.ref;
    bool by_digest = ref_is_digest(ref);
    fp_manifest m;
    char why[300];
    if (fp_manifest_parse(r->body.data ? r->body.data : "", r->body.len,
                          fp_req_header(r, MHD_HTTP_HEADER_CONTENT_TYPE), &m, why,
                          sizeof why) < 0) {
        fp_respond_error(r, 400, "MANIFEST_INVALID", "manifest invalid: %s", why);
        return;
    }
    enum fp_digest_alg alg = FP_SHA256;
    if (by_digest) fp_digest_parse(ref, strlen(ref), &alg);
    char digest[FP_DIGEST_MAX];
    fp_digest_bytes(alg, r->body.data ? r->body.data : "", r->body.len, digest);
    if (by_digest && strcmp(digest, ref) != 0) {
        fp_manifest_free(&m);
        fp_respond_error(r, 400, "DIGEST_INVALID", "manifest digest %s does not match %s", digest,
                         ref);
        return;
    }

    struct tag_list tl = {.n = 0};
    if (!by_digest)
        tl.tags[tl.n++] = ref;
    else
        MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_tag, &tl);
    if (tl.invalid || tl.too_many) {
        fp_manifest_free(&m);
        if (tl.too_many)
            fp_respond_error(r, 414, "UNSUPPORTED", "more than %d tags", MAX_TAGS_PER_PUT);
        else
            fp_respond_error(r, 400, "MANIFEST_INVALID", "invalid tag");
        return;
    }

    /* a recalled image does not come back by a push (un-recall first) */
    if (fp_req_refuse_recalled(r, digest)) {
        fp_manifest_free(&m);
        return;
    }
    char missing[FP_DIGEST_MAX] = "";
    fp_error err;
    int rc = fp_store_manifest_put_parsed(r->reg->store, r->route.name, &m, digest,
                                          r->body.data ? r->body.data : "", r->body.len, tl.tags,
                                          tl.n, false, missing, &err);
    /* On a pull-through node a client's HEAD may have answered "present"
     * for a blob still on its way from another node: wait for it. */
    for (size_t tries = 0; rc == FP_STORE_NOT_FOUND && r->reg->fed && tries <= m.nrefs; tries++) {
        fp_fed_origin join_only = {.from_peer = true};
        fp_fetch *x = NULL;
        uint64_t size;
        if (fp_fed_fetch_blob(r->reg->fed, r->route.name, missing, false, &join_only, &x, &size,
                              &err) != 0)
            break;
        int w = fp_fetch_wait(x);
        fp_fetch_unref(x);
        if (w < 0) break;
        rc = fp_store_manifest_put_parsed(r->reg->store, r->route.name, &m, digest,
                                          r->body.data ? r->body.data : "", r->body.len, tl.tags,
                                          tl.n, false, missing, &err);
    }
    bool has_subject = m.has_subject;
    char subject[FP_DIGEST_MAX];
    snprintf(subject, sizeof subject, "%s", m.subject);
    fp_manifest_free(&m);
    if (rc == FP_STORE_NOT_FOUND) {
        fp_respond_error(r, 400, "MANIFEST_BLOB_UNKNOWN",
                         "manifest references %s, unknown to this repository", missing);
        return;
    }
    if (rc < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    char location[FP_NAME_MAX + FP_DIGEST_MAX + 32];
    snprintf(location, sizeof location, "/v2/%s/manifests/%s", r->route.name, digest);
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
        MHD_add_response_header(resp, "Docker-Content-Digest", digest);
        if (has_subject) MHD_add_response_header(resp, "OCI-Subject", subject);
        for (size_t i = 0; by_digest && i < tl.n; i++)
            MHD_add_response_header(resp, "OCI-Tag", tl.tags[i]);
    }
    fp_respond(r, 201, resp);
    fp_replication_on_push(r, digest, tl.tags, tl.n);
    fp_audit_on_push(r, digest, tl.tags, tl.n); /* at the cloud: a registration */
}

static void put_manifest(fp_req *r)
{
    const char *ref = r->route.ref;
    if (ref_is_digest(ref)) {
        if (!fp_req_digest_ok(r, ref)) return;
    } else if (!fp_tag_valid(ref, strlen(ref))) {
        fp_respond_error(r, 400, "MANIFEST_INVALID", "invalid tag");
        return;
    }
    r->body_limit = r->reg->cfg->max_manifest_bytes;
    const char *cl = fp_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t len;
    if (cl && fp_parse_u64(cl, &len) == 0 && len > r->body_limit) {
        fp_respond_error(r, 413, "MANIFEST_INVALID", "manifest larger than %llu bytes",
                         (unsigned long long)r->body_limit);
        return;
    }
    r->on_body = manifest_body;
    r->on_end = put_manifest_end;
}

void fp_handle_manifest(fp_req *r)
{
    switch (r->method) {
    case M_GET:
    case M_HEAD:
        if (check_ref(r)) get_manifest(r);
        return;
    case M_PUT:
        put_manifest(r);
        return;
    case M_DELETE:
        if (check_ref(r)) delete_manifest(r);
        return;
    default:
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
    }
}
