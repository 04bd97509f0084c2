/* The node's configuration file: INI sections with "key = value" lines,
 * '#' or ';' comments. Unknown sections or keys are errors, so a typo never
 * passes silently. Sizes take K/M/G (or KiB/MiB/GiB) suffixes, durations
 * s/m/h/d. docs/configuration.md documents every key. */
#ifndef FP_CORE_CONFIG_H
#define FP_CORE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"

#define FP_PATH_MAX 1024

typedef struct fp_config {
    /* [node] */
    char node_id[64];                    /* this node's id ("cloud", "fog-1", ...) */
    char node_role[16];                  /* cloud, fog, edge; "" for a standalone registry */
    char node_cloud[512];                /* fog/edge: the cloud's URL */
    char node_join_token[128];           /* fog/edge: one-time token to join the cloud */
    char node_ca[FP_PATH_MAX];           /* cloud: CA directory (signs node certificates) */
    char node_cacert[FP_PATH_MAX];       /* fog/edge: CA certificate to verify the cloud */
    unsigned node_revocation_interval_s; /* fog/edge: how often to fetch revoked nodes */
    char node_url[512];                  /* the URL other nodes reach this registry at */
    char node_parent[512];               /* fog: the cloud (default), edge: its fog's URL */
    uint64_t node_capacity;              /* storage this node offers, bytes (0: unknown) */
    /* [federation] */
    bool fed_enabled;                  /* fog/edge: fetch what is missing from peers and parent */
    char fed_peers[2048];              /* "id=URL, id=URL": peers; empty: the cloud's fogs */
    bool fed_peer_order_config;        /* peers in configured order instead of by round-trip time */
    unsigned fed_tag_ttl_s;            /* re-validate a cached tag against its source after this */
    unsigned fed_peer_timeout_s;       /* connect/first-byte timeout before the next holder */
    unsigned fed_hedge_after_ms;       /* silence before the next holder is asked too (0: never) */
    unsigned fed_heartbeat_s;          /* how often a node reports to the cloud's directory */
    char fed_replication[FP_PATH_MAX]; /* cloud: replication rules file */
    /* [agent] */
    bool agent_enabled;             /* fog/edge: run the services the cloud places here */
    char agent_runtime[16];         /* runc, crun, or "" (crun on unified cgroup v2, else runc) */
    uint64_t agent_max_layer_bytes; /* most bytes one layer may unpack to */
    uint64_t agent_log_max;         /* a service's log file rotates at this size */
    unsigned agent_sync_s;          /* how often the agent asks the cloud for its services */
    /* [control] (cloud) */
    unsigned control_suspect_s; /* a node silent this long is suspect */
    unsigned control_dead_s;    /* ...and dead after this: its always-on services move */
    /* [control] fog: hand-over among the fogs while the cloud is away (agent/handover.h) */
    char control_etcd[1024];  /* etcd endpoints, comma list ("": off) */
    unsigned control_lease_s; /* TTL of the fog's etcd lease */
    /* [control] cloud: the node policy shipped to agents (agent/enforce.h) */
    char control_allowed_caps[1024]; /* capabilities a service may ask for ("": Docker's set) */
    char control_allowed_ports[512]; /* ports a service may listen on ("": any) */
    /* [server] */
    char listen[256];   /* host:port, [v6]:port */
    unsigned threads;   /* 0: one per CPU */
    unsigned timeout_s; /* idle/stalled connection timeout */
    unsigned max_connections;
    unsigned max_connections_per_ip;
    /* [storage] */
    char data_dir[FP_PATH_MAX];
    bool delete_enabled;
    unsigned gc_grace_s;      /* blobs/manifests younger than this are never collected */
    unsigned upload_expiry_s; /* idle upload sessions are purged after this */
    uint64_t cache_max;       /* pulled-through content kept before LRU eviction (0: unbounded) */
    /* [tls] */
    char tls_cert[FP_PATH_MAX];
    char tls_key[FP_PATH_MAX];
    char tls_client_ca[FP_PATH_MAX]; /* request client certificates chaining to this CA */
    bool tls_require_client_cert;    /* and refuse requests without a valid one */
    /* [auth] */
    char htpasswd[FP_PATH_MAX];
    char realm[128];
    char policy[FP_PATH_MAX];     /* access policy file; none: authenticated may do all */
    char token_realm[512];        /* set: require Bearer tokens from this token service */
    char token_service[128];      /* this registry's name: the audience its tokens carry */
    char token_issuer[128];       /* the issuer tokens must come from */
    char token_keys[FP_PATH_MAX]; /* PEM public keys tokens may be signed with */
    char token_key[FP_PATH_MAX];  /* PEM private key: this node issues tokens (/auth/token) */
    char token_audiences[1024];   /* services the issuer signs for (comma list; default: own) */
    char token_signers[1024];     /* nodes whose x5c (signer certificate) tokens are trusted */
    unsigned token_ttl_s;
    unsigned login_failures; /* failed logins per address per minute before 429 */
    /* [limits] */
    uint64_t max_manifest_bytes;
    uint64_t max_blob_bytes; /* 0: unlimited */
    unsigned max_page;       /* largest n for tags/catalog pages */
    /* [log] */
    char log_level[16];
    char log_file[FP_PATH_MAX];
    bool access_log;
    bool metrics_public; /* [metrics] access = public: /metrics without credentials */
} fp_config;

void fp_config_defaults(fp_config *cfg);
/* Read a config file over the current values. */
int fp_config_load(fp_config *cfg, const char *path, fp_error *err);
/* Set one "section.key" from a string (what the file does for each line). */
int fp_config_set(fp_config *cfg, const char *section, const char *key, const char *value,
                  fp_error *err);

/* Is item one of the entries of a comma- or space-separated list value? */
bool fp_config_list_has(const char *list, const char *item);

int fp_parse_size(const char *s, uint64_t *out);
int fp_parse_duration(const char *s, unsigned *seconds);
/* The same in milliseconds, which also accepts an "ms" suffix. */
int fp_parse_duration_ms(const char *s, unsigned *ms);
int fp_parse_bool(const char *s, bool *out);

#endif
