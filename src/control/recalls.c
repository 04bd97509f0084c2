#include "control/recalls.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/fs.h"

struct fp_recalls {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection, many request threads */
};

/* The record is kept as the JSON nodes receive: nothing queries inside it. */
static const char schema[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS recalls(digest TEXT PRIMARY KEY, repo TEXT NOT NULL, "
    "  record TEXT NOT NULL, time INTEGER NOT NULL) WITHOUT ROWID;";

int fp_recalls_open(fp_recalls **out, const char *data_dir, fp_error *err)
{
    char path[FP_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/control.db", data_dir);
    if (fp_mkdir_p(data_dir, 0700, err) < 0) return -1;
    fp_recalls *rc = calloc(1, sizeof *rc);
    if (!rc) return fp_error_set(err, ENOMEM, "recalls");
    pthread_mutex_init(&rc->lock, NULL);
    char *msg = NULL;
    if (sqlite3_open_v2(path, &rc->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(rc->db, 5000) != SQLITE_OK ||
        sqlite3_exec(rc->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        fp_error_set(err, 0, "open %s: %s", path, msg ? msg : sqlite3_errmsg(rc->db));
        sqlite3_free(msg);
        fp_recalls_close(rc);
        return -1;
    }
    *out = rc;
    return 0;
}

void fp_recalls_close(fp_recalls *rc)
{
    if (!rc) return;
    sqlite3_close(rc->db);
    pthread_mutex_destroy(&rc->lock);
    free(rc);
}

static int db_fail(fp_recalls *rc, sqlite3_stmt *st, fp_error *err)
{
    fp_error_set(err, 0, "control.db: %s", sqlite3_errmsg(rc->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&rc->lock);
    return -1;
}

int fp_recalls_put(fp_recalls *rc, const json_t *record, fp_error *err)
{
    const char *digest = json_string_value(json_object_get(record, "digest"));
    const char *repo = json_string_value(json_object_get(record, "repo"));
    if (!digest || !repo) return fp_error_set(err, EINVAL, "recall: no digest or repository");
    char *text = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) return fp_error_set(err, ENOMEM, "recall %s", digest);
    pthread_mutex_lock(&rc->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(rc->db,
                           "INSERT OR REPLACE INTO recalls(digest, repo, record, time) "
                           "VALUES (?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK) {
        free(text);
        return db_fail(rc, st, err);
    }
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, repo, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, json_integer_value(json_object_get(record, "time")));
    int step = sqlite3_step(st);
    free(text);
    if (step != SQLITE_DONE) return db_fail(rc, st, err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&rc->lock);
    return 0;
}

int fp_recalls_remove(fp_recalls *rc, const char *digest, json_t **record, fp_error *err)
{
    if (record) *record = NULL;
    pthread_mutex_lock(&rc->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(rc->db, "DELETE FROM recalls WHERE digest = ?1 RETURNING record", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(rc, st, err);
    sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    if (step == SQLITE_ROW && record)
        *record = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
    if (step == SQLITE_ROW) step = sqlite3_step(st);
    if (step != SQLITE_DONE) {
        if (record) {
            json_decref(*record);
            *record = NULL;
        }
        return db_fail(rc, st, err);
    }
    int changed = sqlite3_changes(rc->db);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&rc->lock);
    return changed ? 0 : 1;
}

int fp_recalls_list(fp_recalls *rc, json_t **out, fp_error *err)
{
    pthread_mutex_lock(&rc->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(rc->db, "SELECT record FROM recalls ORDER BY time, digest", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(rc, st, err);
    json_t *list = json_array();
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (json_is_object(o))
            json_array_append_new(list, o);
        else
            json_decref(o);
    }
    if (step != SQLITE_DONE) {
        json_decref(list);
        return db_fail(rc, st, err);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&rc->lock);
    *out = list;
    return 0;
}
