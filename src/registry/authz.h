/* Internal to src/registry: who may do what on this registry. Three modes,
 * from the [auth] configuration:
 *   none   - no [auth]: everything is allowed (tests, local demos);
 *   basic  - htpasswd users with HTTP Basic, the access policy decides;
 *   token  - token_realm set: requests carry a Bearer JWT from the token
 *            service (Docker token flow); its access claim decides.
 * A node with token_key also is a token service (/auth/token), and so is a
 * fog, with its token-signing certificate (x5c tokens; src/auth/x5c.h):
 * every registry with a deployment CA accepts those from the signers it
 * trusts (a fog itself, [auth] token_signers). */
#ifndef FP_REGISTRY_AUTHZ_H
#define FP_REGISTRY_AUTHZ_H

#include <stdbool.h>

#include "auth/access.h"
#include "auth/authdata.h"
#include "auth/htpasswd.h"
#include "auth/jwt.h"
#include "auth/nodes.h"
#include "auth/ratelimit.h"
#include "auth/x5c.h"
#include "core/config.h"

struct fp_req;

enum fp_auth_mode { FP_AUTH_NONE, FP_AUTH_BASIC, FP_AUTH_TOKEN };

#define FP_TOKEN_CACHE 128

/* A fog's token signer: its key and the x5c header value for its chain.
 * Reference counted: a renewal replaces it while requests still sign. */
typedef struct fp_signer {
    int refs;
    fp_key *key;
    fp_buf x5c;
} fp_signer;

typedef struct fp_authz {
    enum fp_auth_mode mode;
    const fp_config *cfg;
    fp_auth *htpasswd; /* users; NULL if none */
    /* configured or default; replaced when the file changes (under
     * cache_lock: read it with fp_authz_policy) */
    fp_policy *policy;
    struct fp_file_sig {
        unsigned long long ino, size;
        long long mtime_ns;
    } policy_sig, users_sig;   /* the files as last seen (authz_policy.c) */
    long long policy_checked;  /* CLOCK_MONOTONIC seconds of the last look */
    void (*on_change)(void *); /* told after the policy or users changed */
    void *on_change_ctx;
    /* a fog refused a login: fetch the cloud's auth data now (authz.c) */
    int auth_sync_wanted;
    long long auth_sync_hinted; /* CLOCK_MONOTONIC seconds of the last hint */
    fp_keyring *keys;           /* token verification keys */
    fp_key *signing;            /* token issuing key; NULL if not a token service */
    fp_ratelimit *logins;
    fp_nodes *nodes;     /* the cloud's joined nodes; NULL elsewhere */
    bool token_service;  /* serves /auth/token: a token key, or a fog */
    fp_x5c_trust *trust; /* the deployment CA for x5c tokens; NULL: none accepted */
    /* a fog: its signer and its copy of the cloud's auth data, replaced by
     * fp_authz_node_reload (under cache_lock; users take references) */
    fp_signer *signer;
    fp_authdata *synced;
    char cloud_realm[600]; /* a fog without a signer yet sends clients here */
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
/* Does the request carry a valid Bearer token (the cloud's, or its fog's)
 * that lets it read service's log? */
bool fp_authz_bearer_logs(struct fp_req *r, const char *service);
/* The access policy's answer for the logged-in principal of an API
 * request (Basic login, whatever the registry's mode): may it do action
 * on repo? */
bool fp_authz_policy_may(struct fp_req *r, const char *repo, unsigned action);
/* Check Basic credentials (rate limited). Fills r->user. Returns 1 when
 * valid, 0 when absent, -1 when wrong (refusal already answered). */
int fp_authz_basic(struct fp_req *r);
/* Too many failed logins from this address? Then answers 429 with
 * Retry-After and returns true. */
bool fp_authz_throttled(struct fp_req *r);
/* The cloud's node APIs: Basic credentials of a user or node are required;
 * otherwise answers 401 (or 429) and returns false. */
bool fp_authz_require_login(struct fp_req *r);
/* Any principal this registry knows: Basic credentials of a user or node,
 * or a valid Bearer token (of any scope). Open without [auth]. Otherwise
 * answers 401 (or 429) and returns false. */
bool fp_authz_require_principal(struct fp_req *r);
/* Verify a name and password: a joined node's credential (cloud) or an
 * htpasswd user. Fills r->user, r->kind, r->role. Not rate limited here. */
bool fp_authz_login(struct fp_req *r, const char *name, const char *password);
/* Replace the list of revoked nodes (ids, a JSON array). */
void fp_authz_set_revoked(fp_authz *a, const json_t *ids);
/* Is node id revoked (at the cloud: its directory; elsewhere: the list)? */
bool fp_authz_node_revoked(fp_authz *a, const char *id);
/* A fog: (re)load DATA/node/signer.{key,crt} and DATA/node/authdata.json
 * (its revoked nodes included), keeping what is there when a file is
 * missing or bad. */
void fp_authz_node_reload(fp_authz *a);
/* References to the signer and the synced auth data (NULL when none). */
fp_signer *fp_authz_signer(fp_authz *a);
void fp_signer_unref(fp_signer *s);
fp_authdata *fp_authz_synced(fp_authz *a);
/* A fog: did a refused login since the last call ask for a fetch of the
 * cloud's auth data (a node or user the fog does not know yet)? */
bool fp_authz_take_auth_sync(fp_authz *a);
/* The access policy in force (a reference: fp_policy_unref it). At most
 * once a second it looks at the policy and users files and, when either
 * changed, loads the policy again (a bad edit is logged and the last good
 * policy stays) and calls on_change (authz_policy.c). */
fp_policy *fp_authz_policy(fp_authz *a);
/* Remember how the files look now (at start, after loading them). */
void fp_authz_policy_seen(fp_authz *a);

/* The grant of a token whose header has x5c (authz_x5c.c); NULL with why
 * when it is refused. */
fp_grant *fp_authz_x5c_grant(fp_authz *a, const char *token, size_t len, const json_t *header,
                             time_t now, char *why, size_t whylen);

#endif
