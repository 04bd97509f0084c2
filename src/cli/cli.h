/* The fogport command line: one file per subcommand, each a thin layer over
 * the library. Every command returns the process exit status. */
#ifndef FP_CLI_CLI_H
#define FP_CLI_CLI_H

#include <jansson.h>
#include <stdbool.h>

#include "core/config.h"
#include "core/error.h"
#include "cli/help.h"

int fp_cmd_serve(int argc, char **argv);
int fp_cmd_ls(int argc, char **argv);
int fp_cmd_gc(int argc, char **argv);
int fp_cmd_fsck(int argc, char **argv);
int fp_cmd_user(int argc, char **argv);
int fp_cmd_key(int argc, char **argv);
int fp_cmd_ca(int argc, char **argv);
int fp_cmd_cert(int argc, char **argv);
int fp_cmd_node(int argc, char **argv);
int fp_cmd_sandbox(int argc, char **argv);
int fp_cmd_login(int argc, char **argv);
int fp_cmd_nodes(int argc, char **argv);
int fp_cmd_replication(int argc, char **argv);
int fp_cmd_shim(int argc, char **argv);
int fp_cmd_unpack_layer(int argc, char **argv);
int fp_cmd_service(int argc, char **argv);
int fp_cmd_ps(int argc, char **argv);
int fp_cmd_logs(int argc, char **argv);
int fp_cmd_top(int argc, char **argv);
int fp_cmd_events(int argc, char **argv);
/* bytes as 12K, 3.4M, 1.2G (ps.c) */
void fp_cli_human_bytes(char *out, size_t n, long long bytes);
/* An instance's usage as table cells (ps.c): CPU in percent with decimals
 * and unit after it, memory as current/limit, processes; u NULL leaves
 * them. */
void fp_cli_usage_cells(const json_t *u, int decimals, const char *unit, char cpu[16], char mem[32],
                        char pids[16]);
int fp_cmd_audit(int argc, char **argv);
int fp_cmd_recall(int argc, char **argv);
int fp_cmd_unrecall(int argc, char **argv);
int fp_cmd_violations(int argc, char **argv);

/* The cloud's node directory (GET /api/v1/nodes) with the client context's
 * credential: a JSON array (caller decrefs). */
int fp_cli_fetch_nodes(json_t **nodes, fp_error *err);

/* Record in the audit log of the cloud whose data directory cfg names
 * (takes details, an object or NULL). Warns when it cannot: the action
 * stands (cli/audit.c). */
void fp_cli_audit(const fp_config *cfg, const char *kind, const char *subject, json_t *details);

/* Shared option handling for commands that act on a node's data directory:
 * --config FILE and/or --data DIR (the latter wins). Returns 0, or prints
 * the error and returns -1. */
int fp_cli_load_config(fp_config *cfg, const char *config_path, const char *data_dir);
/* fogport serve --check: validate cfg (read from path, NULL: none) without
 * starting the node and print what it would do; the exit status. */
int fp_cli_serve_check(const fp_config *cfg, const char *path);
/* [control] etcd, for a fog that runs services: its endpoints into *etcd
 * (none: e->n 0). Shared by serve and serve --check (serve_check.c). */
struct fp_etcd;
int fp_cli_serve_etcd(const fp_config *cfg, struct fp_etcd *etcd, fp_error *err);
/* Print "fogport: <msg>" to stderr; returns exit status 1. */
int fp_cli_fail(const fp_error *err);
/* Print "fogport CMD: <msg>", the command's usage lines and where its help
 * is, to stderr; returns exit status 2 (cli/help.c). */
int fp_cli_usage_error(const char *cmd, const char *msg);
/* The options of a listing command, --json and --help: -1 to go on with
 * *as_json set, else the exit status (help printed, or a usage error). */
int fp_cli_json_opts(int argc, char **argv, const char *cmd, bool *as_json);
/* Print j indented (an empty list when there is none). */
void fp_cli_print_json(const json_t *j);

/* Each command's help text, next to the command (format: cli/help.h). */
extern const char fp_help_serve[], fp_help_ls[], fp_help_gc[], fp_help_fsck[], fp_help_user[],
    fp_help_key[], fp_help_ca[], fp_help_cert[], fp_help_node[], fp_help_nodes[],
    fp_help_replication[], fp_help_service[], fp_help_ps[], fp_help_logs[], fp_help_top[],
    fp_help_events[], fp_help_recall[], fp_help_violations[], fp_help_audit[], fp_help_sandbox[],
    fp_help_login[];

#define FP_VERSION "0.1.0"

#endif
