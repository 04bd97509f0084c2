/* fogport serve --check: what `serve` would refuse, found without starting
 * the node (no listening, no joining, nothing written), and what it would
 * do. A packager's postinst, an operator before a restart, the tests of the
 * example configurations (examples/) use it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth/access.h"
#include "auth/htpasswd.h"
#include "auth/nodes.h"
#include "cli/cli.h"
#include "federation/etcd.h"
#include "federation/replication.h"
#include "registry/registry.h"

/* Each file the configuration names: readable? */
static int check_files(const fp_config *cfg, fp_error *err)
{
    const struct {
        const char *key;
        const char *path;
    } files[] = {
        {"[tls] cert", cfg->tls_cert},
        {"[tls] key", cfg->tls_key},
        {"[tls] client_ca", cfg->tls_client_ca},
        {"[auth] htpasswd", cfg->htpasswd},
        {"[auth] policy", cfg->policy},
        {"[auth] token_keys", cfg->token_keys},
        {"[auth] token_key", cfg->token_key},
        {"[node] cacert", cfg->node_cacert},
        {"[federation] replication", cfg->fed_replication},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i].path[0] && access(files[i].path, R_OK) < 0)
            return fp_error_set(err, errno, "%s %s", files[i].key, files[i].path);
    if (cfg->node_ca[0]) {
        const char *need[] = {"ca.crt", "ca.key", "token.key"};
        for (size_t i = 0; i < 3; i++) {
            char p[FP_PATH_MAX + 16];
            snprintf(p, sizeof p, "%s/%s", cfg->node_ca, need[i]);
            if (access(p, R_OK) < 0)
                return fp_error_set(err, errno, "[node] ca %s (fogport ca init --dir %s)", p,
                                    cfg->node_ca);
        }
    }
    return 0;
}

/* Parse what serve parses at start: the access policy, the htpasswd file,
 * the cloud's replication rules. */
static int check_contents(const fp_config *cfg, fp_error *err)
{
    if (cfg->policy[0]) {
        fp_policy *p = NULL;
        if (fp_policy_load(cfg->policy, &p, err) < 0) return -1;
        fp_policy_unref(p);
    }
    if (cfg->htpasswd[0]) {
        fp_auth *a = NULL;
        if (fp_auth_open(&a, cfg->htpasswd, err) < 0) return -1;
        fp_auth_free(a);
    }
    if (!strcmp(cfg->node_role, "cloud") && cfg->fed_replication[0]) {
        fp_replication *r = NULL;
        if (fp_replication_open(&r, cfg->fed_replication, err) < 0) return -1;
        fp_replication_free(r);
    }
    return 0;
}

int fp_cli_serve_etcd(const fp_config *cfg, fp_etcd *etcd, fp_error *err)
{
    memset(etcd, 0, sizeof *etcd);
    if (!cfg->control_etcd[0]) return 0;
    if (strcmp(cfg->node_role, "fog") != 0 || !cfg->agent_enabled)
        return fp_error_set(err, 0, "[control] etcd: for fogs that run services ([agent] enabled)");
    return fp_etcd_init(etcd, cfg->control_etcd, err);
}

static int check_role(const fp_config *cfg, bool *joined, fp_error *err)
{
    fp_etcd etcd;
    if (fp_cli_serve_etcd(cfg, &etcd, err) < 0) return -1;
    bool fog_or_edge = !strcmp(cfg->node_role, "fog") || !strcmp(cfg->node_role, "edge");
    if (cfg->agent_enabled && !fog_or_edge)
        return fp_error_set(err, 0, "[agent] enabled: the agent runs on fog and edge nodes only");
    if (cfg->tls_require_client_cert && !cfg->tls_client_ca[0])
        return fp_error_set(err, 0, "[tls] require_client_cert needs client_ca");
    if (!fog_or_edge) return 0;
    if (!fp_node_id_valid(cfg->node_id))
        return fp_error_set(err, 0, "[node] id must be set ([a-z0-9-], at most 63)");
    if (!cfg->node_cloud[0]) return fp_error_set(err, 0, "[node] cloud must be the cloud's URL");
    char cred[FP_PATH_MAX + 32];
    snprintf(cred, sizeof cred, "%s/node/credential.json", cfg->data_dir);
    *joined = access(cred, F_OK) == 0;
    if (!*joined && !cfg->node_join_token[0])
        return fp_error_set(err, 0,
                            "[node] join_token: not joined yet (no %s), so the first start "
                            "needs a join token (fogport node token create, on the cloud)",
                            cred);
    return 0;
}

int fp_cli_serve_check(const fp_config *cfg, const char *path)
{
    const char *name = path ? path : "(no configuration file)";
    fp_error err;
    bool joined = false;
    if (fp_registry_check(cfg, &err) < 0 || check_role(cfg, &joined, &err) < 0 ||
        check_files(cfg, &err) < 0 || check_contents(cfg, &err) < 0) {
        fprintf(stderr, "fogport: %s: %s\n", name, err.msg);
        return 1;
    }
    const char *role = cfg->node_role[0] ? cfg->node_role : "standalone registry";
    printf("%s: configuration OK\n", name);
    printf("node:        %s (%s)\n", cfg->node_id[0] ? cfg->node_id : "-", role);
    if (cfg->node_cloud[0])
        printf("cloud:       %s (%s)\n", cfg->node_cloud,
               joined ? "joined" : "joins with [node] join_token at first start");
    if (cfg->node_ca[0]) printf("ca:          %s (signs node certificates)\n", cfg->node_ca);
    printf("listen:      %s (%s%s)\n", cfg->listen, cfg->tls_cert[0] ? "HTTPS" : "HTTP",
           cfg->tls_require_client_cert ? ", client certificates required" : "");
    printf("data:        %s%s\n", cfg->data_dir,
           access(cfg->data_dir, F_OK) == 0 ? "" : " (created at start)");
    printf("auth:        %s\n", cfg->token_realm[0] ? "bearer tokens"
                                : cfg->token_key[0] ? "issues bearer tokens (/auth/token)"
                                : cfg->htpasswd[0]  ? "basic (htpasswd)"
                                : strcmp(cfg->node_role, "cloud") && cfg->node_role[0]
                                    ? "the cloud's tokens (after joining)"
                                    : "none: anyone may pull and push");
    if (cfg->node_role[0] && strcmp(cfg->node_role, "cloud"))
        printf("federation:  %s\n",
               cfg->fed_enabled ? "pulls through from peers and parent" : "off");
    if (cfg->agent_enabled)
        printf("agent:       runs the cloud's services (%s)%s\n",
               cfg->agent_runtime[0] ? cfg->agent_runtime : "runtime chosen at start",
               geteuid() == 0 ? "" : "; needs root: this check did not run as root");
    printf("log:         %s to %s\n", cfg->log_level, cfg->log_file[0] ? cfg->log_file : "stderr");
    return 0;
}
