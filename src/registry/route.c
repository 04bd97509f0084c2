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
