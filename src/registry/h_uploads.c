/* Blob uploads: POST /v2/<name>/blobs/uploads/ (session, monolithic with
 * ?digest=, or cross-repository mount), and PATCH / PUT / GET / DELETE on
 * /v2/<name>/blobs/uploads/<id>. Bytes stream to the upload file while the
 * SHA-256 runs; a request that fails or is cut off rolls back to where it
 * started (see on_completed in server.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/range.h"
#include "registry/request.h"

static void session_location(fp_req *r, const char *id, char *out, size_t outlen)
{
    snprintf(out, outlen, "/v2/%s/blobs/uploads/%s", r->route.name, id);
}

/* "Range: 0-<last byte>" as Distribution writes it ("0-0" when empty). */
static void range_value(uint64_t offset, char out[48])
{
    snprintf(out, 48, "0-%llu", (unsigned long long)(offset ? offset - 1 : 0));
}

static void respond_session(fp_req *r, unsigned status, const char *id, uint64_t offset)
{
    char loc[FP_NAME_MAX + 80], range[48];
    session_location(r, id, loc, sizeof loc);
    range_value(offset, range);
    fp_respond_empty(r, status, "Location", loc, "Range", range, "Docker-Upload-UUID", id,
                     (char *)NULL);
}

static void respond_created(fp_req *r, const char *digest)
{
    char loc[FP_NAME_MAX + FP_DIGEST_MAX + 32];
    snprintf(loc, sizeof loc, "/v2/%s/blobs/%s", r->route.name, digest);
    fp_respond_empty(r, 201, "Location", loc, "Docker-Content-Digest", digest, (char *)NULL);
}

static int upload_body(fp_req *r, const char *data, size_t len)
{
    uint64_t max = r->reg->cfg->max_blob_bytes;
    if (max && fp_upload_offset(r->upload) + len > max)
        return fp_req_fail(r, 413, "SIZE_INVALID", "blob larger than %llu bytes",
                           (unsigned long long)max);
    fp_error err;
    if (fp_upload_write(r->upload, data, len, &err) < 0) {
        /* the chunk is rolled back; the answer waits for the end of the body */
        char q[600];
        fp_errorf("event=upload_write_failed request=%llu error=%s", (unsigned long long)r->id,
                  fp_log_quote(err.msg, q, sizeof q));
        return fp_req_fail(r, err.errnum == ENOSPC ? 507 : 500, "UNKNOWN",
                           "could not store upload");
    }
    return 0;
}

/* Checks shared by PATCH and PUT with a body: Content-Range must start at
 * the session's offset; remember the lengths to check at the end. */
static bool check_chunk_headers(fp_req *r)
{
    const char *cl = fp_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    r->has_length = cl && fp_parse_u64(cl, &r->length) == 0;
    uint64_t max = r->reg->cfg->max_blob_bytes;
    if (max && r->has_length && fp_upload_offset(r->upload) + r->length > max) {
        fp_respond_error(r, 413, "SIZE_INVALID", "blob larger than %llu bytes",
                         (unsigned long long)max);
        return false;
    }
    const char *cr = fp_req_header(r, MHD_HTTP_HEADER_CONTENT_RANGE);
    if (!cr) return true;
    if (fp_content_range_parse(cr, &r->range_start, &r->range_end) < 0) {
        fp_respond_error(r, 400, "BLOB_UPLOAD_INVALID", "malformed Content-Range");
        return false;
    }
    r->has_range = true;
    uint64_t offset = fp_upload_offset(r->upload);
    if (r->range_start != offset) {
        /* out of order or repeated chunk */
        char loc[FP_NAME_MAX + 80], range[48];
        session_location(r, fp_upload_id(r->upload), loc, sizeof loc);
        range_value(offset, range);
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (resp) {
            MHD_add_response_header(resp, "Location", loc);
            MHD_add_response_header(resp, "Range", range);
        }
        fp_respond(r, 416, resp);
        return false;
    }
    if (r->has_length && r->length != r->range_end - r->range_start + 1) {
        fp_respond_error(r, 400, "SIZE_INVALID", "Content-Length does not match Content-Range");
        return false;
    }
    return true;
}

/* After the body: did we get what the headers promised? */
static bool check_chunk_received(fp_req *r, uint64_t received)
{
    if (r->has_range && received != r->range_end - r->range_start + 1) {
        fp_upload_rollback(r->upload);
        fp_respond_error(r, 400, "SIZE_INVALID", "received %llu bytes, Content-Range says %llu",
                         (unsigned long long)received,
                         (unsigned long long)(r->range_end - r->range_start + 1));
        return false;
    }
    return true;
}

static void release(fp_req *r)
{
    fp_upload_release(r->upload);
    r->upload = NULL;
}

/* Acquire the session named in the path; responds on failure. */
static bool acquire(fp_req *r)
{
    fp_error err;
    int rc = fp_upload_acquire(r->reg->store, r->route.name, r->route.ref, &r->upload, &err);
    if (rc == 0) return true;
    r->upload = NULL;
    if (rc == FP_STORE_NOT_FOUND)
        fp_respond_error(r, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
    else if (rc == FP_STORE_BUSY)
        fp_respond_error(r, 416, "BLOB_UPLOAD_INVALID",
                         "another request is writing to this upload");
    else
        fp_respond_internal(r, &err);
    return false;
}

static void finish(fp_req *r)
{
    char computed[FP_DIGEST_MAX];
    fp_error err;
    int rc = fp_upload_finish(r->upload, r->digest, computed, &err);
    if (rc == FP_STORE_MISMATCH) {
        r->upload = NULL; /* discarded by finish */
        fp_respond_error(r, 400, "DIGEST_INVALID", "provided digest %s does not match content %s",
                         r->digest, computed);
        return;
    }
    if (rc < 0) {
        fp_respond_internal(r, &err); /* upload rolled back and released on completion */
        return;
    }
    r->upload = NULL;
    respond_created(r, r->digest);
}

/* PATCH */
static void patch_end(fp_req *r)
{
    if (r->has_range && !check_chunk_received(r, fp_upload_offset(r->upload) - r->range_start))
        return;
    char id[37];
    snprintf(id, sizeof id, "%s", fp_upload_id(r->upload));
    uint64_t offset = fp_upload_offset(r->upload);
    release(r);
    respond_session(r, 202, id, offset);
}

/* PUT ?digest= (with an optional last chunk) */
static void put_end(fp_req *r)
{
    if (r->has_range && !check_chunk_received(r, fp_upload_offset(r->upload) - r->range_start))
        return;
    finish(r);
}

/* POST ?digest= : the whole blob in one request */
static void monolithic_end(fp_req *r)
{
    if (r->has_length && fp_upload_offset(r->upload) != r->length) {
        fp_respond_error(r, 400, "SIZE_INVALID", "body shorter than Content-Length");
        return;
    }
    finish(r);
}

void fp_handle_upload_start(fp_req *r)
{
    if (r->method != M_POST) {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    fp_error err;
    const char *mount = fp_req_arg(r, "mount");
    if (mount && fp_digest_valid(mount)) {
        const char *from = fp_req_arg(r, "from");
        if (from && !fp_name_valid(from, strlen(from))) {
            fp_respond_error(r, 400, "NAME_INVALID", "invalid repository name in from");
            return;
        }
        /* Mounting reads from the source: the caller must be allowed to
         * pull it. Without `from`, any stored copy is mounted (the spec
         * lets a registry do this; it saves re-uploading shared layers) -
         * but only where no authorization is configured, since it would
         * reveal content of repositories the caller may not see. */
        bool allowed =
            from ? fp_req_may(r, from, FP_ACT_PULL) : r->reg->authz->mode == FP_AUTH_NONE;
        int rc = allowed ? fp_store_blob_mount(r->reg->store, r->route.name, mount, from, &err)
                         : FP_STORE_NOT_FOUND;
        if (rc == 0) {
            respond_created(r, mount);
            return;
        }
        if (rc < 0) {
            fp_respond_internal(r, &err);
            return;
        }
        /* not found: fall back to a normal upload session (202) */
    }
    const char *digest = fp_req_arg(r, "digest");
    if (digest) {
        if (!fp_req_digest_ok(r, digest)) return;
        snprintf(r->digest, sizeof r->digest, "%s", digest);
        const char *cl = fp_req_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
        r->has_length = cl && fp_parse_u64(cl, &r->length) == 0;
        uint64_t max = r->reg->cfg->max_blob_bytes;
        if (max && r->has_length && r->length > max) {
            fp_respond_error(r, 413, "SIZE_INVALID", "blob larger than %llu bytes",
                             (unsigned long long)max);
            return;
        }
        if (fp_upload_begin_ephemeral(r->reg->store, r->route.name, &r->upload, &err) < 0) {
            fp_respond_internal(r, &err);
            return;
        }
        r->on_body = upload_body;
        r->on_end = monolithic_end;
        return;
    }
    char id[37];
    if (fp_upload_create(r->reg->store, r->route.name, id, &err) < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    respond_session(r, 202, id, 0);
}

void fp_handle_upload(fp_req *r)
{
    fp_error err;
    switch (r->method) {
    case M_GET: {
        uint64_t offset;
        int rc = fp_upload_status(r->reg->store, r->route.name, r->route.ref, &offset, &err);
        if (rc != 0)
            fp_respond_store_error(r, rc, &err, "BLOB_UPLOAD_UNKNOWN",
                                   "blob upload unknown to registry");
        else
            respond_session(r, 204, r->route.ref, offset);
        return;
    }
    case M_DELETE: {
        int rc = fp_upload_cancel(r->reg->store, r->route.name, r->route.ref, &err);
        if (rc == FP_STORE_NOT_FOUND)
            fp_respond_error(r, 404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
        else if (rc == FP_STORE_BUSY)
            fp_respond_error(r, 400, "BLOB_UPLOAD_INVALID", "upload in progress");
        else if (rc < 0)
            fp_respond_internal(r, &err);
        else
            fp_respond_empty(r, 204, (char *)NULL);
        return;
    }
    case M_PATCH:
        if (!acquire(r)) return;
        if (!check_chunk_headers(r)) {
            release(r);
            return;
        }
        r->on_body = upload_body;
        r->on_end = patch_end;
        return;
    case M_PUT: {
        const char *digest = fp_req_arg(r, "digest");
        if (!digest) {
            fp_respond_error(r, 400, "DIGEST_INVALID", "digest parameter missing");
            return;
        }
        if (!fp_req_digest_ok(r, digest)) return;
        snprintf(r->digest, sizeof r->digest, "%s", digest);
        if (!acquire(r)) return;
        if (!check_chunk_headers(r)) {
            release(r);
            return;
        }
        r->on_body = upload_body;
        r->on_end = put_end;
        return;
    }
    default:
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
    }
}
