/* Hand-over among the fogs while the cloud is away (docs/control.md,
 * "Hand-over without the cloud"). With `[control] etcd` set, a fog's agent
 * keeps an etcd lease (TTL `[control] lease`, renewed every third of it)
 * and the key /fogport/fogs/ID under it. While the cloud answers, nothing
 * changes: the cloud places. Once it has been silent for longer than
 * `[control] dead_after`, an always-on service (one pinned to a node)
 * runs only on the fog that holds /fogport/always-on/NAME under its live
 * lease: its own fog claims it; when that fog's key is gone (its lease
 * expired), the first fog alive in etcd (id order) claims it with a
 * transaction that succeeds only if the key does not exist, and starts it.
 * A fog that cannot renew its lease stops what it runs on a claim before
 * the lease can expire in etcd: no second copy runs. When the cloud is
 * back, the fog reports what it runs on a claim ("claimed" in its
 * heartbeat), the cloud adopts it, and the claim is released after the
 * cloud has answered for dead_after.
 *
 * A thread of its own talks to etcd; the agent's pass asks
 * fp_handover_view what to run. */
#ifndef FP_AGENT_HANDOVER_H
#define FP_AGENT_HANDOVER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"
#include "core/error.h"

typedef struct fp_handover fp_handover;

/* *out NULL (and 0) when [control] etcd is empty. state_dir keeps the
 * peers' always-on services the cloud last listed (always-on.json). */
int fp_handover_start(fp_handover **out, const fp_config *cfg, const char *state_dir,
                      fp_error *err);
/* Stops the thread; the lease is left to expire (what runs on it still
 * runs: releasing it early would let a second copy start). */
void fp_handover_stop(fp_handover *h);

/* The cloud answered /api/v1/agent/desired with doc ("always_on": the
 * fogs' always-on services and where the cloud placed them). */
void fp_handover_cloud_answered(fp_handover *h, const json_t *doc);

typedef struct fp_handover_view {
    json_t *services; /* the definitions to run now (a new array) */
    json_t *claimed;  /* object: names run on this fog's claim, not the cloud's word */
    json_t *held;     /* object: names to keep as they are but not start yet */
    json_t *fenced;   /* object: names left out because this fog's lease may be gone:
                       * stop them at once (no grace: another fog may start them soon) */
} fp_handover_view;

/* What to run of desired (the cloud's last list) in this pass. */
void fp_handover_view_of(fp_handover *h, const json_t *desired, fp_handover_view *v);
void fp_handover_view_free(fp_handover_view *v);

/* The fog that claims a service whose node left: the first of the fogs
 * alive in etcd by id, other than the one it leaves. NULL: none. */
const char *fp_handover_rank(const char *const *alive, size_t n, const char *leaving);

/* Is the definition one the fogs hand over (always on, pinned to a node,
 * no replica count)? */
bool fp_handover_kind(const json_t *def);

#endif
