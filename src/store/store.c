/* Store life cycle: directories, the database schema, the data directory
 * lock, per-thread connections, and recovery of interrupted work at open. */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cleanup.h"
#include "core/fs.h"
#include "core/log.h"

void fp_store_remember_conn(struct fp_store *s, fp_db *c)
{
    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->lock);
}

void fp_store_forget_conn(struct fp_store *s, fp_db *c)
{
    pthread_mutex_lock(&s->lock);
    for (fp_db **p = &s->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

const char *fp_store_root(const fp_store *s)
{
    return s->root;
}

int fp_store_blob_path(const fp_store *s, const char *digest, char *out, size_t outlen)
{
    const char *colon = strchr(digest, ':');
    if (!colon || strlen(colon + 1) < 2) return -1;
    int n = snprintf(out, outlen, "%s/blobs/%.*s/%.2s/%s", s->root, (int)(colon - digest), digest,
                     colon + 1, colon + 1);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int fp_store_upload_path(const struct fp_store *s, const char *id, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/uploads/%s", s->root, id);
    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int fp_store_repo_id(fp_db *db, const char *repo, bool create, int64_t *id, fp_error *err)
{
    sqlite3_stmt *st = fp_db_stmt(db, ST_REPO_GET, err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fp_db_fail(db, err, "look up repository");
    if (!create) return FP_STORE_NOT_FOUND;
    st = fp_db_stmt(db, ST_REPO_INSERT, err);
    if (!st) return -1;
    sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) return fp_db_fail(db, err, "create repository");
    *id = sqlite3_last_insert_rowid(db->db);
    return 0;
}

int fp_store_recover_trash(struct fp_store *s, fp_error *err)
{
    char dir[FP_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/trash", s->root);
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : fp_error_set(err, errno, "open %s", dir);
    fp_db *db = fp_db_get(s, err);
    if (!db) {
        closedir(d);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        /* trash entries are named "<alg>:<hex>" */
        if (!fp_digest_valid(e->d_name)) continue;
        char src[FP_PATH_MAX + 200], dst[FP_PATH_MAX + 200];
        snprintf(src, sizeof src, "%s/%s", dir, e->d_name);
        uint64_t size;
        int found = fp_store_blob_exists(s, e->d_name, &size, err);
        if (found < 0) {
            rc = -1;
            break;
        }
        if (found == 0 && fp_store_blob_path(s, e->d_name, dst, sizeof dst) == 0) {
            /* gc crashed before its commit: the blob is still recorded */
            if (rename(src, dst) < 0)
                fp_warn("event=trash_restore_failed digest=%s errno=%d", e->d_name, errno);
        } else {
            unlink(src);
        }
    }
    closedir(d);
    return rc;
}

int fp_store_open(fp_store **out, const char *root, const struct fp_store_options *opt,
                  fp_error *err)
{
    fp_store *s = calloc(1, sizeof *s);
    if (!s) return fp_error_set(err, ENOMEM, "open store");
    s->lock_fd = -1;
    if (opt) s->opt = *opt;
    if (!s->opt.upload_expiry_s) s->opt.upload_expiry_s = 86400;
    size_t rl = strlen(root);
    while (rl > 1 && root[rl - 1] == '/')
        rl--;
    if (rl >= sizeof s->root) {
        free(s);
        return fp_error_set(err, ENAMETOOLONG, "data directory");
    }
    memcpy(s->root, root, rl);
    snprintf(s->db_path, sizeof s->db_path, "%s/meta.db", s->root);
    pthread_mutex_init(&s->lock, NULL);
    fp_hash_init(s);
    if (pthread_key_create(&s->conn_key, fp_db_thread_exit) != 0) {
        free(s);
        return fp_error_set(err, EAGAIN, "thread key");
    }

    const char *subdirs[] = {"", "/blobs", "/uploads", "/trash"};
    for (size_t i = 0; i < 4; i++) {
        char p[FP_PATH_MAX + 16];
        snprintf(p, sizeof p, "%s%s", s->root, subdirs[i]);
        if (fp_mkdir_p(p, 0750, err) < 0) goto fail;
    }
    if (s->opt.exclusive) {
        char lp[FP_PATH_MAX + 16];
        snprintf(lp, sizeof lp, "%s/serve.lock", s->root);
        s->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
        if (s->lock_fd < 0) {
            fp_error_set(err, errno, "open %s", lp);
            goto fail;
        }
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
            fp_error_set(err, errno, "data directory %s is in use by another fogport serve",
                         s->root);
            goto fail;
        }
    }
    fp_db *db = fp_db_get(s, err);
    if (!db || fp_db_exec(db, fp_db_schema_sql(), err) < 0 || fp_db_migrate(db, err) < 0) goto fail;
    if (fp_store_recover_trash(s, err) < 0) goto fail;
    if (s->opt.exclusive && fp_upload_recover(s, err) < 0) goto fail;
    *out = s;
    return 0;
fail:
    fp_store_close(s);
    return -1;
}

void fp_store_maintain(fp_store *s)
{
    /* Close files of sessions idle for 5 minutes; their state reloads from
     * disk if the client comes back. */
    fp_upload_table_sweep(s, time(NULL) - 300);
    fp_upload_purge_expired(s, false);
}

void fp_store_close(fp_store *s)
{
    if (!s) return;
    fp_upload_table_close_all(s);
    fp_hash_stop(s);
    pthread_mutex_lock(&s->lock);
    fp_db *c = s->conns;
    s->conns = NULL;
    pthread_mutex_unlock(&s->lock);
    while (c) {
        fp_db *next = c->next;
        fp_db_free(c);
        c = next;
    }
    pthread_setspecific(s->conn_key, NULL);
    pthread_key_delete(s->conn_key);
    pthread_mutex_destroy(&s->lock);
    if (s->lock_fd >= 0) close(s->lock_fd);
    free(s);
}
