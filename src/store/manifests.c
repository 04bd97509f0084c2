/* Manifests, tags, catalog and referrers. Manifest bodies are global rows
 * keyed by digest; repo_manifests links them into repositories; tags point
 * at digests; manifest_refs records what each manifest references so a PUT
 * can be refused when something is missing and gc can follow the graph. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/manifest.h"

static int step_done(fp_db *db, sqlite3_stmt *st, fp_error *err, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fp_db_fail(db, err, what);
}

/* 0: linked, FP_STORE_NOT_FOUND: not, -1: error */
static int in_repo(fp_db *db, enum fp_stmt id, int64_t repo_id, const char *digest, fp_error *err)
{
    sqlite3_stmt *st = fp_db_stmt(db, id, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, repo_id);
    sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 0;
    return rc == SQLITE_DONE ? FP_STORE_NOT_FOUND : fp_db_fail(db, err, "check reference");
}

static int put_locked(fp_db *db, const char *repo, const fp_manifest_put *m,
                      char missing[FP_DIGEST_MAX], fp_error *err)
{
    int64_t repo_id;
    int rc = fp_store_repo_id(db, repo, true, &repo_id, err);
    if (rc != 0) return rc;
    for (size_t i = 0; i < m->nrefs; i++) {
        const fp_manifest_ref *r = &m->refs[i];
        if (r->external || m->cached) continue;
        rc = in_repo(db, r->is_manifest ? ST_REPO_MANIFEST_IN_REPO : ST_REPO_BLOB_IN_REPO, repo_id,
                     r->digest, err);
        if (rc == FP_STORE_NOT_FOUND && missing) snprintf(missing, FP_DIGEST_MAX, "%s", r->digest);
        if (rc != 0) return rc;
        /* a pushed manifest adopts its blobs: they are no longer cache */
        if (!r->is_manifest && fp_store_blob_adopt(db, r->digest, err) < 0) return -1;
    }
    int64_t now = (int64_t)time(NULL);
    sqlite3_stmt *st = fp_db_stmt(db, ST_MANIFEST_INSERT, err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, m->digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, m->media_type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)m->size);
    sqlite3_bind_blob(st, 4, m->body, (int)m->size, SQLITE_STATIC);
    if (m->subject) sqlite3_bind_text(st, 5, m->subject, -1, SQLITE_STATIC);
    if (m->artifact_type) sqlite3_bind_text(st, 6, m->artifact_type, -1, SQLITE_STATIC);
    if (m->annotations) sqlite3_bind_text(st, 7, m->annotations, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 8, now);
    sqlite3_bind_int(st, 9, m->cached);
    if (step_done(db, st, err, "store manifest") < 0) return -1;
    for (size_t i = 0; i < m->nrefs; i++) {
        if (m->refs[i].external) continue; /* never stored here: nothing for gc or fsck to follow */
        st = fp_db_stmt(db, ST_MANIFEST_REF_INSERT, err);
        if (!st) return -1;
        sqlite3_bind_text(st, 1, m->digest, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, m->refs[i].digest, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, m->refs[i].is_manifest);
        if (step_done(db, st, err, "store manifest reference") < 0) return -1;
    }
    st = fp_db_stmt(db, ST_REPO_MANIFEST_INSERT, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, repo_id);
    sqlite3_bind_text(st, 2, m->digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    if (step_done(db, st, err, "link manifest") < 0) return -1;
    for (size_t i = 0; i < m->ntags; i++) {
        st = fp_db_stmt(db, ST_TAG_SET, err);
        if (!st) return -1;
        sqlite3_bind_int64(st, 1, repo_id);
        sqlite3_bind_text(st, 2, m->tags[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, m->digest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, now);
        sqlite3_bind_int(st, 5, m->cached);
        if (step_done(db, st, err, "set tag") < 0) return -1;
    }
    return 0;
}

int fp_store_manifest_put(fp_store *s, const char *repo, const fp_manifest_put *m,
                          char missing[FP_DIGEST_MAX], fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    if (!db || fp_db_begin(db, err) < 0) return -1;
    int rc = put_locked(db, repo, m, missing, err);
    if (rc != 0) {
        fp_db_rollback(db);
        return rc;
    }
    return fp_db_commit(db, err);
}

int fp_store_manifest_put_parsed(fp_store *s, const char *repo, const struct fp_manifest *m,
                                 const char *digest, const void *body, size_t size,
                                 const char *const *tags, size_t ntags, bool cached,
                                 char missing[FP_DIGEST_MAX], fp_error *err)
{
    /* an image manifest references its config and layers, an index its
     * child manifests */
    size_t nrefs = m->nrefs + (m->is_index ? 0 : 1), k = 0;
    fp_manifest_ref *refs = calloc(nrefs + 1, sizeof *refs);
    if (!refs) return fp_error_set(err, ENOMEM, "manifest references");
    if (!m->is_index) refs[k++] = (fp_manifest_ref){.digest = m->config.digest};
    for (size_t i = 0; i < m->nrefs; i++)
        refs[k++] = (fp_manifest_ref){.digest = m->refs[i].digest,
                                      .is_manifest = m->is_index,
                                      .external = m->refs[i].has_urls};
    fp_manifest_put put = {
        .digest = digest,
        .media_type = m->media_type,
        .body = body,
        .size = size,
        .subject = m->has_subject ? m->subject : NULL,
        .artifact_type = m->artifact_type[0] ? m->artifact_type : NULL,
        .annotations = m->annotations,
        .refs = refs,
        .nrefs = k,
        .tags = tags,
        .ntags = ntags,
        .cached = cached,
    };
    int rc = fp_store_manifest_put(s, repo, &put, missing, err);
    free(refs);
    return rc;
}

int fp_store_manifest_get(fp_store *s, const char *repo, const char *ref, bool by_digest,
                          bool want_body, fp_manifest_row *out, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st =
        db ? fp_db_stmt(db, by_digest ? ST_MANIFEST_BY_DIGEST : ST_MANIFEST_BY_TAG, err) : NULL;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? FP_STORE_NOT_FOUND : fp_db_fail(db, err, "read manifest");
    }
    snprintf(out->digest, sizeof out->digest, "%s", (const char *)sqlite3_column_text(st, 0));
    snprintf(out->media_type, sizeof out->media_type, "%s",
             (const char *)sqlite3_column_text(st, 1));
    out->size = (size_t)sqlite3_column_bytes(st, 2);
    out->tag_updated = sqlite3_column_int64(st, 3);
    out->tag_cached = sqlite3_column_int(st, 4) != 0;
    out->last_used = sqlite3_column_int64(st, 5);
    out->body = NULL;
    if (want_body) {
        out->body = malloc(out->size ? out->size : 1);
        if (!out->body) {
            sqlite3_reset(st);
            return fp_error_set(err, ENOMEM, "manifest body");
        }
        if (out->size) memcpy(out->body, sqlite3_column_blob(st, 2), out->size);
    }
    sqlite3_reset(st);
    return 0;
}

int fp_store_manifest_delete(fp_store *s, const char *repo, const char *ref, bool by_digest,
                             fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    if (!db || fp_db_begin(db, err) < 0) return -1;
    int64_t repo_id;
    int rc = fp_store_repo_id(db, repo, false, &repo_id, err);
    if (rc != 0) goto out;
    sqlite3_stmt *st;
    if (by_digest) {
        st = fp_db_stmt(db, ST_REPO_MANIFEST_DELETE, err);
        if (!st) {
            rc = -1;
            goto out;
        }
        sqlite3_bind_int64(st, 1, repo_id);
        sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
        if ((rc = step_done(db, st, err, "delete manifest")) < 0) goto out;
        if (sqlite3_changes(db->db) == 0) {
            rc = FP_STORE_NOT_FOUND;
            goto out;
        }
        /* tags that pointed at it go with it */
        st = fp_db_stmt(db, ST_TAGS_DELETE_DIGEST, err);
    } else {
        st = fp_db_stmt(db, ST_TAG_DELETE, err);
    }
    if (!st) {
        rc = -1;
        goto out;
    }
    sqlite3_bind_int64(st, 1, repo_id);
    sqlite3_bind_text(st, 2, ref, -1, SQLITE_STATIC);
    if ((rc = step_done(db, st, err, "delete tag")) < 0) goto out;
    if (!by_digest && sqlite3_changes(db->db) == 0) {
        rc = FP_STORE_NOT_FOUND;
        goto out;
    }
    return fp_db_commit(db, err);
out:
    fp_db_rollback(db);
    return rc;
}

int fp_store_manifest_touch(fp_store *s, const char *repo, const char *digest, int64_t now,
                            fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st = db ? fp_db_stmt(db, ST_REPO_MANIFEST_TOUCH, err) : NULL;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now);
    return step_done(db, st, err, "touch manifest");
}

static int list_names(fp_db *db, sqlite3_stmt *st, fp_name_cb cb, void *ctx, fp_error *err)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb(ctx, (const char *)sqlite3_column_text(st, 0)) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fp_db_fail(db, err, "list");
}

int fp_store_tags(fp_store *s, const char *repo, const char *last, unsigned limit, fp_name_cb cb,
                  void *ctx, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st = db ? fp_db_stmt(db, ST_REPO_HAS_CONTENT, err) : NULL;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) return FP_STORE_NOT_FOUND;
    if (rc != SQLITE_ROW) return fp_db_fail(db, err, "look up repository");
    if (limit == 0) return 0;
    st = fp_db_stmt(db, ST_TAGS_LIST, err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, last ? last : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, limit);
    return list_names(db, st, cb, ctx, err);
}

int fp_store_catalog(fp_store *s, const char *last, unsigned limit, fp_name_cb cb, void *ctx,
                     fp_error *err)
{
    if (limit == 0) return 0;
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st = db ? fp_db_stmt(db, ST_CATALOG, err) : NULL;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, last ? last : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    return list_names(db, st, cb, ctx, err);
}

int fp_store_referrers(fp_store *s, const char *repo, const char *subject, fp_referrer_cb cb,
                       void *ctx, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st = db ? fp_db_stmt(db, ST_REFERRERS, err) : NULL;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fp_referrer r = {
            .digest = (const char *)sqlite3_column_text(st, 0),
            .media_type = (const char *)sqlite3_column_text(st, 1),
            .size = (uint64_t)sqlite3_column_int64(st, 2),
            .artifact_type = (const char *)sqlite3_column_text(st, 3),
            .annotations = (const char *)sqlite3_column_text(st, 4),
        };
        if (cb(ctx, &r) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fp_db_fail(db, err, "list referrers");
}

int fp_store_manifests_referencing(fp_store *s, const char *repo, const char *child, fp_name_cb cb,
                                   void *ctx, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    if (!db) return -1;
    /* rare (recalled blobs only): a statement of its own, not a cached one */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db->db,
                           "SELECT rm.digest FROM repos r JOIN repo_manifests rm ON rm.repo = r.id "
                           "JOIN manifest_refs mr ON mr.digest = rm.digest "
                           "WHERE r.name = ?1 AND mr.child = ?2",
                           -1, &st, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "find referencing manifests");
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, child, -1, SQLITE_STATIC);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (cb(ctx, (const char *)sqlite3_column_text(st, 0)) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fp_db_fail(db, err, "find referencing manifests");
}
