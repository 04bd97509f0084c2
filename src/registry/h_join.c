/* POST /api/v1/join on the cloud: a fog or edge spends its one-time join
 * token and receives its node credential, the deployment CA certificate,
 * the token service's public key and, for the certificate request it sends,
 * a TLS certificate for its names. Request and answer are JSON:
 *   {"token": "fpj_...", "id": "fog-1", "csr": "-----BEGIN CERTIFICATE REQUEST..."}
 *   {"id", "role", "secret", "ca", "token_keys", "certificate"}
 * Failed attempts count against the address like failed logins. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <openssl/crypto.h>
#include <string.h>

#include "auth/pki.h"
#include "control/audit.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "registry/request.h"

static int join_body(fp_req *r, const char *data, size_t len)
{
    if (r->body.len + len > 64 * 1024)
        return fp_req_fail(r, 413, "UNSUPPORTED", "join request too large");
    return fp_buf_append(&r->body, data, len);
}

static void refuse(fp_req *r, unsigned status, const char *msg)
{
    fp_ratelimit_failure(r->reg->authz->logins, r->remote);
    fp_warn("event=join_refused remote=%s reason=\"%s\"", r->remote, msg);
    fp_respond_error(r, status, status == 409 ? "DENIED" : "UNAUTHORIZED", "%s", msg);
}

/* The cloud's own names: its id, its service and the audiences it signs
 * for by configuration. A node under one of them would receive tokens valid
 * at the cloud. */
static bool reserved_id(const fp_config *cfg, const char *id)
{
    if (!strcmp(id, "cloud") || !strcmp(id, cfg->node_id) || !strcmp(id, cfg->token_service) ||
        !strcmp(id, cfg->token_issuer))
        return true;
    return fp_config_list_has(cfg->token_audiences, id);
}

static void join_end(fp_req *r)
{
    fp_authz *a = r->reg->authz;
    const fp_config *cfg = a->cfg;
    if (fp_authz_throttled(r)) return;
    json_t *req = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    const char *token = json_string_value(json_object_get(req, "token"));
    const char *idv = json_string_value(json_object_get(req, "id"));
    char id[FP_NODE_ID_MAX + 1] = "";
    if (idv && strlen(idv) < sizeof id) snprintf(id, sizeof id, "%s", idv);
    const char *csr = json_string_value(json_object_get(req, "csr"));
    if (!token || !fp_node_id_valid(id)) {
        json_decref(req);
        fp_respond_error(r, 400, "UNSUPPORTED",
                         "expected {\"token\", \"id\" ([a-z0-9-]), \"csr\"}");
        return;
    }
    /* a node may not take a name the cloud answers to */
    if (reserved_id(cfg, id)) {
        json_decref(req);
        refuse(r, 409, "this id is reserved");
        return;
    }
    if (cfg->node_ca[0] && !csr) {
        json_decref(req);
        fp_respond_error(r, 400, "UNSUPPORTED", "a certificate request (csr) is required");
        return;
    }
    /* the CA signs nothing for a request without a usable token */
    if (!fp_nodes_token_usable(a->nodes, token, id)) {
        json_decref(req);
        refuse(r, 401, "join token unknown, used or expired");
        return;
    }
    cleanup_buf fp_buf cert = FP_BUF_INIT, ca = FP_BUF_INIT, keys = FP_BUF_INIT;
    fp_error err;
    /* sign before spending: a bad certificate request must not spend the token */
    if (csr && cfg->node_ca[0] &&
        fp_csr_sign(cfg->node_ca, csr, id, r->remote, 365, &cert, &err) < 0) {
        json_decref(req);
        fp_respond_error(r, 400, "UNSUPPORTED", "%s", err.msg);
        return;
    }
    if (cfg->node_ca[0]) {
        char path[FP_PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/ca.crt", cfg->node_ca);
        fp_pem_read(path, &ca, &err);
    }
    if (cfg->token_keys[0])
        fp_pem_read(cfg->token_keys, &keys, &err);
    else if (a->signing)
        fp_key_public_pem(a->signing, &keys);
    char role[16], secret[64];
    int rc = fp_nodes_join(a->nodes, token, id, role, secret, &err);
    json_decref(req); /* token pointed into it */
    if (rc == 1) {
        refuse(r, 401, "join token unknown, used or expired");
        return;
    }
    if (rc == 2) {
        refuse(r, 409, "a node with this id has already joined");
        return;
    }
    if (rc < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    json_t *out = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "role", role, "secret",
                            secret, "ca", ca.data ? ca.data : "", "token_keys",
                            keys.data ? keys.data : "", "certificate", cert.data ? cert.data : "");
    OPENSSL_cleanse(secret, sizeof secret);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    fp_info("event=node_joined remote=%s node=%s role=%s", r->remote, id, role);
    fp_req_audit(r, FP_AUDIT_NODE_JOINED, id,
                 json_pack("{s:s, s:s, s:b}", "role", role, "remote", r->remote, "certificate",
                           cert.len > 0));
    if (!text) {
        fp_error_set(&err, ENOMEM, "join answer");
        fp_respond_internal(r, &err);
        return;
    }
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    } else {
        free(text);
    }
    r->bytes_out = len;
    fp_respond(r, 200, resp);
}

void fp_handle_join(fp_req *r)
{
    if (r->method != M_POST) {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    r->on_body = join_body;
    r->on_end = join_end;
}

static int add_revoked(void *ctx, const char *id, const char *role, time_t created, bool revoked)
{
    (void)role;
    (void)created;
    if (revoked) json_array_append_new(ctx, json_string(id));
    return 0;
}

/* GET /api/v1/revoked on the cloud: the revoked node ids, for fogs and
 * edges to refuse those nodes' tokens too. Any joined node or user. */
void fp_handle_revoked(fp_req *r)
{
    if (!fp_req_read_only(r) || !fp_authz_require_login(r)) return;
    json_t *ids = json_array();
    fp_error err;
    if (fp_nodes_list(r->reg->authz->nodes, add_revoked, ids, &err) < 0) {
        json_decref(ids);
        fp_respond_internal(r, &err);
        return;
    }
    fp_respond_json(r, json_pack("{s:o}", "nodes", ids));
}
