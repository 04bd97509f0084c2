/* GET /metrics (Prometheus text format), /healthz (liveness) and /readyz
 * (readiness), and the HTTP counters the request completion callback
 * bumps. Everything a scrape reads is either an atomic counter or, for what
 * takes a database query (the store's totals, the cloud's replication
 * tasks), an answer kept for a few seconds: a scrape never scans. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "control/placement.h"
#include "control/services.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/procmetrics.h"
#include "federation/directory.h"
#include "federation/replication.h"
#include "registry/registry.h"
#include "registry/request.h"

/* ---- HTTP counters (hot path: atomics only) --------------------------- */

#define CODES 600 /* status codes 0..599 */

static atomic_uint_fast64_t requests[FP_FAM_COUNT][CODES];
static atomic_uint_fast64_t bytes_in, bytes_out;
static const double duration_bounds[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,     2.5,  5,     10,   30,  60};
#define NBOUNDS (sizeof duration_bounds / sizeof duration_bounds[0])
static fp_histogram durations[FP_FAM_COUNT];
static pthread_once_t durations_once = PTHREAD_ONCE_INIT;

static void durations_init(void)
{
    for (size_t i = 0; i < FP_FAM_COUNT; i++) {
        durations[i].bounds = duration_bounds;
        durations[i].nbounds = NBOUNDS;
    }
}

void fp_metrics_request_done(fp_req *r, double seconds)
{
    pthread_once(&durations_once, durations_init);
    enum fp_route_family fam = fp_route_family(r->path, r->route.kind);
    unsigned code = r->status < CODES ? r->status : 0;
    atomic_fetch_add_explicit(&requests[fam][code], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&bytes_in, r->bytes_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&bytes_out, r->bytes_out, memory_order_relaxed);
    fp_histogram_observe(&durations[fam], seconds);
}

static void render_http(fp_buf *b)
{
    pthread_once(&durations_once, durations_init);
    fp_metrics_family(b, "fogport_http_requests_total", "counter",
                      "HTTP requests answered, by route family and status code (0: none sent).");
    for (size_t f = 0; f < FP_FAM_COUNT; f++)
        for (unsigned c = 0; c < CODES; c++) {
            uint64_t n = atomic_load_explicit(&requests[f][c], memory_order_relaxed);
            if (!n) continue;
            char code[8];
            snprintf(code, sizeof code, "%u", c);
            fp_label l[] = {{"family", fp_route_family_name((enum fp_route_family)f)},
                            {"code", code}};
            fp_metrics_sample_u64(b, "fogport_http_requests_total", l, 2, n);
        }
    fp_metrics_family(b, "fogport_http_request_duration_seconds", "histogram",
                      "Time from a request's arrival to its completion, by route family.");
    for (size_t f = 0; f < FP_FAM_COUNT; f++) {
        uint64_t any = 0;
        for (size_t i = 0; i <= NBOUNDS; i++)
            any += atomic_load_explicit(&durations[f].bucket[i], memory_order_relaxed);
        if (!any) continue;
        fp_label l[] = {{"family", fp_route_family_name((enum fp_route_family)f)}};
        fp_metrics_histogram(b, "fogport_http_request_duration_seconds", l, 1, &durations[f]);
    }
    fp_metrics_family(b, "fogport_http_received_bytes_total", "counter",
                      "Request body bytes received.");
    fp_metrics_sample_u64(b, "fogport_http_received_bytes_total", NULL, 0,
                          atomic_load_explicit(&bytes_in, memory_order_relaxed));
    fp_metrics_family(b, "fogport_http_sent_bytes_total", "counter",
                      "Response body bytes sent (as answered; a client that leaves early may "
                      "have received fewer).");
    fp_metrics_sample_u64(b, "fogport_http_sent_bytes_total", NULL, 0,
                          atomic_load_explicit(&bytes_out, memory_order_relaxed));
}

/* ---- answers kept a few seconds --------------------------------------- */

#define KEEP_S 5

struct repl_count {
    time_t now;
    uint64_t by_state[4]; /* pending, running, failed, done */
    time_t oldest;        /* updated time of the oldest task not done; 0: none */
};

static const char *const task_states[4] = {"pending", "running", "failed", "done"};

static int count_task(void *ctx, const fp_task *t)
{
    struct repl_count *c = ctx;
    for (int i = 0; i < 4; i++)
        if (!strcmp(t->state, task_states[i])) {
            c->by_state[i]++;
            if (i < 3 && (!c->oldest || t->updated < c->oldest)) c->oldest = t->updated;
        }
    return 0;
}

static struct {
    pthread_mutex_t lock;
    time_t at;
    bool store_ok, repl_ok;
    struct fp_store_stats store;
    struct repl_count repl;
} kept = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void refresh_kept(fp_registry *reg, time_t now)
{
    pthread_mutex_lock(&kept.lock);
    if (kept.at && now - kept.at < KEEP_S && now >= kept.at) {
        pthread_mutex_unlock(&kept.lock);
        return;
    }
    fp_error err;
    kept.store_ok = fp_store_stats(reg->store, &kept.store, &err) == 0;
    if (!kept.store_ok) fp_warn("event=metrics_store_failed error=\"%s\"", err.msg);
    memset(&kept.repl, 0, sizeof kept.repl);
    kept.repl_ok =
        reg->dir && fp_directory_tasks(reg->dir, NULL, false, count_task, &kept.repl, &err) == 0;
    kept.at = now;
    pthread_mutex_unlock(&kept.lock);
}

static void render_kept(fp_buf *b, fp_registry *reg, time_t now)
{
    refresh_kept(reg, now);
    pthread_mutex_lock(&kept.lock);
    if (kept.store_ok) {
        static const struct {
            const char *name, *help;
            size_t off;
        } g[] = {
            {"fogport_store_blobs", "Blobs in the store.", offsetof(struct fp_store_stats, blobs)},
            {"fogport_store_blob_bytes", "Bytes of the blobs in the store.",
             offsetof(struct fp_store_stats, blob_bytes)},
            {"fogport_store_manifests", "Manifests in the store.",
             offsetof(struct fp_store_stats, manifests)},
            {"fogport_store_manifest_bytes", "Bytes of the manifests in the store.",
             offsetof(struct fp_store_stats, manifest_bytes)},
            {"fogport_store_repositories", "Repositories in the store.",
             offsetof(struct fp_store_stats, repositories)},
        };
        for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) {
            uint64_t v;
            memcpy(&v, (const char *)&kept.store + g[i].off, sizeof v);
            fp_metrics_family(b, g[i].name, "gauge", g[i].help);
            fp_metrics_sample_u64(b, g[i].name, NULL, 0, v);
        }
    }
    if (kept.repl_ok) {
        fp_metrics_family(b, "fogport_replication_tasks", "gauge",
                          "Replication tasks in the cloud's directory, by state.");
        for (int i = 0; i < 4; i++) {
            fp_label l[] = {{"state", task_states[i]}};
            fp_metrics_sample_u64(b, "fogport_replication_tasks", l, 1, kept.repl.by_state[i]);
        }
        fp_metrics_family(b, "fogport_replication_oldest_pending_seconds", "gauge",
                          "Seconds since the oldest replication task not done (pending, running "
                          "or failed) last changed; 0 when every task is done.");
        fp_metrics_sample_u64(
            b, "fogport_replication_oldest_pending_seconds", NULL, 0,
            kept.repl.oldest && now > kept.repl.oldest ? (uint64_t)(now - kept.repl.oldest) : 0);
    }
    pthread_mutex_unlock(&kept.lock);
}

/* ---- federation, control, agent -------------------------------------- */

static void render_pull_through(fp_buf *b, fp_federation *fed)
{
    if (!fed) return;
    fp_metrics_family(b, "fogport_pull_through_total", "counter",
                      "Manifests and blobs asked of this node: source local answered from its "
                      "store; owner, peer, parent fetched from that holder; none found nowhere.");
    for (int k = 0; k < FP_FED_NKINDS; k++)
        for (int s = 0; s < FP_FED_NSOURCES; s++) {
            fp_label l[] = {{"kind", fp_fed_kind_name((enum fp_fed_kind)k)},
                            {"source", fp_fed_source_name((enum fp_fed_source)s)}};
            fp_metrics_sample_u64(b, "fogport_pull_through_total", l, 2,
                                  fp_fed_counted(fed, (enum fp_fed_kind)k, (enum fp_fed_source)s));
        }
}

static void render_replicator(fp_buf *b, struct fp_replicator *rp, time_t now)
{
    if (!rp) return;
    struct fp_replicator_stats st;
    fp_replicator_stats(rp, &st);
    fp_metrics_family(b, "fogport_replicated_tasks_total", "counter",
                      "Replication tasks this node carried out, by result.");
    fp_label done[] = {{"result", "done"}}, failed[] = {{"result", "failed"}};
    fp_metrics_sample_u64(b, "fogport_replicated_tasks_total", done, 1, st.done);
    fp_metrics_sample_u64(b, "fogport_replicated_tasks_total", failed, 1, st.failed);
    fp_metrics_family(b, "fogport_replicated_bytes_total", "counter",
                      "Bytes this node fetched carrying out replication tasks.");
    fp_metrics_sample_u64(b, "fogport_replicated_bytes_total", NULL, 0, st.bytes);
    fp_metrics_family(b, "fogport_replication_queued_tasks", "gauge",
                      "Tasks of the cloud's last answer this node has not carried out yet.");
    fp_metrics_sample_u64(b, "fogport_replication_queued_tasks", NULL, 0, st.queued);
    if (st.polled) {
        fp_metrics_family(b, "fogport_replication_poll_age_seconds", "gauge",
                          "Seconds since the cloud last answered this node's poll for tasks.");
        fp_metrics_sample_u64(b, "fogport_replication_poll_age_seconds", NULL, 0,
                              now > st.polled ? (uint64_t)(now - st.polled) : 0);
    }
}

/* A label value from a report: the bounded words agents use, or "other". */
static const char *word(const char *s)
{
    if (!s || !*s || strlen(s) > 24) return "other";
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_' || *p == '-')) return "other";
    return s;
}

static void render_control(fp_buf *b, fp_registry *reg, time_t now)
{
    if (!reg->dir) return;
    json_t *nodes = fp_control_nodes(reg, now);
    if (nodes) {
        fp_metrics_family(b, "fogport_node_heartbeat_age_seconds", "gauge",
                          "Seconds since the node's last heartbeat (nodes heard from since they "
                          "joined, not revoked).");
        const char *id;
        json_t *o;
        json_object_foreach(nodes, id, o)
        {
            json_int_t seen = json_integer_value(json_object_get(o, "last_seen"));
            if (!seen || json_is_true(json_object_get(o, "revoked"))) continue;
            fp_label l[] = {{"node", id}};
            fp_metrics_sample_u64(b, "fogport_node_heartbeat_age_seconds", l, 1,
                                  now > seen ? (uint64_t)(now - seen) : 0);
        }
        fp_metrics_family(b, "fogport_nodes", "gauge",
                          "Joined nodes (not revoked) by health as the controller sees it.");
        for (int h = FP_HEALTH_UNSEEN; h <= FP_HEALTH_DEAD; h++) {
            const char *name = fp_health_name((fp_health)h);
            uint64_t n = 0;
            json_object_foreach(nodes, id, o)
            {
                const char *hs = json_string_value(json_object_get(o, "health"));
                if (!json_is_true(json_object_get(o, "revoked")) && hs && !strcmp(hs, name)) n++;
            }
            fp_label l[] = {{"health", name}};
            fp_metrics_sample_u64(b, "fogport_nodes", l, 1, n);
        }
        json_decref(nodes);
    }
    json_t *inst = NULL;
    fp_error err;
    if (reg->services && fp_services_instances(reg->services, &inst, &err) == 0) {
        json_t *by_state = json_object();
        size_t i;
        json_t *in;
        json_array_foreach(inst, i, in)
        {
            const char *st = word(json_string_value(json_object_get(in, "state")));
            json_object_set_new(
                by_state, st, json_integer(json_integer_value(json_object_get(by_state, st)) + 1));
        }
        fp_metrics_family(b, "fogport_instances", "gauge",
                          "Service instances the nodes report, by state.");
        const char *st;
        json_t *n;
        json_object_foreach(by_state, st, n)
        {
            fp_label l[] = {{"state", st}};
            fp_metrics_sample_u64(b, "fogport_instances", l, 1, (uint64_t)json_integer_value(n));
        }
        json_decref(by_state);
        json_decref(inst);
    }
}

static void render_agent(fp_buf *b, fp_registry *reg)
{
    json_t *list = fp_agent_status(reg->agent);
    if (!list) return;
    const char *node = reg->cfg->node_id;
    static const struct {
        const char *name, *type, *help, *key;
        bool usage;
        double scale;
    } m[] = {
        {"fogport_service_running", "gauge", "1 when the service's instance runs on this node.",
         NULL, false, 1},
        {"fogport_service_restarts_total", "counter", "Restarts of the service's instance.",
         "restarts", false, 1},
        {"fogport_service_oom_kills_total", "counter",
         "Processes of the instance killed for want of memory.", "oom_kills", false, 1},
        {"fogport_service_cpu_seconds_total", "counter",
         "CPU time used by the running instance (its cgroup).", "cpu_ns", true, 1e-9},
        {"fogport_service_memory_bytes", "gauge", "Memory used by the running instance.", "memory",
         true, 1},
        {"fogport_service_pids", "gauge", "Processes of the running instance.", "pids", true, 1},
    };
    for (size_t k = 0; k < sizeof m / sizeof m[0]; k++) {
        fp_metrics_family(b, m[k].name, m[k].type, m[k].help);
        size_t i;
        json_t *in;
        json_array_foreach(list, i, in)
        {
            const char *svc = json_string_value(json_object_get(in, "service"));
            const char *state = json_string_value(json_object_get(in, "state"));
            json_t *src = m[k].usage ? json_object_get(in, "usage") : in;
            if (!svc || !src) continue;
            fp_label l[] = {{"service", svc}, {"node", node}};
            double v = m[k].key
                           ? (double)json_integer_value(json_object_get(src, m[k].key)) * m[k].scale
                           : (state && !strcmp(state, "running") ? 1 : 0);
            fp_metrics_sample(b, m[k].name, l, 2, v);
        }
    }
    json_decref(list);
}

/* ---- endpoints -------------------------------------------------------- */

void fp_handle_metrics(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    if (!r->reg->cfg->metrics_public && !fp_authz_require_principal(r)) return;
    time_t now = time(NULL);
    fp_buf b = FP_BUF_INIT;
    const char *role = r->reg->cfg->node_role[0] ? r->reg->cfg->node_role : "registry";
    fp_metrics_family(&b, "fogport_info", "gauge", "This node: its id and role.");
    fp_label info[] = {{"node", r->reg->cfg->node_id}, {"role", role}};
    fp_metrics_sample_u64(&b, "fogport_info", info, 2, 1);
    fp_metrics_family(&b, "fogport_ready", "gauge", "1 when /readyz answers 200.");
    fp_metrics_sample_u64(&b, "fogport_ready", NULL, 0, fp_registry_unready(r->reg) ? 0 : 1);
    render_http(&b);
    render_kept(&b, r->reg, now);
    render_pull_through(&b, r->reg->fed);
    render_replicator(&b, r->reg->replicator, now);
    render_control(&b, r->reg, now);
    render_agent(&b, r->reg);
    fp_procmetrics_render(&b);
    if (!b.data) {
        fp_error e;
        fp_error_set(&e, ENOMEM, "metrics");
        fp_respond_internal(r, &e);
        return;
    }
    size_t len = b.len;
    fp_respond_owned(r, 200, FP_METRICS_CONTENT_TYPE, fp_buf_steal(&b), len);
}

void fp_handle_healthz(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    fp_respond_bytes(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

void fp_handle_readyz(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    const char *why = fp_registry_unready(r->reg);
    if (!why) {
        fp_respond_bytes(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
        return;
    }
    char body[200];
    int n = snprintf(body, sizeof body, "not ready: %s\n", why);
    fp_respond_bytes(r, 503, "text/plain; charset=utf-8", body,
                     n > 0 && (size_t)n < sizeof body ? (size_t)n : strlen(body));
}

const char *fp_registry_unready(fp_registry *reg)
{
    if (!reg->store) return "the store is not open";
    const char *why = atomic_load(&reg->unready);
    if (why) return why;
    /* a fog answers its users' logins from the cloud's auth data */
    if (!strcmp(reg->cfg->node_role, "fog")) {
        fp_authdata *d = fp_authz_synced(reg->authz);
        fp_authdata_unref(d);
        if (!d) return "no auth data from the cloud yet";
    }
    return NULL;
}

void fp_registry_set_unready(fp_registry *reg, const char *why)
{
    atomic_store(&reg->unready, why);
}
