/* The controller at the cloud (docs/control.md): failure detection from the
 * directory's heartbeats, placement of the dynamic definitions
 * (control/placement.h) and the hand-over of an always-on service from a
 * dead node. It runs in the cloud's tick (every second) and right after a
 * definition is created or replaced; agents follow through
 * /api/v1/agent/desired, which serves each node its placements. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/nodes.h"
#include "control/audit.h"
#include "control/placement.h"
#include "control/services.h"
#include "control/usage.h"
#include "core/log.h"
#include "federation/directory.h"
#include "registry/request.h"

/* One pass at a time: the tick and a request thread must not both see the
 * same dead node and record its hand-over twice. */
static pthread_mutex_t place_lock = PTHREAD_MUTEX_INITIALIZER;
/* service -> why the last pass placed fewer instances than it asks for */
static json_t *unplaced;

json_t *fp_control_unplaced(void)
{
    pthread_mutex_lock(&place_lock);
    json_t *copy = unplaced ? json_deep_copy(unplaced) : json_object();
    pthread_mutex_unlock(&place_lock);
    return copy;
}

/* Why service s got only `got` placements: said for `fogport ps` and
 * `service show` (none eligible at all, or none healthy). */
static void note_unplaced(json_t *by, const fp_place_service *s, const fp_place_node *nodes,
                          size_t nn, size_t got)
{
    size_t want = s->replicas ? s->replicas : 1, eligible = 0;
    if (!fp_place_dynamic(s) || got >= want) return;
    for (size_t i = 0; i < nn; i++)
        eligible += fp_place_eligible(s, &nodes[i]);
    const char *role = s->role && s->role[0] ? s->role : "fog";
    char why[512];
    if (!eligible)
        snprintf(why, sizeof why, "no %s node%s%s%s", role,
                 s->labels && s->labels[0] ? " carries " : "", s->labels ? s->labels : "",
                 s->memory ? " with the memory free" : "");
    else
        snprintf(why, sizeof why, "%zu of %zu placed: no other healthy %s node fits", got, want,
                 role);
    json_object_set_new(by, s->name, json_string(why));
}

static int add_identity(void *ctx, const char *id, const char *role, time_t created, bool revoked)
{
    (void)created;
    json_object_set_new(ctx, id,
                        json_pack("{s:s, s:s, s:I, s:I, s:I, s:b}", "role", role, "parent", "",
                                  "capacity", (json_int_t)0, "used", (json_int_t)0, "last_seen",
                                  (json_int_t)0, "revoked", revoked));
    return 0;
}

static int add_directory(void *ctx, const fp_directory_entry *e)
{
    json_t *o = json_object_get(ctx, e->id);
    if (!o) return 0;
    json_object_set_new(o, "parent", json_string(e->parent_url));
    json_object_set_new(o, "capacity", json_integer((json_int_t)e->capacity));
    json_object_set_new(o, "used", json_integer((json_int_t)e->used));
    json_object_set_new(o, "last_seen", json_integer((json_int_t)e->last_seen));
    json_object_set_new(o, "url", json_string(e->url));
    json_object_set_new(o, "labels", json_string(e->labels ? e->labels : ""));
    json_object_set_new(o, "memory", json_integer((json_int_t)e->memory));
    return 0;
}

json_t *fp_control_nodes(struct fp_registry *reg, time_t now)
{
    if (!reg->dir || !reg->authz->nodes) return NULL;
    json_t *by_id = json_object();
    fp_error err;
    if (fp_nodes_list(reg->authz->nodes, add_identity, by_id, &err) < 0 ||
        fp_directory_list(reg->dir, add_directory, by_id, &err) < 0) {
        fp_warn("event=control_nodes_failed error=\"%s\"", err.msg);
        json_decref(by_id);
        return NULL;
    }
    const fp_config *cfg = reg->cfg;
    unsigned dead_after = cfg->control_dead_s ? cfg->control_dead_s : 6;
    unsigned suspect_after = cfg->control_suspect_s ? cfg->control_suspect_s : 3;
    if (suspect_after > dead_after) suspect_after = dead_after;
    const char *id;
    json_t *o;
    json_object_foreach(by_id, id, o)
    {
        time_t seen = (time_t)json_integer_value(json_object_get(o, "last_seen"));
        fp_health h = fp_health_of(seen, now, suspect_after, dead_after);
        /* a cloud that just started has not heard anyone yet: silence
         * since before it started says nothing, so nobody dies before
         * dead_after has passed here */
        if (h == FP_HEALTH_DEAD && now - reg->started <= (time_t)dead_after) h = FP_HEALTH_SUSPECT;
        json_object_set_new(o, "health", json_string(fp_health_name(h)));
    }
    return by_id;
}

static fp_health health_named(const char *s)
{
    for (int h = FP_HEALTH_UNSEEN; h <= FP_HEALTH_DEAD; h++)
        if (s && !strcmp(s, fp_health_name((fp_health)h))) return (fp_health)h;
    return FP_HEALTH_UNSEEN;
}

/* The service moved from a dead node: say so where operators look. */
static void record_handover(struct fp_registry *reg, const json_t *def, const char *service,
                            const char *from, const char *to, const json_t *dead, time_t now,
                            const char *reason)
{
    json_int_t seen = json_integer_value(json_object_get(dead, "last_seen"));
    fp_info("event=handover service=%s from=%s to=%s silent_s=%lld reason=\"%s\"", service, from,
            to, (long long)(seen ? now - seen : -1), reason);
    if (reg->usage) {
        fp_usage_event(reg->usage, now, to, service, "handover", from);
        fp_event_streams_wake(reg->streams);
    }
    if (reg->audit) {
        /* the new node's grant to pull the image is its role's (policy):
         * what moves is the placement, and with it the endpoint */
        json_t *details =
            json_pack("{s:s, s:s, s:s, s:I, s:O?, s:O?}", "from", from, "to", to, "reason", reason,
                      "last_seen", seen, "image", json_object_get(def, "image"), "digest",
                      json_object_get(def, "digest"));
        fp_error err;
        if (fp_audit_append(reg->audit, FP_AUDIT_HANDOVER, "controller", service, details, &err) <
            0)
            fp_errorf("event=audit_append_failed kind=%s subject=%s error=\"%s\"",
                      FP_AUDIT_HANDOVER, service, err.msg);
        json_decref(details);
    }
}

static const json_t *def_named(const json_t *defs, const char *name)
{
    size_t i;
    json_t *d;
    json_array_foreach(defs, i, d) if (!strcmp(json_string_value(json_object_get(d, "name")) ?: "",
                                               name)) return d;
    return NULL;
}

/* A fog that took an always-on service over while the cloud was away
 * (agent/handover.h) reports it "claimed": it runs there, under the fogs'
 * etcd claim, so the cloud adopts that placement rather than start a
 * second copy where it placed the service before. */
static const json_t *claim_of(const json_t *reported, const char *service, const char *node)
{
    size_t i;
    json_t *in;
    json_array_foreach(reported, i, in)
    {
        if (!json_is_true(json_object_get(in, "claimed"))) continue;
        if (strcmp(json_string_value(json_object_get(in, "service")) ?: "", service) != 0) continue;
        if (!node || !strcmp(json_string_value(json_object_get(in, "node")) ?: "", node)) return in;
    }
    return NULL;
}

static void adopt_claims(const json_t *reported, const json_t *nodes, const json_t *defs,
                         fp_placement *cur, size_t nc)
{
    for (size_t k = 0; k < nc; k++) {
        const json_t *def = def_named(defs, cur[k].service);
        const json_t *in = claim_of(reported, cur[k].service, NULL);
        if (!def || !in || !json_is_true(json_object_get(def, "always_on")) ||
            json_integer_value(json_object_get(def, "replicas")) != 0)
            continue;
        const char *at = json_string_value(json_object_get(in, "node"));
        const char *state = json_string_value(json_object_get(in, "state"));
        json_t *n = json_object_get(nodes, at ? at : "");
        /* the hand-over is the fogs' own: an edge's (or a revoked node's)
         * claim would move the service, and its definition, there */
        if (!at || strcmp(at, cur[k].node) == 0 || !state || strcmp(state, "running") != 0 ||
            strcmp(json_string_value(json_object_get(n, "health")) ?: "", "healthy") != 0 ||
            strcmp(json_string_value(json_object_get(n, "role")) ?: "", "fog") != 0 ||
            json_is_true(json_object_get(n, "revoked")))
            continue;
        fp_info("event=claim_adopted service=%s node=%s placed=%s", cur[k].service, at,
                cur[k].node);
        cur[k].node = at;
    }
}

/* The node an adopted claim moved the placement p from, else NULL. */
static const char *claimed_from_of(const json_t *reported, const json_t *current,
                                   const fp_placement *p)
{
    json_t *was = json_array_get(json_object_get(current, p->service), 0);
    if (!json_is_string(was) || !strcmp(json_string_value(was), p->node)) return NULL;
    return claim_of(reported, p->service, p->node) ? json_string_value(was) : NULL;
}

void fp_control_place(struct fp_registry *reg, time_t now)
{
    if (!reg->services || !reg->dir) return;
    pthread_mutex_lock(&place_lock);
    json_t *nodes = fp_control_nodes(reg, now), *defs = NULL, *reported = NULL, *current = NULL;
    fp_place_node *pn = NULL;
    fp_place_service *ps = NULL;
    fp_placement *cur = NULL, *out = NULL;
    size_t nout = 0;
    fp_error err = {0};
    if (!nodes || fp_services_list(reg->services, &defs, &err) < 0 ||
        fp_services_instances(reg->services, &reported, &err) < 0 ||
        fp_services_placements(reg->services, &current, &err) < 0)
        goto out;
    size_t nn = 0, ns = 0, nc = 0;
    pn = calloc(json_object_size(nodes) + 1, sizeof *pn);
    ps = calloc(json_array_size(defs) + 1, sizeof *ps);
    size_t ncur = 0;
    const char *key;
    json_t *v;
    json_object_foreach(current, key, v) ncur += json_array_size(v);
    cur = calloc(ncur + 1, sizeof *cur);
    if (!pn || !ps || !cur) goto out;
    json_object_foreach(nodes, key, v)
    {
        if (json_is_true(json_object_get(v, "revoked"))) continue; /* not a node any more */
        fp_place_node *n = &pn[nn++];
        n->id = key;
        n->role = json_string_value(json_object_get(v, "role")) ?: "";
        n->parent = json_string_value(json_object_get(v, "parent")) ?: "";
        n->url = json_string_value(json_object_get(v, "url"));
        n->labels = json_string_value(json_object_get(v, "labels"));
        n->memory = (uint64_t)json_integer_value(json_object_get(v, "memory"));
        n->health = health_named(json_string_value(json_object_get(v, "health")));
        n->capacity = (uint64_t)json_integer_value(json_object_get(v, "capacity"));
        n->used = (uint64_t)json_integer_value(json_object_get(v, "used"));
        size_t i;
        json_t *in;
        json_array_foreach(
            reported, i, in) if (!strcmp(json_string_value(json_object_get(in, "node")) ?: "", key))
        {
            n->instances++;
            const json_t *def =
                def_named(defs, json_string_value(json_object_get(in, "service")) ?: "");
            n->reserved += (uint64_t)json_integer_value(json_object_get(def, "memory"));
        }
    }
    size_t i;
    json_t *d;
    json_array_foreach(defs, i, d) fp_service_place_of(d, &ps[ns++]);
    json_object_foreach(current, key, v)
    {
        json_t *n;
        json_array_foreach(v, i, n) cur[nc++] =
            (fp_placement){.service = key, .node = json_string_value(n) ?: ""};
    }
    adopt_claims(reported, nodes, defs, cur, nc);
    if (fp_place_compute(ps, ns, pn, nn, cur, nc, &out, &nout) < 0) {
        fp_error_set(&err, ENOMEM, "placement");
        goto out;
    }
    json_t *next = json_object();
    for (i = 0; i < nout; i++) {
        json_t *list = json_object_get(next, out[i].service);
        if (!list) json_object_set_new(next, out[i].service, list = json_array());
        json_array_append_new(list, json_string(out[i].node));
    }
    json_t *short_of = json_object();
    for (i = 0; i < ns; i++)
        note_unplaced(short_of, &ps[i], pn, nn, json_array_size(json_object_get(next, ps[i].name)));
    json_decref(unplaced);
    unplaced = short_of;
    if (!json_equal(next, current)) {
        if (fp_services_set_placements(reg->services, next, &err) < 0) {
            json_decref(next);
            goto out;
        }
        for (i = 0; i < nout; i++) {
            const char *claimed_from = claimed_from_of(reported, current, &out[i]);
            if (out[i].from)
                record_handover(reg, def_named(defs, out[i].service), out[i].service, out[i].from,
                                out[i].node, json_object_get(nodes, out[i].from), now, "node dead");
            else if (claimed_from)
                record_handover(reg, def_named(defs, out[i].service), out[i].service, claimed_from,
                                out[i].node, json_object_get(nodes, claimed_from), now,
                                "claimed by the fogs while the cloud was away");
            else
                fp_debug("event=service_placed service=%s node=%s", out[i].service, out[i].node);
        }
    }
    json_decref(next);
out:
    if (err.msg[0]) fp_warn("event=placement_failed error=\"%s\"", err.msg);
    free(out);
    free(cur);
    free(ps);
    free(pn);
    json_decref(current);
    json_decref(reported);
    json_decref(defs);
    json_decref(nodes);
    pthread_mutex_unlock(&place_lock);
}

void fp_control_prune(struct fp_registry *reg, time_t now)
{
    /* age limits are in seconds to days: a look every few seconds is
     * plenty, and the count limit is kept as violations are recorded */
    static time_t last;
    if (!reg->services || now - last < 5) return;
    last = now;
    fp_error err;
    int n = fp_services_prune(reg->services, now, &err);
    if (n < 0)
        fp_warn("event=control_prune_failed error=\"%s\"", err.msg);
    else if (n > 0)
        fp_info("event=control_pruned rows=%d", n);
}
