/* GET /ui/ on the cloud: the operator dashboard (docs/monitoring.md). Its
 * files are embedded in the binary (ui_assets.h); the page reads everything
 * it shows from the cloud's /api/v1 with the browser's Basic login, so the
 * files sit behind the same login as the API. Fogs and edges have no
 * dashboard: dispatch sends /ui only to the cloud. */
#include <string.h>

#include "registry/request.h"
#include "registry/ui_assets.h"

static const fp_ui_asset *find_asset(const char *name)
{
    if (!*name) name = "index.html";
    for (size_t i = 0; i < fp_ui_nassets; i++)
        if (!strcmp(fp_ui_assets[i].name, name)) return &fp_ui_assets[i];
    return NULL;
}

/* Does an If-None-Match list name this ETag (or "*")? Weak comparison,
 * as RFC 9110 asks for If-None-Match. */
static bool etag_matches(const char *header, const char *etag)
{
    if (!header) return false;
    size_t el = strlen(etag);
    const char *p = header;
    while (*p) {
        p += strspn(p, " \t,");
        if (*p == '*') return true;
        if (!strncmp(p, "W/", 2)) p += 2;
        size_t n = strcspn(p, ",");
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n == el && !memcmp(p, etag, el)) return true;
        p += strcspn(p, ",");
    }
    return false;
}

static void security_headers(struct MHD_Response *resp, const fp_ui_asset *a)
{
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag);
    /* behind a login: no shared cache keeps it; revalidated by ETag */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "private, no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'self'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
}

void fp_handle_ui(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    if (!strcmp(r->path, "/ui")) {
        fp_respond_empty(r, 301, MHD_HTTP_HEADER_LOCATION, "/ui/", NULL);
        return;
    }
    if (!fp_authz_require_login(r)) return;
    const fp_ui_asset *a = find_asset(r->path + strlen("/ui/"));
    if (!a) {
        fp_respond_bytes(r, 404, "text/plain; charset=utf-8", "404 page not found\n", 19);
        return;
    }
    bool fresh = etag_matches(fp_req_header(r, MHD_HTTP_HEADER_IF_NONE_MATCH), a->etag);
    struct MHD_Response *resp;
    if (fresh)
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    else if (r->method == M_HEAD)
        resp = fp_response_sized(a->size);
    else
        resp = MHD_create_response_from_buffer(a->size, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (resp) {
        if (!fresh) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
        security_headers(resp, a);
    }
    r->bytes_out = fresh || r->method == M_HEAD ? 0 : a->size;
    fp_respond(r, fresh ? 304 : 200, resp);
}
