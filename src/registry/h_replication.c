/* Push replication's API on the cloud (federation/replication.h):
 *   GET  /api/v1/replication/tasks       a node's tasks due now (node credential)
 *   POST /api/v1/replication/tasks/ID    its report {"state", "bytes", "error"}
 *   GET  /api/v1/replication             every task, for operators
 * and the hooks that queue tasks: a tag pushed at the cloud, and the
 * scheduled passes. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "federation/replication.h"
#include "registry/registry.h"
#include "registry/request.h"

static bool authenticated(fp_req *r, bool node_only)
{
    if (!fp_authz_require_login(r)) return false;
    if (node_only && strcmp(r->kind, "node") != 0) {
        fp_respond_error(r, 403, "DENIED", "only nodes have replication tasks");
        return false;
    }
    return true;
}

static int add_task(void *ctx, const fp_task *t)
{
    json_array_append_new(
        ctx, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "id",
                       (json_int_t)t->id, "node", t->node, "repo", t->repo, "tag", t->tag, "digest",
                       t->digest, "via", t->via, "state", t->state, "error", t->error, "attempts",
                       (json_int_t)t->attempts, "bytes", (json_int_t)t->bytes, "updated",
                       (json_int_t)t->updated, "next_attempt", (json_int_t)t->next_attempt));
    return 0;
}

static void respond_tasks(fp_req *r, const char *node, bool offer)
{
    json_t *list = json_array();
    fp_error err;
    if (fp_directory_tasks(r->reg->dir, node, offer, add_task, list, &err) < 0) {
        json_decref(list);
        fp_respond_internal(r, &err);
        return;
    }
    fp_respond_json(r, json_pack("{s:o}", "tasks", list));
}

static int report_body(fp_req *r, const char *data, size_t len)
{
    if (r->body.len + len > 8192) return fp_req_fail(r, 413, "UNSUPPORTED", "report too large");
    return fp_buf_append(&r->body, data, len);
}

static void report_end(fp_req *r)
{
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len, 0, NULL);
    const char *state = json_string_value(json_object_get(j, "state"));
    const char *error = json_string_value(json_object_get(j, "error"));
    json_int_t bytes = json_integer_value(json_object_get(j, "bytes"));
    const char *idtext = r->path + strlen("/api/v1/replication/tasks/");
    char *end;
    long long id = strtoll(idtext, &end, 10);
    if (!state || (strcmp(state, "running") && strcmp(state, "done") && strcmp(state, "failed")) ||
        bytes < 0 || *end || id <= 0 || (error && strlen(error) > 1024)) {
        json_decref(j);
        fp_respond_error(r, 400, "UNSUPPORTED", "expected {\"state\": running|done|failed, ...}");
        return;
    }
    fp_error err;
    int rc =
        fp_directory_task_report(r->reg->dir, id, r->user, state, (uint64_t)bytes, error, &err);
    json_decref(j);
    if (rc < 0)
        fp_respond_internal(r, &err);
    else if (rc == 1)
        fp_respond_error(r, 404, "UNSUPPORTED", "no such task of this node");
    else
        fp_respond_empty(r, 204, (char *)NULL);
}

void fp_handle_replication(fp_req *r)
{
    bool tasks = !strncmp(r->path, "/api/v1/replication/tasks", 25);
    if (tasks && r->path[25] == '/') {
        if (r->method != M_POST) {
            fp_respond_error(r, 405, "UNSUPPORTED", "method not allowed");
            return;
        }
        if (!authenticated(r, true)) return;
        r->on_body = report_body;
        r->on_end = report_end;
        return;
    }
    if (!fp_req_read_only(r)) return;
    if (!authenticated(r, tasks)) return;
    respond_tasks(r, tasks ? r->user : NULL, tasks);
}

struct node_list {
    fp_replication_node nodes[256];
    char ids[256][64], roles[256][16];
    size_t n;
};

static int add_node(void *ctx, const char *id, const char *role, time_t created, bool revoked)
{
    (void)created;
    struct node_list *l = ctx;
    if (revoked || l->n >= 256) return 0;
    snprintf(l->ids[l->n], sizeof l->ids[l->n], "%s", id);
    snprintf(l->roles[l->n], sizeof l->roles[l->n], "%s", role);
    l->nodes[l->n] = (fp_replication_node){.id = l->ids[l->n], .role = l->roles[l->n]};
    l->n++;
    return 0;
}

static struct node_list *joined_nodes(fp_registry *reg, fp_error *err)
{
    struct node_list *l = calloc(1, sizeof *l);
    if (!l) {
        fp_error_set(err, ENOMEM, "node list");
        return NULL;
    }
    if (fp_nodes_list(reg->authz->nodes, add_node, l, err) < 0) {
        free(l);
        return NULL;
    }
    return l;
}

void fp_replication_on_push(fp_req *r, const char *digest, const char *const *tags, size_t ntags)
{
    fp_registry *reg = r->reg;
    if (!reg->repl || !reg->dir || !ntags) return;
    fp_error err;
    struct node_list *l = joined_nodes(reg, &err);
    int rc = l ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < ntags; i++)
        rc = fp_replication_queue(reg->repl, reg->dir, r->route.name, tags[i], digest, l->nodes,
                                  l->n, false, &err);
    if (rc < 0) fp_warn("event=replication_queue_failed error=\"%s\"", err.msg);
    free(l);
}

struct sweep {
    fp_registry *reg;
    struct node_list *nodes;
    const char *repo;
};

static int queue_tag(void *ctx, const char *tag)
{
    struct sweep *s = ctx;
    fp_manifest_row row;
    fp_error err;
    if (fp_store_manifest_get(s->reg->store, s->repo, tag, false, false, &row, &err) == 0)
        fp_replication_queue(s->reg->repl, s->reg->dir, s->repo, tag, row.digest, s->nodes->nodes,
                             s->nodes->n, true, &err);
    return 0;
}

static int sweep_repo(void *ctx, const char *repo)
{
    struct sweep *s = ctx;
    char name[FP_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", repo);
    s->repo = name;
    fp_error err;
    fp_store_tags(s->reg->store, name, NULL, 100000, queue_tag, s, &err);
    return 0;
}

void fp_registry_tick(fp_registry *reg, time_t now)
{
    fp_usage_tick(reg, now);
    fp_control_place(reg, now);
    fp_control_prune(reg, now);
    if (!reg->repl || !reg->dir || !fp_replication_due(reg->repl, now)) return;
    fp_error err;
    struct sweep s = {.reg = reg, .nodes = joined_nodes(reg, &err)};
    if (!s.nodes) return;
    fp_store_catalog(reg->store, NULL, 1000000, sweep_repo, &s, &err);
    free(s.nodes);
}
