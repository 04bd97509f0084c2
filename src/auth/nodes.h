/* The cloud's node directory for identity: the nodes that joined (id, role,
 * a hashed secret, revoked or not) and one-time join tokens. Node secrets
 * are 256 random bits, so a SHA-256 of them is stored (no bcrypt needed:
 * nothing to brute-force) and compared in constant time. Lives in its own
 * SQLite file, DATA/identity.db, on the cloud. */
#ifndef FP_AUTH_NODES_H
#define FP_AUTH_NODES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/error.h"

typedef struct fp_nodes fp_nodes;

#define FP_NODE_ID_MAX 63

int fp_nodes_open(fp_nodes **out, const char *data_dir, fp_error *err);
void fp_nodes_close(fp_nodes *n);

bool fp_node_id_valid(const char *id);
bool fp_node_role_valid(const char *role);
/* The hex SHA-256 under which a node secret is stored. */
void fp_node_secret_hash(const char *secret, char out[65]);

/* A new one-time join token for role (and, optionally, a fixed node id),
 * valid for ttl seconds. token gets "fpj_" + 43 base64url characters. */
int fp_nodes_token_create(fp_nodes *n, const char *role, const char *id, unsigned ttl_s,
                          char token[64], fp_error *err);

/* Spend a join token for node id: on success the node is recorded and
 * secret gets its credential (shown once). Returns 1 when the token is
 * unknown, used or expired (or names another id), 2 when the id is taken. */
int fp_nodes_join(fp_nodes *n, const char *token, const char *id, char role[16], char secret[64],
                  fp_error *err);

/* Would fp_nodes_join accept token for id? (Nothing is spent.) */
bool fp_nodes_token_usable(fp_nodes *n, const char *token, const char *id);

/* Check a node's credential: 1 valid (role filled), 0 not. */
int fp_nodes_verify(fp_nodes *n, const char *id, const char *secret, char role[16]);
bool fp_nodes_revoked(fp_nodes *n, const char *id);
bool fp_nodes_known(fp_nodes *n, const char *id);
/* Returns 1 if there is no such node. */
int fp_nodes_revoke(fp_nodes *n, const char *id, fp_error *err);

typedef int (*fp_node_cb)(void *ctx, const char *id, const char *role, time_t created,
                          bool revoked);
int fp_nodes_list(fp_nodes *n, fp_node_cb cb, void *ctx, fp_error *err);

/* Every node as {"id", "role", "secret_sha256", "revoked"} (for fogs to
 * authenticate nodes while the cloud is unreachable; src/auth/authdata.h). */
json_t *fp_nodes_export(fp_nodes *n, fp_error *err);

#endif
