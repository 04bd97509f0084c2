#include "federation/directory.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "auth/cloudapi.h"
#include "core/fs.h"
#include "core/http_client.h"
#include "core/log.h"

struct fp_directory {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection, many threads */
};

static const char schema[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS directory(id TEXT PRIMARY KEY, url TEXT NOT NULL, "
    "  parent_url TEXT NOT NULL, capacity INTEGER NOT NULL, used INTEGER NOT NULL, "
    "  last_seen INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS replication(id INTEGER PRIMARY KEY, node TEXT NOT NULL, "
    "  repo TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, via TEXT NOT NULL, "
    "  state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, "
    "  bytes INTEGER NOT NULL DEFAULT 0, updated INTEGER NOT NULL, next_attempt INTEGER NOT NULL, "
    "  UNIQUE(node, repo, tag));";

int fp_directory_open(fp_directory **out, const char *data_dir, fp_error *err)
{
    char path[FP_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/directory.db", data_dir);
    if (fp_mkdir_p(data_dir, 0700, err) < 0) return -1;
    fp_directory *d = calloc(1, sizeof *d);
    if (!d) return fp_error_set(err, ENOMEM, "directory");
    pthread_mutex_init(&d->lock, NULL);
    char *msg = NULL;
    if (sqlite3_open_v2(path, &d->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(d->db, 5000) != SQLITE_OK ||
        sqlite3_exec(d->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        fp_error_set(err, 0, "open %s: %s", path, msg ? msg : sqlite3_errmsg(d->db));
        sqlite3_free(msg);
        fp_directory_close(d);
        return -1;
    }
    *out = d;
    return 0;
}

void fp_directory_close(fp_directory *d)
{
    if (!d) return;
    sqlite3_close(d->db);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

int fp_directory_report(fp_directory *d, const fp_directory_entry *e, fp_error *err)
{
    pthread_mutex_lock(&d->lock);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(
        d->db,
        "INSERT INTO directory(id, url, parent_url, capacity, used, last_seen) VALUES "
        "(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(id) DO UPDATE SET url = excluded.url, parent_url = "
        "excluded.parent_url, capacity = excluded.capacity, used = excluded.used, last_seen = "
        "excluded.last_seen",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, e->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, e->url ? e->url : "", -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, e->parent_url ? e->parent_url : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)e->capacity);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)e->used);
        sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    if (rc != SQLITE_OK) fp_error_set(err, 0, "directory: %s", sqlite3_errmsg(d->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->lock);
    return rc == SQLITE_OK ? 0 : -1;
}

int fp_directory_list(fp_directory *d, fp_directory_cb cb, void *ctx, fp_error *err)
{
    pthread_mutex_lock(&d->lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->db,
                           "SELECT id, url, parent_url, capacity, used, last_seen FROM directory "
                           "ORDER BY id",
                           -1, &st, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&d->lock);
        return fp_error_set(err, 0, "directory: %s", sqlite3_errmsg(d->db));
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
        fp_directory_entry e = {
            .id = (const char *)sqlite3_column_text(st, 0),
            .url = (const char *)sqlite3_column_text(st, 1),
            .parent_url = (const char *)sqlite3_column_text(st, 2),
            .capacity = (uint64_t)sqlite3_column_int64(st, 3),
            .used = (uint64_t)sqlite3_column_int64(st, 4),
            .last_seen = (time_t)sqlite3_column_int64(st, 5),
        };
        if (cb(ctx, &e)) break;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static int exec_bound(fp_directory *d, const char *sql, int (*bind)(sqlite3_stmt *, const void *),
                      const void *arg, fp_error *err)
{
    pthread_mutex_lock(&d->lock);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(d->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind(st, arg);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    int changes = sqlite3_changes(d->db);
    if (rc != SQLITE_OK) fp_error_set(err, 0, "directory: %s", sqlite3_errmsg(d->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->lock);
    return rc == SQLITE_OK ? changes : -1;
}

static int bind_task_put(sqlite3_stmt *st, const void *arg)
{
    const fp_task *t = arg;
    sqlite3_bind_text(st, 1, t->node, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, t->repo, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, t->tag, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, t->digest, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, t->via, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)time(NULL));
    return 0;
}

int fp_directory_task_put(fp_directory *d, const char *node, const char *repo, const char *tag,
                          const char *digest, const char *via, fp_error *err)
{
    fp_task t = {.node = node, .repo = repo, .tag = tag, .digest = digest, .via = via ? via : ""};
    /* the same digest already done stays done; anything else starts over */
    int rc = exec_bound(
        d,
        "INSERT INTO replication(node, repo, tag, digest, via, state, updated, next_attempt) "
        "VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6) ON CONFLICT(node, repo, tag) DO UPDATE "
        "SET digest = excluded.digest, via = excluded.via, state = 'pending', error = '', "
        "attempts = 0, bytes = 0, updated = excluded.updated, next_attempt = excluded.updated "
        "WHERE replication.digest != excluded.digest OR replication.state != 'done'",
        bind_task_put, &t, err);
    return rc < 0 ? -1 : 0;
}

int fp_directory_tasks(fp_directory *d, const char *node, bool offer, fp_task_cb cb, void *ctx,
                       fp_error *err)
{
    static const char all[] =
        "SELECT id, node, repo, tag, digest, via, state, error, attempts, bytes, updated, "
        "next_attempt FROM replication t WHERE (?1 IS NULL OR node = ?1) ORDER BY repo, tag, node";
    /* followers wait for their seed to start (or 30 s); a running task
     * silent for two minutes is offered again */
    static const char due[] =
        "SELECT id, node, repo, tag, digest, via, state, error, attempts, bytes, updated, "
        "next_attempt FROM replication t WHERE node = ?1 AND ((state IN ('pending', 'failed') AND "
        "next_attempt <= ?2 AND (via = '' OR updated <= ?2 - 30 OR EXISTS (SELECT 1 FROM "
        "replication s WHERE s.node = t.via AND s.repo = t.repo AND s.tag = t.tag AND s.state != "
        "'pending'))) OR (state = 'running' AND updated <= ?2 - 120)) ORDER BY id LIMIT 32";
    pthread_mutex_lock(&d->lock);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(d->db, offer ? due : all, -1, &st, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&d->lock);
        return fp_error_set(err, 0, "directory: %s", sqlite3_errmsg(d->db));
    }
    if (node) sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)time(NULL));
    while (sqlite3_step(st) == SQLITE_ROW) {
        fp_task t = {
            .id = sqlite3_column_int64(st, 0),
            .node = (const char *)sqlite3_column_text(st, 1),
            .repo = (const char *)sqlite3_column_text(st, 2),
            .tag = (const char *)sqlite3_column_text(st, 3),
            .digest = (const char *)sqlite3_column_text(st, 4),
            .via = (const char *)sqlite3_column_text(st, 5),
            .state = (const char *)sqlite3_column_text(st, 6),
            .error = (const char *)sqlite3_column_text(st, 7),
            .attempts = (unsigned)sqlite3_column_int(st, 8),
            .bytes = (uint64_t)sqlite3_column_int64(st, 9),
            .updated = (time_t)sqlite3_column_int64(st, 10),
            .next_attempt = (time_t)sqlite3_column_int64(st, 11),
        };
        if (cb(ctx, &t)) break;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

struct report {
    int64_t id;
    const char *node, *state, *error;
    uint64_t bytes;
};

static int bind_report(sqlite3_stmt *st, const void *arg)
{
    const struct report *r = arg;
    sqlite3_bind_text(st, 1, r->state, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)r->bytes);
    sqlite3_bind_text(st, 3, r->error ? r->error : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
    sqlite3_bind_int64(st, 5, r->id);
    sqlite3_bind_text(st, 6, r->node, -1, SQLITE_STATIC);
    return 0;
}

int fp_directory_task_report(fp_directory *d, int64_t id, const char *node, const char *state,
                             uint64_t bytes, const char *error, fp_error *err)
{
    struct report r = {.id = id, .node = node, .state = state, .error = error, .bytes = bytes};
    /* a failure is retried after 2, 4, 8 ... s, at most 5 min */
    int rc = exec_bound(d,
                        "UPDATE replication SET state = ?1, bytes = ?2, error = ?3, updated = ?4, "
                        "attempts = attempts + (?1 = 'failed'), next_attempt = CASE WHEN ?1 = "
                        "'failed' THEN ?4 + MIN(300, 1 << MIN(attempts + 1, 9)) ELSE ?4 END "
                        "WHERE id = ?5 AND node = ?6",
                        bind_report, &r, err);
    return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

void fp_node_advertised_url(const fp_config *cfg, char *out, size_t outlen)
{
    if (cfg->node_url[0]) {
        snprintf(out, outlen, "%s", cfg->node_url);
        return;
    }
    /* listening on every address says nothing about where we are reached */
    const char *host = cfg->listen;
    if (!strncmp(host, "0.0.0.0:", 8) || !strncmp(host, "[::]:", 5)) {
        out[0] = '\0';
        return;
    }
    snprintf(out, outlen, "%s://%s", cfg->tls_cert[0] ? "https" : "http", host);
}

int fp_directory_heartbeat(const fp_config *cfg, json_t *instances, char recalls[FP_DIGEST_MAX],
                           fp_error *err)
{
    recalls[0] = '\0';
    char self[512];
    fp_node_advertised_url(cfg, self, sizeof self);
    uint64_t capacity = cfg->node_capacity, used = 0;
    struct statvfs vfs;
    if (statvfs(cfg->data_dir, &vfs) == 0) {
        uint64_t total = (uint64_t)vfs.f_blocks * vfs.f_frsize;
        if (!capacity) capacity = total;
        used = total - (uint64_t)vfs.f_bfree * vfs.f_frsize;
    }
    json_t *body = json_pack("{s:s, s:s, s:I, s:I}", "url", self, "parent", cfg->node_parent,
                             "capacity", (json_int_t)capacity, "used", (json_int_t)used);
    if (instances) json_object_set_new(body, "instances", instances);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) return fp_error_set(err, ENOMEM, "heartbeat");
    fp_http_response resp;
    int rc = fp_node_call_cloud(cfg, "/api/v1/heartbeat", text, &resp, err);
    free(text);
    if (rc < 0) return rc;
    json_t *answer = resp.body.len ? json_loadb(resp.body.data, resp.body.len, 0, NULL) : NULL;
    const char *v = json_string_value(json_object_get(answer, "recalls"));
    if (v && fp_digest_valid(v)) snprintf(recalls, FP_DIGEST_MAX, "%s", v);
    json_decref(answer);
    fp_http_response_free(&resp);
    return 0;
}
