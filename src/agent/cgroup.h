/* A container's resource usage, read from its cgroup: CPU time, memory now,
 * at its peak and its limit, processes and their limit, OOM kills. The agent
 * samples it to report what a service costs on a node.
 *
 * Both layouts: cgroup v1 (one hierarchy per controller or per group of
 * controllers, e.g. "cpu,cpuacct"; Debian 12 in hybrid mode) and cgroup v2
 * (one unified hierarchy). Directories are found the way the kernel names
 * them: the process's path in /proc/PID/cgroup, mapped through our own
 * mountinfo (mount point + the path below the mount's root), so nested
 * hierarchies and cgroup namespaces resolve to the right place. See
 * docs/agent-usage.md for which file each field comes from. */
#ifndef FP_AGENT_CGROUP_H
#define FP_AGENT_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/error.h"

/* Resolved directories ("" when that controller is not mounted here). On v2
 * all three are the same directory. v1: cpu is the cpuacct controller's
 * directory (whether mounted alone or with cpu as "cpu,cpuacct"). */
typedef struct fp_cgroup {
    bool v2;
    char memory[1024], cpu[1024], pids[1024];
} fp_cgroup;

/* Resolve the cgroup directories of process pid: parse PROC/PID/cgroup and
 * map each controller's path through PROC/self/mountinfo (PROC is proc_root,
 * "/proc" normally; tests point it at a fake tree). v1 is used when any of
 * memory, cpuacct or pids is on a v1 hierarchy, else the unified hierarchy.
 * ENOENT when the process is gone or none of its hierarchies is reachable
 * from our mount namespace. */
int fp_cgroup_of_pid(const char *proc_root, pid_t pid, fp_cgroup *cg, fp_error *err);

typedef struct fp_usage {
    uint64_t cpu_ns;     /* cumulative CPU time */
    uint64_t mem_bytes;  /* current */
    uint64_t mem_peak;   /* peak; see fp_cgroup_usage */
    uint64_t mem_limit;  /* 0: none */
    uint64_t pids;       /* current */
    uint64_t pids_limit; /* 0: none */
    uint64_t oom_kills;  /* v1 memory.oom_control oom_kill, v2 memory.events oom_kill */
} fp_usage;

/* Read the usage of cg into u. A controller that is not mounted, or a file
 * the kernel does not have (memory.peak before Linux 5.19, oom_kill in
 * memory.oom_control before 4.13), leaves its fields 0; a cgroup directory
 * that is gone (the container exited) is an error with errnum ENOENT.
 *
 * mem_peak is the kernel's peak when it keeps one (v1 max_usage_in_bytes,
 * v2 memory.peak); otherwise the highest of u->mem_peak on entry and the
 * current usage. So pass the previous sample of the same cgroup back in (or a
 * zeroed fp_usage the first time) and the peak is the most this reader has
 * seen. Every other field is overwritten. */
int fp_cgroup_usage(const fp_cgroup *cg, fp_usage *u, fp_error *err);

/* CPU share between two samples `seconds` apart, as a fraction of one CPU
 * (1.0 = one full CPU, 2.0 = two). 0 when seconds is not positive or the
 * counter went backwards (the container was recreated in between). */
double fp_usage_cpu_fraction(const fp_usage *prev, const fp_usage *now, double seconds);

#endif
