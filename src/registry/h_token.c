/* /auth/token: the token service of the Docker token flow
 * (../shared/specs/docker-registry/auth-token.md and auth-oauth.md).
 *   GET  ?service=S&scope=A&scope=B      credentials in HTTP Basic (or none)
 *   POST grant_type=password&username=..&password=..&service=S&scope=A B
 *        (the OAuth2 form containerd and podman use)
 * The token carries, for each requested scope, the subset the access policy
 * grants (possibly empty: the registry then answers 403 rather than asking
 * again). Refresh tokens are not issued. */
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cleanup.h"
#include "core/fs.h"
#include "core/log.h"
#include "registry/request.h"

#define MAX_SCOPES 16

static bool audience_allowed(fp_authz *a, const char *service)
{
    const fp_config *cfg = a->cfg;
    if (!strcmp(service, cfg->token_service)) return true;
    /* every joined node's registry is a service the cloud signs for */
    if (a->nodes && fp_node_id_valid(service) && !fp_nodes_revoked(a->nodes, service) &&
        fp_nodes_known(a->nodes, service))
        return true;
    return fp_config_list_has(cfg->token_audiences, service);
}

static void oauth_error(fp_req *r, unsigned status, const char *error, const char *desc)
{
    char body[300];
    int n =
        snprintf(body, sizeof body, "{\"error\":\"%s\",\"error_description\":\"%s\"}", error, desc);
    fp_respond_bytes(r, status, "application/json", body, (size_t)n);
}

struct token_request {
    char service[128];
    char user[64];
    char kind[8];
    char role[16];
    bool authenticated;
    size_t nscopes;
    fp_scope scopes[MAX_SCOPES];
    bool bad_scope;
};

static void add_scope(struct token_request *tr, const char *s, size_t len)
{
    if (len == 0) return;
    if (tr->nscopes == MAX_SCOPES || fp_scope_parse(s, len, &tr->scopes[tr->nscopes]) < 0) {
        tr->bad_scope = true;
        return;
    }
    tr->nscopes++;
}

static enum MHD_Result collect_scope(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    struct token_request *tr = cls;
    if (!strcmp(key, "scope") && value) {
        /* one scope per parameter; a space-separated list is accepted too */
        const char *p = value;
        while (*p) {
            size_t n = strcspn(p, " ");
            add_scope(tr, p, n);
            p += n;
            while (*p == ' ')
                p++;
        }
    }
    return MHD_YES;
}

/* Sign with the token key (kid), or as a fog with its signer certificate
 * (x5c), under pol: the cloud's policy, or a fog's synced copy of it. */
static void issue_with(fp_req *r, struct token_request *tr, const fp_policy *pol, fp_signer *sg)
{
    fp_authz *a = r->reg->authz;
    const fp_config *cfg = a->cfg;
    if (tr->bad_scope) {
        oauth_error(r, 400, "invalid_scope", "a requested scope is malformed");
        return;
    }
    if (!tr->service[0] || !audience_allowed(a, tr->service)) {
        oauth_error(r, 400, "invalid_request", "unknown service");
        return;
    }
    fp_principal p = {
        .kind = tr->authenticated ? tr->kind : "anonymous", .name = tr->user, .role = tr->role};
    time_t now = time(NULL);
    json_t *access = json_array();
    bool catalog = false;
    for (size_t i = 0; i < tr->nscopes; i++) {
        fp_scope *s = &tr->scopes[i];
        unsigned granted;
        if (!strcmp(s->type, "registry")) {
            catalog = fp_policy_may_list(pol, &p);
            granted = catalog ? FP_ACT_CATALOG : 0;
        } else {
            granted = s->actions & fp_policy_actions(pol, &p, s->name);
        }
        json_array_append_new(access, json_pack("{s:s, s:s, s:o}", "type", s->type, "name", s->name,
                                                "actions", fp_actions_json(granted)));
    }
    unsigned char jti_raw[16];
    fp_random_bytes(jti_raw, sizeof jti_raw);
    char jti[33];
    for (int i = 0; i < 16; i++)
        snprintf(jti + 2 * i, 3, "%02x", jti_raw[i]);
    /* a fog's tokens name it as issuer: registries check iss = the signer */
    const char *iss = sg ? cfg->node_id : cfg->token_issuer;
    json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:o}", "iss", iss, "sub",
                               tr->authenticated ? tr->user : "", "aud", tr->service, "exp",
                               (json_int_t)(now + cfg->token_ttl_s), "nbf", (json_int_t)(now - 10),
                               "iat", (json_int_t)now, "jti", jti, "access", access);
    json_t *ext = json_pack("{s:s}", "kind", p.kind);
    if (catalog) json_object_set_new(ext, "pull", fp_policy_pull_patterns(pol, &p));
    json_object_set_new(claims, "fogport", ext);
    cleanup_buf fp_buf token = FP_BUF_INIT;
    fp_error err;
    int rc = !claims ? fp_error_set(&err, ENOMEM, "claims")
             : sg    ? fp_jwt_sign_x5c(sg->key, sg->x5c.data, claims, &token, &err)
                     : fp_jwt_sign(a->signing, claims, &token, &err);
    json_decref(claims);
    if (rc < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    struct tm tm;
    gmtime_r(&now, &tm);
    char issued[32];
    strftime(issued, sizeof issued, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cleanup_buf fp_buf body = FP_BUF_INIT;
    fp_buf_printf(&body,
                  "{\"token\":\"%s\",\"access_token\":\"%s\",\"expires_in\":%u,"
                  "\"issued_at\":\"%s\"}",
                  token.data, token.data, cfg->token_ttl_s, issued);
    fp_info("event=token_issued remote=%s sub=%s service=%s scopes=%zu", r->remote,
            tr->authenticated ? tr->user : "-", tr->service, tr->nscopes);
    r->bytes_out = body.len;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body.len, body.data, MHD_RESPMEM_MUST_COPY);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    }
    fp_respond(r, 200, resp);
}

static void issue(fp_req *r, struct token_request *tr)
{
    fp_authz *a = r->reg->authz;
    fp_signer *sg = a->signing ? NULL : fp_authz_signer(a);
    if (!a->signing && !sg) {
        /* a fog that could not reach the cloud since it first started */
        oauth_error(r, 503, "temporarily_unavailable", "no token-signing certificate yet");
        return;
    }
    fp_authdata *synced = fp_authz_synced(a);
    fp_policy *own = synced ? NULL : fp_authz_policy(a);
    issue_with(r, tr, synced ? fp_authdata_policy(synced) : own, sg);
    fp_policy_unref(own);
    fp_authdata_unref(synced);
    fp_signer_unref(sg);
}

/* GET: Basic credentials, scopes as query parameters. */
static void token_get(fp_req *r)
{
    struct token_request tr = {0};
    int basic = fp_authz_basic(r);
    if (basic < 0) {
        if (!r->responded) {
            snprintf(r->challenge, sizeof r->challenge, "Basic realm=\"%s\"",
                     r->reg->authz->cfg->realm);
            fp_respond_error(r, 401, "UNAUTHORIZED", "invalid credentials");
        }
        return;
    }
    tr.authenticated = basic == 1;
    snprintf(tr.user, sizeof tr.user, "%s", r->user);
    snprintf(tr.kind, sizeof tr.kind, "%s", r->kind);
    snprintf(tr.role, sizeof tr.role, "%s", r->role);
    const char *service = fp_req_arg(r, "service");
    snprintf(tr.service, sizeof tr.service, "%s", service ? service : "");
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_scope, &tr);
    issue(r, &tr);
}

/* Decode one application/x-www-form-urlencoded value in place. */
static void form_decode(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '+') {
            *o++ = ' ';
        } else if (*p == '%' && p[1] && p[2]) {
            char hex[3] = {p[1], p[2], 0};
            char *end;
            long v = strtol(hex, &end, 16);
            if (*end || v == 0) {
                *o++ = *p;
                continue;
            }
            *o++ = (char)v;
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

static int token_body(fp_req *r, const char *data, size_t len)
{
    if (r->body.len + len > 16384)
        return fp_req_fail(r, 413, "UNSUPPORTED", "token request too large");
    return fp_buf_append(&r->body, data, len);
}

/* POST: the OAuth2 password grant. */
static void token_post_end(fp_req *r)
{
    struct token_request tr = {0};
    char grant[32] = "", user[64] = "", *password = NULL;
    char *save = NULL;
    for (char *kv = strtok_r(r->body.data ? r->body.data : (char *)"", "&", &save); kv;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq) continue;
        *eq = '\0';
        char *v = eq + 1;
        form_decode(v);
        if (!strcmp(kv, "grant_type"))
            snprintf(grant, sizeof grant, "%s", v);
        else if (!strcmp(kv, "username"))
            snprintf(user, sizeof user, "%s", v);
        else if (!strcmp(kv, "password"))
            password = v;
        else if (!strcmp(kv, "service"))
            snprintf(tr.service, sizeof tr.service, "%s", v);
        else if (!strcmp(kv, "scope"))
            collect_scope(&tr, MHD_POSTDATA_KIND, "scope", v);
    }
    if (strcmp(grant, "password") != 0) {
        oauth_error(r, 400, "unsupported_grant_type", "only grant_type=password is supported");
        return;
    }
    fp_authz *a = r->reg->authz;
    if (fp_authz_throttled(r)) return;
    bool ok = user[0] && fp_authz_login(r, user, password ? password : "");
    if (password) OPENSSL_cleanse(password, strlen(password));
    if (!ok) {
        fp_ratelimit_failure(a->logins, r->remote);
        fp_warn("event=login_failed remote=%s path=/auth/token", r->remote);
        oauth_error(r, 401, "invalid_grant", "invalid username or password");
        return;
    }
    tr.authenticated = true;
    snprintf(tr.user, sizeof tr.user, "%s", r->user);
    snprintf(tr.kind, sizeof tr.kind, "%s", r->kind);
    snprintf(tr.role, sizeof tr.role, "%s", r->role);
    issue(r, &tr);
}

void fp_handle_token(fp_req *r)
{
    if (r->method == M_GET) {
        token_get(r);
    } else if (r->method == M_POST) {
        r->on_body = token_body;
        r->on_end = token_post_end;
    } else {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
    }
}
