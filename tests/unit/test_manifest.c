/* Unit tests for core/manifest: parsing and validating the four manifest
 * kinds, media type inference, descriptors, subject/artifactType and
 * annotations. Digests in the bodies are real (computed at run time). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/manifest.h"

#define MT_CONFIG    "application/vnd.oci.image.config.v1+json"
#define MT_LAYER     "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_D_CONFIG  "application/vnd.docker.container.image.v1+json"
#define MT_D_LAYER   "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define MT_D_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define MT_EMPTY     "application/vnd.oci.empty.v1+json"
#define MT_SIGNATURE "application/vnd.example.signature.v1+json"
#define CT_JSON      "application/json"
#define CT_OCTET     "application/octet-stream"

/* Real digests of a few contents, filled in by setup. */
static char d_config[FP_DIGEST_MAX]; /* of CONFIG_BODY */
static char d_layer1[FP_DIGEST_MAX]; /* of "layer one" */
static char d_layer2[FP_DIGEST_MAX]; /* of "layer two" */
static char d_child1[FP_DIGEST_MAX];
static char d_child2[FP_DIGEST_MAX];
static char d_sha512[FP_DIGEST_MAX];
static char d_empty[FP_DIGEST_MAX]; /* of "{}" */

#define CONFIG_BODY "{\"architecture\":\"amd64\",\"os\":\"linux\"}"

static int setup_digests(void **state)
{
    (void)state;
    if (fp_digest_bytes(FP_SHA256, CONFIG_BODY, strlen(CONFIG_BODY), d_config) < 0 ||
        fp_digest_bytes(FP_SHA256, "layer one", 9, d_layer1) < 0 ||
        fp_digest_bytes(FP_SHA256, "layer two", 9, d_layer2) < 0 ||
        fp_digest_bytes(FP_SHA256, "child one", 9, d_child1) < 0 ||
        fp_digest_bytes(FP_SHA256, "child two", 9, d_child2) < 0 ||
        fp_digest_bytes(FP_SHA512, "layer one", 9, d_sha512) < 0 ||
        fp_digest_bytes(FP_SHA256, "{}", 2, d_empty) < 0)
        return -1;
    return 0;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    int n = vasprintf(&s, f, ap);
    va_end(ap);
    assert_true(n >= 0);
    return s;
}

/* A JSON descriptor. */
static char *desc(const char *mt, const char *digest, long long size)
{
    return fmt("{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%lld}", mt, digest, size);
}

/* An image manifest; media_type NULL leaves the field out; extra is spliced
 * in before the closing brace (with its leading comma). */
static char *image(const char *media_type, const char *config_mt, const char *layer_mt,
                   const char *extra)
{
    char *cfg = desc(config_mt, d_config, (long long)strlen(CONFIG_BODY));
    char *l1 = desc(layer_mt, d_layer1, 9);
    char *l2 = desc(layer_mt, d_layer2, 9);
    char *mt = media_type ? fmt("\"mediaType\":\"%s\",", media_type) : fmt("%s", "");
    char *s = fmt("{\"schemaVersion\":2,%s\"config\":%s,\"layers\":[%s,%s]%s}", mt, cfg, l1, l2,
                  extra ? extra : "");
    free(cfg);
    free(l1);
    free(l2);
    free(mt);
    return s;
}

static char *index_body(const char *media_type, const char *child_mt, const char *extra)
{
    char *c1 = desc(child_mt, d_child1, 9);
    char *c2 = desc(child_mt, d_child2, 9);
    char *mt = media_type ? fmt("\"mediaType\":\"%s\",", media_type) : fmt("%s", "");
    char *s =
        fmt("{\"schemaVersion\":2,%s\"manifests\":[%s,%s]%s}", mt, c1, c2, extra ? extra : "");
    free(c1);
    free(c2);
    free(mt);
    return s;
}

static int parse(const char *body, const char *ct, fp_manifest *m, char *why, size_t whylen)
{
    why[0] = '\0';
    return fp_manifest_parse(body, strlen(body), ct, m, why, whylen);
}

/* Parse must succeed; the caller frees m. */
static void must_parse(const char *body, const char *ct, fp_manifest *m)
{
    char why[256];
    if (parse(body, ct, m, why, sizeof why) != 0)
        fail_msg("parse failed: %s\nbody: %s\ncontent type: %s", why, body, ct ? ct : "(none)");
}

/* Parse must fail with a reason; the reason must contain `needle` if given. */
static void must_reject(const char *body, const char *ct, const char *needle)
{
    fp_manifest m;
    char why[256];
    if (parse(body, ct, &m, why, sizeof why) == 0) {
        fp_manifest_free(&m);
        fail_msg("parse accepted: %s\ncontent type: %s", body, ct ? ct : "(none)");
    }
    if (why[0] == '\0') fail_msg("no reason given for rejecting %s", body);
    if (needle && !strstr(why, needle))
        fail_msg("reason '%s' lacks '%s' (body %s)", why, needle, body);
    /* on failure nothing is left allocated */
    assert_null(m.refs);
    assert_null(m.annotations);
}

static void test_oci_image(void **state)
{
    (void)state;
    char *body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, NULL);
    fp_manifest m;
    must_parse(body, FP_MT_OCI_MANIFEST, &m);
    assert_string_equal(m.media_type, FP_MT_OCI_MANIFEST);
    assert_false(m.is_index);
    assert_string_equal(m.config.media_type, MT_CONFIG);
    assert_string_equal(m.config.digest, d_config);
    assert_int_equal(m.config.size, strlen(CONFIG_BODY));
    assert_false(m.config.has_urls);
    assert_int_equal(m.nrefs, 2);
    assert_non_null(m.refs);
    assert_string_equal(m.refs[0].media_type, MT_LAYER);
    assert_string_equal(m.refs[0].digest, d_layer1);
    assert_int_equal(m.refs[0].size, 9);
    assert_string_equal(m.refs[1].digest, d_layer2);
    assert_false(m.refs[0].has_urls);
    assert_false(m.refs[1].has_urls);
    assert_false(m.has_subject);
    assert_string_equal(m.subject, "");
    assert_null(m.annotations);
    fp_manifest_free(&m);
    assert_null(m.refs);
    fp_manifest_free(&m); /* freeing twice is harmless */
    free(body);

    /* pretty-printed, key order shuffled, unknown fields ignored */
    char *cfg = desc(MT_CONFIG, d_config, 38);
    char *l1 = desc(MT_LAYER, d_layer1, 9);
    body = fmt("{\n  \"layers\": [ %s ],\n  \"x-unknown\": {\"a\": [1, 2]},\n"
               "  \"config\": %s,\n  \"mediaType\": \"%s\",\n  \"schemaVersion\": 2\n}\n",
               l1, cfg, FP_MT_OCI_MANIFEST);
    must_parse(body, NULL, &m);
    assert_string_equal(m.media_type, FP_MT_OCI_MANIFEST);
    assert_int_equal(m.nrefs, 1);
    fp_manifest_free(&m);
    free(body);
    free(cfg);
    free(l1);

    /* zero layers (an artifact with only a config) */
    cfg = desc(MT_EMPTY, d_empty, 2);
    body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":%s,\"layers\":[]}",
               FP_MT_OCI_MANIFEST, cfg);
    must_parse(body, NULL, &m);
    assert_int_equal(m.nrefs, 0);
    assert_non_null(m.refs);
    fp_manifest_free(&m);
    free(body);
    free(cfg);

    /* sha512 descriptors */
    cfg = desc(MT_CONFIG, d_config, 38);
    l1 = desc(MT_LAYER, d_sha512, 9);
    body = fmt("{\"schemaVersion\":2,\"config\":%s,\"layers\":[%s]}", cfg, l1);
    must_parse(body, NULL, &m);
    assert_string_equal(m.refs[0].digest, d_sha512);
    fp_manifest_free(&m);
    free(body);
    free(cfg);
    free(l1);
}

static void test_oci_index(void **state)
{
    (void)state;
    char *c1 = fmt("{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":9,"
                   "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}",
                   FP_MT_OCI_MANIFEST, d_child1);
    char *c2 = fmt("{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":9,"
                   "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\","
                   "\"variant\":\"v8\"}}",
                   FP_MT_OCI_INDEX, d_child2);
    char *body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[%s,%s]}",
                     FP_MT_OCI_INDEX, c1, c2);
    fp_manifest m;
    must_parse(body, FP_MT_OCI_INDEX, &m);
    assert_string_equal(m.media_type, FP_MT_OCI_INDEX);
    assert_true(m.is_index);
    assert_int_equal(m.nrefs, 2);
    assert_string_equal(m.refs[0].media_type, FP_MT_OCI_MANIFEST);
    assert_string_equal(m.refs[0].digest, d_child1);
    assert_string_equal(m.refs[1].media_type, FP_MT_OCI_INDEX);
    assert_string_equal(m.refs[1].digest, d_child2);
    assert_int_equal(m.refs[1].size, 9);
    /* an index has no config and no artifactType fallback */
    assert_string_equal(m.config.digest, "");
    assert_string_equal(m.artifact_type, "");
    fp_manifest_free(&m);
    free(body);
    free(c1);
    free(c2);

    /* an empty index */
    body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[]}", FP_MT_OCI_INDEX);
    must_parse(body, NULL, &m);
    assert_true(m.is_index);
    assert_int_equal(m.nrefs, 0);
    fp_manifest_free(&m);
    free(body);

    /* an index does not need layers or config: a "config" is simply ignored */
    body = index_body(FP_MT_OCI_INDEX, FP_MT_OCI_MANIFEST, ",\"config\":42");
    must_parse(body, NULL, &m);
    assert_true(m.is_index);
    fp_manifest_free(&m);
    free(body);
}

static void test_docker_schema2(void **state)
{
    (void)state;
    char *body = image(FP_MT_DOCKER_V2, MT_D_CONFIG, MT_D_LAYER, NULL);
    fp_manifest m;
    must_parse(body, FP_MT_DOCKER_V2, &m);
    assert_string_equal(m.media_type, FP_MT_DOCKER_V2);
    assert_false(m.is_index);
    assert_string_equal(m.config.media_type, MT_D_CONFIG);
    assert_int_equal(m.nrefs, 2);
    assert_string_equal(m.refs[1].media_type, MT_D_LAYER);
    /* referrers fallback applies to any image manifest */
    assert_string_equal(m.artifact_type, MT_D_CONFIG);
    fp_manifest_free(&m);
    /* the Content-Type may carry parameters */
    must_parse(body, FP_MT_DOCKER_V2 "; charset=utf-8", &m);
    assert_string_equal(m.media_type, FP_MT_DOCKER_V2);
    fp_manifest_free(&m);
    must_parse(body, "  " FP_MT_DOCKER_V2 ";q=1", &m);
    assert_string_equal(m.media_type, FP_MT_DOCKER_V2);
    fp_manifest_free(&m);
    free(body);
}

static void test_docker_manifest_list(void **state)
{
    (void)state;
    char *body = index_body(FP_MT_DOCKER_LIST, FP_MT_DOCKER_V2, NULL);
    fp_manifest m;
    must_parse(body, FP_MT_DOCKER_LIST, &m);
    assert_string_equal(m.media_type, FP_MT_DOCKER_LIST);
    assert_true(m.is_index);
    assert_int_equal(m.nrefs, 2);
    assert_string_equal(m.refs[0].media_type, FP_MT_DOCKER_V2);
    assert_string_equal(m.refs[0].digest, d_child1);
    assert_string_equal(m.refs[1].digest, d_child2);
    fp_manifest_free(&m);
    /* a manifest list must have manifests */
    free(body);
    body = image(FP_MT_DOCKER_LIST, MT_D_CONFIG, MT_D_LAYER, NULL);
    must_reject(body, NULL, "manifests");
    free(body);
}

static void test_media_type_inferred(void **state)
{
    (void)state;
    fp_manifest m;
    char *img = image(NULL, MT_CONFIG, MT_LAYER, NULL);
    char *idx = index_body(NULL, FP_MT_OCI_MANIFEST, NULL);

    /* from the shape when there is no Content-Type */
    must_parse(img, NULL, &m);
    assert_string_equal(m.media_type, FP_MT_OCI_MANIFEST);
    assert_false(m.is_index);
    fp_manifest_free(&m);
    must_parse(idx, NULL, &m);
    assert_string_equal(m.media_type, FP_MT_OCI_INDEX);
    assert_true(m.is_index);
    fp_manifest_free(&m);
    /* ... or when the Content-Type is generic */
    must_parse(img, CT_JSON, &m);
    assert_string_equal(m.media_type, FP_MT_OCI_MANIFEST);
    fp_manifest_free(&m);
    must_parse(idx, CT_OCTET, &m);
    assert_string_equal(m.media_type, FP_MT_OCI_INDEX);
    fp_manifest_free(&m);
    must_parse(idx, "", &m);
    assert_string_equal(m.media_type, FP_MT_OCI_INDEX);
    fp_manifest_free(&m);

    /* from the Content-Type when it names a manifest type */
    must_parse(img, FP_MT_DOCKER_V2, &m);
    assert_string_equal(m.media_type, FP_MT_DOCKER_V2);
    assert_false(m.is_index);
    fp_manifest_free(&m);
    must_parse(img, FP_MT_OCI_MANIFEST "; charset=utf-8", &m);
    assert_string_equal(m.media_type, FP_MT_OCI_MANIFEST);
    fp_manifest_free(&m);
    must_parse(idx, FP_MT_DOCKER_LIST, &m);
    assert_string_equal(m.media_type, FP_MT_DOCKER_LIST);
    assert_true(m.is_index);
    fp_manifest_free(&m);
    must_parse(idx, FP_MT_OCI_INDEX, &m);
    assert_string_equal(m.media_type, FP_MT_OCI_INDEX);
    fp_manifest_free(&m);

    /* a Content-Type that contradicts the shape is caught by the shape check */
    must_reject(img, FP_MT_OCI_INDEX, "manifests");
    must_reject(idx, FP_MT_OCI_MANIFEST, "config");
    free(img);
    free(idx);
}

static void test_media_type_mismatch(void **state)
{
    (void)state;
    char *oci = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, NULL);
    must_reject(oci, FP_MT_DOCKER_V2, "does not match");
    must_reject(oci, FP_MT_OCI_INDEX, "does not match");
    must_reject(oci, "text/plain", "does not match");
    must_reject(oci, FP_MT_OCI_MANIFEST "x", "does not match");
    fp_manifest m;
    /* generic content types are not a contradiction */
    must_parse(oci, CT_JSON, &m);
    fp_manifest_free(&m);
    must_parse(oci, CT_OCTET "; x=y", &m);
    fp_manifest_free(&m);
    must_parse(oci, NULL, &m);
    fp_manifest_free(&m);

    char *list = index_body(FP_MT_DOCKER_LIST, FP_MT_DOCKER_V2, NULL);
    must_reject(list, FP_MT_OCI_INDEX, "does not match");
    must_parse(list, FP_MT_DOCKER_LIST, &m);
    fp_manifest_free(&m);

    /* mediaType must be a string naming a manifest type */
    char *bad = image(NULL, MT_CONFIG, MT_LAYER, ",\"mediaType\":5");
    must_reject(bad, NULL, "mediaType");
    free(bad);
    bad = image(MT_CONFIG, MT_CONFIG, MT_LAYER, NULL);
    must_reject(bad, NULL, "unsupported");
    free(bad);
    bad = image(FP_MT_DOCKER_V1, MT_CONFIG, MT_LAYER, NULL);
    must_reject(bad, NULL, "unsupported");
    free(bad);
    bad = image(FP_MT_DOCKER_V1_SIGNED, MT_CONFIG, MT_LAYER, NULL);
    must_reject(bad, FP_MT_DOCKER_V1_SIGNED, "unsupported");
    free(bad);
    free(oci);
    free(list);
}

static void test_schema_version(void **state)
{
    (void)state;
    char *cfg = desc(MT_CONFIG, d_config, 38);
    char *l1 = desc(MT_LAYER, d_layer1, 9);
    const char *versions[] = {"1", "3", "0", "-2", "\"2\"", "2.0", "null", "true", "[2]"};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        char *body =
            fmt("{\"schemaVersion\":%s,\"config\":%s,\"layers\":[%s]}", versions[i], cfg, l1);
        must_reject(body, NULL, "schemaVersion");
        free(body);
    }
    char *body = fmt("{\"config\":%s,\"layers\":[%s]}", cfg, l1);
    must_reject(body, NULL, "schemaVersion");
    free(body);

    /* a real schema 1 manifest */
    must_reject("{\"schemaVersion\":1,\"name\":\"library/busybox\",\"tag\":\"latest\","
                "\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"sha256:"
                "a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4\"}],"
                "\"history\":[{\"v1Compatibility\":\"{}\"}]}",
                FP_MT_DOCKER_V1_SIGNED, NULL);
    free(cfg);
    free(l1);
}

static void test_invalid_json(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        " ",
        "{",
        "}",
        "{\"schemaVersion\":2,",
        "{\"schemaVersion\":2}}",
        "{\"schemaVersion\":2} x",
        "{'schemaVersion':2}",
        "{\"schemaVersion\":02}",
        "{schemaVersion:2}",
        "{\"schemaVersion\":2,}",
        "\xff\xfe{}",
        "{\"schemaVersion\":2,\"mediaType\":\"\xc3\x28\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        must_reject(bad[i], NULL, NULL);
    /* valid JSON, but not an object */
    const char *not_object[] = {"[]", "null", "2", "\"manifest\"", "true"};
    for (size_t i = 0; i < sizeof not_object / sizeof not_object[0]; i++)
        must_reject(not_object[i], NULL, NULL);

    /* a NUL byte inside the body (len covers it) */
    fp_manifest m;
    char why[128];
    static const char nul[] = "{\"schemaVersion\":2\0}";
    assert_int_equal(fp_manifest_parse(nul, sizeof nul - 1, NULL, &m, why, sizeof why), -1);
    /* only len bytes are read: a valid prefix of a longer buffer */
    char *body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, NULL);
    size_t len = strlen(body);
    char *longer = fmt("%sGARBAGE", body);
    assert_int_equal(fp_manifest_parse(longer, len, NULL, &m, why, sizeof why), 0);
    fp_manifest_free(&m);
    assert_int_equal(fp_manifest_parse(longer, len + 1, NULL, &m, why, sizeof why), -1);
    assert_int_equal(fp_manifest_parse(longer, len - 1, NULL, &m, why, sizeof why), -1);
    /* a tiny why buffer is not overrun */
    char tiny[4] = "zzz";
    assert_int_equal(fp_manifest_parse("{", 1, NULL, &m, tiny, sizeof tiny), -1);
    assert_int_equal(strlen(tiny), 3);
    free(body);
    free(longer);
}

/* An image manifest whose first layer is the given descriptor JSON. */
static void reject_layer(const char *layer, const char *needle)
{
    char *cfg = desc(MT_CONFIG, d_config, 38);
    char *body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":%s,\"layers\":[%s]}",
                     FP_MT_OCI_MANIFEST, cfg, layer);
    must_reject(body, NULL, needle);
    free(body);
    free(cfg);
}

static void test_bad_descriptors(void **state)
{
    (void)state;
    const char *hex = fp_digest_hex(d_layer1);
    char *s;
    /* digests */
    const char *bad_digests[] = {
        "",
        "sha256",
        "sha256:",
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha512:abcd",
    };
    for (size_t i = 0; i < sizeof bad_digests / sizeof bad_digests[0]; i++) {
        s = desc(MT_LAYER, bad_digests[i], 9);
        reject_layer(s, "digest");
        free(s);
    }
    char upper[FP_DIGEST_MAX];
    snprintf(upper, sizeof upper, "sha256:%s", hex);
    for (char *p = upper + 7; *p; p++)
        if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    s = desc(MT_LAYER, upper, 9);
    reject_layer(s, "digest");
    free(s);
    char *longer = fmt("%s0", d_layer1);
    s = desc(MT_LAYER, longer, 9);
    reject_layer(s, "digest");
    free(s);
    free(longer);
    s = fmt("{\"mediaType\":\"%s\",\"size\":9}", MT_LAYER);
    reject_layer(s, "digest");
    free(s);
    s = fmt("{\"mediaType\":\"%s\",\"digest\":42,\"size\":9}", MT_LAYER);
    reject_layer(s, "digest");
    free(s);

    /* sizes */
    const char *bad_sizes[] = {"-1", "\"9\"", "9.0", "1e3", "null", "true", "[9]"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        s = fmt("{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%s}", MT_LAYER, d_layer1,
                bad_sizes[i]);
        reject_layer(s, "size");
        free(s);
    }
    s = fmt("{\"mediaType\":\"%s\",\"digest\":\"%s\"}", MT_LAYER, d_layer1);
    reject_layer(s, "size");
    free(s);
    /* size 0 and large sizes are fine */
    fp_manifest m;
    char *cfg = desc(MT_CONFIG, d_config, 0);
    char *big = desc(MT_LAYER, d_layer1, 9007199254740993LL);
    char *body = fmt("{\"schemaVersion\":2,\"config\":%s,\"layers\":[%s]}", cfg, big);
    must_parse(body, NULL, &m);
    assert_int_equal(m.config.size, 0);
    assert_true(m.refs[0].size == 9007199254740993ULL);
    fp_manifest_free(&m);
    free(body);
    free(big);
    free(cfg);

    /* media types */
    const char *bad_mts[] = {"",      "application",         "application/",     "/json",
                             "a/b/c", "application/vnd oci", "application/x;y=z"};
    for (size_t i = 0; i < sizeof bad_mts / sizeof bad_mts[0]; i++) {
        s = desc(bad_mts[i], d_layer1, 9);
        reject_layer(s, "mediaType");
        free(s);
    }
    s = fmt("{\"digest\":\"%s\",\"size\":9}", d_layer1);
    reject_layer(s, "mediaType");
    free(s);

    /* not objects */
    reject_layer("\"sha256:abc\"", "not an object");
    reject_layer("null", "not an object");
    reject_layer("[]", "not an object");

    /* config and layers themselves */
    char *l1 = desc(MT_LAYER, d_layer1, 9);
    cfg = desc(MT_CONFIG, d_config, 38);
    body = fmt("{\"schemaVersion\":2,\"layers\":[%s]}", l1);
    must_reject(body, NULL, "config");
    free(body);
    body = fmt("{\"schemaVersion\":2,\"config\":%s}", cfg);
    must_reject(body, NULL, "layers");
    free(body);
    body = fmt("{\"schemaVersion\":2,\"config\":%s,\"layers\":%s}", cfg, l1);
    must_reject(body, NULL, "layers");
    free(body);
    s = desc(MT_CONFIG, "sha256:nothex", 38);
    body = fmt("{\"schemaVersion\":2,\"config\":%s,\"layers\":[%s]}", s, l1);
    must_reject(body, NULL, "config");
    free(body);
    free(s);
    body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":{}}", FP_MT_OCI_INDEX);
    must_reject(body, NULL, "manifests");
    free(body);
    body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\"}", FP_MT_OCI_INDEX);
    must_reject(body, NULL, "manifests");
    free(body);
    /* the second of several is checked too, and named in the reason */
    s = desc(FP_MT_OCI_MANIFEST, "sha256:0", 9);
    char *c1 = desc(FP_MT_OCI_MANIFEST, d_child1, 9);
    body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":[%s,%s]}", FP_MT_OCI_INDEX,
               c1, s);
    must_reject(body, NULL, "manifests[1]");
    free(body);
    free(c1);
    free(s);
    body = fmt("{\"schemaVersion\":2,\"config\":%s,\"layers\":[%s,{}]}", cfg, l1);
    must_reject(body, NULL, "layers[1]");
    free(body);
    free(cfg);
    free(l1);
}

static void test_subject_and_artifact_type(void **state)
{
    (void)state;
    fp_manifest m;
    char *subj = desc(FP_MT_OCI_MANIFEST, d_child1, 9);
    char *cfg = desc(MT_EMPTY, d_empty, 2);
    char *l1 = desc(MT_SIGNATURE, d_layer1, 9);

    /* explicit artifactType and subject */
    char *body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"artifactType\":\"%s\","
                     "\"config\":%s,\"layers\":[%s],\"subject\":%s}",
                     FP_MT_OCI_MANIFEST, MT_SIGNATURE, cfg, l1, subj);
    must_parse(body, FP_MT_OCI_MANIFEST, &m);
    assert_true(m.has_subject);
    assert_string_equal(m.subject, d_child1);
    assert_string_equal(m.artifact_type, MT_SIGNATURE);
    fp_manifest_free(&m);
    free(body);

    /* no artifactType: the config's media type */
    body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":%s,\"layers\":[%s],"
               "\"subject\":%s}",
               FP_MT_OCI_MANIFEST, cfg, l1, subj);
    must_parse(body, NULL, &m);
    assert_true(m.has_subject);
    assert_string_equal(m.artifact_type, MT_EMPTY);
    fp_manifest_free(&m);
    free(body);
    char *img = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, NULL);
    must_parse(img, NULL, &m);
    assert_false(m.has_subject);
    assert_string_equal(m.artifact_type, MT_CONFIG);
    fp_manifest_free(&m);
    free(img);

    /* an index with a subject and an artifactType */
    char *extra = fmt(",\"artifactType\":\"%s\",\"subject\":%s", MT_SIGNATURE, subj);
    body = index_body(FP_MT_OCI_INDEX, FP_MT_OCI_MANIFEST, extra);
    must_parse(body, NULL, &m);
    assert_true(m.is_index);
    assert_true(m.has_subject);
    assert_string_equal(m.subject, d_child1);
    assert_string_equal(m.artifact_type, MT_SIGNATURE);
    fp_manifest_free(&m);
    free(body);
    free(extra);

    /* a subject must be a full descriptor */
    const char *bad_subjects[] = {"\"sha256:abc\"", "{}", "[]", "null"};
    for (size_t i = 0; i < sizeof bad_subjects / sizeof bad_subjects[0]; i++) {
        extra = fmt(",\"subject\":%s", bad_subjects[i]);
        body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, extra);
        must_reject(body, NULL, "subject");
        free(body);
        free(extra);
    }
    char *bad = desc(FP_MT_OCI_MANIFEST, "sha256:1234", 9);
    extra = fmt(",\"subject\":%s", bad);
    body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, extra);
    must_reject(body, NULL, "subject");
    free(body);
    free(extra);
    free(bad);
    bad = fmt("{\"mediaType\":\"%s\",\"digest\":\"%s\"}", FP_MT_OCI_MANIFEST, d_child1);
    extra = fmt(",\"subject\":%s", bad);
    body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, extra);
    must_reject(body, NULL, "subject");
    free(body);
    free(extra);
    free(bad);

    /* artifactType must be a media type string */
    const char *bad_at[] = {"\"\"", "\"signature\"", "\"a/b/c\"", "7", "null", "{}"};
    for (size_t i = 0; i < sizeof bad_at / sizeof bad_at[0]; i++) {
        extra = fmt(",\"artifactType\":%s", bad_at[i]);
        body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, extra);
        must_reject(body, NULL, "artifactType");
        free(body);
        free(extra);
    }
    free(subj);
    free(cfg);
    free(l1);
}

static void test_annotations(void **state)
{
    (void)state;
    fp_manifest m;
    /* serialised compact with sorted keys, whatever the input layout */
    char *body =
        image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER,
              ",\"annotations\": {\n  \"org.opencontainers.image.title\": \"t \\\"q\\\"\",\n"
              "  \"com.example.a\" : \"\\u00e9\", \"b\":\"\"}");
    must_parse(body, NULL, &m);
    assert_non_null(m.annotations);
    assert_string_equal(m.annotations, "{\"b\":\"\",\"com.example.a\":\"\xc3\xa9\","
                                       "\"org.opencontainers.image.title\":\"t \\\"q\\\"\"}");
    fp_manifest_free(&m);
    assert_null(m.annotations);
    free(body);

    body = index_body(FP_MT_OCI_INDEX, FP_MT_OCI_MANIFEST, ",\"annotations\":{}");
    must_parse(body, NULL, &m);
    assert_string_equal(m.annotations, "{}");
    fp_manifest_free(&m);
    free(body);

    const char *bad[] = {",\"annotations\":[]", ",\"annotations\":\"a=b\"",
                         ",\"annotations\":{\"a\":1}", ",\"annotations\":{\"a\":null}",
                         ",\"annotations\":{\"a\":\"x\",\"b\":{\"c\":\"d\"}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, bad[i]);
        must_reject(body, NULL, "annotation");
        free(body);
    }
}

static void test_urls(void **state)
{
    (void)state;
    char *cfg = desc(MT_D_CONFIG, d_config, 38);
    char *body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":%s,\"layers\":["
                     "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":9,"
                     "\"urls\":[\"https://go.microsoft.com/fwlink/?linkid=837858\"]},"
                     "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":9,\"urls\":[]},"
                     "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":9,\"urls\":\"https://x\"},"
                     "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":9}]}",
                     FP_MT_DOCKER_V2, cfg, MT_D_FOREIGN, d_layer1, MT_D_LAYER, d_layer2, MT_D_LAYER,
                     d_child1, MT_D_LAYER, d_child2);
    fp_manifest m;
    must_parse(body, NULL, &m);
    assert_int_equal(m.nrefs, 4);
    assert_true(m.refs[0].has_urls);
    assert_string_equal(m.refs[0].media_type, MT_D_FOREIGN);
    assert_false(m.refs[1].has_urls); /* empty list */
    assert_false(m.refs[2].has_urls); /* not a list */
    assert_false(m.refs[3].has_urls);
    assert_false(m.config.has_urls);
    fp_manifest_free(&m);
    free(body);
    free(cfg);
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    char *cfg = desc(MT_CONFIG, d_config, 38);
    char *l1 = desc(MT_LAYER, d_layer1, 9);
    /* top level */
    char *body =
        fmt("{\"schemaVersion\":2,\"config\":%s,\"layers\":[%s],\"schemaVersion\":2}", cfg, l1);
    must_reject(body, NULL, NULL);
    free(body);
    body = fmt("{\"schemaVersion\":2,\"mediaType\":\"%s\",\"mediaType\":\"%s\",\"config\":%s,"
               "\"layers\":[%s]}",
               FP_MT_OCI_MANIFEST, FP_MT_DOCKER_V2, cfg, l1);
    must_reject(body, NULL, NULL);
    free(body);
    body = fmt("{\"schemaVersion\":2,\"config\":%s,\"layers\":[%s],\"layers\":[]}", cfg, l1);
    must_reject(body, NULL, NULL);
    free(body);
    /* inside a descriptor: two digests would be ambiguous */
    body = fmt("{\"schemaVersion\":2,\"config\":%s,\"layers\":[{\"mediaType\":\"%s\","
               "\"digest\":\"%s\",\"digest\":\"%s\",\"size\":9}]}",
               cfg, MT_LAYER, d_layer1, d_layer2);
    must_reject(body, NULL, NULL);
    free(body);
    /* inside annotations, and deep inside an ignored field */
    body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER,
                 ",\"annotations\":{\"a\":\"1\",\"a\":\"2\"}");
    must_reject(body, NULL, NULL);
    free(body);
    body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, ",\"x\":[{\"k\":1,\"k\":2}]");
    must_reject(body, NULL, NULL);
    free(body);
    /* same key in different objects is fine */
    body = image(FP_MT_OCI_MANIFEST, MT_CONFIG, MT_LAYER, ",\"x\":{\"k\":1},\"y\":{\"k\":1}");
    fp_manifest m;
    must_parse(body, NULL, &m);
    fp_manifest_free(&m);
    free(body);
    free(cfg);
    free(l1);
}

static void test_media_type_is_manifest(void **state)
{
    (void)state;
    assert_true(fp_media_type_is_manifest(FP_MT_OCI_MANIFEST));
    assert_true(fp_media_type_is_manifest(FP_MT_OCI_INDEX));
    assert_true(fp_media_type_is_manifest(FP_MT_DOCKER_V2));
    assert_true(fp_media_type_is_manifest(FP_MT_DOCKER_LIST));
    assert_false(fp_media_type_is_manifest(FP_MT_DOCKER_V1));
    assert_false(fp_media_type_is_manifest(FP_MT_DOCKER_V1_SIGNED));
    assert_false(fp_media_type_is_manifest(MT_CONFIG));
    assert_false(fp_media_type_is_manifest(""));
    assert_false(fp_media_type_is_manifest(FP_MT_OCI_MANIFEST "; charset=utf-8"));
}

/* The result does not depend on garbage left in m by an earlier parse. */
static void test_reuse_struct(void **state)
{
    (void)state;
    fp_manifest m;
    char *idx = index_body(FP_MT_OCI_INDEX, FP_MT_OCI_MANIFEST,
                           ",\"annotations\":{\"a\":\"b\"},\"artifactType\":\"a/b\"");
    must_parse(idx, NULL, &m);
    fp_manifest_free(&m);
    char *img = image(NULL, MT_CONFIG, MT_LAYER, NULL);
    must_parse(img, NULL, &m);
    assert_false(m.is_index);
    assert_null(m.annotations);
    assert_string_equal(m.artifact_type, MT_CONFIG);
    fp_manifest_free(&m);
    free(idx);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oci_image),
        cmocka_unit_test(test_oci_index),
        cmocka_unit_test(test_docker_schema2),
        cmocka_unit_test(test_docker_manifest_list),
        cmocka_unit_test(test_media_type_inferred),
        cmocka_unit_test(test_media_type_mismatch),
        cmocka_unit_test(test_schema_version),
        cmocka_unit_test(test_invalid_json),
        cmocka_unit_test(test_bad_descriptors),
        cmocka_unit_test(test_subject_and_artifact_type),
        cmocka_unit_test(test_annotations),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_media_type_is_manifest),
        cmocka_unit_test(test_reuse_struct),
    };
    return cmocka_run_group_tests(tests, setup_digests, NULL);
}
