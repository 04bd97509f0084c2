/* The controller's API on the cloud (control/services.h):
 *   GET    /api/v1/services          every definition (users and nodes)
 *   POST   /api/v1/services          create or replace one (a user who may
 *                                    push the image's repository); the
 *                                    image is resolved to a digest here
 *   GET    /api/v1/services/NAME     one definition
 *   DELETE /api/v1/services/NAME     remove it; agents stop its instances
 *   GET    /api/v1/agent/desired     a node's own definitions (node only):
 *                                    those placed on it (h_control.c)
 *   GET    /api/v1/instances         what every agent reported, plus a
 *                                    "pending" line for each placement no
 *                                    agent has reported yet (`fogport ps`)
 * Agents report their instances with the heartbeat (h_nodes.c). */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "auth/nodes.h"
#include "control/audit.h"
#include "control/recallset.h"
#include "control/services.h"
#include "core/log.h"
#include "core/name.h"
#include "registry/request.h"

#define SERVICE_BODY_MAX (64 * 1024)

static int body_sink(fp_req *r, const char *data, size_t len)
{
    if (r->body.len + len > SERVICE_BODY_MAX)
        return fp_req_fail(r, 413, "UNSUPPORTED", "service definition too large");
    return fp_buf_append(&r->body, data, len);
}

/* The operator may deploy an image when they may push its repository. */
static bool may_deploy(fp_req *r, const char *image, fp_reference *ref)
{
    if (fp_reference_parse(image, ref) < 0) {
        fp_respond_error(r, 400, "NAME_INVALID", "image: \"%s\" is not an image reference", image);
        return false;
    }
    if (strcmp(r->kind, "user") != 0 || !fp_authz_policy_may(r, ref->name, FP_ACT_PUSH)) {
        fp_respond_error(r, 403, "DENIED", "%s may not deploy %s", r->user, ref->name);
        return false;
    }
    return true;
}

/* Definitions are the operators': a node reads its own through
 * /api/v1/agent/desired (they may carry secrets in env). */
static bool operator(fp_req *r)
{
    if (!strcmp(r->kind, "user")) return true;
    fp_respond_error(r, 403, "DENIED", "nodes read their services at /api/v1/agent/desired");
    return false;
}

/* An operator sees the definitions of images they may pull. */
static bool may_see(fp_req *r, const json_t *def)
{
    fp_reference ref;
    const char *image = json_string_value(json_object_get(def, "image"));
    return image && fp_reference_parse(image, &ref) == 0 &&
           fp_authz_policy_may(r, ref.name, FP_ACT_PULL);
}

static void create_end(fp_req *r)
{
    json_error_t jerr;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &jerr);
    if (!j) {
        fp_respond_error(r, 400, "UNSUPPORTED", "service definition: %s", jerr.text);
        return;
    }
    fp_service s;
    fp_error err;
    int rc = fp_service_from_json(j, &s, &err);
    json_decref(j);
    if (rc < 0) {
        fp_respond_error(r, 400, "UNSUPPORTED", "service definition: %s", err.msg);
        return;
    }
    fp_reference ref;
    if (!may_deploy(r, s.image, &ref)) goto out;
    /* replacing a definition is deleting it: the caller must be allowed
     * the image that runs under that name now, too */
    json_t *old = NULL;
    rc = fp_services_get(r->reg->services, s.name, &old, &err);
    if (rc < 0) {
        fp_respond_internal(r, &err);
        goto out;
    }
    if (rc == 0) {
        fp_reference oref;
        bool ok = may_deploy(r, json_string_value(json_object_get(old, "image")) ?: "", &oref);
        json_decref(old);
        if (!ok) goto out;
    }
    if (!s.node[0] && !s.role[0]) {
        fp_respond_error(r, 400, "UNSUPPORTED", "service %s: say where it runs (node or role)",
                         s.name);
        goto out;
    }
    if (s.role[0] && strcmp(s.role, "fog") != 0 && strcmp(s.role, "edge") != 0) {
        fp_respond_error(r, 400, "UNSUPPORTED", "role: services run on fog or edge nodes");
        goto out;
    }
    if (s.replicas && !s.role[0]) {
        /* one node is one instance: replicas spread over a role */
        fp_respond_error(r, 400, "UNSUPPORTED", "service %s: replicas need a role", s.name);
        goto out;
    }
    /* Agents run exactly what the cloud resolved: a tag moved later does
     * not change a running service until its definition is updated. */
    fp_manifest_row row;
    bool by_digest = ref.digest[0] != '\0';
    rc = fp_store_manifest_get(r->reg->store, ref.name, by_digest ? ref.digest : ref.tag, by_digest,
                               false, &row, &err);
    if (rc == FP_STORE_NOT_FOUND && !by_digest && !ref.tag[0])
        rc = fp_store_manifest_get(r->reg->store, ref.name, "latest", false, false, &row, &err);
    if (rc == FP_STORE_NOT_FOUND) {
        fp_respond_error(r, 404, "MANIFEST_UNKNOWN", "image %s is not registered at the cloud",
                         s.image);
        goto out;
    }
    if (rc < 0) {
        fp_respond_internal(r, &err);
        goto out;
    }
    snprintf(s.digest, sizeof s.digest, "%s", row.digest);
    if (fp_recall_set_has(r->reg->recalled, s.digest)) {
        fp_respond_error(r, 403, "DENIED", "image %s (%s) is recalled", s.image, s.digest);
        goto out;
    }
    bool replaced = false;
    if (fp_services_put(r->reg->services, &s, &replaced, &err) < 0) {
        fp_respond_internal(r, &err);
        goto out;
    }
    fp_info("event=service_%s service=%s image=%s digest=%s user=%s",
            replaced ? "updated" : "created", s.name, s.image, s.digest, r->user);
    fp_req_audit(r, replaced ? FP_AUDIT_SERVICE_UPDATED : FP_AUDIT_SERVICE_CREATED, s.name,
                 fp_service_to_json(&s));
    /* place it now: its agents learn of it at their next sync, not a tick
     * later */
    fp_control_place(r->reg, time(NULL));
    json_t *def = NULL;
    if (fp_services_get(r->reg->services, s.name, &def, &err) != 0) {
        fp_respond_internal(r, &err);
        goto out;
    }
    fp_respond_json_status(r, replaced ? 200 : 201, def);
out:
    fp_service_free(&s);
}

static void one_service(fp_req *r, const char *name)
{
    fp_error err;
    json_t *def = NULL;
    int rc = fp_services_get(r->reg->services, name, &def, &err);
    if (rc < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    if (rc == 1) {
        fp_respond_error(r, 404, "NAME_UNKNOWN", "no service %s", name);
        return;
    }
    if (r->method == M_GET || r->method == M_HEAD) {
        if (!operator(r)) {
            json_decref(def);
            return;
        }
        if (!may_see(r, def)) {
            json_decref(def);
            fp_respond_error(r, 404, "NAME_UNKNOWN", "no service %s", name);
            return;
        }
        fp_respond_json(r, def);
        return;
    }
    fp_reference ref;
    bool ok = may_deploy(r, json_string_value(json_object_get(def, "image")), &ref);
    if (!ok || fp_services_delete(r->reg->services, name, &err) < 0) {
        json_decref(def);
        if (ok) fp_respond_internal(r, &err);
        return;
    }
    fp_info("event=service_deleted service=%s user=%s", name, r->user);
    fp_req_audit(r, FP_AUDIT_SERVICE_DELETED, name, def); /* the definition that went */
    fp_respond_empty(r, 204, (char *)NULL);
}

static void desired(fp_req *r)
{
    if (strcmp(r->kind, "node") != 0) {
        fp_respond_error(r, 403, "DENIED", "only nodes have desired state");
        return;
    }
    json_t *all, *placed, *mine = json_array();
    fp_error err;
    if (fp_services_list(r->reg->services, &all, &err) < 0) {
        json_decref(mine);
        fp_respond_internal(r, &err);
        return;
    }
    if (fp_services_placements(r->reg->services, &placed, &err) < 0) {
        json_decref(all);
        json_decref(mine);
        fp_respond_internal(r, &err);
        return;
    }
    size_t i;
    json_t *def;
    json_array_foreach(all, i, def)
    {
        /* a recalled image runs nowhere: its agents stop and remove it */
        const char *digest = json_string_value(json_object_get(def, "digest"));
        if (fp_service_placed(placed, def, r->user, r->role) &&
            !fp_recall_set_has(r->reg->recalled, digest))
            json_array_append(mine, def);
    }
    json_decref(placed);
    json_decref(all);
    fp_respond_json(r, json_pack("{s:o}", "services", mine));
}

struct pending_ctx {
    json_t *defs, *instances, *placed;
    struct fp_recall_set *recalled;
};

/* For each joined, unrevoked node: a "pending" line for every service
 * placed on it that its agent has not reported. */
static int add_pending(void *ctx, const char *id, const char *role, time_t created, bool revoked)
{
    struct pending_ctx *p = ctx;
    if (revoked) return 0;
    size_t i, k;
    json_t *def, *in;
    json_array_foreach(p->defs, i, def)
    {
        if (!fp_service_placed(p->placed, def, id, role)) continue;
        const char *name = json_string_value(json_object_get(def, "name"));
        bool seen = false;
        json_array_foreach(
            p->instances, k,
            in) if (!strcmp(json_string_value(json_object_get(in, "node")) ?: "", id) &&
                    !strcmp(json_string_value(json_object_get(in, "service")) ?: "", name)) seen =
            true;
        /* the definition of a recalled image stays, and says so */
        bool recalled =
            fp_recall_set_has(p->recalled, json_string_value(json_object_get(def, "digest")));
        if (!seen)
            json_array_append_new(p->instances,
                                  json_pack("{s:s, s:s, s:s, s:O}", "service", name, "node", id,
                                            "state", recalled ? "recalled" : "pending", "digest",
                                            json_object_get(def, "digest")));
    }
    return 0;
}

/* What a dead node last reported is not what runs there now: its
 * instances say "unknown" (with the node's health), so that `fogport ps`
 * counts only what is known to run. */
static void mark_dead_nodes(fp_req *r, json_t *list)
{
    json_t *nodes = fp_control_nodes(r->reg, time(NULL));
    size_t i;
    json_t *in;
    json_array_foreach(list, i, in)
    {
        const char *node = json_string_value(json_object_get(in, "node")) ?: "";
        const char *h = json_string_value(json_object_get(json_object_get(nodes, node), "health"));
        if (!h || strcmp(h, "dead") != 0) continue;
        json_object_set_new(in, "node_health", json_string(h));
        if (strcmp(json_string_value(json_object_get(in, "state")) ?: "", "pending") != 0)
            json_object_set_new(in, "state", json_string("unknown"));
    }
    json_decref(nodes);
}

static void instances(fp_req *r)
{
    struct pending_ctx p = {.recalled = r->reg->recalled};
    fp_error err;
    if (fp_services_list(r->reg->services, &p.defs, &err) < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    if (fp_services_placements(r->reg->services, &p.placed, &err) < 0 ||
        fp_services_instances(r->reg->services, &p.instances, &err) < 0 ||
        fp_nodes_list(r->reg->authz->nodes, add_pending, &p, &err) < 0) {
        json_decref(p.defs);
        json_decref(p.placed);
        json_decref(p.instances);
        fp_respond_internal(r, &err);
        return;
    }
    json_decref(p.defs);
    json_decref(p.placed);
    mark_dead_nodes(r, p.instances);
    fp_respond_json(r, json_pack("{s:o}", "instances", p.instances));
}

void fp_handle_services(fp_req *r)
{
    if (!fp_authz_require_login(r)) return;
    const char *p = r->path;
    if (!strcmp(p, "/api/v1/agent/desired")) {
        if (fp_req_read_only(r)) desired(r);
        return;
    }
    if (!strcmp(p, "/api/v1/instances")) {
        if (fp_req_read_only(r)) instances(r);
        return;
    }
    static const char prefix[] = "/api/v1/services";
    p += sizeof prefix - 1;
    if (!*p) {
        if (r->method == M_POST) {
            r->on_body = body_sink;
            r->on_end = create_end;
            return;
        }
        if (!fp_req_read_only(r) || !operator(r)) return;
        json_t *all;
        fp_error err;
        if (fp_services_list(r->reg->services, &all, &err) < 0) {
            fp_respond_internal(r, &err);
            return;
        }
        json_t *visible = json_array();
        size_t i;
        json_t *def;
        json_array_foreach(all, i, def) if (may_see(r, def)) json_array_append(visible, def);
        json_decref(all);
        fp_respond_json(r, json_pack("{s:o}", "services", visible));
        return;
    }
    if (*p != '/' || !fp_service_name_valid(p + 1)) {
        fp_respond_error(r, 404, "NAME_UNKNOWN", "no such service");
        return;
    }
    if (r->method != M_GET && r->method != M_HEAD && r->method != M_DELETE) {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    one_service(r, p + 1);
}
