/* fogport service create|update|delete|ls|show: the desired state at the cloud.
 * A definition says which image runs where (one node, or every node of a
 * role) with which limits; agents on those nodes converge to it. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/spec.h"
#include "cli/cli.h"
#include "cli/context.h"
#include "core/config.h"

const char fp_help_service[] =
    "usage: fogport service create NAME --image REF (--node NODE | --role fog|edge)\n"
    "                       [--port P]... [--memory BYTES] [--cpus N] [--pids N]\n"
    "                       [--env K=V]... [--restart always|on-failure|never]\n"
    "                       [--entrypoint PROG] [--cmd ARG]... [--user UID[:GID]]\n"
    "                       [--cap CAP_NAME]... [--writable] [--stop-grace SECONDS]\n"
    "                       [--always-on] [--replicas N]\n"
    "                       [--label K=V]... [--prefer-label K=V] [--near NODE]\n"
    "                       [--host-path HOST:CONTAINER[:ro]]...\n"
    "                       [--max-cpu SHARE] [--max-memory BYTES] [--max-pids N]\n"
    "                       [--window SECONDS]\n"
    "       fogport service update NAME [any create option]... [--clear FIELD]...\n"
    "       fogport service delete NAME\n"
    "       fogport service ls [--json]\n"
    "       fogport service show NAME\n\n"
    "Set what the fog and edge agents run. The cloud resolves the image to its\n"
    "digest when the service is created; the agents on the chosen nodes pull it\n"
    "through their own registry and run it under runc/crun with the limits given\n"
    "(memory takes K/M/G suffixes). Without --cap a service gets Docker's default\n"
    "capabilities; --cap narrows that set. The root file system is read-only\n"
    "unless --writable. Creating an existing name replaces its definition (the\n"
    "agents restart it). --replicas N runs N instances over the role's nodes\n"
    "(default: one on every node of the role); --always-on makes the cloud hand\n"
    "the service to the nearest healthy fog when its node dies (docs/control.md).\n"
    "--label K=V (repeatable) runs it only on nodes carrying every label given\n"
    "([node] labels; with a role and no --replicas: on every such node);\n"
    "--prefer-label K=V and --near NODE rank the nodes the cloud chooses from\n"
    "(carrying the label first, then nearest NODE in the directory's tree).\n"
    "update changes only the fields given (--clear FIELD resets one, e.g.\n"
    "--clear labels); --node replaces --role and the other way round. Changing\n"
    "nothing is a no-op; otherwise the agents replace the instances.\n"
    "Uses the client context (fogport login).\n\n"

    "Policy: above --max-cpu (share of one CPU), --max-memory (below --memory)\n"
    "or --max-pids for the whole --window (default 10 s), the agent stops the\n"
    "service for good (state violated) and the violation is recorded with its\n"
    "samples (fogport violations); creating the service again clears it.\n"
    "Capabilities, ports and host paths beyond the cloud's node policy\n"
    "([control] allowed_capabilities, allowed_ports, allowed_host_paths) are\n"
    "refused; a service gets no host path unless that policy allows it.\n\n"
    "examples:\n"
    "  fogport service create web --image web_service:latest --role fog --port 8080 \\\n"
    "      --memory 64M --cpus 0.5 --pids 64\n"
    "  fogport service create sensor --image iot_service:1.0 --node edge-1 --env INTERVAL=1\n"
    "  fogport service create web --image web_service:latest --node fog-1 --port 8080 \\\n"
    "      --always-on\n"
    "  fogport service update web --memory 128M --label zone=north\n"
    "  fogport service delete web\n"
    "  fogport service ls --json\n"
    "  fogport service show web\n";

static int add_strv(json_t *def, const char *key, const char *value)
{
    json_t *a = json_object_get(def, key);
    if (!a) {
        a = json_array();
        json_object_set_new(def, key, a);
    }
    return json_array_append_new(a, json_string(value));
}

/* Append k=v to the comma-separated labels under key. */
static void add_label(json_t *def, const char *kv)
{
    const char *had = json_string_value(json_object_get(def, "labels"));
    char joined[FP_LABELS_MAX * 2 + 2];
    snprintf(joined, sizeof joined, "%s%s%s", had ? had : "", had ? "," : "", kv);
    json_object_set_new(def, "labels", json_string(joined));
}

static int print_json(json_t *j)
{
    fp_cli_print_json(j);
    json_decref(j);
    return 0;
}

/* PATCH the fields given (def, stolen); a node given replaces the role and
 * the other way round, unless both are. */
static int send_update(const char *name, json_t *def)
{
    if (!fp_service_name_valid(name)) {
        json_decref(def);
        return fp_cli_usage_error("service", "not a service name");
    }
    if (json_object_size(def) == 0) {
        json_decref(def);
        return fp_cli_usage_error("service", "update: say what changes");
    }
    bool node = json_string_value(json_object_get(def, "node")) != NULL;
    bool role = json_string_value(json_object_get(def, "role")) != NULL;
    if (node && !role) json_object_set_new(def, "role", json_null());
    if (role && !node) json_object_set_new(def, "node", json_null());
    char *text = json_dumps(def, JSON_COMPACT);
    json_decref(def);
    char path[128];
    snprintf(path, sizeof path, "/api/v1/services/%s", name);
    json_t *answer = NULL;
    fp_error err;
    int rc = fp_context_call("PATCH", path, text, &answer, &err);
    free(text);
    if (rc < 0) return fp_cli_fail(&err);
    printf("service %s: %s (%s@%s)\n", name,
           json_is_true(json_object_get(answer, "changed")) ? "updated" : "unchanged",
           json_string_value(json_object_get(answer, "image")),
           json_string_value(json_object_get(answer, "digest")));
    json_decref(answer);
    return 0;
}

/* create (update false) or update NAME: the options become the definition,
 * or the JSON merge patch of the fields given. */
static int define(int argc, char **argv, bool update)
{
    static const struct option opts[] = {
        {"image", required_argument, NULL, 'i'},
        {"node", required_argument, NULL, 'n'},
        {"role", required_argument, NULL, 'r'},
        {"port", required_argument, NULL, 'p'},
        {"memory", required_argument, NULL, 'm'},
        {"cpus", required_argument, NULL, 'c'},
        {"pids", required_argument, NULL, 'P'},
        {"env", required_argument, NULL, 'e'},
        {"restart", required_argument, NULL, 'R'},
        {"entrypoint", required_argument, NULL, 'E'},
        {"cmd", required_argument, NULL, 'C'},
        {"user", required_argument, NULL, 'u'},
        {"cap", required_argument, NULL, 'K'},
        {"writable", no_argument, NULL, 'w'},
        {"stop-grace", required_argument, NULL, 'g'},
        {"always-on", no_argument, NULL, 'A'},
        {"replicas", required_argument, NULL, 'N'},
        {"max-cpu", required_argument, NULL, 'X'},
        {"max-memory", required_argument, NULL, 'M'},
        {"max-pids", required_argument, NULL, 'D'},
        {"window", required_argument, NULL, 'W'},
        {"label", required_argument, NULL, 'L'},
        {"prefer-label", required_argument, NULL, 'F'},
        {"near", required_argument, NULL, 'z'},
        {"clear", required_argument, NULL, 'Z'},
        {"host-path", required_argument, NULL, 'H'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    json_t *def = json_object();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:n:r:p:m:c:P:e:R:E:C:u:K:wg:X:M:D:W:AN:L:F:z:Z:H:h", opts,
                            NULL)) != -1) {
        uint64_t n;
        char *end;
        switch (c) {
        case 'i':
            json_object_set_new(def, "image", json_string(optarg));
            break;
        case 'n':
            json_object_set_new(def, "node", json_string(optarg));
            break;
        case 'r':
            json_object_set_new(def, "role", json_string(optarg));
            break;
        case 'p': {
            long p = strtol(optarg, &end, 10);
            if (*end || p < 1 || p > 65535) {
                json_decref(def);
                return fp_cli_usage_error("service", "--port: 1..65535");
            }
            if (!json_object_get(def, "ports")) json_object_set_new(def, "ports", json_array());
            json_array_append_new(json_object_get(def, "ports"), json_integer(p));
            break;
        }
        case 'm':
            if (fp_parse_size(optarg, &n) < 0) {
                json_decref(def);
                return fp_cli_usage_error("service", "--memory: a size such as 64M");
            }
            json_object_set_new(def, "memory", json_integer((json_int_t)n));
            break;
        case 'c': {
            double cpus = strtod(optarg, &end);
            if (*end || cpus <= 0) {
                json_decref(def);
                return fp_cli_usage_error("service", "--cpus: a positive number");
            }
            json_object_set_new(def, "cpus", json_real(cpus));
            break;
        }
        case 'X': {
            double share = strtod(optarg, &end);
            if (*end || share <= 0) {
                json_decref(def);
                return fp_cli_usage_error("service", "--max-cpu: a positive share such as 0.5");
            }
            json_object_set_new(def, "max_cpu", json_real(share));
            break;
        }
        case 'M':
            if (fp_parse_size(optarg, &n) < 0) {
                json_decref(def);
                return fp_cli_usage_error("service", "--max-memory: a size such as 48M");
            }
            json_object_set_new(def, "max_memory", json_integer((json_int_t)n));
            break;
        case 'D':
        case 'W': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1) {
                json_decref(def);
                return fp_cli_usage_error("service", "--max-pids/--window: a positive number");
            }
            json_object_set_new(def, c == 'D' ? "max_pids" : "window_s", json_integer(v));
            break;
        }
        case 'P':
        case 'g': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 0) {
                json_decref(def);
                return fp_cli_usage_error("service", "--pids/--stop-grace: a number");
            }
            json_object_set_new(def, c == 'P' ? "pids" : "stop_grace_s", json_integer(v));
            break;
        }
        case 'e':
            add_strv(def, "env", optarg);
            break;
        case 'R':
            json_object_set_new(def, "restart", json_string(optarg));
            break;
        case 'E':
            json_object_set_new(def, "entrypoint", json_pack("[s]", optarg));
            break;
        case 'C':
            add_strv(def, "cmd", optarg);
            break;
        case 'u':
            json_object_set_new(def, "user", json_string(optarg));
            break;
        case 'K':
            add_strv(def, "capabilities", optarg);
            break;
        case 'w':
            json_object_set_new(def, "writable", json_true());
            break;
        case 'A':
            json_object_set_new(def, "always_on", json_true());
            break;
        case 'N': {
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > FP_SERVICE_REPLICAS_MAX) {
                json_decref(def);
                return fp_cli_usage_error("service", "--replicas: 1..64");
            }
            json_object_set_new(def, "replicas", json_integer(v));
            break;
        }
        case 'L':
            if (!fp_labels_valid(optarg, 1)) {
                json_decref(def);
                return fp_cli_usage_error("service", "--label: K=V");
            }
            add_label(def, optarg);
            break;
        case 'F':
            if (!fp_labels_valid(optarg, 1)) {
                json_decref(def);
                return fp_cli_usage_error("service", "--prefer-label: K=V");
            }
            json_object_set_new(def, "prefer_label", json_string(optarg));
            break;
        case 'z':
            json_object_set_new(def, "near", json_string(optarg));
            break;
        case 'H':
            add_strv(def, "host_paths", optarg);
            break;
        case 'Z':
            if (!update) {
                json_decref(def);
                return fp_cli_usage_error("service", "--clear is for update");
            }
            json_object_set_new(def, optarg, json_null());
            break;
        case 'h':
            fp_cli_help("service");
            json_decref(def);
            return 0;
        default:
            json_decref(def);
            return fp_cli_usage_error("service", "unknown option");
        }
    }
    if (optind != argc - 1) {
        json_decref(def);
        return fp_cli_usage_error("service",
                                  update ? "update takes one NAME" : "create takes one NAME");
    }
    if (update) return send_update(argv[optind], def);
    json_object_set_new(def, "name", json_string(argv[optind]));
    /* refuse here what the cloud would refuse, with the same words */
    fp_service s;
    fp_error err;
    if (fp_service_from_json(def, &s, &err) < 0) {
        json_decref(def);
        return fp_cli_fail(&err);
    }
    fp_service_free(&s);
    char *text = json_dumps(def, JSON_COMPACT);
    json_decref(def);
    json_t *answer = NULL;
    int rc = fp_context_call("POST", "/api/v1/services", text, &answer, &err);
    free(text);
    if (rc < 0) return fp_cli_fail(&err);
    printf("service %s: %s@%s\n", json_string_value(json_object_get(answer, "name")),
           json_string_value(json_object_get(answer, "image")),
           json_string_value(json_object_get(answer, "digest")));
    json_decref(answer);
    return 0;
}

static int list(bool as_json)
{
    json_t *doc;
    fp_error err;
    if (fp_context_get_json("/api/v1/services", &doc, &err) < 0) return fp_cli_fail(&err);
    json_t *all = json_incref(json_object_get(doc, "services"));
    json_decref(doc);
    if (as_json) return print_json(all);
    printf("%-20s %-32s %-10s %-8s %-8s %s\n", "NAME", "IMAGE", "WHERE", "MEMORY", "CPUS",
           "RESTART");
    size_t i;
    json_t *s;
    json_array_foreach(all, i, s)
    {
        const char *node = json_string_value(json_object_get(s, "node"));
        char where[80], mem[24] = "-", cpus[16] = "-";
        json_int_t replicas = json_integer_value(json_object_get(s, "replicas"));
        if (node && node[0])
            snprintf(where, sizeof where, "%s", node);
        else if (replicas)
            snprintf(where, sizeof where, "%lldx%s", (long long)replicas,
                     json_string_value(json_object_get(s, "role")) ?: "?");
        else
            snprintf(where, sizeof where, "role:%s",
                     json_string_value(json_object_get(s, "role")) ?: "?");
        /* where it runs now is `fogport ps`; '+' marks one the cloud keeps up */
        if (json_is_true(json_object_get(s, "always_on")))
            strncat(where, "+", sizeof where - strlen(where) - 1);
        json_int_t m = json_integer_value(json_object_get(s, "memory"));
        if (m) snprintf(mem, sizeof mem, "%lldM", (long long)(m >> 20));
        double c = json_number_value(json_object_get(s, "cpus"));
        if (c > 0) snprintf(cpus, sizeof cpus, "%.2f", c);
        printf("%-20s %-32s %-10s %-8s %-8s %s\n", json_string_value(json_object_get(s, "name")),
               json_string_value(json_object_get(s, "image")), where, mem, cpus,
               json_string_value(json_object_get(s, "restart")));
    }
    json_decref(all);
    return 0;
}

int fp_cmd_service(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fp_cli_help("service");
        return argc < 2 ? 2 : 0;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "create")) return define(argc - 1, argv + 1, false);
    if (!strcmp(sub, "update")) return define(argc - 1, argv + 1, true);
    if (!strcmp(sub, "ls")) return list(argc > 2 && !strcmp(argv[2], "--json"));
    if ((!strcmp(sub, "delete") || !strcmp(sub, "show")) && argc == 3) {
        if (!fp_service_name_valid(argv[2]))
            return fp_cli_usage_error("service", "not a service name");
        char path[128];
        snprintf(path, sizeof path, "/api/v1/services/%s", argv[2]);
        fp_error err;
        json_t *doc = NULL;
        if (fp_context_call(sub[0] == 'd' ? "DELETE" : "GET", path, NULL, &doc, &err) < 0)
            return fp_cli_fail(&err);
        if (sub[0] == 's') return print_json(doc);
        printf("service %s deleted\n", argv[2]);
        return 0;
    }
    return fp_cli_usage_error("service", "unknown sub-command");
}
