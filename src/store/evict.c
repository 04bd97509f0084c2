/* Cache eviction (store.h, fp_store_evict): least recently used pulled-
 * through images go until the cached content fits. Each image goes in one
 * write transaction that also chooses it, so nothing a concurrent push or
 * pull-through adds in between can be lost: the same lock serialises blob
 * commits, manifest PUTs, gc and this. Blob files go to trash/ inside the
 * transaction and are deleted after the commit (a crash before it puts
 * them back at the next open, as for gc). */
#include "store/store_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/name.h"

static const char usage_sql[] =
    "SELECT (SELECT COALESCE(SUM(size), 0) FROM blobs WHERE cached = 1) + "
    "(SELECT COALESCE(SUM(size), 0) FROM manifests WHERE lazy = 1)";

/* The least recently used image that may go: a lazy manifest of a
 * repository outside the protected namespace, with no tag a push set, that
 * no other manifest of the repository references (an index's children go
 * with their index), unused since the cutoff, neither pinned (?4, a JSON
 * array of digests) nor an index of a pinned manifest (its children would
 * go with it). */
static const char pick_sql[] =
    "SELECT rm.repo, rm.digest, r.name, rm.last_used FROM repo_manifests rm "
    "JOIN manifests m ON m.digest = rm.digest JOIN repos r ON r.id = rm.repo "
    "WHERE m.lazy = 1 AND rm.last_used <= ?1 "
    "AND (?3 = 0 OR substr(r.name, 1, ?3) != ?2) "
    "AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo = rm.repo AND t.digest = rm.digest "
    "  AND t.cached = 0) "
    "AND NOT EXISTS (SELECT 1 FROM repo_manifests p JOIN manifest_refs mr ON mr.digest = p.digest "
    "  WHERE p.repo = rm.repo AND mr.child = rm.digest) "
    "AND rm.digest NOT IN (SELECT value FROM json_each(?4)) "
    "AND NOT EXISTS (SELECT 1 FROM manifest_refs pr WHERE pr.digest = rm.digest "
    "  AND pr.is_manifest = 1 AND pr.child IN (SELECT value FROM json_each(?4))) "
    "ORDER BY rm.last_used, rm.repo, rm.digest LIMIT 1";

/* Statements of one eviction; ?1 is the repository's id. The image's
 * manifests are collected in evict_m (its children join while nothing
 * else in the repository needs them), its blobs in evict_b. */
static const char *const evict_steps[] = {
    "CREATE TEMP TABLE IF NOT EXISTS evict_m(digest TEXT PRIMARY KEY) WITHOUT ROWID",
    "CREATE TEMP TABLE IF NOT EXISTS evict_b(digest TEXT PRIMARY KEY) WITHOUT ROWID",
    "DELETE FROM evict_m",
    "DELETE FROM evict_b",
};

static int exec_repo(fp_db *db, const char *sql, int64_t repo, const char *digest,
                     uint64_t *changes, fp_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "evict statement");
    int np = sqlite3_bind_parameter_count(st);
    if (np >= 1) sqlite3_bind_int64(st, 1, repo);
    if (np >= 2) sqlite3_bind_text(st, 2, digest, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return fp_db_fail(db, err, "evict statement");
    if (changes) *changes = (uint64_t)sqlite3_changes(db->db);
    return 0;
}

static int query_u64(fp_db *db, const char *sql, uint64_t *out, fp_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "cache usage");
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fp_db_fail(db, err, "cache usage");
}

int fp_store_cache_usage(fp_store *s, uint64_t *bytes, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    return db ? query_u64(db, usage_sql, bytes, err) : -1;
}

struct victim {
    int64_t repo;
    char digest[FP_DIGEST_MAX];
    char name[FP_NAME_MAX + 1];
    int64_t last_used;
};

/* 0 and *found: the image to evict. */
static int pick(fp_db *db, const struct fp_evict_opts *o, struct victim *v, bool *found,
                fp_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, pick_sql, -1, &st, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "choose image to evict");
    const char *protect = o->protect ? o->protect : "";
    sqlite3_bind_int64(st, 1, o->now - (int64_t)o->min_idle_s);
    sqlite3_bind_text(st, 2, protect, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)strlen(protect));
    sqlite3_bind_text(st, 4, o->pinned ? o->pinned : "[]", -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        v->repo = sqlite3_column_int64(st, 0);
        snprintf(v->digest, sizeof v->digest, "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(v->name, sizeof v->name, "%s", (const char *)sqlite3_column_text(st, 2));
        v->last_used = sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : fp_db_fail(db, err, "choose image to evict");
}

/* Cached blobs of the image nothing links or references any more: into
 * trash/ (emptied after the commit), then their rows. */
#define GONE_BLOBS                                                                                 \
    "FROM blobs WHERE cached = 1 AND digest IN (SELECT digest FROM evict_b) AND NOT EXISTS "       \
    "(SELECT 1 FROM repo_blobs rb WHERE rb.digest = blobs.digest) AND NOT EXISTS (SELECT 1 "       \
    "FROM manifest_refs mr JOIN repo_manifests p ON p.digest = mr.digest WHERE mr.child = "        \
    "blobs.digest)"

static int drop_blobs(fp_store *s, fp_db *db, struct fp_evict_stats *st, fp_error *err)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db->db, "SELECT digest, size " GONE_BLOBS, -1, &q, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "evict blobs");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *digest = (const char *)sqlite3_column_text(q, 0);
        st->blobs_removed++;
        st->bytes_freed += (uint64_t)sqlite3_column_int64(q, 1);
        if (!fp_digest_valid(digest)) continue;
        char path[FP_PATH_MAX + 200], trash[FP_PATH_MAX + 200];
        fp_store_blob_path(s, digest, path, sizeof path);
        snprintf(trash, sizeof trash, "%s/trash/%s", s->root, digest);
        if (rename(path, trash) < 0 && errno != ENOENT)
            fp_warn("event=evict_trash_failed digest=%s errno=%d", digest, errno);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return fp_db_fail(db, err, "evict blobs");
    return exec_repo(db, "DELETE " GONE_BLOBS, 0, NULL, NULL, err);
}

/* Evict v inside the open transaction. */
static int evict_image(fp_store *s, fp_db *db, const struct victim *v, struct fp_evict_stats *st,
                       fp_error *err)
{
    for (size_t i = 0; i < sizeof evict_steps / sizeof evict_steps[0]; i++)
        if (exec_repo(db, evict_steps[i], 0, NULL, NULL, err) < 0) return -1;
    uint64_t n = 0, removed = 0;
    if (exec_repo(db, "INSERT INTO evict_m VALUES (?2)", v->repo, v->digest, NULL, err) < 0 ||
        exec_repo(db, "DELETE FROM tags WHERE repo = ?1 AND digest = ?2", v->repo, v->digest, NULL,
                  err) < 0 ||
        exec_repo(db, "DELETE FROM repo_manifests WHERE repo = ?1 AND digest = ?2", v->repo,
                  v->digest, NULL, err) < 0)
        return -1;
    /* an index's children, level by level, while nothing else needs them */
    do {
        if (exec_repo(db,
                      "INSERT OR IGNORE INTO evict_m SELECT DISTINCT rm.digest FROM repo_manifests "
                      "rm JOIN manifest_refs mr ON mr.child = rm.digest AND mr.is_manifest = 1 "
                      "JOIN evict_m e ON e.digest = mr.digest JOIN manifests m ON m.digest = "
                      "rm.digest WHERE rm.repo = ?1 AND m.lazy = 1 AND NOT EXISTS (SELECT 1 FROM "
                      "tags t WHERE t.repo = ?1 AND t.digest = rm.digest) AND NOT EXISTS (SELECT 1 "
                      "FROM repo_manifests p JOIN manifest_refs r2 ON r2.digest = p.digest WHERE "
                      "p.repo = ?1 AND r2.child = rm.digest)",
                      v->repo, NULL, &n, err) < 0 ||
            exec_repo(db,
                      "DELETE FROM repo_manifests WHERE repo = ?1 AND digest IN (SELECT digest "
                      "FROM evict_m)",
                      v->repo, NULL, NULL, err) < 0)
            return -1;
    } while (n > 0);
    /* the repository's links to the image's cached blobs that no remaining
     * manifest of it references (a blob a push adopted keeps its link) */
    if (exec_repo(db,
                  "INSERT OR IGNORE INTO evict_b SELECT mr.child FROM manifest_refs mr JOIN "
                  "evict_m e ON e.digest = mr.digest WHERE mr.is_manifest = 0",
                  0, NULL, NULL, err) < 0 ||
        exec_repo(db,
                  "DELETE FROM repo_blobs WHERE repo = ?1 AND digest IN (SELECT e.digest FROM "
                  "evict_b e JOIN blobs b ON b.digest = e.digest WHERE b.cached = 1) AND NOT "
                  "EXISTS (SELECT 1 FROM repo_manifests p JOIN manifest_refs r2 ON r2.digest = "
                  "p.digest WHERE p.repo = ?1 AND r2.child = repo_blobs.digest)",
                  v->repo, NULL, NULL, err) < 0)
        return -1;
    /* manifest rows no repository links any more */
    uint64_t mbytes = 0;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db->db,
                           "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM manifests WHERE digest IN "
                           "(SELECT digest FROM evict_m) AND NOT EXISTS (SELECT 1 FROM "
                           "repo_manifests p WHERE p.digest = manifests.digest)",
                           -1, &q, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "evict manifests");
    if (sqlite3_step(q) == SQLITE_ROW) {
        removed = (uint64_t)sqlite3_column_int64(q, 0);
        mbytes = (uint64_t)sqlite3_column_int64(q, 1);
    }
    sqlite3_finalize(q);
    if (exec_repo(db,
                  "DELETE FROM manifest_refs WHERE digest IN (SELECT digest FROM evict_m) AND NOT "
                  "EXISTS (SELECT 1 FROM repo_manifests p WHERE p.digest = manifest_refs.digest)",
                  0, NULL, NULL, err) < 0 ||
        exec_repo(db,
                  "DELETE FROM manifests WHERE digest IN (SELECT digest FROM evict_m) AND NOT "
                  "EXISTS (SELECT 1 FROM repo_manifests p WHERE p.digest = manifests.digest)",
                  0, NULL, NULL, err) < 0)
        return -1;
    st->manifests_removed += removed;
    st->bytes_freed += mbytes;
    if (drop_blobs(s, db, st, err) < 0) return -1;
    /* an emptied repository goes too (as gc does) */
    return exec_repo(db,
                     "DELETE FROM repos WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM "
                     "repo_manifests rm WHERE rm.repo = ?1) AND NOT EXISTS (SELECT 1 FROM "
                     "repo_blobs rb WHERE rb.repo = ?1) AND NOT EXISTS (SELECT 1 FROM tags t "
                     "WHERE t.repo = ?1)",
                     v->repo, NULL, NULL, err);
}

/* Cached blobs no image here needs: links (outside the protected
 * namespace, older than orphan_idle_s) to cached blobs that no manifest of
 * their repository references. A blob fetched by digest alone, or one that
 * arrived after its image was evicted. ?1 cutoff, ?2/?3 the protected
 * prefix and its length. */
#define ORPHAN_LINKS                                                                               \
    "FROM repo_blobs AS rb WHERE rb.created <= ?1 AND EXISTS (SELECT 1 FROM blobs b WHERE "        \
    "b.digest = rb.digest AND b.cached = 1) AND (?3 = 0 OR substr((SELECT r.name FROM repos r "    \
    "WHERE r.id = rb.repo), 1, ?3) != ?2) AND NOT EXISTS (SELECT 1 FROM repo_manifests p JOIN "    \
    "manifest_refs mr ON mr.digest = p.digest WHERE p.repo = rb.repo AND mr.child = rb.digest)"

static int exec_orphans(fp_db *db, const char *sql, const struct fp_evict_opts *o,
                        uint64_t *changes, fp_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "evict unneeded blobs");
    const char *protect = o->protect ? o->protect : "";
    sqlite3_bind_int64(st, 1, o->now - (int64_t)o->orphan_idle_s);
    sqlite3_bind_text(st, 2, protect, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)strlen(protect));
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return fp_db_fail(db, err, "evict unneeded blobs");
    if (changes) *changes = (uint64_t)sqlite3_changes(db->db);
    return 0;
}

/* Unneeded cached blobs go first, all at once: no image loses anything. */
static int evict_orphans(fp_store *s, fp_db *db, const struct fp_evict_opts *o,
                         struct fp_evict_stats *st, fp_error *err)
{
    uint64_t links = 0, before = st->blobs_removed;
    if (fp_db_begin(db, err) < 0) return -1;
    for (size_t i = 0; i < sizeof evict_steps / sizeof evict_steps[0]; i++)
        if (exec_repo(db, evict_steps[i], 0, NULL, NULL, err) < 0) goto fail;
    if (exec_orphans(db, "INSERT OR IGNORE INTO evict_b SELECT rb.digest " ORPHAN_LINKS, o, NULL,
                     err) < 0 ||
        exec_orphans(db, "DELETE " ORPHAN_LINKS, o, &links, err) < 0 ||
        drop_blobs(s, db, st, err) < 0)
        goto fail;
    if (fp_db_commit(db, err) < 0) {
        fp_store_recover_trash(s, err);
        return -1;
    }
    fp_store_recover_trash(s, err);
    if (links)
        fp_info("event=evicted_unneeded links=%llu blobs=%llu", (unsigned long long)links,
                (unsigned long long)(st->blobs_removed - before));
    return 0;
fail:
    fp_db_rollback(db);
    fp_store_recover_trash(s, err);
    return -1;
}

int fp_store_evict(fp_store *s, const struct fp_evict_opts *o, struct fp_evict_stats *st,
                   fp_error *err)
{
    memset(st, 0, sizeof *st);
    fp_db *db = fp_db_get(s, err);
    if (!db) return -1;
    if (query_u64(db, usage_sql, &st->cache_bytes, err) < 0) return -1;
    uint64_t usage = st->cache_bytes;
    if (usage > o->max_bytes && o->orphan_idle_s) {
        if (evict_orphans(s, db, o, st, err) < 0 || query_u64(db, usage_sql, &usage, err) < 0)
            return -1;
    }
    while (usage > o->max_bytes && (!o->max_images || st->images_evicted < o->max_images)) {
        if (fp_db_begin(db, err) < 0) return -1;
        struct victim v;
        bool found = false;
        uint64_t before = st->bytes_freed;
        /* chosen under the write lock: what is evicted is what was chosen */
        if (query_u64(db, usage_sql, &usage, err) < 0 || pick(db, o, &v, &found, err) < 0 ||
            (found && usage > o->max_bytes && evict_image(s, db, &v, st, err) < 0)) {
            fp_db_rollback(db);
            fp_store_recover_trash(s, err);
            return -1;
        }
        if (!found || usage <= o->max_bytes) {
            fp_db_rollback(db);
            if (!found)
                fp_debug("event=cache_full bytes=%llu max=%llu reason=\"nothing evictable\"",
                         (unsigned long long)usage, (unsigned long long)o->max_bytes);
            break;
        }
        if (fp_db_commit(db, err) < 0) {
            fp_store_recover_trash(s, err);
            return -1;
        }
        /* committed: what is in trash is no longer recorded anywhere */
        fp_store_recover_trash(s, err);
        st->images_evicted++;
        uint64_t freed = st->bytes_freed - before;
        fp_info("event=evicted repo=%s digest=%s bytes=%llu idle_s=%lld cache=%llu max=%llu",
                v.name, v.digest, (unsigned long long)freed, (long long)(o->now - v.last_used),
                (unsigned long long)(usage > freed ? usage - freed : 0),
                (unsigned long long)o->max_bytes);
        usage = usage > freed ? usage - freed : 0;
    }
    return 0;
}
