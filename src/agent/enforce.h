/* Policy enforcement at the agent: what a service may use, and the
 * judgement of whether it overstepped. Pure functions (no I/O, no clock),
 * so the rules are unit-tested apart from the agent that applies them.
 *
 * Resources: a definition may set max_cpu (share of one CPU), max_memory
 * (bytes) and max_pids, each to be held over window_s seconds. The agent
 * keeps the last samples it took from the instance's cgroup (one a
 * second) and asks fp_enforce_evaluate after each: a limit is violated
 * when every sample of an unbroken run reaching the newest one is above
 * it and the run covers the whole window. A spike shorter than the window
 * is tolerated; a gap in the samples longer than FP_ENFORCE_GAP_MS is no
 * evidence either way and starts the run afresh.
 *
 * Privileges: the node policy the cloud ships with the desired state says
 * which capabilities and ports a service may ask for on the node;
 * fp_enforce_privileges judges a definition (as raw JSON, so a stale or
 * tampered one that the parser would refuse is still judged and
 * reported) against it. */
#ifndef FP_AGENT_ENFORCE_H
#define FP_AGENT_ENFORCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

/* Longest window a definition may ask for, and the samples kept for it. */
#define FP_ENFORCE_WINDOW_MAX     120
#define FP_ENFORCE_WINDOW_DEFAULT 10
#define FP_ENFORCE_SAMPLES        (FP_ENFORCE_WINDOW_MAX + 8)
/* Two samples further apart than this are not one run: the agent missed
 * more than one of its 1 s samples and cannot vouch for the time between. */
#define FP_ENFORCE_GAP_MS 2500
/* Sampling jitter: a run this much short of the window still covers it. */
#define FP_ENFORCE_SLACK_MS 200

typedef struct fp_enforce_policy {
    double max_cpu;      /* 0: none */
    uint64_t max_memory; /* 0: none */
    uint32_t max_pids;   /* 0: none */
    unsigned window_s;   /* 0: FP_ENFORCE_WINDOW_DEFAULT */
} fp_enforce_policy;

bool fp_enforce_policy_set(const fp_enforce_policy *p);

typedef struct fp_enforce_sample {
    int64_t t_ms; /* monotonic time it was taken */
    int64_t wall; /* wall-clock seconds then: for the evidence */
    bool has_cpu; /* cpu holds a share (not the first sample of a run) */
    double cpu;   /* share of one CPU since the sample before */
    uint64_t memory, pids;
} fp_enforce_sample;

/* The last samples, oldest first; the oldest fall off when it is full. */
typedef struct fp_enforce_window {
    fp_enforce_sample s[FP_ENFORCE_SAMPLES];
    size_t n;
} fp_enforce_window;

void fp_enforce_push(fp_enforce_window *w, const fp_enforce_sample *s);

typedef enum fp_violation_kind {
    FP_VIOLATION_NONE = 0,
    FP_VIOLATION_CPU,
    FP_VIOLATION_MEMORY,
    FP_VIOLATION_PIDS,
    FP_VIOLATION_PRIVILEGE,
} fp_violation_kind;

const char *fp_violation_kind_name(fp_violation_kind k);

typedef struct fp_enforce_verdict {
    fp_violation_kind kind; /* NONE: within the policy */
    double limit;
    size_t first, count; /* the run of samples that proves it: s[first .. first+count) */
} fp_enforce_verdict;

/* Judge samples s[0..n) (oldest first) at monotonic time now_ms against p.
 * Limits are checked in the order cpu, memory, pids; the first violated
 * one is the verdict. A newest sample older than FP_ENFORCE_GAP_MS proves
 * nothing (the instance may have stopped). */
void fp_enforce_evaluate(const fp_enforce_sample *s, size_t n, const fp_enforce_policy *p,
                         int64_t now_ms, fp_enforce_verdict *v);

/* The violation record of a resource verdict: {kind, limit, window_s,
 * time (of the newest sample), samples: [{t, cpu, memory, pids}, ...],
 * message}; new reference. */
json_t *fp_enforce_evidence(const fp_enforce_sample *s, const fp_enforce_verdict *v,
                            const fp_enforce_policy *p);

/* The node policy as shipped to agents: {"capabilities": [...] or null
 * (Docker's default set), "ports": [[lo, hi], ...] or null (any),
 * "host_paths": [prefix, ...]}, from the cloud's [control]
 * allowed_capabilities and allowed_ports ("" keeps the default; "none"
 * allows nothing; ports as "80, 443, 8000-8999") and allowed_host_paths
 * (absolute directories a definition may bind-mount from, themselves or
 * below; "" or "none": no host path at all). Capabilities outside Docker's
 * default set are refused: the policy only narrows. */
int fp_node_policy_build(const char *capabilities, const char *ports, const char *host_paths,
                         json_t **out, fp_error *err);

/* Does the definition def (raw JSON) ask for more than policy (NULL: the
 * default) allows? 1 and why (a sentence naming the capability, port or
 * host path)
 * when it does, 0 when not. */
int fp_enforce_privileges(const json_t *def, const json_t *policy, char *why, size_t whylen);

/* Do the host paths (HOST:CONTAINER[:ro]), resolved on this node with
 * their symlinks followed, stay inside the policy's directories? 1 and
 * why when one leads out or is not there, 0 when not. The agent asks before it writes a
 * bundle: fp_enforce_privileges judges the path as written. */
int fp_enforce_host_paths_here(char *const *host_paths, const json_t *policy, char *why,
                               size_t whylen);

#endif
