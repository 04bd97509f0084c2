#include "federation/replication.h"

#include <errno.h>
#include <stdatomic.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/cloudapi.h"
#include "auth/nodes.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/name.h"

#define MAX_RULES 64
#define POLL_MS   500 /* how soon a fog takes up a new task */

struct rule {
    char repo[256], tag[128], targets[512];
    unsigned every_s; /* 0: on push */
    time_t next;
};

struct fp_replication {
    struct rule rules[MAX_RULES];
    size_t n;
};

int fp_replication_open(fp_replication **out, const char *rules_path, fp_error *err)
{
    *out = NULL;
    if (!rules_path || !rules_path[0]) return 0;
    FILE *f = fopen(rules_path, "re");
    if (!f) return fp_error_set(err, errno, "open %s", rules_path);
    fp_replication *rp = calloc(1, sizeof *rp);
    if (!rp) {
        fclose(f);
        return fp_error_set(err, ENOMEM, "replication");
    }
    char line[1024];
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char repo[256], tag[128], targets[512], mode[16] = "on-push", every[32] = "";
        int k = sscanf(line, "%255s %127s %511s %15s %31s", repo, tag, targets, mode, every);
        if (k <= 0) continue;
        struct rule *r = &rp->rules[rp->n];
        bool ok = k >= 3 && rp->n < MAX_RULES &&
                  (!strcmp(mode, "on-push")
                       ? k <= 4
                       : !strcmp(mode, "every") && k == 5 &&
                             fp_parse_duration(every, &r->every_s) == 0 && r->every_s > 0);
        if (!ok) {
            fclose(f);
            free(rp);
            return fp_error_set(err, 0,
                                "%s:%u: expected REPOSITORY TAG TARGETS [on-push | every DURATION]",
                                rules_path, lineno);
        }
        snprintf(r->repo, sizeof r->repo, "%s", repo);
        snprintf(r->tag, sizeof r->tag, "%s", tag);
        snprintf(r->targets, sizeof r->targets, "%s", targets);
        rp->n++;
    }
    fclose(f);
    *out = rp;
    return 0;
}

void fp_replication_free(fp_replication *rp)
{
    free(rp);
}

static bool targets_node(const char *targets, const fp_replication_node *n)
{
    char role[32];
    snprintf(role, sizeof role, "role:%s", n->role);
    return fp_config_list_has(targets, n->id) || fp_config_list_has(targets, role);
}

bool fp_replication_due(fp_replication *rp, time_t now)
{
    bool due = false;
    for (size_t i = 0; rp && i < rp->n; i++) {
        struct rule *r = &rp->rules[i];
        if (!r->every_s || now < r->next) continue;
        r->next = now + r->every_s;
        due = true;
    }
    return due;
}

int fp_replication_queue(fp_replication *rp, fp_directory *dir, const char *repo, const char *tag,
                         const char *digest, const fp_replication_node *nodes, size_t nnodes,
                         bool scheduled, fp_error *err)
{
    if (!rp || !dir) return 0;
    for (size_t i = 0; i < rp->n; i++) {
        struct rule *r = &rp->rules[i];
        if ((r->every_s != 0) != scheduled) continue;
        if (fnmatch(r->repo, repo, 0) != 0 || fnmatch(r->tag, tag, 0) != 0) continue;
        /* the first target is the seed: it alone crosses the uplink */
        const char *seed = NULL;
        for (size_t k = 0; k < nnodes; k++) {
            if (!targets_node(r->targets, &nodes[k])) continue;
            if (fp_directory_task_put(dir, nodes[k].id, repo, tag, digest, seed ? seed : "", err) <
                0)
                return -1;
            if (!seed) seed = nodes[k].id;
        }
        if (seed)
            fp_info("event=replication_queued repo=%s tag=%s digest=%s seed=%s", repo, tag, digest,
                    seed);
    }
    return 0;
}

/* ---- the node's side ---- */

struct fp_replicator {
    const fp_config *cfg;
    fp_federation *fed;
    fp_store *store;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stop;
    /* what /metrics tells of this node's replication (atomics: read by
     * request threads while this one works) */
    atomic_uint_fast64_t done, failed, bytes, queued;
    atomic_llong polled; /* time of the cloud's last answer; 0: none yet */
};

static int call_cloud(fp_replicator *rp, const char *path, const char *json, json_t **out,
                      fp_error *err)
{
    fp_http_response resp;
    if (fp_node_call_cloud(rp->cfg, path, json, &resp, err) < 0) return -1;
    if (out) *out = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
    fp_http_response_free(&resp);
    return 0;
}

static void report(fp_replicator *rp, json_int_t id, const char *state, uint64_t bytes,
                   const char *error)
{
    char path[64];
    snprintf(path, sizeof path, "/api/v1/replication/tasks/%lld", (long long)id);
    json_t *j = json_pack("{s:s, s:I, s:s}", "state", state, "bytes", (json_int_t)bytes, "error",
                          error ? error : "");
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    fp_error err;
    if (text && call_cloud(rp, path, text, NULL, &err) < 0)
        fp_warn("event=replication_report_failed task=%lld error=\"%s\"", (long long)id, err.msg);
    free(text);
}

static int set_tag(fp_replicator *rp, const char *repo, const char *tag, const char *digest,
                   fp_error *err)
{
    fp_manifest_row row;
    int rc = fp_store_manifest_get(rp->store, repo, digest, true, true, &row, err);
    if (rc != 0) return -1;
    fp_manifest m;
    char why[256];
    if (fp_manifest_parse(row.body, row.size, row.media_type, &m, why, sizeof why) < 0) {
        free(row.body);
        return fp_error_set(err, 0, "%s", why);
    }
    const char *tags[1] = {tag};
    char missing[FP_DIGEST_MAX];
    rc = fp_store_manifest_put_parsed(rp->store, repo, &m, digest, row.body, row.size, tags, 1,
                                      true, missing, err);
    fp_manifest_free(&m);
    free(row.body);
    return rc == 0 ? 0 : -1;
}

static void run_task(fp_replicator *rp, json_t *t)
{
    json_int_t id = json_integer_value(json_object_get(t, "id"));
    const char *repo = json_string_value(json_object_get(t, "repo"));
    const char *tag = json_string_value(json_object_get(t, "tag"));
    const char *digest = json_string_value(json_object_get(t, "digest"));
    const char *via = json_string_value(json_object_get(t, "via"));
    if (!repo || !tag || !digest || !fp_name_valid(repo, strlen(repo)) ||
        !fp_tag_valid(tag, strlen(tag)) ||
        fp_digest_parse(digest, strlen(digest), NULL) != FP_DIGEST_OK)
        return;
    fp_fed_origin o = {.hops = 0};
    if (via && fp_node_id_valid(via)) snprintf(o.via, sizeof o.via, "%s", via);
    report(rp, id, "running", 0, NULL);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t bytes = 0;
    fp_error err;
    int rc = fp_fed_hold(rp->fed, rp->store, repo, digest, &o, &bytes, &err);
    if (rc == 0) rc = set_tag(rp, repo, tag, digest, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (rc == 0) {
        fp_info("event=replicated repo=%s tag=%s digest=%s bytes=%" PRIu64 " ms=%.1f via=%s", repo,
                tag, digest, bytes, ms, o.via[0] ? o.via : "-");
        report(rp, id, "done", bytes, NULL);
        atomic_fetch_add(&rp->done, 1);
    } else {
        atomic_fetch_add(&rp->failed, 1);
        fp_warn("event=replication_failed repo=%s tag=%s error=\"%s\"", repo, tag, err.msg);
        report(rp, id, "failed", bytes, err.msg);
    }
    atomic_fetch_add(&rp->bytes, bytes);
}

static void *replicator_main(void *arg)
{
    fp_replicator *rp = arg;
    unsigned wait_ms = POLL_MS;
    for (;;) {
        pthread_mutex_lock(&rp->lock);
        bool stop = rp->stop;
        pthread_mutex_unlock(&rp->lock);
        if (stop) break;
        json_t *doc = NULL;
        fp_error err;
        if (call_cloud(rp, "/api/v1/replication/tasks", NULL, &doc, &err) == 0) {
            size_t i;
            json_t *t;
            json_t *tasks = json_object_get(doc, "tasks");
            atomic_store(&rp->polled, (long long)time(NULL));
            atomic_store(&rp->queued, json_array_size(tasks));
            json_array_foreach(tasks, i, t)
            {
                pthread_mutex_lock(&rp->lock);
                stop = rp->stop;
                pthread_mutex_unlock(&rp->lock);
                if (stop) break;
                run_task(rp, t);
                atomic_fetch_sub(&rp->queued, 1);
            }
            json_decref(doc);
            wait_ms = POLL_MS;
        } else {
            /* the cloud away, or this node revoked: ask less and less often */
            fp_debug("event=replication_poll_failed error=\"%s\"", err.msg);
            wait_ms = wait_ms * 2 > 30000 ? 30000 : wait_ms * 2;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += (long)wait_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&rp->lock);
        if (!rp->stop) pthread_cond_timedwait(&rp->wake, &rp->lock, &until);
        pthread_mutex_unlock(&rp->lock);
    }
    return NULL;
}

int fp_replicator_start(fp_replicator **out, const fp_config *cfg, fp_federation *fed,
                        fp_store *store, fp_error *err)
{
    *out = NULL;
    if (!fed || strcmp(cfg->node_role, "fog") != 0) return 0;
    fp_replicator *rp = calloc(1, sizeof *rp);
    if (!rp) return fp_error_set(err, ENOMEM, "replicator");
    rp->cfg = cfg;
    rp->fed = fed;
    rp->store = store;
    pthread_mutex_init(&rp->lock, NULL);
    pthread_cond_init(&rp->wake, NULL);
    if (pthread_create(&rp->thread, NULL, replicator_main, rp) != 0) {
        free(rp);
        return fp_error_set(err, EAGAIN, "start replicator");
    }
    *out = rp;
    return 0;
}

void fp_replicator_stats(fp_replicator *rp, struct fp_replicator_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!rp) return;
    st->done = atomic_load(&rp->done);
    st->failed = atomic_load(&rp->failed);
    st->bytes = atomic_load(&rp->bytes);
    st->queued = atomic_load(&rp->queued);
    st->polled = (time_t)atomic_load(&rp->polled);
}

void fp_replicator_stop(fp_replicator *rp)
{
    if (!rp) return;
    pthread_mutex_lock(&rp->lock);
    rp->stop = true;
    pthread_cond_signal(&rp->wake);
    pthread_mutex_unlock(&rp->lock);
    pthread_join(rp->thread, NULL);
    pthread_cond_destroy(&rp->wake);
    pthread_mutex_destroy(&rp->lock);
    free(rp);
}
