/* fogport serve: open the store, start the registry, run housekeeping, and
 * shut down cleanly on SIGTERM/SIGINT (in-flight requests finish). */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "auth/cloudapi.h"
#include "auth/join.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "control/recallset.h"
#include "core/log.h"
#include "federation/directory.h"
#include "federation/etcd.h"
#include "federation/federation.h"
#include "federation/replication.h"
#include "registry/registry.h"
#include "store/store.h"

const char fp_help_serve[] =
    "usage: fogport serve [--config FILE] [--listen HOST:PORT] [--data DIR]\n"
    "                     [--log-level debug|info|warn|error] [--check]\n\n"
    "Run this node (cloud, fog, edge or a standalone registry, as [node] role says):\n"
    "its registry (OCI Distribution v1.1), and on a fog or edge its federation and\n"
    "agent, until SIGTERM or SIGINT (in-flight requests finish; the agent's services\n"
    "keep running under their shims). Command-line options override the\n"
    "configuration file (man fogport.conf; commented examples of a cloud, a fog and\n"
    "an edge in share/doc/fogport/examples where fogport is installed).\n\n"
    "  --check  parse and validate the configuration without starting: unknown\n"
    "           keys and bad values (FILE:LINE), the listen address, the files it\n"
    "           names, the access policy and replication rules; print what the\n"
    "           node would do. Exit 0 if it would start, 1 (and why) if not.\n\n"
    "examples:\n"
    "  fogport serve --listen 127.0.0.1:5000 --data /tmp/fogport\n"
    "  fogport serve --config /etc/fogport/fogport.conf\n"
    "  fogport serve --config /etc/fogport/fogport.conf --check\n";

/* Keep pulled-through content under [storage] cache_max: the least
 * recently used images go first, never this node's own namespace, never
 * what was pushed here, never an image used in the last EVICT_IDLE_S (it
 * may still be on its way to a client). Cached blobs no image here needs
 * go first, once unneeded for EVICT_ORPHAN_IDLE_S. */
#define EVICT_EVERY_S       2
#define EVICT_IDLE_S        10
#define EVICT_ORPHAN_IDLE_S 600
static void evict_cache(const fp_config *cfg, fp_store *store, fp_agent *agent, time_t now)
{
    /* what the agent runs or is about to run stays: evicted, a service
     * could not start again while no holder is reachable */
    cleanup_free char *pinned = fp_agent_pinned(agent);
    if (agent && !pinned) return; /* before its first pass: what it runs is not known yet */
    char own[80] = "";
    if (cfg->node_id[0]) snprintf(own, sizeof own, "%s/", cfg->node_id);
    struct fp_evict_opts o = {.max_bytes = cfg->cache_max,
                              .protect = own,
                              .now = (int64_t)now,
                              .min_idle_s = EVICT_IDLE_S,
                              .orphan_idle_s = EVICT_ORPHAN_IDLE_S,
                              .max_images = 64,
                              .pinned = pinned};
    struct fp_evict_stats st;
    fp_error err;
    if (fp_store_evict(store, &o, &st, &err) < 0)
        fp_warn("event=evict_failed error=\"%s\"", err.msg);
}

/* A fog or edge: take up the cloud's recall list (NULL: the cloud did not
 * answer) and delete what it recalls from the store. True when a list (the
 * cloud's, or as last kept) is in force: the node is ready as far as
 * recalls go. */
static bool take_recalls(fp_recall_set *recalled, fp_store *store, json_t *records)
{
    fp_error err;
    int changed = records ? fp_recall_set_replace(recalled, records, &err) : 0;
    if (changed < 0) fp_warn("event=recalls_unusable error=\"%s\"", err.msg);
    if (changed <= 0) return records && changed == 0;
    fp_info("event=recalls_updated count=%zu", fp_recall_set_count(recalled));
    if (fp_recall_set_apply(recalled, store, &err) < 0) {
        fp_warn("event=recall_apply_failed error=\"%s\"", err.msg);
        return false;
    }
    return true;
}

/* At start, before the registry serves: the list as last kept, then the
 * cloud's, asked briefly (a node that was away during a recall applies it
 * before it serves anything). */
#define RECALLS_START_TIMEOUT_S 2
static bool recalls_at_start(const fp_config *cfg, fp_recall_set *recalled, fp_store *store)
{
    json_t *saved = fp_node_saved_recalls(cfg);
    bool known = take_recalls(recalled, store, saved);
    json_decref(saved);
    json_t *fresh = NULL;
    fp_error err;
    if (fp_node_fetch_recalls(cfg, RECALLS_START_TIMEOUT_S, &fresh, &err) < 0)
        fp_warn("event=recalls_unavailable error=\"%s\" kept=%zu", err.msg,
                fp_recall_set_count(recalled));
    if (take_recalls(recalled, store, fresh)) known = true;
    json_decref(fresh);
    return known;
}

/* A fog's part of the tick; reg NULL before the registry runs. */
static void sync_fog(const fp_config *cfg, fp_registry *reg)
{
    fp_error err;
    bool signer = false, data = false;
    /* said once at start; while the cloud stays away, only in debug */
    enum fp_log_level level = reg ? FP_LOG_DEBUG : FP_LOG_WARN;
    if (fp_node_sync_signer(cfg, &signer, &err) < 0)
        fp_log(level, "event=signer_unavailable error=\"%s\"", err.msg);
    if (fp_node_sync_authdata(cfg, &data, &err) < 0)
        fp_log(level, "event=authdata_unavailable error=\"%s\"", err.msg);
    if (reg && (signer || data)) fp_registry_node_reload(reg);
}

int fp_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, 'v'},
        {"check", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *listen = NULL, *data = NULL, *level = NULL;
    bool check = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:d:v:kh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'v':
            level = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'h':
            fp_cli_help("serve");
            return 0;
        default:
            return fp_cli_usage_error("serve", "unknown option");
        }
    }
    if (optind < argc) return fp_cli_usage_error("serve", "unexpected argument");
    static fp_config cfg;
    if (fp_cli_load_config(&cfg, config, data) < 0) return 1;
    fp_error err;
    if ((listen && fp_config_set(&cfg, "server", "listen", listen, &err) < 0) ||
        (level && fp_config_set(&cfg, "log", "level", level, &err) < 0))
        return fp_cli_fail(&err);
    fp_log_set_level((enum fp_log_level)fp_log_level_parse(cfg.log_level));
    /* the cloud's CA directory also holds its token key */
    if (!strcmp(cfg.node_role, "cloud") && cfg.node_ca[0] && !cfg.token_key[0])
        snprintf(cfg.token_key, sizeof cfg.token_key, "%s/token.key", cfg.node_ca);
    if (check) return fp_cli_serve_check(&cfg, config);
    if (cfg.log_file[0] && fp_log_set_file(cfg.log_file) < 0) {
        fp_error_set(&err, 0, "cannot open log file %s", cfg.log_file);
        return fp_cli_fail(&err);
    }

    /* An edge serves few clients at once, and each thread's own malloc arena
     * keeps what a pull or an unpacking freed: one arena for all its threads
     * is about 1 MiB less resident with a service running (issue 5's 8 MiB
     * budget; docs/benchmarks.md, "Agent"), for some lock contention. */
    if (!strcmp(cfg.node_role, "edge")) mallopt(M_ARENA_MAX, 1);

    /* Signals are taken synchronously by this thread; the server's threads
     * inherit the blocked mask. A dead client must not kill us. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the hand-over among fogs is the agent's (agent/handover.h) */
    fp_etcd etcd;
    if (fp_cli_serve_etcd(&cfg, &etcd, &err) < 0) return fp_cli_fail(&err);
    /* a fog or edge joins the cloud on its first start */
    if (fp_node_prepare(&cfg, &err) < 0) return fp_cli_fail(&err);
    /* a fog brings its signer certificate and auth data up to date before
     * it serves; without the cloud it serves with what it kept */
    bool fog = !strcmp(cfg.node_role, "fog");
    if (fog) sync_fog(&cfg, NULL);

    bool edge = !strcmp(cfg.node_role, "edge");
    bool follows_cloud = edge || fog;
    fp_recall_set *recalled = NULL;
    if (fp_recall_set_new(&recalled, &err) < 0) return fp_cli_fail(&err);
    fp_store *store;
    struct fp_store_options so = {.upload_expiry_s = cfg.upload_expiry_s, .exclusive = true};
    if (fp_store_open(&store, cfg.data_dir, &so, &err) < 0) {
        fp_recall_set_free(recalled);
        return fp_cli_fail(&err);
    }
    bool recalls_known = !follows_cloud || recalls_at_start(&cfg, recalled, store);
    fp_federation *fed = NULL;
    fp_registry *reg;
    int started = fp_federation_open(&fed, &cfg, store, &err);
    if (started == 0) {
        fp_federation_set_recalled(fed, recalled); /* before anything is fetched */
        started = fp_registry_start(&reg, &cfg, store, recalled, &err);
    }
    if (started < 0) {
        fp_federation_free(fed);
        fp_store_close(store);
        fp_recall_set_free(recalled);
        return fp_cli_fail(&err);
    }
    fp_registry_set_federation(reg, fed);
    static const char no_recalls[] = "the cloud's recall list has not been applied yet";
    fp_registry_set_unready(reg, recalls_known ? NULL : no_recalls);
    fp_replicator *replicator = NULL;
    if (fp_replicator_start(&replicator, &cfg, fed, store, &err) < 0)
        fp_warn("event=replicator_unavailable error=\"%s\"", err.msg);
    fp_registry_set_replicator(reg, replicator);
    fp_agent *agent = NULL;
    if (fp_agent_start(&agent, &cfg, fed, store, &err) < 0) {
        fp_registry_stop(reg); /* first: /metrics reads the replicator */
        fp_replicator_stop(replicator);
        fp_federation_free(fed);
        fp_store_close(store);
        fp_recall_set_free(recalled);
        return fp_cli_fail(&err);
    }
    fp_agent_set_recalled(agent, recalled);
    fp_registry_set_agent(reg, agent);
    fp_info("event=serving node=%s role=%s listen=%s port=%u data=%s tls=%s auth=%s version=%s",
            cfg.node_id[0] ? cfg.node_id : "-", cfg.node_role[0] ? cfg.node_role : "registry",
            cfg.listen, fp_registry_port(reg), cfg.data_dir, cfg.tls_cert[0] ? "on" : "off",
            cfg.token_realm[0] ? "token"
            : cfg.htpasswd[0]  ? "basic"
                               : "none",
            FP_VERSION);

    /* One-second ticks: housekeeping every minute; every
     * revocation_interval an edge fetches the cloud's revocations and a fog
     * its auth data (revocations included) and, when due, a new signer. */
    json_t *saved = edge ? fp_node_saved_revoked(&cfg) : NULL;
    if (saved) { /* until the cloud answers: the list as last known */
        fp_registry_set_revoked(reg, saved);
        json_decref(saved);
    }
    time_t next_maintenance = time(NULL) + 60, next_revocations = 0, next_heartbeat = 0;
    time_t next_evict = 0, next_recalls = time(NULL) + 1;
    /* report at once: the directory is how other nodes find this one */
    char cloud_recalls[FP_DIGEST_MAX];
    if (follows_cloud &&
        fp_directory_heartbeat(&cfg, fp_agent_status(agent), cloud_recalls, &err) == 0)
        next_heartbeat = time(NULL) + (cfg.fed_heartbeat_s ? cfg.fed_heartbeat_s : 5);
    int sig = 0;
    for (;;) {
        struct timespec tick = {.tv_sec = 1};
        sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) break;
        time_t now = time(NULL);
        if (now >= next_maintenance) {
            fp_store_maintain(store);
            next_maintenance = now + 60;
        }
        /* someone the fog does not know yet tried to log in: ask now */
        if (fog && fp_registry_take_auth_sync(reg)) next_revocations = now;
        if (fog && now >= next_revocations) {
            sync_fog(&cfg, reg);
            next_revocations =
                now + (cfg.node_revocation_interval_s ? cfg.node_revocation_interval_s : 10);
        }
        if (edge && now >= next_revocations) {
            json_t *ids = NULL;
            if (fp_node_fetch_revoked(&cfg, &ids, &err) == 0) {
                fp_registry_set_revoked(reg, ids);
                json_decref(ids);
            } else {
                fp_debug("event=revocations_unavailable error=\"%s\"", err.msg);
            }
            next_revocations =
                now + (cfg.node_revocation_interval_s ? cfg.node_revocation_interval_s : 10);
        }
        /* recalls on the revocations' beat: both take a node's trust away */
        if (follows_cloud && now >= next_recalls) {
            json_t *records = NULL;
            if (fp_node_fetch_recalls(&cfg, 5, &records, &err) < 0)
                fp_debug("event=recalls_unavailable error=\"%s\"", err.msg);
            if (take_recalls(recalled, store, records) && !recalls_known) {
                recalls_known = true;
                fp_registry_set_unready(reg, NULL);
            }
            json_decref(records);
            next_recalls =
                now + (cfg.node_revocation_interval_s ? cfg.node_revocation_interval_s : 10);
        }
        if (follows_cloud && now >= next_heartbeat) {
            if (fp_directory_heartbeat(&cfg, fp_agent_status(agent), cloud_recalls, &err) < 0)
                fp_debug("event=heartbeat_failed error=\"%s\"", err.msg);
            next_heartbeat = now + (cfg.fed_heartbeat_s ? cfg.fed_heartbeat_s : 1);
            /* a recall reaches this node within a heartbeat, not an interval */
            char mine[FP_DIGEST_MAX];
            fp_recall_set_version(recalled, mine);
            if (cloud_recalls[0] && strcmp(cloud_recalls, mine) != 0) next_recalls = now + 1;
        }
        if (fed && cfg.cache_max && now >= next_evict) {
            evict_cache(&cfg, store, agent, now);
            next_evict = now + EVICT_EVERY_S;
        }
        fp_federation_tick(fed, now);
        fp_registry_tick(reg, now);
    }
    fp_info("event=stopping signal=%d", sig);
    /* the server first (its requests read the agent and the replicator),
     * then the agent: its services keep running under their shims */
    fp_registry_stop(reg);
    fp_replicator_stop(replicator);
    fp_agent_stop(agent);
    fp_federation_free(fed);
    fp_store_close(store);
    fp_recall_set_free(recalled);
    fp_info("event=stopped");
    return 0;
}
