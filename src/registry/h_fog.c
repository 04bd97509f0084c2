/* The cloud's endpoints for fogs, so that a fog can authorize on its own
 * while the cloud is unreachable. Both need a fog's node credential (HTTP
 * Basic ID:SECRET of a joined, unrevoked node of role fog): edges do not
 * issue tokens, and users never need either.
 *   POST /api/v1/signer   {"csr": PEM}  ->  {"certificate": PEM chain}
 *        a token-signing certificate for the fog's key, CN = its id
 *   GET  /api/v1/authdata ->  the policy, users and nodes (src/auth/authdata.h) */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "auth/authdata.h"
#include "auth/pki.h"
#include "control/audit.h"
#include "core/cleanup.h"
#include "core/log.h"
#include "registry/request.h"

#define SIGNER_DAYS 30

/* Is the request from a fog? Otherwise answers 401/403 and returns false. */
static bool from_fog(fp_req *r)
{
    if (!fp_authz_require_login(r)) return false;
    if (strcmp(r->kind, "node") != 0 || strcmp(r->role, "fog") != 0) {
        fp_warn("event=fog_api_refused remote=%s user=%s path=%s", r->remote, r->user, r->path);
        fp_respond_error(r, 403, "DENIED", "only fogs may use this endpoint");
        return false;
    }
    return true;
}

static int signer_body(fp_req *r, const char *data, size_t len)
{
    if (r->body.len + len > 16 * 1024)
        return fp_req_fail(r, 413, "UNSUPPORTED", "signer request too large");
    return fp_buf_append(&r->body, data, len);
}

static void signer_end(fp_req *r)
{
    if (!from_fog(r)) return;
    const fp_config *cfg = r->reg->cfg;
    if (!cfg->node_ca[0]) {
        fp_respond_error(r, 404, "UNSUPPORTED", "this cloud has no CA");
        return;
    }
    json_t *req = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    const char *csr = json_string_value(json_object_get(req, "csr"));
    cleanup_buf fp_buf cert = FP_BUF_INIT;
    fp_error err;
    int rc = csr ? fp_signer_csr_sign(cfg->node_ca, csr, r->user, SIGNER_DAYS, &cert, &err)
                 : fp_error_set(&err, EINVAL, "expected {\"csr\": PEM}");
    json_decref(req);
    if (rc < 0) {
        fp_respond_error(r, 400, "UNSUPPORTED", "%s", err.msg);
        return;
    }
    fp_info("event=signer_issued remote=%s node=%s days=%d", r->remote, r->user, SIGNER_DAYS);
    fp_req_audit(r, FP_AUDIT_SIGNER_ISSUED, r->user, json_pack("{s:i}", "days", SIGNER_DAYS));
    fp_respond_json(r, json_pack("{s:s}", "certificate", cert.data));
}

void fp_handle_signer(fp_req *r)
{
    if (r->method != M_POST) {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    r->on_body = signer_body;
    r->on_end = signer_end;
}

void fp_handle_authdata(fp_req *r)
{
    if (!fp_req_read_only(r) || !from_fog(r)) return;
    const fp_config *cfg = r->reg->cfg;
    char *text = NULL;
    fp_error err;
    if (fp_authdata_build(cfg->policy, cfg->htpasswd, r->reg->authz->nodes, &text, &err) < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    fp_respond_owned(r, 200, "application/json", text, strlen(text));
}
