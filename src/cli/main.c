/* fogport: one binary for every node (cloud, fog, edge) and its CLI. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

static const char help_version[] = "usage: fogport version\n\n"
                                   "Print fogport's version (also: fogport --version).\n\n"
                                   "example:\n"
                                   "  fogport version\n";

static int cmd_version(int argc, char **argv)
{
    if (argc > 1) return fp_cli_usage_error("version", "no arguments expected");
    printf("fogport %s\n", FP_VERSION);
    return 0;
}

/* Every command, its help text (next to the command) and its line in
 * `fogport help`; help, the manual page and shell completion read them
 * (cli/help.c). */
const struct fp_cli_command fp_cli_commands[] = {
    {"serve", fp_cmd_serve, fp_help_serve, "run this node's registry"},
    {"ls", fp_cmd_ls, fp_help_ls, "list a registry's services and their tags"},
    {"gc", fp_cmd_gc, fp_help_gc, "remove unreferenced blobs and untagged manifests (online)"},
    {"fsck", fp_cmd_fsck, fp_help_fsck, "verify every stored blob and manifest against its digest"},
    {"user", fp_cmd_user, fp_help_user, "add, change, remove and list the users who may log in"},
    {"key", fp_cmd_key, fp_help_key, "generate a token-signing key pair"},
    {"ca", fp_cmd_ca, fp_help_ca, "create the deployment's CA and token signing key"},
    {"cert", fp_cmd_cert, fp_help_cert, "issue a node certificate from the deployment CA"},
    {"node", fp_cmd_node, fp_help_node, "join tokens, list and revoke nodes (on the cloud)"},
    {"nodes", fp_cmd_nodes, fp_help_nodes,
     "list the deployment's nodes from the cloud's directory"},
    {"replication", fp_cmd_replication, fp_help_replication,
     "show which nodes hold (or fetch) which services"},
    {"service", fp_cmd_service, fp_help_service,
     "create, delete and list the services agents run (on the cloud)"},
    {"ps", fp_cmd_ps, fp_help_ps, "list every service instance on every node, with its usage"},
    {"logs", fp_cmd_logs, fp_help_logs, "print a service's log from the node that runs it"},
    {"top", fp_cmd_top, fp_help_top, "every service instance on every node with its usage, live"},
    {"events", fp_cmd_events, fp_help_events,
     "instances' state changes the cloud saw (--follow: as they come)"},
    {"recall", fp_cmd_recall, fp_help_recall,
     "revoke an image everywhere: registries refuse it, agents stop it"},
    {"unrecall", fp_cmd_unrecall, fp_help_recall,
     "end a recall (the image may be pulled and run again)"},
    {"violations", fp_cmd_violations, fp_help_violations,
     "list the policy violations agents and the cloud recorded"},
    {"audit", fp_cmd_audit, fp_help_audit,
     "list the cloud's audit trail, or verify a copy of it offline"},
    {"sandbox", fp_cmd_sandbox, fp_help_sandbox,
     "start or stop a whole deployment on this machine"},
    {"login", fp_cmd_login, fp_help_login, "log in to a cloud and save it as the client context"},
    {"version", cmd_version, help_version, "print the version"},
    {"help", fp_cmd_help, NULL, NULL},
    {"__complete", fp_cmd_complete, NULL, NULL}, /* internal: bash completion */
    {"shim", fp_cmd_shim, NULL, NULL}, /* internal: the agent's per-container supervisor */
    {"unpack-layer", fp_cmd_unpack_layer, NULL, NULL}, /* internal: the agent's layer unpacking */
};
const size_t fp_cli_ncommands = sizeof fp_cli_commands / sizeof fp_cli_commands[0];

int fp_cli_fail(const fp_error *err)
{
    fprintf(stderr, "fogport: %s\n", err->msg);
    return 1;
}

int fp_cli_json_opts(int argc, char **argv, const char *cmd, bool *as_json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    *as_json = false;
    while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (c == 'j') {
            *as_json = true;
        } else if (c == 'h') {
            fp_cli_help(cmd);
            return 0;
        } else {
            return fp_cli_usage_error(cmd, "unknown option");
        }
    }
    return -1;
}

void fp_cli_print_json(const json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    puts(text ? text : "[]");
    free(text);
}

int fp_cli_load_config(fp_config *cfg, const char *config_path, const char *data_dir)
{
    fp_config_defaults(cfg);
    fp_error err;
    if (config_path && fp_config_load(cfg, config_path, &err) < 0) {
        fp_cli_fail(&err);
        return -1;
    }
    if (data_dir && fp_config_set(cfg, "storage", "data", data_dir, &err) < 0) {
        fp_cli_fail(&err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fp_cli_usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) return fp_cmd_help(1, argv);
    if (!strcmp(cmd, "--version")) return cmd_version(1, argv + 1);
    if (fp_cli_help_for(argc - 1, argv + 1) == 0) return 0;
    for (size_t i = 0; i < fp_cli_ncommands; i++)
        if (!strcmp(cmd, fp_cli_commands[i].name))
            return fp_cli_commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "fogport: unknown command '%s'\n\n", cmd);
    fp_cli_usage(stderr);
    return 2;
}
