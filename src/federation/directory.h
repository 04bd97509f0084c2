/* The cloud's node directory: where each joined node can be reached (its
 * advertised registry URL), its parent, the storage it offers and when it
 * was last heard of. Nodes report every [federation] heartbeat seconds
 * (POST /api/v1/heartbeat with their credential); every node and operator
 * can read the whole (GET /api/v1/nodes), which is how fogs find their
 * peers and `fogport nodes` shows the deployment. Identity (who joined,
 * revoked or not) stays in auth/nodes; this is only where and how. Lives in
 * DATA/directory.db on the cloud. */
#ifndef FP_FEDERATION_DIRECTORY_H
#define FP_FEDERATION_DIRECTORY_H

#include <stdint.h>
#include <jansson.h>
#include <time.h>

#include "core/config.h"
#include "core/digest.h"
#include "core/error.h"

typedef struct fp_directory fp_directory;

int fp_directory_open(fp_directory **out, const char *data_dir, fp_error *err);
void fp_directory_close(fp_directory *d);

typedef struct fp_directory_entry {
    const char *id;
    const char *url;
    const char *parent_url;
    uint64_t capacity;
    uint64_t used;
    time_t last_seen;
} fp_directory_entry;

/* Record a heartbeat (now) from node e->id. */
int fp_directory_report(fp_directory *d, const fp_directory_entry *e, fp_error *err);
typedef int (*fp_directory_cb)(void *ctx, const fp_directory_entry *e);
int fp_directory_list(fp_directory *d, fp_directory_cb cb, void *ctx, fp_error *err);

/* Replication tasks (federation/replication.h): one per target node and
 * repository tag. */
typedef struct fp_task {
    int64_t id;
    const char *node, *repo, *tag, *digest;
    const char *via;   /* fetch through this node first ("" for none) */
    const char *state; /* pending, running, done, failed */
    const char *error;
    unsigned attempts;
    uint64_t bytes;
    time_t updated, next_attempt;
} fp_task;

/* Queue (or re-queue) node's copy of repo:tag at digest. */
int fp_directory_task_put(fp_directory *d, const char *node, const char *repo, const char *tag,
                          const char *digest, const char *via, fp_error *err);
typedef int (*fp_task_cb)(void *ctx, const fp_task *t);
/* node NULL: every task. offer: only what node should do now (pending or
 * due for a retry, a seed's followers once the seed has started, a task
 * stuck running for two minutes). */
int fp_directory_tasks(fp_directory *d, const char *node, bool offer, fp_task_cb cb, void *ctx,
                       fp_error *err);
/* The node's report on its task: state running, done or failed. Returns 1
 * when there is no such task of that node. */
int fp_directory_task_report(fp_directory *d, int64_t id, const char *node, const char *state,
                             uint64_t bytes, const char *error, fp_error *err);

/* Node side: this node's URL as others reach it ([node] url, else derived
 * from [server] listen and TLS). */
void fp_node_advertised_url(const fp_config *cfg, char *out, size_t outlen);
/* Node side: report to the cloud, with the agent's instances (a JSON
 * array, stolen; NULL when the node runs no agent). recalls gets the
 * version of the cloud's recall list from the answer ("" when it gave
 * none: an older cloud). */
int fp_directory_heartbeat(const fp_config *cfg, json_t *instances, char recalls[FP_DIGEST_MAX],
                           fp_error *err);

#endif
