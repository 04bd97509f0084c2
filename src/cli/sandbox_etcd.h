/* `fogport sandbox up --etcd`: an etcd cluster among the fogs, one member
 * per fog (at most three), so that the fogs hand always-on services over
 * among themselves while the cloud is away (agent/handover.h). With --netns
 * each member runs in its fog's network namespace on the fog's address
 * (ports 2379 and 2380), else on loopback ports. Data under DIR/etcd/ID
 * (fresh on every `up`), logs in DIR/etcd/ID.log, the members' pids in
 * DIR/etcd.json for `down`. */
#ifndef FP_CLI_SANDBOX_ETCD_H
#define FP_CLI_SANDBOX_ETCD_H

#include <jansson.h>
#include <stddef.h>

#include "core/error.h"

#define FP_SBETCD_MAX 3

typedef struct fp_sbetcd_member {
    const char *id;   /* the fog's id: the member's name */
    const char *addr; /* its address */
    const char *ns;   /* its network namespace, or NULL */
    unsigned client_port, peer_port;
} fp_sbetcd_member;

/* Start the members and wait until each answers healthy (a quorum
 * formed). endpoints gets the client URLs, comma separated, for the fogs'
 * [control] etcd; *record describes the members (topology.json). */
int fp_sbetcd_up(const char *dir, const fp_sbetcd_member *m, size_t n, char *endpoints, size_t len,
                 json_t **record, fp_error *err);
/* Stop the members DIR/etcd.json names (SIGTERM, then SIGKILL); 0 when
 * there were none. */
int fp_sbetcd_down(const char *dir);

#endif
