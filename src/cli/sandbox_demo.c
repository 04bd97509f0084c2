/* fogport sandbox up --demo: the README's main job in one command, with no
 * source tree and no other client. It builds the paper's three service
 * images (demo_images.c), starts the sandbox, registers the images at the
 * cloud as an operator would (HTTPS, the admin's token), lists them in the
 * paper's format, waits for the cloud to replicate them to every fog, has
 * the edge pull one through its fog and, where containers can run, deploys
 * them and waits until each runs and each web_service answers. Each step is
 * printed with the time since the start. It returns with everything
 * running: `sandbox down` ends it.
 *
 * web_service is one always-on definition per fog, each pinned to its fog
 * first and with a port of its own (8081, 8082, ...): so it runs on every
 * fog, and when a fog dies its web_service has somewhere to go (another fog,
 * where its port is free), which `--role fog --always-on` would not have
 * (docs/control.md). */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/context.h"
#include "cli/demo_images.h"
#include "cli/sandbox.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/http_client.h"

#define WEB_PORT_BASE 8080u /* fog N's web_service listens on 8080 + N */

static struct timespec t0;

static void step(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void step(const char *fmt, ...)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double s = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
    printf("[%7.2fs] ", s);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run a fogport subcommand in this process, as the operator would type it
 * (its output is the demo's). */
static int run_cmd(int (*cmd)(int, char **), const char *const *argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    optind = 0; /* getopt starts afresh for each command */
    int rc = cmd(argc, (char **)argv);
    fflush(stdout);
    return rc;
}

/* The sandbox's topology: what the demo needs of it. */
struct topo {
    json_t *doc;
    const char *cloud, *ca, *password, *edge, *edge_registry;
    const char *fog_addr[64];
    unsigned fogs;
};

static int load_topo(const char *dir, struct topo *t, fp_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/topology.json", dir);
    json_error_t jerr;
    memset(t, 0, sizeof *t);
    t->doc = json_load_file(path, 0, &jerr);
    if (!t->doc) return fp_error_set(err, 0, "%s: %s", path, jerr.text);
    t->ca = json_string_value(json_object_get(t->doc, "ca"));
    t->password = json_string_value(json_object_get(json_object_get(t->doc, "admin"), "password"));
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(t->doc, "nodes"), i, n)
    {
        const char *role = json_string_value(json_object_get(n, "role"));
        const char *reg = json_string_value(json_object_get(n, "registry"));
        if (!role || !reg) continue;
        if (!strcmp(role, "cloud")) t->cloud = reg;
        if (!strcmp(role, "fog") && t->fogs < 64)
            t->fog_addr[t->fogs++] = json_string_value(json_object_get(n, "address"));
        if (!strcmp(role, "edge") && !t->edge) {
            t->edge = json_string_value(json_object_get(n, "id"));
            t->edge_registry = reg;
        }
    }
    if (!t->cloud || !t->ca || !t->password || !t->edge || !t->fogs)
        return fp_error_set(err, 0, "%s: no cloud, fog or edge in it", path);
    return 0;
}

/* Until the cloud's replication tasks put every image on every fog. */
static int wait_replicated(unsigned want, unsigned timeout_s, fp_error *err)
{
    for (unsigned i = 0; i < timeout_s * 2; i++) {
        json_t *doc;
        if (fp_context_get_json("/api/v1/replication", &doc, err) < 0) return -1;
        size_t k, done = 0;
        json_t *task, *tasks = json_object_get(doc, "tasks");
        json_array_foreach(tasks, k, task)
        {
            const char *state = json_string_value(json_object_get(task, "state"));
            if (state && !strcmp(state, "done")) done++;
        }
        size_t total = json_array_size(tasks);
        json_decref(doc);
        if (total >= want && done == total) return 0;
        sleep_ms(500);
    }
    return fp_error_set(err, 0, "replication not done after %u s (fogport replication status)",
                        timeout_s);
}

/* GET ref's manifest and blobs from a node's registry, as a client pulls. */
static int pull(const char *registry, const char *repo, const char *tag, const fp_http_opts *base,
                size_t *bytes, fp_error *err)
{
    static const char *const accept[] = {"Accept: application/vnd.oci.image.manifest.v1+json",
                                         NULL};
    fp_http_opts o = *base;
    o.headers = accept;
    char url[1024];
    snprintf(url, sizeof url, "%s/v2/%s/manifests/%s", registry, repo, tag);
    fp_http_response r;
    if (fp_http_registry_get(url, &o, &r, err) < 0) return -1;
    json_t *m = r.status == 200 ? json_loadb(r.body.data, r.body.len, 0, NULL) : NULL;
    *bytes = r.body.len;
    long status = r.status;
    fp_http_response_free(&r);
    if (!m) return fp_error_set(err, 0, "GET %s: HTTP %ld", url, status);
    json_t *blobs = json_array();
    json_array_append(blobs, json_object_get(m, "config"));
    json_array_extend(blobs, json_object_get(m, "layers"));
    json_decref(m);
    size_t i;
    json_t *d;
    int rc = 0;
    json_array_foreach(blobs, i, d)
    {
        snprintf(url, sizeof url, "%s/v2/%s/blobs/%s", registry, repo,
                 json_string_value(json_object_get(d, "digest")));
        if (fp_http_registry_get(url, base, &r, err) < 0) {
            rc = -1;
            break;
        }
        if (r.status != 200) rc = fp_error_set(err, 0, "GET %s: HTTP %ld", url, r.status);
        *bytes += r.body.len;
        fp_http_response_free(&r);
        if (rc < 0) break;
    }
    json_decref(blobs);
    return rc;
}

/* The definitions: web_service on every fog, iot_service on the edge,
 * monitoring_service on fog-1 polling the web_services. */
static int deploy(const struct topo *t)
{
    for (unsigned i = 0; i < t->fogs; i++) {
        char name[32], node[16], port[8];
        snprintf(name, sizeof name, "web_service-%u", i + 1);
        snprintf(node, sizeof node, "fog-%u", i + 1);
        snprintf(port, sizeof port, "%u", WEB_PORT_BASE + i + 1);
        step("running %s on %s, always-on (port %s, 64M memory, 0.5 CPU, 64 pids)", name, node,
             port);
        const char *const argv[] = {
            "service",  "create", name,          "--image", "web_service:latest",
            "--node",   node,     "--always-on", "--port",  port,
            "--memory", "64M",    "--cpus",      "0.5",     "--pids",
            "64",       "--cmd",  "httpd",       "--cmd",   "-f",
            "--cmd",    "-p",     "--cmd",       port,      "--cmd",
            "-h",       "--cmd",  "/www",        NULL};
        if (run_cmd(fp_cmd_service, argv) != 0) return 1;
    }
    char sensor[64];
    snprintf(sensor, sizeof sensor, "SENSOR_ID=%s", t->edge);
    step("running iot_service on %s (a reading every 2 s in its log)", t->edge);
    const char *const iot[] = {
        "service", "create", "iot_service", "--image",    "iot_service:1.0", "--node", t->edge,
        "--env",   sensor,   "--env",       "INTERVAL=2", "--memory",        "32M",    "--cpus",
        "0.25",    "--pids", "32",          NULL};
    if (run_cmd(fp_cmd_service, iot) != 0) return 1;
    static const char *const head[] = {"service",
                                       "create",
                                       "monitoring_service",
                                       "--image",
                                       "monitoring_service:1.0",
                                       "--node",
                                       "fog-1",
                                       "--env",
                                       "INTERVAL=3",
                                       "--memory",
                                       "32M",
                                       "--cpus",
                                       "0.25",
                                       "--pids",
                                       "32",
                                       "--cmd",
                                       "/srv/monitor.sh"};
    const char *mon[sizeof head / sizeof *head + 2 * 64 + 1];
    size_t n = 0;
    for (; n < sizeof head / sizeof *head; n++)
        mon[n] = head[n];
    char urls[64][64];
    cleanup_buf fp_buf list = FP_BUF_INIT;
    for (unsigned i = 0; i < t->fogs; i++) {
        snprintf(urls[i], sizeof urls[i], "http://%s:%u/", t->fog_addr[i], WEB_PORT_BASE + i + 1);
        mon[n++] = "--cmd";
        mon[n++] = urls[i];
        fp_buf_printf(&list, " %s", urls[i]);
    }
    mon[n] = NULL;
    step("running monitoring_service on fog-1, polling%s", list.data);
    return run_cmd(fp_cmd_service, mon) != 0;
}

/* Until every instance runs and each web_service serves its page. */
static int wait_running(size_t want, unsigned timeout_s, fp_error *err)
{
    fp_http_opts plain = {.timeout_s = 3, .connect_timeout_s = 2};
    for (unsigned i = 0; i < timeout_s * 2; i++) {
        json_t *doc;
        if (fp_context_get_json("/api/v1/instances", &doc, err) < 0) return -1;
        size_t k, running = 0, answering = 0, webs = 0;
        json_t *in;
        json_array_foreach(json_object_get(doc, "instances"), k, in)
        {
            const char *svc = json_string_value(json_object_get(in, "service"));
            const char *state = json_string_value(json_object_get(in, "state"));
            const char *ep = json_string_value(json_object_get(in, "endpoint"));
            if (!state || strcmp(state, "running") != 0) continue;
            running++;
            if (!svc || strncmp(svc, "web_service", 11) != 0 || !ep) continue;
            webs++;
            fp_http_response r;
            fp_error ignored;
            if (fp_http_get(ep, &plain, &r, &ignored) == 0) {
                if (r.status == 200 && r.body.data && strstr(r.body.data, "<h1>web_service</h1>"))
                    answering++;
                fp_http_response_free(&r);
            }
        }
        json_decref(doc);
        if (running >= want && webs && answering == webs) return 0;
        sleep_ms(500);
    }
    return fp_error_set(err, 0, "not every instance runs and answers after %u s", timeout_s);
}

/* Each web_service's page, fetched from this host. */
static void print_pages(void)
{
    json_t *doc;
    fp_error err;
    if (fp_context_get_json("/api/v1/instances", &doc, &err) < 0) return;
    fp_http_opts plain = {.timeout_s = 3};
    size_t k;
    json_t *in;
    json_array_foreach(json_object_get(doc, "instances"), k, in)
    {
        const char *svc = json_string_value(json_object_get(in, "service"));
        const char *ep = json_string_value(json_object_get(in, "endpoint"));
        if (!svc || strncmp(svc, "web_service", 11) != 0 || !ep) continue;
        fp_http_response r;
        if (fp_http_get(ep, &plain, &r, &err) < 0) continue;
        const char *h1 = r.body.data ? strstr(r.body.data, "<h1>") : NULL;
        const char *end = h1 ? strstr(h1, "</p>") : NULL;
        printf("  %-16s %-28s HTTP %ld %.*s\n", svc, ep, r.status, end ? (int)(end + 4 - h1) : 0,
               h1 ? h1 : "");
        fp_http_response_free(&r);
    }
    json_decref(doc);
    fflush(stdout);
}

static int demo(const char *dir, unsigned fogs, fp_sbnet *net, const fp_demo_images *imgs)
{
    fp_error err;
    struct topo t;
    if (load_topo(dir, &t, &err) < 0) return fp_cli_fail(&err);
    int rc = 1;
    char client[4096], userpwd[256];
    snprintf(client, sizeof client, "%s/client.json", dir);
    setenv("FOGPORT_CONFIG", client, 1);
    /* the nodes are on this host: no proxy between the demo and them */
    setenv("no_proxy", "*", 1);
    snprintf(userpwd, sizeof userpwd, "admin:%s", t.password);
    fp_http_opts admin = {.cacert = t.ca, .userpwd = userpwd, .timeout_s = 60};

    step("registering iot_service:1.0, monitoring_service:1.0, web_service:latest at the cloud "
         "(pushed over HTTPS with the admin's token)");
    if (fp_demo_images_push(imgs, t.cloud, &admin, &err) < 0) goto fail;
    step("registered services (fogport ls):");
    if (run_cmd(fp_cmd_ls, (const char *const[]){"ls", NULL}) != 0) goto out;

    step("replicating to every fog (rule: * * role:fog on-push)");
    if (wait_replicated(FP_DEMO_IMAGES * fogs, 120, &err) < 0) goto fail;
    run_cmd(fp_cmd_replication, (const char *const[]){"replication", "status", NULL});

    size_t bytes = 0;
    step("%s pulls iot_service:1.0 through its fog", t.edge);
    /* A fog learns of an edge that joined moments ago with its next sync
     * of the cloud's auth data ([node] revocation_interval, 2 s here):
     * until then it refuses the edge's credential, so the pull is retried
     * for a while. */
    for (int tries = 0; pull(t.edge_registry, "iot_service", "1.0", &admin, &bytes, &err) < 0;
         tries++) {
        if (tries == 20) goto fail;
        sleep(1);
    }
    step("%s served iot_service:1.0 (%zu bytes: manifest, config, layers)", t.edge, bytes);
    step("the federated catalog (fogport ls --all): every service and the nodes holding it");
    run_cmd(fp_cmd_ls, (const char *const[]){"ls", "--all", NULL});
    step("the nodes (fogport nodes):");
    run_cmd(fp_cmd_nodes, (const char *const[]){"nodes", NULL});

    if (!net || !fp_sandbox_containers_possible()) {
        step("services are not run: running them needs root and runc or crun (the nodes' "
             "agents are off)");
    } else {
        if (deploy(&t) != 0) goto out;
        step("waiting until every instance runs and each web_service answers (each agent "
             "pulls through its own registry)");
        if (wait_running(t.fogs + 2, 120, &err) < 0) {
            run_cmd(fp_cmd_ps, (const char *const[]){"ps", NULL});
            goto fail;
        }
        step("the instances (fogport ps):");
        run_cmd(fp_cmd_ps, (const char *const[]){"ps", NULL});
        step("every web_service answers (HTTP from this host):");
        print_pages();
    }
    step("dashboard: %s/ui/ (user admin; password in %s/topology.json, .admin.password)", t.cloud,
         dir);
    step("deployment running: FOGPORT_CONFIG=%s fogport ps; fogport sandbox down --dir %s "
         "stops it",
         client, dir);
    rc = 0;
    goto out;
fail:
    fp_cli_fail(&err);
out:
    if (rc != 0)
        fprintf(stderr, "fogport: demo failed; the node logs are in %s/*/serve.log\n", dir);
    json_decref(t.doc);
    return rc;
}

int fp_sandbox_demo(const char *dir, unsigned fogs, unsigned edges, fp_sbnet *net, bool etcd,
                    const char *busybox)
{
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!fogs || !edges)
        return fp_cli_usage_error("sandbox", "--demo needs at least one fog and one edge");
    fp_demo_images imgs;
    fp_error err;
    step("building the paper's service images (a static busybox and each service's files)");
    if (fp_demo_images_build(&imgs, busybox, &err) < 0) return fp_cli_fail(&err);
    for (size_t i = 0; i < FP_DEMO_IMAGES; i++)
        printf("  %s:%s %s\n", imgs.image[i].repo, imgs.image[i].tag,
               imgs.image[i].manifest.digest);
    if (net)
        step("starting the sandbox: a cloud, %u fogs and %u edge(s), each its own host on a "
             "bridge (uplink %u Mbit/s, fog to fog %u Mbit/s)",
             fogs, edges, net->uplink_mbit, net->peer_mbit);
    else
        step("starting the sandbox: a cloud, %u fogs and %u edge(s) on loopback ports", fogs,
             edges);
    fflush(stdout);
    int rc = fp_sandbox_up(dir, fogs, edges, net, etcd, NULL);
    if (rc == 0) {
        rc = demo(dir, fogs, net, &imgs);
        /* a half-done demo is not left running */
        if (rc != 0) fp_sandbox_down(dir);
    }
    fp_demo_images_free(&imgs);
    return rc;
}
