/* /v2/<name>/blobs/<digest>: GET (sendfile, with Range), HEAD, DELETE. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "control/recallset.h"
#include "core/range.h"
#include "registry/request.h"

static void blob_headers(struct MHD_Response *resp, const char *digest)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, "Docker-Content-Digest", digest);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    char etag[FP_DIGEST_MAX + 2];
    snprintf(etag, sizeof etag, "\"%s\"", digest);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
}

static ssize_t read_fetch(void *cls, uint64_t pos, char *buf, size_t max)
{
    long n = fp_fetch_reader_read(cls, pos, buf, max);
    if (n > 0) return n;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void close_fetch(void *cls)
{
    fp_fetch_reader_close(cls);
}

/* A blob this node does not hold. A manifest of the repository that was
 * pulled through vouches for a blob held for another repository: link it.
 * Otherwise fetch it from the nearest holder and stream it while it
 * arrives (a peer's request only joins a fetch already under way).
 * Returns false when the caller should answer from the store (again). */
static bool pull_through(fp_req *r, int *rc, fp_error *err)
{
    fp_federation *fed = r->reg->fed;
    if (fed && *rc == 0) fp_fed_count(fed, FP_FED_BLOB, FP_FED_LOCAL);
    if (!fed || *rc != FP_STORE_NOT_FOUND) return false;
    if (fp_store_blob_link_referenced(r->reg->store, r->route.name, r->route.ref, err) == 0) {
        fp_fed_count(fed, FP_FED_BLOB, FP_FED_LOCAL);
        *rc = 0;
        return false;
    }
    fp_fed_origin o;
    fp_req_fed_origin(r, &o);
    fp_fetch *x = NULL;
    uint64_t size = 0;
    int f = fp_fed_fetch_blob(fed, r->route.name, r->route.ref, fp_fed_may_forward(fed, &o), &o, &x,
                              &size, err);
    if (f == FP_STORE_NOT_FOUND) return false;
    if (f < 0) {
        fp_respond_error(r, 502, "UNKNOWN", "blob could not be fetched from another node");
        return true;
    }
    /* a range of a blob on its way: wait for it, then serve from the store */
    if (r->method == M_HEAD || fp_req_header(r, MHD_HTTP_HEADER_RANGE)) {
        if (r->method == M_HEAD) {
            struct MHD_Response *resp = fp_response_sized(size);
            if (resp) blob_headers(resp, r->route.ref);
            fp_respond(r, 200, resp);
            fp_fetch_unref(x);
            return true;
        }
        *rc = fp_fetch_wait(x) == 0 ? 0 : FP_STORE_NOT_FOUND;
        fp_fetch_unref(x);
        return false;
    }
    fp_fetch_reader *rd;
    if (fp_fetch_reader_open(x, &rd, err) < 0) {
        fp_fetch_unref(x);
        fp_respond_internal(r, err);
        return true;
    }
    /* the reader owns the reference from here */
    struct MHD_Response *resp =
        MHD_create_response_from_callback(size, 256 * 1024, read_fetch, rd, close_fetch);
    if (!resp) {
        fp_fetch_reader_close(rd);
        fp_respond(r, 500, NULL);
        return true;
    }
    blob_headers(resp, r->route.ref);
    r->bytes_out = size;
    fp_respond(r, 200, resp);
    return true;
}

static void head_blob(fp_req *r)
{
    uint64_t size = UINT64_MAX;
    fp_error err;
    int rc = fp_store_blob_stat(r->reg->store, r->route.name, r->route.ref, &size, &err);
    if (pull_through(r, &rc, &err)) return;
    if (rc == 0 && size == UINT64_MAX) /* linked just now */
        rc = fp_store_blob_stat(r->reg->store, r->route.name, r->route.ref, &size, &err);
    if (rc != 0) {
        fp_respond_store_error(r, rc, &err, "BLOB_UNKNOWN", "blob unknown to registry");
        return;
    }
    struct MHD_Response *resp = fp_response_sized(size);
    if (resp) blob_headers(resp, r->route.ref);
    fp_respond(r, 200, resp);
}

static void get_blob(fp_req *r)
{
    int fd = -1;
    uint64_t size = 0;
    fp_error err;
    int rc = fp_store_blob_open(r->reg->store, r->route.name, r->route.ref, &fd, &size, &err);
    if (pull_through(r, &rc, &err)) return;
    if (rc == 0 && fd < 0)
        rc = fp_store_blob_open(r->reg->store, r->route.name, r->route.ref, &fd, &size, &err);
    if (rc != 0) {
        fp_respond_store_error(r, rc, &err, "BLOB_UNKNOWN", "blob unknown to registry");
        return;
    }
    uint64_t start = 0, end = size ? size - 1 : 0;
    enum fp_range_status rs =
        fp_range_parse(fp_req_header(r, MHD_HTTP_HEADER_RANGE), size, &start, &end);
    if (rs == FP_RANGE_UNSATISFIABLE) {
        close(fd);
        char cr[48];
        snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (resp) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        fp_respond(r, 416, resp);
        return;
    }
    bool partial = rs == FP_RANGE_OK;
    uint64_t len = size ? end - start + 1 : 0;
    /* MHD owns fd from here and serves it with sendfile */
    struct MHD_Response *resp = MHD_create_response_from_fd_at_offset64(len, fd, start);
    if (!resp) {
        close(fd);
        fp_respond(r, 500, NULL);
        return;
    }
    blob_headers(resp, r->route.ref);
    if (partial) {
        char cr[80];
        snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)start,
                 (unsigned long long)end, (unsigned long long)size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    r->bytes_out = len;
    fp_respond(r, partial ? 206 : 200, resp);
}

static void delete_blob(fp_req *r)
{
    if (!r->reg->cfg->delete_enabled) {
        fp_respond_error(r, 405, "UNSUPPORTED", "deletion is disabled on this registry");
        return;
    }
    fp_error err;
    int rc = fp_store_blob_delete(r->reg->store, r->route.name, r->route.ref, &err);
    if (rc != 0)
        fp_respond_store_error(r, rc, &err, "BLOB_UNKNOWN", "blob unknown to registry");
    else
        fp_respond_empty(r, 202, "Docker-Content-Digest", r->route.ref, (char *)NULL);
}

void fp_handle_blob(fp_req *r)
{
    if (r->method != M_GET && r->method != M_HEAD && r->method != M_DELETE) {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    if (!fp_req_digest_ok(r, r->route.ref)) return;
    /* the layers and config of a recalled image, unless another image of
     * the repository still needs them (a shared base layer) */
    if (r->method != M_DELETE &&
        fp_recall_set_blob_denied(r->reg->recalled, r->reg->store, r->route.name, r->route.ref)) {
        fp_respond_error(r, 403, "DENIED", "%s: blob %s belongs to a recalled image", r->route.name,
                         r->route.ref);
        return;
    }
    if (r->method == M_HEAD)
        head_blob(r);
    else if (r->method == M_GET)
        get_blob(r);
    else
        delete_blob(r);
}
