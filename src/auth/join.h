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

#include "core/http_client.h"

/* This node's credential for calls to other nodes: Basic "id:secret" (for
 * token services), the deployment CA to verify them with, and its TLS
 * certificate for clouds that require mutual TLS. */
typedef struct fp_node_cred {
    char userpwd[160];
    char cacert[FP_PATH_MAX];
    char cert[FP_PATH_MAX + 32];
    char key[FP_PATH_MAX + 32];
    bool has_cert;
} fp_node_cred;

int fp_node_cred_load(const fp_config *cfg, fp_node_cred *c, fp_error *err);
/* Point opts at the credential (which must outlive them). */
void fp_node_cred_opts(const fp_node_cred *c, fp_http_opts *o);
/* Wipe the secret. */
void fp_node_cred_clear(fp_node_cred *c);

/* No-op unless [node] role is fog or edge. */
int fp_node_prepare(fp_config *cfg, fp_error *err);

#endif
