#include "registry/authz.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "registry/request.h"

#define CLOCK_SKEW_S 60

static fp_grant *grant_for(fp_authz *a, const char *token, char *why, size_t whylen);

int fp_authz_open(fp_authz **out, const fp_config *cfg, fp_error *err)
{
    fp_authz *a = calloc(1, sizeof *a);
    if (!a) return fp_error_set(err, ENOMEM, "authz");
    a->cfg = cfg;
    pthread_mutex_init(&a->cache_lock, NULL);
    a->mode = cfg->token_realm[0] ? FP_AUTH_TOKEN : cfg->htpasswd[0] ? FP_AUTH_BASIC : FP_AUTH_NONE;
    if (cfg->htpasswd[0] && fp_auth_open(&a->htpasswd, cfg->htpasswd, err) < 0) goto fail;
    if (cfg->policy[0] ? fp_policy_load(cfg->policy, &a->policy, err) < 0
                       : !(a->policy = fp_policy_default()))
        goto fail;
    fp_authz_policy_seen(a);
    a->logins = fp_ratelimit_new(cfg->login_failures, 60);
    a->keys = fp_keyring_new();
    if (!a->logins || !a->keys) {
        fp_error_set(err, ENOMEM, "authz");
        goto fail;
    }
    if (cfg->token_keys[0] && fp_keyring_load(a->keys, cfg->token_keys, err) < 0) goto fail;
    /* the cloud keeps the directory of joined nodes */
    if (!strcmp(cfg->node_role, "cloud") && fp_nodes_open(&a->nodes, cfg->data_dir, err) < 0)
        goto fail;
    if (cfg->token_key[0]) {
        if (fp_key_load(cfg->token_key, &a->signing, err) < 0) goto fail;
        /* a token service trusts its own tokens */
        fp_key *pub = NULL;
        if (fp_key_load(cfg->token_key, &pub, err) < 0 || fp_keyring_add(a->keys, pub) < 0)
            goto fail;
        if (!a->htpasswd) fp_warn("event=token_service_without_users hint=\"set [auth] htpasswd\"");
    }
    /* x5c tokens are verified against the deployment CA and nothing else:
     * the cloud's CA directory, or the CA certificate a node received */
    char ca[FP_PATH_MAX + 16] = "";
    if (cfg->node_ca[0])
        snprintf(ca, sizeof ca, "%s/ca.crt", cfg->node_ca);
    else if (cfg->node_cacert[0])
        snprintf(ca, sizeof ca, "%s", cfg->node_cacert);
    if (ca[0] && fp_x5c_trust_load(ca, &a->trust, err) < 0) goto fail;
    a->token_service = a->signing || !strcmp(cfg->node_role, "fog");
    if (!strcmp(cfg->node_role, "fog")) {
        snprintf(a->cloud_realm, sizeof a->cloud_realm, "%s/auth/token", cfg->node_cloud);
        fp_authz_node_reload(a);
    }
    if (a->mode == FP_AUTH_TOKEN && fp_keyring_size(a->keys) == 0) {
        fp_error_set(err, 0, "[auth] token_realm needs token_keys (or token_key)");
        goto fail;
    }
    *out = a;
    return 0;
fail:
    fp_authz_free(a);
    return -1;
}

void fp_authz_free(fp_authz *a)
{
    if (!a) return;
    for (int i = 0; i < FP_TOKEN_CACHE; i++) {
        fp_grant_unref(a->cache[i].grant);
        free(a->cache[i].token);
    }
    for (size_t i = 0; i < a->nrevoked; i++)
        free(a->revoked[i]);
    free(a->revoked);
    fp_auth_free(a->htpasswd);
    fp_policy_unref(a->policy);
    fp_keyring_free(a->keys);
    fp_key_free(a->signing);
    fp_ratelimit_free(a->logins);
    fp_nodes_close(a->nodes);
    fp_x5c_trust_free(a->trust);
    fp_signer_unref(a->signer);
    fp_authdata_unref(a->synced);
    pthread_mutex_destroy(&a->cache_lock);
    free(a);
}

/* What a request needs: an action on a repository, the catalog, or (for
 * /v2/) only to be authenticated. */
static unsigned required_action(fp_req *r)
{
    switch (r->route.kind) {
    case FP_ROUTE_CATALOG:
        return FP_ACT_CATALOG;
    case FP_ROUTE_UPLOAD_START:
    case FP_ROUTE_UPLOAD:
        return FP_ACT_PUSH;
    case FP_ROUTE_MANIFEST:
    case FP_ROUTE_BLOB:
        if (r->method == M_DELETE) return FP_ACT_DELETE;
        return (r->method == M_PUT) ? FP_ACT_PUSH : FP_ACT_PULL;
    case FP_ROUTE_TAGS:
    case FP_ROUTE_REFERRERS:
    case FP_ROUTE_RESOLVE:
        return FP_ACT_PULL;
    default:
        return 0;
    }
}

static void scope_text(fp_req *r, unsigned action, char *out, size_t outlen)
{
    if (action == FP_ACT_CATALOG)
        snprintf(out, outlen, "registry:catalog:*");
    else if (action)
        snprintf(out, outlen, "repository:%s:%s", r->route.name,
                 action == FP_ACT_PUSH     ? "pull,push"
                 : action == FP_ACT_DELETE ? "delete"
                                           : "pull");
    else
        out[0] = '\0';
}

static bool challenge(fp_req *r, unsigned action, const char *error)
{
    const fp_config *cfg = r->reg->authz->cfg;
    if (r->reg->authz->mode == FP_AUTH_BASIC) {
        snprintf(r->challenge, sizeof r->challenge, "Basic realm=\"%s\"", cfg->realm);
    } else {
        char scope[FP_NAME_MAX + 40];
        scope_text(r, action, scope, sizeof scope);
        /* a fog that cannot sign yet (its cloud has no CA, or was never
         * reachable since it joined) sends clients to the cloud */
        const char *realm = cfg->token_realm;
        fp_signer *sg = r->reg->authz->cloud_realm[0] ? fp_authz_signer(r->reg->authz) : NULL;
        if (r->reg->authz->cloud_realm[0] && !sg) realm = r->reg->authz->cloud_realm;
        fp_signer_unref(sg);
        int n = snprintf(r->challenge, sizeof r->challenge, "Bearer realm=\"%s\",service=\"%s\"",
                         realm, cfg->token_service);
        if (scope[0] && n > 0 && (size_t)n < sizeof r->challenge)
            n +=
                snprintf(r->challenge + n, sizeof r->challenge - (size_t)n, ",scope=\"%s\"", scope);
        if (error && n > 0 && (size_t)n < sizeof r->challenge)
            snprintf(r->challenge + n, sizeof r->challenge - (size_t)n, ",error=\"%s\"", error);
    }
    fp_respond_error(r, 401, "UNAUTHORIZED", "authentication required");
    return false;
}

static bool denied(fp_req *r)
{
    fp_respond_error(r, 403, "DENIED", "requested access to the resource is denied");
    return false;
}

bool fp_authz_throttled(fp_req *r)
{
    unsigned wait = fp_ratelimit_blocked(r->reg->authz->logins, r->remote);
    if (!wait) return false;
    r->retry_after = wait;
    fp_respond_error(r, 429, "TOOMANYREQUESTS", "too many failed attempts; retry in %u s", wait);
    return true;
}

int fp_authz_basic(fp_req *r)
{
    fp_authz *a = r->reg->authz;
    const char *h = fp_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Basic ", 6) != 0) return 0;
    if (fp_authz_throttled(r)) return -1;
    char name[64], pass[800];
    bool ok = fp_basic_decode(h, name, pass, sizeof pass) && fp_authz_login(r, name, pass);
    OPENSSL_cleanse(pass, sizeof pass);
    if (ok) return 1;
    fp_ratelimit_failure(a->logins, r->remote);
    fp_warn("event=login_failed remote=%s path=%s", r->remote, r->path);
    r->user[0] = '\0';
    return -1;
}

bool fp_authz_require_login(fp_req *r)
{
    if (fp_authz_basic(r) > 0) return true;
    if (!r->responded) {
        snprintf(r->challenge, sizeof r->challenge, "Basic realm=\"%s\"",
                 r->reg->authz->cfg->realm);
        fp_respond_error(r, 401, "UNAUTHORIZED", "authentication required");
    }
    return false;
}

bool fp_authz_require_principal(fp_req *r)
{
    fp_authz *a = r->reg->authz;
    /* a registry without [auth] lets everyone do everything */
    if (a->mode == FP_AUTH_NONE && !a->nodes) return true;
    const char *h = fp_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h && strncasecmp(h, "Bearer ", 7) == 0) {
        const char *token = h + 7;
        while (*token == ' ')
            token++;
        char why[128];
        fp_grant *g = grant_for(a, token, why, sizeof why);
        bool revoked = g && ((g->node && fp_authz_node_revoked(a, g->subject)) ||
                             (g->signer[0] && fp_authz_node_revoked(a, g->signer)));
        if (g && !revoked) {
            snprintf(r->user, sizeof r->user, "%s", g->subject);
            r->grant = g;
            return true;
        }
        fp_grant_unref(g);
        fp_warn("event=token_rejected remote=%s reason=\"%s\"", r->remote,
                revoked ? "node or signer revoked" : why);
    }
    return fp_authz_require_login(r);
}

/* A fog knows the cloud's nodes and users as of its last fetch: one that
 * joined or was added since is refused until the next. A refused login
 * asks the serve loop to fetch now, at most every AUTH_SYNC_HINT_S, so bad
 * logins cannot make the fog hammer the cloud. */
#define AUTH_SYNC_HINT_S 3
static void want_auth_sync(fp_authz *a)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = ts.tv_sec, last = __atomic_load_n(&a->auth_sync_hinted, __ATOMIC_RELAXED);
    if (last && now - last < AUTH_SYNC_HINT_S) return;
    if (__atomic_compare_exchange_n(&a->auth_sync_hinted, &last, now, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_RELAXED))
        __atomic_store_n(&a->auth_sync_wanted, 1, __ATOMIC_RELEASE);
}

bool fp_authz_take_auth_sync(fp_authz *a)
{
    return __atomic_exchange_n(&a->auth_sync_wanted, 0, __ATOMIC_ACQ_REL) != 0;
}

bool fp_authz_login(fp_req *r, const char *name, const char *password)
{
    fp_authz *a = r->reg->authz;
    if (a->nodes && fp_node_id_valid(name) && fp_nodes_verify(a->nodes, name, password, r->role)) {
        snprintf(r->user, sizeof r->user, "%s", name);
        snprintf(r->kind, sizeof r->kind, "node");
        return true;
    }
    /* a fog: the cloud's nodes and users, as last synced */
    fp_authdata *d = fp_authz_synced(a);
    bool synced = d && fp_authdata_login(d, name, password, r->user, r->kind, r->role);
    fp_authdata_unref(d);
    if (synced) return true;
    if (a->htpasswd && fp_auth_verify(a->htpasswd, name, password, r->user)) {
        snprintf(r->kind, sizeof r->kind, "user");
        r->role[0] = '\0';
        return true;
    }
    r->user[0] = '\0';
    if (!strcmp(a->cfg->node_role, "fog")) want_auth_sync(a);
    return false;
}

static fp_principal principal_of(fp_req *r)
{
    return (fp_principal){
        .kind = r->user[0] ? r->kind : "anonymous", .name = r->user, .role = r->role};
}

/* Verify a token: signed by a key of the keyring (kid), or by a signer
 * certificate (x5c; authz_x5c.c). */
static fp_grant *verify(fp_authz *a, const char *token, size_t tl, time_t now, char *why,
                        size_t whylen)
{
    json_t *header = fp_jwt_header(token, tl);
    fp_grant *g = NULL;
    if (json_object_get(header, "x5c")) {
        g = fp_authz_x5c_grant(a, token, tl, header, now, why, whylen);
        json_decref(header);
        return g;
    }
    json_decref(header);
    json_t *claims = NULL;
    if (fp_jwt_verify(token, tl, a->keys, &claims, why, whylen) < 0) return NULL;
    int rc = fp_grant_from_claims(claims, a->cfg->token_issuer, a->cfg->token_service, now,
                                  CLOCK_SKEW_S, &g, why, whylen);
    json_decref(claims);
    return rc < 0 ? NULL : g;
}

/* Look the token up in the cache, or verify it and remember the grant. The
 * slot comes from a cheap hash; the hit is decided by comparing the whole
 * token in constant time, so the hot path has no SHA-256 and no allocation. */
static fp_grant *grant_for(fp_authz *a, const char *token, char *why, size_t whylen)
{
    size_t tl = strlen(token);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < tl; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
    unsigned slot = (unsigned)(h % FP_TOKEN_CACHE);
    time_t now = time(NULL);
    pthread_mutex_lock(&a->cache_lock);
    fp_grant *g = a->cache[slot].grant;
    if (g && a->cache[slot].len == tl && CRYPTO_memcmp(a->cache[slot].token, token, tl) == 0 &&
        g->expires >= now - CLOCK_SKEW_S) {
        fp_grant_ref(g);
        pthread_mutex_unlock(&a->cache_lock);
        return g;
    }
    pthread_mutex_unlock(&a->cache_lock);

    g = verify(a, token, tl, now, why, whylen);
    if (!g) return NULL;
    char *copy = strdup(token);
    if (!copy) return g; /* valid, just not remembered */
    pthread_mutex_lock(&a->cache_lock);
    fp_grant *old = a->cache[slot].grant;
    char *old_token = a->cache[slot].token;
    a->cache[slot].token = copy;
    a->cache[slot].len = tl;
    a->cache[slot].grant = fp_grant_ref(g);
    pthread_mutex_unlock(&a->cache_lock);
    fp_grant_unref(old);
    free(old_token);
    return g;
}

static bool authorize_token(fp_req *r, unsigned need)
{
    const char *h = fp_req_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return challenge(r, need, NULL);
    const char *token = h + 7;
    while (*token == ' ')
        token++;
    char why[128];
    r->grant = grant_for(r->reg->authz, token, why, sizeof why);
    if (!r->grant) {
        fp_warn("event=token_rejected remote=%s reason=\"%s\"", r->remote, why);
        return challenge(r, need, "invalid_token");
    }
    snprintf(r->user, sizeof r->user, "%s", r->grant->subject);
    if (r->grant->node && fp_authz_node_revoked(r->reg->authz, r->user)) {
        fp_warn("event=token_rejected remote=%s reason=\"node %s is revoked\"", r->remote, r->user);
        return challenge(r, need, "invalid_token");
    }
    /* revoking a fog revokes its signer certificate: checked on every
     * request, so cached grants end with the revocation too */
    if (r->grant->signer[0] && fp_authz_node_revoked(r->reg->authz, r->grant->signer)) {
        fp_warn("event=token_rejected remote=%s reason=\"signer %s is revoked\"", r->remote,
                r->grant->signer);
        return challenge(r, need, "invalid_token");
    }
    if (!need) return true;
    if (need == FP_ACT_CATALOG)
        return r->grant->catalog ? true : challenge(r, need, "insufficient_scope");
    bool mentioned = false;
    unsigned have = fp_grant_actions(r->grant, r->route.name, &mentioned);
    if (have & need) return true;
    /* The token service saw this repository and refused: final. Not
     * mentioned: the client should fetch a token for it. */
    return mentioned ? denied(r) : challenge(r, need, "insufficient_scope");
}

bool fp_authorize(fp_req *r)
{
    fp_authz *a = r->reg->authz;
    if (a->mode == FP_AUTH_NONE) return true;
    unsigned need = required_action(r);
    if (a->mode == FP_AUTH_TOKEN) return authorize_token(r, need);

    int basic = fp_authz_basic(r);
    if (basic < 0) {
        if (!r->responded) challenge(r, need, NULL);
        return false;
    }
    fp_principal p = principal_of(r);
    bool anon = basic == 0;
    bool ok;
    fp_policy *pol = fp_authz_policy(a);
    if (!need)
        ok = !anon || fp_policy_may_list(pol, &p);
    else if (need == FP_ACT_CATALOG)
        ok = fp_policy_may_list(pol, &p);
    else
        ok = (fp_policy_actions(pol, &p, r->route.name) & need) != 0;
    fp_policy_unref(pol);
    if (ok) return true;
    return anon ? challenge(r, need, NULL) : denied(r);
}

bool fp_req_may(fp_req *r, const char *repo, unsigned action)
{
    fp_authz *a = r->reg->authz;
    switch (a->mode) {
    case FP_AUTH_NONE:
        return true;
    case FP_AUTH_TOKEN:
        if (!r->grant) return false;
        if (action == FP_ACT_PULL && r->route.kind == FP_ROUTE_CATALOG)
            return fp_grant_lists(r->grant, repo);
        return (fp_grant_actions(r->grant, repo, NULL) & action) != 0;
    case FP_AUTH_BASIC: {
        fp_principal p = principal_of(r);
        fp_policy *pol = fp_authz_policy(a);
        bool ok = (fp_policy_actions(pol, &p, repo) & action) != 0;
        fp_policy_unref(pol);
        return ok;
    }
    }
    return false;
}

bool fp_authz_bearer_logs(fp_req *r, const char *service)
{
    const char *h = fp_req_header(r, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    /* only the cloud mints log scopes: never a fog's signer (x5c) token */
    json_t *header = fp_jwt_header(h + 7, strlen(h + 7));
    bool x5c = !header || json_object_get(header, "x5c");
    json_decref(header);
    if (x5c) return false;
    char why[128];
    fp_grant *g = grant_for(r->reg->authz, h + 7, why, sizeof why);
    bool ok = g && fp_grant_service_logs(g, service);
    if (g) {
        snprintf(r->user, sizeof r->user, "%s", g->subject);
        snprintf(r->kind, sizeof r->kind, "user");
        fp_grant_unref(g);
    }
    return ok;
}

bool fp_authz_policy_may(fp_req *r, const char *repo, unsigned action)
{
    fp_principal p = principal_of(r);
    if (!r->user[0]) return false;
    fp_policy *pol = fp_authz_policy(r->reg->authz);
    /* no policy: whoever logged in may do everything */
    bool ok = !pol || (fp_policy_actions(pol, &p, repo) & action) != 0;
    fp_policy_unref(pol);
    return ok;
}

void fp_authz_set_revoked(fp_authz *a, const json_t *ids)
{
    size_t n = json_array_size(ids);
    char **list = calloc(n + 1, sizeof *list);
    if (!list) return;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *id = json_string_value(json_array_get(ids, i));
        if (id && fp_node_id_valid(id) && (list[k] = strdup(id))) k++;
    }
    pthread_mutex_lock(&a->cache_lock);
    char **old = a->revoked;
    size_t nold = a->nrevoked;
    a->revoked = list;
    a->nrevoked = k;
    pthread_mutex_unlock(&a->cache_lock);
    for (size_t i = 0; i < nold; i++)
        free(old[i]);
    free(old);
}

bool fp_authz_node_revoked(fp_authz *a, const char *id)
{
    if (a->nodes) return fp_nodes_revoked(a->nodes, id);
    bool revoked = false;
    pthread_mutex_lock(&a->cache_lock);
    for (size_t i = 0; i < a->nrevoked && !revoked; i++)
        revoked = !strcmp(a->revoked[i], id);
    pthread_mutex_unlock(&a->cache_lock);
    return revoked;
}

fp_signer *fp_authz_signer(fp_authz *a)
{
    pthread_mutex_lock(&a->cache_lock);
    fp_signer *s = a->signer;
    if (s) __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&a->cache_lock);
    return s;
}

void fp_signer_unref(fp_signer *s)
{
    if (!s || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    fp_key_free(s->key);
    fp_buf_free(&s->x5c);
    free(s);
}

fp_authdata *fp_authz_synced(fp_authz *a)
{
    pthread_mutex_lock(&a->cache_lock);
    fp_authdata *d = fp_authdata_ref(a->synced);
    pthread_mutex_unlock(&a->cache_lock);
    return d;
}

static void load_signer(fp_authz *a, const char *dir)
{
    char key[FP_PATH_MAX + 32], crt[FP_PATH_MAX + 32];
    snprintf(key, sizeof key, "%s/signer.key", dir);
    snprintf(crt, sizeof crt, "%s/signer.crt", dir);
    if (access(crt, F_OK) != 0) return;
    fp_signer *s = calloc(1, sizeof *s); /* zeroed: an empty fp_buf */
    if (!s) return;
    fp_error err;
    time_t not_after = 0;
    if (fp_x5c_signer_load(key, crt, &s->key, &s->x5c, &not_after, &err) < 0) {
        fp_warn("event=signer_unusable error=\"%s\"", err.msg);
        fp_buf_free(&s->x5c);
        free(s);
        return;
    }
    s->refs = 1;
    pthread_mutex_lock(&a->cache_lock);
    fp_signer *old = a->signer;
    a->signer = s;
    pthread_mutex_unlock(&a->cache_lock);
    fp_signer_unref(old);
}

static void load_synced(fp_authz *a, const char *dir)
{
    char path[FP_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/authdata.json", dir);
    if (access(path, F_OK) != 0) return;
    fp_authdata *d = NULL;
    fp_error err;
    if (fp_authdata_load(path, &d, &err) < 0) {
        fp_warn("event=authdata_unusable error=\"%s\"", err.msg);
        return;
    }
    json_t *ids = fp_authdata_revoked(d);
    fp_authz_set_revoked(a, ids);
    json_decref(ids);
    pthread_mutex_lock(&a->cache_lock);
    fp_authdata *old = a->synced;
    a->synced = d;
    pthread_mutex_unlock(&a->cache_lock);
    fp_authdata_unref(old);
}

void fp_authz_node_reload(fp_authz *a)
{
    char dir[FP_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/node", a->cfg->data_dir);
    load_signer(a, dir);
    load_synced(a, dir);
}
