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
    return s->replicas > 0 || (s->always_on && set(s->node)) || (set(s->labels) && !set(s->node));
}

/* Is "k=v" (len bytes of pair) one of the comma-separated labels? */
static bool has_label(const char *labels, const char *pair, size_t len)
{
    for (const char *p = labels; p && *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && !memcmp(p, pair, len)) return true;
        p += n + (p[n] == ',');
    }
    return false;
}

bool fp_labels_match(const char *labels, const char *selector)
{
    for (const char *p = selector; p && *p;) {
        size_t n = strcspn(p, ",");
        if (n && !has_label(labels, p, n)) return false;
        p += n + (p[n] == ',');
    }
    return true;
}

/* Ancestors of node id, itself first: node ids, and the URL of a parent
 * that is no node (the cloud) last. */
#define FP_PLACE_DEPTH 8
static size_t chain(const fp_place_node *nodes, size_t nnodes, const char *id,
                    const char *out[FP_PLACE_DEPTH])
{
    size_t n = 0;
    const fp_place_node *at = NULL;
    for (size_t i = 0; i < nnodes && !at; i++)
        if (!strcmp(nodes[i].id, id)) at = &nodes[i];
    out[n++] = id;
    while (at && set(at->parent) && n < FP_PLACE_DEPTH) {
        const fp_place_node *up = NULL;
        for (size_t i = 0; i < nnodes && !up; i++)
            if (nodes[i].url && !strcmp(nodes[i].url, at->parent)) up = &nodes[i];
        out[n++] = up ? up->id : at->parent;
        at = up;
    }
    return n;
}

unsigned fp_place_distance(const fp_place_node *nodes, size_t nnodes, const char *a, const char *b)
{
    const char *ca[FP_PLACE_DEPTH], *cb[FP_PLACE_DEPTH];
    size_t na = chain(nodes, nnodes, a, ca), nb = chain(nodes, nnodes, b, cb);
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            if (!strcmp(ca[i], cb[j])) return (unsigned)(i + j);
    return FP_PLACE_FAR;
}

static const char *role_of(const fp_place_service *s)
{
    /* a pinned service may leave its node for a fog, never for an edge */
    return set(s->role) ? s->role : "fog";
}

static bool fits(const fp_place_service *s, const fp_place_node *n, uint64_t reserved)
{
    return !n->memory || !s->memory || reserved + s->memory <= n->memory;
}

bool fp_place_eligible(const fp_place_service *s, const fp_place_node *n)
{
    return !strcmp(n->role, role_of(s)) && fp_labels_match(n->labels, s->labels) &&
           fits(s, n, n->reserved);
}

/* The growing result and what the pass knows about the nodes. */
struct pass {
    const fp_place_node *nodes;
    size_t nnodes;
    unsigned *load;     /* reported instances plus placements made by this pass */
    uint64_t *reserved; /* memory, the same way */
    fp_placement *out;
    size_t n, cap;
};

/* fresh: a placement this pass makes (a kept one is in the reported
 * instances already) */
static int add(struct pass *p, const fp_place_service *s, const char *node, const char *from,
               bool fresh)
{
    const char *service = s->name;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 16;
        fp_placement *o = realloc(p->out, cap * sizeof *o);
        if (!o) return -1;
        p->out = o;
        p->cap = cap;
    }
    p->out[p->n++] = (fp_placement){.service = service, .node = node, .from = from};
    for (size_t i = 0; fresh && i < p->nnodes; i++)
        if (!strcmp(p->nodes[i].id, node)) {
            p->load[i]++;
            p->reserved[i] += s->memory;
        }
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

/* Is a better than b for service s, leaving node `left` (NULL: none)? */
static bool better(const struct pass *p, size_t a, size_t b, const fp_place_service *s,
                   const char *left)
{
    const fp_place_node *x = &p->nodes[a], *y = &p->nodes[b];
    if (set(s->prefer_label)) {
        bool px = fp_labels_match(x->labels, s->prefer_label);
        bool py = fp_labels_match(y->labels, s->prefer_label);
        if (px != py) return px;
    }
    /* the operator's "near" says where the clients are; else the node
     * left is where they were served from */
    const char *near = set(s->near) ? s->near : left;
    if (set(near)) {
        unsigned dx = fp_place_distance(p->nodes, p->nnodes, x->id, near);
        unsigned dy = fp_place_distance(p->nodes, p->nnodes, y->id, near);
        if (dx != dy) return dx < dy;
    }
    if (has_room(x) != has_room(y)) return has_room(x);
    if (p->load[a] != p->load[b]) return p->load[a] < p->load[b];
    uint64_t fx = x->capacity > x->used ? x->capacity - x->used : 0;
    uint64_t fy = y->capacity > y->used ? y->capacity - y->used : 0;
    if (fx != fy) return fx > fy;
    return strcmp(x->id, y->id) < 0;
}

/* The best healthy, eligible node that does not hold the service yet. */
static const char *pick(const struct pass *p, size_t first, const fp_place_service *s,
                        const char *left)
{
    size_t best = (size_t)-1;
    for (size_t i = 0; i < p->nnodes; i++) {
        const fp_place_node *n = &p->nodes[i];
        if (n->health != FP_HEALTH_HEALTHY || strcmp(n->role, role_of(s)) != 0 ||
            !fp_labels_match(n->labels, s->labels) || !fits(s, n, p->reserved[i]) ||
            holds(p, first, n->id))
            continue;
        if (best == (size_t)-1 || better(p, i, best, s, left)) best = i;
    }
    return best == (size_t)-1 ? NULL : p->nodes[best].id;
}

static int place_one(struct pass *p, const fp_place_service *s, const fp_placement *current,
                     size_t ncurrent)
{
    size_t first = p->n; /* this service's placements start here */
    bool pinned = set(s->node);
    if (!pinned && !s->replicas) {
        /* every node of the role that carries the labels, as a static
         * definition runs on every node of its role */
        for (size_t i = 0; i < p->nnodes; i++)
            if (fp_place_eligible(s, &p->nodes[i]) && add(p, s, p->nodes[i].id, NULL, false) < 0)
                return -1;
        return 0;
    }
    unsigned want = s->replicas ? s->replicas : 1;
    const char *role = role_of(s);
    const char *leaving[FP_PLACE_LEAVING_MAX];
    size_t nleaving = 0;
    bool had = false;
    for (size_t i = 0; i < ncurrent; i++) {
        const fp_placement *c = &current[i];
        if (strcmp(c->service, s->name) != 0) continue;
        had = true;
        const fp_place_node *n = node_by_id(p, c->node, NULL);
        bool pinned_here = pinned && !strcmp(c->node, s->node);
        /* a node no longer joined, or not of the role or the labels any
         * more: gone */
        if ((!n && !pinned_here) || holds(p, first, c->node)) continue;
        if (n && !pinned_here &&
            (strcmp(n->role, role) != 0 || !fp_labels_match(n->labels, s->labels)))
            continue;
        if (n && n->health == FP_HEALTH_DEAD && s->always_on) {
            if (nleaving < FP_PLACE_LEAVING_MAX) leaving[nleaving++] = c->node;
            continue;
        }
        if (p->n - first < want && add(p, s, c->node, NULL, false) < 0) return -1;
    }
    /* the always-on placements on dead nodes: to the nearest healthy node,
     * or nowhere better: they stay */
    for (size_t i = 0; i < nleaving && p->n - first < want; i++) {
        const char *to = pick(p, first, s, leaving[i]);
        if (add(p, s, to ? to : leaving[i], to ? leaving[i] : NULL, to != NULL) < 0) return -1;
    }
    if (pinned && !had && p->n - first < want) {
        /* first placement: the node named, unless it is dead already */
        const fp_place_node *n = node_by_id(p, s->node, NULL);
        if (!n || n->health != FP_HEALTH_DEAD || !s->always_on) {
            if (add(p, s, n ? n->id : s->node, NULL, true) < 0) return -1;
        } else {
            const char *to = pick(p, first, s, n->id);
            if (add(p, s, to ? to : n->id, to ? n->id : NULL, true) < 0) return -1;
        }
    }
    while (p->n - first < want) {
        const char *to = pick(p, first, s, NULL);
        if (!to || add(p, s, to, NULL, true) < 0) return to ? -1 : 0;
    }
    return 0;
}

int fp_place_compute(const fp_place_service *services, size_t nservices, const fp_place_node *nodes,
                     size_t nnodes, const fp_placement *current, size_t ncurrent,
                     fp_placement **out, size_t *nout)
{
    struct pass p = {.nodes = nodes,
                     .nnodes = nnodes,
                     .load = calloc(nnodes + 1, sizeof(unsigned)),
                     .reserved = calloc(nnodes + 1, sizeof(uint64_t))};
    if (!p.load || !p.reserved) {
        free(p.load);
        free(p.reserved);
        return -1;
    }
    for (size_t i = 0; i < nnodes; i++) {
        p.load[i] = nodes[i].instances;
        p.reserved[i] = nodes[i].reserved;
    }
    for (size_t i = 0; i < nservices; i++) {
        if (!fp_place_dynamic(&services[i])) continue;
        if (place_one(&p, &services[i], current, ncurrent) < 0) {
            free(p.out);
            free(p.load);
            free(p.reserved);
            return -1;
        }
    }
    free(p.load);
    free(p.reserved);
    *out = p.out;
    *nout = p.n;
    return 0;
}
