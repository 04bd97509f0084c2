#include "auth/join.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "auth/nodes.h"
#include "auth/pki.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"
#include "core/http_client.h"
#include "core/log.h"

static int save(const char *dir, const char *name, const char *text, mode_t mode, fp_error *err)
{
    char path[FP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return fp_write_file_atomic(path, text, strlen(text), mode, err);
}

static bool is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int join(const fp_config *cfg, const char *dir, fp_error *err)
{
    if (!cfg->node_join_token[0])
        return fp_error_set(err, 0,
                            "node %s has not joined the cloud yet: set [node] join_token (from "
                            "`fogport node token create` on the cloud)",
                            cfg->node_id);
    /* the names this node's certificate is for: its listen host and its id */
    char host[256];
    snprintf(host, sizeof host, "%s", cfg->listen);
    char *colon = strrchr(host, ':');
    if (colon) *colon = '\0';
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    const char *dns[2] = {cfg->node_id, NULL}, *ips[1] = {NULL};
    size_t ndns = 1, nips = 0;
    if (host[0] && is_ip(host) && strcmp(host, "0.0.0.0") && strcmp(host, "::"))
        ips[nips++] = host;
    else if (host[0] && !is_ip(host))
        dns[ndns++] = host;

    fp_key *key = NULL;
    cleanup_buf fp_buf csr = FP_BUF_INIT;
    if (fp_key_generate(&key, err) < 0) return -1;
    char keypath[FP_PATH_MAX + 64];
    snprintf(keypath, sizeof keypath, "%s/tls.key", dir);
    int rc = fp_csr_create(fp_key_evp(key), cfg->node_id, dns, ndns, ips, nips, &csr, err);
    if (rc == 0) rc = fp_key_save_private(key, keypath, err);
    fp_key_free(key);
    if (rc < 0) return -1;

    json_t *req = json_pack("{s:s, s:s, s:s}", "token", cfg->node_join_token, "id", cfg->node_id,
                            "csr", csr.data);
    cleanup_free char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    cleanup_buf fp_buf url = FP_BUF_INIT;
    fp_buf_printf(&url, "%s/api/v1/join", cfg->node_cloud);
    fp_http_opts o = {.cacert = cfg->node_cacert[0] ? cfg->node_cacert : NULL};
    fp_http_response resp;
    if (fp_http_post_json(url.data, &o, body, &resp, err) < 0)
        return fp_error_prefix(err, "join the cloud");
    if (resp.status != 200) {
        fp_error_set(err, 0, "join the cloud at %s: HTTP %ld: %.300s", cfg->node_cloud, resp.status,
                     resp.body.data ? resp.body.data : "");
        fp_http_response_free(&resp);
        return -1;
    }
    json_t *ans = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    OPENSSL_cleanse(resp.body.data, resp.body.len);
    fp_http_response_free(&resp);
    const char *secret = json_string_value(json_object_get(ans, "secret"));
    const char *role = json_string_value(json_object_get(ans, "role"));
    if (!secret || !role) {
        json_decref(ans);
        return fp_error_set(err, 0, "join the cloud: unexpected answer");
    }
    json_t *cred = json_pack("{s:s, s:s, s:s, s:s}", "id", cfg->node_id, "role", role, "secret",
                             secret, "cloud", cfg->node_cloud);
    char *credtext = json_dumps(cred, JSON_INDENT(2));
    json_decref(cred);
    static const char *const files[][2] = {
        {"ca", "ca.crt"}, {"token_keys", "token.pub"}, {"certificate", "tls.crt"}};
    rc = 0;
    for (size_t i = 0; rc == 0 && i < 3; i++) {
        const char *v = json_string_value(json_object_get(ans, files[i][0]));
        if (v && v[0]) rc = save(dir, files[i][1], v, 0644, err);
    }
    /* the credential last: its presence means "joined" */
    if (rc == 0)
        rc = credtext ? save(dir, "credential.json", credtext, 0600, err)
                      : fp_error_set(err, ENOMEM, "credential");
    if (credtext) OPENSSL_cleanse(credtext, strlen(credtext));
    free(credtext);
    if (rc == 0) /* before the answer (which role points into) goes */
        fp_info("event=node_joined node=%s role=%s cloud=%s", cfg->node_id, role, cfg->node_cloud);
    json_decref(ans);
    return rc;
}

static bool exists(const char *dir, const char *name, char *path, size_t pathlen)
{
    snprintf(path, pathlen, "%s/%s", dir, name);
    return access(path, R_OK) == 0;
}

/* A fog's realm: its own /auth/token at its listen address, when that is
 * an address clients can use (not a wildcard: then [auth] token_realm must
 * say, or the cloud's realm is used). */
static bool own_realm(fp_config *cfg)
{
    char host[256];
    snprintf(host, sizeof host, "%s", cfg->listen);
    char *colon = strrchr(host, ':');
    if (!colon) return false;
    *colon = '\0';
    if (!host[0] || !strcmp(host, "0.0.0.0") || !strcmp(host, "[::]")) {
        fp_warn("event=fog_realm_unknown hint=\"set [auth] token_realm to this fog's "
                "https://HOST:PORT/auth/token; using the cloud's\"");
        return false;
    }
    bool tls = cfg->tls_cert[0] || !strncmp(cfg->node_cloud, "https:", 6);
    snprintf(cfg->token_realm, sizeof cfg->token_realm, "%s://%s/auth/token",
             tls ? "https" : "http", cfg->listen);
    return true;
}

int fp_node_prepare(fp_config *cfg, fp_error *err)
{
    if (strcmp(cfg->node_role, "fog") != 0 && strcmp(cfg->node_role, "edge") != 0) return 0;
    if (!fp_node_id_valid(cfg->node_id))
        return fp_error_set(err, 0, "[node] id must be set ([a-z0-9-], at most 63)");
    if (!cfg->node_cloud[0]) return fp_error_set(err, 0, "[node] cloud must be the cloud's URL");
    char dir[FP_PATH_MAX + 16], path[FP_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/node", cfg->data_dir);
    if (fp_mkdir_p(dir, 0700, err) < 0) return -1;
    if (!exists(dir, "credential.json", path, sizeof path) && join(cfg, dir, err) < 0) return -1;
    /* complete the configuration from what the join gave us; a fog is its
     * own token service (it keeps issuing while the cloud is unreachable) */
    if (!cfg->token_realm[0] && !(!strcmp(cfg->node_role, "fog") && own_realm(cfg)))
        snprintf(cfg->token_realm, sizeof cfg->token_realm, "%s/auth/token", cfg->node_cloud);
    if (!cfg->token_keys[0] && exists(dir, "token.pub", path, sizeof path))
        snprintf(cfg->token_keys, sizeof cfg->token_keys, "%s", path);
    if (!strcmp(cfg->token_service, "fogport"))
        snprintf(cfg->token_service, sizeof cfg->token_service, "%s", cfg->node_id);
    if (!cfg->node_cacert[0] && exists(dir, "ca.crt", path, sizeof path))
        snprintf(cfg->node_cacert, sizeof cfg->node_cacert, "%s", path);
    if (!cfg->tls_cert[0] && !strncmp(cfg->node_cloud, "https:", 6) &&
        exists(dir, "tls.crt", path, sizeof path)) {
        snprintf(cfg->tls_cert, sizeof cfg->tls_cert, "%s", path);
        snprintf(cfg->tls_key, sizeof cfg->tls_key, "%s/tls.key", dir);
    }
    return 0;
}

int fp_node_cred_load(const fp_config *cfg, fp_node_cred *c, fp_error *err)
{
    memset(c, 0, sizeof *c);
    char path[FP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/node/credential.json", cfg->data_dir);
    json_t *cred = json_load_file(path, 0, NULL);
    const char *id = json_string_value(json_object_get(cred, "id"));
    const char *secret = json_string_value(json_object_get(cred, "secret"));
    int n = id && secret ? snprintf(c->userpwd, sizeof c->userpwd, "%s:%s", id, secret) : -1;
    json_decref(cred);
    if (n < 0 || (size_t)n >= sizeof c->userpwd) {
        fp_node_cred_clear(c);
        return fp_error_set(err, 0, "%s: no node credential", path);
    }
    snprintf(c->cacert, sizeof c->cacert, "%s", cfg->node_cacert);
    snprintf(c->cert, sizeof c->cert, "%s/node/tls.crt", cfg->data_dir);
    snprintf(c->key, sizeof c->key, "%s/node/tls.key", cfg->data_dir);
    c->has_cert = access(c->cert, R_OK) == 0 && access(c->key, R_OK) == 0;
    return 0;
}

void fp_node_cred_opts(const fp_node_cred *c, fp_http_opts *o)
{
    o->userpwd = c->userpwd;
    o->cacert = c->cacert[0] ? c->cacert : NULL;
    /* present the node's certificate too: a node may require mutual TLS */
    o->client_cert = c->has_cert ? c->cert : NULL;
    o->client_key = c->has_cert ? c->key : NULL;
}

void fp_node_cred_clear(fp_node_cred *c)
{
    OPENSSL_cleanse(c->userpwd, sizeof c->userpwd);
}
