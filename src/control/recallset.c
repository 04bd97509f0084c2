#include "control/recallset.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/log.h"
#include "core/name.h"

/* Sorted copies of the keys, looked up by every manifest and blob request:
 * a binary search, never a walk over the records. */
struct keys {
    char **v;
    size_t n, cap;
};

struct fp_recall_set {
    pthread_rwlock_t lock;
    json_t *records;
    struct keys manifests; /* digest */
    struct keys blobs;     /* "repo digest" (names hold no space) */
    struct keys tags;      /* "repo:tag" */
    char version[FP_DIGEST_MAX];
};

/* The same records give the same version at the cloud and at every node
 * (sorted keys, compact), so a heartbeat answer can say "yours is old". */
static void version_of(const json_t *records, char out[FP_DIGEST_MAX])
{
    char *text = json_dumps(records, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text || fp_digest_bytes(FP_SHA256, text, strlen(text), out) < 0) out[0] = '\0';
    free(text);
}

static void keys_free(struct keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
    *k = (struct keys){0};
}

static int keys_add(struct keys *k, const char *a, const char *sep, const char *b)
{
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 16;
        char **v = realloc(k->v, cap * sizeof *v);
        if (!v) return -1;
        k->v = v;
        k->cap = cap;
    }
    char *key = NULL;
    if (asprintf(&key, "%s%s%s", a, sep ? sep : "", b ? b : "") < 0) return -1;
    k->v[k->n++] = key;
    return 0;
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void keys_sort(struct keys *k)
{
    if (k->n) qsort(k->v, k->n, sizeof *k->v, cmp_key);
}

static bool keys_has(const struct keys *k, const char *key)
{
    return k->n && bsearch(&key, k->v, k->n, sizeof *k->v, cmp_key) != NULL;
}

int fp_recall_set_new(fp_recall_set **out, fp_error *err)
{
    fp_recall_set *s = calloc(1, sizeof *s);
    if (!s) return fp_error_set(err, ENOMEM, "recall set");
    pthread_rwlock_init(&s->lock, NULL);
    s->records = json_array();
    version_of(s->records, s->version);
    *out = s;
    return 0;
}

void fp_recall_set_free(fp_recall_set *s)
{
    if (!s) return;
    keys_free(&s->manifests);
    keys_free(&s->blobs);
    keys_free(&s->tags);
    json_decref(s->records);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

static bool digest_ok(const char *d)
{
    return d && fp_digest_parse(d, strlen(d), NULL) == FP_DIGEST_OK;
}

/* Build the keys of records into m, b, t; the records that are usable into
 * kept (a record the set cannot read is left out, never half applied). */
static int build(const json_t *records, json_t *kept, struct keys *m, struct keys *b,
                 struct keys *t)
{
    size_t i, k;
    json_t *rec, *v;
    json_array_foreach(records, i, rec)
    {
        const char *digest = json_string_value(json_object_get(rec, "digest"));
        const char *repo = json_string_value(json_object_get(rec, "repo"));
        if (!digest_ok(digest) || !repo || !fp_name_valid(repo, strlen(repo))) continue;
        if (keys_add(m, digest, NULL, NULL) < 0) return -1;
        json_array_foreach(
            json_object_get(rec, "children"), k,
            v) if (digest_ok(json_string_value(v))) if (keys_add(m, json_string_value(v), NULL,
                                                                 NULL) < 0) return -1;
        json_array_foreach(
            json_object_get(rec, "blobs"), k,
            v) if (digest_ok(json_string_value(v))) if (keys_add(b, repo, " ",
                                                                 json_string_value(v)) <
                                                        0) return -1;
        json_array_foreach(json_object_get(rec, "tags"), k, v)
        {
            const char *tag = json_string_value(v);
            if (tag && fp_tag_valid(tag, strlen(tag)) && keys_add(t, repo, ":", tag) < 0) return -1;
        }
        json_array_append(kept, rec);
    }
    keys_sort(m);
    keys_sort(b);
    keys_sort(t);
    return 0;
}

int fp_recall_set_replace(fp_recall_set *s, const json_t *records, fp_error *err)
{
    if (!json_is_array(records)) return fp_error_set(err, 0, "recall list: not an array");
    struct keys m = {0}, b = {0}, t = {0};
    json_t *kept = json_array();
    if (!kept || build(records, kept, &m, &b, &t) < 0) {
        keys_free(&m);
        keys_free(&b);
        keys_free(&t);
        json_decref(kept);
        return fp_error_set(err, ENOMEM, "recall set");
    }
    char version[FP_DIGEST_MAX];
    version_of(kept, version);
    pthread_rwlock_wrlock(&s->lock);
    bool changed = !json_equal(kept, s->records);
    memcpy(s->version, version, sizeof version);
    json_t *old = s->records;
    s->records = kept;
    keys_free(&s->manifests);
    keys_free(&s->blobs);
    keys_free(&s->tags);
    s->manifests = m;
    s->blobs = b;
    s->tags = t;
    pthread_rwlock_unlock(&s->lock);
    json_decref(old);
    return changed ? 1 : 0;
}

json_t *fp_recall_set_records(fp_recall_set *s)
{
    pthread_rwlock_rdlock(&s->lock);
    json_t *r = json_incref(s->records);
    pthread_rwlock_unlock(&s->lock);
    return r;
}

void fp_recall_set_version(fp_recall_set *s, char out[FP_DIGEST_MAX])
{
    out[0] = '\0';
    if (!s) return;
    pthread_rwlock_rdlock(&s->lock);
    memcpy(out, s->version, FP_DIGEST_MAX);
    pthread_rwlock_unlock(&s->lock);
}

size_t fp_recall_set_count(fp_recall_set *s)
{
    if (!s) return 0;
    pthread_rwlock_rdlock(&s->lock);
    size_t n = json_array_size(s->records);
    pthread_rwlock_unlock(&s->lock);
    return n;
}

bool fp_recall_set_has(fp_recall_set *s, const char *digest)
{
    if (!s || !digest) return false;
    pthread_rwlock_rdlock(&s->lock);
    bool has = keys_has(&s->manifests, digest);
    pthread_rwlock_unlock(&s->lock);
    return has;
}

static bool has_pair(fp_recall_set *s, struct keys *k, const char *a, const char *sep,
                     const char *b)
{
    if (!s) return false;
    char key[FP_NAME_MAX + FP_DIGEST_MAX + 8];
    snprintf(key, sizeof key, "%s%s%s", a, sep, b);
    pthread_rwlock_rdlock(&s->lock);
    bool has = keys_has(k, key);
    pthread_rwlock_unlock(&s->lock);
    return has;
}

bool fp_recall_set_tag(fp_recall_set *s, const char *repo, const char *tag)
{
    return s && has_pair(s, &s->tags, repo, ":", tag);
}

struct other_ctx {
    fp_recall_set *s;
    bool other; /* a manifest that is not recalled references the blob */
};

static int not_recalled(void *ctx, const char *digest)
{
    struct other_ctx *c = ctx;
    if (fp_recall_set_has(c->s, digest)) return 0;
    c->other = true;
    return 1;
}

bool fp_recall_set_blob_denied(fp_recall_set *s, fp_store *store, const char *repo,
                               const char *digest)
{
    if (!s || !has_pair(s, &s->blobs, repo, " ", digest)) return false;
    struct other_ctx c = {.s = s};
    fp_error err;
    if (fp_store_manifests_referencing(store, repo, digest, not_recalled, &c, &err) < 0) {
        /* refusing a layer another image needs is the lesser harm here
         * than serving a recalled one */
        fp_warn("event=recall_check_failed repo=%s digest=%s error=\"%s\"", repo, digest, err.msg);
        return true;
    }
    return !c.other;
}

static int delete_manifest(fp_store *store, const char *repo, const char *digest, int *removed,
                           fp_error *err)
{
    int rc = fp_store_manifest_delete(store, repo, digest, true, err);
    if (rc < 0) return -1;
    if (rc == 0) {
        (*removed)++;
        fp_info("event=recall_applied repo=%s digest=%s", repo, digest);
    }
    return 0;
}

int fp_recall_set_apply(fp_recall_set *s, fp_store *store, fp_error *err)
{
    json_t *records = fp_recall_set_records(s);
    int removed = 0, rc = 0;
    size_t i, k;
    json_t *rec, *v;
    json_array_foreach(records, i, rec)
    {
        const char *digest = json_string_value(json_object_get(rec, "digest"));
        const char *repo = json_string_value(json_object_get(rec, "repo"));
        if (!digest_ok(digest) || !repo || !fp_name_valid(repo, strlen(repo))) continue;
        /* the index first: its children are not deletable while it stands */
        if (delete_manifest(store, repo, digest, &removed, err) < 0) rc = -1;
        json_array_foreach(
            json_object_get(rec, "children"), k,
            v) if (digest_ok(json_string_value(v))) if (delete_manifest(store, repo,
                                                                        json_string_value(v),
                                                                        &removed, err) < 0) rc = -1;
        /* blobs no other image of the repository needs leave it */
        json_array_foreach(json_object_get(rec, "blobs"), k, v)
        {
            const char *blob = json_string_value(v);
            if (!digest_ok(blob) || !fp_recall_set_blob_denied(s, store, repo, blob)) continue;
            fp_error berr;
            if (fp_store_blob_delete(store, repo, blob, &berr) < 0) {
                *err = berr;
                rc = -1;
            }
        }
    }
    json_decref(records);
    return rc < 0 ? -1 : removed;
}
