/* A fog or edge node's identity: on its first start it joins the cloud with
 * its one-time token (POST /api/v1/join, with a certificate request for its
 * names) and keeps what it receives in DATA/node/: credential.json (its id
 * and secret, 0600), ca.crt, token.pub, tls.key and tls.crt. On every start
 * the node's configuration is then completed from there: tokens come from
 * the cloud's token service, are verified with the cloud's key, and must be
 * addressed to this node (its id is its service name). */
#ifndef FP_AUTH_JOIN_H
#define FP_AUTH_JOIN_H

#include "core/config.h"
#include "core/error.h"

/* No-op unless [node] role is fog or edge. */
int fp_node_prepare(fp_config *cfg, fp_error *err);

#endif
