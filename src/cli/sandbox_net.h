/* The network of `fogport sandbox up --netns`: every node its own host. A
 * bridge in the root namespace holds the sandbox's gateway address (so the
 * CLI and tests on the host reach every node), each node gets a network
 * namespace, a veth pair (eth0 inside, on the bridge outside) and an address
 * of the sandbox's own /24, and tc shapes the cloud's uplink and the
 * fog-to-fog links. iproute2 (`ip`, `tc`) does the work, run without a
 * shell.
 *
 * Names carry a short random id, so several sandboxes run side by side:
 * bridge fpb-ID, namespaces fp-ID-NODE, host-side veths fpv-ID-INDEX (at
 * most 15 characters). DIR/netns.json records the id before anything is
 * created, so `sandbox down` can remove what a crashed `up` left. */
#ifndef FP_CLI_SANDBOX_NET_H
#define FP_CLI_SANDBOX_NET_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

/* The port every node listens on inside its own namespace. */
#define FP_SBNET_PORT 5000u
/* At most this many nodes (addresses .2 up to .254 of the /24). */
#define FP_SBNET_MAX_NODES 200u

typedef struct fp_sbnet {
    char id[8];                      /* 6 hex digits */
    char bridge[16];                 /* fpb-ID */
    char prefix[16];                 /* the /24's first three octets, "10.212.7" */
    char gateway[20];                /* PREFIX.1, the bridge's address */
    unsigned uplink_mbit, peer_mbit; /* 0: not shaped */
} fp_sbnet;

/* Can this process build namespaces (root, iproute2 present)? An error
 * message that says what is missing otherwise. */
int fp_sbnet_check(fp_error *err);

/* Choose an unused id and a /24 free on this host, record them in
 * DIR/netns.json and create the bridge with the gateway address. */
int fp_sbnet_create(fp_sbnet *net, const char *dir, fp_error *err);

/* Node `index` (0 the cloud): its namespace name and address, then the
 * namespace itself with lo up and a veth to the bridge. */
void fp_sbnet_node_names(const fp_sbnet *net, size_t index, const char *node_id, char *ns,
                         size_t nslen, char *addr, size_t addrlen);
int fp_sbnet_add_node(const fp_sbnet *net, size_t index, const char *node_id, fp_error *err);

/* Everything node `index` sends leaves at mbit (tbf on its eth0). */
int fp_sbnet_shape_all(const fp_sbnet *net, size_t index, const char *node_id, unsigned mbit,
                       fp_error *err);
/* What node `index` sends to each of peers leaves at mbit, a link of its
 * own per peer (htb class per destination); the rest is not shaped. */
int fp_sbnet_shape_peers(const fp_sbnet *net, size_t index, const char *node_id,
                         const char *const *peers, size_t npeers, unsigned mbit, fp_error *err);

/* In a child before exec: move into namespace ns. -1 with errno. */
int fp_sbnet_enter(const char *ns);

/* The sandbox's network for topology.json (caller decrefs). */
json_t *fp_sbnet_json(const fp_sbnet *net);

/* Remove what DIR/netns.json names: processes left in its namespaces
 * (SIGTERM, then SIGKILL), the namespaces, veths and bridge (their qdiscs
 * go with them), then netns.json. Best effort; things already gone are
 * fine. Returns whether DIR had a netns.json. */
bool fp_sbnet_destroy(const char *dir);

/* Does DIR hold a sandbox network record (a netns sandbox, or a crashed
 * `up` of one)? */
bool fp_sbnet_recorded(const char *dir);

#endif
