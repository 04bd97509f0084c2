/* Upload sessions. The bytes live in uploads/<id>; the session row (repo,
 * created) in the uploads table; the open file and running SHA-256 in an
 * in-memory table that is only a cache: after a restart, or once an idle
 * entry is closed, the state is rebuilt from the file. */
#include "store/store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"

#define MAX_OPEN_UPLOADS 4096

static unsigned bucket(const char *id)
{
    unsigned h = 5381;
    for (const char *p = id; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return h % UPLOAD_BUCKETS;
}

static void upload_free(struct fp_upload *u)
{
    fp_hash_sync(u); /* the hasher thread may still be reading it */
    if (u->fd >= 0) close(u->fd);
    fp_hasher_free(&u->hasher);
    free(u);
}

static bool id_valid(const char *id)
{
    /* our ids are lowercase UUIDs: never let anything else reach a path */
    if (strlen(id) != 36) return false;
    for (int i = 0; i < 36; i++) {
        char c = id[i];
        bool dash = (i == 8 || i == 13 || i == 18 || i == 23);
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

const char *fp_upload_id(const fp_upload *u)
{
    return u->id;
}

void fp_upload_set_cached(fp_upload *u)
{
    u->cached = true;
}

uint64_t fp_upload_offset(const fp_upload *u)
{
    return u->offset;
}

int fp_upload_create(fp_store *s, const char *repo, char id[37], fp_error *err)
{
    if (fp_uuid(id) < 0) return fp_error_set(err, errno, "generate upload id");
    char path[FP_PATH_MAX + 64];
    fp_store_upload_path(s, id, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) return fp_error_set(err, errno, "create upload file");
    close(fd);
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st = db ? fp_db_stmt(db, ST_UPLOAD_INSERT, err) : NULL;
    if (!st) {
        unlink(path);
        return -1;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, repo, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)time(NULL));
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        unlink(path);
        return fp_db_fail(db, err, "record upload");
    }
    return 0;
}

static struct fp_upload *upload_new(fp_store *s, const char *id, const char *repo)
{
    struct fp_upload *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    u->store = s;
    u->fd = -1;
    snprintf(u->id, sizeof u->id, "%s", id);
    snprintf(u->repo, sizeof u->repo, "%s", repo);
    return u;
}

int fp_upload_begin_ephemeral(fp_store *s, const char *repo, fp_upload **out, fp_error *err)
{
    char id[37];
    if (fp_uuid(id) < 0) return fp_error_set(err, errno, "generate upload id");
    struct fp_upload *u = upload_new(s, id, repo);
    if (!u) return fp_error_set(err, ENOMEM, "upload");
    char path[FP_PATH_MAX + 64];
    fp_store_upload_path(s, id, path, sizeof path);
    u->fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (u->fd < 0) {
        free(u);
        return fp_error_set(err, errno, "create upload file");
    }
    u->ephemeral = true;
    u->busy = true;
    *out = u;
    return 0;
}

/* Load a session from its row and file (not in the table yet). */
static int upload_load(fp_store *s, const char *repo, const char *id, struct fp_upload **out,
                       fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    sqlite3_stmt *st = db ? fp_db_stmt(db, ST_UPLOAD_GET, err) : NULL;
    if (!st) return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? FP_STORE_NOT_FOUND : fp_db_fail(db, err, "look up upload");
    }
    bool same_repo = strcmp((const char *)sqlite3_column_text(st, 0), repo) == 0;
    sqlite3_reset(st);
    if (!same_repo) return FP_STORE_NOT_FOUND;
    struct fp_upload *u = upload_new(s, id, repo);
    if (!u) return fp_error_set(err, ENOMEM, "upload");
    char path[FP_PATH_MAX + 64];
    fp_store_upload_path(s, id, path, sizeof path);
    u->fd = open(path, O_RDWR | O_CLOEXEC);
    struct stat sb;
    if (u->fd < 0 || fstat(u->fd, &sb) < 0) {
        int e = errno;
        upload_free(u);
        return e == ENOENT ? FP_STORE_NOT_FOUND : fp_error_set(err, e, "open upload %s", id);
    }
    u->offset = (uint64_t)sb.st_size;
    *out = u;
    return 0;
}

int fp_upload_acquire(fp_store *s, const char *repo, const char *id, fp_upload **out, fp_error *err)
{
    if (!id_valid(id)) return FP_STORE_NOT_FOUND;
    unsigned b = bucket(id);
    pthread_mutex_lock(&s->lock);
    struct fp_upload *u = s->uploads[b];
    while (u && strcmp(u->id, id) != 0)
        u = u->next;
    if (u) {
        int rc = 0;
        if (strcmp(u->repo, repo) != 0)
            rc = FP_STORE_NOT_FOUND;
        else if (u->busy)
            rc = FP_STORE_BUSY;
        else {
            u->busy = true;
            u->mark = u->offset;
            *out = u;
        }
        pthread_mutex_unlock(&s->lock);
        return rc;
    }
    bool full = s->open_uploads >= MAX_OPEN_UPLOADS;
    pthread_mutex_unlock(&s->lock);
    if (full) fp_upload_table_sweep(s, time(NULL) - 1);

    /* Load outside the lock (file and database I/O), then insert unless
     * another request raced us to it. */
    struct fp_upload *loaded = NULL;
    int rc = upload_load(s, repo, id, &loaded, err);
    if (rc != 0) return rc;
    pthread_mutex_lock(&s->lock);
    for (u = s->uploads[b]; u; u = u->next)
        if (strcmp(u->id, id) == 0) break;
    if (u) {
        pthread_mutex_unlock(&s->lock);
        upload_free(loaded);
        return FP_STORE_BUSY;
    }
    loaded->busy = true;
    loaded->mark = loaded->offset;
    loaded->next = s->uploads[b];
    s->uploads[b] = loaded;
    s->open_uploads++;
    pthread_mutex_unlock(&s->lock);
    *out = loaded;
    return 0;
}

/* Bring the running hash up to the current offset (after a reload). */
static int ensure_hash(struct fp_upload *u, fp_error *err)
{
    if (u->hash_valid) return 0;
    fp_hasher_free(&u->hasher);
    if (fp_hasher_init(&u->hasher, FP_SHA256) < 0) return fp_error_set(err, errno, "hash init");
    int64_t n = fp_hasher_update_fd(&u->hasher, u->fd, u->offset);
    if (n < 0 || (uint64_t)n != u->offset)
        return fp_error_set(err, n < 0 ? errno : EIO, "rehash upload %s", u->id);
    u->hashed = u->offset;
    u->hash_valid = true;
    return 0;
}

int fp_upload_write(fp_upload *u, const void *data, size_t len, fp_error *err)
{
    if (ensure_hash(u, err) < 0) return -1;
    /* a regular file may take a piece only partly (at the disk-full
     * boundary): write on until done or a real error (ENOSPC, EIO) */
    for (size_t done = 0; done < len;) {
        ssize_t n = pwrite(u->fd, (const char *)data + done, len - done, (off_t)(u->offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n == 0 ? ENOSPC : errno;
            fp_upload_rollback(u);
            return fp_error_set(err, e, "write upload");
        }
        done += (size_t)n;
    }
    uint64_t before = u->offset;
    /* publishes the new offset; the store's hasher thread hashes the bytes
     * from the page cache on the other core while we receive the next ones */
    fp_hash_submit(u, before + len);
    /* Start writeback of each completed 8 MiB window now, so the fsync at
     * the end of the upload has little left to do. */
    if ((before >> 23) != (u->offset >> 23)) {
        uint64_t end = (u->offset >> 23) << 23;
        sync_file_range(u->fd, (off_t)(end - (8u << 20)), 8u << 20, SYNC_FILE_RANGE_WRITE);
    }
    return 0;
}

int fp_upload_file_path(const fp_upload *u, char *out, size_t outlen)
{
    return fp_store_upload_path(u->store, u->id, out, outlen);
}

void fp_upload_rollback(fp_upload *u)
{
    if (u->offset == u->mark) return;
    fp_hash_sync(u);
    if (ftruncate(u->fd, (off_t)u->mark) < 0)
        fp_warn("event=upload_rollback_failed upload=%s errno=%d", u->id, errno);
    u->offset = u->mark;
    u->hash_valid = false; /* rebuilt from the file on next use */
}

static void table_remove(struct fp_store *s, struct fp_upload *u)
{
    pthread_mutex_lock(&s->lock);
    for (struct fp_upload **p = &s->uploads[bucket(u->id)]; *p; p = &(*p)->next) {
        if (*p == u) {
            *p = u->next;
            s->open_uploads--;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
}

static void upload_discard(struct fp_upload *u)
{
    struct fp_store *s = u->store;
    char path[FP_PATH_MAX + 64];
    fp_store_upload_path(s, u->id, path, sizeof path);
    unlink(path);
    if (!u->ephemeral) {
        table_remove(s, u);
        fp_error err;
        fp_db *db = fp_db_get(s, &err);
        sqlite3_stmt *st = db ? fp_db_stmt(db, ST_UPLOAD_DELETE, &err) : NULL;
        if (st) {
            sqlite3_bind_text(st, 1, u->id, -1, SQLITE_STATIC);
            sqlite3_step(st);
            sqlite3_reset(st);
        }
    }
    upload_free(u);
}

int fp_upload_finish(fp_upload *u, const char *digest, char computed[FP_DIGEST_MAX], fp_error *err)
{
    enum fp_digest_alg alg;
    if (fp_digest_parse(digest, strlen(digest), &alg) != FP_DIGEST_OK)
        return fp_error_set(err, EINVAL, "invalid digest");
    if (alg == FP_SHA256) {
        fp_hash_sync(u);
        if (ensure_hash(u, err) < 0 || fp_hasher_peek(&u->hasher, computed) < 0)
            return fp_error_set(err, EIO, "hash upload");
    } else {
        /* The running hash is SHA-256; other algorithms hash the file once. */
        fp_hasher h;
        if (fp_hasher_init(&h, alg) < 0) return fp_error_set(err, errno, "hash init");
        int64_t n = fp_hasher_update_fd(&h, u->fd, u->offset);
        int rc = (n >= 0 && (uint64_t)n == u->offset) ? fp_hasher_peek(&h, computed) : -1;
        fp_hasher_free(&h);
        if (rc < 0) return fp_error_set(err, EIO, "hash upload");
    }
    if (strcmp(computed, digest) != 0) {
        upload_discard(u);
        return FP_STORE_MISMATCH;
    }
    if (fsync(u->fd) < 0) return fp_error_set(err, errno, "fsync upload");
    char path[FP_PATH_MAX + 64];
    fp_store_upload_path(u->store, u->id, path, sizeof path);
    if (fp_store_blob_commit(u->store, u->repo, path, digest, u->offset,
                             u->ephemeral ? NULL : u->id, u->cached, err) < 0)
        return -1;
    if (!u->ephemeral) table_remove(u->store, u);
    upload_free(u);
    return 0;
}

void fp_upload_release(fp_upload *u)
{
    if (u->ephemeral) {
        upload_discard(u);
        return;
    }
    pthread_mutex_lock(&u->store->lock);
    u->busy = false;
    u->touched = time(NULL);
    pthread_mutex_unlock(&u->store->lock);
}

int fp_upload_cancel(fp_store *s, const char *repo, const char *id, fp_error *err)
{
    fp_upload *u;
    int rc = fp_upload_acquire(s, repo, id, &u, err);
    if (rc != 0) return rc;
    upload_discard(u);
    return 0;
}

void fp_upload_table_sweep(struct fp_store *s, time_t idle_before)
{
    struct fp_upload *victims = NULL;
    pthread_mutex_lock(&s->lock);
    for (unsigned b = 0; b < UPLOAD_BUCKETS; b++) {
        for (struct fp_upload **p = &s->uploads[b]; *p;) {
            struct fp_upload *u = *p;
            if (!u->busy && u->touched < idle_before) {
                *p = u->next;
                s->open_uploads--;
                u->next = victims;
                victims = u;
            } else {
                p = &u->next;
            }
        }
    }
    pthread_mutex_unlock(&s->lock);
    while (victims) {
        struct fp_upload *next = victims->next;
        upload_free(victims);
        victims = next;
    }
}

void fp_upload_table_close_all(struct fp_store *s)
{
    fp_upload_table_sweep(s, (time_t)1 << 62);
}

int fp_upload_recover(struct fp_store *s, fp_error *err)
{
    fp_db *db = fp_db_get(s, err);
    if (!db) return -1;
    /* Sessions idle past their expiry. */
    while (fp_upload_purge_expired(s, false) == 64)
        ;

    /* Files without a row: ephemeral uploads cut off by a crash. */
    char dir[FP_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/uploads", s->root);
    DIR *d = opendir(dir);
    if (!d) return fp_error_set(err, errno, "open %s", dir);
    struct dirent *e;
    sqlite3_stmt *st = fp_db_stmt(db, ST_UPLOAD_GET, err);
    while (st && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, e->d_name, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_ROW) {
            char path[FP_PATH_MAX + 300];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    if (st) sqlite3_reset(st);
    closedir(d);
    return st ? 0 : -1;
}

int fp_upload_status(fp_store *s, const char *repo, const char *id, uint64_t *offset, fp_error *err)
{
    if (!id_valid(id)) return FP_STORE_NOT_FOUND;
    pthread_mutex_lock(&s->lock);
    for (struct fp_upload *u = s->uploads[bucket(id)]; u; u = u->next) {
        if (strcmp(u->id, id) == 0) {
            int rc = strcmp(u->repo, repo) == 0 ? 0 : FP_STORE_NOT_FOUND;
            /* a request in flight has not committed its chunk yet */
            *offset = u->busy ? u->mark : u->offset;
            pthread_mutex_unlock(&s->lock);
            return rc;
        }
    }
    pthread_mutex_unlock(&s->lock);
    struct fp_upload *u;
    int rc = upload_load(s, repo, id, &u, err);
    if (rc != 0) return rc;
    *offset = u->offset;
    upload_free(u);
    return 0;
}

unsigned fp_upload_purge_expired(struct fp_store *s, bool dry_run)
{
    unsigned purged = 0;
    fp_error err;
    fp_db *db = fp_db_get(s, &err);
    sqlite3_stmt *q;
    if (!db || sqlite3_prepare_v2(db->db, "SELECT id, repo FROM uploads WHERE created < ?1", -1, &q,
                                  NULL) != SQLITE_OK)
        return 0;
    time_t cutoff = time(NULL) - (time_t)s->opt.upload_expiry_s;
    sqlite3_bind_int64(q, 1, (int64_t)cutoff);
    struct {
        char id[37];
        char repo[256];
    } found[64];
    int n = 0;
    while (n < 64 && sqlite3_step(q) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(q, 0);
        if (!id_valid(id)) continue;
        snprintf(found[n].id, sizeof found[n].id, "%s", id);
        snprintf(found[n].repo, sizeof found[n].repo, "%s",
                 (const char *)sqlite3_column_text(q, 1));
        n++;
    }
    sqlite3_finalize(q);
    for (int i = 0; i < n; i++) {
        /* expiry counts from the last write, not the start */
        char path[FP_PATH_MAX + 64];
        struct stat sb;
        fp_store_upload_path(s, found[i].id, path, sizeof path);
        if (stat(path, &sb) == 0 && sb.st_mtime > cutoff) continue;
        /* a session a request holds is busy: acquire refuses it */
        fp_upload *u;
        if (dry_run) {
            purged++;
        } else if (fp_upload_acquire(s, found[i].repo, found[i].id, &u, &err) == 0) {
            fp_info("event=upload_expired upload=%s repo=%s", found[i].id, found[i].repo);
            upload_discard(u);
            purged++;
        }
    }
    return purged;
}
