#include "control/services.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/fs.h"
#include "core/log.h"
#include "control/placement.h"

struct fp_services {
    sqlite3 *db;
    pthread_mutex_t lock; /* one connection, many request threads */
    fp_services_limits limits;
};

/* Definitions and reports are kept as the JSON they travel as: the
 * controller never needs to query inside them, and a new field needs no
 * migration. */
static const char schema[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS services(name TEXT PRIMARY KEY, spec TEXT NOT NULL, "
    "  created INTEGER NOT NULL, updated INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS instances(node TEXT NOT NULL, service TEXT NOT NULL, "
    "  report TEXT NOT NULL, reported INTEGER NOT NULL, PRIMARY KEY(node, service)) "
    "  WITHOUT ROWID;"
    /* where the dynamic definitions (control/placement.h) run now: the
     * controller's decision, kept so that a restarted cloud does not move
     * what runs */
    "CREATE TABLE IF NOT EXISTS placements(service TEXT NOT NULL, node TEXT NOT NULL, "
    "  since INTEGER NOT NULL, PRIMARY KEY(service, node)) WITHOUT ROWID;"

    /* a violation is kept after its instance is replaced: it is history */
    "CREATE TABLE IF NOT EXISTS violations(seq INTEGER PRIMARY KEY AUTOINCREMENT, "
    "  node TEXT NOT NULL, service TEXT NOT NULL, id TEXT NOT NULL, "
    "  recorded INTEGER NOT NULL, report TEXT NOT NULL, UNIQUE(node, service, id));";

int fp_services_open(fp_services **out, const char *data_dir, fp_error *err)
{
    char path[FP_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/control.db", data_dir);
    if (fp_mkdir_p(data_dir, 0700, err) < 0) return -1;
    fp_services *sv = calloc(1, sizeof *sv);
    if (!sv) return fp_error_set(err, ENOMEM, "services");
    pthread_mutex_init(&sv->lock, NULL);
    char *msg = NULL;
    if (sqlite3_open_v2(path, &sv->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(sv->db, 5000) != SQLITE_OK ||
        sqlite3_exec(sv->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        fp_error_set(err, 0, "open %s: %s", path, msg ? msg : sqlite3_errmsg(sv->db));
        sqlite3_free(msg);
        fp_services_close(sv);
        return -1;
    }
    *out = sv;
    return 0;
}

void fp_services_set_limits(fp_services *sv, const fp_services_limits *limits)
{
    pthread_mutex_lock(&sv->lock);
    sv->limits = *limits;
    pthread_mutex_unlock(&sv->lock);
}

/* Under the lock: run sql with ?1 bound; rows changed, or -1. */
static int delete_bound(fp_services *sv, const char *sql, sqlite3_int64 v)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sv->db, sql, -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_bind_int64(st, 1, v);
    int rc = sqlite3_step(st) == SQLITE_DONE ? sqlite3_changes(sv->db) : -1;
    sqlite3_finalize(st);
    return rc;
}

/* Under the lock: keep the newest violations_max violations: delete from
 * the one past them down (a range on the primary key). Not MAX(seq) - max:
 * an ignored repeat (INSERT OR IGNORE) uses up a seq too. */
static int trim_violations(fp_services *sv)
{
    if (!sv->limits.violations_max) return 0;
    return delete_bound(sv,
                        "DELETE FROM violations WHERE seq <= (SELECT seq FROM violations "
                        "ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
                        sv->limits.violations_max);
}

int fp_services_prune(fp_services *sv, time_t now, fp_error *err)
{
    pthread_mutex_lock(&sv->lock);
    int total = 0, n = trim_violations(sv);
    total += n > 0 ? n : 0;
    if (n >= 0 && sv->limits.violations_age_s) {
        n = delete_bound(sv, "DELETE FROM violations WHERE recorded < ?1",
                         (sqlite3_int64)now - sv->limits.violations_age_s);
        total += n > 0 ? n : 0;
    }
    if (n >= 0 && sv->limits.instances_age_s) {
        n = delete_bound(sv, "DELETE FROM instances WHERE reported < ?1",
                         (sqlite3_int64)now - sv->limits.instances_age_s);
        total += n > 0 ? n : 0;
    }
    if (n < 0) fp_error_set(err, 0, "control.db: %s", sqlite3_errmsg(sv->db));
    pthread_mutex_unlock(&sv->lock);
    return n < 0 ? -1 : total;
}

void fp_services_close(fp_services *sv)
{
    if (!sv) return;
    sqlite3_close(sv->db);
    pthread_mutex_destroy(&sv->lock);
    free(sv);
}

static int db_fail(fp_services *sv, sqlite3_stmt *st, fp_error *err)
{
    fp_error_set(err, 0, "control.db: %s", sqlite3_errmsg(sv->db));
    sqlite3_finalize(st);
    pthread_mutex_unlock(&sv->lock);
    return -1;
}

int fp_services_put(fp_services *sv, const fp_service *s, bool keep_placements, bool *replaced,
                    fp_error *err)
{
    json_t *j = fp_service_to_json(s);
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!text) return fp_error_set(err, ENOMEM, "service %s", s->name);
    pthread_mutex_lock(&sv->lock);
    sqlite3_stmt *st = NULL;
    bool existed = false;
    if (sqlite3_prepare_v2(sv->db, "SELECT 1 FROM services WHERE name = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        free(text);
        return db_fail(sv, st, err);
    }
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    existed = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    int rc = sqlite3_prepare_v2(
        sv->db,
        "INSERT INTO services(name, spec, created, updated) VALUES (?1, ?2, ?3, ?3) "
        "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated = excluded.updated",
        -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    free(text);
    if (rc != SQLITE_OK) return db_fail(sv, st, err);
    sqlite3_finalize(st);
    /* a new definition is placed afresh (it may name another node or
     * role, and its instances restart anyway) */
    if (keep_placements) {
        pthread_mutex_unlock(&sv->lock);
        if (replaced) *replaced = existed;
        return 0;
    }
    if (sqlite3_prepare_v2(sv->db, "DELETE FROM placements WHERE service = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(sv, st, err);
    sqlite3_bind_text(st, 1, s->name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) return db_fail(sv, st, err);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&sv->lock);
    if (replaced) *replaced = existed;
    return 0;
}

int fp_services_delete(fp_services *sv, const char *name, fp_error *err)
{
    pthread_mutex_lock(&sv->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sv->db, "DELETE FROM services WHERE name = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(sv, st, err);
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) return db_fail(sv, st, err);
    int changed = sqlite3_changes(sv->db);
    sqlite3_finalize(st);
    static const char *const gone[] = {"DELETE FROM instances WHERE service = ?1",
                                       "DELETE FROM placements WHERE service = ?1"};
    for (size_t i = 0; i < 2; i++) {
        if (sqlite3_prepare_v2(sv->db, gone[i], -1, &st, NULL) != SQLITE_OK)
            return db_fail(sv, st, err);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) return db_fail(sv, st, err);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&sv->lock);
    return changed ? 0 : 1;
}

/* Run a SELECT whose first column is JSON text; collect the objects,
 * adding the named integer/text columns that follow. */
static int select_json(fp_services *sv, const char *sql, const char *bind, const char *const *extra,
                       json_t **out, fp_error *err)
{
    pthread_mutex_lock(&sv->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sv->db, sql, -1, &st, NULL) != SQLITE_OK) return db_fail(sv, st, err);
    if (bind) sqlite3_bind_text(st, 1, bind, -1, SQLITE_STATIC);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            continue;
        }
        for (int i = 0; extra && extra[i]; i++) {
            if (sqlite3_column_type(st, i + 1) == SQLITE_INTEGER)
                json_object_set_new(o, extra[i], json_integer(sqlite3_column_int64(st, i + 1)));
            else
                json_object_set_new(o, extra[i],
                                    json_string((const char *)sqlite3_column_text(st, i + 1)));
        }
        json_array_append_new(list, o);
    }
    if (rc != SQLITE_DONE) {
        json_decref(list);
        return db_fail(sv, st, err);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&sv->lock);
    *out = list;
    return 0;
}

static const char *const service_extra[] = {"created", "updated", NULL};

int fp_services_list(fp_services *sv, json_t **out, fp_error *err)
{
    return select_json(sv, "SELECT spec, created, updated FROM services ORDER BY name", NULL,
                       service_extra, out, err);
}

int fp_services_get(fp_services *sv, const char *name, json_t **out, fp_error *err)
{
    json_t *list;
    if (select_json(sv, "SELECT spec, created, updated FROM services WHERE name = ?1", name,
                    service_extra, &list, err) < 0)
        return -1;
    if (json_array_size(list) == 0) {
        json_decref(list);
        return 1;
    }
    *out = json_incref(json_array_get(list, 0));
    json_decref(list);
    return 0;
}

bool fp_service_placed_on(const json_t *def, const char *id, const char *role)
{
    const char *node = json_string_value(json_object_get(def, "node"));
    const char *r = json_string_value(json_object_get(def, "role"));
    if (node && node[0]) return strcmp(node, id) == 0;
    return r && r[0] && role && strcmp(r, role) == 0;
}

void fp_service_place_of(const json_t *def, fp_place_service *out)
{
    *out = (fp_place_service){
        .name = json_string_value(json_object_get(def, "name")) ?: "",
        .node = json_string_value(json_object_get(def, "node")) ?: "",
        .role = json_string_value(json_object_get(def, "role")) ?: "",
        .always_on = json_is_true(json_object_get(def, "always_on")),
        .replicas = (unsigned)json_integer_value(json_object_get(def, "replicas")),
        .labels = json_string_value(json_object_get(def, "labels")),
        .prefer_label = json_string_value(json_object_get(def, "prefer_label")),
        .near = json_string_value(json_object_get(def, "near")),
        .memory = (uint64_t)json_integer_value(json_object_get(def, "memory")),
    };
}

bool fp_service_placed(const json_t *placements, const json_t *def, const char *id,
                       const char *role)
{
    fp_place_service ps;
    fp_service_place_of(def, &ps);
    if (!fp_place_dynamic(&ps)) return fp_service_placed_on(def, id, role);
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(placements, ps.name), i,
                       n) if (!strcmp(json_string_value(n) ?: "", id)) return true;
    return false;
}

int fp_services_placements(fp_services *sv, json_t **out, fp_error *err)
{
    pthread_mutex_lock(&sv->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sv->db,
                           "SELECT service, node FROM placements ORDER BY service, since, node", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(sv, st, err);
    json_t *by = json_object();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *svc = (const char *)sqlite3_column_text(st, 0);
        json_t *list = json_object_get(by, svc);
        if (!list) json_object_set_new(by, svc, list = json_array());
        json_array_append_new(list, json_string((const char *)sqlite3_column_text(st, 1)));
    }
    if (rc != SQLITE_DONE) {
        json_decref(by);
        return db_fail(sv, st, err);
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&sv->lock);
    *out = by;
    return 0;
}

int fp_services_set_placements(fp_services *sv, const json_t *placements, fp_error *err)
{
    pthread_mutex_lock(&sv->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(sv->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return db_fail(sv, st, err);
    /* rows that stay keep their "since": mark, insert or unmark, sweep */
    if (sqlite3_exec(sv->db, "UPDATE placements SET since = -since - 1", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(sv->db,
                           "INSERT INTO placements(service, node, since) VALUES (?1, ?2, ?3) "
                           "ON CONFLICT(service, node) DO UPDATE SET since = -since - 1",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    const char *svc;
    json_t *list;
    json_object_foreach((json_t *)placements, svc, list)
    {
        size_t i;
        json_t *n;
        json_array_foreach(list, i, n)
        {
            if (!json_is_string(n)) continue;
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, svc, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 2, json_string_value(n), -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
            if (sqlite3_step(st) != SQLITE_DONE) goto fail;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(sv->db, "DELETE FROM placements WHERE since < 0", NULL, NULL, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(sv->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    pthread_mutex_unlock(&sv->lock);
    return 0;
fail:
    fp_error_set(err, 0, "control.db: %s", sqlite3_errmsg(sv->db));
    sqlite3_finalize(st);
    sqlite3_exec(sv->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&sv->lock);
    return -1;
}

int fp_services_report(fp_services *sv, const char *node, const json_t *instances, fp_error *err)
{
    pthread_mutex_lock(&sv->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_exec(sv->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) return db_fail(sv, st, err);
    if (sqlite3_prepare_v2(sv->db, "DELETE FROM instances WHERE node = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        goto fail;
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) goto fail;
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(sv->db,
                           "INSERT OR REPLACE INTO instances(node, service, report, reported) "
                           "VALUES (?1, ?2, ?3, ?4)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    size_t i;
    json_t *it;
    json_array_foreach(instances, i, it)
    {
        const char *svc = json_string_value(json_object_get(it, "service"));
        if (!svc || !fp_service_name_valid(svc)) continue;
        char *text = json_dumps(it, JSON_COMPACT);
        if (!text) continue;
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, svc, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
        int rc = sqlite3_step(st);
        free(text);
        if (rc != SQLITE_DONE) goto fail;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_exec(sv->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    pthread_mutex_unlock(&sv->lock);
    return 0;
fail:
    fp_error_set(err, 0, "control.db: %s", sqlite3_errmsg(sv->db));
    sqlite3_finalize(st);
    sqlite3_exec(sv->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&sv->lock);
    return -1;
}

int fp_services_violation(fp_services *sv, const char *node, const char *service,
                          const json_t *record, fp_error *err)
{
    const char *id = json_string_value(json_object_get(record, "id"));
    if (!id || !json_is_object(record)) return fp_error_set(err, 0, "violation: no id");
    char *text = json_dumps(record, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) return fp_error_set(err, ENOMEM, "violation");
    pthread_mutex_lock(&sv->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(sv->db,
                           "INSERT OR IGNORE INTO violations(node, service, id, recorded, report) "
                           "VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &st, NULL) != SQLITE_OK) {
        free(text);
        return db_fail(sv, st, err);
    }
    sqlite3_bind_text(st, 1, node, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, service, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
    sqlite3_bind_text(st, 5, text, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    free(text);
    if (rc != SQLITE_DONE) return db_fail(sv, st, err);
    int added = sqlite3_changes(sv->db);
    sqlite3_finalize(st);
    if (added && trim_violations(sv) < 0)
        fp_warn("event=violations_trim_failed error=\"%s\"", sqlite3_errmsg(sv->db));
    pthread_mutex_unlock(&sv->lock);
    return added ? 0 : 1;
}

int fp_services_violations(fp_services *sv, const char *service, json_t **out, fp_error *err)
{
    static const char *const extra[] = {"seq", "node", "service", "recorded", NULL};
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT report, seq, node, service, recorded FROM (SELECT * FROM violations %s "
             "ORDER BY seq DESC LIMIT %d) ORDER BY seq",
             service ? "WHERE service = ?1" : "", FP_VIOLATIONS_MAX);
    return select_json(sv, sql, service, extra, out, err);
}

int fp_services_instances(fp_services *sv, json_t **out, fp_error *err)
{
    static const char *const extra[] = {"node", "reported", NULL};
    return select_json(sv, "SELECT report, node, reported FROM instances ORDER BY service, node",
                       NULL, extra, out, err);
}
