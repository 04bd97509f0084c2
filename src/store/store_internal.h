/* Internal to src/store: the store object shared by its files. */
#ifndef FP_STORE_INTERNAL_H
#define FP_STORE_INTERNAL_H

#include <pthread.h>
#include <time.h>

#include "core/config.h"
#include "store/db.h"
#include "store/store.h"

#define UPLOAD_BUCKETS 256

/* An upload session (uploads.c). The request holding it (busy) owns every
 * field except those the hasher thread shares, which hash_lock guards:
 * offset (written by the owner under the lock), hashed, queued, hashing,
 * hash_failed, hnext. */
struct fp_upload {
    struct fp_store *store;
    char id[37];
    char repo[256];
    int fd;
    fp_hasher hasher;
    bool hash_valid; /* hasher covers [0, hashed) and catches up to offset */
    uint64_t offset;
    uint64_t mark; /* offset at acquire: rollback point */
    bool busy;
    bool ephemeral;
    bool cached; /* the bytes come from another node (fp_upload_set_cached) */
    time_t touched;
    struct fp_upload *next;
    /* background hashing (hasher.c) */
    uint64_t hashed;
    bool queued, hashing, hash_failed;
    struct fp_upload *hnext;
};

struct fp_store {
    char root[FP_PATH_MAX];
    char db_path[FP_PATH_MAX + 16];
    struct fp_store_options opt;
    int lock_fd;
    pthread_key_t conn_key;
    pthread_mutex_t lock; /* guards conns and the upload table */
    fp_db *conns;
    struct fp_upload *uploads[UPLOAD_BUCKETS];
    unsigned open_uploads;
    /* the hasher thread (hasher.c), started on first use */
    pthread_mutex_t hash_lock;
    pthread_cond_t hash_work, hash_done;
    struct fp_upload *hash_head, *hash_tail;
    bool hash_started, hash_stop;
    pthread_t hash_thread;
};

/* Background hashing of uploads (hasher.c): the bytes a request writes are
 * hashed by one thread per store, reading them back from the page cache,
 * so receiving and hashing run on two cores. */
void fp_hash_init(struct fp_store *s);
/* Publish u's new offset and queue the new bytes for hashing. */
void fp_hash_submit(struct fp_upload *u, uint64_t new_offset);
/* Wait until the hasher is done with u (hashed == offset, or failed: then
 * hash_valid is cleared and the hash is rebuilt on demand). */
void fp_hash_sync(struct fp_upload *u);
void fp_hash_stop(struct fp_store *s);

void fp_store_remember_conn(struct fp_store *s, fp_db *c);
void fp_store_forget_conn(struct fp_store *s, fp_db *c);

/* Path helpers. */
int fp_store_upload_path(const struct fp_store *s, const char *id, char *out, size_t outlen);

/* Look up or create a repository row inside an open write transaction. */
int fp_store_repo_id(fp_db *db, const char *repo, bool create, int64_t *id, fp_error *err);

/* Record a verified, fsynced file as a blob linked into repo: rename into
 * place and insert the rows in one write transaction. */
int fp_store_blob_commit(struct fp_store *s, const char *repo, const char *tmp_path,
                         const char *digest, uint64_t size, const char *upload_id, bool cached,
                         fp_error *err);
/* A push names the blob (inside a write transaction): it is no longer
 * cache (blobs.cached) that eviction may remove. */
int fp_store_blob_adopt(fp_db *db, const char *digest, fp_error *err);

/* Upload table housekeeping (uploads.c). */
void fp_upload_table_close_all(struct fp_store *s);
void fp_upload_table_sweep(struct fp_store *s, time_t idle_before);
/* Discard sessions idle (no write) for upload_expiry that no request holds
 * (at most 64 per call). Returns how many. */
unsigned fp_upload_purge_expired(struct fp_store *s, bool dry_run);
/* At open: drop upload files without a session row and rows without a file. */
int fp_upload_recover(struct fp_store *s, fp_error *err);
/* At open and before gc: move trashed blobs back or delete them. */
int fp_store_recover_trash(struct fp_store *s, fp_error *err);

#endif
