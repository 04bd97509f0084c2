/* Unit tests for registry/route: mapping request paths to API endpoints. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/name.h"
#include "registry/route.h"

#define DIGEST "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define DIGEST512                                                                                  \
    "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"                      \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
#define UUID "3f1c2b8e-4a5d-4e6f-9a0b-1c2d3e4f5a6b"

static const char *kind_name(enum fp_route_kind k)
{
    switch (k) {
    case FP_ROUTE_NONE:
        return "NONE";
    case FP_ROUTE_NAME_INVALID:
        return "NAME_INVALID";
    case FP_ROUTE_BASE:
        return "BASE";
    case FP_ROUTE_CATALOG:
        return "CATALOG";
    case FP_ROUTE_TAGS:
        return "TAGS";
    case FP_ROUTE_MANIFEST:
        return "MANIFEST";
    case FP_ROUTE_BLOB:
        return "BLOB";
    case FP_ROUTE_UPLOAD_START:
        return "UPLOAD_START";
    case FP_ROUTE_UPLOAD:
        return "UPLOAD";
    case FP_ROUTE_REFERRERS:
        return "REFERRERS";
    case FP_ROUTE_RESOLVE:
        return "RESOLVE";
    }
    return "?";
}

/* Parse path and compare with the expected kind, name and ref. */
static void expect(const char *path, enum fp_route_kind kind, const char *name, const char *ref)
{
    fp_route r;
    memset(&r, 0x5a, sizeof r); /* the parser must not depend on r's old contents */
    fp_route_parse(path, &r);
    if (r.kind != kind)
        fail_msg("%s: kind %s, expected %s", path, kind_name(r.kind), kind_name(kind));
    if (strcmp(r.name, name) != 0) fail_msg("%s: name '%s', expected '%s'", path, r.name, name);
    if (strcmp(r.ref, ref) != 0) fail_msg("%s: ref '%s', expected '%s'", path, r.ref, ref);
}

static void expect_kind(const char *path, enum fp_route_kind kind)
{
    fp_route r;
    fp_route_parse(path, &r);
    if (r.kind != kind)
        fail_msg("%s: kind %s, expected %s", path, kind_name(r.kind), kind_name(kind));
    if (kind == FP_ROUTE_NONE || kind == FP_ROUTE_NAME_INVALID) {
        assert_string_equal(r.name, "");
        assert_string_equal(r.ref, "");
    }
}

static void test_base_and_catalog(void **state)
{
    (void)state;
    expect("/v2", FP_ROUTE_BASE, "", "");
    expect("/v2/", FP_ROUTE_BASE, "", "");
    expect("/v2/_catalog", FP_ROUTE_CATALOG, "", "");
    expect_kind("/v2//", FP_ROUTE_NONE);
    expect_kind("/v2x", FP_ROUTE_NONE);
    expect_kind("/v2_catalog", FP_ROUTE_NONE);
    expect_kind("/v2/_catalog/", FP_ROUTE_NONE);
    expect_kind("/v2/_catalogue", FP_ROUTE_NONE);
    expect_kind("/v2/foo/_catalog", FP_ROUTE_NONE);
    expect_kind("/v2/foo", FP_ROUTE_NONE);
    expect_kind("/v2/foo/", FP_ROUTE_NONE);
}

static void test_not_v2(void **state)
{
    (void)state;
    const char *paths[] = {
        "",
        "/",
        "v2/foo/manifests/latest",
        "/v1/foo/manifests/latest",
        "/V2/foo/manifests/latest",
        "/v3/foo/manifests/latest",
        "//v2/foo/manifests/latest",
        "/api/v2/foo/manifests/latest",
        "/v20/foo/manifests/latest",
        "/v2foo/manifests/latest",
        "/metrics",
        "/healthz",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        expect_kind(paths[i], FP_ROUTE_NONE);
}

static void test_manifests(void **state)
{
    (void)state;
    expect("/v2/foo/manifests/latest", FP_ROUTE_MANIFEST, "foo", "latest");
    expect("/v2/foo/manifests/" DIGEST, FP_ROUTE_MANIFEST, "foo", DIGEST);
    expect("/v2/foo/manifests/" DIGEST512, FP_ROUTE_MANIFEST, "foo", DIGEST512);
    expect("/v2/library/busybox/manifests/1.36", FP_ROUTE_MANIFEST, "library/busybox", "1.36");
    expect("/v2/a/b/c/d/e/manifests/v1", FP_ROUTE_MANIFEST, "a/b/c/d/e", "v1");
    expect("/v2/my-org/my_app.x__y--z/manifests/T", FP_ROUTE_MANIFEST, "my-org/my_app.x__y--z",
           "T");
    /* the ref is passed on unvalidated (the handler checks it) */
    expect("/v2/foo/manifests/not:a:tag", FP_ROUTE_MANIFEST, "foo", "not:a:tag");
    expect("/v2/foo/manifests/..", FP_ROUTE_MANIFEST, "foo", "..");
    /* no reference: not an endpoint */
    expect_kind("/v2/foo/manifests/", FP_ROUTE_NONE);
    expect_kind("/v2/foo/manifests", FP_ROUTE_NONE);
    expect_kind("/v2/foo/manifests/latest/", FP_ROUTE_NONE);
    expect_kind("/v2/foo/manifest/latest", FP_ROUTE_NONE);
    expect_kind("/v2/foo/xmanifests/latest", FP_ROUTE_NONE);
    expect_kind("/v2/manifests/latest", FP_ROUTE_NONE);
}

static void test_blobs(void **state)
{
    (void)state;
    expect("/v2/foo/blobs/" DIGEST, FP_ROUTE_BLOB, "foo", DIGEST);
    expect("/v2/foo/bar/blobs/" DIGEST512, FP_ROUTE_BLOB, "foo/bar", DIGEST512);
    expect("/v2/foo/blobs/sha256:abc", FP_ROUTE_BLOB, "foo", "sha256:abc");
    expect_kind("/v2/foo/blobs/", FP_ROUTE_NONE);
    expect_kind("/v2/foo/blobs", FP_ROUTE_NONE);
    expect_kind("/v2/foo/blobs/" DIGEST "/", FP_ROUTE_NONE);
    expect_kind("/v2/blobs/" DIGEST, FP_ROUTE_NONE);
}

static void test_uploads(void **state)
{
    (void)state;
    /* start: with and without the trailing slash */
    expect("/v2/foo/blobs/uploads/", FP_ROUTE_UPLOAD_START, "foo", "");
    expect("/v2/foo/blobs/uploads", FP_ROUTE_UPLOAD_START, "foo", "");
    expect("/v2/a/b/blobs/uploads/", FP_ROUTE_UPLOAD_START, "a/b", "");
    expect("/v2/a/b/blobs/uploads", FP_ROUTE_UPLOAD_START, "a/b", "");
    /* a session */
    expect("/v2/foo/blobs/uploads/" UUID, FP_ROUTE_UPLOAD, "foo", UUID);
    expect("/v2/a/b/c/blobs/uploads/" UUID, FP_ROUTE_UPLOAD, "a/b/c", UUID);
    expect("/v2/foo/blobs/uploads/x", FP_ROUTE_UPLOAD, "foo", "x");
    expect_kind("/v2/foo/blobs/uploads/" UUID "/", FP_ROUTE_NONE);
    expect_kind("/v2/foo/blobs/uploads//", FP_ROUTE_NONE);
    /* "uploads" not after "blobs" is a manifest/blob word check, not an upload */
    expect_kind("/v2/foo/uploads/" UUID, FP_ROUTE_NONE);
    expect_kind("/v2/foo/xblobs/uploads/" UUID, FP_ROUTE_NONE);
    /* an empty name */
    expect_kind("/v2/blobs/uploads/", FP_ROUTE_NONE);
    expect_kind("/v2//blobs/uploads/", FP_ROUTE_NAME_INVALID);
    expect_kind("/v2//blobs/uploads/" UUID, FP_ROUTE_NAME_INVALID);
}

static void test_tags_and_referrers(void **state)
{
    (void)state;
    expect("/v2/foo/tags/list", FP_ROUTE_TAGS, "foo", "");
    expect("/v2/library/ubuntu/tags/list", FP_ROUTE_TAGS, "library/ubuntu", "");
    expect_kind("/v2/foo/tags/list/", FP_ROUTE_NONE);
    expect_kind("/v2/foo/tags/", FP_ROUTE_NONE);
    expect_kind("/v2/foo/tags", FP_ROUTE_NONE);
    expect_kind("/v2/foo/tags/lists", FP_ROUTE_NONE);
    expect_kind("/v2/tags/list", FP_ROUTE_NONE);
    expect_kind("/v2//tags/list", FP_ROUTE_NONE);
    expect_kind("/v2/x//tags/list", FP_ROUTE_NAME_INVALID);

    expect("/v2/foo/referrers/" DIGEST, FP_ROUTE_REFERRERS, "foo", DIGEST);
    expect("/v2/a/b/referrers/" DIGEST, FP_ROUTE_REFERRERS, "a/b", DIGEST);
    expect_kind("/v2/foo/referrers/", FP_ROUTE_NONE);
    expect_kind("/v2/foo/referrers", FP_ROUTE_NONE);
}

/* Repository names may contain the endpoint words as components: the
 * endpoint is recognised from the end of the path. */
static void test_names_with_endpoint_words(void **state)
{
    (void)state;
    expect("/v2/blobs/manifests/latest", FP_ROUTE_MANIFEST, "blobs", "latest");
    expect("/v2/manifests/manifests/latest", FP_ROUTE_MANIFEST, "manifests", "latest");
    expect("/v2/a/manifests/b/manifests/c", FP_ROUTE_MANIFEST, "a/manifests/b", "c");
    expect("/v2/a/blobs/blobs/" DIGEST, FP_ROUTE_BLOB, "a/blobs", DIGEST);
    expect("/v2/manifests/blobs/" DIGEST, FP_ROUTE_BLOB, "manifests", DIGEST);
    expect("/v2/tags/list/manifests/latest", FP_ROUTE_MANIFEST, "tags/list", "latest");
    expect("/v2/tags/tags/list", FP_ROUTE_TAGS, "tags", "");
    expect("/v2/list/tags/list", FP_ROUTE_TAGS, "list", "");
    expect("/v2/uploads/blobs/uploads/", FP_ROUTE_UPLOAD_START, "uploads", "");
    expect("/v2/blobs/uploads/blobs/uploads/", FP_ROUTE_UPLOAD_START, "blobs/uploads", "");
    expect("/v2/blobs/uploads/blobs/uploads", FP_ROUTE_UPLOAD_START, "blobs/uploads", "");
    expect("/v2/blobs/uploads/blobs/uploads/" UUID, FP_ROUTE_UPLOAD, "blobs/uploads", UUID);
    expect("/v2/referrers/referrers/" DIGEST, FP_ROUTE_REFERRERS, "referrers", DIGEST);
    expect("/v2/foo/blobs/uploads/manifests/latest", FP_ROUTE_MANIFEST, "foo/blobs/uploads",
           "latest");
    /* the reference may itself be an endpoint word */
    expect("/v2/foo/manifests/manifests", FP_ROUTE_MANIFEST, "foo", "manifests");
    expect("/v2/foo/manifests/blobs", FP_ROUTE_MANIFEST, "foo", "blobs");
    expect("/v2/foo/blobs/manifests", FP_ROUTE_BLOB, "foo", "manifests");
    expect("/v2/foo/manifests/list", FP_ROUTE_MANIFEST, "foo", "list");
    expect("/v2/foo/manifests/uploads", FP_ROUTE_MANIFEST, "foo", "uploads");
    /* names ending in an endpoint word glued to another word */
    expect("/v2/myblobs/blobs/" DIGEST, FP_ROUTE_BLOB, "myblobs", DIGEST);
    expect("/v2/x-manifests/manifests/v1", FP_ROUTE_MANIFEST, "x-manifests", "v1");
    expect("/v2/a/xtags/list", FP_ROUTE_NONE, "", "");
}

static void test_invalid_names(void **state)
{
    (void)state;
    const char *paths[] = {
        "/v2/Foo/manifests/latest",       "/v2/foo//bar/manifests/latest",
        "/v2//foo/manifests/latest",      "/v2/foo//manifests/latest",
        "/v2/../manifests/latest",        "/v2/foo/../bar/manifests/latest",
        "/v2/./foo/manifests/latest",     "/v2/-foo/manifests/latest",
        "/v2/foo-/manifests/latest",      "/v2/foo.-bar/manifests/latest",
        "/v2/foo___bar/manifests/latest", "/v2/foo bar/manifests/latest",
        "/v2/foo%2fbar/manifests/latest", "/v2/foo:5000/bar/manifests/latest",
        "/v2/_catalog/manifests/latest",  "/v2/FOO/blobs/" DIGEST,
        "/v2/a..b/blobs/uploads/",        "/v2/a..b/blobs/uploads",
        "/v2/a..b/blobs/uploads/" UUID,   "/v2/UP/tags/list",
        "/v2/a_/referrers/" DIGEST,       "/v2//manifests/latest",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        expect_kind(paths[i], FP_ROUTE_NAME_INVALID);
}

static void test_long_names_and_refs(void **state)
{
    (void)state;
    char name[FP_NAME_MAX + 2];
    char path[1024], ref[512];

    /* a name of exactly FP_NAME_MAX characters is fine, one more is not */
    memset(name, 'a', FP_NAME_MAX);
    name[FP_NAME_MAX] = '\0';
    snprintf(path, sizeof path, "/v2/%s/manifests/latest", name);
    expect(path, FP_ROUTE_MANIFEST, name, "latest");
    snprintf(path, sizeof path, "/v2/%s/tags/list", name);
    expect(path, FP_ROUTE_TAGS, name, "");
    memset(name, 'a', FP_NAME_MAX + 1);
    name[FP_NAME_MAX + 1] = '\0';
    snprintf(path, sizeof path, "/v2/%s/manifests/latest", name);
    expect_kind(path, FP_ROUTE_NAME_INVALID);
    snprintf(path, sizeof path, "/v2/%s/blobs/uploads/", name);
    expect_kind(path, FP_ROUTE_NAME_INVALID);
    /* many short components, over the limit in total */
    char *p = path;
    p += sprintf(p, "/v2/");
    for (int i = 0; i < 130; i++)
        p += sprintf(p, "a/");
    sprintf(p, "manifests/latest");
    expect_kind(path, FP_ROUTE_NAME_INVALID);

    /* a ref that fits is kept verbatim */
    fp_route r;
    size_t maxref = sizeof r.ref - 1;
    memset(ref, 'x', maxref);
    ref[maxref] = '\0';
    snprintf(path, sizeof path, "/v2/foo/manifests/%s", ref);
    expect(path, FP_ROUTE_MANIFEST, "foo", ref);
    /* a longer one is replaced by a marker no tag, digest or id can match */
    const enum fp_route_kind kinds[] = {FP_ROUTE_MANIFEST, FP_ROUTE_BLOB, FP_ROUTE_REFERRERS,
                                        FP_ROUTE_UPLOAD};
    const char *prefixes[] = {"/v2/foo/manifests/", "/v2/foo/blobs/", "/v2/foo/referrers/",
                              "/v2/foo/blobs/uploads/"};
    for (size_t len = maxref + 1; len < sizeof ref; len += 97) {
        memset(ref, 'x', len);
        ref[len] = '\0';
        for (size_t i = 0; i < 4; i++) {
            snprintf(path, sizeof path, "%s%s", prefixes[i], ref);
            memset(&r, 0x5a, sizeof r);
            fp_route_parse(path, &r);
            assert_int_equal(r.kind, kinds[i]);
            assert_string_equal(r.name, "foo");
            assert_true(memchr(r.ref, '\0', sizeof r.ref) != NULL);
            assert_true(strlen(r.ref) < sizeof r.ref);
            assert_false(fp_tag_valid(r.ref, strlen(r.ref)));
            assert_false(fp_digest_valid(r.ref));
            assert_true(strlen(r.ref) != 36); /* never an upload id */
        }
    }
    /* a long (sha512) digest fits */
    expect("/v2/foo/blobs/" DIGEST512, FP_ROUTE_BLOB, "foo", DIGEST512);
    /* a very long path that is not an endpoint */
    char *huge = malloc(70000);
    assert_non_null(huge);
    memcpy(huge, "/v2/", 4);
    memset(huge + 4, 'a', 70000 - 5);
    huge[70000 - 1] = '\0';
    expect_kind(huge, FP_ROUTE_NONE);
    memcpy(huge + 70000 - 20, "/manifests/latest", 18);
    expect_kind(huge, FP_ROUTE_NAME_INVALID);
    free(huge);
}

/* Every accepted route can be rebuilt into exactly the path. */
static void test_roundtrip(void **state)
{
    (void)state;
    const char *paths[] = {
        "/v2/foo/manifests/latest",    "/v2/a/b/c/manifests/" DIGEST,   "/v2/x/blobs/" DIGEST,
        "/v2/x.y/blobs/uploads/" UUID, "/v2/a-b/c_d/referrers/" DIGEST, "/v2/blobs/blobs/blobs",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        fp_route r;
        fp_route_parse(paths[i], &r);
        const char *word = r.kind == FP_ROUTE_MANIFEST    ? "manifests"
                           : r.kind == FP_ROUTE_BLOB      ? "blobs"
                           : r.kind == FP_ROUTE_REFERRERS ? "referrers"
                           : r.kind == FP_ROUTE_UPLOAD    ? "blobs/uploads"
                                                          : NULL;
        assert_non_null(word);
        assert_true(fp_name_valid(r.name, strlen(r.name)));
        char again[512];
        snprintf(again, sizeof again, "/v2/%s/%s/%s", r.name, word, r.ref);
        assert_string_equal(again, paths[i]);
    }
}

/* The resolve API names a service the way the registry API does. */
static void test_resolve(void **state)
{
    (void)state;
    expect("/api/v1/resolve/iot_service", FP_ROUTE_RESOLVE, "iot_service", "");
    expect("/api/v1/resolve/fog-2/app", FP_ROUTE_RESOLVE, "fog-2/app", "");
    expect("/api/v1/resolve/a/../b", FP_ROUTE_NAME_INVALID, "", "");
    expect("/api/v1/resolve/", FP_ROUTE_NAME_INVALID, "", "");
    expect("/api/v1/resolvex", FP_ROUTE_NONE, "", "");
}

static void expect_family(const char *path, const char *family)
{
    fp_route r;
    fp_route_parse(path, &r);
    const char *got = fp_route_family_name(fp_route_family(path, r.kind));
    if (strcmp(got, family) != 0) fail_msg("%s: family %s, want %s", path, got, family);
    /* the same without a parsed route (a request refused before routing) */
    got = fp_route_family_name(fp_route_family(path, FP_ROUTE_NONE));
    if (strcmp(got, family) != 0) fail_msg("%s unparsed: family %s, want %s", path, got, family);
}

static void test_families(void **state)
{
    (void)state;
    expect_family("/v2/", "base");
    expect_family("/v2/_catalog", "catalog");
    expect_family("/v2/a/b/tags/list", "tags");
    expect_family("/v2/a/manifests/latest", "manifests");
    expect_family("/v2/a/blobs/sha256:00", "blobs");
    expect_family("/v2/a/blobs/uploads/", "uploads");
    expect_family("/v2/a/blobs/uploads/abc", "uploads");
    expect_family("/v2/a/referrers/sha256:00", "referrers");
    expect_family("/api/v1/resolve/a/b", "resolve");
    expect_family("/auth/token", "token");
    expect_family("/api/v1/join", "join");
    expect_family("/api/v1/authdata", "node_auth");
    expect_family("/api/v1/replication/tasks/7", "replication");
    expect_family("/api/v1/services/web", "services");
    expect_family("/api/v1/agent/desired", "services");
    expect_family("/api/v1/logs/web", "logs");
    expect_family("/api/v1/events", "usage");
    expect_family("/metrics", "metrics");
    expect_family("/readyz", "health");
    /* no prefix is taken for a longer word, invalid names are no family */
    expect_family("/api/v1/servicesX", "other");
    expect_family("/metrics/x", "other");
    expect_family("/v2/UPPER/manifests/x", "other");
    expect_family("/anything/else", "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_and_catalog),
        cmocka_unit_test(test_not_v2),
        cmocka_unit_test(test_manifests),
        cmocka_unit_test(test_blobs),
        cmocka_unit_test(test_uploads),
        cmocka_unit_test(test_tags_and_referrers),
        cmocka_unit_test(test_names_with_endpoint_words),
        cmocka_unit_test(test_invalid_names),
        cmocka_unit_test(test_long_names_and_refs),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_families),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
