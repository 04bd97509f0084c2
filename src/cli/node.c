/* fogport node token create | list | revoke: the cloud's node directory,
 * run on the cloud against its data directory. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/nodes.h"
#include "cli/cli.h"
#include "control/audit.h"
#include "core/config.h"

const char fp_help_node[] =
    "usage: fogport node token create --role fog|edge [--id ID] [--ttl DURATION]\n"
    "                                [--config FILE | --data DIR]\n"
    "       fogport node list [--config FILE | --data DIR]\n"
    "       fogport node revoke ID [--config FILE | --data DIR]\n\n"
    "Run on the cloud: --config names its configuration, --data its data directory.\n"
    "Join tokens are one-time: a fog or edge names it in [node] join_token and\n"
    "spends it on its first start to get its own credential and certificate.\n"
    "A revoked node can no longer get tokens, and the cloud refuses its tokens.\n\n"
    "examples:\n"
    "  fogport node token create --role fog --id fog-1 --ttl 1h --data /var/lib/fogport\n"
    "  fogport node list --config /etc/fogport/fogport.conf\n"
    "  fogport node revoke edge-3 --config /etc/fogport/fogport.conf\n";

static int print_node(void *ctx, const char *id, const char *role, time_t created, bool revoked)
{
    (void)ctx;
    struct tm tm;
    gmtime_r(&created, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-24s %-6s %s%s\n", id, role, when, revoked ? " revoked" : "");
    return 0;
}

int fp_cmd_node(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'r'},
        {"id", required_argument, NULL, 'i'},
        {"ttl", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data = NULL, *role = NULL, *id = NULL, *ttl = "1h";
    int c;
    while ((c = getopt_long(argc, argv, "c:d:r:i:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 'i':
            id = optarg;
            break;
        case 't':
            ttl = optarg;
            break;
        case 'h':
            fp_cli_help("node");
            return 0;
        default:
            return fp_cli_usage_error("node", "unknown option");
        }
    }
    if (optind >= argc)
        return fp_cli_usage_error("node", "missing action (token create, list, revoke)");
    const char *action = argv[optind];
    fp_config cfg;
    if (fp_cli_load_config(&cfg, config, data) < 0) return 1;
    fp_error err;
    unsigned ttl_s;
    if (fp_parse_duration(ttl, &ttl_s) < 0)
        return fp_cli_usage_error("node", "--ttl is a duration (e.g. 30m, 1h)");
    fp_nodes *n;
    if (fp_nodes_open(&n, cfg.data_dir, &err) < 0) return fp_cli_fail(&err);
    int rc = 0;
    if (!strcmp(action, "token")) {
        if (optind + 1 >= argc || strcmp(argv[optind + 1], "create") != 0 || !role) {
            rc = fp_cli_usage_error("node", "token create needs --role fog or edge");
        } else {
            char token[64];
            if (fp_nodes_token_create(n, role, id, ttl_s, token, &err) < 0)
                rc = fp_cli_fail(&err);
            else
                printf("%s\n", token);
            if (rc == 0) /* the token itself stays secret */
                fp_cli_audit(&cfg, FP_AUDIT_NODE_TOKEN_CREATED, id ? id : "*",
                             json_pack("{s:s, s:i}", "role", role, "ttl_s", (int)ttl_s));
        }
    } else if (!strcmp(action, "list")) {
        if (fp_nodes_list(n, print_node, NULL, &err) < 0) rc = fp_cli_fail(&err);
    } else if (!strcmp(action, "revoke")) {
        const char *target = optind + 1 < argc ? argv[optind + 1] : NULL;
        int r = target ? fp_nodes_revoke(n, target, &err) : -2;
        if (r == -2)
            rc = fp_cli_usage_error("node", "revoke takes one node ID");
        else if (r < 0)
            rc = fp_cli_fail(&err);
        else if (r == 0)
            fp_cli_audit(&cfg, FP_AUDIT_NODE_REVOKED, target, NULL);
        else if (r == 1) {
            fprintf(stderr, "fogport: no node '%s'\n", target);
            rc = 1;
        }
    } else {
        rc = fp_cli_usage_error("node", "unknown action");
    }
    fp_nodes_close(n);
    return rc;
}
