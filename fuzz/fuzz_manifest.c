/* libFuzzer target: manifest parsing (core/manifest fp_manifest_parse).
 * The first input byte picks a Content-Type and a mode; the rest is the
 * body, either as is, or spliced into a valid manifest skeleton, or read as
 * choices for a generator that assembles a manifest from valid and broken
 * pieces (JSON is hard to stumble upon, and jansson is not instrumented: this
 * way short runs reach the descriptor, subject and annotation checks and the
 * success path). Invariants: a
 * parse that succeeds yields one of the four manifest media types, agrees
 * with the Content-Type, has valid descriptors, nrefs matching the JSON
 * array, and annotations that are a canonical JSON object of strings; a
 * parse that fails says why and leaves nothing allocated; a generic
 * Content-Type behaves like none; parsing is deterministic. */
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/manifest.h"
#include "fuzz.h"

#define HEX64 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define CONFIG                                                                                     \
    "{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:" HEX64       \
    "\",\"size\":7}"

static const char *const content_types[] = {
    NULL,
    "",
    FP_MT_OCI_MANIFEST,
    FP_MT_OCI_INDEX,
    FP_MT_DOCKER_V2,
    FP_MT_DOCKER_LIST,
    "application/json",
    "application/octet-stream",
    FP_MT_OCI_MANIFEST "; charset=utf-8",
    "  " FP_MT_DOCKER_LIST,
    "text/plain",
    FP_MT_DOCKER_V1_SIGNED,
};
#define NCT (sizeof content_types / sizeof content_types[0])

/* Skeletons: the body goes between prefix and suffix. */
static const struct {
    const char *prefix, *suffix;
} skeletons[] = {
    {"", ""},
    /* as the layers */
    {"{\"schemaVersion\":2,\"mediaType\":\"" FP_MT_OCI_MANIFEST "\",\"config\":" CONFIG
     ",\"layers\":[",
     "]}"},
    /* as more members of an image manifest (subject, artifactType, annotations...) */
    {"{\"schemaVersion\":2,\"config\":" CONFIG ",\"layers\":[],", "}"},
    /* as the manifests of an index */
    {"{\"schemaVersion\":2,\"manifests\":[", "]}"},
};

static bool str_in(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static bool is_index_type(const char *mt)
{
    return strcmp(mt, FP_MT_OCI_INDEX) == 0 || strcmp(mt, FP_MT_DOCKER_LIST) == 0;
}

/* The Content-Type without parameters, as the parser sees it. */
static void bare_type(const char *ct, char *out, size_t outlen)
{
    out[0] = '\0';
    if (!ct) return;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    if (n >= outlen) n = outlen - 1;
    memcpy(out, ct, n);
    out[n] = '\0';
}

static void check_descriptor(const fp_descriptor *d)
{
    CHECK(str_in(d->media_type, sizeof d->media_type));
    CHECK(str_in(d->digest, sizeof d->digest));
    CHECK(d->media_type[0] != '\0');
    CHECK(strchr(d->media_type, '/') != NULL);
    CHECK(fp_digest_valid(d->digest));
}

/* Successful parse: check m against the body re-read with jansson. */
static void check_success(const uint8_t *body, size_t len, const char *ct, const fp_manifest *m)
{
    CHECK(str_in(m->media_type, sizeof m->media_type));
    CHECK(fp_media_type_is_manifest(m->media_type));
    CHECK(m->is_index == is_index_type(m->media_type));
    CHECK(m->refs != NULL);
    char bare[256];
    bare_type(ct, bare, sizeof bare);
    if (fp_media_type_is_manifest(bare)) CHECK(strcmp(m->media_type, bare) == 0);

    json_error_t jerr;
    json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
    CHECK(root != NULL);
    CHECK(json_is_object(root));
    CHECK(json_integer_value(json_object_get(root, "schemaVersion")) == 2);
    json_t *mt = json_object_get(root, "mediaType");
    if (mt) CHECK(strcmp(json_string_value(mt), m->media_type) == 0);
    json_t *list = json_object_get(root, m->is_index ? "manifests" : "layers");
    CHECK(json_is_array(list));
    CHECK(json_array_size(list) == m->nrefs);
    for (size_t i = 0; i < m->nrefs; i++) {
        check_descriptor(&m->refs[i]);
        json_t *d = json_array_get(list, i);
        CHECK(strcmp(json_string_value(json_object_get(d, "digest")), m->refs[i].digest) == 0);
        CHECK(strcmp(json_string_value(json_object_get(d, "mediaType")), m->refs[i].media_type) ==
              0);
        CHECK((uint64_t)json_integer_value(json_object_get(d, "size")) == m->refs[i].size);
        json_t *urls = json_object_get(d, "urls");
        CHECK(m->refs[i].has_urls == (json_is_array(urls) && json_array_size(urls) > 0));
    }
    if (m->is_index) {
        CHECK(m->config.digest[0] == '\0');
    } else {
        check_descriptor(&m->config);
        CHECK(strcmp(json_string_value(json_object_get(json_object_get(root, "config"), "digest")),
                     m->config.digest) == 0);
    }

    CHECK(str_in(m->subject, sizeof m->subject));
    json_t *subject = json_object_get(root, "subject");
    CHECK(m->has_subject == (subject != NULL));
    if (m->has_subject) {
        CHECK(fp_digest_valid(m->subject));
        CHECK(strcmp(json_string_value(json_object_get(subject, "digest")), m->subject) == 0);
    } else {
        CHECK(m->subject[0] == '\0');
    }

    CHECK(str_in(m->artifact_type, sizeof m->artifact_type));
    json_t *at = json_object_get(root, "artifactType");
    if (at)
        CHECK(strcmp(json_string_value(at), m->artifact_type) == 0);
    else if (!m->is_index)
        CHECK(strcmp(m->artifact_type, m->config.media_type) == 0);
    else
        CHECK(m->artifact_type[0] == '\0');

    json_t *ann = json_object_get(root, "annotations");
    CHECK((ann != NULL) == (m->annotations != NULL));
    if (m->annotations) {
        json_t *again = json_loads(m->annotations, JSON_REJECT_DUPLICATES, &jerr);
        CHECK(again != NULL);
        CHECK(json_is_object(again));
        CHECK(json_equal(again, ann));
        const char *k;
        json_t *v;
        json_object_foreach(again, k, v) CHECK(json_is_string(v));
        char *canon = json_dumps(again, JSON_COMPACT | JSON_SORT_KEYS);
        CHECK(canon != NULL);
        CHECK(strcmp(canon, m->annotations) == 0);
        free(canon);
        json_decref(again);
    }
    json_decref(root);
}

/* Parse, check, and return the outcome (m is freed unless keep). */
static int parse_checked(const uint8_t *body, size_t len, const char *ct, fp_manifest *m, bool keep)
{
    char why[256];
    memset(why, 'Z', sizeof why);
    why[sizeof why - 1] = '\0';
    why[0] = '\0';
    int rc = fp_manifest_parse(body, len, ct, m, why, sizeof why);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        check_success(body, len, ct, m);
    } else {
        CHECK(why[0] != '\0');
        CHECK(str_in(why, sizeof why));
        CHECK(m->refs == NULL);
        CHECK(m->annotations == NULL);
    }
    if (!keep && rc == 0) fp_manifest_free(m);
    return rc;
}

static bool same_result(const fp_manifest *a, const fp_manifest *b)
{
    if (strcmp(a->media_type, b->media_type) || a->is_index != b->is_index ||
        a->nrefs != b->nrefs || a->has_subject != b->has_subject ||
        strcmp(a->subject, b->subject) || strcmp(a->artifact_type, b->artifact_type) ||
        memcmp(&a->config, &b->config, sizeof a->config))
        return false;
    if ((a->annotations == NULL) != (b->annotations == NULL) ||
        (a->annotations && strcmp(a->annotations, b->annotations)))
        return false;
    return memcmp(a->refs, b->refs, a->nrefs * sizeof *a->refs) == 0;
}

/* ---- generator: input bytes choose the pieces of a manifest */

struct gen {
    const uint8_t *p;
    size_t n;
    FILE *out;
};

static unsigned pick(struct gen *g, unsigned n)
{
    if (g->n == 0) return 0;
    g->n--;
    return *g->p++ % n;
}

static void emit(struct gen *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct gen *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(g->out, fmt, ap);
    va_end(ap);
}

static const char *const media_types[] = {
    "application/vnd.oci.image.layer.v1.tar+gzip",
    FP_MT_OCI_MANIFEST,
    FP_MT_DOCKER_V2,
    "application/vnd.oci.empty.v1+json",
    "",
    "a/b/c",
    "application/x;y=z",
    "text/plain",
};
static const char *const digests[] = {
    "sha256:" HEX64,
    "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
    "sha256:abc",
    "sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "",
};
static const char *const sizes[] = {"0", "7", "9007199254740993", "-1", "\"7\"", "1.5", "null"};
static const char *const urls[] = {"[\"https://example.com/l\"]", "[]", "\"https://x\"", "[1]"};
static const char *const manifest_types[] = {
    FP_MT_OCI_MANIFEST, FP_MT_OCI_INDEX, FP_MT_DOCKER_V2,    FP_MT_DOCKER_LIST,
    FP_MT_DOCKER_V1,    "a/b",           "application/json",
};
static const char *const annotations[] = {
    "{}",
    "{\"org.opencontainers.image.title\":\"x\",\"a\":\"\\u00e9\"}",
    "{\"b\":\"2\",\"a\":\"1\"}",
    "{\"a\":1}",
    "[]",
    "{\"a\":\"1\",\"a\":\"2\"}",
};
#define N(a) ((unsigned)(sizeof(a) / sizeof((a)[0])))

/* A descriptor, mostly valid; a field may be missing, wrong or extra. */
static void gen_descriptor(struct gen *g)
{
    unsigned flaw = pick(g, 8); /* 0..3: none */
    if (flaw == 4) {
        emit(g, "%s", pick(g, 2) ? "\"sha256:abc\"" : "null");
        return;
    }
    emit(g, "{");
    bool comma = false;
    if (flaw != 5) {
        emit(g, "\"mediaType\":\"%s\"", media_types[flaw == 6 ? pick(g, N(media_types)) : 0]);
        comma = true;
    }
    if (flaw != 7) {
        unsigned d = pick(g, 8);
        emit(g, "%s\"digest\":\"%s\"", comma ? "," : "", digests[d < 3 ? d : pick(g, N(digests))]);
        comma = true;
    }
    unsigned sz = pick(g, 6);
    emit(g, "%s\"size\":%s", comma ? "," : "", sizes[sz < 3 ? sz : pick(g, N(sizes))]);
    if (pick(g, 4) == 0) emit(g, ",\"urls\":%s", urls[pick(g, N(urls))]);
    if (pick(g, 6) == 0) emit(g, ",\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    emit(g, "}");
}

static void gen_manifest(struct gen *g)
{
    emit(g, "{");
    static const char *const versions[] = {"2", "2", "2", "1", "\"2\"", "2.0"};
    emit(g, "\"schemaVersion\":%s", versions[pick(g, N(versions))]);
    unsigned mt = pick(g, N(manifest_types) + 2);
    if (mt < N(manifest_types))
        emit(g, ",\"mediaType\":\"%s\"", manifest_types[mt]);
    else if (mt == N(manifest_types))
        emit(g, ",\"mediaType\":5");
    if (pick(g, 4) != 0) {
        emit(g, ",\"config\":");
        gen_descriptor(g);
    }
    unsigned lists = pick(g, 5); /* 0,1: layers; 2,3: manifests; 4: both */
    static const char *const names[] = {"layers", "manifests"};
    for (unsigned l = 0; l < 2; l++) {
        if (!(lists == 4 || lists / 2 == l)) continue;
        if (pick(g, 8) == 0) {
            emit(g, ",\"%s\":{}", names[l]);
            continue;
        }
        emit(g, ",\"%s\":[", names[l]);
        unsigned n = pick(g, 5);
        for (unsigned i = 0; i < n; i++) {
            if (i) emit(g, ",");
            gen_descriptor(g);
        }
        emit(g, "]");
    }
    if (pick(g, 3) == 0) {
        emit(g, ",\"subject\":");
        gen_descriptor(g);
    }
    unsigned at = pick(g, 6);
    if (at == 1)
        emit(g, ",\"artifactType\":\"application/vnd.example.sig.v1\"");
    else if (at == 2)
        emit(g, ",\"artifactType\":\"%s\"", media_types[pick(g, N(media_types))]);
    else if (at == 3)
        emit(g, ",\"artifactType\":7");
    if (pick(g, 3) == 0) emit(g, ",\"annotations\":%s", annotations[pick(g, N(annotations))]);
    if (pick(g, 10) == 0) emit(g, ",\"schemaVersion\":2"); /* a duplicate key */
    if (pick(g, 10) == 0) emit(g, ",\"x-extra\":{\"k\":[1,{\"k\":null}]}");
    emit(g, "}");
}

static void run(const uint8_t *body, size_t len, const char *ct)
{
    fp_manifest none, ct_m, generic;
    int rc_none = parse_checked(body, len, NULL, &none, true);
    int rc_ct = parse_checked(body, len, ct, &ct_m, false);
    (void)rc_ct;
    /* a generic Content-Type is the same as none */
    int rc_generic = parse_checked(body, len, "application/json", &generic, true);
    CHECK(rc_generic == rc_none);
    if (rc_none == 0) {
        CHECK(same_result(&none, &generic));
        /* deterministic */
        fp_manifest again;
        CHECK(parse_checked(body, len, NULL, &again, true) == 0);
        CHECK(same_result(&none, &again));
        fp_manifest_free(&again);
        /* naming the media type it has as the Content-Type changes nothing */
        fp_manifest named;
        CHECK(parse_checked(body, len, none.media_type, &named, true) == 0);
        CHECK(same_result(&none, &named));
        fp_manifest_free(&named);
        fp_manifest_free(&none);
        fp_manifest_free(&generic);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) {
        run(data, 0, NULL);
        return 0;
    }
    uint8_t sel = data[0];
    const char *ct = content_types[(sel & 0x0f) % NCT];
    unsigned mode = (unsigned)(sel >> 4) & 7; /* 0-1 raw, 2-4 skeleton, 5-7 generator */
    const uint8_t *in = data + 1;
    size_t inlen = size - 1;
    if (mode < 2) {
        run(in, inlen, ct);
        return 0;
    }
    if (mode >= 5) {
        char *buf = NULL;
        size_t len = 0;
        struct gen g = {.p = in, .n = inlen, .out = open_memstream(&buf, &len)};
        if (!g.out) return 0;
        gen_manifest(&g);
        fclose(g.out);
        run((const uint8_t *)buf, len, ct);
        free(buf);
        return 0;
    }
    size_t sk = mode - 1;
    size_t pl = strlen(skeletons[sk].prefix), sl = strlen(skeletons[sk].suffix);
    uint8_t *body = malloc(pl + inlen + sl + 1);
    if (!body) return 0;
    memcpy(body, skeletons[sk].prefix, pl);
    memcpy(body + pl, in, inlen);
    memcpy(body + pl + inlen, skeletons[sk].suffix, sl);
    run(body, pl + inlen + sl, ct);
    free(body);
    return 0;
}
