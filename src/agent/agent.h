/* The agent of a fog or edge node: runs the services the cloud places on
 * the node as confined OCI containers. It takes its desired state from the
 * cloud (GET /api/v1/agent/desired every [agent] sync), keeps it on disk so
 * the node goes on running its services while the cloud is away, and
 * converges: an image is held through the node's own registry (pulled
 * through from the nearest holder), its layers are unpacked once into a
 * cache shared by every service (agent/layers.h), mounted as an overlay
 * root (agent/rootfs.h), and run by runc or crun under a shim that
 * outlives the agent (agent/shim.h), with the limits of the definition
 * (agent/bundle.h). Restart policies, usage from the container's cgroup
 * (agent/cgroup.h) every second, and logs. After a restart the agent adopts
 * the containers that still run and removes the ones no longer wanted.
 *
 * On disk, DATA/agent/: desired.json, layers/ (the cache), runtime/ (the
 * runtime's state root), services/NAME/ (bundle: config.json, rootfs/, the
 * writable upper/ and work/ when asked for, state/ with the shim's log and
 * exit record, instance.json). Needs root. */
#ifndef FP_AGENT_AGENT_H
#define FP_AGENT_AGENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "federation/federation.h"
#include "store/store.h"

typedef struct fp_agent fp_agent;

/* *out is NULL (and 0 returned) when [agent] enabled is false or the node
 * is not a fog or edge. */
int fp_agent_start(fp_agent **out, const fp_config *cfg, fp_federation *fed, fp_store *store,
                   fp_error *err);
/* Stop the agent's thread. Containers keep running (their shims hold
 * them); the next start adopts them. */
void fp_agent_stop(fp_agent *a);

/* The node's recalled images (control/recallset.h; borrowed, outlives the
 * agent): a definition whose digest is recalled is not run, and what runs
 * from it is stopped and removed, even from the saved desired state. */
struct fp_recall_set;
void fp_agent_set_recalled(fp_agent *a, struct fp_recall_set *recalled);

/* The instances for the heartbeat: a new JSON array (NULL when a is NULL). */
json_t *fp_agent_status(fp_agent *a);

/* The images this node runs or is about to run, as a JSON array of
 * manifest digests for fp_evict_opts.pinned: malloc'd, NULL when a is
 * NULL or before the agent's first pass (then nothing may be evicted). */
char *fp_agent_pinned(fp_agent *a);

/* The last `tail` bytes of a service's log (older file first). 1 when the
 * node runs no such service. *out is malloc'd. */
int fp_agent_logs(fp_agent *a, const char *service, size_t tail, char **out, size_t *len,
                  fp_error *err);

/* Without a running agent: stop and remove every container the agent of
 * the node with this data directory ran, and unmount their roots (what
 * `sandbox down` does after stopping the nodes). */
int fp_agent_purge(const char *data_dir, fp_error *err);

#endif
