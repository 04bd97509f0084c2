/* The OCI runtime (runc or crun), driven as a command: each call spawns the
 * binary directly (no shell) with a per-node state root (--root), so two
 * nodes on one machine never see each other's containers. A failed call's
 * error carries the runtime's own message from its stderr. */
#ifndef FP_AGENT_RUNTIME_H
#define FP_AGENT_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/error.h"

typedef struct fp_runtime {
    char bin[256];   /* absolute path of runc or crun */
    char root[1024]; /* the runtime's state root (--root), absolute */
    bool cgroup2;    /* /sys/fs/cgroup is the unified (v2) hierarchy */
} fp_runtime;

/* Pick the runtime: preferred is "runc", "crun", an absolute path to
 * either, or "" / NULL for automatic (crun when /sys/fs/cgroup is cgroup v2
 * and crun is installed, else runc, else crun). Creates state_root (0700).
 * Fails when none is installed. */
int fp_runtime_init(fp_runtime *rt, const char *preferred, const char *state_root, fp_error *err);

/* A container id: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters. */
bool fp_runtime_id_valid(const char *id);

typedef struct fp_container_state {
    char status[16]; /* creating, created, running, stopped; "" unknown */
    pid_t pid;       /* the container's init on the host; 0 when stopped */
} fp_container_state;

/* Returns 1 when there is no such container (st is then zeroed). */
int fp_runtime_state(const fp_runtime *rt, const char *id, fp_container_state *st, fp_error *err);
/* Signal the container's init. Returns 1 when there is no such container. */
int fp_runtime_kill(const fp_runtime *rt, const char *id, int sig, fp_error *err);
/* Remove the container's state (force: kill it first if it runs). Returns
 * 1 when there is no such container. */
int fp_runtime_delete(const fp_runtime *rt, const char *id, bool force, fp_error *err);

/* Every container under the state root (runc list --format json). A
 * non-zero return from cb stops the walk and is returned. */
typedef int (*fp_runtime_list_cb)(void *ctx, const char *id, const fp_container_state *st);
int fp_runtime_list(const fp_runtime *rt, fp_runtime_list_cb cb, void *ctx, fp_error *err);

/* Graceful stop: SIGTERM, wait up to grace_s for the container to stop,
 * then SIGKILL to every process in it (kill --all) and wait a little more.
 * A container that is already stopped or gone is success. The container
 * is left for its shim (or the caller) to delete. */
int fp_runtime_stop(const fp_runtime *rt, const char *id, unsigned grace_s, fp_error *err);

/* `create` with the container's stdout and stderr on stdio_fd (stdin is
 * /dev/null): the container's init inherits them. The runtime logs to
 * log_file in JSON, and a failure's message comes from there (its stderr
 * is the container's). The init's host pid is written to pid_file. */
int fp_runtime_create(const fp_runtime *rt, const char *id, const char *bundle,
                      const char *pid_file, const char *log_file, int stdio_fd, fp_error *err);
/* `start`: run the created container's process. */
int fp_runtime_start(const fp_runtime *rt, const char *id, fp_error *err);

#endif
