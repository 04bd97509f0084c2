/* The sandbox's network namespaces, bridge, veths and traffic shaping (see
 * sandbox_net.h). iproute2 does the kernel work: it is everywhere network
 * namespaces are, and its error messages are the ones an operator knows. */
#include "cli/sandbox_net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"

#define NETNS_RUN "/run/netns"

/* iproute2 lives in sbin, which a non-login shell's PATH may lack */
static const char *tool(const char *name, char *buf, size_t len)
{
    static const char *const dirs[] = {"/usr/sbin", "/sbin", "/usr/bin", "/bin"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        snprintf(buf, len, "%s/%s", dirs[i], name);
        if (access(buf, X_OK) == 0) return buf;
    }
    return name; /* execvp searches PATH */
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run argv (no shell). 0 when it exits 0; otherwise an error naming the
 * command with what it printed on stderr. quiet: stderr is discarded and no
 * error is set (teardown, where "already gone" is fine). */
static int run(const char *const *argv, bool quiet, fp_error *err)
{
    char path[64];
    const char *exe = tool(argv[0], path, sizeof path);
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return quiet ? -1 : fp_error_set(err, errno, "pipe for %s", argv[0]);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return quiet ? -1 : fp_error_set(err, errno, "fork for %s", argv[0]);
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null >= 0) {
            dup2(null, STDIN_FILENO);
            dup2(null, STDOUT_FILENO);
        }
        dup2(quiet && null >= 0 ? null : pfd[1], STDERR_FILENO);
        execvp(exe, (char *const *)argv);
        dprintf(STDERR_FILENO, "cannot run %s: %s", exe, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    char out[300], drain[256];
    size_t n = 0;
    for (;;) {
        ssize_t k = n < sizeof out - 1 ? read(pfd[0], out + n, sizeof out - 1 - n)
                                       : read(pfd[0], drain, sizeof drain);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        if (n < sizeof out - 1) n += (size_t)k;
    }
    close(pfd[0]);
    out[n] = '\0';
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return quiet ? -1 : fp_error_set(err, errno, "wait for %s", argv[0]);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return 0;
    if (quiet) return -1;
    cleanup_buf fp_buf cmd = FP_BUF_INIT;
    for (size_t i = 0; argv[i]; i++)
        fp_buf_printf(&cmd, "%s%s", i ? " " : "", argv[i]);
    return fp_error_set(err, 0, "%s: %s", cmd.data,
                        n ? out : (WIFEXITED(status) ? "failed" : "killed by a signal"));
}

#define RUN(err, ...)  run((const char *const[]){__VA_ARGS__, NULL}, false, err)
#define RUN_QUIET(...) run((const char *const[]){__VA_ARGS__, NULL}, true, NULL)

int fp_sbnet_check(fp_error *err)
{
    if (geteuid() != 0)
        return fp_error_set(err, 0,
                            "sandbox --netns needs root (it creates network namespaces, a "
                            "bridge, veth pairs and tc qdiscs)");
    char path[64];
    if (tool("ip", path, sizeof path)[0] != '/' || tool("tc", path, sizeof path)[0] != '/')
        return fp_error_set(err, 0,
                            "sandbox --netns needs iproute2 (ip and tc): apt-get install iproute2");
    if (RUN(err, "ip", "netns", "list") < 0)
        return fp_error_prefix(err, "network namespaces are not available");
    return 0;
}

/* ------------------------------------------------------------ choosing */

struct net4 {
    uint32_t addr, mask; /* host byte order */
};

/* Every IPv4 network this host has an address in or a route to (the
 * default route aside): a sandbox /24 must overlap none of them, or nodes
 * would shadow real hosts. Other sandboxes' bridges are among them. */
static size_t taken_networks(struct net4 *out, size_t max)
{
    size_t n = 0;
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i && n < max; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !i->ifa_netmask) continue;
            uint32_t a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
            uint32_t m = ntohl(((struct sockaddr_in *)i->ifa_netmask)->sin_addr.s_addr);
            out[n++] = (struct net4){a & m, m};
        }
        freeifaddrs(ifs);
    }
    /* /proc/net/route: Iface Destination Gateway Flags RefCnt Use Metric
     * Mask ..., addresses as the hex of the network-order word */
    cleanup_fclose FILE *f = fopen("/proc/net/route", "re");
    char line[512];
    while (f && n < max && fgets(line, sizeof line, f)) {
        char ifname[64];
        unsigned dst, gw, flags, refcnt, use, metric, mask;
        if (sscanf(line, "%63s %x %x %x %u %u %u %x", ifname, &dst, &gw, &flags, &refcnt, &use,
                   &metric, &mask) != 8 ||
            !mask)
            continue;
        out[n++] = (struct net4){ntohl(dst) & ntohl(mask), ntohl(mask)};
    }
    return n;
}

static bool overlaps(const struct net4 *taken, size_t n, uint32_t net, uint32_t mask)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t m = taken[i].mask & mask; /* the wider of the two */
        if ((taken[i].addr & m) == (net & m)) return true;
    }
    return false;
}

static bool id_in_use(const char *id)
{
    char path[128], prefix[16];
    snprintf(path, sizeof path, "/sys/class/net/fpb-%s", id);
    if (access(path, F_OK) == 0) return true;
    snprintf(prefix, sizeof prefix, "fp-%s-", id);
    DIR *d = opendir(NETNS_RUN);
    bool used = false;
    struct dirent *e;
    while (d && !used && (e = readdir(d)))
        used = !strncmp(e->d_name, prefix, strlen(prefix));
    if (d) closedir(d);
    return used;
}

static int record(const fp_sbnet *net, const char *dir, fp_error *err)
{
    json_t *j = fp_sbnet_json(net);
    cleanup_free char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    if (!text) return fp_error_set(err, ENOMEM, "netns.json");
    char path[4096];
    snprintf(path, sizeof path, "%s/netns.json", dir);
    return fp_write_file_atomic(path, text, strlen(text), 0600, err);
}

int fp_sbnet_create(fp_sbnet *net, const char *dir, fp_error *err)
{
    /* two `sandbox up`s at once must not pick the same /24: the choice and
     * the bridge address that claims it happen under one host-wide lock */
    cleanup_close int lock =
        open("/run/fogport-sandbox-net.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock >= 0)
        while (flock(lock, LOCK_EX) < 0 && errno == EINTR) {
        }
    unsigned char raw[3];
    for (int tries = 0;; tries++) {
        fp_random_bytes(raw, sizeof raw);
        snprintf(net->id, sizeof net->id, "%02x%02x%02x", raw[0], raw[1], raw[2]);
        if (!id_in_use(net->id)) break;
        if (tries > 20) return fp_error_set(err, EEXIST, "no unused sandbox network id");
    }
    snprintf(net->bridge, sizeof net->bridge, "fpb-%s", net->id);
    /* the same directory prefers the same /24 (stable addresses across
     * up/down), the rest is first free */
    uint32_t h = 2166136261u;
    for (const char *p = dir; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    static const uint32_t ranges[] = {0x0AD40000u /* 10.212/16 */, 0xAC1E0000u /* 172.30/16 */};
    struct net4 taken[512];
    size_t ntaken = taken_networks(taken, sizeof taken / sizeof *taken);
    uint32_t chosen = 0;
    for (size_t r = 0; r < 2 && !chosen; r++)
        for (uint32_t k = 0; k < 254 && !chosen; k++) {
            uint32_t cand = ranges[r] | ((1 + (h + k) % 254) << 8);
            if (!overlaps(taken, ntaken, cand, 0xFFFFFF00u)) chosen = cand;
        }
    if (!chosen)
        return fp_error_set(err, EADDRINUSE,
                            "no free /24 in 10.212.0.0/16 or 172.30.0.0/16 for the sandbox");
    snprintf(net->prefix, sizeof net->prefix, "%u.%u.%u", chosen >> 24, (chosen >> 16) & 255,
             (chosen >> 8) & 255);
    snprintf(net->gateway, sizeof net->gateway, "%s.1", net->prefix);
    /* recorded before anything exists: whatever follows, down finds it */
    if (record(net, dir, err) < 0) return -1;
    char cidr[32];
    snprintf(cidr, sizeof cidr, "%s/24", net->gateway);
    if (RUN(err, "ip", "link", "add", net->bridge, "type", "bridge") < 0 ||
        RUN(err, "ip", "addr", "add", cidr, "dev", net->bridge) < 0 ||
        RUN(err, "ip", "link", "set", net->bridge, "up") < 0)
        return -1;
    return 0;
}

/* ------------------------------------------------------------ nodes */

void fp_sbnet_node_names(const fp_sbnet *net, size_t index, const char *node_id, char *ns,
                         size_t nslen, char *addr, size_t addrlen)
{
    if (ns) snprintf(ns, nslen, "fp-%s-%s", net->id, node_id);
    if (addr) snprintf(addr, addrlen, "%s.%zu", net->prefix, index + 2);
}

int fp_sbnet_add_node(const fp_sbnet *net, size_t index, const char *node_id, fp_error *err)
{
    if (index >= FP_SBNET_MAX_NODES) return fp_error_set(err, ERANGE, "too many nodes");
    char ns[96], addr[24], cidr[32], veth[16];
    fp_sbnet_node_names(net, index, node_id, ns, sizeof ns, addr, sizeof addr);
    snprintf(cidr, sizeof cidr, "%s/24", addr);
    snprintf(veth, sizeof veth, "fpv-%s-%zu", net->id, index);
    /* the inner end is born in the namespace as eth0: each node is a host
     * with one network card */
    if (RUN(err, "ip", "netns", "add", ns) < 0 ||
        RUN(err, "ip", "-n", ns, "link", "set", "lo", "up") < 0 ||
        RUN(err, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns) <
            0 ||
        RUN(err, "ip", "link", "set", veth, "master", net->bridge) < 0 ||
        RUN(err, "ip", "link", "set", veth, "up") < 0 ||
        RUN(err, "ip", "-n", ns, "addr", "add", cidr, "dev", "eth0") < 0 ||
        RUN(err, "ip", "-n", ns, "link", "set", "eth0", "up") < 0 ||
        /* the host's other addresses are reachable through the gateway */
        RUN(err, "ip", "-n", ns, "route", "add", "default", "via", net->gateway) < 0)
        return fp_error_prefix(err, "node %s", node_id);
    return 0;
}

/* A burst of 4 ms at the rate, at least 32 KiB: enough for the timer
 * granularity, small enough that a short transfer cannot outrun the rate. */
static void burst_of(unsigned mbit, char *buf, size_t len)
{
    unsigned long bytes = (unsigned long)mbit * 1000000ul / 8 / 250;
    snprintf(buf, len, "%lu", bytes < 32768 ? 32768ul : bytes);
}

int fp_sbnet_shape_all(const fp_sbnet *net, size_t index, const char *node_id, unsigned mbit,
                       fp_error *err)
{
    char ns[96], rate[32], burst[32];
    fp_sbnet_node_names(net, index, node_id, ns, sizeof ns, NULL, 0);
    snprintf(rate, sizeof rate, "%umbit", mbit);
    burst_of(mbit, burst, sizeof burst);
    if (RUN(err, "tc", "-n", ns, "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate,
            "burst", burst, "latency", "50ms") < 0)
        return fp_error_prefix(err, "shape %s", node_id);
    return 0;
}

int fp_sbnet_shape_peers(const fp_sbnet *net, size_t index, const char *node_id,
                         const char *const *peers, size_t npeers, unsigned mbit, fp_error *err)
{
    char ns[96], rate[32], burst[32];
    fp_sbnet_node_names(net, index, node_id, ns, sizeof ns, NULL, 0);
    snprintf(rate, sizeof rate, "%umbit", mbit);
    burst_of(mbit, burst, sizeof burst);
    /* unclassified traffic (to the cloud, the host, edges) goes out
     * directly, unshaped (htb default 0) */
    if (RUN(err, "tc", "-n", ns, "qdisc", "replace", "dev", "eth0", "root", "handle", "1:", "htb",
            "default", "0") < 0)
        return fp_error_prefix(err, "shape %s", node_id);
    for (size_t i = 0; i < npeers; i++) {
        char classid[16], dst[32];
        snprintf(classid, sizeof classid, "1:%zx", i + 1);
        snprintf(dst, sizeof dst, "%s/32", peers[i]);
        /* a fixed quantum: the default (rate / 10) is out of range at
         * these rates and the kernel would complain */
        if (RUN(err, "tc", "-n", ns, "class", "add", "dev", "eth0", "parent", "1:", "classid",
                classid, "htb", "rate", rate, "ceil", rate, "burst", burst, "cburst", burst,
                "quantum", "60000") < 0 ||
            RUN(err, "tc", "-n", ns, "filter", "add", "dev", "eth0", "parent", "1:", "protocol",
                "ip", "prio", "1", "u32", "match", "ip", "dst", dst, "flowid", classid) < 0)
            return fp_error_prefix(err, "shape %s toward %s", node_id, peers[i]);
    }
    return 0;
}

int fp_sbnet_enter(const char *ns)
{
    char path[256];
    snprintf(path, sizeof path, NETNS_RUN "/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = setns(fd, CLONE_NEWNET);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

json_t *fp_sbnet_json(const fp_sbnet *net)
{
    char subnet[32];
    snprintf(subnet, sizeof subnet, "%s.0/24", net->prefix);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "id", net->id, "bridge", net->bridge,
                     "subnet", subnet, "gateway", net->gateway, "port", (json_int_t)FP_SBNET_PORT,
                     "uplink_mbit", (json_int_t)net->uplink_mbit, "peer_mbit",
                     (json_int_t)net->peer_mbit);
}

/* ------------------------------------------------------------ teardown */

/* Processes whose network namespace is the one bound at nspath (what `ip
 * netns pids` finds): TERM, up to 5 s, then KILL. A zombie has no
 * namespace any more and is not found. */
static void kill_namespace(const char *nspath)
{
    struct stat ns;
    if (stat(nspath, &ns) < 0) return;
    for (int round = 0; round < 2; round++) {
        bool any = true;
        for (int t = 0; t < (round ? 40 : 100) && any; t++) {
            any = false;
            DIR *d = opendir("/proc");
            struct dirent *e;
            while (d && (e = readdir(d))) {
                char *end;
                long pid = strtol(e->d_name, &end, 10);
                if (*end || pid <= 1 || pid == getpid()) continue;
                char p[64];
                struct stat st;
                snprintf(p, sizeof p, "/proc/%ld/ns/net", pid);
                if (stat(p, &st) < 0 || st.st_dev != ns.st_dev || st.st_ino != ns.st_ino) continue;
                any = true;
                if (t == 0) kill((pid_t)pid, round ? SIGKILL : SIGTERM);
                waitpid((pid_t)pid, NULL, WNOHANG); /* ours after a failed up */
            }
            if (d) closedir(d);
            if (any) sleep_ms(50);
        }
        if (!any) return;
    }
}

static void remove_with_prefix(const char *where, const char *prefix, bool netns)
{
    DIR *d = opendir(where);
    if (!d) return;
    struct dirent *e;
    size_t pl = strlen(prefix);
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, pl)) continue;
        if (netns) {
            char path[512];
            snprintf(path, sizeof path, "%s/%s", where, e->d_name);
            kill_namespace(path);
            RUN_QUIET("ip", "netns", "delete", e->d_name);
        } else {
            /* one end of a veth takes the other with it */
            RUN_QUIET("ip", "link", "delete", e->d_name);
        }
    }
    closedir(d);
}

bool fp_sbnet_recorded(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/netns.json", dir);
    return access(path, F_OK) == 0;
}

bool fp_sbnet_destroy(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/netns.json", dir);
    json_t *j = json_load_file(path, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    bool valid = id && strlen(id) == 6 && strspn(id, "0123456789abcdef") == 6;
    if (valid) {
        char prefix[32], bridge[32];
        /* processes first (a namespace lives on while one is in it), then
         * the veths (deleted at once: a namespace's own devices go only
         * when the kernel gets round to it), the namespaces, the bridge */
        snprintf(prefix, sizeof prefix, "fp-%s-", id);
        DIR *d = opendir(NETNS_RUN);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            char nspath[512];
            snprintf(nspath, sizeof nspath, NETNS_RUN "/%s", e->d_name);
            if (!strncmp(e->d_name, prefix, strlen(prefix))) kill_namespace(nspath);
        }
        if (d) closedir(d);
        snprintf(prefix, sizeof prefix, "fpv-%s-", id);
        remove_with_prefix("/sys/class/net", prefix, false);
        snprintf(prefix, sizeof prefix, "fp-%s-", id);
        remove_with_prefix(NETNS_RUN, prefix, true);
        char sysfs[64];
        snprintf(bridge, sizeof bridge, "fpb-%s", id);
        snprintf(sysfs, sizeof sysfs, "/sys/class/net/%s", bridge);
        if (access(sysfs, F_OK) == 0) RUN_QUIET("ip", "link", "delete", bridge);
    }
    json_decref(j);
    /* a record without a usable id names nothing to remove */
    bool had = access(path, F_OK) == 0;
    unlink(path);
    return had;
}
