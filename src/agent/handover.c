#include "agent/handover.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fs.h"
#include "core/log.h"
#include "federation/directory.h"
#include "federation/etcd.h"

#define FOGS_PREFIX  "/fogport/fogs/"
#define CLAIM_PREFIX "/fogport/always-on/"
#define ROOT_PREFIX  "/fogport/"
/* stop a claimed copy this long before the lease can expire in etcd */
#define FENCE_MARGIN_MS 1000

struct fp_handover {
    const fp_config *cfg;
    fp_etcd etcd;
    char path[FP_PATH_MAX + 32]; /* always-on.json */
    int64_t ttl_ms, dead_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    /* under lock */
    int64_t lease;          /* 0: none yet, or lost */
    int64_t deadline;       /* monotonic ms: claims are ours until then */
    int64_t snapshot_at;    /* monotonic ms of the last good range */
    json_t *alive;          /* array: fog ids with a key in etcd */
    json_t *claims;         /* object: service -> {"fog", "lease"} */
    json_t *peers;          /* array of {"definition", "node"}: the cloud's always-on list */
    int64_t started;        /* monotonic ms */
    int64_t cloud_seen;     /* monotonic ms of the last answer (0: none since start) */
    int64_t cloud_back;     /* ...and of the first answer after a silence */
    json_t *want_claim;     /* object: names to claim at the next round */
    json_t *want_release;   /* object: names to release */
    bool fog_mode_reported; /* for the log: the mode changes */
};

static int64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *fp_handover_rank(const char *const *alive, size_t n, const char *leaving)
{
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!alive[i] || !alive[i][0] || (leaving && !strcmp(alive[i], leaving))) continue;
        if (!best || strcmp(alive[i], best) < 0) best = alive[i];
    }
    return best;
}

bool fp_handover_kind(const json_t *def)
{
    const char *node = json_string_value(json_object_get(def, "node"));
    return json_is_true(json_object_get(def, "always_on")) && node && node[0] &&
           json_integer_value(json_object_get(def, "replicas")) == 0;
}

static const char *name_of(const json_t *def)
{
    return json_string_value(json_object_get(def, "name"));
}

/* ---- the etcd side (the thread) ------------------------------------- */

static void take_snapshot(fp_handover *h, fp_etcd_kv *kvs, size_t n)
{
    json_t *alive = json_array(), *claims = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *k = kvs[i].key;
        if (!strncmp(k, FOGS_PREFIX, strlen(FOGS_PREFIX))) {
            json_array_append_new(alive, json_string(k + strlen(FOGS_PREFIX)));
        } else if (!strncmp(k, CLAIM_PREFIX, strlen(CLAIM_PREFIX))) {
            json_t *v = json_loads(kvs[i].value, 0, NULL);
            json_object_set_new(claims, k + strlen(CLAIM_PREFIX),
                                json_pack("{s:s, s:I}", "fog",
                                          json_string_value(json_object_get(v, "fog")) ?: "",
                                          "lease", (json_int_t)kvs[i].lease));
            json_decref(v);
        }
    }
    pthread_mutex_lock(&h->lock);
    json_decref(h->alive);
    json_decref(h->claims);
    h->alive = alive;
    h->claims = claims;
    h->snapshot_at = mono_now();
    pthread_mutex_unlock(&h->lock);
}

static bool refresh(fp_handover *h)
{
    fp_etcd_kv *kvs = NULL;
    size_t n = 0;
    fp_error err;
    if (fp_etcd_range_prefix(&h->etcd, ROOT_PREFIX, &kvs, &n, &err) < 0) {
        fp_debug("event=etcd_range_failed error=\"%s\"", err.msg);
        return false;
    }
    take_snapshot(h, kvs, n);
    fp_etcd_kvs_free(kvs, n);
    return true;
}

/* The lease: granted (with this fog's key under it) or renewed. */
static void keep_lease(fp_handover *h)
{
    fp_error err;
    pthread_mutex_lock(&h->lock);
    int64_t lease = h->lease;
    pthread_mutex_unlock(&h->lock);
    int64_t sent = mono_now(), ttl = 0;
    if (!lease) {
        if (fp_etcd_lease_grant(&h->etcd, (unsigned)(h->ttl_ms / 1000), &lease, &err) < 0) {
            fp_debug("event=etcd_lease_failed error=\"%s\"", err.msg);
            return;
        }
        char key[256], value[512];
        snprintf(key, sizeof key, FOGS_PREFIX "%s", h->cfg->node_id);
        json_t *v = json_pack("{s:s}", "fog", h->cfg->node_id);
        char *text = json_dumps(v, JSON_COMPACT);
        json_decref(v);
        snprintf(value, sizeof value, "%s", text ? text : "{}");
        free(text);
        if (fp_etcd_put(&h->etcd, key, value, lease, &err) < 0) {
            fp_warn("event=etcd_register_failed error=\"%s\"", err.msg);
            fp_etcd_lease_revoke(&h->etcd, lease, &err);
            return;
        }
        ttl = h->ttl_ms / 1000;
        fp_info("event=etcd_lease lease=%" PRId64 " ttl_s=%" PRId64, lease, ttl);
    } else if (fp_etcd_lease_keepalive(&h->etcd, lease, &ttl, &err) < 0) {
        fp_debug("event=etcd_keepalive_failed error=\"%s\"", err.msg);
        return; /* the deadline stays: past it, claimed copies stop */
    }
    pthread_mutex_lock(&h->lock);
    if (ttl <= 0) { /* expired in etcd: what we claimed is gone */
        fp_warn("event=etcd_lease_lost lease=%" PRId64, lease);
        h->lease = 0;
        h->deadline = 0;
    } else {
        h->lease = lease;
        /* from when the keepalive left: etcd counts from when it arrived */
        h->deadline = sent + ttl * 1000 - FENCE_MARGIN_MS;
    }
    pthread_mutex_unlock(&h->lock);
}

static void claim_value(const char *fog, char *out, size_t n)
{
    json_t *v = json_pack("{s:s, s:I}", "fog", fog, "since", (json_int_t)time(NULL));
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    snprintf(out, n, "%s", text ? text : "{}");
    free(text);
    json_decref(v);
}

/* Claims and releases the agent's pass asked for. */
static bool act(fp_handover *h)
{
    pthread_mutex_lock(&h->lock);
    json_t *claim = h->want_claim, *release = h->want_release;
    h->want_claim = json_object();
    h->want_release = json_object();
    int64_t lease = h->lease;
    pthread_mutex_unlock(&h->lock);
    bool changed = false;
    const char *name;
    json_t *v;
    fp_error err;
    json_object_foreach(claim, name, v)
    {
        if (!lease) break;
        char key[256], value[512];
        snprintf(key, sizeof key, CLAIM_PREFIX "%s", name);
        claim_value(h->cfg->node_id, value, sizeof value);
        bool ok = false;
        if (fp_etcd_txn(&h->etcd, fp_etcd_txn_create_body(key, value, lease), &ok, &err) < 0)
            fp_warn("event=handover_claim_failed service=%s error=\"%s\"", name, err.msg);
        else if (ok)
            fp_info("event=handover_claimed service=%s from=%s lease=%" PRId64, name,
                    json_string_value(v) ?: "", lease);
        else
            fp_info("event=handover_claim_lost service=%s", name);
        changed = true;
    }
    json_object_foreach(release, name, v)
    {
        if (!lease) break; /* lease 0 would match keys without one */
        char key[256];
        snprintf(key, sizeof key, CLAIM_PREFIX "%s", name);
        bool ok = false;
        if (fp_etcd_txn(&h->etcd, fp_etcd_txn_delete_if_lease_body(key, lease), &ok, &err) < 0)
            fp_warn("event=handover_release_failed service=%s error=\"%s\"", name, err.msg);
        else if (ok)
            fp_info("event=handover_released service=%s", name);
        changed = true;
    }
    json_decref(claim);
    json_decref(release);
    return changed;
}

static void *handover_main(void *arg)
{
    fp_handover *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->lock);
        bool stop = h->stop;
        pthread_mutex_unlock(&h->lock);
        if (stop) break;
        keep_lease(h);
        refresh(h);
        if (act(h)) refresh(h);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        int64_t ns = until.tv_nsec + (h->ttl_ms / 3) * 1000000;
        until.tv_sec += ns / 1000000000;
        until.tv_nsec = ns % 1000000000;
        pthread_mutex_lock(&h->lock);
        /* woken early when the agent's pass wants a claim */
        if (!h->stop && !json_object_size(h->want_claim) && !json_object_size(h->want_release))
            pthread_cond_timedwait(&h->wake, &h->lock, &until);
        pthread_mutex_unlock(&h->lock);
    }
    return NULL;
}

/* ---- the agent side ------------------------------------------------- */

void fp_handover_cloud_answered(fp_handover *h, const json_t *doc)
{
    if (!h) return;
    json_t *list = json_object_get(doc, "always_on");
    int64_t now = mono_now();
    pthread_mutex_lock(&h->lock);
    if (!h->cloud_seen || now - h->cloud_seen > h->dead_ms) {
        h->cloud_back = now;
        if (h->fog_mode_reported) fp_info("event=handover_cloud_back");
        h->fog_mode_reported = false;
    }
    h->cloud_seen = now;
    bool changed = json_is_array(list) && !json_equal(list, h->peers);
    if (changed) {
        json_decref(h->peers);
        h->peers = json_incref(list);
    }
    pthread_mutex_unlock(&h->lock);
    if (changed) {
        char *text = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
        fp_error err;
        if (text && fp_write_file_atomic(h->path, text, strlen(text), 0600, &err) < 0)
            fp_warn("event=always_on_save_failed error=\"%s\"", err.msg);
        free(text);
    }
}

static bool in_array(const json_t *a, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (!strcmp(json_string_value(v) ?: "", s)) return true;
    return false;
}

static bool in_desired(const json_t *desired, const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(desired, i, d) if (!strcmp(name_of(d) ?: "", name)) return true;
    return false;
}

void fp_handover_view_of(fp_handover *h, const json_t *desired, fp_handover_view *v)
{
    v->services = json_array();
    v->claimed = json_object();
    v->held = json_object();
    v->fenced = json_object();
    size_t i;
    json_t *def;
    if (!h) {
        json_array_extend(v->services, (json_t *)desired);
        return;
    }
    int64_t now = mono_now();
    pthread_mutex_lock(&h->lock);
    bool cloud = h->cloud_seen && now - h->cloud_seen <= h->dead_ms;
    bool fog_mode = !cloud && now - (h->cloud_seen ? h->cloud_seen : h->started) > h->dead_ms;
    /* the cloud has answered long enough for every fog to follow it */
    bool settled = cloud && now - h->cloud_back > h->dead_ms;
    bool leased = h->lease && now < h->deadline;
    bool known = leased && now - h->snapshot_at < h->ttl_ms;
    if (fog_mode && !h->fog_mode_reported) {
        fp_warn("event=handover_fog_mode silent_ms=%" PRId64 " leased=%s",
                now - (h->cloud_seen ? h->cloud_seen : h->started), leased ? "true" : "false");
        h->fog_mode_reported = true;
    }
    const char *self = h->cfg->node_id;
    bool wake = false;
    json_array_foreach(desired, i, def)
    {
        const char *name = name_of(def);
        if (!name || !fp_handover_kind(def)) {
            json_array_append(v->services, def);
            continue;
        }
        json_t *c = known ? json_object_get(h->claims, name) : NULL;
        bool mine = c && json_integer_value(json_object_get(c, "lease")) == h->lease;
        if (c && !mine) continue; /* another fog runs it on its claim */
        if (cloud) {
            json_array_append(v->services, def);
        } else if (fog_mode) {
            if (mine) {
                json_array_append(v->services, def);
            } else if (known) { /* ours to claim: the cloud placed it here */
                json_array_append(v->services, def);
                json_object_set_new(v->held, name, json_true());
                json_object_set_new(h->want_claim, name, json_string(self));
                wake = true;
            } else { /* no lease: not ours to run */
                json_object_set_new(v->fenced, name, json_true());
            }
        } else { /* just started, the cloud not heard yet: wait */
            json_array_append(v->services, def);
            json_object_set_new(v->held, name, json_true());
        }
    }
    /* the other fogs' always-on services */
    json_array_foreach(h->peers, i, def)
    {
        json_t *d = json_object_get(def, "definition");
        const char *name = name_of(d), *node = json_string_value(json_object_get(def, "node"));
        if (!name || !node || !fp_handover_kind(d) || in_desired(desired, name)) continue;
        json_t *c = known ? json_object_get(h->claims, name) : NULL;
        bool mine = c && json_integer_value(json_object_get(c, "lease")) == h->lease;
        if (mine && (fog_mode || (cloud && !settled))) {
            /* run on this fog's claim until the cloud has adopted it */
            json_array_append(v->services, d);
            json_object_set_new(v->claimed, name, json_true());
        } else if (!c && fog_mode && known && !in_array(h->alive, node)) {
            const char *ids[64];
            size_t n = 0, k;
            json_t *a;
            json_array_foreach(h->alive, k, a) if (n < 64) ids[n++] = json_string_value(a);
            const char *to = fp_handover_rank(ids, n, node);
            if (to && !strcmp(to, self)) {
                json_object_set_new(h->want_claim, name, json_string(node));
                wake = true;
            }
        }
    }
    /* the cloud is back and every fog follows it again: no claim of ours
     * stays (a stale one would keep the cloud's choice from running) */
    const char *cname;
    json_t *c;
    if (settled && known) {
        json_object_foreach(h->claims, cname, c)
        {
            if (json_integer_value(json_object_get(c, "lease")) == h->lease)
                json_object_set_new(h->want_release, cname, json_true());
        }
    }
    if (wake || json_object_size(h->want_release)) pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->lock);
}

void fp_handover_view_free(fp_handover_view *v)
{
    json_decref(v->services);
    json_decref(v->claimed);
    json_decref(v->held);
    json_decref(v->fenced);
    memset(v, 0, sizeof *v);
}

int fp_handover_start(fp_handover **out, const fp_config *cfg, const char *state_dir, fp_error *err)
{
    *out = NULL;
    if (!cfg->control_etcd[0]) return 0;
    fp_handover *h = calloc(1, sizeof *h);
    if (!h) return fp_error_set(err, ENOMEM, "handover");
    if (fp_etcd_init(&h->etcd, cfg->control_etcd, err) < 0) {
        free(h);
        return -1;
    }
    h->cfg = cfg;
    unsigned ttl = cfg->control_lease_s ? cfg->control_lease_s : 5;
    if (ttl < 2) ttl = 2;
    h->ttl_ms = (int64_t)ttl * 1000;
    h->dead_ms = (int64_t)(cfg->control_dead_s ? cfg->control_dead_s : 6) * 1000;
    h->etcd.timeout_ms = h->ttl_ms / 3;
    snprintf(h->path, sizeof h->path, "%s/always-on.json", state_dir);
    json_t *saved = json_load_file(h->path, 0, NULL);
    h->peers = json_is_array(saved) ? saved : json_array();
    if (!json_is_array(saved)) json_decref(saved);
    h->alive = json_array();
    h->claims = json_object();
    h->want_claim = json_object();
    h->want_release = json_object();
    h->started = mono_now();
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    if (pthread_create(&h->thread, NULL, handover_main, h) != 0) {
        fp_error_set(err, EAGAIN, "start handover");
        h->thread = 0;
        fp_handover_stop(h);
        return -1;
    }
    fp_info("event=handover_started etcd=%s lease_s=%u", cfg->control_etcd, ttl);
    *out = h;
    return 0;
}

void fp_handover_stop(fp_handover *h)
{
    if (!h) return;
    pthread_mutex_lock(&h->lock);
    h->stop = true;
    pthread_cond_broadcast(&h->wake);
    pthread_mutex_unlock(&h->lock);
    if (h->thread) pthread_join(h->thread, NULL);
    json_decref(h->alive);
    json_decref(h->claims);
    json_decref(h->peers);
    json_decref(h->want_claim);
    json_decref(h->want_release);
    pthread_cond_destroy(&h->wake);
    pthread_mutex_destroy(&h->lock);
    free(h);
}
