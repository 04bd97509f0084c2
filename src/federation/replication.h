/* Push replication: the cloud makes chosen nodes hold chosen services
 * before anyone asks for them. Rules live in a file at the cloud
 * ([federation] replication), one per line:
 *
 *   REPOSITORY-PATTERN  TAG-PATTERN  TARGETS  [on-push | every DURATION]
 *   *                   *            role:fog on-push
 *   monitoring_*        1.*          fog-1,fog-3  every 10m
 *
 * (shell patterns; TARGETS: role:fog, role:edge or node ids). When a
 * matching tag is pushed (or at each scheduled pass) the cloud queues one
 * task per target node in its directory database. The control plane never
 * reaches into a node: each node polls its tasks, pulls the content through
 * its own registry and reports back. To cross the cloud's uplink once per
 * blob, the first target (the seed) fetches from the cloud and the others
 * are told to fetch via the seed, which shares one in-flight transfer with
 * all of them. Failed tasks are offered again with exponential backoff;
 * `fogport replication status` shows every task. */
#ifndef FP_FEDERATION_REPLICATION_H
#define FP_FEDERATION_REPLICATION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "core/config.h"
#include "core/error.h"
#include "federation/directory.h"
#include "federation/federation.h"

typedef struct fp_replication fp_replication;

/* Cloud: load the rules (none configured: *out NULL, 0). */
int fp_replication_open(fp_replication **out, const char *rules_path, fp_error *err);
void fp_replication_free(fp_replication *rp);

/* A node the cloud knows: for target matching. */
typedef struct fp_replication_node {
    const char *id;
    const char *role;
} fp_replication_node;

/* Cloud: repo:tag now points at digest; queue tasks for the rules that
 * match (on-push rules, or every rule when scheduled is true). */
int fp_replication_queue(fp_replication *rp, fp_directory *dir, const char *repo, const char *tag,
                         const char *digest, const fp_replication_node *nodes, size_t nnodes,
                         bool scheduled, fp_error *err);
/* Cloud: is a scheduled pass due for some rule (then call queue with
 * scheduled = true for every tag)? */
bool fp_replication_due(fp_replication *rp, time_t now);

/* Node: poll the cloud for tasks, carry them out, report. Runs on its own
 * thread while the node serves. */
typedef struct fp_replicator fp_replicator;
int fp_replicator_start(fp_replicator **out, const fp_config *cfg, fp_federation *fed,
                        fp_store *store, fp_error *err);
void fp_replicator_stop(fp_replicator *r);
/* What the node knows of its replication: tasks carried out (done,
 * failed) and their bytes, tasks of the last poll not yet carried out,
 * when the cloud last answered a poll (0: never). All zero for NULL. */
struct fp_replicator_stats {
    uint64_t done, failed, bytes, queued;
    time_t polled;
};
void fp_replicator_stats(fp_replicator *r, struct fp_replicator_stats *st);

#endif
