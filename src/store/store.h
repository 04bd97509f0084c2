/* The node's content store: blobs as content-addressed files, metadata
 * (repositories, manifests, tags, referrers, which repository may see which
 * blob) in SQLite. The rules that keep it honest:
 *   - bytes first: a blob is streamed to a temporary file while hashed,
 *     verified, fsynced, renamed into place, and only then recorded;
 *   - metadata changes are single SQLite transactions (WAL, synchronous=FULL);
 *   - so a crash at any instant leaves the last committed state readable, and
 *     at worst an orphan file that gc removes and fsck reports.
 * Functions return 0 on success, FP_STORE_NOT_FOUND (1) when the thing asked
 * for does not exist (in that repository), and -1 with err filled on failure.
 * Safe to call from many threads; also safe with `fogport gc` running in
 * another process on the same directory. */
#ifndef FP_STORE_STORE_H
#define FP_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/digest.h"
#include "core/error.h"

#define FP_STORE_NOT_FOUND 1
#define FP_STORE_BUSY      2 /* upload session in use by another request */
#define FP_STORE_MISMATCH  3 /* digest or size differs from the content */

typedef struct fp_store fp_store;

struct fp_store_options {
    unsigned upload_expiry_s; /* upload sessions with no write for this long are purged */
    bool exclusive;           /* take the data directory's lock (the serving process) */
};

/* Store life cycle. */
int fp_store_open(fp_store **out, const char *root, const struct fp_store_options *opt,
                  fp_error *err);
void fp_store_close(fp_store *s);
const char *fp_store_root(const fp_store *s);
/* Periodic housekeeping: close idle upload files, purge expired uploads. */
void fp_store_maintain(fp_store *s);

/* Blobs, per repository. */
int fp_store_blob_stat(fp_store *s, const char *repo, const char *digest, uint64_t *size,
                       fp_error *err);
/* Open the blob's file for reading (caller closes *fd). */
int fp_store_blob_open(fp_store *s, const char *repo, const char *digest, int *fd, uint64_t *size,
                       fp_error *err);
/* Link an already stored blob into repo. from: the repository it must be
 * linked in already, or NULL for any. */
int fp_store_blob_mount(fp_store *s, const char *repo, const char *digest, const char *from,
                        fp_error *err);
/* Link a blob this node holds into repo when one of repo's manifests
 * references it: a pulled-through manifest vouches that the blob belongs to
 * the repository. FP_STORE_NOT_FOUND when the blob is absent or no manifest
 * of repo references it. */
int fp_store_blob_link_referenced(fp_store *s, const char *repo, const char *digest, fp_error *err);
/* Unlink a blob from repo (the bytes go at the next gc). */
int fp_store_blob_delete(fp_store *s, const char *repo, const char *digest, fp_error *err);
/* Global existence (any repository). */
int fp_store_blob_exists(fp_store *s, const char *digest, uint64_t *size, fp_error *err);
/* Path of a blob's file (for fsck and tests). */
int fp_store_blob_path(const fp_store *s, const char *digest, char *out, size_t outlen);

/* Upload sessions. A session is a file under uploads/ plus (unless
 * ephemeral) a database row, so it survives a restart; the running hash is a
 * cache rebuilt from the file when missing. One request at a time holds a
 * session (acquire/release); a request that fails part-way rolls back to the
 * offset it started at, so a dropped connection never leaves half a chunk. */
typedef struct fp_upload fp_upload;

int fp_upload_create(fp_store *s, const char *repo, char id[37], fp_error *err);
/* An upload that lives only for one request (monolithic POST). */
int fp_upload_begin_ephemeral(fp_store *s, const char *repo, fp_upload **out, fp_error *err);
/* The bytes come from another node (pull-through): the blob is recorded as
 * cache, which fp_store_evict may remove, until a push names it. */
void fp_upload_set_cached(fp_upload *u);
/* Returns FP_STORE_NOT_FOUND for an unknown id or one of another repo,
 * FP_STORE_BUSY when another request holds it. */
int fp_upload_acquire(fp_store *s, const char *repo, const char *id, fp_upload **out,
                      fp_error *err);
uint64_t fp_upload_offset(const fp_upload *u);
const char *fp_upload_id(const fp_upload *u);
int fp_upload_write(fp_upload *u, const void *data, size_t len, fp_error *err);
/* The session's file, to serve its bytes while they arrive (a descriptor
 * opened on it stays valid after finish renames the file into place). */
int fp_upload_file_path(const fp_upload *u, char *out, size_t outlen);
/* Undo every write since acquire. */
void fp_upload_rollback(fp_upload *u);
/* Verify against digest, commit the blob into the upload's repository, end
 * the session. FP_STORE_MISMATCH when the
 * digest differs (the session is then cancelled). */
int fp_upload_finish(fp_upload *u, const char *digest, char computed[FP_DIGEST_MAX], fp_error *err);
/* Give the session back (after write/rollback); ephemeral ones are discarded. */
void fp_upload_release(fp_upload *u);
/* Committed size of a session (for GET on the upload location). */
int fp_upload_status(fp_store *s, const char *repo, const char *id, uint64_t *offset,
                     fp_error *err);
/* Cancel a session by id. */
int fp_upload_cancel(fp_store *s, const char *repo, const char *id, fp_error *err);

/* Manifests. Bodies are stored byte for byte. */
typedef struct fp_manifest_ref {
    const char *digest;
    bool is_manifest; /* a child manifest of an index (else a blob) */
    bool external;    /* has urls: not required to be in the registry */
} fp_manifest_ref;

typedef struct fp_manifest_put {
    const char *digest;
    const char *media_type;
    const void *body;
    size_t size;
    const char *subject;       /* digest of the subject, or NULL */
    const char *artifact_type; /* for referrers, or NULL */
    const char *annotations;   /* JSON object text, or NULL */
    const fp_manifest_ref *refs;
    size_t nrefs;
    const char *const *tags;
    size_t ntags;
    /* Pulled through from another node: stored without its blobs and child
     * manifests (they follow on demand), its tags re-validated later. */
    bool cached;
} fp_manifest_put;

/* FP_STORE_NOT_FOUND when a referenced blob or child manifest is not in repo
 * (its digest is written to missing). */
int fp_store_manifest_put(fp_store *s, const char *repo, const fp_manifest_put *m,
                          char missing[FP_DIGEST_MAX], fp_error *err);

/* The same from a parsed manifest (core/manifest.h): its references become
 * the put's refs. */
struct fp_manifest;
int fp_store_manifest_put_parsed(fp_store *s, const char *repo, const struct fp_manifest *m,
                                 const char *digest, const void *body, size_t size,
                                 const char *const *tags, size_t ntags, bool cached,
                                 char missing[FP_DIGEST_MAX], fp_error *err);

typedef struct fp_manifest_row {
    char digest[FP_DIGEST_MAX];
    char media_type[256];
    void *body; /* malloc'd when asked for; caller frees */
    size_t size;
    int64_t tag_updated; /* by tag: when the tag was last set or re-validated */
    bool tag_cached;     /* by tag: the tag came from another node */
    int64_t last_used;   /* when the manifest was last stored or touched in the repository */
} fp_manifest_row;

/* ref is a tag, or a digest when by_digest. */
int fp_store_manifest_get(fp_store *s, const char *repo, const char *ref, bool by_digest,
                          bool want_body, fp_manifest_row *out, fp_error *err);
int fp_store_manifest_delete(fp_store *s, const char *repo, const char *ref, bool by_digest,
                             fp_error *err);
/* The manifest was used (served) at now: the least recently used cached
 * images are evicted first. A write: callers do it at most once a minute
 * per manifest (compare fp_manifest_row.last_used). */
int fp_store_manifest_touch(fp_store *s, const char *repo, const char *digest, int64_t now,
                            fp_error *err);

/* Listing. Callbacks return 0 to continue, non-zero to stop. */
typedef int (*fp_name_cb)(void *ctx, const char *name);
/* Tags after `last` (NULL: from the start), at most limit. NOT_FOUND for an
 * unknown repository. */
int fp_store_tags(fp_store *s, const char *repo, const char *last, unsigned limit, fp_name_cb cb,
                  void *ctx, fp_error *err);
int fp_store_catalog(fp_store *s, const char *last, unsigned limit, fp_name_cb cb, void *ctx,
                     fp_error *err);

/* The manifests of repo that reference child (a blob or an index's child
 * manifest), by digest. 0 also for an unknown repository. */
int fp_store_manifests_referencing(fp_store *s, const char *repo, const char *child, fp_name_cb cb,
                                   void *ctx, fp_error *err);

typedef struct fp_referrer {
    const char *digest;
    const char *media_type;
    uint64_t size;
    const char *artifact_type; /* may be NULL */
    const char *annotations;   /* JSON object text or NULL */
} fp_referrer;
typedef int (*fp_referrer_cb)(void *ctx, const fp_referrer *r);
int fp_store_referrers(fp_store *s, const char *repo, const char *subject, fp_referrer_cb cb,
                       void *ctx, fp_error *err);

/* Garbage collection, online. Keeps every tagged manifest, what it
 * references (index children, config, layers), referrers of kept manifests,
 * and anything younger than grace_s; removes the rest. */
struct fp_gc_stats {
    uint64_t manifests_removed;
    uint64_t blob_links_removed;
    uint64_t blobs_removed;
    uint64_t bytes_freed;
    uint64_t uploads_purged;
    uint64_t orphan_files_removed;
};
int fp_store_gc(fp_store *s, unsigned grace_s, bool dry_run, struct fp_gc_stats *st, fp_error *err);

/* Cache eviction: a node that pulls through keeps what it fetched
 * (manifests stored lazy, blobs recorded as cached) only up to max_bytes.
 * Over it, whole images go, least recently used first: a manifest in a
 * repository with its tags, the child manifests of an index no other
 * manifest of the repository needs, the repository's links to its cached
 * blobs, and the blobs nothing links or references any more. Never
 * evicted: repositories under protect (this node's own namespace, "fog-1/";
 * "" for none), content a push stored or named (a pushed manifest or tag,
 * a pushed or mounted blob), blobs a remaining manifest references, images
 * used within min_idle_s of now, pinned images (an agent runs them or is
 * about to) and an index that lists a pinned manifest. One write
 * transaction per image. Before
 * images, cached blobs no manifest of their repository references (fetched
 * by digest alone, or arriving after their image went) go, once their link
 * is orphan_idle_s old (0: never). */
struct fp_evict_opts {
    uint64_t max_bytes;
    const char *protect;
    int64_t now;
    unsigned min_idle_s;
    unsigned orphan_idle_s;
    unsigned max_images; /* at most this many per call (0: no limit) */
    const char *pinned;  /* a JSON array of manifest digests never evicted (NULL: none) */
};
struct fp_evict_stats {
    uint64_t cache_bytes; /* cached content before */
    uint64_t images_evicted;
    uint64_t manifests_removed;
    uint64_t blobs_removed;
    uint64_t bytes_freed;
};
int fp_store_evict(fp_store *s, const struct fp_evict_opts *o, struct fp_evict_stats *st,
                   fp_error *err);
/* Bytes of cached content: blobs recorded as cached, lazy manifests. */
int fp_store_cache_usage(fp_store *s, uint64_t *bytes, fp_error *err);

/* What the store holds (stats.c): blobs and their bytes, manifests and
 * their bytes, repositories. Counted by the database (its indexes, no file
 * is read); callers that ask often keep the answer a while. */
struct fp_store_stats {
    uint64_t blobs, blob_bytes, manifests, manifest_bytes, repositories;
};
int fp_store_stats(fp_store *s, struct fp_store_stats *st, fp_error *err);

/* Consistency check: every blob hashed against its digest, every manifest
 * body against its digest, every reference resolvable. */
struct fp_fsck_stats {
    uint64_t blobs_checked;
    uint64_t bytes_checked;
    uint64_t manifests_checked;
    uint64_t problems;
};
typedef void (*fp_fsck_cb)(void *ctx, const char *kind, const char *digest, const char *detail);
int fp_store_fsck(fp_store *s, fp_fsck_cb report, void *ctx, struct fp_fsck_stats *st,
                  fp_error *err);

#endif
