/* /v2/, /v2/_catalog, /v2/<name>/tags/list and /v2/<name>/referrers/<digest>:
 * the read-only listing endpoints. Pages are bounded by [limits] max_page;
 * one row more than the page is read to know whether a Link is due. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/manifest.h"
#include "core/range.h"
#include "registry/request.h"

void fp_handle_base(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    fp_respond_bytes(r, 200, "application/json", "{}", 2);
}

struct page {
    fp_buf json;
    unsigned limit; /* names wanted in this page */
    unsigned count;
    bool more;
    char last[FP_NAME_MAX + 1];
};

static int add_name(void *ctx, const char *name)
{
    struct page *p = ctx;
    if (p->count == p->limit) {
        p->more = true;
        return 1;
    }
    /* names and tags are validated on the way in: no JSON escaping needed */
    if (fp_buf_printf(&p->json, "%s\"%s\"", p->count ? "," : "", name) < 0) return 1;
    snprintf(p->last, sizeof p->last, "%s", name);
    p->count++;
    return 0;
}

/* n and last from the query; false (and responded) when n is not a number. */
static bool page_args(fp_req *r, struct page *p, const char **last)
{
    const char *n = fp_req_arg(r, "n");
    uint64_t want = r->reg->cfg->max_page;
    if (n && fp_parse_u64(n, &want) < 0) {
        fp_respond_error(r, 400, "UNSUPPORTED", "n must be a non-negative integer");
        return false;
    }
    p->limit = want > r->reg->cfg->max_page ? r->reg->cfg->max_page : (unsigned)want;
    *last = fp_req_arg(r, "last");
    return true;
}

static void respond_page(fp_req *r, struct page *p, const char *link_path)
{
    fp_buf_puts(&p->json, "]}");
    size_t len = p->json.len;
    r->bytes_out = len;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, fp_buf_steal(&p->json), MHD_RESPMEM_MUST_FREE);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        if (p->more) {
            cleanup_buf fp_buf link = FP_BUF_INIT;
            fp_buf_printf(&link, "<%s?n=%u&last=", link_path, p->limit);
            fp_buf_put_urlencoded(&link, p->last);
            fp_buf_puts(&link, ">; rel=\"next\"");
            MHD_add_response_header(resp, "Link", link.data);
        }
    }
    fp_respond(r, 200, resp);
}

/* The catalog shows only repositories the caller may pull: rows are read
 * in batches and filtered until the page is full (or the store is done). */
struct catalog_scan {
    fp_req *r;
    struct page *page;
    char cursor[FP_NAME_MAX + 1];
    unsigned seen;
    int stop;
};

static int catalog_row(void *ctx, const char *name)
{
    struct catalog_scan *cs = ctx;
    cs->seen++;
    snprintf(cs->cursor, sizeof cs->cursor, "%s", name);
    if (!fp_req_may(cs->r, name, FP_ACT_PULL)) return 0;
    cs->stop = add_name(cs->page, name);
    return cs->stop;
}

void fp_handle_catalog(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    struct page p = {.json = FP_BUF_INIT};
    const char *last;
    if (!page_args(r, &p, &last)) return;
    fp_buf_puts(&p.json, "{\"repositories\":[");
    struct catalog_scan cs = {.r = r, .page = &p};
    snprintf(cs.cursor, sizeof cs.cursor, "%s", last ? last : "");
    enum { BATCH = 256 };
    while (p.limit && !cs.stop) {
        fp_error err;
        cs.seen = 0;
        if (fp_store_catalog(r->reg->store, cs.cursor, BATCH, catalog_row, &cs, &err) < 0) {
            fp_buf_free(&p.json);
            fp_respond_internal(r, &err);
            return;
        }
        if (cs.seen < BATCH) break;
    }
    respond_page(r, &p, "/v2/_catalog");
}

void fp_handle_tags(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    struct page p = {.json = FP_BUF_INIT};
    const char *last;
    if (!page_args(r, &p, &last)) return;
    fp_buf_printf(&p.json, "{\"name\":\"%s\",\"tags\":[", r->route.name);
    fp_error err;
    int rc = fp_store_tags(r->reg->store, r->route.name, last, p.limit ? p.limit + 1 : 0, add_name,
                           &p, &err);
    if (rc != 0) {
        fp_buf_free(&p.json);
        if (rc == FP_STORE_NOT_FOUND)
            fp_respond_error(r, 404, "NAME_UNKNOWN", "repository name not known to registry");
        else
            fp_respond_internal(r, &err);
        return;
    }
    char link[FP_NAME_MAX + 32];
    snprintf(link, sizeof link, "/v2/%s/tags/list", r->route.name);
    respond_page(r, &p, link);
}

struct referrers {
    fp_buf json;
    const char *filter;
    unsigned count;
};

static int add_referrer(void *ctx, const fp_referrer *ref)
{
    struct referrers *rs = ctx;
    if (rs->filter && (!ref->artifact_type || strcmp(rs->filter, ref->artifact_type) != 0))
        return 0;
    /* media types and digests were validated when the manifest was stored;
     * annotations are stored as serialised JSON */
    fp_buf_printf(&rs->json, "%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu",
                  rs->count ? "," : "", ref->media_type, ref->digest,
                  (unsigned long long)ref->size);
    if (ref->artifact_type && ref->artifact_type[0])
        fp_buf_printf(&rs->json, ",\"artifactType\":\"%s\"", ref->artifact_type);
    if (ref->annotations && ref->annotations[0])
        fp_buf_printf(&rs->json, ",\"annotations\":%s", ref->annotations);
    fp_buf_puts(&rs->json, "}");
    rs->count++;
    return 0;
}

void fp_handle_referrers(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    if (!fp_req_digest_ok(r, r->route.ref)) return;
    fp_error err;
    fp_fed_origin o;
    fp_req_fed_origin(r, &o);
    fp_manifest_row row;
    /* a subject this node does not hold: its referrers are elsewhere too */
    if (r->reg->fed && fp_fed_may_forward(r->reg->fed, &o) &&
        fp_store_manifest_get(r->reg->store, r->route.name, r->route.ref, true, false, &row,
                              &err) == FP_STORE_NOT_FOUND) {
        char *body = NULL;
        size_t len = 0;
        const char *filter = fp_req_arg(r, "artifactType");
        char q[300] = "";
        if (filter && filter[0] && strlen(filter) < 200 && !strpbrk(filter, "&#? "))
            snprintf(q, sizeof q, "artifactType=%s", filter);
        if (fp_fed_referrers(r->reg->fed, r->route.name, r->route.ref, q[0] ? q : NULL, &o, &body,
                             &len, &err) == 0) {
            struct MHD_Response *resp =
                MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
            if (resp) {
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, FP_MT_OCI_INDEX);
                if (q[0]) MHD_add_response_header(resp, "OCI-Filters-Applied", "artifactType");
            } else {
                free(body);
            }
            r->bytes_out = len;
            fp_respond(r, 200, resp);
            return;
        }
    }
    struct referrers rs = {.json = FP_BUF_INIT, .filter = fp_req_arg(r, "artifactType")};
    if (rs.filter && !rs.filter[0]) rs.filter = NULL;
    fp_buf_puts(&rs.json,
                "{\"schemaVersion\":2,\"mediaType\":\"" FP_MT_OCI_INDEX "\",\"manifests\":[");
    if (fp_store_referrers(r->reg->store, r->route.name, r->route.ref, add_referrer, &rs, &err) <
        0) {
        fp_buf_free(&rs.json);
        fp_respond_internal(r, &err);
        return;
    }
    fp_buf_puts(&rs.json, "]}");
    size_t len = rs.json.len;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, fp_buf_steal(&rs.json), MHD_RESPMEM_MUST_FREE);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, FP_MT_OCI_INDEX);
        if (rs.filter) MHD_add_response_header(resp, "OCI-Filters-Applied", "artifactType");
    }
    r->bytes_out = len;
    fp_respond(r, 200, resp);
}

/* GET /api/v1/catalog on the cloud: every repository the logged-in user
 * may pull, with its tags, in one answer for the dashboard (a browser's
 * Basic login reaches /api/v1, not the token-guarded /v2).
 *   {"repositories": [{"name", "tags": [...]}], "truncated": bool} */
#define API_CATALOG_MAX 500
#define API_TAGS_MAX    100

struct api_catalog {
    fp_req *r;
    json_t *repos;
    bool truncated;
};

static int api_catalog_row(void *ctx, const char *name)
{
    struct api_catalog *c = ctx;
    if (!fp_authz_policy_may(c->r, name, FP_ACT_PULL)) return 0;
    if (json_array_size(c->repos) == API_CATALOG_MAX) {
        c->truncated = true;
        return 1;
    }
    json_array_append_new(c->repos, json_pack("{s:s, s:[]}", "name", name, "tags"));
    return 0;
}

static int api_tag_row(void *ctx, const char *tag)
{
    return json_array_append_new(ctx, json_string(tag)) == 0 ? 0 : 1;
}

void fp_handle_api_catalog(fp_req *r)
{
    if (!fp_req_read_only(r) || !fp_authz_require_login(r)) return;
    struct api_catalog c = {.r = r, .repos = json_array()};
    fp_error err;
    /* the store's order is by name; filtered rows do not count */
    if (!c.repos ||
        fp_store_catalog(r->reg->store, NULL, 1u << 20, api_catalog_row, &c, &err) < 0) {
        json_decref(c.repos);
        if (!c.repos) fp_error_set(&err, ENOMEM, "catalog");
        fp_respond_internal(r, &err);
        return;
    }
    size_t i;
    json_t *repo;
    json_array_foreach(c.repos, i, repo)
    {
        json_t *tags = json_object_get(repo, "tags");
        int rc = fp_store_tags(r->reg->store, json_string_value(json_object_get(repo, "name")),
                               NULL, API_TAGS_MAX, api_tag_row, tags, &err);
        if (rc < 0) {
            json_decref(c.repos);
            fp_respond_internal(r, &err);
            return;
        }
    }
    fp_respond_json(r, json_pack("{s:o, s:b}", "repositories", c.repos, "truncated", c.truncated));
}
