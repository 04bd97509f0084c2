/* fogport replication status: every replication task the cloud queued,
 * with its state, the bytes moved and the node it fetched through. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/context.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/http_client.h"

const char fp_help_replication[] =
    "usage: fogport replication status [--json]\n\n"
    "Show the cloud's replication tasks: which node should hold which service tag,\n"
    "whether it does (pending, running, done, failed, with the error and retry), the\n"
    "bytes it fetched and the seed it fetched through. Rules are in the file named by\n"
    "[federation] replication on the cloud. Uses the client context (fogport login).\n\n"
    "example:\n"
    "  FOGPORT_CONFIG=/tmp/sb/client.json fogport replication status\n";

int fp_cmd_replication(int argc, char **argv)
{
    bool as_json;
    int rc = fp_cli_json_opts(argc, argv, "replication", &as_json);
    if (rc >= 0) return rc;
    if (optind >= argc || strcmp(argv[optind], "status") != 0)
        return fp_cli_usage_error("replication", "expected status");
    json_t *doc;
    fp_error err;
    if (fp_context_get_json("/api/v1/replication", &doc, &err) < 0) return fp_cli_fail(&err);
    json_t *tasks = json_object_get(doc, "tasks");
    if (!json_is_array(tasks)) {
        json_decref(doc);
        fp_error_set(&err, 0, "the cloud's task list is not a list");
        return fp_cli_fail(&err);
    }
    if (as_json) {
        fp_cli_print_json(tasks);
        json_decref(doc);
        return 0;
    }
    printf("%-28s %-10s %-8s %-8s %12s  %s\n", "SERVICE", "NODE", "STATE", "VIA", "BYTES",
           "DETAIL");
    size_t i;
    json_t *t;
    time_t now = time(NULL);
    json_array_foreach(tasks, i, t)
    {
        char service[300], detail[300] = "";
        snprintf(service, sizeof service, "%s:%s", json_string_value(json_object_get(t, "repo")),
                 json_string_value(json_object_get(t, "tag")));
        const char *state = json_string_value(json_object_get(t, "state"));
        const char *via = json_string_value(json_object_get(t, "via"));
        const char *error = json_string_value(json_object_get(t, "error"));
        json_int_t next = json_integer_value(json_object_get(t, "next_attempt"));
        if (state && !strcmp(state, "failed"))
            snprintf(detail, sizeof detail, "%s (attempt %lld, retry in %llds)", error ? error : "",
                     (long long)json_integer_value(json_object_get(t, "attempts")),
                     (long long)(next > now ? next - now : 0));
        printf("%-28s %-10s %-8s %-8s %12lld  %s\n", service,
               json_string_value(json_object_get(t, "node")), state, via && via[0] ? via : "cloud",
               (long long)json_integer_value(json_object_get(t, "bytes")), detail);
    }
    json_decref(doc);
    return 0;
}
