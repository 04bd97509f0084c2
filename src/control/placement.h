/* Placement: which nodes run which service, and where an always-on service
 * goes when its node dies. A pure function of the definitions, the nodes
 * (role, health from their heartbeats, storage, reported instances) and
 * the placements made before, so it is tested without a cloud; the
 * controller (registry/h_control.c) feeds it every tick and keeps the
 * result in control.db.
 *
 * Only "dynamic" definitions are placed here: an always-on one pinned to a
 * node, or one with a replica count. The rest (a node without always_on,
 * every node of a role) are where their definition says, as before
 * (fp_service_placed_on). */
#ifndef FP_CONTROL_PLACEMENT_H
#define FP_CONTROL_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef enum fp_health {
    FP_HEALTH_UNSEEN = 0, /* never reported a heartbeat */
    FP_HEALTH_HEALTHY,
    FP_HEALTH_SUSPECT, /* silent for more than suspect_after */
    FP_HEALTH_DEAD,    /* silent for more than dead_after */
} fp_health;

const char *fp_health_name(fp_health h);
/* From the last heartbeat's time (0: none). A gap equal to a threshold is
 * not yet over it: heartbeats are stamped in whole seconds. */
fp_health fp_health_of(time_t last_seen, time_t now, unsigned suspect_after_s,
                       unsigned dead_after_s);

typedef struct fp_place_node {
    const char *id;
    const char *role;   /* "fog", "edge" */
    const char *url;    /* where it is reached (NULL: unknown): its children name it */
    const char *parent; /* its parent's URL: the directory's tree gives proximity */
    const char *labels; /* "k=v,k=v" from its [node] labels (NULL: none) */
    fp_health health;
    uint64_t capacity, used; /* storage, bytes; capacity 0: unknown (not full) */
    uint64_t memory;         /* bytes of RAM it reports; 0: unknown (fits anything) */
    uint64_t reserved;       /* memory limits of the instances it reported */
    unsigned instances;      /* instances its agent reported */
} fp_place_node;

typedef struct fp_place_service {
    const char *name;
    const char *node; /* pinned to this node ("" or NULL: none) */
    const char *role; /* or over this role's nodes */
    bool always_on;
    unsigned replicas;        /* 0: every node of the role (placed here only with labels) */
    const char *labels;       /* "k=v,k=v": only nodes carrying all of them (NULL: any) */
    const char *prefer_label; /* "k=v": nodes carrying it first (NULL: none) */
    const char *near;         /* a node id: the nodes closest to it in the tree first */
    uint64_t memory;          /* its memory limit: a node must have that much unreserved */
} fp_place_service;

typedef struct fp_placement {
    const char *service; /* points into the services given */
    const char *node;    /* points into the nodes given, or into current */
    const char *from;    /* handed over from this (dead) node, else NULL; into current */
} fp_placement;

/* Is the definition placed by fp_place_compute? */
bool fp_place_dynamic(const fp_place_service *s);

/* Does a node carrying labels ("k=v,k=v") carry every k=v of selector?
 * An empty or NULL selector matches every node. */
bool fp_labels_match(const char *labels, const char *selector);
/* Hops between two nodes in the directory's tree (parent URLs; the cloud,
 * or any parent that is not a node, is a root); FP_PLACE_FAR when they
 * share no root. */
#define FP_PLACE_FAR 1000u
unsigned fp_place_distance(const fp_place_node *nodes, size_t nnodes, const char *a, const char *b);
/* Could the node run the service at all, health aside: its role (or the
 * fog a pinned service leaves for), its labels and its memory? */
bool fp_place_eligible(const fp_place_service *s, const fp_place_node *n);

/* The placements of every dynamic service, given the current ones (which
 * may name services or nodes that are gone). Stable: a placement on a node
 * that is not dead stays. A placement on a dead node stays too unless the
 * service is always on and another node can take it, then that node gets
 * it with .from = the dead node. Missing placements (a new service, more
 * replicas) go to healthy, eligible nodes of the service's role (the
 * pinned node first), preferring nodes with the preferred label, then the
 * nodes nearest the service's `near` node (else the node left), with free
 * storage, with fewer instances, then by id. A definition with labels and
 * no replica count is placed on every eligible node of its role, whatever
 * their health (as a static one). An always-on service pinned to a node is
 * handed over to fogs only. *out is malloc()ed (free
 * it; may be NULL when *nout is 0); -1 on allocation failure. */
int fp_place_compute(const fp_place_service *services, size_t nservices, const fp_place_node *nodes,
                     size_t nnodes, const fp_placement *current, size_t ncurrent,
                     fp_placement **out, size_t *nout);

#endif
