#include "agent/agent.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/bundle.h"
#include "agent/cgroup.h"
#include "agent/enforce.h"
#include "agent/image.h"
#include "agent/handover.h"
#include "agent/layers.h"
#include "agent/rootfs.h"
#include "agent/runtime.h"
#include "agent/shim.h"
#include "agent/spec.h"
#include "auth/cloudapi.h"
#include "control/recallset.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/digest.h"
#include "core/fs.h"
#include "core/http_client.h"
#include "core/log.h"
#include "core/manifest.h"
#include "core/name.h"
#include "federation/directory.h"

#define MAX_INSTANCES    256
#define BACKOFF_MAX_S    60
#define STABLE_RUN_S     10 /* a run this long resets the restart backoff */
#define IMAGE_CONFIG_MAX (1 << 20)

/* ST_VIOLATED: stopped for overstepping its policy (agent/enforce.h); it
 * stays stopped, whatever its restart policy, until a new definition. */
enum state { ST_PULLING, ST_STARTING, ST_RUNNING, ST_EXITED, ST_BACKOFF, ST_FAILED, ST_VIOLATED };
static const char *const state_names[] = {"pulling", "starting", "running", "exited",
                                          "backoff", "failed",   "violated"};

struct instance {
    fp_service svc;
    char gen[FP_DIGEST_MAX]; /* digest of the definition it runs */
    enum state state;
    char error[512];
    pid_t pid;
    time_t started, next_start;
    unsigned restarts, backoff_s;
    uint64_t oom_kills;
    int exit_code, exit_signal;
    bool deployed;  /* root file system and bundle in place */
    fp_strv layers; /* digests of the cached layers its root is made of */
    bool wanted;    /* in the desired state of this pass */
    bool have_cgroup;
    fp_cgroup cgroup;
    fp_usage usage;
    bool have_usage;
    double cpu; /* fraction of one CPU over the last second */
    struct timespec sampled;
    fp_enforce_window win;  /* the last samples, for the policy's window */
    json_t *violation;      /* why it is ST_VIOLATED: kept and reported until replaced */
    json_int_t def_updated; /* the cloud's "updated" of the definition it runs */
    /* a new definition waiting for its image while this one runs on */
    char next_gen[FP_DIGEST_MAX];
    time_t next_try;
    unsigned next_backoff_s;
    bool claimed; /* run on this fog's etcd claim, not placed by the cloud */
    bool held;    /* kept as it is but not started (agent/handover.h) */
};

struct fp_agent {
    const fp_config *cfg;
    fp_federation *fed;
    fp_store *store;
    fp_runtime rt;
    char dir[FP_PATH_MAX], self_exe[FP_PATH_MAX], host[256];
    struct instance *inst[MAX_INSTANCES];
    size_t n;
    json_t *desired; /* definitions (array) as last received or saved */
    json_t *policy;  /* the node policy shipped with them (NULL: the default) */
    /* The desired state is fetched by a thread of its own: a slow or
     * stopped cloud (a 5 s timeout per call) must not stall the pass that
     * samples and enforces every second. It leaves each answer here. */
    pthread_t sync_thread;
    json_t *incoming; /* under lock: the last answer not yet taken */
    pthread_t thread;
    pthread_mutex_t lock; /* stop, status */
    pthread_cond_t wake;
    bool stop;
    json_t *status;                         /* the last pass's report */
    struct fp_recall_set *_Atomic recalled; /* never run (fp_agent_set_recalled) */
    bool published;                         /* status holds a pass's report (not the empty start) */
    json_t *pinned;        /* under lock: digests never evicted from the cache (fp_agent_pinned) */
    fp_handover *handover; /* always-on among fogs without the cloud, or NULL */
};

/* ---- paths ---------------------------------------------------------- */

static void svc_path(const fp_agent *a, const char *name, const char *leaf, char *out, size_t n)
{
    snprintf(out, n, "%s/services/%s%s%s", a->dir, name, leaf ? "/" : "", leaf ? leaf : "");
}

static void definition_gen(const fp_service *s, char out[FP_DIGEST_MAX])
{
    json_t *j = fp_service_to_json(s);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(j);
    fp_digest_bytes(FP_SHA256, text ? text : "", text ? strlen(text) : 0, out);
    free(text);
}

/* ---- persisted per-instance facts (survive an agent restart) -------- */

static void save_instance(fp_agent *a, const struct instance *in)
{
    char path[FP_PATH_MAX + 128];
    svc_path(a, in->svc.name, "instance.json", path, sizeof path);
    json_t *layers = json_array();
    for (size_t i = 0; in->layers && in->layers[i]; i++)
        json_array_append_new(layers, json_string(in->layers[i]));
    /* "exited": it ended and its policy says not again, also after the
     * agent restarts */
    json_t *j =
        json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:b, s:i, s:i}", "gen", in->gen, "restarts",
                  (json_int_t)in->restarts, "oom_kills", (json_int_t)in->oom_kills, "started",
                  (json_int_t)in->started, "definition", fp_service_to_json(&in->svc), "layers",
                  layers, "exited", in->state == ST_EXITED, "exit_code", in->exit_code,
                  "exit_signal", in->exit_signal);
    /* a violation holds across an agent restart: it is not run again */
    if (in->violation) json_object_set(j, "violation", in->violation);
    json_object_set_new(j, "def_updated", json_integer(in->def_updated));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    fp_error err;
    if (!text || fp_write_file_atomic(path, text, strlen(text), 0600, &err) < 0)
        fp_warn("event=agent_save_failed service=%s", in->svc.name);
    free(text);
}

static void set_error(struct instance *in, enum state st, const fp_error *err)
{
    in->state = st;
    snprintf(in->error, sizeof in->error, "%s", err ? err->msg : "");
}

/* ---- image → root file system → bundle ------------------------------- */

static int read_blob_json(fp_agent *a, const char *digest, json_t **out, fp_error *err)
{
    char path[FP_PATH_MAX + 256];
    if (fp_store_blob_path(a->store, digest, path, sizeof path) < 0)
        return fp_error_set(err, 0, "bad digest %s", digest);
    cleanup_free char *text = NULL;
    size_t len;
    if (fp_read_file(path, IMAGE_CONFIG_MAX, &text, &len, err) < 0) return -1;
    json_error_t jerr;
    *out = json_loadb(text, len, 0, &jerr);
    return *out ? 0 : fp_error_set(err, 0, "image config %s: %s", digest, jerr.text);
}

/* Hold the image, unpack its layers (cached), mount the root and write the
 * bundle. */
static int deploy(fp_agent *a, struct instance *in, fp_error *err)
{
    fp_service *s = &in->svc;
    fp_reference ref;
    if (fp_reference_parse(s->image, &ref) < 0)
        return fp_error_set(err, 0, "image %s: not a reference", s->image);
    if (fp_digest_parse(s->digest, strlen(s->digest), NULL) != FP_DIGEST_OK)
        return fp_error_set(err, 0, "image %s: the cloud gave no digest", s->image);
    uint64_t bytes = 0;
    fp_manifest m;
    if (fp_agent_image_hold(a->fed, a->store, ref.name, s->digest, &m, &bytes, err) < 0)
        return fp_error_prefix(err, "image %s", s->image);
    json_t *image_config = NULL;
    const char **lowers = calloc(m.nrefs + 1, sizeof *lowers);
    char(*paths)[FP_PATH_MAX] = calloc(m.nrefs + 1, sizeof *paths);
    int rc = lowers && paths ? 0 : fp_error_set(err, ENOMEM, "layers");
    if (rc == 0) rc = read_blob_json(a, m.config.digest, &image_config, err);
    char cache[FP_PATH_MAX + 16];
    snprintf(cache, sizeof cache, "%s/layers", a->dir);
    fp_unpack_limits lim = {.max_bytes = a->cfg->agent_max_layer_bytes, .helper = a->self_exe};
    for (size_t i = 0; rc == 0 && i < m.nrefs; i++) {
        char blob[FP_PATH_MAX + 256];
        if (fp_store_blob_path(a->store, m.refs[i].digest, blob, sizeof blob) < 0) {
            rc = fp_error_set(err, 0, "layer %s: bad digest", m.refs[i].digest);
            break;
        }
        rc = fp_layer_cache_ensure(cache, m.refs[i].digest, blob, &lim, paths[i], FP_PATH_MAX, err);
        if (rc < 0) fp_error_prefix(err, "layer %s", m.refs[i].digest);
        lowers[i] = paths[i];
    }
    fp_strv_free(in->layers);
    in->layers = NULL;
    for (size_t i = 0; rc == 0 && i < m.nrefs; i++)
        if (fp_strv_push(&in->layers, m.refs[i].digest) < 0)
            rc = fp_error_set(err, ENOMEM, "layers");
    char bundle[FP_PATH_MAX + 128], root[FP_PATH_MAX + 128], upper[FP_PATH_MAX + 128],
        work[FP_PATH_MAX + 128];
    svc_path(a, s->name, NULL, bundle, sizeof bundle);
    svc_path(a, s->name, "rootfs", root, sizeof root);
    svc_path(a, s->name, "upper", upper, sizeof upper);
    svc_path(a, s->name, "work", work, sizeof work);
    if (rc == 0) {
        fp_rootfs_unmount(root, err); /* a stale mount from before */
        rc = fp_mkdir_p(root, 0755, err);
    }
    /* Always with an upper layer: the runtime makes its mount points
     * (/proc, /dev, ...) in the root before it remounts it read-only
     * (root.readonly in the bundle) for a service that is not writable. */
    if (rc == 0) rc = fp_rootfs_mount(lowers, m.nrefs, upper, work, root, err);
    json_t *config = NULL;
    if (rc == 0) {
        char cgroup[256];
        snprintf(cgroup, sizeof cgroup, "/fogport/%s/%s", a->cfg->node_id, s->name);
        fp_bundle_opts o = {.rootfs = root,
                            .cgroup_path = cgroup,
                            .hostname = s->name,
                            .host_network = true,
                            .resolv_conf =
                                access("/etc/resolv.conf", R_OK) == 0 ? "/etc/resolv.conf" : NULL};
        /* a definition that names no capabilities gets the node policy's
         * set (Docker's default when the policy names none) */
        fp_strv asked = s->capabilities, narrowed = NULL;
        json_t *allowed = json_object_get(a->policy, "capabilities");
        size_t ci;
        json_t *cv;
        if (!asked && json_is_array(allowed)) {
            narrowed = calloc(1, sizeof *narrowed);
            if (!narrowed) rc = fp_error_set(err, ENOMEM, "capabilities");
            json_array_foreach(allowed, ci,
                               cv) if (rc == 0 && json_is_string(cv) &&
                                       fp_strv_push(&narrowed, json_string_value(cv)) < 0) rc =
                fp_error_set(err, ENOMEM, "capabilities");
            s->capabilities = narrowed;
        }
        char why[512];
        if (rc == 0 && fp_enforce_host_paths_here(s->host_paths, a->policy, why, sizeof why))
            rc = fp_error_set(err, 0, "%s", why);
        if (rc == 0) rc = fp_bundle_config(image_config, s, &o, &config, err);
        s->capabilities = asked;
        fp_strv_free(narrowed);
        if (rc == 0) rc = fp_bundle_write(bundle, config, err);
        if (rc < 0) fp_rootfs_unmount(root, NULL);
    }
    json_decref(config);
    json_decref(image_config);
    free(lowers);
    free(paths);
    fp_manifest_free(&m);
    if (rc == 0)
        fp_info("event=service_deployed service=%s image=%s digest=%s fetched_bytes=%" PRIu64,
                s->name, s->image, s->digest, bytes);
    return rc;
}

static int start_container(fp_agent *a, struct instance *in, fp_error *err)
{
    char bundle[FP_PATH_MAX + 128], state[FP_PATH_MAX + 128], exitf[FP_PATH_MAX + 160];
    svc_path(a, in->svc.name, NULL, bundle, sizeof bundle);
    svc_path(a, in->svc.name, "state", state, sizeof state);
    snprintf(exitf, sizeof exitf, "%s/exit", state);
    unlink(exitf);
    if (fp_mkdir_p(state, 0700, err) < 0) return -1;
    /* a container of that name left over (a crash between runs) */
    fp_runtime_delete(&a->rt, in->svc.name, true, NULL);
    fp_shim_opts o = {.self_exe = a->self_exe,
                      .rt = &a->rt,
                      .id = in->svc.name,
                      .bundle = bundle,
                      .state_dir = state,
                      .log_max = a->cfg->agent_log_max};
    pid_t pid = 0;
    if (fp_shim_start(&o, &pid, err) < 0) return -1;
    in->pid = pid;
    in->state = ST_RUNNING;
    in->started = time(NULL);
    in->error[0] = '\0';
    in->have_cgroup = in->have_usage = false;
    in->win.n = 0; /* a new run is judged on its own samples */
    save_instance(a, in);
    fp_info("event=service_started service=%s pid=%d restarts=%u", in->svc.name, (int)pid,
            in->restarts);
    return 0;
}

/* Stop the container and remove everything of the instance. */
static void remove_instance(fp_agent *a, const char *name, unsigned grace_s)
{
    fp_error err;
    fp_container_state st;
    if (fp_runtime_state(&a->rt, name, &st, &err) == 0 && strcmp(st.status, "stopped") != 0 &&
        fp_runtime_stop(&a->rt, name, grace_s, &err) < 0)
        fp_warn("event=service_stop_failed service=%s error=\"%s\"", name, err.msg);
    fp_runtime_delete(&a->rt, name, true, &err);
    char root[FP_PATH_MAX + 128], dir[FP_PATH_MAX + 128];
    svc_path(a, name, "rootfs", root, sizeof root);
    svc_path(a, name, NULL, dir, sizeof dir);
    if (fp_rootfs_unmount(root, &err) < 0)
        fp_warn("event=rootfs_unmount_failed service=%s error=\"%s\"", name, err.msg);
    /* a writable service's upper layer may nest deeper than PATH_MAX */
    if (fp_layer_remove(dir, &err) < 0)
        fp_warn("event=service_dir_left service=%s error=\"%s\"", name, err.msg);
    fp_info("event=service_removed service=%s", name);
}

/* ---- the state machine of one instance ----------------------------- */

static unsigned next_backoff(struct instance *in)
{
    in->backoff_s = in->backoff_s ? in->backoff_s * 2 : 1;
    if (in->backoff_s > BACKOFF_MAX_S) in->backoff_s = BACKOFF_MAX_S;
    return in->backoff_s;
}

/* The container has ended: record why and decide what comes next. */
static void ended(fp_agent *a, struct instance *in, const fp_shim_exit *ex, time_t now)
{
    in->exit_code = ex->exit_code;
    in->exit_signal = ex->signal;
    in->pid = 0;
    in->have_cgroup = false;
    if (ex->oom_killed) in->oom_kills++;
    fp_info("event=service_exited service=%s exit_code=%d signal=%d oom_killed=%s", in->svc.name,
            ex->exit_code, ex->signal, ex->oom_killed ? "true" : "false");
    bool failed = ex->exit_code != 0 || ex->signal != 0;
    bool again = in->svc.restart == FP_RESTART_ALWAYS ||
                 (in->svc.restart == FP_RESTART_ON_FAILURE && failed);
    if (!again) {
        in->state = ST_EXITED;
    } else {
        in->state = ST_BACKOFF;
        if (now - in->started >= STABLE_RUN_S) in->backoff_s = 0; /* it ran well a while */
        in->next_start = now + next_backoff(in);
    }
    save_instance(a, in);
}

/* Is the shim that supervises this state directory still alive? */
static bool shim_alive(const char *state_dir)
{
    char path[FP_PATH_MAX + 160], cmd[256] = "";
    snprintf(path, sizeof path, "%s/shim.pid", state_dir);
    cleanup_free char *text = NULL;
    size_t len;
    fp_error err;
    if (fp_read_file(path, 64, &text, &len, &err) < 0) return false;
    long pid = strtol(text, NULL, 10);
    if (pid <= 1 || kill((pid_t)pid, 0) != 0) return false;
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *f = fopen(path, "re");
    if (!f) return false;
    size_t n = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (!cmd[i]) cmd[i] = ' ';
    return strstr(cmd, " shim ") != NULL; /* not a reused pid */
}

static int64_t mono_ms(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000 + ts->tv_nsec / 1000000;
}

static void sample(struct instance *in)
{
    fp_error err;
    if (!in->have_cgroup) {
        if (in->pid <= 0 || fp_cgroup_of_pid("/proc", in->pid, &in->cgroup, &err) < 0) return;
        in->have_cgroup = true;
    }
    fp_usage u;
    if (fp_cgroup_usage(&in->cgroup, &u, &err) < 0) {
        in->have_cgroup = false;
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    bool had = in->have_usage;
    if (in->have_usage) {
        double dt = (double)(now.tv_sec - in->sampled.tv_sec) +
                    (double)(now.tv_nsec - in->sampled.tv_nsec) / 1e9;
        in->cpu = fp_usage_cpu_fraction(&in->usage, &u, dt);
        if (u.mem_peak < in->usage.mem_peak) u.mem_peak = in->usage.mem_peak;
    }
    if (u.mem_peak < u.mem_bytes) u.mem_peak = u.mem_bytes;
    in->usage = u;
    in->have_usage = true;
    in->sampled = now;
    fp_enforce_sample es = {.t_ms = mono_ms(&now),
                            .wall = time(NULL),
                            .has_cpu = had,
                            .cpu = in->cpu,
                            .memory = u.mem_bytes,
                            .pids = u.pids};
    fp_enforce_push(&in->win, &es);
}

/* Wait up to grace_s for the container to stop (or be gone). */
static bool wait_stopped(fp_agent *a, const char *name, unsigned grace_s)
{
    for (unsigned i = 0; i <= grace_s * 10; i++) {
        fp_container_state st;
        fp_error err;
        int rc = fp_runtime_state(&a->rt, name, &st, &err);
        if (rc == 1 || (rc == 0 && !strcmp(st.status, "stopped"))) return true;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* The instance overstepped its policy: stop it for good (SIGTERM, then
 * SIGKILL after its grace when it does not stop) and keep the violation
 * (v, taken) with what was done, to be reported with every heartbeat
 * until a new definition replaces the instance. */
static void violate(fp_agent *a, struct instance *in, json_t *v)
{
    const char *kind = json_string_value(json_object_get(v, "kind"));
    char id[96];
    snprintf(id, sizeof id, "%lld-%s", (long long)time(NULL), kind ? kind : "unknown");
    json_object_set_new(v, "id", json_string(id));
    json_object_set_new(v, "definition", json_string(in->gen));
    const char *action = "refused"; /* never started */
    if (in->deployed && in->state == ST_RUNNING) {
        fp_error err;
        action = "terminated";
        fp_runtime_kill(&a->rt, in->svc.name, SIGTERM, &err);
        if (!wait_stopped(a, in->svc.name, in->svc.stop_grace_s)) {
            action = "killed";
            if (fp_runtime_stop(&a->rt, in->svc.name, 0, &err) < 0) {
                action = "stop_failed";
                fp_warn("event=service_stop_failed service=%s error=\"%s\"", in->svc.name, err.msg);
            }
        }
    }
    json_object_set_new(v, "action", json_string(action));
    json_object_set_new(v, "stopped", json_integer((json_int_t)time(NULL)));
    fp_warn("event=service_violated service=%s kind=%s action=%s why=\"%s\"", in->svc.name,
            kind ? kind : "", action, json_string_value(json_object_get(v, "message")) ?: "");
    json_decref(in->violation);
    in->violation = v;
    in->state = ST_VIOLATED;
    in->pid = 0;
    in->have_cgroup = in->have_usage = false;
    snprintf(in->error, sizeof in->error, "policy violation: %s",
             json_string_value(json_object_get(v, "message")) ?: "");
    save_instance(a, in);
}

/* Judge the running instance's samples against its definition's limits. */
static bool enforce_resources(fp_agent *a, struct instance *in)
{
    fp_enforce_policy p = {.max_cpu = in->svc.max_cpu,
                           .max_memory = in->svc.max_memory,
                           .max_pids = in->svc.max_pids,
                           .window_s = in->svc.window_s};
    if (!fp_enforce_policy_set(&p) || in->win.n == 0) return false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    fp_enforce_verdict v;
    fp_enforce_evaluate(in->win.s, in->win.n, &p, mono_ms(&now), &v);
    if (v.kind == FP_VIOLATION_NONE) return false;
    violate(a, in, fp_enforce_evidence(in->win.s, &v, &p));
    return true;
}

static void step(fp_agent *a, struct instance *in, time_t now)
{
    fp_error err;
    /* ended for good: its restart policy says so, or it overstepped */
    if (in->state == ST_EXITED || in->state == ST_VIOLATED) return;
    if (in->state == ST_BACKOFF && now < in->next_start) return;
    if (!in->deployed) {
        in->state = ST_PULLING;
        int rc = deploy(a, in, &err);
        /* what the pull and the unpacking allocated is free again: give
         * those pages back (an agent is idle between deploys, and on an
         * edge every page counts) */
        malloc_trim(0);
        if (rc < 0) {
            fp_warn("event=service_deploy_failed service=%s error=\"%s\"", in->svc.name, err.msg);
            set_error(in, ST_BACKOFF, &err);
            in->next_start = now + next_backoff(in);
            return;
        }
        in->deployed = true;
        in->state = ST_STARTING;
    }
    if (in->state == ST_BACKOFF && now < in->next_start) return;
    if (in->state == ST_STARTING || in->state == ST_BACKOFF) {
        if (in->state == ST_BACKOFF && in->started) in->restarts++;
        if (start_container(a, in, &err) < 0) {
            fp_warn("event=service_start_failed service=%s error=\"%s\"", in->svc.name, err.msg);
            set_error(in, ST_BACKOFF, &err);
            in->next_start = now + next_backoff(in);
        }
        return;
    }
    if (in->state != ST_RUNNING) return;
    char state[FP_PATH_MAX + 128];
    svc_path(a, in->svc.name, "state", state, sizeof state);
    fp_shim_exit ex;
    int rc = fp_shim_exit_read(state, &ex, &err);
    if (rc == 0) {
        ended(a, in, &ex, now);
        return;
    }
    /* No exit record while the shim lives: running, or the shim is between
     * reaping and writing the record. A dead shim writes none: the
     * container ended (or lives on unsupervised) without one. */
    if (rc == 1 && !shim_alive(state)) {
        fp_runtime_stop(&a->rt, in->svc.name, 1, &err);
        fp_runtime_delete(&a->rt, in->svc.name, true, &err);
        if (fp_shim_exit_read(state, &ex, &err) == 0) {
            ended(a, in, &ex, now);
            return;
        }
        fp_shim_exit lost = {.exit_code = -1};
        snprintf(in->error, sizeof in->error, "its shim died: the exit status is unknown");
        ended(a, in, &lost, now);
        return;
    }
    sample(in);
    enforce_resources(a, in);
}

/* ---- desired state --------------------------------------------------- */

static void load_saved_desired(fp_agent *a)
{
    char path[FP_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/desired.json", a->dir);
    json_t *j = json_load_file(path, 0, NULL);
    if (json_is_array(j)) {
        json_decref(a->desired);
        a->desired = j;
    } else {
        json_decref(j);
    }
    snprintf(path, sizeof path, "%s/policy.json", a->dir);
    j = json_load_file(path, 0, NULL);
    if (json_is_object(j))
        a->policy = j;
    else
        json_decref(j);
}

/* The node policy comes with the desired state and is kept with it: the
 * agent enforces it while the cloud is away. */
static void keep_policy(fp_agent *a, json_t *pol)
{
    if (!json_is_object(pol) || json_equal(pol, a->policy)) return;
    char *text = json_dumps(pol, JSON_COMPACT | JSON_SORT_KEYS);
    char path[FP_PATH_MAX + 32];
    fp_error err;
    snprintf(path, sizeof path, "%s/policy.json", a->dir);
    if (text && fp_write_file_atomic(path, text, strlen(text), 0600, &err) < 0)
        fp_warn("event=policy_save_failed error=\"%s\"", err.msg);
    fp_info("event=node_policy policy=%s", text ? text : "?");
    free(text);
    json_decref(a->policy);
    a->policy = json_incref(pol);
}

/* The sync thread: ask the cloud, leave the answer for the agent's pass. */
static void fetch_desired(fp_agent *a)
{
    fp_http_response resp;
    fp_error err;
    if (fp_node_call_cloud(a->cfg, "/api/v1/agent/desired", NULL, &resp, &err) < 0) {
        fp_debug("event=desired_unavailable error=\"%s\"", err.msg);
        return; /* keep running what we have */
    }
    json_t *doc = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
    fp_http_response_free(&resp);
    if (!json_is_array(json_object_get(doc, "services"))) {
        json_decref(doc);
        return;
    }
    pthread_mutex_lock(&a->lock);
    json_decref(a->incoming);
    a->incoming = doc;
    pthread_mutex_unlock(&a->lock);
}

static void *sync_main(void *arg)
{
    fp_agent *a = arg;
    unsigned every = a->cfg->agent_sync_s ? a->cfg->agent_sync_s : 2;
    for (;;) {
        pthread_mutex_lock(&a->lock);
        bool stop = a->stop;
        pthread_mutex_unlock(&a->lock);
        if (stop) break;
        fetch_desired(a);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += every;
        pthread_mutex_lock(&a->lock);
        if (!a->stop) pthread_cond_timedwait(&a->wake, &a->lock, &until);
        pthread_mutex_unlock(&a->lock);
    }
    return NULL;
}

/* The images this node runs or is about to run: every instance's and
 * every wanted definition's digest, kept from cache eviction. */
static void refresh_pins(fp_agent *a)
{
    json_t *pins = json_array();
    for (size_t i = 0; i < a->n; i++)
        json_array_append_new(pins, json_string(a->inst[i]->svc.digest));
    size_t k;
    json_t *def;
    json_array_foreach(a->desired, k, def)
    {
        json_t *d = json_object_get(def, "digest");
        if (json_is_string(d)) json_array_append(pins, d);
    }
    pthread_mutex_lock(&a->lock);
    json_decref(a->pinned);
    a->pinned = pins;
    pthread_mutex_unlock(&a->lock);
}

char *fp_agent_pinned(fp_agent *a)
{
    if (!a) return NULL;
    pthread_mutex_lock(&a->lock);
    char *text = a->pinned ? json_dumps(a->pinned, JSON_COMPACT) : NULL;
    pthread_mutex_unlock(&a->lock);
    return text;
}

/* The agent's pass: take the sync thread's latest answer, if any. */
static void sync_desired(fp_agent *a)
{
    pthread_mutex_lock(&a->lock);
    json_t *doc = a->incoming;
    a->incoming = NULL;
    pthread_mutex_unlock(&a->lock);
    if (!doc) return;
    fp_error err;
    json_t *list = json_object_get(doc, "services");
    keep_policy(a, json_object_get(doc, "policy"));
    fp_handover_cloud_answered(a->handover, doc);
    if (!json_equal(list, a->desired)) {
        char *text = json_dumps(list, JSON_COMPACT | JSON_SORT_KEYS);
        char path[FP_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/desired.json", a->dir);
        if (text && fp_write_file_atomic(path, text, strlen(text), 0600, &err) < 0)
            fp_warn("event=desired_save_failed error=\"%s\"", err.msg);
        free(text);
        json_decref(a->desired);
        a->desired = json_incref(list);
        fp_info("event=desired_state services=%zu", json_array_size(list));
        refresh_pins(a); /* before the pass fetches them */
    }
    json_decref(doc);
}

static struct instance *find(fp_agent *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->inst[i]->svc.name, name)) return a->inst[i];
    return NULL;
}

static void drop(fp_agent *a, size_t i)
{
    fp_service_free(&a->inst[i]->svc);
    fp_strv_free(a->inst[i]->layers);
    json_decref(a->inst[i]->violation);
    free(a->inst[i]);
    a->inst[i] = a->inst[--a->n];
}

/* Unpacked layers no instance is made of any more go (a replaced service's
 * old image, a removed one's): the cache is bounded by what runs. */
static void prune_layers(fp_agent *a)
{
    fp_strv keep = calloc(1, sizeof *keep);
    for (size_t i = 0; keep && i < a->n; i++)
        for (size_t k = 0; a->inst[i]->layers && a->inst[i]->layers[k]; k++)
            if (fp_strv_push(&keep, a->inst[i]->layers[k]) < 0) {
                fp_strv_free(keep);
                return; /* keep everything rather than too little */
            }
    if (!keep) return;
    char cache[FP_PATH_MAX + 16];
    snprintf(cache, sizeof cache, "%s/layers", a->dir);
    fp_error err;
    int n = fp_layer_cache_prune(cache, (const char *const *)keep, &err);
    if (n < 0)
        fp_warn("event=layer_prune_failed error=\"%s\"", err.msg);
    else if (n > 0)
        fp_info("event=layers_pruned count=%d", n);
    fp_strv_free(keep);
}

/* A running instance is replaced only once the new definition's image is
 * held and unpacked: a new image that cannot be fetched leaves the old one
 * serving, the failure in its error and the log, tried again with backoff. */
static bool replacement_ready(fp_agent *a, struct instance *in, const fp_service *s,
                              const char *gen, time_t now)
{
    if (strcmp(in->next_gen, gen) != 0) { /* another new definition: from the start */
        snprintf(in->next_gen, sizeof in->next_gen, "%s", gen);
        in->next_try = 0;
        in->next_backoff_s = 0;
    }
    if (now < in->next_try) return false;
    fp_error err;
    fp_reference ref;
    char cache[FP_PATH_MAX + 16];
    snprintf(cache, sizeof cache, "%s/layers", a->dir);
    fp_unpack_limits lim = {.max_bytes = a->cfg->agent_max_layer_bytes, .helper = a->self_exe};
    int rc = fp_reference_parse(s->image, &ref) < 0
                 ? fp_error_set(&err, 0, "image %s: not a reference", s->image)
                 : fp_agent_image_prepare(a->fed, a->store, cache, &lim, ref.name, s->digest, NULL,
                                          &err);
    malloc_trim(0);
    if (rc == 0) return true;
    in->next_backoff_s = in->next_backoff_s ? in->next_backoff_s * 2 : 1;
    if (in->next_backoff_s > BACKOFF_MAX_S) in->next_backoff_s = BACKOFF_MAX_S;
    in->next_try = now + in->next_backoff_s;
    snprintf(in->error, sizeof in->error, "new definition not running yet (image %s): %s", s->image,
             err.msg);
    fp_warn("event=service_replace_failed service=%s image=%s digest=%s retry_s=%u error=\"%s\"",
            s->name, s->image, s->digest, in->next_backoff_s, err.msg);
    return false;
}

static void reconcile(fp_agent *a, time_t now)
{
    bool removed = false;
    for (size_t i = 0; i < a->n; i++)
        a->inst[i]->wanted = false;
    /* with etcd among the fogs, the always-on services run where the
     * fogs' claims say while the cloud is away */
    fp_handover_view view;
    fp_handover_view_of(a->handover, a->desired, &view);
    size_t k;
    json_t *def;
    json_array_foreach(view.services, k, def)
    {
        fp_service s;
        fp_error err;
        json_t *copy = json_deep_copy(def);
        json_object_del(copy, "created"); /* the controller's bookkeeping */
        json_object_del(copy, "updated");
        json_int_t updated = json_integer_value(json_object_get(def, "updated"));
        /* Privileges are judged on the definition as it came, before it is
         * parsed: one asking for what the node does not allow (a stale or
         * tampered one) is refused and reported, not run. The record needs
         * its name, image and digest; the refused fields go into the
         * evidence. */
        char why[256];
        json_t *refused = NULL;
        char gen[FP_DIGEST_MAX];
        if (fp_enforce_privileges(copy, a->policy, why, sizeof why)) {
            /* its own generation, apart from the same definition running
             * (whose encoding is the same text) */
            char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
            fp_buf b = FP_BUF_INIT;
            fp_buf_append(&b, "refused:", 8);
            if (text) fp_buf_append(&b, text, strlen(text));
            fp_digest_bytes(FP_SHA256, b.data ? b.data : "", b.len, gen);
            fp_buf_free(&b);
            free(text);
            refused = json_pack("{s:s, s:s, s:s, s:O?, s:O?, s:O?}", "kind", "privilege", "message",
                                why, "action", "refused", "capabilities",
                                json_object_get(copy, "capabilities"), "ports",
                                json_object_get(copy, "ports"), "policy", a->policy);
            json_object_set_new(refused, "time", json_integer((json_int_t)time(NULL)));
            json_object_del(copy, "capabilities");
            json_object_del(copy, "ports");
        }
        int rc = fp_service_from_json(copy, &s, &err);
        json_decref(copy);
        if (rc < 0) json_decref(refused);
        const char *name = json_string_value(json_object_get(def, "name"));
        if (rc < 0) {
            /* a definition this agent cannot read (a newer cloud's field,
             * say) must not stop what runs under that name: keep it */
            struct instance *keep = name ? find(a, name) : NULL;
            if (keep) {
                keep->wanted = true;
                snprintf(keep->error, sizeof keep->error, "new definition refused: %s", err.msg);
            }
            fp_warn("event=service_definition_refused error=\"%s\"", err.msg);
            continue;
        }
        struct instance *dup = find(a, s.name);
        /* recalled: not wanted, so it stops below (the cloud's list may be
         * one this node saved before the recall) */
        if (fp_recall_set_has(a->recalled, s.digest)) {
            fp_service_free(&s);
            json_decref(refused);
            continue;
        }
        if (dup && dup->wanted) { /* the cloud listed the name twice: the first wins */
            fp_service_free(&s);
            json_decref(refused);
            continue;
        }
        if (!refused) definition_gen(&s, gen);
        struct instance *in = find(a, s.name);
        /* a violated instance stays stopped until the definition is written
         * again at the cloud (its "updated" changes), even unchanged */
        bool rewritten = in && in->state == ST_VIOLATED && updated != in->def_updated;
        if (in && in->next_gen[0] && !strcmp(in->gen, gen)) { /* the new one withdrawn */
            in->next_gen[0] = '\0';
            in->error[0] = '\0';
        }
        if (in && (strcmp(in->gen, gen) != 0 || rewritten)) { /* changed: replace it */
            if (!refused && in->state == ST_RUNNING && !replacement_ready(a, in, &s, gen, now)) {
                fp_service_free(&s);
                in->wanted = true; /* and still supervised, below */
                continue;
            }
            remove_instance(a, s.name, in->svc.stop_grace_s);
            for (size_t i = 0; i < a->n; i++)
                if (a->inst[i] == in) drop(a, i);
            in = NULL;
            removed = true;
        }
        if (!in && a->n < MAX_INSTANCES) {
            in = calloc(1, sizeof *in);
            if (!in) {
                fp_service_free(&s);
                continue;
            }
            in->svc = s;
            snprintf(in->gen, sizeof in->gen, "%s", gen);
            in->state = ST_PULLING;
            in->def_updated = updated;
            a->inst[a->n++] = in;
            if (refused) violate(a, in, json_incref(refused));
        } else {
            fp_service_free(&s);
        }
        json_decref(refused);
        if (in && in->state != ST_VIOLATED) in->def_updated = updated;
        if (in) {
            in->wanted = true;
            in->claimed = json_object_get(view.claimed, in->svc.name) != NULL;
            in->held = json_object_get(view.held, in->svc.name) != NULL;
        }
    }
    for (size_t i = 0; i < a->n;) {
        if (a->inst[i]->wanted) {
            /* held: what runs goes on being watched, nothing new starts */
            if (!a->inst[i]->held || a->inst[i]->state == ST_RUNNING) step(a, a->inst[i], now);
            i++;
        } else {
            const char *name = a->inst[i]->svc.name;
            bool fenced = json_object_get(view.fenced, name) != NULL;
            if (fenced) fp_warn("event=handover_fenced service=%s", name);
            remove_instance(a, name, fenced ? 0 : a->inst[i]->svc.stop_grace_s);
            drop(a, i);
            removed = true;
        }
    }
    fp_handover_view_free(&view);
    if (removed) prune_layers(a);
}

/* ---- adoption after a restart --------------------------------------- */

static int remove_stray(void *ctx, const char *id, const fp_container_state *st)
{
    fp_agent *a = ctx;
    (void)st;
    if (!find(a, id)) {
        fp_info("event=container_stray id=%s", id);
        fp_error err;
        fp_runtime_stop(&a->rt, id, 2, &err);
        fp_runtime_delete(&a->rt, id, true, &err);
    }
    return 0;
}

/* Take back the instances this node ran before the agent restarted: a
 * running container is adopted as it is; the rest are redeployed or, when
 * no longer wanted, removed by the first reconcile. */
static void adopt(fp_agent *a)
{
    char dir[FP_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/services", a->dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && a->n < MAX_INSTANCES) {
        if (!fp_service_name_valid(e->d_name)) continue;
        char path[FP_PATH_MAX + 128];
        svc_path(a, e->d_name, "instance.json", path, sizeof path);
        json_t *j = json_load_file(path, 0, NULL);
        fp_service s;
        fp_error err;
        const char *gen = json_string_value(json_object_get(j, "gen"));
        if (!gen || fp_service_from_json(json_object_get(j, "definition"), &s, &err) < 0) {
            json_decref(j);
            remove_instance(a, e->d_name, 2);
            continue;
        }
        struct instance *in = calloc(1, sizeof *in);
        if (!in) {
            fp_service_free(&s);
            json_decref(j);
            break;
        }
        in->svc = s;
        snprintf(in->gen, sizeof in->gen, "%s", gen);
        in->restarts = (unsigned)json_integer_value(json_object_get(j, "restarts"));
        in->oom_kills = (uint64_t)json_integer_value(json_object_get(j, "oom_kills"));
        in->started = (time_t)json_integer_value(json_object_get(j, "started"));
        size_t li;
        json_t *lv;
        json_array_foreach(json_object_get(j, "layers"), li, lv) if (json_is_string(lv))
            fp_strv_push(&in->layers, json_string_value(lv));
        fp_container_state st;
        char root[FP_PATH_MAX + 128];
        svc_path(a, s.name, "rootfs", root, sizeof root);
        bool exited = json_is_true(json_object_get(j, "exited"));
        in->exit_code = (int)json_integer_value(json_object_get(j, "exit_code"));
        in->exit_signal = (int)json_integer_value(json_object_get(j, "exit_signal"));
        in->def_updated = json_integer_value(json_object_get(j, "def_updated"));
        json_t *violation = json_object_get(j, "violation");
        if (json_is_object(violation)) { /* stopped for good: make sure it is */
            in->violation = json_incref(violation);
            in->state = ST_VIOLATED;
            snprintf(in->error, sizeof in->error, "policy violation: %s",
                     json_string_value(json_object_get(violation, "message")) ?: "");
            json_decref(j);
            fp_runtime_stop(&a->rt, s.name, s.stop_grace_s, &err);
            a->inst[a->n++] = in;
            continue;
        }
        json_decref(j);
        if (exited) { /* it ended for good before the restart */
            in->state = ST_EXITED;
            a->inst[a->n++] = in;
            continue;
        }
        if (fp_runtime_state(&a->rt, s.name, &st, &err) == 0 && !strcmp(st.status, "running")) {
            in->state = ST_RUNNING;
            in->pid = st.pid;
            in->deployed = true;
            fp_info("event=service_adopted service=%s pid=%d", s.name, (int)st.pid);
        } else {
            /* not running: its mount may be stale; deploy afresh */
            fp_runtime_delete(&a->rt, s.name, true, &err);
            fp_rootfs_unmount(root, &err);
            in->state = ST_PULLING;
        }
        a->inst[a->n++] = in;
    }
    if (d) closedir(d);
    fp_error err;
    if (fp_runtime_list(&a->rt, remove_stray, a, &err) < 0)
        fp_warn("event=runtime_list_failed error=\"%s\"", err.msg);
}

/* ---- status ---------------------------------------------------------- */

static json_t *instance_json(const fp_agent *a, const struct instance *in)
{
    json_t *endpoints = json_array();
    for (unsigned p = 0; p < in->svc.nports; p++) {
        char url[320];
        snprintf(url, sizeof url, "http://%s:%u/", a->host, in->svc.ports[p]);
        json_array_append_new(endpoints, json_string(url));
    }
    json_t *j = json_pack(
        "{s:s, s:s, s:s, s:s, s:O, s:I, s:I, s:I, s:I, s:i, s:i, s:s}", "service", in->svc.name,
        "state", state_names[in->state], "image", in->svc.image, "digest", in->svc.digest,
        "endpoint", json_array_size(endpoints) ? json_array_get(endpoints, 0) : json_null(), "pid",
        (json_int_t)in->pid, "restarts", (json_int_t)in->restarts, "oom_kills",
        (json_int_t)in->oom_kills, "started", (json_int_t)in->started, "exit_code", in->exit_code,
        "exit_signal", in->exit_signal, "error", in->error);
    json_object_set_new(j, "endpoints", endpoints);
    if (in->violation) json_object_set(j, "violation", in->violation);
    if (in->claimed) json_object_set_new(j, "claimed", json_true());
    if (in->have_usage && in->state == ST_RUNNING)
        json_object_set_new(
            j, "usage",
            json_pack("{s:f, s:I, s:I, s:I, s:I, s:I, s:I}", "cpu", in->cpu, "cpu_ns",
                      (json_int_t)in->usage.cpu_ns, "memory", (json_int_t)in->usage.mem_bytes,
                      "memory_peak", (json_int_t)in->usage.mem_peak, "memory_limit",
                      (json_int_t)in->usage.mem_limit, "pids", (json_int_t)in->usage.pids,
                      "pids_limit", (json_int_t)in->usage.pids_limit));
    return j;
}

static void publish(fp_agent *a)
{
    refresh_pins(a);
    json_t *list = json_array();
    for (size_t i = 0; i < a->n; i++)
        json_array_append_new(list, instance_json(a, a->inst[i]));
    pthread_mutex_lock(&a->lock);
    json_decref(a->status);
    a->status = list;
    a->published = true;
    pthread_mutex_unlock(&a->lock);
}

json_t *fp_agent_status(fp_agent *a)
{
    if (!a) return NULL;
    pthread_mutex_lock(&a->lock);
    /* before the first pass nothing is known: say nothing (an empty list
     * would tell the cloud this node runs nothing) */
    json_t *copy = a->published ? json_deep_copy(a->status) : NULL;
    pthread_mutex_unlock(&a->lock);
    return copy;
}

/* ---- logs ------------------------------------------------------------ */

static void append_tail(fp_buf *b, const char *path, size_t want)
{
    FILE *f = fopen(path, "re");
    if (!f) return;
    if (fseeko(f, 0, SEEK_END) == 0) {
        off_t size = ftello(f);
        off_t from = size > (off_t)want ? size - (off_t)want : 0;
        fseeko(f, from, SEEK_SET);
        char buf[8192];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fp_buf_append(b, buf, n);
    }
    fclose(f);
}

int fp_agent_logs(fp_agent *a, const char *service, size_t tail, char **out, size_t *len,
                  fp_error *err)
{
    if (!a || !fp_service_name_valid(service)) return 1;
    char state[FP_PATH_MAX + 128], path[FP_PATH_MAX + 160];
    svc_path(a, service, "state", state, sizeof state);
    if (access(state, F_OK) != 0) return 1;
    fp_buf b = FP_BUF_INIT;
    snprintf(path, sizeof path, "%s/log.1", state);
    append_tail(&b, path, tail);
    snprintf(path, sizeof path, "%s/log", state);
    append_tail(&b, path, tail);
    size_t from = b.len > tail ? b.len - tail : 0;
    *len = b.len - from;
    *out = malloc(*len + 1);
    if (!*out) {
        fp_buf_free(&b);
        return fp_error_set(err, ENOMEM, "logs");
    }
    if (*len) memcpy(*out, b.data + from, *len);
    (*out)[*len] = '\0';
    fp_buf_free(&b);
    return 0;
}

/* ---- the thread ------------------------------------------------------ */

static void *agent_main(void *arg)
{
    fp_agent *a = arg;
    adopt(a);
    for (;;) {
        pthread_mutex_lock(&a->lock);
        bool stop = a->stop;
        pthread_mutex_unlock(&a->lock);
        if (stop) break;
        time_t now = time(NULL);
        sync_desired(a);
        reconcile(a, now);
        publish(a);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_mutex_lock(&a->lock);
        if (!a->stop) pthread_cond_timedwait(&a->wake, &a->lock, &until);
        pthread_mutex_unlock(&a->lock);
    }
    return NULL;
}

/* The host part of this node's advertised URL: where its services are. */
static void endpoint_host(const fp_config *cfg, char *out, size_t n)
{
    char url[512];
    fp_node_advertised_url(cfg, url, sizeof url);
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t len = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
    snprintf(out, n, "%.*s", (int)len, h);
}

int fp_agent_start(fp_agent **out, const fp_config *cfg, fp_federation *fed, fp_store *store,
                   fp_error *err)
{
    *out = NULL;
    if (!cfg->agent_enabled) return 0;
    if (strcmp(cfg->node_role, "fog") != 0 && strcmp(cfg->node_role, "edge") != 0)
        return fp_error_set(err, 0, "[agent] runs on fog and edge nodes only");
    if (geteuid() != 0)
        return fp_error_set(err, EPERM, "the agent needs root (containers, mounts, cgroups)");
    fp_agent *a = calloc(1, sizeof *a);
    if (!a) return fp_error_set(err, ENOMEM, "agent");
    a->cfg = cfg;
    a->fed = fed;
    a->store = store;
    a->desired = json_array();
    a->status = json_array();
    snprintf(a->dir, sizeof a->dir, "%s/agent", cfg->data_dir);
    endpoint_host(cfg, a->host, sizeof a->host);
    char rtroot[FP_PATH_MAX + 16], services[FP_PATH_MAX + 16];
    snprintf(rtroot, sizeof rtroot, "%s/runtime", a->dir);
    snprintf(services, sizeof services, "%s/services", a->dir);
    ssize_t n = readlink("/proc/self/exe", a->self_exe, sizeof a->self_exe - 1);
    if (n <= 0 || fp_mkdir_p(services, 0700, err) < 0 ||
        fp_runtime_init(&a->rt, cfg->agent_runtime, rtroot, err) < 0) {
        if (n <= 0) fp_error_set(err, errno, "/proc/self/exe");
        json_decref(a->desired);
        json_decref(a->status);
        free(a);
        return -1;
    }
    a->self_exe[n] = '\0';
    load_saved_desired(a);
    if (fp_handover_start(&a->handover, cfg, a->dir, err) < 0) {
        json_decref(a->desired);
        json_decref(a->policy);
        json_decref(a->status);
        free(a);
        return -1;
    }
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->wake, NULL);
    if (pthread_create(&a->thread, NULL, agent_main, a) != 0) {
        fp_handover_stop(a->handover);
        json_decref(a->desired);
        json_decref(a->policy);
        json_decref(a->status);
        free(a);
        return fp_error_set(err, EAGAIN, "start agent");
    }
    if (pthread_create(&a->sync_thread, NULL, sync_main, a) != 0) {
        pthread_mutex_lock(&a->lock);
        a->stop = true;
        pthread_cond_broadcast(&a->wake);
        pthread_mutex_unlock(&a->lock);
        pthread_join(a->thread, NULL);
        while (a->n)
            drop(a, 0);
        fp_handover_stop(a->handover);
        json_decref(a->desired);
        json_decref(a->policy);
        json_decref(a->status);
        free(a);
        return fp_error_set(err, EAGAIN, "start agent");
    }
    fp_info("event=agent_started runtime=%s state=%s", a->rt.bin, a->dir);
    *out = a;
    return 0;
}

void fp_agent_stop(fp_agent *a)
{
    if (!a) return;
    pthread_mutex_lock(&a->lock);
    a->stop = true;
    pthread_cond_broadcast(&a->wake); /* both threads */
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    pthread_join(a->sync_thread, NULL);
    fp_handover_stop(a->handover);
    json_decref(a->incoming);
    while (a->n)
        drop(a, 0);
    json_decref(a->desired);
    json_decref(a->policy);
    json_decref(a->status);
    json_decref(a->pinned);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

static int purge_one(void *ctx, const char *id, const fp_container_state *st)
{
    const fp_runtime *rt = ctx;
    fp_error err;
    if (strcmp(st->status, "stopped") != 0) fp_runtime_kill(rt, id, SIGKILL, &err);
    for (int i = 0; i < 50; i++) { /* up to 5 s for it to be gone */
        fp_container_state now;
        if (fp_runtime_state(rt, id, &now, &err) != 0 || !strcmp(now.status, "stopped")) break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    fp_runtime_delete(rt, id, true, &err);
    return 0;
}

int fp_agent_purge(const char *data_dir, fp_error *err)
{
    char dir[FP_PATH_MAX + 32], sub[FP_PATH_MAX + 64];
    snprintf(dir, sizeof dir, "%s/agent", data_dir);
    if (access(dir, F_OK) != 0) return 0;
    snprintf(sub, sizeof sub, "%s/runtime", dir);
    fp_runtime rt;
    if (access(sub, F_OK) == 0 && fp_runtime_init(&rt, "", sub, err) == 0 &&
        fp_runtime_list(&rt, purge_one, &rt, err) < 0)
        return -1;
    snprintf(sub, sizeof sub, "%s/services", dir);
    DIR *d = opendir(sub);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!fp_service_name_valid(e->d_name)) continue;
        char root[FP_PATH_MAX + 160];
        snprintf(root, sizeof root, "%s/%s/rootfs", sub, e->d_name);
        fp_rootfs_unmount(root, NULL);
    }
    if (d) closedir(d);
    return 0;
}

void fp_agent_set_recalled(fp_agent *a, struct fp_recall_set *recalled)
{
    if (a) a->recalled = recalled;
}
