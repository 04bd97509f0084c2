/* Calls from this node to another node's registry: its own identity (a
 * token from the token service named in the holder's challenge, obtained
 * with the node credential and cached per holder and repository until it
 * expires; the cloud signs its own) and the forwarding headers. The holder decides what this node
 * may pull, so a fog never gets from a peer what the cloud's policy does
 * not grant it. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/fs.h"
#include "core/log.h"
#include "federation/fed_internal.h"

/* A fog fetches auth data within a second of a refused login (its serve
 * loop's tick) and the fetch is one request to the cloud. */
#define TOKEN_RETRY_MS 1500

static unsigned slot_of(const char *key)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % FED_TOKEN_SLOTS;
}

/* The cached token for key (a copy the caller frees), or NULL. */
static char *cached_token(fp_federation *f, const char *key)
{
    char *t = NULL;
    pthread_mutex_lock(&f->lock);
    struct fed_token *s = &f->tokens[slot_of(key)];
    if (s->token && !strcmp(s->key, key) && s->expires > time(NULL)) t = strdup(s->token);
    pthread_mutex_unlock(&f->lock);
    return t;
}

static void remember_token(fp_federation *f, const char *key, const char *token, unsigned ttl)
{
    char *copy = strdup(token);
    if (!copy) return;
    pthread_mutex_lock(&f->lock);
    struct fed_token *s = &f->tokens[slot_of(key)];
    free(s->token);
    s->token = copy;
    snprintf(s->key, sizeof s->key, "%s", key);
    /* renew a little early: the token must still be valid when it arrives */
    s->expires = time(NULL) + (ttl > 20 ? ttl - 10 : ttl / 2);
    pthread_mutex_unlock(&f->lock);
}

/* Does url start with base's scheme://host:port (followed by '/' or end)? */
static bool same_origin(const char *url, const char *base)
{
    if (!base[0]) return false;
    const char *hs = strstr(base, "://");
    if (!hs) return false;
    size_t n = strcspn(hs + 3, "/") + (size_t)(hs + 3 - base);
    return !strncmp(url, base, n) && (url[n] == '/' || url[n] == '\0');
}

/* The cloud's token for a fog: signed with the cloud's token key, which
 * every fog trusts, addressed to that fog alone (its id is its service)
 * and granting only pull on the one repository. The cloud's policy already
 * allowed the request it fetches for; the cloud is that policy's author. */
static char *cloud_token(fp_federation *f, const struct fp_source *src, const char *repo,
                         unsigned *ttl, fp_error *err)
{
    const fp_config *cfg = f->cfg;
    time_t now = time(NULL);
    *ttl = cfg->token_ttl_s ? cfg->token_ttl_s : 300;
    unsigned char raw[16];
    char jti[33];
    if (fp_random_bytes(raw, sizeof raw) < 0) {
        fp_error_set(err, errno, "random");
        return NULL;
    }
    for (int i = 0; i < 16; i++)
        snprintf(jti + 2 * i, 3, "%02x", raw[i]);
    json_t *claims = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:[{s:s, s:s, s:[s]}], s:{s:s}}", "iss",
        cfg->token_issuer, "sub", cfg->node_id[0] ? cfg->node_id : "cloud", "aud", src->id, "exp",
        (json_int_t)(now + *ttl), "nbf", (json_int_t)(now - 10), "iat", (json_int_t)now, "jti", jti,
        "access", "type", "repository", "name", repo, "actions", "pull", "fogport", "kind", "node");
    fp_buf token = FP_BUF_INIT;
    int rc =
        claims ? fp_jwt_sign(f->signing, claims, &token, err) : fp_error_set(err, ENOMEM, "claims");
    json_decref(claims);
    if (rc < 0) {
        fp_buf_free(&token);
        return NULL;
    }
    return token.data;
}

int fp_fed_call(fp_federation *f, const struct fp_source *src, const char *method, const char *path,
                const char *repo, const fp_fed_origin *o, const char *const *extra,
                fp_http_opts *opts, fp_http_response *resp, fp_error *err)
{
    /* A peer only serves what it holds; the parent may forward further up,
     * one hop more. */
    char hops[48];
    const char *headers[12];
    size_t nh = 0;
    if (src->parent) {
        snprintf(hops, sizeof hops, "Fogport-Hops: %u", (o ? o->hops : 0) + 1);
        headers[nh++] = hops;
    } else {
        headers[nh++] = "Fogport-Peer: 1";
    }
    for (const char *const *h = extra; h && *h && nh < 11; h++)
        headers[nh++] = *h;
    headers[nh] = NULL;
    opts->headers = headers;
    fp_node_cred_opts(&f->cred, opts);
    const char *userpwd = opts->userpwd;
    opts->userpwd = NULL; /* credentials go to the token service only */

    char url[1024], key[640];
    snprintf(url, sizeof url, "%s%s", src->url, path);
    snprintf(key, sizeof key, "%s %s", src->url, repo);
    char *token = cached_token(f, key);
    if (!token && f->signing) {
        unsigned ttl;
        if (!(token = cloud_token(f, src, repo, &ttl, err))) {
            memset(resp, 0, sizeof *resp);
            return -1;
        }
        remember_token(f, key, token, ttl);
    }
    int rc = fp_http_request(method, url, opts, token, NULL, resp, err);
    free(token);
    /* the cloud's own token is all it has: a 401 stands */
    if (rc < 0 || resp->status != 401 || f->signing) return rc;
    if (strncasecmp(resp->www_authenticate, "Bearer ", 7) != 0) return 0;

    char challenge[sizeof resp->www_authenticate];
    memcpy(challenge, resp->www_authenticate, sizeof challenge);
    fp_http_response_free(resp);
    /* The node credential goes only to a token service of the deployment:
     * the cloud's or the holder's own. A holder naming any other realm
     * would be harvesting credentials. */
    char realm[512] = "";
    fp_http_challenge_param(challenge, "realm", realm, sizeof realm);
    if (!same_origin(realm, f->cfg->node_cloud) && !same_origin(realm, src->url)) {
        memset(resp, 0, sizeof *resp);
        return fp_error_set(err, 0, "%s names a token service outside the deployment (%.200s)",
                            src->id, realm);
    }
    fp_http_opts topts = *opts;
    topts.userpwd = userpwd;
    topts.timeout_s = 10;
    fp_buf fresh = FP_BUF_INIT;
    unsigned ttl = 60;
    int got = fp_http_fetch_token(challenge, &topts, &fresh, &ttl, err);
    if (got < 0 && err->errnum == EACCES && !same_origin(realm, f->cfg->node_cloud)) {
        /* A fog knows the deployment's nodes as of its last auth-data
         * fetch: a node that joined since is refused, and the refusal makes
         * the fog fetch at once (registry/authz.c). Ask once more when it
         * has, rather than fail this node's first pull. */
        struct timespec wait = {.tv_sec = TOKEN_RETRY_MS / 1000,
                                .tv_nsec = TOKEN_RETRY_MS % 1000 * 1000000L};
        nanosleep(&wait, NULL);
        got = fp_http_fetch_token(challenge, &topts, &fresh, &ttl, err);
    }
    if (got < 0) {
        memset(resp, 0, sizeof *resp);
        fp_error_prefix(err, "token for %s", src->id);
        return -1;
    }
    remember_token(f, key, fresh.data, ttl);
    rc = fp_http_request(method, url, opts, fresh.data, NULL, resp, err);
    fp_buf_free(&fresh);
    return rc;
}
