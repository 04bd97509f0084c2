/* The registry: the OCI Distribution v1.1 HTTP API over a store, served by
 * libmicrohttpd. Public face used by `fogport serve`. */
#ifndef FP_REGISTRY_REGISTRY_H
#define FP_REGISTRY_REGISTRY_H

#include <jansson.h>
#include <stdbool.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "federation/federation.h"
#include "store/store.h"

typedef struct fp_registry fp_registry;

/* Start serving cfg->listen in background threads. recalled (borrowed,
 * outlives the registry) is what it refuses from its first request: a
 * fog or edge fills it before, the cloud fills it here from control.db. */
struct fp_recall_set;
int fp_registry_start(fp_registry **out, const fp_config *cfg, fp_store *store,
                      struct fp_recall_set *recalled, fp_error *err);
/* What fp_registry_start refuses before it opens anything: the listen
 * address, [tls] (both cert and key), a cloud's node policy. */
int fp_registry_check(const fp_config *cfg, fp_error *err);
/* The port actually bound (useful with port 0). */
unsigned fp_registry_port(const fp_registry *r);
/* A fog or edge: replace the list of nodes the cloud has revoked (a JSON
 * array of ids); their tokens are refused from now on. */
void fp_registry_set_revoked(fp_registry *r, const json_t *ids);
/* Fetch what this node misses from other nodes (set before serving). */
void fp_registry_set_federation(fp_registry *r, fp_federation *fed);
/* The node's agent, for GET /api/v1/logs/SERVICE (NULL: none). */
struct fp_agent;
void fp_registry_set_agent(fp_registry *r, struct fp_agent *agent);
/* A fog's replicator, for what /metrics tells of its replication. */
struct fp_replicator;
void fp_registry_set_replicator(fp_registry *r, struct fp_replicator *rp);
/* From the serve loop (every second): scheduled replication passes and
 * usage history upkeep (cloud). */
void fp_registry_tick(fp_registry *r, time_t now);
/* A fog: take up its renewed signer certificate and refreshed auth data
 * from DATA/node/ (src/auth/cloudapi.h). */
void fp_registry_node_reload(fp_registry *r);
/* A fog: has a refused login asked for the cloud's auth data since the
 * last call (src/registry/authz.h)? */
bool fp_registry_take_auth_sync(fp_registry *r);
/* Readiness (GET /readyz): why the node may not serve yet (a constant
 * string; NULL: ready as far as the caller knows; "starting" until first
 * set), and the answer, which also asks the store and, on a fog, for the
 * cloud's auth data. */
void fp_registry_set_unready(fp_registry *r, const char *why);
const char *fp_registry_unready(fp_registry *r);
/* Stop accepting, finish in-flight requests, free. */
void fp_registry_stop(fp_registry *r);

#endif
