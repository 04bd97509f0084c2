/* Blobs: content-addressed files under blobs/<alg>/<2 hex>/<hex>, recorded
 * in the blobs table and linked into repositories through repo_blobs. */
#include "store/store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"

static int step_size(fp_db *db, sqlite3_stmt *st, uint64_t *size, fp_error *err)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (size) *size = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? FP_STORE_NOT_FOUND : fp_db_fail(db, err, "query blob");
}

int fp_store_blob_exists(fp_store *s, const char *digest, uint64_t *size, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st = db ? fp_db_stmt(db, ST_BLOB_GET, err) : NULL;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    return step_size(db, st, size, err);
}

int fp_store_blob_stat(fp_store *s, const char *repo, const char *digest, uint64_t *size,
                       fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st = db ? fp_db_stmt(db, ST_REPO_BLOB_GET, err) : NULL;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
    return step_size(db, st, size, err);
}

int fp_store_blob_open(fp_store *s, const char *repo, const char *digest, int *fd, uint64_t *size,
                       fp_error *err)
{
    int rc = fp_store_blob_stat(s, repo, digest, size, err);
    if (rc != 0) return rc;
    char path[FP_PATH_MAX + 200];
    if (fp_store_blob_path(s, digest, path, sizeof path) < 0)
        return fp_error_set(err, EINVAL, "blob path for %s", digest);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0) {
        /* Recorded but gone: collected by a concurrent gc, or damaged store. */
        if (errno == ENOENT) return FP_STORE_NOT_FOUND;
        return fp_error_set(err, errno, "open blob %s", digest);
    }
    *fd = f;
    return 0;
}

/* Insert-or-refresh the repo link inside an open transaction. */
static int link_blob(fp_db *db, int64_t repo_id, const char *digest, fp_error *err)
{
    sqlite3_stmt *st = fp_db_stmt(db, ST_REPO_BLOB_INSERT, err);
    if (!st) return -1;
    sqlite3_bind_int64(st, 1, repo_id);
    sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fp_db_fail(db, err, "link blob");
}

int fp_store_blob_mount(fp_store *s, const char *repo, const char *digest, const char *from,
                        fp_error *err)
{
    uint64_t size;
    int rc = from ? fp_store_blob_stat(s, from, digest, &size, err)
                  : fp_store_blob_exists(s, digest, &size, err);
    if (rc != 0) return rc;
    fp_db *db = fp_db_get(s, err);
    if (!db || fp_db_begin(db, err) < 0) return -1;
    /* Re-check inside the transaction: gc may have removed it meanwhile. */
    sqlite3_stmt *st = fp_db_stmt(db, ST_BLOB_GET, err);
    if (!st) goto fail;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    rc = step_size(db, st, &size, err);
    if (rc != 0) {
        fp_db_rollback(db);
        return rc;
    }
    /* a push that mounts a blob adopts it: no longer cache to evict */
    int64_t repo_id;
    if (fp_store_repo_id(db, repo, true, &repo_id, err) < 0 ||
        link_blob(db, repo_id, digest, err) < 0 || fp_store_blob_adopt(db, digest, err) < 0)
        goto fail;
    return fp_db_commit(db, err);
fail:
    fp_db_rollback(db);
    return -1;
}

int fp_store_blob_adopt(fp_db *db, const char *digest, fp_error *err)
{
    sqlite3_stmt *st = fp_db_stmt(db, ST_BLOB_ADOPT, err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fp_db_fail(db, err, "adopt blob");
}

int fp_store_blob_link_referenced(fp_store *s, const char *repo, const char *digest, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    if (!db || fp_db_begin(db, err) < 0) return -1;
    int64_t repo_id;
    int rc = fp_store_repo_id(db, repo, false, &repo_id, err);
    if (rc != 0) goto out;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db->db,
                           "SELECT 1 FROM blobs b WHERE b.digest = ?2 AND EXISTS (SELECT 1 FROM "
                           "repo_manifests rm JOIN manifest_refs r ON r.digest = rm.digest WHERE "
                           "rm.repo = ?1 AND r.child = ?2)",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = fp_db_fail(db, err, "find referenced blob");
        goto out;
    }
    sqlite3_bind_int64(q, 1, repo_id);
    sqlite3_bind_text(q, 2, digest, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    sqlite3_finalize(q);
    if (step != SQLITE_ROW) {
        rc = step == SQLITE_DONE ? FP_STORE_NOT_FOUND : fp_db_fail(db, err, "find referenced blob");
        goto out;
    }
    if (link_blob(db, repo_id, digest, err) < 0) {
        rc = -1;
        goto out;
    }
    return fp_db_commit(db, err);
out:
    fp_db_rollback(db);
    return rc;
}

int fp_store_blob_delete(fp_store *s, const char *repo, const char *digest, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    if (!db || fp_db_begin(db, err) < 0) return -1;
    int64_t repo_id;
    int rc = fp_store_repo_id(db, repo, false, &repo_id, err);
    if (rc != 0) {
        fp_db_rollback(db);
        return rc;
    }
    sqlite3_stmt *st = fp_db_stmt(db, ST_REPO_BLOB_DELETE, err);
    if (!st) goto fail;
    sqlite3_bind_int64(st, 1, repo_id);
    sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        fp_db_fail(db, err, "unlink blob");
        sqlite3_reset(st);
        goto fail;
    }
    sqlite3_reset(st);
    if (sqlite3_changes(db->db) == 0) {
        fp_db_rollback(db);
        return FP_STORE_NOT_FOUND;
    }
    return fp_db_commit(db, err);
fail:
    fp_db_rollback(db);
    return -1;
}

int fp_store_blob_commit(struct fp_store *s, const char *repo, const char *tmp_path,
                         const char *digest, uint64_t size, const char *upload_id, bool cached,
                         fp_error *err)
{
    char path[FP_PATH_MAX + 200];
    if (fp_store_blob_path(s, digest, path, sizeof path) < 0)
        return fp_error_set(err, EINVAL, "blob path for %s", digest);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int rc = fp_mkdir_p(path, 0750, err);
    *slash = '/';
    if (rc < 0) return -1;

    fp_db *db = fp_db_get(s, err);
    if (!db || fp_db_begin(db, err) < 0) return -1;
    /* Rename inside the write transaction so gc (which holds the same lock
     * while it moves files to trash) can never interleave with us. Renaming
     * over an existing copy is harmless: both were verified. */
    if (rename(tmp_path, path) < 0) {
        fp_error_set(err, errno, "rename blob into place");
        goto fail;
    }
    if (fp_fsync_parent(path, err) < 0) goto fail;
    sqlite3_stmt *st = fp_db_stmt(db, ST_BLOB_INSERT, err);
    if (!st) goto fail;
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)size);
    sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
    sqlite3_bind_int(st, 4, cached);
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        fp_db_fail(db, err, "record blob");
        goto fail;
    }
    int64_t repo_id;
    if (fp_store_repo_id(db, repo, true, &repo_id, err) < 0 ||
        link_blob(db, repo_id, digest, err) < 0)
        goto fail;
    if (upload_id) {
        st = fp_db_stmt(db, ST_UPLOAD_DELETE, err);
        if (!st) goto fail;
        sqlite3_bind_text(st, 1, upload_id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            fp_db_fail(db, err, "end upload");
            goto fail;
        }
    }
    return fp_db_commit(db, err);
fail:
    fp_db_rollback(db);
    return -1;
}
