/* What a fog needs to authenticate and authorize on its own while the cloud
 * is unreachable: the cloud's access policy (its text), its htpasswd
 * entries (bcrypt hashes) and its joined nodes (id, role, the SHA-256 of
 * the node secret, revoked or not). The cloud serves it to fogs only (GET
 * /api/v1/authdata); a fog keeps the last copy in DATA/node/authdata.json
 * (0600), so it works after a restart during an outage. Shared between the
 * request threads by reference counting; replaced whole on each refresh. */
#ifndef FP_AUTH_AUTHDATA_H
#define FP_AUTH_AUTHDATA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "auth/access.h"
#include "auth/nodes.h"
#include "core/error.h"

/* The cloud: the document as JSON text (caller frees), from its policy
 * file and htpasswd file (either path may be "") and its node directory. */
int fp_authdata_build(const char *policy_path, const char *htpasswd_path, fp_nodes *nodes,
                      char **json, fp_error *err);

typedef struct fp_authdata fp_authdata;

/* A fog: parse the document (no policy text: the default policy). */
int fp_authdata_parse(const char *text, size_t len, fp_authdata **out, fp_error *err);
int fp_authdata_load(const char *path, fp_authdata **out, fp_error *err);
fp_authdata *fp_authdata_ref(fp_authdata *d);
void fp_authdata_unref(fp_authdata *d);

const fp_policy *fp_authdata_policy(const fp_authdata *d);
/* A node's or a user's name and password. Nodes (not revoked) first, then
 * users. On success fills user, kind ("node"/"user") and role. */
bool fp_authdata_login(fp_authdata *d, const char *name, const char *password, char user[64],
                       char kind[8], char role[16]);
/* The revoked node ids, a JSON array (new reference). */
json_t *fp_authdata_revoked(const fp_authdata *d);

#endif
