/* The node directory's API on the cloud:
 *   POST /api/v1/heartbeat  a node reports {url, parent, capacity, used}
 *                           (its own credential; the id is the caller's)
 *   GET  /api/v1/nodes      every node: identity (role, joined, revoked) and
 *                           directory (url, parent, capacity, last seen),
 *                           health (healthy, suspect, dead, unseen: h_control.c);
 *                           any authenticated user or node. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "control/audit.h"
#include "control/services.h"
#include "control/usage.h"
#include "federation/directory.h"
#include "control/recallset.h"
#include "registry/request.h"

static int heartbeat_body(fp_req *r, const char *data, size_t len)
{
    /* room for an agent's report on a few hundred instances */
    if (r->body.len + len > 512 * 1024)
        return fp_req_fail(r, 413, "UNSUPPORTED", "heartbeat too large");
    return fp_buf_append(&r->body, data, len);
}

static bool url_ok(const char *u)
{
    return u && strlen(u) < 500 &&
           (!u[0] || !strncmp(u, "https://", 8) || !strncmp(u, "http://", 7)) &&
           !strpbrk(u, " \"'<>\\\r\n");
}

/* An agent keeps reporting a violation (agent/enforce.h) with every
 * heartbeat until the instance is replaced: record it the first time, in
 * control.db and the audit trail, with its evidence. */
static void record_violations(fp_req *r, const json_t *instances)
{
    size_t i;
    json_t *it;
    json_array_foreach(instances, i, it)
    {
        const json_t *v = json_object_get(it, "violation");
        const char *service = json_string_value(json_object_get(it, "service"));
        if (!json_is_object(v) || !service || !fp_service_name_valid(service)) continue;
        json_t *rec = json_deep_copy(v);
        json_object_set(rec, "image", json_object_get(it, "image"));
        json_object_set(rec, "digest", json_object_get(it, "digest"));
        fp_error err;
        int rc = fp_services_violation(r->reg->services, r->user, service, rec, &err);
        if (rc < 0)
            fp_warn("event=violation_record_failed node=%s service=%s error=\"%s\"", r->user,
                    service, err.msg);
        if (rc == 0) {
            fp_warn("event=violation node=%s service=%s kind=%s action=%s", r->user, service,
                    json_string_value(json_object_get(rec, "kind")) ?: "",
                    json_string_value(json_object_get(rec, "action")) ?: "");
            json_object_set_new(rec, "node", json_string(r->user));
            fp_req_audit(r, FP_AUDIT_VIOLATION, service, json_incref(rec));
        }
        json_decref(rec);
    }
}

static void heartbeat_end(fp_req *r)
{
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    const char *url = json_string_value(json_object_get(j, "url"));
    const char *parent = json_string_value(json_object_get(j, "parent"));
    json_int_t cap = json_integer_value(json_object_get(j, "capacity"));
    json_int_t used = json_integer_value(json_object_get(j, "used"));
    if (!url_ok(url) || (parent && !url_ok(parent)) || cap < 0 || used < 0) {
        json_decref(j);
        fp_respond_error(r, 400, "UNSUPPORTED",
                         "expected {\"url\", \"parent\", \"capacity\", \"used\"}");
        return;
    }
    fp_directory_entry e = {.id = r->user,
                            .url = url,
                            .parent_url = parent ? parent : "",
                            .capacity = (uint64_t)cap,
                            .used = (uint64_t)used};
    fp_error err;
    int rc = fp_directory_report(r->reg->dir, &e, &err);
    json_t *instances = json_object_get(j, "instances");
    if (rc == 0 && r->reg->services && json_is_array(instances))
        rc = fp_services_report(r->reg->services, r->user, instances, &err);
    if (rc == 0 && r->reg->services && json_is_array(instances)) record_violations(r, instances);
    if (rc == 0 && r->reg->usage && json_is_array(instances)) {
        /* monitoring is not worth refusing a heartbeat over */
        fp_error uerr;
        int events = fp_usage_record(r->reg->usage, r->user, instances, time(NULL), &uerr);
        if (events < 0)
            fp_warn("event=usage_record_failed node=%s error=\"%s\"", r->user, uerr.msg);
        else if (events > 0)
            fp_event_streams_wake(r->reg->streams);
    }
    json_decref(j);
    if (rc < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    /* the node compares and, when behind, fetches the recalls at once */
    char recalls[FP_DIGEST_MAX];
    fp_recall_set_version(r->reg->recalled, recalls);
    fp_respond_json(r, json_pack("{s:s}", "recalls", recalls));
}

void fp_handle_heartbeat(fp_req *r)
{
    if (r->method != M_POST) {
        fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
        return;
    }
    if (!fp_authz_require_login(r)) return;
    if (strcmp(r->kind, "node") != 0) {
        fp_respond_error(r, 403, "DENIED", "only nodes report heartbeats");
        return;
    }
    r->on_body = heartbeat_body;
    r->on_end = heartbeat_end;
}

static int add_identity(void *ctx, const char *id, const char *role, time_t created, bool revoked)
{
    json_t *o =
        json_pack("{s:s, s:s, s:I, s:b, s:s, s:s, s:I, s:I, s:I}", "id", id, "role", role, "joined",
                  (json_int_t)created, "revoked", revoked, "url", "", "parent", "", "capacity",
                  (json_int_t)0, "used", (json_int_t)0, "last_seen", (json_int_t)0);
    json_object_set_new(ctx, id, o);
    return 0;
}

static int add_directory(void *ctx, const fp_directory_entry *e)
{
    json_t *o = json_object_get(ctx, e->id);
    if (!o) return 0; /* reported, then removed from identity: not a node */
    json_object_set_new(o, "url", json_string(e->url));
    json_object_set_new(o, "parent_url", json_string(e->parent_url));
    json_object_set_new(o, "capacity", json_integer((json_int_t)e->capacity));
    json_object_set_new(o, "used", json_integer((json_int_t)e->used));
    json_object_set_new(o, "last_seen", json_integer((json_int_t)e->last_seen));
    return 0;
}

void fp_handle_nodes(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    if (!fp_authz_require_login(r)) return;
    const fp_config *cfg = r->reg->cfg;
    json_t *by_id = json_object();
    fp_error err;
    if (fp_nodes_list(r->reg->authz->nodes, add_identity, by_id, &err) < 0 ||
        fp_directory_list(r->reg->dir, add_directory, by_id, &err) < 0) {
        json_decref(by_id);
        fp_respond_internal(r, &err);
        return;
    }
    char self[512];
    fp_node_advertised_url(cfg, self, sizeof self);
    json_t *list = json_array();
    json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I}", "id",
                                          cfg->node_id[0] ? cfg->node_id : "cloud", "role", "cloud",
                                          "url", self, "parent", "", "revoked", 0, "last_seen",
                                          (json_int_t)time(NULL)));
    const char *id;
    json_t *o;
    /* a node's parent by id: the node whose URL it named, else the cloud */
    json_object_foreach(by_id, id, o)
    {
        const char *purl = json_string_value(json_object_get(o, "parent_url"));
        const char *pid = cfg->node_id[0] ? cfg->node_id : "cloud";
        const char *oid;
        json_t *other;
        json_object_foreach(by_id, oid, other)
        {
            const char *u = json_string_value(json_object_get(other, "url"));
            if (purl && purl[0] && u && !strcmp(u, purl)) pid = oid;
        }
        json_object_set_new(o, "parent", json_string(pid));
        json_object_del(o, "parent_url");
        json_array_append(list, o);
    }
    json_decref(by_id);
    /* health from the heartbeats, as the controller judges it */
    json_t *health = fp_control_nodes(r->reg, time(NULL));
    size_t i;
    json_array_foreach(list, i, o)
    {
        json_t *h = json_object_get(
            json_object_get(health, json_string_value(json_object_get(o, "id")) ?: ""), "health");
        if (h) json_object_set(o, "health", h);
    }
    json_decref(health);
    fp_respond_json(r, json_pack("{s:o}", "nodes", list));
}
