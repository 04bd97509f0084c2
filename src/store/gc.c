/* Online garbage collection (mark and sweep in one write transaction).
 *
 * Mark: per repository, keep every tagged manifest, every manifest younger
 * than the grace period, the child manifests of kept indexes, and the
 * referrers whose subject is kept; repeat until nothing changes. Sweep:
 * unlink the rest from their repositories, drop manifest rows no repository
 * links, drop blob links that no kept manifest references (unless younger
 * than the grace period, which protects blobs pushed before their manifest),
 * and move blobs no repository links to trash/. The transaction holds the
 * database's write lock, which blob commits and manifest PUTs also take, so
 * the registry keeps serving reads throughout and no write can slip between
 * the decision and the removal. Trash is emptied after the commit; a crash
 * before it is undone at the next open (fp_store_recover_trash). */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

static int exec_bind(fp_db *db, const char *sql, int64_t cutoff, uint64_t *changes, fp_error *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db->db, sql, -1, &st, NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "gc statement");
    if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, cutoff);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return fp_db_fail(db, err, "gc statement");
    if (changes) *changes = (uint64_t)sqlite3_changes(db->db);
    return 0;
}

static const char unkept_manifest[] =
    "NOT EXISTS (SELECT 1 FROM gc_keep k WHERE k.repo = repo_manifests.repo AND "
    "k.digest = repo_manifests.digest)";

static int mark(fp_db *db, int64_t cutoff, fp_error *err)
{
    if (exec_bind(db,
                  "CREATE TEMP TABLE IF NOT EXISTS gc_keep(repo INTEGER, digest TEXT, "
                  "PRIMARY KEY(repo, digest)) WITHOUT ROWID",
                  0, NULL, err) < 0 ||
        exec_bind(db, "DELETE FROM gc_keep", 0, NULL, err) < 0 ||
        exec_bind(db, "INSERT OR IGNORE INTO gc_keep SELECT repo, digest FROM tags", 0, NULL, err) <
            0 ||
        exec_bind(db,
                  "INSERT OR IGNORE INTO gc_keep SELECT repo, digest FROM repo_manifests "
                  "WHERE created > ?1",
                  cutoff, NULL, err) < 0)
        return -1;
    for (;;) {
        uint64_t a = 0, b = 0;
        if (exec_bind(db,
                      "INSERT OR IGNORE INTO gc_keep SELECT k.repo, r.child FROM gc_keep k "
                      "JOIN manifest_refs r ON r.digest = k.digest AND r.is_manifest = 1 "
                      "JOIN repo_manifests rm ON rm.repo = k.repo AND rm.digest = r.child",
                      0, &a, err) < 0 ||
            exec_bind(db,
                      "INSERT OR IGNORE INTO gc_keep SELECT rm.repo, rm.digest FROM gc_keep k "
                      "JOIN manifests m ON m.subject = k.digest JOIN repo_manifests rm ON "
                      "rm.digest = m.digest AND rm.repo = k.repo",
                      0, &b, err) < 0)
            return -1;
        if (a == 0 && b == 0) return 0;
    }
}

/* Remove blob files that have no row (a crash between rename and commit)
 * and are older than the cutoff. */
static void sweep_orphan_files(fp_store *s, fp_db *db, time_t cutoff, bool dry_run,
                               struct fp_gc_stats *st)
{
    const char *algs[] = {"sha256", "sha512"};
    for (int a = 0; a < 2; a++) {
        char dir[FP_PATH_MAX + 32];
        snprintf(dir, sizeof dir, "%s/blobs/%s", s->root, algs[a]);
        DIR *top = opendir(dir);
        if (!top) continue;
        struct dirent *pe;
        while ((pe = readdir(top))) {
            if (pe->d_name[0] == '.') continue;
            char sub[FP_PATH_MAX + 300];
            snprintf(sub, sizeof sub, "%s/%s", dir, pe->d_name);
            DIR *d = opendir(sub);
            if (!d) continue;
            struct dirent *e;
            while ((e = readdir(d))) {
                if (e->d_name[0] == '.') continue;
                char digest[FP_DIGEST_MAX + 8], path[FP_PATH_MAX + 600];
                snprintf(digest, sizeof digest, "%s:%s", algs[a], e->d_name);
                snprintf(path, sizeof path, "%s/%s", sub, e->d_name);
                struct stat sb;
                if (stat(path, &sb) < 0 || sb.st_mtime > cutoff) continue;
                fp_error err;
                sqlite3_stmt *q = fp_db_stmt(db, ST_BLOB_GET, &err);
                if (!q) continue;
                sqlite3_bind_text(q, 1, digest, -1, SQLITE_STATIC);
                int rc = sqlite3_step(q);
                sqlite3_reset(q);
                if (rc == SQLITE_DONE) {
                    st->orphan_files_removed++;
                    if (!dry_run) unlink(path);
                }
            }
            closedir(d);
        }
        closedir(top);
    }
}

int fp_store_gc(fp_store *s, unsigned grace_s, bool dry_run, struct fp_gc_stats *st, fp_error *err)
{
    memset(st, 0, sizeof *st);
    if (fp_store_recover_trash(s, err) < 0) return -1;
    fp_db *db = fp_db_get(s, err);
    if (!db) return -1;
    time_t now = time(NULL);
    int64_t cutoff = (int64_t)(now - (time_t)grace_s);
    if (fp_db_begin(db, err) < 0) return -1;
    char sql[512];
    if (mark(db, cutoff, err) < 0) goto fail;
    snprintf(sql, sizeof sql, "DELETE FROM repo_manifests WHERE %s", unkept_manifest);
    if (exec_bind(db, sql, 0, &st->manifests_removed, err) < 0 ||
        exec_bind(db,
                  "DELETE FROM manifests WHERE NOT EXISTS (SELECT 1 FROM repo_manifests rm "
                  "WHERE rm.digest = manifests.digest)",
                  0, NULL, err) < 0 ||
        exec_bind(db,
                  "DELETE FROM manifest_refs WHERE NOT EXISTS (SELECT 1 FROM manifests m "
                  "WHERE m.digest = manifest_refs.digest)",
                  0, NULL, err) < 0 ||
        exec_bind(db,
                  "DELETE FROM repo_blobs WHERE created <= ?1 AND NOT EXISTS (SELECT 1 FROM "
                  "repo_manifests rm JOIN manifest_refs r ON r.digest = rm.digest WHERE "
                  "rm.repo = repo_blobs.repo AND r.child = repo_blobs.digest)",
                  cutoff, &st->blob_links_removed, err) < 0)
        goto fail;

    /* Blobs no repository links any more: into trash/, then their rows. */
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db->db,
                           "SELECT digest, size FROM blobs WHERE NOT EXISTS (SELECT 1 FROM "
                           "repo_blobs rb WHERE rb.digest = blobs.digest)",
                           -1, &q, NULL) != SQLITE_OK) {
        fp_db_fail(db, err, "gc blobs");
        goto fail;
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *digest = (const char *)sqlite3_column_text(q, 0);
        st->blobs_removed++;
        st->bytes_freed += (uint64_t)sqlite3_column_int64(q, 1);
        if (dry_run || !fp_digest_valid(digest)) continue;
        char path[FP_PATH_MAX + 200], trash[FP_PATH_MAX + 200];
        fp_store_blob_path(s, digest, path, sizeof path);
        snprintf(trash, sizeof trash, "%s/trash/%s", s->root, digest);
        if (rename(path, trash) < 0 && errno != ENOENT)
            fp_warn("event=gc_trash_failed digest=%s errno=%d", digest, errno);
    }
    sqlite3_finalize(q);
    if (exec_bind(db,
                  "DELETE FROM blobs WHERE NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE "
                  "rb.digest = blobs.digest)",
                  0, NULL, err) < 0 ||
        exec_bind(db,
                  "DELETE FROM repos WHERE NOT EXISTS (SELECT 1 FROM repo_manifests rm WHERE "
                  "rm.repo = repos.id) AND NOT EXISTS (SELECT 1 FROM repo_blobs rb WHERE "
                  "rb.repo = repos.id) AND NOT EXISTS (SELECT 1 FROM tags t WHERE "
                  "t.repo = repos.id)",
                  0, NULL, err) < 0)
        goto fail;
    if (dry_run) {
        fp_db_rollback(db);
    } else {
        if (fp_db_commit(db, err) < 0) {
            fp_store_recover_trash(s, err);
            return -1;
        }
        /* Committed: what is in trash is no longer referenced anywhere. */
        fp_store_recover_trash(s, err);
    }
    st->uploads_purged = fp_upload_purge_expired(s, dry_run);
    /* Files without a row. Under the write lock: a blob commit renames its
     * file and inserts its row inside one write transaction, so while we
     * hold the lock a file without a row really is an orphan. */
    if (dry_run) {
        sweep_orphan_files(s, db, (time_t)cutoff, true, st);
    } else {
        if (fp_db_begin(db, err) < 0) return -1;
        sweep_orphan_files(s, db, (time_t)cutoff, false, st);
        if (fp_db_commit(db, err) < 0) return -1;
    }
    return 0;
fail:
    fp_db_rollback(db);
    fp_store_recover_trash(s, err);
    return -1;
}
