/* Pull-through of manifests and referrers. A manifest is small: fetched
 * whole, checked (its digest against the reference asked for, or against
 * the holder's Docker-Content-Digest for a tag; a manifest we understand),
 * and stored byte for byte as cached content, its blobs following on
 * demand. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/manifest.h"
#include "federation/fed_internal.h"

static const char accept_manifests[] =
    "Accept: " FP_MT_OCI_MANIFEST ", " FP_MT_OCI_INDEX ", " FP_MT_DOCKER_V2 ", " FP_MT_DOCKER_LIST;

/* 0 stored, FP_STORE_NOT_FOUND the holder does not have it (or refuses),
 * -1 the holder failed or lied. */
static int pull_from(fp_federation *f, const struct fp_source *src, const char *repo,
                     const char *ref, bool by_digest, const fp_fed_origin *o, fp_error *err)
{
    char path[FP_NAME_MAX + FP_DIGEST_MAX + 32];
    snprintf(path, sizeof path, "/v2/%s/manifests/%s", repo, ref);
    const char *extra[] = {accept_manifests, NULL};
    /* a reused connection skips the connect phase: silence ends it too */
    unsigned quiet = f->cfg->fed_peer_timeout_s ? f->cfg->fed_peer_timeout_s : 3;
    fp_http_opts opts = {
        .timeout_s = 30, .connect_timeout_s = quiet, .stall_s = quiet, .max_body = 4u << 20};
    if (f->cfg->max_manifest_bytes) opts.max_body = f->cfg->max_manifest_bytes;
    fp_http_response resp;
    if (fp_fed_call(f, src, "GET", path, repo, o, extra, &opts, &resp, err) < 0) return -1;
    if (resp.status != 200) {
        long status = resp.status;
        fp_http_response_free(&resp);
        if (status == 404 || status == 401 || status == 403) return FP_STORE_NOT_FOUND;
        return fp_error_set(err, 0, "%s answered HTTP %ld", src->id, status);
    }
    const char *body = resp.body.data ? resp.body.data : "";
    enum fp_digest_alg alg = FP_SHA256;
    if (by_digest) fp_digest_parse(ref, strlen(ref), &alg);
    char digest[FP_DIGEST_MAX];
    fp_digest_bytes(alg, body, resp.body.len, digest);
    /* what we were given must be what was asked for */
    const char *want = by_digest ? ref : resp.digest[0] ? resp.digest : NULL;
    if (want && strcmp(want, digest) != 0) {
        fp_warn("event=pull_rejected source=%s repo=%s ref=%s reason=\"digest %s, expected %s\"",
                src->id, repo, ref, digest, want);
        fp_http_response_free(&resp);
        return fp_error_set(err, 0, "%s served a manifest that does not match its digest", src->id);
    }
    fp_manifest m;
    char why[300];
    if (fp_manifest_parse(body, resp.body.len, resp.content_type, &m, why, sizeof why) < 0) {
        fp_http_response_free(&resp);
        return fp_error_set(err, 0, "%s served an invalid manifest: %s", src->id, why);
    }
    const char *tags[1] = {ref};
    char missing[FP_DIGEST_MAX];
    int rc = fp_store_manifest_put_parsed(f->store, repo, &m, digest, body, resp.body.len, tags,
                                          by_digest ? 0 : 1, true, missing, err);
    fp_manifest_free(&m);
    fp_http_response_free(&resp);
    if (rc == 0)
        fp_info("event=pulled kind=manifest repo=%s ref=%s digest=%s source=%s", repo, ref, digest,
                src->id);
    return rc;
}

int fp_fed_pull_manifest(fp_federation *f, const char *repo, const char *ref, bool by_digest,
                         const fp_fed_origin *o, fp_error *err)
{
    struct fp_source src[FED_MAX_SOURCES + 1];
    size_t n = fp_fed_sources(f, repo, by_digest, o->via, src, FED_MAX_SOURCES + 1);
    int result = FP_STORE_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        fp_error e;
        int rc = pull_from(f, &src[i], repo, ref, by_digest, o, &e);
        if (rc == 0) return 0;
        if (rc < 0) {
            fp_warn("event=pull_failed source=%s repo=%s ref=%s error=\"%s\"", src[i].id, repo, ref,
                    e.msg);
            if (!src[i].parent) fp_fed_source_failed(f, src[i].id);
            *err = e;
            result = -1;
        }
    }
    return result;
}

int fp_fed_referrers(fp_federation *f, const char *repo, const char *digest, const char *query,
                     const fp_fed_origin *o, char **body, size_t *len, fp_error *err)
{
    struct fp_source src[FED_MAX_SOURCES + 1];
    /* a listing has no digest to check: ask the authority (owner, parent) */
    size_t n = fp_fed_sources(f, repo, false, NULL, src, FED_MAX_SOURCES + 1);
    char path[FP_NAME_MAX + FP_DIGEST_MAX + 320];
    snprintf(path, sizeof path, "/v2/%s/referrers/%s%s%s", repo, digest, query ? "?" : "",
             query ? query : "");
    for (size_t i = 0; i < n; i++) {
        fp_http_opts opts = {.timeout_s = 30, .max_body = 4u << 20};
        fp_http_response resp;
        if (fp_fed_call(f, &src[i], "GET", path, repo, o, NULL, &opts, &resp, err) < 0) continue;
        if (resp.status == 200) {
            *len = resp.body.len;
            *body = resp.body.data ? resp.body.data : strdup("");
            return *body ? 0 : fp_error_set(err, ENOMEM, "referrers");
        }
        fp_http_response_free(&resp);
    }
    return FP_STORE_NOT_FOUND;
}

int fp_fed_resolve(fp_federation *f, const char *repo, char id[64], char url[512], double *rtt_ms,
                   fp_error *err)
{
    struct fp_source src[FED_MAX_SOURCES + 1];
    size_t n = fp_fed_sources(f, repo, true, NULL, src, FED_MAX_SOURCES + 1);
    char path[FP_NAME_MAX + 32];
    snprintf(path, sizeof path, "/v2/%s/tags/list?n=1", repo);
    fp_fed_origin o = {.hops = 0};
    for (size_t i = 0; i < n; i++) {
        /* the parent is asked as a peer too: does it hold it itself? */
        struct fp_source s = src[i];
        s.parent = false;
        fp_http_opts opts = {.timeout_s = 5, .max_body = 64 * 1024};
        fp_http_response resp;
        if (fp_fed_call(f, &s, "GET", path, repo, &o, NULL, &opts, &resp, err) < 0) continue;
        long status = resp.status;
        fp_http_response_free(&resp);
        if (status != 200 && !(src[i].parent && i + 1 == n)) continue;
        /* nobody nearer has it: the parent is where it comes from */
        snprintf(id, 64, "%s", src[i].id);
        snprintf(url, 512, "%s", src[i].url);
        *rtt_ms = src[i].rtt_ms;
        return status == 200 || src[i].parent ? 0 : FP_STORE_NOT_FOUND;
    }
    return FP_STORE_NOT_FOUND;
}
