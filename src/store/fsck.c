/* fsck: re-hash every stored blob and manifest against its digest and check
 * that every recorded reference resolves. Reads only; safe while serving. */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void problem(fp_fsck_cb cb, void *ctx, struct fp_fsck_stats *st, const char *kind,
                    const char *digest, const char *detail)
{
    st->problems++;
    if (cb) cb(ctx, kind, digest, detail);
}

static int check_blob(fp_store *s, const char *digest, uint64_t size, fp_fsck_cb cb, void *ctx,
                      struct fp_fsck_stats *st)
{
    enum fp_digest_alg alg;
    if (fp_digest_parse(digest, strlen(digest), &alg) != FP_DIGEST_OK) {
        problem(cb, ctx, st, "bad-digest", digest, "recorded digest is not valid");
        return 0;
    }
    char path[FP_PATH_MAX + 200];
    fp_store_blob_path(s, digest, path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        problem(cb, ctx, st, "missing", digest, strerror(errno));
        return 0;
    }
    struct stat sb;
    fstat(fd, &sb);
    if ((uint64_t)sb.st_size != size) {
        char d[96];
        snprintf(d, sizeof d, "size %lld, recorded %llu", (long long)sb.st_size,
                 (unsigned long long)size);
        problem(cb, ctx, st, "size", digest, d);
        close(fd);
        return 0;
    }
    fp_hasher h;
    if (fp_hasher_init(&h, alg) < 0) {
        close(fd);
        return -1;
    }
    int64_t n = fp_hasher_update_fd(&h, fd, UINT64_MAX);
    char got[FP_DIGEST_MAX];
    int rc = n >= 0 ? fp_hasher_peek(&h, got) : -1;
    fp_hasher_free(&h);
    close(fd);
    if (rc < 0) {
        problem(cb, ctx, st, "unreadable", digest, strerror(errno));
        return 0;
    }
    st->blobs_checked++;
    st->bytes_checked += (uint64_t)n;
    if (strcmp(got, digest) != 0) problem(cb, ctx, st, "corrupt", digest, got);
    return 0;
}

int fp_store_fsck(fp_store *s, fp_fsck_cb cb, void *ctx, struct fp_fsck_stats *st, fp_error *err)
{
    memset(st, 0, sizeof *st);
    fp_db *db = fp_db_get(s, err);
    if (!db) return -1;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db->db, "SELECT digest, size FROM blobs ORDER BY digest", -1, &q,
                           NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "fsck blobs");
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (check_blob(s, (const char *)sqlite3_column_text(q, 0),
                       (uint64_t)sqlite3_column_int64(q, 1), cb, ctx, st) < 0) {
            sqlite3_finalize(q);
            return fp_error_set(err, errno, "fsck");
        }
    }
    sqlite3_finalize(q);

    if (sqlite3_prepare_v2(db->db, "SELECT digest, body FROM manifests ORDER BY digest", -1, &q,
                           NULL) != SQLITE_OK)
        return fp_db_fail(db, err, "fsck manifests");
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *digest = (const char *)sqlite3_column_text(q, 0);
        enum fp_digest_alg alg;
        char got[FP_DIGEST_MAX] = "";
        st->manifests_checked++;
        if (fp_digest_parse(digest, strlen(digest), &alg) != FP_DIGEST_OK ||
            fp_digest_bytes(alg, sqlite3_column_blob(q, 1), (size_t)sqlite3_column_bytes(q, 1),
                            got) < 0 ||
            strcmp(got, digest) != 0)
            problem(cb, ctx, st, "manifest-corrupt", digest, got);
    }
    sqlite3_finalize(q);

    /* References and links that point at nothing. A manifest pulled through
     * from another node ("lazy") may lack blobs: they follow on demand. */
    static const struct {
        const char *kind, *sql;
    } dangling[] = {
        {"dangling-blob-ref",
         "SELECT r.digest || ' -> ' || r.child FROM manifest_refs r JOIN manifests m ON m.digest = "
         "r.digest WHERE r.is_manifest = 0 AND m.lazy = 0 AND "
         "NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = r.child)"},
        {"dangling-blob-link",
         "SELECT rb.digest FROM repo_blobs rb WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE "
         "b.digest = rb.digest)"},
        {"dangling-manifest-link",
         "SELECT rm.digest FROM repo_manifests rm WHERE NOT EXISTS (SELECT 1 FROM manifests m "
         "WHERE m.digest = rm.digest)"},
        {"dangling-tag",
         "SELECT t.name || ' -> ' || t.digest FROM tags t WHERE NOT EXISTS (SELECT 1 FROM "
         "repo_manifests rm WHERE rm.repo = t.repo AND rm.digest = t.digest)"},
    };
    for (size_t i = 0; i < sizeof dangling / sizeof dangling[0]; i++) {
        if (sqlite3_prepare_v2(db->db, dangling[i].sql, -1, &q, NULL) != SQLITE_OK)
            return fp_db_fail(db, err, "fsck references");
        while (sqlite3_step(q) == SQLITE_ROW)
            problem(cb, ctx, st, dangling[i].kind, (const char *)sqlite3_column_text(q, 0),
                    "points at nothing");
        sqlite3_finalize(q);
    }
    return 0;
}
