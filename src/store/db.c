#include "store/db.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BLOB_GET] = "SELECT size FROM blobs WHERE digest = ?1",
    [ST_BLOB_INSERT] = "INSERT INTO blobs(digest, size, created, cached) VALUES (?1, ?2, ?3, ?4) "
                       "ON CONFLICT(digest) DO UPDATE SET cached = MIN(cached, excluded.cached)",
    [ST_BLOB_ADOPT] = "UPDATE blobs SET cached = 0 WHERE digest = ?1 AND cached = 1",
    [ST_REPO_GET] = "SELECT id FROM repos WHERE name = ?1",
    [ST_REPO_INSERT] = "INSERT INTO repos(name, created) VALUES (?1, ?2)",
    [ST_REPO_BLOB_GET] =
        "SELECT b.size FROM repos r JOIN repo_blobs rb ON rb.repo = r.id "
        "JOIN blobs b ON b.digest = rb.digest WHERE r.name = ?1 AND rb.digest = ?2",
    [ST_REPO_BLOB_INSERT] = "INSERT INTO repo_blobs(repo, digest, created) VALUES (?1, ?2, ?3) "
                            "ON CONFLICT(repo, digest) DO UPDATE SET created = excluded.created",
    [ST_REPO_BLOB_DELETE] = "DELETE FROM repo_blobs WHERE repo = ?1 AND digest = ?2",
    [ST_REPO_BLOB_IN_REPO] = "SELECT 1 FROM repo_blobs WHERE repo = ?1 AND digest = ?2",
    [ST_UPLOAD_INSERT] = "INSERT INTO uploads(id, repo, created) VALUES (?1, ?2, ?3)",
    [ST_UPLOAD_GET] = "SELECT repo, created FROM uploads WHERE id = ?1",
    [ST_UPLOAD_DELETE] = "DELETE FROM uploads WHERE id = ?1",
    [ST_MANIFEST_INSERT] =
        "INSERT INTO manifests(digest, media_type, size, body, subject, artifact_type, "
        "annotations, created, lazy) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT(digest) DO UPDATE SET lazy = MIN(lazy, excluded.lazy)",
    [ST_MANIFEST_REF_INSERT] =
        "INSERT OR IGNORE INTO manifest_refs(digest, child, is_manifest) VALUES (?1, ?2, ?3)",
    [ST_REPO_MANIFEST_INSERT] =
        "INSERT INTO repo_manifests(repo, digest, created, last_used) VALUES (?1, ?2, ?3, ?3) "
        "ON CONFLICT(repo, digest) DO UPDATE SET created = excluded.created, "
        "last_used = excluded.last_used",
    [ST_REPO_MANIFEST_TOUCH] =
        "UPDATE repo_manifests SET last_used = ?3 WHERE repo = (SELECT id FROM repos WHERE "
        "name = ?1) AND digest = ?2 AND last_used < ?3",
    [ST_REPO_MANIFEST_IN_REPO] = "SELECT 1 FROM repo_manifests WHERE repo = ?1 AND digest = ?2",
    [ST_REPO_MANIFEST_DELETE] = "DELETE FROM repo_manifests WHERE repo = ?1 AND digest = ?2",
    [ST_TAG_SET] = "INSERT INTO tags(repo, name, digest, updated, cached) VALUES (?1, ?2, ?3, ?4, "
                   "?5) ON CONFLICT(repo, name) DO UPDATE SET digest = excluded.digest, "
                   "updated = excluded.updated, cached = excluded.cached",
    [ST_TAG_DELETE] = "DELETE FROM tags WHERE repo = ?1 AND name = ?2",
    [ST_TAGS_DELETE_DIGEST] = "DELETE FROM tags WHERE repo = ?1 AND digest = ?2",
    [ST_MANIFEST_BY_TAG] =
        "SELECT m.digest, m.media_type, m.body, t.updated, t.cached, COALESCE(rm.last_used, 0) "
        "FROM repos r JOIN tags t ON t.repo = r.id JOIN manifests m ON m.digest = t.digest "
        "LEFT JOIN repo_manifests rm ON rm.repo = t.repo AND rm.digest = t.digest "
        "WHERE r.name = ?1 AND t.name = ?2",
    [ST_MANIFEST_BY_DIGEST] =
        "SELECT m.digest, m.media_type, m.body, 0, 0, rm.last_used FROM repos r JOIN "
        "repo_manifests rm ON rm.repo = r.id JOIN manifests m ON m.digest = rm.digest WHERE "
        "r.name = ?1 AND rm.digest = ?2",
    [ST_TAGS_LIST] = "SELECT t.name FROM repos r JOIN tags t ON t.repo = r.id WHERE r.name = ?1 "
                     "AND t.name > ?2 ORDER BY t.name LIMIT ?3",
    [ST_REPO_HAS_CONTENT] =
        "SELECT 1 FROM repos r WHERE r.name = ?1 AND (EXISTS (SELECT 1 FROM repo_manifests rm "
        "WHERE rm.repo = r.id) OR EXISTS (SELECT 1 FROM tags t WHERE t.repo = r.id))",
    [ST_CATALOG] = "SELECT r.name FROM repos r WHERE r.name > ?1 AND EXISTS (SELECT 1 FROM "
                   "repo_manifests rm WHERE rm.repo = r.id) ORDER BY r.name LIMIT ?2",
    [ST_REFERRERS] =
        "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM repos r "
        "JOIN repo_manifests rm ON rm.repo = r.id JOIN manifests m ON m.digest = rm.digest "
        "WHERE r.name = ?1 AND m.subject = ?2 ORDER BY m.digest",
};

/* Schema version 3 (1 plus manifests.lazy and tags.cached in 2, plus
 * blobs.cached and repo_manifests.last_used in 3, see fp_db_migrate).
 * Manifests and blobs are global and content-addressed; repo_blobs /
 * repo_manifests say which repository may see which (as Distribution's
 * linked blob store does), so bytes are stored once. Pulled-through
 * content is marked (manifests.lazy, tags.cached, blobs.cached) until a
 * push adopts it: that is what cache eviction may remove (evict.c). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS blobs(digest TEXT PRIMARY KEY, size INTEGER NOT NULL, "
    "  created INTEGER NOT NULL, cached INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS repos(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, "
    "  created INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS repo_blobs(repo INTEGER NOT NULL, digest TEXT NOT NULL, "
    "  created INTEGER NOT NULL, PRIMARY KEY(repo, digest)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS repo_blobs_digest ON repo_blobs(digest);"
    "CREATE TABLE IF NOT EXISTS manifests(digest TEXT PRIMARY KEY, media_type TEXT NOT NULL, "
    "  size INTEGER NOT NULL, body BLOB NOT NULL, subject TEXT, artifact_type TEXT, "
    "  annotations TEXT, created INTEGER NOT NULL, lazy INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS manifests_subject ON manifests(subject) WHERE subject IS NOT NULL;"
    "CREATE TABLE IF NOT EXISTS manifest_refs(digest TEXT NOT NULL, child TEXT NOT NULL, "
    "  is_manifest INTEGER NOT NULL, PRIMARY KEY(digest, child)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS manifest_refs_child ON manifest_refs(child);"
    "CREATE TABLE IF NOT EXISTS repo_manifests(repo INTEGER NOT NULL, digest TEXT NOT NULL, "
    "  created INTEGER NOT NULL, last_used INTEGER NOT NULL DEFAULT 0, "
    "  PRIMARY KEY(repo, digest)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS repo_manifests_digest ON repo_manifests(digest);"
    "CREATE TABLE IF NOT EXISTS tags(repo INTEGER NOT NULL, name TEXT NOT NULL, "
    "  digest TEXT NOT NULL, updated INTEGER NOT NULL, cached INTEGER NOT NULL DEFAULT 0, "
    "  PRIMARY KEY(repo, name)) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS tags_digest ON tags(digest);"
    "CREATE TABLE IF NOT EXISTS uploads(id TEXT PRIMARY KEY, repo TEXT NOT NULL, "
    "  created INTEGER NOT NULL) WITHOUT ROWID;"
    "";

int fp_db_open(const char *path, sqlite3 **out, fp_error *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        fp_error_set(err, 0, "open database %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 10000);
    /* WAL + synchronous=FULL: a commit is durable once COMMIT returns, and a
     * crash (kill -9 or power loss) rolls back to the last commit. */
    const char *setup = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
                        "PRAGMA foreign_keys=OFF; PRAGMA cache_size=-256; "
                        "PRAGMA temp_store=MEMORY;";
    char *msg = NULL;
    if (sqlite3_exec(db, setup, NULL, NULL, &msg) != SQLITE_OK) {
        fp_error_set(err, 0, "configure database %s: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(db);
        return -1;
    }
    *out = db;
    return 0;
}

int fp_db_fail(fp_db *db, fp_error *err, const char *what)
{
    int code = sqlite3_errcode(db->db);
    return fp_error_set(err, code == SQLITE_FULL ? ENOSPC : (code == SQLITE_BUSY ? EBUSY : EIO),
                        "%s: %s", what, sqlite3_errmsg(db->db));
}

void fp_db_free(fp_db *c)
{
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    sqlite3_close(c->db);
    free(c);
}

/* Thread-exit destructor: drop this thread's connection. */
void fp_db_thread_exit(void *arg)
{
    fp_db *c = arg;
    fp_store_forget_conn(c->owner, c);
    fp_db_free(c);
}

fp_db *fp_db_get(struct fp_store *store, fp_error *err)
{
    fp_db *c = pthread_getspecific(store->conn_key);
    if (c) return c;
    c = calloc(1, sizeof *c);
    if (!c) {
        fp_error_set(err, ENOMEM, "database connection");
        return NULL;
    }
    if (fp_db_open(store->db_path, &c->db, err) < 0) {
        free(c);
        return NULL;
    }
    c->owner = store;
    fp_store_remember_conn(store, c);
    pthread_setspecific(store->conn_key, c);
    return c;
}

sqlite3_stmt *fp_db_stmt(fp_db *db, enum fp_stmt id, fp_error *err)
{
    sqlite3_stmt *st = db->stmts[id];
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return st;
    }
    if (sqlite3_prepare_v3(db->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
        SQLITE_OK) {
        fp_db_fail(db, err, "prepare statement");
        return NULL;
    }
    db->stmts[id] = st;
    return st;
}

int fp_db_exec(fp_db *db, const char *sql, fp_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int code = sqlite3_errcode(db->db);
        fp_error_set(err, code == SQLITE_FULL ? ENOSPC : EIO, "database: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int fp_db_begin(fp_db *db, fp_error *err)
{
    return fp_db_exec(db, "BEGIN IMMEDIATE", err);
}

int fp_db_commit(fp_db *db, fp_error *err)
{
    if (fp_db_exec(db, "COMMIT", err) < 0) {
        fp_db_rollback(db);
        return -1;
    }
    return 0;
}

void fp_db_rollback(fp_db *db)
{
    if (!sqlite3_get_autocommit(db->db)) sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
}

const char *fp_db_schema_sql(void)
{
    return schema_sql;
}

static int user_version(fp_db *db, int *v, fp_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "read schema version");
    int rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fp_db_fail(db, err, "read schema version");
}

/* Older stores lack columns: version 1 the pull-through ones, version 2
 * the cache's (blobs already stored count as pushed: nothing is evicted
 * that was not known to be pulled through; an image was last used when it
 * was stored). Added once, under the write lock (another process may be
 * opening the same store). */
int fp_db_migrate(fp_db *db, fp_error *err)
{
    int v;
    if (fp_db_begin(db, err) < 0 || user_version(db, &v, err) < 0) goto fail;
    if (v == 1 && (fp_db_exec(db,
                              "ALTER TABLE manifests ADD COLUMN lazy INTEGER NOT NULL DEFAULT 0;"
                              "ALTER TABLE tags ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;",
                              err) < 0))
        goto fail;
    if ((v == 1 || v == 2) &&
        fp_db_exec(db,
                   "ALTER TABLE blobs ADD COLUMN cached INTEGER NOT NULL DEFAULT 0;"
                   "ALTER TABLE repo_manifests ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;"
                   "UPDATE repo_manifests SET last_used = created;",
                   err) < 0)
        goto fail;
    if (v < FP_DB_SCHEMA_VERSION && fp_db_exec(db, "PRAGMA user_version = 3", err) < 0) goto fail;
    if (v > FP_DB_SCHEMA_VERSION) {
        fp_error_set(err, 0, "store schema version %d is newer than this fogport's (%d)", v,
                     FP_DB_SCHEMA_VERSION);
        goto fail;
    }
    return fp_db_commit(db, err);
fail:
    fp_db_rollback(db);
    return -1;
}
