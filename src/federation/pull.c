/* Pull-through of manifests and referrers. A manifest is small: fetched
 * whole (a silent holder hedged with the next, hedge.c), checked (its digest against the reference
 * asked for, or against the holder's Docker-Content-Digest for a tag; a manifest we understand),
 * and stored byte for byte as cached content, its blobs following on
 * demand. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/manifest.h"
#include "control/recallset.h"
#include "federation/fed_internal.h"

static const char accept_manifests[] =
    "Accept: " FP_MT_OCI_MANIFEST ", " FP_MT_OCI_INDEX ", " FP_MT_DOCKER_V2 ", " FP_MT_DOCKER_LIST;

/* A manifest fetch raced between holders: what each attempt got. Shared
 * with the attempts (which may outlive the race), so reference counted. */
struct pull_race {
    fp_federation *f;
    unsigned refs; /* under f->lock */
    char repo[FP_NAME_MAX + 1];
    char ref[FP_DIGEST_MAX + 200];
    bool by_digest;
    fp_fed_origin origin;
    struct pull_answer {
        fp_http_response resp; /* the body, when ok */
        char digest[FP_DIGEST_MAX];
        fp_manifest m;
        bool ok;     /* the winning answer */
        bool failed; /* the holder failed or lied (err) */
        fp_error err;
    } answers[FED_RACE_MAX];
};

static void pull_ref(void *ctx)
{
    struct pull_race *p = ctx;
    pthread_mutex_lock(&p->f->lock);
    p->refs++;
    pthread_mutex_unlock(&p->f->lock);
}

static void pull_unref(void *ctx)
{
    struct pull_race *p = ctx;
    pthread_mutex_lock(&p->f->lock);
    bool last = --p->refs == 0;
    pthread_mutex_unlock(&p->f->lock);
    if (!last) return;
    for (size_t i = 0; i < FED_RACE_MAX; i++)
        if (p->answers[i].ok) {
            fp_manifest_free(&p->answers[i].m);
            fp_http_response_free(&p->answers[i].resp);
        }
    free(p);
}

/* One attempt (on its own thread, see hedge.c): the whole manifest from
 * one holder, checked, and kept in its answer when it wins the race.
 * 0 won, FP_STORE_NOT_FOUND the holder does not have it (or refuses), -1
 * the holder failed or lied, 2 another holder was faster. */
static int pull_attempt(fed_race *race, unsigned slot, const struct fp_source *src, void *ctx)
{
    struct pull_race *p = ctx;
    fp_federation *f = p->f;
    struct pull_answer *a = &p->answers[slot];
    fp_error *err = &a->err;
    char path[FP_NAME_MAX + FP_DIGEST_MAX + 232];
    snprintf(path, sizeof path, "/v2/%s/manifests/%s", p->repo, p->ref);
    const char *extra[] = {accept_manifests, NULL};
    /* a reused connection skips the connect phase: silence ends it too */
    unsigned quiet = f->cfg->fed_peer_timeout_s ? f->cfg->fed_peer_timeout_s : 3;
    fp_http_opts opts = {
        .timeout_s = 30, .connect_timeout_s = quiet, .stall_s = quiet, .max_body = 4u << 20};
    if (f->cfg->max_manifest_bytes) opts.max_body = f->cfg->max_manifest_bytes;
    fp_fed_race_opts(race, slot, &opts);
    fp_http_response resp;
    int rc = fp_fed_call(f, src, "GET", path, p->repo, &p->origin, extra, &opts, &resp, err);
    if (fp_fed_race_lost(race, slot)) {
        if (rc == 0) fp_http_response_free(&resp);
        return 2;
    }
    if (rc < 0) goto failed;
    if (resp.status != 200) {
        long status = resp.status;
        fp_http_response_free(&resp);
        if (status == 404 || status == 401 || status == 403) return FP_STORE_NOT_FOUND;
        fp_error_set(err, 0, "%s answered HTTP %ld", src->id, status);
        goto failed;
    }
    const char *body = resp.body.data ? resp.body.data : "";
    enum fp_digest_alg alg = FP_SHA256;
    if (p->by_digest) fp_digest_parse(p->ref, strlen(p->ref), &alg);
    fp_digest_bytes(alg, body, resp.body.len, a->digest);
    /* what we were given must be what was asked for */
    const char *want = p->by_digest ? p->ref : resp.digest[0] ? resp.digest : NULL;
    if (want && strcmp(want, a->digest) != 0) {
        fp_warn("event=pull_rejected source=%s repo=%s ref=%s reason=\"digest %s, expected %s\"",
                src->id, p->repo, p->ref, a->digest, want);
        fp_http_response_free(&resp);
        fp_error_set(err, 0, "%s served a manifest that does not match its digest", src->id);
        goto failed;
    }
    char why[300];
    if (fp_manifest_parse(body, resp.body.len, resp.content_type, &a->m, why, sizeof why) < 0) {
        fp_http_response_free(&resp);
        fp_error_set(err, 0, "%s served an invalid manifest: %s", src->id, why);
        goto failed;
    }
    if (!fp_fed_race_claim(race, slot)) {
        fp_manifest_free(&a->m);
        fp_http_response_free(&resp);
        return 2;
    }
    a->resp = resp;
    a->ok = true;
    return 0;
failed:
    fp_warn("event=pull_failed source=%s repo=%s ref=%s error=\"%s\"", src->id, p->repo, p->ref,
            err->msg);
    if (!src->parent) fp_fed_source_failed(f, src->id);
    a->failed = true;
    return -1;
}

int fp_fed_pull_manifest(fp_federation *f, const char *repo, const char *ref, bool by_digest,
                         const fp_fed_origin *o, fp_error *err)
{
    struct fp_source src[FED_MAX_SOURCES + 1];
    if (by_digest && fp_recall_set_has(f->recalled, ref))
        return fp_error_set(err, EACCES, "%s@%s is recalled", repo, ref);
    size_t n = fp_fed_sources(f, repo, by_digest, o->via, src, FED_MAX_SOURCES + 1);
    if (!n) return FP_STORE_NOT_FOUND;
    struct pull_race *p = calloc(1, sizeof *p);
    if (!p) return fp_error_set(err, ENOMEM, "pull");
    p->f = f;
    p->refs = 1;
    snprintf(p->repo, sizeof p->repo, "%s", repo);
    snprintf(p->ref, sizeof p->ref, "%s", ref);
    p->by_digest = by_digest;
    p->origin = *o;
    /* A manifest is small: the whole request is hedged, and only the
     * answer that wins is stored. */
    struct fed_race_spec spec = {.attempt = pull_attempt,
                                 .ctx = p,
                                 .ctx_ref = pull_ref,
                                 .ctx_unref = pull_unref,
                                 .hedge = true};
    size_t next = 0;
    int rc = FP_STORE_NOT_FOUND;
    int w = fp_fed_race_run(f, src, n, &next, &spec, &rc);
    if (w >= 0 && rc == 0) {
        struct pull_answer *a = NULL;
        for (size_t i = 0; i < FED_RACE_MAX && !a; i++)
            if (p->answers[i].ok) a = &p->answers[i];
        const char *tags[1] = {ref};
        char missing[FP_DIGEST_MAX];
        const char *body = a->resp.body.data ? a->resp.body.data : "";
        /* a holder that has not heard of the recall yet must not bring
         * it back */
        if (fp_recall_set_has(f->recalled, a->digest))
            rc = fp_error_set(err, EACCES, "%s@%s is recalled", repo, a->digest);
        else
            rc = fp_store_manifest_put_parsed(f->store, repo, &a->m, a->digest, body,
                                              a->resp.body.len, tags, by_digest ? 0 : 1, true,
                                              missing, err);
        if (rc == 0) {
            fp_info("event=pulled kind=manifest repo=%s ref=%s digest=%s source=%s", repo, ref,
                    a->digest, src[w].id);
            fp_fed_count(f, FP_FED_MANIFEST, src[w].kind);
        }
    } else {
        /* every holder was asked and has answered: an error when one
         * failed, else nobody has it */
        rc = FP_STORE_NOT_FOUND;
        for (size_t i = 0; i < FED_RACE_MAX; i++)
            if (p->answers[i].failed) {
                *err = p->answers[i].err;
                rc = -1;
            }
    }
    if (rc != 0) fp_fed_count(f, FP_FED_MANIFEST, FP_FED_NONE);
    pull_unref(p);
    return rc;
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
