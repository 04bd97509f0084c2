/* Internal to the store: SQLite connections. Each thread gets its own
 * connection to the store's database (WAL mode, so readers never wait for the
 * writer), with its prepared statements cached; writers serialise on
 * BEGIN IMMEDIATE, which is also what serialises the registry with an online
 * `fogport gc` in another process. */
#ifndef FP_STORE_DB_H
#define FP_STORE_DB_H

#include <sqlite3.h>

#include "core/error.h"

struct fp_store;

/* Statement ids; the SQL text for each is in db.c. */
enum fp_stmt {
    ST_BLOB_GET,             /* digest -> size */
    ST_BLOB_INSERT,          /* digest, size, created, cached */
    ST_BLOB_ADOPT,           /* digest: a push names it, it is no longer cache */
    ST_REPO_GET,             /* name -> id */
    ST_REPO_INSERT,          /* name, created */
    ST_REPO_BLOB_GET,        /* repo name, digest -> size */
    ST_REPO_BLOB_INSERT,     /* repo id, digest, created */
    ST_REPO_BLOB_DELETE,     /* repo id, digest */
    ST_REPO_BLOB_IN_REPO,    /* repo id, digest -> 1 */
    ST_UPLOAD_INSERT,        /* id, repo, created */
    ST_UPLOAD_GET,           /* id -> repo, created */
    ST_UPLOAD_DELETE,        /* id */
    ST_MANIFEST_INSERT,      /* digest, media_type, size, body, subject, artifact_type, annotations,
                                created */
    ST_MANIFEST_REF_INSERT,  /* digest, child, is_manifest */
    ST_REPO_MANIFEST_INSERT, /* repo id, digest, created (also last used) */
    ST_REPO_MANIFEST_TOUCH,  /* repo name, digest, now: last used */
    ST_REPO_MANIFEST_IN_REPO, /* repo id, digest -> 1 */
    ST_REPO_MANIFEST_DELETE,  /* repo id, digest */
    ST_TAG_SET,               /* repo id, name, digest, updated, cached */
    ST_TAG_DELETE,            /* repo id, name */
    ST_TAGS_DELETE_DIGEST,    /* repo id, digest */
    ST_MANIFEST_BY_TAG,       /* repo name, tag -> digest, media_type, body, updated, cached,
                                 last_used */
    ST_MANIFEST_BY_DIGEST,    /* repo name, digest -> the same */
    ST_TAGS_LIST,             /* repo name, last, limit -> name */
    ST_REPO_HAS_CONTENT,      /* repo name -> 1 */
    ST_CATALOG,               /* last, limit -> name */
    ST_REFERRERS, /* repo name, subject -> digest, media_type, size, artifact_type, annotations */
    ST_COUNT
};

typedef struct fp_db {
    sqlite3 *db;
    sqlite3_stmt *stmts[ST_COUNT];
    struct fp_store *owner;
    struct fp_db *next; /* in the store's list of open connections */
} fp_db;

/* This thread's connection to store's database (opened on first use). */
fp_db *fp_db_get(struct fp_store *store, fp_error *err);
/* A prepared (and reset) statement. */
sqlite3_stmt *fp_db_stmt(fp_db *db, enum fp_stmt id, fp_error *err);

int fp_db_begin(fp_db *db, fp_error *err); /* BEGIN IMMEDIATE */
int fp_db_commit(fp_db *db, fp_error *err);
void fp_db_rollback(fp_db *db);
int fp_db_exec(fp_db *db, const char *sql, fp_error *err);
int fp_db_fail(fp_db *db, fp_error *err, const char *what);

/* Open and configure a connection (WAL, synchronous=FULL, busy timeout). */
int fp_db_open(const char *path, sqlite3 **out, fp_error *err);
const char *fp_db_schema_sql(void);
#define FP_DB_SCHEMA_VERSION 3
/* Bring an older store's schema up to FP_DB_SCHEMA_VERSION. */
int fp_db_migrate(fp_db *db, fp_error *err);
void fp_db_free(fp_db *c);
/* pthread key destructor for per-thread connections. */
void fp_db_thread_exit(void *arg);

#endif
