#include "control/placement.h"

#include <stdlib.h>
#include <string.h>

static const char *const health_names[] = {"unseen", "healthy", "suspect", "dead"};

const char *fp_health_name(fp_health h)
{
    return (unsigned)h < 4 ? health_names[h] : "unseen";
}

fp_health fp_health_of(time_t last_seen, time_t now, unsigned suspect_after_s,
                       unsigned dead_after_s)
{
    if (last_seen <= 0) return FP_HEALTH_UNSEEN;
    time_t gap = now - last_seen;
    if (gap > (time_t)dead_after_s) return FP_HEALTH_DEAD;
    if (gap > (time_t)suspect_after_s) return FP_HEALTH_SUSPECT;
    return FP_HEALTH_HEALTHY;
}

/* Dead placements of one service looked at per pass (its replicas). */
#define FP_PLACE_LEAVING_MAX 64

static bool set(const char *s)
{
    return s && s[0];
}

bool fp_place_dynamic(const fp_place_service *s)
{
    return s->replicas > 0 || (s->always_on && set(s->node));
}

/* The growing result and what the pass knows about the nodes. */
struct pass {
    const fp_place_node *nodes;
    size_t nnodes;
    unsigned *load; /* reported instances plus placements made by this pass */
    fp_placement *out;
    size_t n, cap;
};

/* fresh: a placement this pass makes (a kept one is in the reported
 * instances already) */
static int add(struct pass *p, const char *service, const char *node, const char *from, bool fresh)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        fp_placement *o = realloc(p->out, cap * sizeof *o);
        if (!o) return -1;
        p->out = o;
        p->cap = cap;
    }
    p->out[p->n++] = (fp_placement){.service = service, .node = node, .from = from};
    for (size_t i = 0; fresh && i < p->nnodes; i++)
        if (!strcmp(p->nodes[i].id, node)) p->load[i]++;
    return 0;
}

static const fp_place_node *node_by_id(const struct pass *p, const char *id, size_t *idx)
{
    for (size_t i = 0; i < p->nnodes; i++)
        if (!strcmp(p->nodes[i].id, id)) {
            if (idx) *idx = i;
            return &p->nodes[i];
        }
    return NULL;
}

/* Placed on node already, by this pass (from index first on)? */
static bool holds(const struct pass *p, size_t first, const char *node)
{
    for (size_t i = first; i < p->n; i++)
        if (!strcmp(p->out[i].node, node)) return true;
    return false;
}

static bool has_room(const fp_place_node *n)
{
    return n->capacity == 0 || n->used < n->capacity;
}

/* Is a better than b for a service, near the parent `near` (NULL: no
 * preference)? */
static bool better(const struct pass *p, size_t a, size_t b, const char *near)
{
    const fp_place_node *x = &p->nodes[a], *y = &p->nodes[b];
    if (set(near)) {
        bool nx = x->parent && !strcmp(x->parent, near), ny = y->parent && !strcmp(y->parent, near);
        if (nx != ny) return nx;
    }
    if (has_room(x) != has_room(y)) return has_room(x);
    if (p->load[a] != p->load[b]) return p->load[a] < p->load[b];
    uint64_t fx = x->capacity > x->used ? x->capacity - x->used : 0;
    uint64_t fy = y->capacity > y->used ? y->capacity - y->used : 0;
    if (fx != fy) return fx > fy;
    return strcmp(x->id, y->id) < 0;
}

/* The best healthy node of role that does not hold the service yet. */
static const char *pick(const struct pass *p, size_t first, const char *role, const char *near)
{
    size_t best = (size_t)-1;
    for (size_t i = 0; i < p->nnodes; i++) {
        const fp_place_node *n = &p->nodes[i];
        if (n->health != FP_HEALTH_HEALTHY || strcmp(n->role, role) != 0 || holds(p, first, n->id))
            continue;
        if (best == (size_t)-1 || better(p, i, best, near)) best = i;
    }
    return best == (size_t)-1 ? NULL : p->nodes[best].id;
}

static int place_one(struct pass *p, const fp_place_service *s, const fp_placement *current,
                     size_t ncurrent)
{
    size_t first = p->n; /* this service's placements start here */
    bool pinned = set(s->node);
    unsigned want = s->replicas ? s->replicas : 1;
    /* a pinned service may leave its node for a fog, never for an edge */
    const char *role = set(s->role) ? s->role : "fog";
    const char *leaving[FP_PLACE_LEAVING_MAX];
    size_t nleaving = 0;
    bool had = false;
    for (size_t i = 0; i < ncurrent; i++) {
        const fp_placement *c = &current[i];
        if (strcmp(c->service, s->name) != 0) continue;
        had = true;
        const fp_place_node *n = node_by_id(p, c->node, NULL);
        bool pinned_here = pinned && !strcmp(c->node, s->node);
        /* a node no longer joined, or not of the role any more: gone */
        if ((!n && !pinned_here) || holds(p, first, c->node)) continue;
        if (n && !pinned_here && strcmp(n->role, role) != 0) continue;
        if (n && n->health == FP_HEALTH_DEAD && s->always_on) {
            if (nleaving < FP_PLACE_LEAVING_MAX) leaving[nleaving++] = c->node;
            continue;
        }
        if (p->n - first < want && add(p, s->name, c->node, NULL, false) < 0) return -1;
    }
    /* the always-on placements on dead nodes: to the nearest healthy node,
     * or nowhere better: they stay */
    for (size_t i = 0; i < nleaving && p->n - first < want; i++) {
        const fp_place_node *dead = node_by_id(p, leaving[i], NULL);
        const char *to = pick(p, first, role, dead ? dead->parent : NULL);
        if (add(p, s->name, to ? to : leaving[i], to ? leaving[i] : NULL, to != NULL) < 0)
            return -1;
    }
    if (pinned && !had && p->n - first < want) {
        /* first placement: the node named, unless it is dead already */
        const fp_place_node *n = node_by_id(p, s->node, NULL);
        if (!n || n->health != FP_HEALTH_DEAD || !s->always_on) {
            if (add(p, s->name, n ? n->id : s->node, NULL, true) < 0) return -1;
        } else {
            const char *to = pick(p, first, role, n->parent);
            if (add(p, s->name, to ? to : n->id, to ? n->id : NULL, true) < 0) return -1;
        }
    }
    while (p->n - first < want) {
        const char *to = pick(p, first, role, NULL);
        if (!to || add(p, s->name, to, NULL, true) < 0) return to ? -1 : 0;
    }
    return 0;
}

int fp_place_compute(const fp_place_service *services, size_t nservices, const fp_place_node *nodes,
                     size_t nnodes, const fp_placement *current, size_t ncurrent,
                     fp_placement **out, size_t *nout)
{
    struct pass p = {
        .nodes = nodes, .nnodes = nnodes, .load = calloc(nnodes + 1, sizeof(unsigned))};
    if (!p.load) return -1;
    for (size_t i = 0; i < nnodes; i++)
        p.load[i] = nodes[i].instances;
    for (size_t i = 0; i < nservices; i++) {
        if (!fp_place_dynamic(&services[i])) continue;
        if (place_one(&p, &services[i], current, ncurrent) < 0) {
            free(p.out);
            free(p.load);
            return -1;
        }
    }
    free(p.load);
    *out = p.out;
    *nout = p.n;
    return 0;
}
