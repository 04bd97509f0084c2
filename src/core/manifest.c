#include "core/manifest.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -1;
}

bool fp_media_type_is_manifest(const char *mt)
{
    return !strcmp(mt, FP_MT_OCI_MANIFEST) || !strcmp(mt, FP_MT_OCI_INDEX) ||
           !strcmp(mt, FP_MT_DOCKER_V2) || !strcmp(mt, FP_MT_DOCKER_LIST);
}

static bool is_index_type(const char *mt)
{
    return !strcmp(mt, FP_MT_OCI_INDEX) || !strcmp(mt, FP_MT_DOCKER_LIST);
}

/* Media types are "type/subtype" (RFC 6838 restricted names). */
static bool media_type_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255) return false;
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || slash[1] == '\0' || strchr(slash + 1, '/')) return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$&-^_.+/", c)))
            return false;
    }
    return true;
}

static int parse_descriptor(json_t *j, fp_descriptor *d, const char *what, char *why, size_t whylen)
{
    if (!json_is_object(j)) return fail(why, whylen, "%s is not an object", what);
    json_t *mt = json_object_get(j, "mediaType");
    json_t *dg = json_object_get(j, "digest");
    json_t *sz = json_object_get(j, "size");
    if (!json_is_string(mt) || !media_type_valid(json_string_value(mt)))
        return fail(why, whylen, "%s: mediaType missing or invalid", what);
    if (!json_is_string(dg) || !fp_digest_valid(json_string_value(dg)))
        return fail(why, whylen, "%s: digest missing or invalid", what);
    if (!json_is_integer(sz) || json_integer_value(sz) < 0)
        return fail(why, whylen, "%s: size missing or negative", what);
    snprintf(d->media_type, sizeof d->media_type, "%s", json_string_value(mt));
    snprintf(d->digest, sizeof d->digest, "%s", json_string_value(dg));
    d->size = (uint64_t)json_integer_value(sz);
    json_t *urls = json_object_get(j, "urls");
    d->has_urls = json_is_array(urls) && json_array_size(urls) > 0;
    return 0;
}

static void strip_params(const char *ct, char *out, size_t outlen)
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

int fp_manifest_parse(const void *body, size_t len, const char *content_type, fp_manifest *m,
                      char *why, size_t whylen)
{
    memset(m, 0, sizeof *m);
    json_error_t jerr;
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return fail(why, whylen, "not valid JSON: %s (line %d)", jerr.text, jerr.line);
    int rc = -1;
    if (!json_is_object(root)) {
        fail(why, whylen, "manifest is not a JSON object");
        goto out;
    }
    json_t *sv = json_object_get(root, "schemaVersion");
    if (!json_is_integer(sv) || json_integer_value(sv) != 2) {
        fail(why, whylen, "schemaVersion must be 2 (schema 1 manifests are not supported)");
        goto out;
    }

    char ct[256];
    strip_params(content_type, ct, sizeof ct);
    json_t *mt = json_object_get(root, "mediaType");
    if (mt && !json_is_string(mt)) {
        fail(why, whylen, "mediaType is not a string");
        goto out;
    }
    const char *type = mt ? json_string_value(mt) : NULL;
    if (type && ct[0] && strcmp(type, ct) != 0 && strcmp(ct, "application/json") != 0 &&
        strcmp(ct, "application/octet-stream") != 0) {
        fail(why, whylen, "mediaType %s does not match Content-Type %s", type, ct);
        goto out;
    }
    if (!type && fp_media_type_is_manifest(ct)) type = ct;
    if (!type) {
        /* OCI allows mediaType to be absent: infer it from the shape. */
        type = json_object_get(root, "manifests") ? FP_MT_OCI_INDEX : FP_MT_OCI_MANIFEST;
    }
    if (!fp_media_type_is_manifest(type)) {
        fail(why, whylen, "unsupported manifest media type %s", type);
        goto out;
    }
    snprintf(m->media_type, sizeof m->media_type, "%s", type);
    m->is_index = is_index_type(type);

    json_t *list = json_object_get(root, m->is_index ? "manifests" : "layers");
    if (!m->is_index) {
        if (parse_descriptor(json_object_get(root, "config"), &m->config, "config", why, whylen) <
            0)
            goto out;
        if (!json_is_array(list)) {
            fail(why, whylen, "layers must be an array");
            goto out;
        }
    } else if (!json_is_array(list)) {
        fail(why, whylen, "manifests must be an array");
        goto out;
    }
    size_t n = json_array_size(list);
    m->refs = calloc(n + 1, sizeof *m->refs);
    if (!m->refs) {
        fail(why, whylen, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, "%s[%zu]", m->is_index ? "manifests" : "layers", i);
        if (parse_descriptor(json_array_get(list, i), &m->refs[i], what, why, whylen) < 0) goto out;
    }
    m->nrefs = n;

    json_t *subject = json_object_get(root, "subject");
    if (subject) {
        fp_descriptor sd;
        if (parse_descriptor(subject, &sd, "subject", why, whylen) < 0) goto out;
        m->has_subject = true;
        snprintf(m->subject, sizeof m->subject, "%s", sd.digest);
    }
    json_t *at = json_object_get(root, "artifactType");
    if (at && (!json_is_string(at) || !media_type_valid(json_string_value(at)))) {
        fail(why, whylen, "artifactType is not a valid media type");
        goto out;
    }
    if (at)
        snprintf(m->artifact_type, sizeof m->artifact_type, "%s", json_string_value(at));
    else if (!m->is_index)
        /* referrers rule: an image manifest without artifactType reports its
         * config's mediaType */
        snprintf(m->artifact_type, sizeof m->artifact_type, "%s", m->config.media_type);
    json_t *ann = json_object_get(root, "annotations");
    if (ann) {
        if (!json_is_object(ann)) {
            fail(why, whylen, "annotations must be an object");
            goto out;
        }
        const char *k;
        json_t *v;
        json_object_foreach(ann, k, v)
        {
            if (!json_is_string(v)) {
                fail(why, whylen, "annotation %s is not a string", k);
                goto out;
            }
        }
        m->annotations = json_dumps(ann, JSON_COMPACT | JSON_SORT_KEYS);
    }
    rc = 0;
out:
    json_decref(root);
    if (rc < 0) fp_manifest_free(m);
    return rc;
}

void fp_manifest_free(fp_manifest *m)
{
    free(m->refs);
    m->refs = NULL;
    free(m->annotations);
    m->annotations = NULL;
}
