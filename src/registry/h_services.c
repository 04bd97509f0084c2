/* The controller's API on the cloud (control/services.h):
 *   GET    /api/v1/services          every definition (users and nodes)
 *   POST   /api/v1/services          create or replace one (a user who may
 *                                    push the image's repository); the
 *                                    image is resolved to a digest here
 *   GET    /api/v1/services/NAME     one definition, with where it runs
 *                                    ("placement": nodes, and why not
 *                                    everywhere it should)
 *   PATCH  /api/v1/services/NAME     change some fields (a JSON merge
 *                                    patch), authorized as a replace
 *   DELETE /api/v1/services/NAME     remove it; agents stop its instances
 *   GET    /api/v1/agent/desired     a node's own definitions (node only):
 *                                    those placed on it (h_control.c)
 *   GET    /api/v1/instances         what every agent reported, plus a
 *                                    "pending" line for each placement no
 *                                    agent has reported yet (`fogport ps`)
 *   GET    /api/v1/violations[?service=NAME]  policy violations, as agents
 *                                    reported them and as the cloud
 *                                    refused definitions (operators)
 * Agents report their instances with the heartbeat (h_nodes.c). */
#include <errno.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "agent/enforce.h"
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

/* Changing or deleting a definition the caller may neither pull nor push
 * is answered as for one that is not there: a refusal would name its
 * image. */
static bool may_know(fp_req *r, const json_t *def)
{
    fp_reference ref;
    const char *image = json_string_value(json_object_get(def, "image"));
    return image && fp_reference_parse(image, &ref) == 0 &&
           fp_authz_policy_may(r, ref.name, FP_ACT_PULL | FP_ACT_PUSH);
}

static json_t *node_policy(fp_req *r)
{
    json_t *p = NULL;
    fp_error err;
    const fp_config *cfg = r->reg->cfg;
    /* checked at start (server.c): this cannot fail but on memory */
    if (fp_node_policy_build(cfg->control_allowed_caps, cfg->control_allowed_ports,
                             cfg->control_allowed_host_paths, &p, &err) < 0)
        fp_warn("event=node_policy_invalid error=\"%s\"", err.msg);
    return p;
}

/* A definition asking for privileges the node policy does not allow is
 * refused and recorded as a violation, once the caller is known to be
 * allowed to deploy its image (no one else fills the record). True when
 * it was refused (answered). */
static bool refuse_privileges(fp_req *r, const json_t *j)
{
    char why[256];
    json_t *pol = node_policy(r);
    int bad = fp_enforce_privileges(j, pol, why, sizeof why);
    if (!bad) {
        json_decref(pol);
        return false;
    }
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *image = json_string_value(json_object_get(j, "image"));
    fp_reference ref;
    if (!name || !fp_service_name_valid(name)) {
        fp_respond_error(r, 400, "UNSUPPORTED", "service definition: %s", why);
    } else if (may_deploy(r, image ? image : "", &ref)) {
        static atomic_uint seq;
        char id[96];
        snprintf(id, sizeof id, "cloud-%lld-%u", (long long)time(NULL), atomic_fetch_add(&seq, 1));
        json_t *v =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:O?, s:O?, s:O?, s:O?}", "id", id,
                      "kind", "privilege", "message", why, "action", "refused", "image", image,
                      "by", r->user, "time", (json_int_t)time(NULL), "capabilities",
                      json_object_get(j, "capabilities"), "ports", json_object_get(j, "ports"),
                      "host_paths", json_object_get(j, "host_paths"), "policy", pol);
        fp_error err;
        if (fp_services_violation(r->reg->services, "cloud", name, v, &err) < 0)
            fp_warn("event=violation_record_failed service=%s error=\"%s\"", name, err.msg);
        fp_warn("event=service_refused service=%s user=%s why=\"%s\"", name, r->user, why);
        json_object_set_new(v, "node", json_string("cloud"));
        fp_req_audit(r, FP_AUDIT_VIOLATION, name, v);
        fp_respond_error(r, 403, "DENIED", "service %s: privilege violation: %s", name, why);
    }
    json_decref(pol);
    return true;
}

/* The fields that say where a service runs: an update that changes none
 * keeps the controller's placements (a handed-over service stays). */
static const char *const placement_fields[] = {
    "node", "role", "replicas", "always_on", "labels", "prefer_label", "near", "memory", NULL};

static bool same_placement(const json_t *a, const json_t *b)
{
    for (size_t i = 0; placement_fields[i]; i++) {
        json_t *x = json_object_get(a, placement_fields[i]);
        json_t *y = json_object_get(b, placement_fields[i]);
        if (!(x == y || (x && y && json_equal(x, y)))) return false;
    }
    return true;
}

/* A definition as stored, without the cloud's bookkeeping. */
static json_t *canonical(const json_t *def)
{
    json_t *c = json_deep_copy(def);
    json_object_del(c, "created");
    json_object_del(c, "updated");
    return c;
}

/* Create, replace (POST) or update (PATCH: old is the definition it
 * changes, merged into j) a definition, checked and resolved the same way
 * every time. An update that keeps the image keeps its digest: a tag moved
 * since does not change what runs until the image is given again. */
static void commit(fp_req *r, json_t *j, json_t *old, bool keep_digest)
{
    fp_service s;
    fp_error err;
    if (json_is_object(j) && refuse_privileges(r, j)) {
        json_decref(old);
        return;
    }
    if (fp_service_from_json(j, &s, &err) < 0) {
        fp_respond_error(r, 400, "UNSUPPORTED", "service definition: %s", err.msg);
        json_decref(old);
        return;
    }
    bool patch = old != NULL;
    fp_reference ref;
    if (!may_deploy(r, s.image, &ref)) goto out;
    /* replacing a definition is deleting it: the caller must be allowed
     * the image that runs under that name now, too */
    int rc = old ? 0 : fp_services_get(r->reg->services, s.name, &old, &err);
    if (rc < 0) {
        fp_respond_internal(r, &err);
        goto out;
    }
    if (rc == 0 && !may_know(r, old)) {
        fp_respond_error(r, 403, "DENIED", "%s may not replace service %s", r->user, s.name);
        goto out;
    }
    if (rc == 0) {
        fp_reference oref;
        if (!may_deploy(r, json_string_value(json_object_get(old, "image")) ?: "", &oref)) goto out;
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
    if (!keep_digest) {
        /* Agents run exactly what the cloud resolved: a tag moved later
         * does not change a running service until its definition is
         * updated. */
        fp_manifest_row row;
        bool by_digest = ref.digest[0] != '\0';
        rc = fp_store_manifest_get(r->reg->store, ref.name, by_digest ? ref.digest : ref.tag,
                                   by_digest, false, &row, &err);
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
    }
    if (fp_recall_set_has(r->reg->recalled, s.digest)) {
        fp_respond_error(r, 403, "DENIED", "image %s (%s) is recalled", s.image, s.digest);
        goto out;
    }
    json_t *next = fp_service_to_json(&s), *before = old ? canonical(old) : NULL;
    bool changed = !before || !json_equal(next, before);
    bool keep = patch && before && same_placement(next, before);
    json_decref(before);
    if (patch && !changed) {
        /* nothing to do: no write, no audit entry, no restart */
        json_decref(next);
        json_t *def = json_incref(old);
        json_object_set_new(def, "changed", json_false());
        fp_respond_json(r, def);
        goto out;
    }
    bool replaced = false;
    if (fp_services_put(r->reg->services, &s, keep, &replaced, &err) < 0) {
        json_decref(next);
        fp_respond_internal(r, &err);
        goto out;
    }
    fp_info("event=service_%s service=%s image=%s digest=%s user=%s",
            replaced ? "updated" : "created", s.name, s.image, s.digest, r->user);
    fp_req_audit(r, replaced ? FP_AUDIT_SERVICE_UPDATED : FP_AUDIT_SERVICE_CREATED, s.name, next);
    /* place it now: its agents learn of it at their next sync, not a tick
     * later */
    fp_control_place(r->reg, time(NULL));
    json_t *def = NULL;
    if (fp_services_get(r->reg->services, s.name, &def, &err) != 0) {
        fp_respond_internal(r, &err);
        goto out;
    }
    if (patch) json_object_set_new(def, "changed", json_true());
    fp_respond_json_status(r, replaced ? 200 : 201, def);
out:
    json_decref(old);
    fp_service_free(&s);
}

static void create_end(fp_req *r)
{
    json_error_t jerr;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &jerr);
    if (!j) {
        fp_respond_error(r, 400, "UNSUPPORTED", "service definition: %s", jerr.text);
        return;
    }
    commit(r, j, NULL, false);
    json_decref(j);
}

/* PATCH /api/v1/services/NAME: a JSON merge patch (RFC 7396) of the
 * definition; null removes a field (its default applies). */
static void update_end(fp_req *r)
{
    const char *name = r->path + sizeof "/api/v1/services/" - 1;
    json_error_t jerr;
    json_t *patch = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, &jerr);
    if (!json_is_object(patch)) {
        fp_respond_error(r, 400, "UNSUPPORTED", "service update: %s",
                         patch ? "expected a JSON object" : jerr.text);
        json_decref(patch);
        return;
    }
    const char *pname = json_string_value(json_object_get(patch, "name"));
    if ((json_object_get(patch, "name") && (!pname || strcmp(pname, name) != 0)) ||
        json_object_get(patch, "digest")) {
        json_decref(patch);
        fp_respond_error(r, 400, "UNSUPPORTED",
                         "service update: the name and the digest are not changed by an update "
                         "(the digest follows the image)");
        return;
    }
    json_t *old = NULL;
    fp_error err;
    int rc = fp_services_get(r->reg->services, name, &old, &err);
    if (rc == 0 && !may_know(r, old)) {
        json_decref(old);
        rc = 1;
    }
    if (rc != 0) {
        json_decref(patch);
        if (rc < 0)
            fp_respond_internal(r, &err);
        else
            fp_respond_error(r, 404, "NAME_UNKNOWN", "no service %s", name);
        return;
    }
    json_t *merged = canonical(old);
    const char *key;
    json_t *v;
    json_object_foreach(patch, key, v)
    {
        if (json_is_null(v))
            json_object_del(merged, key);
        else
            json_object_set(merged, key, v);
    }
    json_t *image = json_object_get(patch, "image");
    bool keep_digest = !image || json_equal(image, json_object_get(old, "image"));
    json_decref(patch);
    commit(r, merged, old, keep_digest); /* takes old */
    json_decref(merged);
}

struct placed_ctx {
    const json_t *def, *placements;
    json_t *nodes;
};

static int add_placed(void *ctx, const char *id, const char *role, time_t created, bool revoked)
{
    (void)created;
    struct placed_ctx *p = ctx;
    if (!revoked && fp_service_placed(p->placements, p->def, id, role))
        json_array_append_new(p->nodes, json_string(id));
    return 0;
}

/* Where the definition runs now: {"nodes": [...]} plus "unplaced": why,
 * when the controller found fewer nodes than it asks for. */
static json_t *placement_of(fp_req *r, const json_t *def)
{
    fp_error err;
    json_t *placed = NULL, *unplaced = fp_control_unplaced();
    struct placed_ctx p = {.def = def, .nodes = json_array()};
    if (fp_services_placements(r->reg->services, &placed, &err) == 0) {
        p.placements = placed;
        fp_nodes_list(r->reg->authz->nodes, add_placed, &p, &err);
    }
    json_t *out = json_pack("{s:o}", "nodes", p.nodes);
    json_t *why = json_object_get(unplaced, json_string_value(json_object_get(def, "name")) ?: "");
    if (why) json_object_set(out, "unplaced", why);
    json_decref(unplaced);
    json_decref(placed);
    return out;
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
        json_object_set_new(def, "placement", placement_of(r, def));
        fp_respond_json(r, def);
        return;
    }
    if (!may_know(r, def)) {
        json_decref(def);
        fp_respond_error(r, 404, "NAME_UNKNOWN", "no service %s", name);
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

/* def, when it is an always-on service pinned to a node, with the node
 * the controller placed it on. */
static void add_always_on(json_t *list, const json_t *placed, const json_t *def)
{
    const char *name = json_string_value(json_object_get(def, "name"));
    const char *node = json_string_value(json_object_get(def, "node"));
    if (!name || !node || !node[0] || !json_is_true(json_object_get(def, "always_on")) ||
        json_integer_value(json_object_get(def, "replicas")) != 0)
        return;
    json_t *at = json_array_get(json_object_get(placed, name), 0);
    json_array_append_new(list, json_pack("{s:O, s:s}", "definition", def, "node",
                                          json_is_string(at) ? json_string_value(at) : node));
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
    /* A fog also learns the other fogs' always-on services and where they
     * run: while the cloud is away the fogs hand them over among
     * themselves (agent/handover.h). Only what the cloud would give a fog
     * on a hand-over anyway: definitions pinned to a node, always on. */
    json_t *always_on = json_array();
    json_array_foreach(all, i, def)
    {
        /* a recalled image runs nowhere: its agents stop and remove it */
        const char *digest = json_string_value(json_object_get(def, "digest"));
        if (fp_recall_set_has(r->reg->recalled, digest)) continue;
        if (fp_service_placed(placed, def, r->user, r->role))
            json_array_append(mine, def);
        else if (!strcmp(r->role, "fog"))
            add_always_on(always_on, placed, def);
    }
    json_decref(placed);
    json_decref(all);
    /* the agent enforces the policy itself, also while the cloud is away */
    json_t *pol = node_policy(r);
    fp_respond_json(r, json_pack("{s:o, s:o, s:o}", "services", mine, "policy",
                                 pol ? pol : json_object(), "always_on", always_on));
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
    /* a definition the controller could not place (no node carries its
     * labels, none healthy): one line that says why, not silence */
    json_t *unplaced = fp_control_unplaced();
    const char *svc;
    json_t *why;
    json_object_foreach(unplaced, svc, why)
    {
        size_t i;
        json_t *def;
        json_array_foreach(
            p.defs, i, def) if (!strcmp(json_string_value(json_object_get(def, "name")) ?: "", svc))
            json_array_append_new(p.instances,
                                  json_pack("{s:s, s:s, s:s, s:O, s:O}", "service", svc, "node",
                                            "-", "state", "unplaced", "reason", why, "digest",
                                            json_object_get(def, "digest")));
    }
    json_decref(unplaced);
    json_decref(p.defs);
    json_decref(p.placed);
    mark_dead_nodes(r, p.instances);
    fp_respond_json(r, json_pack("{s:o}", "instances", p.instances));
}

static void violations(fp_req *r)
{
    if (!operator(r)) return;
    const char *service = fp_req_arg(r, "service");
    if (service && !fp_service_name_valid(service)) {
        fp_respond_error(r, 400, "UNSUPPORTED", "service: not a service name");
        return;
    }
    json_t *all;
    fp_error err;
    if (fp_services_violations(r->reg->services, service, &all, &err) < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    /* the evidence is the operators' who may pull the image, as with
     * definitions; a record without an image (none) shows to admins only
     * through the audit trail */
    json_t *visible = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v) if (may_see(r, v)) json_array_append(visible, v);
    json_decref(all);
    fp_respond_json(r, json_pack("{s:o}", "violations", visible));
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
    if (!strcmp(p, "/api/v1/violations")) {
        if (fp_req_read_only(r)) violations(r);
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
    if (r->method == M_PATCH) {
        r->on_body = body_sink;
        r->on_end = update_end;
        return;
    }
    if (r->method != M_GET && r->method != M_HEAD && r->method != M_DELETE) {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    one_service(r, p + 1);
}
