/* fogport: one binary for every node (cloud, fog, edge) and its CLI. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"

static const struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"serve", fp_cmd_serve, "run this node's registry"},
    {"ls", fp_cmd_ls, "list a registry's services and their tags"},
    {"gc", fp_cmd_gc, "remove unreferenced blobs and untagged manifests (online)"},
    {"fsck", fp_cmd_fsck, "verify every stored blob and manifest against its digest"},
    {"user", fp_cmd_user, "add, change, remove and list the users who may log in"},
    {"key", fp_cmd_key, "generate a token-signing key pair"},
    {"ca", fp_cmd_ca, "create the deployment's CA and token signing key"},
    {"cert", fp_cmd_cert, "issue a node certificate from the deployment CA"},
    {"node", fp_cmd_node, "join tokens, list and revoke nodes (on the cloud)"},
    {"nodes", fp_cmd_nodes, "list the deployment's nodes from the cloud's directory"},
    {"replication", fp_cmd_replication, "show which nodes hold (or fetch) which services"},
    {"service", fp_cmd_service, "create, delete and list the services agents run (on the cloud)"},
    {"ps", fp_cmd_ps, "list every service instance on every node, with its usage"},
    {"logs", fp_cmd_logs, "print a service's log from the node that runs it"},
    {"top", fp_cmd_top, "every service instance on every node with its usage, live"},
    {"events", fp_cmd_events, "instances' state changes the cloud saw (--follow: as they come)"},
    {"recall", fp_cmd_recall, "revoke an image everywhere: registries refuse it, agents stop it"},
    {"unrecall", fp_cmd_unrecall, "end a recall (the image may be pulled and run again)"},
    {"violations", fp_cmd_violations, "list the policy violations agents and the cloud recorded"},
    {"audit", fp_cmd_audit, "list the cloud's audit trail, or verify a copy of it offline"},
    {"sandbox", fp_cmd_sandbox, "start or stop a whole deployment on this machine"},
    {"login", fp_cmd_login, "log in to a cloud and save it as the client context"},
    {"shim", fp_cmd_shim, NULL}, /* internal: the agent's per-container supervisor */
};

static void usage(FILE *f)
{
    fprintf(f, "usage: fogport COMMAND [OPTIONS]\n\n"
               "fogport runs private OCI/Docker registries on cloud, fog and edge nodes.\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (commands[i].summary) fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-8s %s\n", "version", "print the version");
    fprintf(f, "\nRun 'fogport COMMAND --help' for a command's options.\n");
}

int fp_cli_fail(const fp_error *err)
{
    fprintf(stderr, "fogport: %s\n", err->msg);
    return 1;
}

int fp_cli_usage_error(const char *cmd, const char *msg)
{
    fprintf(stderr, "fogport %s: %s (see 'fogport %s --help')\n", cmd, msg, cmd);
    return 2;
}

int fp_cli_json_opts(int argc, char **argv, const char *cmd, void (*help)(void), bool *as_json)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c;
    *as_json = false;
    while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (c == 'j') {
            *as_json = true;
        } else if (c == 'h') {
            help();
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
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("fogport %s\n", FP_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "fogport: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
