#include "control/usage.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/spec.h"
#include "core/config.h"
#include "core/fs.h"

struct fp_usage {
    sqlite3 *db;
    pthread_mutex_t lock; /* the connection, the ring and last */
    time_t folded_to;     /* samples before this are folded already */
    /* "node\nservice" -> {state, restarts, oom_kills} as last reported:
     * what the next report is compared with to find events */
    json_t *last;
    json_t *ring[FP_USAGE_EVENTS_MAX];
    uint64_t next_id; /* id of the next event; ring[id % MAX] */
};

/* period: 1 for a sample as reported, the bucket length for an average.
 * Usage columns are NULL when the instance had none (not running). */
static const char schema[] =
    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS usage(t INTEGER NOT NULL, node TEXT NOT NULL, "
    "  service TEXT NOT NULL, state TEXT NOT NULL, cpu REAL, memory INTEGER, "
    "  memory_limit INTEGER, pids INTEGER, restarts INTEGER NOT NULL, "
    "  oom_kills INTEGER NOT NULL, period INTEGER NOT NULL DEFAULT 1);"
    "CREATE INDEX IF NOT EXISTS usage_t ON usage(t);"
    "CREATE INDEX IF NOT EXISTS usage_service ON usage(service, node, t);";

static int db_error(fp_usage *u, sqlite3_stmt *st, fp_error *err)
{
    fp_error_set(err, 0, "control.db usage: %s", sqlite3_errmsg(u->db));
    sqlite3_finalize(st);
    return -1;
}

static void remember(fp_usage *u, const char *node, const char *service, const char *state,
                     json_int_t restarts, json_int_t oom_kills, const char *error)
{
    char key[256];
    snprintf(key, sizeof key, "%s\n%s", node, service);
    json_object_set_new(u->last, key,
                        json_pack("{s:s, s:I, s:I, s:s?}", "state", state, "restarts", restarts,
                                  "oom_kills", oom_kills, "error", error));
}

/* After a restart of the cloud, the last few minutes' samples say what
 * was running, so instances that did not change raise no events. */
static int seed_last(fp_usage *u, fp_error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(u->db,
                           "SELECT node, service, state, restarts, oom_kills FROM usage WHERE "
                           "rowid IN (SELECT max(rowid) FROM usage WHERE t >= ?1 AND period = 1 "
                           "GROUP BY node, service)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_error(u, st, err);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)time(NULL) - 300);
    while (sqlite3_step(st) == SQLITE_ROW)
        remember(u, (const char *)sqlite3_column_text(st, 0),
                 (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2),
                 sqlite3_column_int64(st, 3), sqlite3_column_int64(st, 4), NULL);
    sqlite3_finalize(st);
    return 0;
}

int fp_usage_open(fp_usage **out, const char *data_dir, fp_error *err)
{
    char path[FP_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/control.db", data_dir);
    if (fp_mkdir_p(data_dir, 0700, err) < 0) return -1;
    fp_usage *u = calloc(1, sizeof *u);
    if (!u) return fp_error_set(err, ENOMEM, "usage");
    pthread_mutex_init(&u->lock, NULL);
    u->last = json_object();
    u->next_id = 1;
    char *msg = NULL;
    if (sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
            SQLITE_OK ||
        sqlite3_busy_timeout(u->db, 5000) != SQLITE_OK ||
        sqlite3_exec(u->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        fp_error_set(err, 0, "open %s: %s", path, msg ? msg : sqlite3_errmsg(u->db));
        sqlite3_free(msg);
        fp_usage_close(u);
        return -1;
    }
    if (seed_last(u, err) < 0) {
        fp_usage_close(u);
        return -1;
    }
    *out = u;
    return 0;
}

void fp_usage_close(fp_usage *u)
{
    if (!u) return;
    sqlite3_close(u->db);
    json_decref(u->last);
    for (size_t i = 0; i < FP_USAGE_EVENTS_MAX; i++)
        json_decref(u->ring[i]);
    pthread_mutex_destroy(&u->lock);
    free(u);
}

/* Under the lock. */
static void push_event(fp_usage *u, time_t now, const char *node, const char *service,
                       const char *event, const char *state, const char *from, const json_t *it)
{
    json_t *e = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:s?, s:I, s:I}", "id",
                          (json_int_t)u->next_id, "time", (json_int_t)now, "node", node, "service",
                          service, "event", event, "state", state, "from", from, "restarts",
                          json_integer_value(json_object_get(it, "restarts")), "oom_kills",
                          json_integer_value(json_object_get(it, "oom_kills")));
    if (!e) return;
    json_t *code = json_object_get(it, "exit_code");
    if (json_is_integer(code) && (!strcmp(state, "exited") || !strcmp(state, "failed")))
        json_object_set(e, "exit_code", code);
    /* why it went there (a failed pull, an image with no manifest for the
     * node), as the agent reported it */
    json_t *why = json_object_get(it, "error");
    if (json_is_string(why) && json_string_length(why) && strcmp(state, "removed") != 0)
        json_object_set(e, "error", why);
    size_t slot = u->next_id % FP_USAGE_EVENTS_MAX;
    json_decref(u->ring[slot]);
    u->ring[slot] = e;
    u->next_id++;
}

uint64_t fp_usage_event(fp_usage *u, time_t now, const char *node, const char *service,
                        const char *event, const char *from)
{
    pthread_mutex_lock(&u->lock);
    uint64_t id = u->next_id;
    push_event(u, now, node, service, event, "placed", from, NULL);
    pthread_mutex_unlock(&u->lock);
    return id;
}

/* What entering a state is called as an event. */
static const char *state_event(const char *state)
{
    if (!strcmp(state, "violated")) return "violation"; /* stopped by the agent's policy */
    return !strcmp(state, "running") ? "started" : state;
}

/* Under the lock: compare one instance's report with the previous one. */
static int diff_instance(fp_usage *u, time_t now, const char *node, const char *service,
                         const char *state, const json_t *it)
{
    char key[256];
    snprintf(key, sizeof key, "%s\n%s", node, service);
    json_t *prev = json_object_get(u->last, key);
    const char *was = json_string_value(json_object_get(prev, "state"));
    json_int_t restarts = json_integer_value(json_object_get(it, "restarts"));
    json_int_t ooms = json_integer_value(json_object_get(it, "oom_kills"));
    const char *why = json_string_value(json_object_get(it, "error"));
    const char *had = json_string_value(json_object_get(prev, "error"));
    int n = 0;
    if (prev && ooms > json_integer_value(json_object_get(prev, "oom_kills"))) {
        push_event(u, now, node, service, "oom_killed", state, was, it);
        n++;
    }
    if (!was || strcmp(was, state) != 0) {
        push_event(u, now, node, service, state_event(state), state, was, it);
        n++;
    } else if (restarts > json_integer_value(json_object_get(prev, "restarts"))) {
        /* it went down and came back between two reports */
        push_event(u, now, node, service, "restarted", state, was, it);
        n++;
    } else if (why && *why && (!had || strcmp(had, why) != 0)) {
        /* the same state with a new error: a replacement whose image
         * cannot be fetched while the old instance runs on, a retry that
         * failed differently */
        push_event(u, now, node, service, "error", state, was, it);
        n++;
    }
    remember(u, node, service, state, restarts, ooms, why);
    return n;
}

/* Under the lock: instances node reported before and no longer does. */
static int diff_removed(fp_usage *u, time_t now, const char *node, const json_t *instances)
{
    size_t nlen = strlen(node);
    const char *key;
    json_t *prev, *tmp;
    int n = 0;
    json_object_foreach_safe(u->last, tmp, key, prev)
    {
        if (strncmp(key, node, nlen) != 0 || key[nlen] != '\n') continue;
        const char *service = key + nlen + 1;
        bool still = false;
        size_t i;
        json_t *it;
        json_array_foreach(instances, i, it)
        {
            const char *s = json_string_value(json_object_get(it, "service"));
            if (s && !strcmp(s, service)) still = true;
        }
        if (still) continue;
        push_event(u, now, node, service, "removed", "removed",
                   json_string_value(json_object_get(prev, "state")), prev);
        json_object_del(u->last, key);
        n++;
    }
    return n;
}

static void bind_usage(sqlite3_stmt *st, int col, const json_t *usage, const char *key)
{
    json_t *v = json_object_get(usage, key);
    if (json_is_real(v))
        sqlite3_bind_double(st, col, json_real_value(v));
    else if (json_is_integer(v))
        sqlite3_bind_int64(st, col, json_integer_value(v));
    else
        sqlite3_bind_null(st, col);
}

int fp_usage_record(fp_usage *u, const char *node, const json_t *instances, time_t now,
                    fp_error *err)
{
    pthread_mutex_lock(&u->lock);
    sqlite3_stmt *st = NULL;
    int events = 0;
    if (sqlite3_exec(u->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    if (sqlite3_prepare_v2(u->db,
                           "INSERT INTO usage(t, node, service, state, cpu, memory, memory_limit, "
                           "pids, restarts, oom_kills) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, "
                           "?9, ?10)",
                           -1, &st, NULL) != SQLITE_OK)
        goto fail;
    size_t i;
    json_t *it;
    json_array_foreach(instances, i, it)
    {
        const char *service = json_string_value(json_object_get(it, "service"));
        const char *state = json_string_value(json_object_get(it, "state"));
        if (!service || !fp_service_name_valid(service) || !state || strlen(state) > 32) continue;
        const json_t *usage = json_object_get(it, "usage");
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)now);
        sqlite3_bind_text(st, 2, node, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, service, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, state, -1, SQLITE_STATIC);
        bind_usage(st, 5, usage, "cpu");
        bind_usage(st, 6, usage, "memory");
        bind_usage(st, 7, usage, "memory_limit");
        bind_usage(st, 8, usage, "pids");
        sqlite3_bind_int64(st, 9, json_integer_value(json_object_get(it, "restarts")));
        sqlite3_bind_int64(st, 10, json_integer_value(json_object_get(it, "oom_kills")));
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
        events += diff_instance(u, now, node, service, state, it);
    }
    sqlite3_finalize(st);
    st = NULL;
    events += diff_removed(u, now, node, instances);
    if (sqlite3_exec(u->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    pthread_mutex_unlock(&u->lock);
    return events;
fail:
    fp_error_set(err, 0, "control.db usage: %s", sqlite3_errmsg(u->db));
    sqlite3_finalize(st);
    sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&u->lock);
    return -1;
}

static void set_column(json_t *o, const char *key, sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        json_object_set_new(o, key, json_integer(sqlite3_column_int64(st, col)));
        break;
    case SQLITE_FLOAT:
        json_object_set_new(o, key, json_real(sqlite3_column_double(st, col)));
        break;
    case SQLITE_TEXT:
        json_object_set_new(o, key, json_string((const char *)sqlite3_column_text(st, col)));
        break;
    default:
        json_object_set_new(o, key, json_null());
    }
}

int fp_usage_query(fp_usage *u, const fp_usage_filter *f, json_t **out, fp_error *err)
{
    static const char *const cols[] = {"t",        "node",      "service",      "state",
                                       "cpu",      "memory",    "memory_limit", "pids",
                                       "restarts", "oom_kills", "period"};
    size_t limit = f->limit && f->limit < FP_USAGE_QUERY_MAX ? f->limit : FP_USAGE_QUERY_MAX;
    pthread_mutex_lock(&u->lock);
    sqlite3_stmt *st = NULL;
    /* newest first to take the newest `limit`, reversed below */
    if (sqlite3_prepare_v2(u->db,
                           "SELECT t, node, service, state, cpu, memory, memory_limit, pids, "
                           "restarts, oom_kills, period FROM usage WHERE (?1 IS NULL OR service "
                           "= ?1) AND (?2 IS NULL OR node = ?2) AND t >= ?3 "
                           "ORDER BY t DESC, rowid DESC LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK) {
        db_error(u, st, err);
        pthread_mutex_unlock(&u->lock);
        return -1;
    }
    if (f->service) sqlite3_bind_text(st, 1, f->service, -1, SQLITE_STATIC);
    if (f->node) sqlite3_bind_text(st, 2, f->node, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, f->since);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_object();
        for (int c = 0; c < (int)(sizeof cols / sizeof cols[0]); c++)
            set_column(o, cols[c], st, c);
        json_array_insert_new(list, 0, o);
    }
    if (rc != SQLITE_DONE) {
        json_decref(list);
        db_error(u, st, err);
        pthread_mutex_unlock(&u->lock);
        return -1;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&u->lock);
    *out = list;
    return 0;
}

int fp_usage_prune(fp_usage *u, time_t now, fp_error *err)
{
    time_t cut = (now - FP_USAGE_FULL_S) / FP_USAGE_BUCKET_S * FP_USAGE_BUCKET_S;
    pthread_mutex_lock(&u->lock);
    if (cut <= u->folded_to) {
        pthread_mutex_unlock(&u->lock);
        return 0;
    }
    /* One bucket per node, service and minute: averages of the gauges, the
     * counters' highest value, the state of the bucket's last sample. */
    static const char fold[] =
        "INSERT INTO usage(t, node, service, state, cpu, memory, memory_limit, pids, restarts, "
        "  oom_kills, period) "
        "SELECT b.t / ?3 * ?3, b.node, b.service, "
        "  (SELECT s.state FROM usage s WHERE s.service = b.service AND s.node = b.node AND "
        "   s.period = 1 AND s.t / ?3 = b.t / ?3 ORDER BY s.t DESC, s.rowid DESC LIMIT 1), "
        "  avg(b.cpu), CAST(avg(b.memory) AS INTEGER), max(b.memory_limit), "
        "  CAST(round(avg(b.pids)) AS INTEGER), max(b.restarts), max(b.oom_kills), ?3 "
        "FROM usage b WHERE b.period = 1 AND b.t < ?1 GROUP BY b.node, b.service, b.t / ?3;"
        "";
    sqlite3_stmt *st = NULL;
    const char *steps[] = {fold, "DELETE FROM usage WHERE period = 1 AND t < ?1",
                           "DELETE FROM usage WHERE t < ?2"};
    if (sqlite3_exec(u->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (sqlite3_prepare_v2(u->db, steps[i], -1, &st, NULL) != SQLITE_OK) goto fail;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)cut);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)(now - FP_USAGE_KEEP_S));
        sqlite3_bind_int64(st, 3, FP_USAGE_BUCKET_S);
        if (sqlite3_step(st) != SQLITE_DONE) goto fail;
        sqlite3_finalize(st);
        st = NULL;
    }
    if (sqlite3_exec(u->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) goto fail;
    u->folded_to = cut;
    pthread_mutex_unlock(&u->lock);
    return 0;
fail:
    fp_error_set(err, 0, "control.db usage: %s", sqlite3_errmsg(u->db));
    sqlite3_finalize(st);
    sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&u->lock);
    return -1;
}

json_t *fp_usage_events(fp_usage *u, uint64_t after, const char *service, size_t max,
                        uint64_t *last)
{
    json_t *list = json_array();
    pthread_mutex_lock(&u->lock);
    uint64_t oldest = u->next_id > FP_USAGE_EVENTS_MAX ? u->next_id - FP_USAGE_EVENTS_MAX : 1;
    uint64_t from = after + 1 > oldest ? after + 1 : oldest;
    /* the last id looked at: a reader filtering by service or taking max
     * at a time resumes after it without seeing anything twice */
    uint64_t seen = after > from - 1 ? after : from - 1;
    for (uint64_t id = from; id < u->next_id && json_array_size(list) < max; id++) {
        seen = id;
        json_t *e = u->ring[id % FP_USAGE_EVENTS_MAX];
        const char *s = json_string_value(json_object_get(e, "service"));
        if (e && (!service || (s && !strcmp(s, service)))) json_array_append(list, e);
    }
    if (last) *last = seen;
    pthread_mutex_unlock(&u->lock);
    return list;
}
