/* The sandbox's parts that its demo (sandbox_demo.c) builds on: starting
 * and stopping a deployment (sandbox.c). */
#ifndef FP_CLI_SANDBOX_H
#define FP_CLI_SANDBOX_H

#include <stdbool.h>

#include "cli/sandbox_net.h"

/* Start a cloud, fogs and edges in dir (net: with network namespaces, or
 * NULL for loopback ports; etcd: an etcd cluster among the fogs; edges run
 * edge_binary, or this program when NULL); returns the exit status, and on
 * failure has stopped what it started. */
int fp_sandbox_up(const char *dir, unsigned fogs, unsigned edges, fp_sbnet *net, bool etcd,
                  const char *edge_binary);
/* Stop everything `up` started in dir: nodes, their containers, network. */
int fp_sandbox_down(const char *dir);
/* Can the nodes' agents run containers here (root and runc or crun on PATH,
 * and FOGPORT_SANDBOX_LOOPBACK not set)? */
bool fp_sandbox_containers_possible(void);

/* `sandbox up --demo` (sandbox_demo.c): the paper's main job. */
int fp_sandbox_demo(const char *dir, unsigned fogs, unsigned edges, fp_sbnet *net, bool etcd,
                    const char *busybox);

#endif
