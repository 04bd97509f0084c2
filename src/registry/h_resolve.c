/* GET /api/v1/resolve/<service> on any node: where a client should pull the
 * service from, the nearest node that holds it: this node when it does,
 * else (on a fog or edge) the owner or the nearest peer that holds it, else
 * the parent; on the cloud, the fog whose namespace it is. Answer:
 *   {"service", "node", "registry", "rtt_ms", "local", "endpoint"}
 * endpoint: where the image runs as a service (this node's instance, or at
 * the cloud the one on the answering node, else any), null when nowhere.
 * Authorized like a pull of the service. */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "control/services.h"
#include "core/name.h"
#include "federation/directory.h"
#include "registry/request.h"

static int first_tag(void *ctx, const char *name)
{
    (void)name;
    *(bool *)ctx = true;
    return 1;
}

struct owner {
    const char *repo;
    char id[64], url[512];
};

static int find_owner(void *ctx, const fp_directory_entry *e)
{
    struct owner *o = ctx;
    size_t n = strlen(e->id);
    if (!strncmp(o->repo, e->id, n) && o->repo[n] == '/' && e->url[0]) {
        snprintf(o->id, sizeof o->id, "%s", e->id);
        snprintf(o->url, sizeof o->url, "%s", e->url);
        return 1;
    }
    return 0;
}

/* Does the instance on node still count: its node not dead, and, for a
 * service the controller places, placed there? */
static bool moved_here(const json_t *nodes, const json_t *placed, const json_t *in,
                       const char *node)
{
    const char *h = json_string_value(json_object_get(json_object_get(nodes, node), "health"));
    if (h && !strcmp(h, "dead")) return false;
    json_t *where =
        json_object_get(placed, json_string_value(json_object_get(in, "service")) ?: "");
    if (!where) return true;
    size_t i;
    json_t *n;
    json_array_foreach(where, i, n) if (!strcmp(json_string_value(n) ?: "", node)) return true;
    return false;
}

/* Where the image runs: a running instance's endpoint, the one on node
 * when there is one. This node's agent knows its own; the cloud knows what
 * every agent reported. */
static json_t *endpoint_of(fp_req *r, const char *node)
{
    json_t *list = NULL, *placed = NULL, *nodes = NULL;
    fp_error err;
    if (r->reg->agent)
        list = fp_agent_status(r->reg->agent);
    else if (!r->reg->services || fp_services_instances(r->reg->services, &list, &err) < 0)
        return json_null();
    /* at the cloud: not what a dead node last said, nor an instance of a
     * service the controller moved away from its node (hand-over) */
    if (!r->reg->agent) {
        nodes = fp_control_nodes(r->reg, time(NULL));
        if (fp_services_placements(r->reg->services, &placed, &err) < 0) placed = NULL;
    }
    const char *best = NULL;
    size_t i;
    json_t *in;
    json_array_foreach(list, i, in)
    {
        fp_reference ref;
        const char *image = json_string_value(json_object_get(in, "image"));
        const char *ep = json_string_value(json_object_get(in, "endpoint"));
        const char *st = json_string_value(json_object_get(in, "state"));
        const char *on = json_string_value(json_object_get(in, "node"));
        if (!image || !ep || !st || strcmp(st, "running") != 0 ||
            fp_reference_parse(image, &ref) < 0 || strcmp(ref.name, r->route.name) != 0)
            continue;
        if (on && !moved_here(nodes, placed, in, on)) continue;
        if (!best || (on && !strcmp(on, node))) best = ep;
    }
    json_t *out = best ? json_string(best) : json_null();
    json_decref(nodes);
    json_decref(placed);
    json_decref(list);
    return out;
}

static void answer(fp_req *r, const char *node, const char *url, double rtt, bool local)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:b}", "service", r->route.name, "node", node,
                          "registry", url, "local", local);
    json_object_set_new(j, "rtt_ms", rtt >= 0 ? json_real(rtt) : json_null());
    json_object_set_new(j, "endpoint", endpoint_of(r, node));
    fp_respond_json(r, j);
}

void fp_handle_resolve(fp_req *r)
{
    if (!fp_req_read_only(r)) return;
    const fp_config *cfg = r->reg->cfg;
    fp_error err;
    bool held = false;
    int rc = fp_store_tags(r->reg->store, r->route.name, NULL, 1, first_tag, &held, &err);
    if (rc < 0) {
        fp_respond_internal(r, &err);
        return;
    }
    char self[512];
    fp_node_advertised_url(cfg, self, sizeof self);
    const char *me = cfg->node_id[0] ? cfg->node_id : "local";
    if (held) {
        answer(r, me, self, 0, true);
        return;
    }
    char id[64], url[512];
    double rtt = -1;
    if (r->reg->fed && fp_fed_resolve(r->reg->fed, r->route.name, id, url, &rtt, &err) == 0) {
        answer(r, id, url, rtt, false);
        return;
    }
    struct owner o = {.repo = r->route.name};
    if (r->reg->dir && fp_directory_list(r->reg->dir, find_owner, &o, &err) == 0 && o.id[0]) {
        answer(r, o.id, o.url, -1, false);
        return;
    }
    fp_respond_error(r, 404, "NAME_UNKNOWN", "no node holds %s", r->route.name);
}
