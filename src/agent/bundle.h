/* OCI runtime bundles: the config.json that runc or crun runs a service
 * from, built from the image's config blob and the service definition.
 * The rules follow Docker's where the two meet (Entrypoint/Cmd override,
 * Env merge, User lookup in the image's own /etc/passwd) and the runtime
 * spec's defaults for the rest (runc's masked and read-only paths). */
#ifndef FP_AGENT_BUNDLE_H
#define FP_AGENT_BUNDLE_H

#include <jansson.h>
#include <stdbool.h>

#include "agent/spec.h"
#include "core/error.h"

/* The PATH a process gets when neither the image nor the service sets one. */
#define FP_BUNDLE_DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* Most processes a container may have when the service names no limit. */
#define FP_BUNDLE_DEFAULT_PIDS 1024
/* CFS period for cpu limits: quota = cpus * period. */
#define FP_BUNDLE_CPU_PERIOD 100000

typedef struct fp_bundle_opts {
    const char *rootfs;      /* absolute path of the (already mounted) root file system */
    const char *cgroup_path; /* e.g. "/fogport/fog-1/web_service"; NULL: the runtime's default */
    const char *hostname;    /* the service name; NULL: svc->name */
    bool host_network;       /* true: no network namespace, the node's network */
    const char *resolv_conf; /* bind-mounted read-only at /etc/resolv.conf if set */
} fp_bundle_opts;

/* Build the runtime spec. image_config is the image's config blob (the
 * object with "config": {Entrypoint, Cmd, Env, WorkingDir, User}); NULL is
 * an image that sets none of them. *out is a new reference. */
int fp_bundle_config(const json_t *image_config, const fp_service *svc, const fp_bundle_opts *o,
                     json_t **out, fp_error *err);

/* Write DIR/config.json atomically (fp_write_file_atomic), mode 0600. */
int fp_bundle_write(const char *dir, const json_t *config, fp_error *err);

/* Resolve a Docker-style user ("uid", "uid:gid", "name", "name:group", ...)
 * against ROOTFS/etc/passwd and ROOTFS/etc/group, opened so that no path
 * or symlink in the image can lead outside the rootfs. A numeric uid needs
 * no passwd entry (its gid is then 0 unless given); a name must have one.
 * *home is the passwd home directory ("/" when unknown); *groups (may be
 * NULL) receives a malloc'd array of the supplementary gids from
 * /etc/group, *ngroups its length. "" is root. */
int fp_bundle_resolve_user(const char *rootfs, const char *user, unsigned *uid, unsigned *gid,
                           unsigned **groups, size_t *ngroups, char *home, size_t homelen,
                           fp_error *err);

#endif
