/* GET /api/v1/logs/SERVICE[?node=ID][&tail=BYTES]: the end of a service's
 * log (text/plain), as the agent of the node that runs it captured it.
 *
 * At the cloud, an operator who may deploy the service's image asks; the
 * cloud relays the request to the node (the first one that reports the
 * service unless ?node= says which) with a token it mints for that node
 * alone, good for a minute and for this service's log only
 * ("service:NAME:logs"), so operators never need a way into an edge.
 * At a fog or an edge, only that token opens a log: the cloud is where the
 * policy says who may read it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "agent/spec.h"
#include "auth/jwt.h"
#include "control/services.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/range.h"
#include "federation/directory.h"
#include "registry/request.h"

#define TAIL_DEFAULT (64 * 1024)
#define TAIL_MAX     (4 * 1024 * 1024)
#define RELAY_TTL_S  60

static void serve_local(fp_req *r, const char *name, uint64_t tail)
{
    char *text = NULL;
    size_t len = 0;
    fp_error err;
    int rc = fp_agent_logs(r->reg->agent, name, (size_t)tail, &text, &len, &err);
    if (rc < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    if (rc == 1) {
        fp_respond_error(r, 404, "NAME_UNKNOWN", "this node runs no service %s", name);
        return;
    }
    fp_respond_owned(r, 200, "text/plain; charset=utf-8", text, len);
}

struct where {
    const char *id;
    char url[512];
};

static int find_url(void *ctx, const fp_directory_entry *e)
{
    struct where *w = ctx;
    if (strcmp(e->id, w->id) != 0) return 0;
    snprintf(w->url, sizeof w->url, "%s", e->url);
    return 1;
}

/* The first node that reports running (or having run) the service. */
static bool reporting_node(fp_req *r, const char *name, char *out, size_t n)
{
    json_t *all;
    fp_error err;
    out[0] = '\0';
    if (fp_services_instances(r->reg->services, &all, &err) < 0) return false;
    size_t i;
    json_t *in;
    json_array_foreach(all, i, in)
    {
        const char *s = json_string_value(json_object_get(in, "service"));
        const char *node = json_string_value(json_object_get(in, "node"));
        if (s && node && !strcmp(s, name)) {
            snprintf(out, n, "%s", node);
            break;
        }
    }
    json_decref(all);
    return out[0] != '\0';
}

static int mint(fp_req *r, const char *node, const char *name, fp_buf *token, fp_error *err)
{
    const fp_config *cfg = r->reg->cfg;
    time_t now = time(NULL);
    char jti[33];
    unsigned char raw[16];
    fp_random_bytes(raw, sizeof raw);
    for (int i = 0; i < 16; i++)
        snprintf(jti + 2 * i, 3, "%02x", raw[i]);
    json_t *claims = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:[{s:s, s:s, s:[s]}], s:{s:s}}", "iss",
        cfg->token_issuer, "sub", r->user, "aud", node, "exp", (json_int_t)(now + RELAY_TTL_S),
        "nbf", (json_int_t)(now - 10), "iat", (json_int_t)now, "jti", jti, "access", "type",
        "service", "name", name, "actions", "logs", "fogport", "kind", "user");
    int rc = claims ? fp_jwt_sign(r->reg->authz->signing, claims, token, err)
                    : fp_error_set(err, 0, "claims");
    json_decref(claims);
    return rc;
}

static void relay(fp_req *r, const char *name, uint64_t tail)
{
    if (!fp_authz_require_login(r)) return;
    fp_error err;
    json_t *def = NULL;
    int rc = fp_services_get(r->reg->services, name, &def, &err);
    if (rc != 0) {
        if (rc < 0)
            fp_respond_internal(r, &err);
        else
            fp_respond_error(r, 404, "NAME_UNKNOWN", "no service %s", name);
        return;
    }
    fp_reference ref;
    bool ok = fp_reference_parse(json_string_value(json_object_get(def, "image")), &ref) == 0 &&
              !strcmp(r->kind, "user") && fp_authz_policy_may(r, ref.name, FP_ACT_PUSH);
    json_decref(def);
    if (!ok) {
        fp_respond_error(r, 403, "DENIED", "%s may not read the log of %s", r->user, name);
        return;
    }
    char node[64];
    const char *asked = fp_req_arg(r, "node");
    if (asked)
        snprintf(node, sizeof node, "%s", asked);
    else if (!reporting_node(r, name, node, sizeof node)) {
        fp_respond_error(r, 404, "NAME_UNKNOWN", "no node reports service %s", name);
        return;
    }
    struct where w = {.id = node};
    /* only to a node's TLS address: a node writes its own directory entry */
    if (!r->reg->authz->signing || fp_directory_list(r->reg->dir, find_url, &w, &err) < 0 ||
        strncmp(w.url, "https://", 8) != 0 || strpbrk(w.url + 8, "/?#@")) {
        fp_respond_error(r, 404, "NAME_UNKNOWN", "node %s is not in the directory", node);
        return;
    }
    cleanup_buf fp_buf token = FP_BUF_INIT;
    cleanup_buf fp_buf url = FP_BUF_INIT;
    char cacert[FP_PATH_MAX + 16];
    snprintf(cacert, sizeof cacert, "%s/ca.crt", r->reg->cfg->node_ca);
    fp_buf_printf(&url, "%s/api/v1/logs/%s?tail=%llu", w.url, name, (unsigned long long)tail);
    fp_http_opts o = {
        .cacert = cacert, .timeout_s = 10, .connect_timeout_s = 3, .max_body = tail + 4096};
    fp_http_response resp;
    if (mint(r, node, name, &token, &err) < 0 ||
        fp_http_request("GET", url.data, &o, token.data, NULL, &resp, &err) < 0) {
        fp_respond_error(r, 502, "UNAVAILABLE", "node %s: %s", node, err.msg);
        return;
    }
    if (resp.status == 200) {
        size_t len = resp.body.len;
        char *text = resp.body.data;
        resp.body.data = NULL; /* handed to the response */
        fp_http_response_free(&resp);
        fp_respond_owned(r, 200, "text/plain; charset=utf-8", text, len);
        return;
    }
    long status = resp.status;
    fp_http_response_free(&resp);
    fp_respond_error(r, status == 404 ? 404 : 502, status == 404 ? "NAME_UNKNOWN" : "UNAVAILABLE",
                     "node %s answered HTTP %ld for the log of %s", node, status, name);
}

void fp_handle_logs(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    const char *name = r->path + strlen("/api/v1/logs/");
    if (!fp_service_name_valid(name)) {
        fp_respond_error(r, 404, "NAME_UNKNOWN", "no such service");
        return;
    }
    uint64_t tail = TAIL_DEFAULT;
    const char *t = fp_req_arg(r, "tail");
    if (t && (fp_parse_u64(t, &tail) < 0 || tail > TAIL_MAX)) {
        fp_respond_error(r, 400, "UNSUPPORTED", "tail: a number of bytes up to %d", TAIL_MAX);
        return;
    }
    if (r->reg->services) {
        relay(r, name, tail);
        return;
    }
    if (!fp_authz_bearer_logs(r, name)) {
        fp_respond_error(r, 401, "UNAUTHORIZED",
                         "ask the cloud for service logs (fogport logs): it relays them");
        return;
    }
    serve_local(r, name, tail);
}
