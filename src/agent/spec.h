/* A service definition: what the cloud tells a fog or edge agent to run.
 * The operator writes it at the cloud (`fogport service create`), the cloud
 * resolves the image to a digest and hands it to every agent the service is
 * placed on, and the agent persists it so it keeps running while the cloud
 * is away. The JSON form (fp_service_to_json / fp_service_from_json) is the
 * wire and disk format; unknown keys are refused so a typo never passes. */
#ifndef FP_AGENT_SPEC_H
#define FP_AGENT_SPEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/name.h" /* fp_service_name_valid */

#define FP_SERVICE_PORTS 8

typedef enum fp_restart {
    FP_RESTART_ALWAYS = 0, /* the default: a service is meant to run */
    FP_RESTART_ON_FAILURE, /* again after a non-zero exit, with backoff */
    FP_RESTART_NEVER,
} fp_restart;

/* A NULL-terminated, heap-owned list of strings (NULL when absent). */
typedef char **fp_strv;

typedef struct fp_service {
    char name[FP_SERVICE_NAME_MAX + 1]; /* [a-z0-9][a-z0-9_-]* */
    char image[512];                    /* as the operator wrote it: repo:tag or repo@digest */
    char digest[80];                    /* the manifest digest the cloud resolved it to */
    char node[64];                      /* placement: one node id, or */
    char role[16];                      /* every node of a role ("fog", "edge") */
    fp_strv entrypoint;                 /* overrides the image's Entrypoint (NULL: keep) */
    fp_strv cmd;                        /* overrides the image's Cmd (NULL: keep) */
    fp_strv env;                        /* K=V, over the image's Env */
    uint16_t ports[FP_SERVICE_PORTS];   /* ports the service listens on (host network) */
    unsigned nports;
    uint64_t memory;      /* bytes; 0: no limit */
    double cpus;          /* CPUs' worth of time (0.5 = half a CPU); 0: no limit */
    uint32_t pids;        /* most processes at once; 0: the agent's default */
    fp_strv capabilities; /* "CAP_NET_BIND_SERVICE", ...; NULL: Docker's default set */
    bool writable;        /* writable root file system (default read-only) */
    fp_strv host_paths;   /* "HOST:CONTAINER[:ro]" bind mounts; NULL: none (the default) */
    char user[64];        /* "uid[:gid]" overriding the image's User ("" keeps it) */
    fp_restart restart;
    unsigned stop_grace_s;          /* SIGTERM, then SIGKILL after this (default 10) */
    bool always_on;                 /* the cloud hands it to another fog when its node dies */
    unsigned replicas;              /* instances over the role's nodes; 0: every node of the role */
    char labels[FP_LABELS_MAX + 1]; /* "k=v,...": only nodes carrying all ("": any) */
    char prefer_label[FP_LABELS_MAX + 1]; /* "k=v": nodes carrying it first */
    char near[64];                        /* a node id: the nodes nearest it first */
    /* Enforced by the agent (agent/enforce.h): above one of these for the
     * whole window, the service is stopped for good ("violated"). 0: none. */
    double max_cpu;      /* share of one CPU */
    uint64_t max_memory; /* bytes; below memory, the hard limit */
    uint32_t max_pids;
    unsigned window_s; /* 0: the default (10 s) */
} fp_service;

/* Most replicas one definition may ask for. */
#define FP_SERVICE_REPLICAS_MAX 64

void fp_service_init(fp_service *s);
void fp_service_free(fp_service *s);

const char *fp_restart_name(fp_restart r);
int fp_restart_parse(const char *s, fp_restart *out);

/* Parse and validate (names, ports, capabilities, env shape). */
int fp_service_from_json(const json_t *j, fp_service *s, fp_error *err);
/* New reference; every field, so the form round-trips. */
json_t *fp_service_to_json(const fp_service *s);

/* Docker's default capability set (NULL-terminated): what a container gets
 * when its definition names none, and the most a definition may ask for. */
extern const char *const fp_default_capabilities[];
bool fp_capability_default(const char *cap);

/* One host path entry "HOST:CONTAINER[:ro]" (absolute, normalized paths:
 * no "..", "." or "//", no ':' or ','): 0, or -1 when it is not one. */
int fp_host_path_parse(const char *spec, char host[512], char ctr[512], bool *ro);

/* fp_strv helpers. */
size_t fp_strv_len(const fp_strv v);
void fp_strv_free(fp_strv v);
/* Append a copy of s; returns -1 on allocation failure. */
int fp_strv_push(fp_strv *v, const char *s);

#endif
