/* fogport violations: the policy violations the cloud recorded, as agents
 * reported them (a service stopped for overstepping its limits, or a
 * definition refused for its privileges) and as the cloud refused
 * definitions at create time (node "cloud"). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/context.h"
#include "core/name.h"

const char fp_help_violations[] =
    "usage: fogport violations [--service NAME] [--json]\n\n"
    "Policy violations, oldest first: when, the node that enforced it (\"cloud\"\n"
    "for a definition the cloud refused), the service, what was overstepped\n"
    "(cpu, memory, pids, privilege), what was done (terminated: it stopped on\n"
    "SIGTERM; killed: SIGKILL after its grace; refused: never started) and\n"
    "why. --json prints every record with its evidence: the usage samples of\n"
    "the window (time, cpu share, memory, pids), or the capabilities and\n"
    "ports asked for and the node policy.\n\n"
    "example:\n"
    "  fogport violations --service burner --json\n";

int fp_cmd_violations(int argc, char **argv)
{
    static const struct option opts[] = {{"service", required_argument, NULL, 's'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *service = NULL;
    bool as_json = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:jh", opts, NULL)) != -1) {
        if (c == 's')
            service = optarg;
        else if (c == 'j')
            as_json = true;
        else if (c == 'h') {
            fp_cli_help("violations");
            return 0;
        } else
            return fp_cli_usage_error("violations", "unknown option");
    }
    if (optind != argc) return fp_cli_usage_error("violations", "no arguments expected");
    if (service && !fp_service_name_valid(service))
        return fp_cli_usage_error("violations", "--service: not a service name");
    char path[128];
    snprintf(path, sizeof path, "/api/v1/violations%s%s", service ? "?service=" : "",
             service ? service : "");
    json_t *doc;
    fp_error err;
    if (fp_context_get_json(path, &doc, &err) < 0) return fp_cli_fail(&err);
    json_t *list = json_object_get(doc, "violations");
    if (as_json) {
        fp_cli_print_json(list);
        json_decref(doc);
        return 0;
    }
    printf("%-20s %-8s %-20s %-10s %-11s %s\n", "TIME", "NODE", "SERVICE", "KIND", "ACTION", "WHY");
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        time_t t = (time_t)json_integer_value(json_object_get(v, "time"));
        char when[32] = "-";
        struct tm tm;
        if (t && gmtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%-20s %-8s %-20s %-10s %-11s %s\n", when,
               json_string_value(json_object_get(v, "node")) ?: "-",
               json_string_value(json_object_get(v, "service")) ?: "-",
               json_string_value(json_object_get(v, "kind")) ?: "-",
               json_string_value(json_object_get(v, "action")) ?: "-",
               json_string_value(json_object_get(v, "message")) ?: "");
    }
    json_decref(doc);
    return 0;
}
