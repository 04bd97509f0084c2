/* A joined node's calls to the cloud, each with its node credential (and
 * its TLS certificate, for a cloud that requires mutual TLS):
 *   - every node: the revoked node ids (GET /api/v1/revoked);
 *   - a fog: its token-signing certificate (POST /api/v1/signer), kept in
 *     DATA/node/signer.key (0600) and signer.crt, renewed when a third of
 *     its lifetime is left; and the auth data (GET /api/v1/authdata), kept
 *     in DATA/node/authdata.json (0600). Both let it issue tokens while the
 *     cloud is unreachable (docs/security.md). */
#ifndef FP_AUTH_CLOUDAPI_H
#define FP_AUTH_CLOUDAPI_H

#include <jansson.h>
#include <stdbool.h>

#include "core/config.h"
#include "core/error.h"
#include "core/http_client.h"

/* GET (body NULL) or POST cloud/path as this node; a 2xx answer into
 * resp, anything else an error. */
int fp_node_call_cloud(const fp_config *cfg, const char *path, const char *body,
                       fp_http_response *resp, fp_error *err);

/* On success *ids is a JSON array of node ids, also kept in
 * DATA/node/revoked.json. */
int fp_node_fetch_revoked(const fp_config *cfg, json_t **ids, fp_error *err);
/* The list kept by the last successful fetch (NULL if none). */
json_t *fp_node_saved_revoked(const fp_config *cfg);
/* The recalled images (GET /api/v1/recalls, control/recallset.h), waiting
 * at most timeout_s: on success *records is a JSON array, also kept in
 * DATA/node/recalls.json. */
int fp_node_fetch_recalls(const fp_config *cfg, unsigned timeout_s, json_t **records,
                          fp_error *err);
/* The recalls kept by the last successful fetch (NULL if none). */
json_t *fp_node_saved_recalls(const fp_config *cfg);
/* Obtain a signer certificate unless the current one has more than a third
 * of its lifetime left. *changed says whether the files were replaced. */
int fp_node_sync_signer(const fp_config *cfg, bool *changed, fp_error *err);
/* Fetch the auth data; the file is rewritten only when it changed. */
int fp_node_sync_authdata(const fp_config *cfg, bool *changed, fp_error *err);

#endif
