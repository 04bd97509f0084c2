/* fogport nodes: the deployment's nodes from the cloud's directory, with
 * where each is reached, its parent and when it was last heard of. */
#include <getopt.h>
#include <stdlib.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/context.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/http_client.h"

const char fp_help_nodes[] =
    "usage: fogport nodes [--json]\n\n"
    "List every node of the deployment as the cloud's directory knows it: id, role,\n"
    "parent, registry URL, seconds since its last heartbeat, labels ([node] labels,\n"
    "which service definitions select by) and state. Uses the client\n"
    "context (fogport login, or FOGPORT_CONFIG=DIR/client.json for a sandbox).\n\n"
    "example:\n"
    "  FOGPORT_CONFIG=/tmp/sb/client.json fogport nodes\n"
    "  ID      ROLE   PARENT  URL                      SEEN  LABELS      STATE\n"
    "  cloud   cloud  -       https://127.0.0.1:40123  0s    -           up\n"
    "  fog-1   fog    cloud   https://127.0.0.1:40125  1s    zone=north  up\n";

int fp_cli_fetch_nodes(json_t **nodes, fp_error *err)
{
    json_t *doc;
    if (fp_context_get_json("/api/v1/nodes", &doc, err) < 0) return -1;
    *nodes = json_incref(json_object_get(doc, "nodes"));
    json_decref(doc);
    if (!json_is_array(*nodes)) {
        json_decref(*nodes);
        return fp_error_set(err, 0, "the cloud's node list is not a list");
    }
    return 0;
}

int fp_cmd_nodes(int argc, char **argv)
{
    bool as_json;
    int rc = fp_cli_json_opts(argc, argv, "nodes", &as_json);
    if (rc >= 0) return rc;
    json_t *nodes;
    fp_error err;
    if (fp_cli_fetch_nodes(&nodes, &err) < 0) return fp_cli_fail(&err);
    if (as_json) {
        fp_cli_print_json(nodes);
        json_decref(nodes);
        return 0;
    }
    printf("%-12s %-6s %-10s %-32s %-6s %-20s %s\n", "ID", "ROLE", "PARENT", "URL", "SEEN",
           "LABELS", "STATE");
    time_t now = time(NULL);
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        const char *parent = json_string_value(json_object_get(n, "parent"));
        const char *url = json_string_value(json_object_get(n, "url"));
        json_int_t seen = json_integer_value(json_object_get(n, "last_seen"));
        char ago[24] = "-";
        if (seen) snprintf(ago, sizeof ago, "%llds", (long long)(now - seen));
        /* the cloud's judgement (suspect, dead) when it gives one; healthy
         * is "up" as before */
        const char *health = json_string_value(json_object_get(n, "health"));
        if (health && (!strcmp(health, "healthy") || !strcmp(health, "unseen"))) health = NULL;
        const char *state = json_is_true(json_object_get(n, "revoked")) ? "revoked"
                            : health                                    ? health
                            : !seen                                     ? "unseen"
                            : now - seen > 30                           ? "down"
                                                                        : "up";
        const char *labels = json_string_value(json_object_get(n, "labels"));
        printf("%-12s %-6s %-10s %-32s %-6s %-20s %s\n",
               json_string_value(json_object_get(n, "id")),
               json_string_value(json_object_get(n, "role")), parent && parent[0] ? parent : "-",
               url && url[0] ? url : "-", ago, labels && labels[0] ? labels : "-", state);
    }
    json_decref(nodes);
    return 0;
}
