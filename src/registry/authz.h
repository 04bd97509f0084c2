/* Internal to src/registry: who may do what on this registry. Three modes,
 * from the [auth] configuration:
 *   none   - no [auth]: everything is allowed (tests, local demos);
 *   basic  - htpasswd users with HTTP Basic, the access policy decides;
 *   token  - token_realm set: requests carry a Bearer JWT from the token
 *            service (Docker token flow); its access claim decides.
 * A node with token_key also is a token service (/auth/token). */
#ifndef FP_REGISTRY_AUTHZ_H
#define FP_REGISTRY_AUTHZ_H

#include <stdbool.h>

#include "auth/access.h"
#include "auth/htpasswd.h"
#include "auth/jwt.h"
#include "auth/nodes.h"
#include "auth/ratelimit.h"
#include "core/config.h"

struct fp_req;

enum fp_auth_mode { FP_AUTH_NONE, FP_AUTH_BASIC, FP_AUTH_TOKEN };

#define FP_TOKEN_CACHE 128

typedef struct fp_authz {
    enum fp_auth_mode mode;
    const fp_config *cfg;
    fp_auth *htpasswd; /* users; NULL if none */
    fp_policy *policy; /* configured or default */
    fp_keyring *keys;  /* token verification keys */
    fp_key *signing;   /* token issuing key; NULL if not a token service */
    fp_ratelimit *logins;
    fp_nodes *nodes; /* the cloud's joined nodes; NULL elsewhere */
    /* fog/edge: nodes the cloud has revoked (fetched periodically) */
    char **revoked;
    size_t nrevoked;
    pthread_mutex_t cache_lock;
    struct {
        char *token; /* the token itself: compared whole, in constant time */
        size_t len;
        fp_grant *grant;
    } cache[FP_TOKEN_CACHE];
} fp_authz;

int fp_authz_open(fp_authz **out, const fp_config *cfg, fp_error *err);
void fp_authz_free(fp_authz *a);

/* Decide a /v2 request before its handler runs; on refusal answers it
 * (401 with a challenge, 403 DENIED, 429) and returns false. */
bool fp_authorize(struct fp_req *r);
/* May the request's principal do `action` on repo? (mount sources,
 * catalog filtering) */
bool fp_req_may(struct fp_req *r, const char *repo, unsigned action);
/* Check Basic credentials (rate limited). Fills r->user. Returns 1 when
 * valid, 0 when absent, -1 when wrong (refusal already answered). */
int fp_authz_basic(struct fp_req *r);
/* Too many failed logins from this address? Then answers 429 with
 * Retry-After and returns true. */
bool fp_authz_throttled(struct fp_req *r);
/* Verify a name and password: a joined node's credential (cloud) or an
 * htpasswd user. Fills r->user, r->kind, r->role. Not rate limited here. */
bool fp_authz_login(struct fp_req *r, const char *name, const char *password);
/* Replace the list of revoked nodes (ids, a JSON array). */
void fp_authz_set_revoked(fp_authz *a, const json_t *ids);
/* Is node id revoked (at the cloud: its directory; elsewhere: the list)? */
bool fp_authz_node_revoked(fp_authz *a, const char *id);

#endif
