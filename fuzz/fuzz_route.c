/* libFuzzer target: request path routing (registry/route fp_route_parse).
 * Each input is routed as is and with "/v2/" in front (so short runs reach
 * the endpoint suffixes). Invariants: every field is a terminated string;
 * a repository route has a name that passes fp_name_valid and rebuilds into
 * exactly the path (an over-long reference becomes a marker no tag, digest
 * or upload id matches); non-routes carry no name or reference. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/name.h"
#include "registry/route.h"
#include "fuzz.h"

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* The word between the name and the reference, or NULL. */
static const char *endpoint_word(enum fp_route_kind k)
{
    switch (k) {
    case FP_ROUTE_MANIFEST:
        return "manifests";
    case FP_ROUTE_BLOB:
        return "blobs";
    case FP_ROUTE_REFERRERS:
        return "referrers";
    case FP_ROUTE_UPLOAD:
        return "blobs/uploads";
    default:
        return NULL;
    }
}

static void check_route(const char *path)
{
    fp_route r;
    memset(&r, 0xa5, sizeof r);
    fp_route_parse(path, &r);
    CHECK(memchr(r.name, '\0', sizeof r.name) != NULL);
    CHECK(memchr(r.ref, '\0', sizeof r.ref) != NULL);
    size_t nl = strlen(r.name), rl = strlen(r.ref), pl = strlen(path);

    switch (r.kind) {
    case FP_ROUTE_NONE:
        CHECK(nl == 0 && rl == 0);
        return;
    case FP_ROUTE_NAME_INVALID:
        CHECK(nl == 0 && rl == 0);
        CHECK(starts_with(path, "/v2/") || starts_with(path, "/api/v1/resolve/"));
        return;
    case FP_ROUTE_RESOLVE:
        /* the whole rest of the path is the name */
        CHECK(starts_with(path, "/api/v1/resolve/"));
        CHECK(strcmp(path + 16, r.name) == 0 && fp_name_valid(r.name, nl) && rl == 0);
        return;
    case FP_ROUTE_BASE:
        CHECK(strcmp(path, "/v2") == 0 || strcmp(path, "/v2/") == 0);
        CHECK(nl == 0 && rl == 0);
        return;
    case FP_ROUTE_CATALOG:
        CHECK(strcmp(path, "/v2/_catalog") == 0);
        CHECK(nl == 0 && rl == 0);
        return;
    case FP_ROUTE_TAGS:
    case FP_ROUTE_MANIFEST:
    case FP_ROUTE_BLOB:
    case FP_ROUTE_UPLOAD_START:
    case FP_ROUTE_UPLOAD:
    case FP_ROUTE_REFERRERS:
        break;
    default:
        CHECK(!"unknown route kind");
    }

    /* a repository route */
    CHECK(nl > 0 && nl <= FP_NAME_MAX);
    CHECK(fp_name_valid(r.name, nl));
    CHECK(starts_with(path, "/v2/"));
    CHECK(memcmp(path + 4, r.name, nl) == 0);
    const char *rest = path + 4 + nl; /* what follows the name */
    if (r.kind == FP_ROUTE_TAGS) {
        CHECK(strcmp(rest, "/tags/list") == 0);
        CHECK(rl == 0);
        return;
    }
    if (r.kind == FP_ROUTE_UPLOAD_START) {
        CHECK(strcmp(rest, "/blobs/uploads") == 0 || strcmp(rest, "/blobs/uploads/") == 0);
        CHECK(rl == 0);
        return;
    }
    const char *word = endpoint_word(r.kind);
    size_t wl = strlen(word);
    CHECK(rest[0] == '/' && strncmp(rest + 1, word, wl) == 0 && rest[1 + wl] == '/');
    const char *ref = rest + 2 + wl; /* the reference in the path */
    CHECK(*ref != '\0');
    CHECK(strchr(ref, '/') == NULL);
    if (strlen(ref) >= sizeof r.ref) {
        /* too long for any tag, digest or id: a marker that fails them all */
        CHECK(rl > 0 && rl < sizeof r.ref);
        CHECK(!fp_tag_valid(r.ref, rl));
        CHECK(!fp_digest_valid(r.ref));
        CHECK(rl != 36);
    } else {
        CHECK(strcmp(ref, r.ref) == 0);
        CHECK(pl == 4 + nl + 2 + wl + rl);
    }
    /* deterministic, whatever the struct held before */
    fp_route again;
    memset(&again, 0x5a, sizeof again);
    fp_route_parse(path, &again);
    CHECK(again.kind == r.kind);
    CHECK(strcmp(again.name, r.name) == 0 && strcmp(again.ref, r.ref) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = malloc(size + 5);
    if (!path) return 0;
    memcpy(path, data, size);
    path[size] = '\0';
    check_route(path);
    memcpy(path, "/v2/", 4);
    memcpy(path + 4, data, size);
    path[size + 4] = '\0';
    check_route(path);
    free(path);
    return 0;
}
