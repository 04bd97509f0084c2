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
    const char *parent; /* its parent's URL: nodes under the same parent are near */
    fp_health health;
    uint64_t capacity, used; /* storage, bytes; capacity 0: unknown (not full) */
    unsigned instances;      /* instances its agent reported */
} fp_place_node;

typedef struct fp_place_service {
    const char *name;
    const char *node; /* pinned to this node ("" or NULL: none) */
    const char *role; /* or over this role's nodes */
    bool always_on;
    unsigned replicas; /* 0: every node of the role (not placed here) */
} fp_place_service;

typedef struct fp_placement {
    const char *service; /* points into the services given */
    const char *node;    /* points into the nodes given, or into current */
    const char *from;    /* handed over from this (dead) node, else NULL; into current */
} fp_placement;

/* Is the definition placed by fp_place_compute? */
bool fp_place_dynamic(const fp_place_service *s);

/* The placements of every dynamic service, given the current ones (which
 * may name services or nodes that are gone). Stable: a placement on a node
 * that is not dead stays. A placement on a dead node stays too unless the
 * service is always on and another node can take it, then that node gets
 * it with .from = the dead node. Missing placements (a new service, more
 * replicas) go to healthy nodes of the service's role (the pinned node
 * first), preferring nodes under the same parent as the node left, with
 * free storage, with fewer instances, then by id. An always-on service
 * pinned to a node is handed over to fogs only. *out is malloc()ed (free
 * it; may be NULL when *nout is 0); -1 on allocation failure. */
int fp_place_compute(const fp_place_service *services, size_t nservices, const fp_place_node *nodes,
                     size_t nnodes, const fp_placement *current, size_t ncurrent,
                     fp_placement **out, size_t *nout);

#endif
