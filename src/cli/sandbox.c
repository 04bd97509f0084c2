/* fogport sandbox up|down: a whole deployment on this machine, as kind or
 * k3d are for Kubernetes. A cloud, N fogs and M edges run as separate
 * `fogport serve` processes on loopback ports, each with its own data
 * directory; the sandbox makes the deployment CA, an admin user and an
 * access policy, gives each fog and edge a one-time join token, waits until
 * every node answers, and describes it all in DIR/topology.json (and an
 * admin client context in DIR/client.json). `down` stops what `up` started.
 * With --netns every node is its own host instead: a network namespace with
 * its own address on a bridge, links shaped with tc (sandbox_net.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "auth/htpasswd.h"
#include "auth/jwt.h"
#include "auth/nodes.h"
#include "auth/pki.h"
#include "cli/cli.h"
#include "cli/demo_images.h"
#include "cli/sandbox.h"
#include "cli/sandbox_etcd.h"
#include "cli/sandbox_net.h"
#include "cli/sandbox_proc.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"
#include "core/http_client.h"

static const char default_policy[] =
    "# fogport sandbox access policy: WHO REPOSITORIES ACTIONS\n"
    "user:admin   *          pull,push,delete,catalog\n"
    "role:fog     {self}/*   pull,push   # a fog registers its own services\n"
    "role:fog     *          pull\n"
    "role:edge    *          pull\n";

static const char default_replication[] =
    "# fogport sandbox replication: REPOSITORIES TAGS TARGETS [on-push | every DURATION]\n"
    "*   *   role:fog   on-push   # every registered service to every fog\n";

const char fp_help_sandbox[] =
    "usage: fogport sandbox up --dir DIR [--fogs N] [--edges M]\n"
    "                         [--netns [--uplink-mbit N] [--peer-mbit M]] [--etcd] [--demo]\n"
    "                         [--edge-binary PATH]\n"
    "       fogport sandbox down --dir DIR\n"
    "       fogport sandbox images --out DIR [--busybox PATH]\n\n"
    "Start a whole deployment on this machine: a cloud, N fogs (default 3) and M\n"
    "edges (default 1), each a separate `fogport serve` on a loopback port with its\n"
    "own data directory and certificate, joined to the cloud. Returns once every\n"
    "node answers; DIR/topology.json describes it, DIR/client.json holds the\n"
    "admin's context (FOGPORT_CONFIG=DIR/client.json). `down` stops it all.\n\n"
    "  --netns          every node its own host (root): a network namespace with\n"
    "                   its own address on a bridge of the host, port 5000\n"
    "  --uplink-mbit N  the cloud sends at most N Mbit/s (tbf on its interface)\n"
    "  --peer-mbit M    each fog sends to each other fog at most M Mbit/s (an htb\n"
    "                   class per destination); other traffic is not shaped\n"
    "  --etcd           an etcd cluster among the fogs (a member on each of the\n"
    "                   first three): they hand always-on services over among\n"
    "                   themselves while the cloud is away ([control] etcd)\n"
    "  --demo           the paper's main job: register its three services at the\n"
    "                   cloud, list them, replicate them to every fog, pull one\n"
    "                   on the edge through its fog and, with root and runc or\n"
    "                   crun (then --netns, uplink 100 and fog to fog 1000\n"
    "                   Mbit/s, unless given), run them; returns once they run.\n"
    "                   FOGPORT_SANDBOX_LOOPBACK=1 keeps loopback ports, agents off\n"
    "  --edge-binary P  edges run the fogport at P, the others this one: for\n"
    "                   example the static edge build (make edge)\n\n"
    "`images` writes the paper's three service images (iot_service:1.0,\n"
    "monitoring_service:1.0, web_service:latest, around a static busybox, default\n"
    "/bin/busybox from busybox-static) as an OCI image layout in DIR.\n\n"
    "examples:\n"
    "  fogport sandbox up --dir /tmp/sb --fogs 2 --edges 1\n"
    "  fogport sandbox up --dir /tmp/sb --netns --etcd\n"
    "  fogport sandbox up --dir /tmp/demo --demo\n"
    "  fogport sandbox down --dir /tmp/sb\n"
    "  fogport sandbox images --out /tmp/images\n";

static unsigned free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    unsigned port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* Start `binary serve --config conf` detached, logging to log; in network
 * namespace ns when not NULL. */
static pid_t spawn_node(const char *binary, const char *conf, const char *log, const char *ns)
{
    char *const argv[] = {"fogport", "serve", "--config", (char *)conf, NULL};
    return fp_sbproc_spawn(binary, argv, log, ns, NULL);
}

/* Wait until url answers at all (any HTTP status), up to timeout_s. */
static bool wait_ready(const char *url, const char *cacert, pid_t pid, unsigned timeout_s)
{
    fp_http_opts o = {.cacert = cacert, .timeout_s = 2};
    for (unsigned i = 0; i < timeout_s * 20; i++) {
        fp_http_response resp;
        fp_error err;
        if (fp_http_get(url, &o, &resp, &err) == 0) {
            fp_http_response_free(&resp);
            return true;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) return false; /* it died */
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Wait until the cloud's directory lists n nodes (itself included) that
 * have all reported, up to timeout_s. */
static bool wait_directory(const char *cloud, const char *cacert, const char *password, size_t n,
                           unsigned timeout_s)
{
    char url[128], userpwd[128];
    snprintf(url, sizeof url, "%s/api/v1/nodes", cloud);
    snprintf(userpwd, sizeof userpwd, "admin:%s", password);
    fp_http_opts o = {.cacert = cacert, .userpwd = userpwd, .timeout_s = 2};
    for (unsigned i = 0; i < timeout_s * 10; i++) {
        fp_http_response resp;
        fp_error err;
        size_t seen = 0;
        if (fp_http_get(url, &o, &resp, &err) == 0) {
            json_t *doc = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
            size_t k;
            json_t *node;
            json_array_foreach(json_object_get(doc, "nodes"), k, node)
            {
                const char *u = json_string_value(json_object_get(node, "url"));
                if (u && u[0] && json_integer_value(json_object_get(node, "last_seen")) > 0) seen++;
            }
            json_decref(doc);
            fp_http_response_free(&resp);
        }
        if (seen >= n) return true;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return false;
}

struct node_spec {
    char id[32];
    const char *role;
    const char *parent;
    unsigned port;
    pid_t pid;
    char addr[24]; /* its host: 127.0.0.1, or its own with --netns */
    char ns[96];   /* its network namespace (--netns) */
};

static int write_text(const char *path, const char *text, mode_t mode, fp_error *err)
{
    return fp_write_file_atomic(path, text, strlen(text), mode, err);
}

/* The network of a --netns sandbox: bridge, namespaces, veths, shaping. */
static int net_up(const char *dir, fp_sbnet *net, struct node_spec *nodes, size_t n)
{
    fp_error err;
    if (fp_sbnet_create(net, dir, &err) < 0) return fp_cli_fail(&err);
    for (size_t i = 0; i < n; i++) {
        fp_sbnet_node_names(net, i, nodes[i].id, nodes[i].ns, sizeof nodes[i].ns, nodes[i].addr,
                            sizeof nodes[i].addr);
        if (fp_sbnet_add_node(net, i, nodes[i].id, &err) < 0) return fp_cli_fail(&err);
    }
    if (net->uplink_mbit && fp_sbnet_shape_all(net, 0, nodes[0].id, net->uplink_mbit, &err) < 0)
        return fp_cli_fail(&err);
    for (size_t i = 0; net->peer_mbit && i < n; i++) {
        if (strcmp(nodes[i].role, "fog") != 0) continue;
        const char *peers[FP_SBNET_MAX_NODES];
        size_t np = 0;
        for (size_t k = 0; k < n; k++)
            if (k != i && !strcmp(nodes[k].role, "fog")) peers[np++] = nodes[k].addr;
        if (np && fp_sbnet_shape_peers(net, i, nodes[i].id, peers, np, net->peer_mbit, &err) < 0)
            return fp_cli_fail(&err);
    }
    printf("network  %s.0/24 on bridge %s (host %s)\n", net->prefix, net->bridge, net->gateway);
    return 0;
}

/* A node that joined before (a second `up` on the same directory) keeps its
 * identity, but its certificate must name its address of this run: with
 * --netns the address may differ. The sandbox holds the CA; it re-issues. */
static int reissue_node_cert(const char *ca, const struct node_spec *s, const char *ndir,
                             fp_error *err)
{
    char cred[4096], prefix[4096];
    snprintf(cred, sizeof cred, "%s/data/node/credential.json", ndir);
    if (access(cred, F_OK) != 0) return 0; /* it joins: the cloud signs its request */
    snprintf(prefix, sizeof prefix, "%s/data/node/tls", ndir);
    const char *ips[] = {s->addr}, *dns[] = {s->id};
    return fp_cert_issue(ca, s->id, dns, 1, ips, 1, 365, prefix, err);
}

bool fp_sandbox_containers_possible(void)
{
    const char *loopback = getenv("FOGPORT_SANDBOX_LOOPBACK");
    if (loopback && loopback[0] && strcmp(loopback, "0") != 0) return false;
    if (geteuid() != 0) return false;
    const char *path = getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        char exe[4200];
        snprintf(exe, sizeof exe, "%s/runc", d);
        if (access(exe, X_OK) == 0) return true;
        snprintf(exe, sizeof exe, "%s/crun", d);
        if (access(exe, X_OK) == 0) return true;
    }
    return false;
}

/* --etcd: a member on each of the first fogs, before any fog starts. */
static int etcd_up(const char *dir, const struct node_spec *nodes, size_t n, bool netns,
                   char *endpoints, size_t len, json_t **record)
{
    fp_sbetcd_member m[FP_SBETCD_MAX];
    size_t nm = 0;
    for (size_t i = 0; i < n && nm < FP_SBETCD_MAX; i++) {
        if (strcmp(nodes[i].role, "fog") != 0) continue;
        m[nm] = (fp_sbetcd_member){.id = nodes[i].id,
                                   .addr = nodes[i].addr,
                                   .ns = netns ? nodes[i].ns : NULL,
                                   .client_port = netns ? 2379 : free_port(),
                                   .peer_port = netns ? 2380 : free_port()};
        nm++;
    }
    fp_error err;
    if (fp_sbetcd_up(dir, m, nm, endpoints, len, record, &err) < 0) return fp_cli_fail(&err);
    printf("etcd     %s\n", endpoints);
    return 0;
}

int fp_sandbox_up(const char *dir, unsigned fogs, unsigned edges, fp_sbnet *net, bool etcd,
                  const char *edge_binary)
{
    fp_error err;
    bool agents = fp_sandbox_containers_possible();
    char path[4096], ca[4096], cacert[4096];
    /* the nodes run this program, edges perhaps another build of it (the
     * static edge build); by absolute path, as they outlive this process */
    char self[4096], edge_bin[4096];
    ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sn <= 0) {
        fp_error_set(&err, errno, "readlink /proc/self/exe");
        return fp_cli_fail(&err);
    }
    self[sn] = '\0';
    if (!edge_binary) {
        snprintf(edge_bin, sizeof edge_bin, "%s", self);
    } else if (!realpath(edge_binary, edge_bin) || access(edge_bin, X_OK) != 0) {
        fprintf(stderr, "fogport: --edge-binary %s: %s\n", edge_binary, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/topology.json", dir);
    if (access(path, F_OK) == 0) {
        fprintf(stderr, "fogport: %s exists: a sandbox runs there (sandbox down first)\n", path);
        return 1;
    }
    if (fp_sbnet_recorded(dir)) {
        fprintf(stderr,
                "fogport: %s/netns.json exists: an earlier sandbox up did not finish "
                "(sandbox down first)\n",
                dir);
        return 1;
    }
    if (net && fp_sbnet_check(&err) < 0) return fp_cli_fail(&err);
    if (fp_mkdir_p(dir, 0700, &err) < 0) return fp_cli_fail(&err);
    snprintf(ca, sizeof ca, "%s/ca", dir);
    snprintf(cacert, sizeof cacert, "%s/ca/ca.crt", dir);
    if (access(cacert, F_OK) != 0 && fp_ca_init(ca, "fogport sandbox CA", &err) < 0)
        return fp_cli_fail(&err);
    /* the admin: a random password, kept only in topology.json (0600) */
    unsigned char raw[18];
    fp_random_bytes(raw, sizeof raw);
    cleanup_buf fp_buf pw = FP_BUF_INIT;
    fp_b64url_encode(raw, sizeof raw, &pw);
    char htpasswd[4096], policy[4096], replication[4096];
    snprintf(htpasswd, sizeof htpasswd, "%s/htpasswd", dir);
    snprintf(policy, sizeof policy, "%s/policy", dir);
    snprintf(replication, sizeof replication, "%s/replication", dir);
    if (fp_htpasswd_set(htpasswd, "admin", pw.data, false, &err) < 0 ||
        (access(policy, F_OK) != 0 && write_text(policy, default_policy, 0644, &err) < 0) ||
        (access(replication, F_OK) != 0 &&
         write_text(replication, default_replication, 0644, &err) < 0))
        return fp_cli_fail(&err);

    size_t n = 1 + fogs + edges;
    struct node_spec *nodes = calloc(n, sizeof *nodes);
    if (!nodes) return 1;
    snprintf(nodes[0].id, sizeof nodes[0].id, "cloud");
    nodes[0].role = "cloud";
    for (unsigned i = 0; i < fogs; i++) {
        snprintf(nodes[1 + i].id, sizeof nodes[1 + i].id, "fog-%u", i + 1);
        nodes[1 + i].role = "fog";
        nodes[1 + i].parent = "cloud";
    }
    for (unsigned i = 0; i < edges; i++) {
        struct node_spec *e = &nodes[1 + fogs + i];
        snprintf(e->id, sizeof e->id, "edge-%u", i + 1);
        e->role = "edge";
        e->parent = fogs ? nodes[1 + i % fogs].id : "cloud";
    }
    char cloud_url[64];
    int rc = 0;
    for (size_t i = 0; i < n; i++)
        snprintf(nodes[i].addr, sizeof nodes[i].addr, "127.0.0.1");
    /* with --netns: the bridge, a namespace per node, the shaping; all of
     * it before any node starts (a node's first heartbeat goes over it) */
    if (net && (rc = net_up(dir, net, nodes, n)) != 0) {
        free(nodes);
        fp_sbnet_destroy(dir); /* no node runs yet: the network is all */
        return rc;
    }
    char etcd_endpoints[1024] = "";
    json_t *etcd_record = NULL;
    if (etcd && fogs &&
        (rc = etcd_up(dir, nodes, n, net != NULL, etcd_endpoints, sizeof etcd_endpoints,
                      &etcd_record)) != 0) {
        free(nodes);
        fp_sbetcd_down(dir);
        fp_sbnet_destroy(dir);
        return rc;
    }
    json_t *list = json_array();
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct node_spec *s = &nodes[i];
        s->port = net ? FP_SBNET_PORT : free_port();
        char ndir[4096], conf[4096], log[4096], url[64];
        snprintf(ndir, sizeof ndir, "%s/%s", dir, s->id);
        snprintf(conf, sizeof conf, "%s/fogport.conf", ndir);
        snprintf(log, sizeof log, "%s/serve.log", ndir);
        snprintf(url, sizeof url, "https://%s:%u", s->addr, s->port);
        if (fp_mkdir_p(ndir, 0700, &err) < 0) {
            rc = fp_cli_fail(&err);
            break;
        }
        cleanup_buf fp_buf c = FP_BUF_INIT;
        if (i == 0) {
            snprintf(cloud_url, sizeof cloud_url, "%s", url);
            char crt[4096];
            snprintf(crt, sizeof crt, "%s/tls", ndir);
            const char *ips[] = {s->addr}, *dns[] = {"localhost", "cloud"};
            if (fp_cert_issue(ca, "cloud", dns, 2, ips, 1, 365, crt, &err) < 0) {
                rc = fp_cli_fail(&err);
                break;
            }
            /* Every node of a sandbox calls from 127.0.0.1: the per-address
             * failed-login limit must not let one revoked node (whose
             * polls now fail) lock the others out. */
            fp_buf_printf(
                &c,
                "[node]\nid = cloud\nrole = cloud\nca = %s\nurl = %s\n[server]\nlisten = "
                "%s:%u\n[storage]\ndata = %s/data\n[tls]\ncert = %s.crt\nkey = "
                "%s.key\n[auth]\nhtpasswd = %s\npolicy = %s\nlogin_failures = 1000\ntoken_realm = "
                "%s/auth/token\n[federation]\nreplication = %s\n[log]\naccess = true\n",
                ca, url, s->addr, s->port, ndir, crt, crt, htpasswd, policy, url, replication);
        } else {
            fp_nodes *db;
            char token[64], cdata[4096];
            snprintf(cdata, sizeof cdata, "%s/cloud/data", dir);
            if (fp_nodes_open(&db, cdata, &err) < 0 ||
                fp_nodes_token_create(db, s->role, s->id, 600, token, &err) < 0) {
                rc = fp_cli_fail(&err);
                break;
            }
            fp_nodes_close(db);
            /* an edge takes its content from its fog */
            char parent[96] = "";
            for (size_t k = 0; k < i; k++)
                if (!strcmp(s->role, "edge") && s->parent && !strcmp(nodes[k].id, s->parent))
                    snprintf(parent, sizeof parent, "parent = https://%s:%u\n", nodes[k].addr,
                             nodes[k].port);
            fp_buf_printf(&c,
                          "[node]\nid = %s\nrole = %s\ncloud = %s\njoin_token = %s\ncacert = "
                          "%s\nrevocation_interval = 2s\nurl = %s\n%s[server]\nlisten = "
                          "%s:%u\n[storage]\ndata = %s/data\n[federation]\nheartbeat = 2s\n",
                          s->id, s->role, cloud_url, token, cacert, url, parent, s->addr, s->port,
                          ndir);
            /* a fog issues tokens for its edges too, and each edge trusts
             * its parent's signer certificate (x5c) */
            cleanup_buf fp_buf children = FP_BUF_INIT;
            for (size_t k = 1 + fogs; k < n; k++)
                if (!strcmp(nodes[k].parent, s->id))
                    fp_buf_printf(&children, "%s%s", children.len ? "," : "", nodes[k].id);
            if (children.len) fp_buf_printf(&c, "[auth]\ntoken_audiences = %s\n", children.data);
            if (!strcmp(s->role, "edge") && strcmp(s->parent, "cloud") != 0)
                fp_buf_printf(&c, "[auth]\ntoken_signers = %s\n", s->parent);
            /* fogs and edges run services where containers can run */
            if (agents) fp_buf_printf(&c, "[agent]\nenabled = true\n");
            if (etcd_endpoints[0] && !strcmp(s->role, "fog"))
                fp_buf_printf(&c, "[control]\netcd = %s\n", etcd_endpoints);
        }
        if (write_text(conf, c.data, 0600, &err) < 0 ||
            (i > 0 && reissue_node_cert(ca, s, ndir, &err) < 0)) {
            rc = fp_cli_fail(&err);
            break;
        }
        const char *binary = strcmp(s->role, "edge") ? self : edge_bin;
        s->pid = spawn_node(binary, conf, log, net ? s->ns : NULL);
        char v2[96];
        snprintf(v2, sizeof v2, "%s/v2/", url);
        if (s->pid < 0 || !wait_ready(v2, cacert, s->pid, 20)) {
            fprintf(stderr, "fogport: node %s did not start; see %s\n", s->id, log);
            rc = 1;
        }
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s}", "id", s->id, "role",
                              s->role, "registry", url, "api", url, "pid", (json_int_t)s->pid,
                              "data", ndir, "config", conf, "binary", binary);
        if (s->parent) json_object_set_new(o, "parent", json_string(s->parent));
        json_object_set_new(o, "address", json_string(s->addr));
        if (net) json_object_set_new(o, "netns", json_string(s->ns));
        json_array_append_new(list, o);
        printf("%-8s %-6s %s (pid %d)\n", s->id, s->role, url, (int)s->pid);
    }
    /* ready means every node is in the cloud's directory, where the other
     * nodes find it */
    if (rc == 0 && !wait_directory(cloud_url, cacert, pw.data, n, 20)) {
        fprintf(stderr, "fogport: not every node reported to the cloud's directory\n");
        rc = 1;
    }
    json_t *top = json_pack("{s:s, s:{s:s, s:s}, s:o}", "ca", cacert, "admin", "user", "admin",
                            "password", pw.data, "nodes", list);
    if (net) json_object_set_new(top, "netns", fp_sbnet_json(net));
    if (etcd_record) json_object_set_new(top, "etcd", etcd_record);
    char *text = json_dumps(top, JSON_INDENT(2));
    json_decref(top);
    if (write_text(path, text, 0600, &err) < 0 && rc == 0) rc = fp_cli_fail(&err);
    free(text);
    json_t *client = json_pack("{s:s, s:s, s:s, s:s}", "cloud", cloud_url, "ca", cacert, "user",
                               "admin", "password", pw.data);
    text = json_dumps(client, JSON_INDENT(2));
    json_decref(client);
    snprintf(path, sizeof path, "%s/client.json", dir);
    write_text(path, text, 0600, &err);
    free(text);
    free(nodes);
    if (rc == 0)
        printf("sandbox up: %s/topology.json\n", dir);
    else /* what was started goes again; the logs stay */
        fp_sandbox_down(dir);
    return rc;
}

/* Is pid a fogport serve process (not a reused pid)? */
static bool is_fogport(pid_t pid)
{
    char cmd[512];
    return fp_sbproc_cmdline(pid, cmd, sizeof cmd) && strstr(cmd, "fogport") &&
           strstr(cmd, " serve ");
}

int fp_sandbox_down(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/topology.json", dir);
    json_error_t jerr;
    json_t *top = json_load_file(path, 0, &jerr);
    if (!top) {
        /* an `up` that died before it wrote topology.json: its network
         * (and any node in it) is all there is to remove */
        if (fp_sbetcd_down(dir) + fp_sbnet_destroy(dir) > 0) {
            printf("sandbox down: network removed (no topology.json)\n");
            return 0;
        }
        fprintf(stderr, "fogport: no sandbox in %s (%s)\n", dir, jerr.text);
        return 1;
    }
    size_t i;
    json_t *node;
    pid_t pids[256];
    size_t np = 0;
    json_array_foreach(json_object_get(top, "nodes"), i, node)
    {
        if (np < 256) pids[np++] = (pid_t)json_integer_value(json_object_get(node, "pid"));
    }
    json_decref(top);
    /* give them 10 s to finish their requests, then make sure */
    np = fp_sbproc_stop(pids, np, is_fogport, 10000);
    /* the services the agents ran outlive them by design: end them too */
    top = json_load_file(path, 0, &jerr);
    json_array_foreach(json_object_get(top, "nodes"), i, node)
    {
        const char *ndir = json_string_value(json_object_get(node, "data"));
        char data[4096];
        fp_error err;
        snprintf(data, sizeof data, "%s/data", ndir ? ndir : "");
        if (ndir && fp_agent_purge(data, &err) < 0)
            fprintf(stderr, "fogport: %s: %s\n", ndir, err.msg);
    }
    json_decref(top);
    fp_sbetcd_down(dir);
    fp_sbnet_destroy(dir);
    unlink(path);
    printf("sandbox down: %zu nodes stopped\n", np);
    return 0;
}

int fp_cmd_sandbox(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"fogs", required_argument, NULL, 'f'},
        {"edges", required_argument, NULL, 'e'},
        {"netns", no_argument, NULL, 'n'},
        {"uplink-mbit", required_argument, NULL, 'u'},
        {"peer-mbit", required_argument, NULL, 'p'},
        {"demo", no_argument, NULL, 'D'},
        {"out", required_argument, NULL, 'o'},
        {"busybox", required_argument, NULL, 'b'},
        {"etcd", no_argument, NULL, 'E'},
        {"edge-binary", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *out = NULL, *busybox = NULL, *edge_binary = NULL;
    unsigned fogs = 3, edges = 1;
    bool netns = false, demo = false, etcd = false;
    fp_sbnet net = {0};
    int c;
    while ((c = getopt_long(argc, argv, "d:f:e:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'f':
            fogs = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'e':
            edges = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'n':
            netns = true;
            break;
        case 'D':
            demo = true;
            break;
        case 'o':
            out = optarg;
            break;
        case 'b':
            busybox = optarg;
            break;
        case 'E':
            etcd = true;
            break;
        case 'B':
            edge_binary = optarg;
            break;
        case 'u':
        case 'p': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || !v || v > 100000 || optarg[0] == '-')
                return fp_cli_usage_error("sandbox", "--uplink-mbit and --peer-mbit take a rate "
                                                     "in Mbit/s, 1 to 100000");
            *(c == 'u' ? &net.uplink_mbit : &net.peer_mbit) = (unsigned)v;
            break;
        }
        case 'h':
            fp_cli_help("sandbox");
            return 0;
        default:
            return fp_cli_usage_error("sandbox", "unknown option");
        }
    }
    if (optind < argc && !strcmp(argv[optind], "images")) {
        if (!out) return fp_cli_usage_error("sandbox", "images needs --out DIR");
        fp_demo_images imgs;
        fp_error err;
        if (fp_demo_images_build(&imgs, busybox, &err) < 0) return fp_cli_fail(&err);
        int rc = fp_demo_images_write_layout(&imgs, out, &err);
        for (size_t i = 0; rc == 0 && i < FP_DEMO_IMAGES; i++)
            printf("%s:%s %s\n", imgs.image[i].repo, imgs.image[i].tag,
                   imgs.image[i].manifest.digest);
        fp_demo_images_free(&imgs);
        return rc < 0 ? fp_cli_fail(&err) : 0;
    }
    if (optind >= argc || !dir)
        return fp_cli_usage_error("sandbox", "expected up or down, and --dir DIR");
    if (fogs > 64 || edges > 64)
        return fp_cli_usage_error("sandbox", "at most 64 fogs and 64 edges");
    if (!netns && (net.uplink_mbit || net.peer_mbit))
        return fp_cli_usage_error("sandbox", "--uplink-mbit and --peer-mbit shape the links of "
                                             "--netns: give --netns too");
    char abs[4096];
    if (dir[0] != '/') {
        char cwd[2048];
        if (!getcwd(cwd, sizeof cwd)) return 1;
        snprintf(abs, sizeof abs, "%s/%s", cwd, dir);
        dir = abs;
    }
    if (!strcmp(argv[optind], "up") && demo) {
        /* services run where containers can, each node a host of its own
         * so every fog's web_service has its port to itself */
        if (!netns && fp_sandbox_containers_possible()) {
            netns = true;
            if (!net.uplink_mbit) net.uplink_mbit = 100;
            if (!net.peer_mbit) net.peer_mbit = 1000;
        }
        return fp_sandbox_demo(dir, fogs, edges, netns ? &net : NULL, etcd, busybox);
    }
    if (!strcmp(argv[optind], "up"))
        return fp_sandbox_up(dir, fogs, edges, netns ? &net : NULL, etcd, edge_binary);
    if (!strcmp(argv[optind], "down")) return fp_sandbox_down(dir);
    return fp_cli_usage_error("sandbox", "expected up, down or images");
}
