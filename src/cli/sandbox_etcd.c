#include "cli/sandbox_etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "cli/sandbox_proc.h"
#include "core/buf.h"
#include "core/fs.h"
#include "core/http_client.h"

static pid_t spawn_member(const char *dir, const fp_sbetcd_member *m, const char *cluster)
{
    char data[4096], log[4096], name[64], client[128], peer[128];
    snprintf(data, sizeof data, "%s/etcd/%s", dir, m->id);
    snprintf(log, sizeof log, "%s/etcd/%s.log", dir, m->id);
    snprintf(name, sizeof name, "%s", m->id);
    snprintf(client, sizeof client, "http://%s:%u", m->addr, m->client_port);
    snprintf(peer, sizeof peer, "http://%s:%u", m->addr, m->peer_port);
    char *const argv[] = {"etcd",
                          "--name",
                          name,
                          "--data-dir",
                          data,
                          "--listen-client-urls",
                          client,
                          "--advertise-client-urls",
                          client,
                          "--listen-peer-urls",
                          peer,
                          "--initial-advertise-peer-urls",
                          peer,
                          "--initial-cluster",
                          (char *)cluster,
                          "--initial-cluster-token",
                          "fogport-sandbox",
                          "--initial-cluster-state",
                          "new",
                          NULL};
    return fp_sbproc_spawn("etcd", argv, log, m->ns, "install etcd-server");
}

static bool healthy(const char *client)
{
    char url[160];
    snprintf(url, sizeof url, "%s/health", client);
    fp_http_opts o = {.timeout_s = 2, .connect_timeout_s = 1};
    fp_http_response resp;
    fp_error err;
    if (fp_http_get(url, &o, &resp, &err) < 0) return false;
    json_t *j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
    bool ok = !strcmp(json_string_value(json_object_get(j, "health")) ?: "", "true");
    json_decref(j);
    fp_http_response_free(&resp);
    return ok;
}

int fp_sbetcd_up(const char *dir, const fp_sbetcd_member *m, size_t n, char *endpoints, size_t len,
                 json_t **record, fp_error *err)
{
    *record = NULL;
    endpoints[0] = '\0';
    if (!n || n > FP_SBETCD_MAX)
        return fp_error_set(err, 0, "etcd: 1 to %d members", FP_SBETCD_MAX);
    char path[4096];
    snprintf(path, sizeof path, "%s/etcd", dir);
    if (fp_mkdir_p(path, 0700, err) < 0) return -1;
    fp_buf cluster = FP_BUF_INIT, ends = FP_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        fp_buf_printf(&cluster, "%s%s=http://%s:%u", i ? "," : "", m[i].id, m[i].addr,
                      m[i].peer_port);
        fp_buf_printf(&ends, "%shttp://%s:%u", i ? "," : "", m[i].addr, m[i].client_port);
    }
    json_t *list = json_array();
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char data[4096];
        snprintf(data, sizeof data, "%s/etcd/%s", dir, m[i].id);
        fp_rm_rf(data); /* a fresh cluster: addresses change between runs */
        pid_t pid = spawn_member(dir, &m[i], cluster.data);
        char client[128];
        snprintf(client, sizeof client, "http://%s:%u", m[i].addr, m[i].client_port);
        json_array_append_new(list, json_pack("{s:s, s:I, s:s, s:s}", "id", m[i].id, "pid",
                                              (json_int_t)pid, "client", client, "data", data));
        if (pid < 0) rc = fp_error_set(err, errno, "etcd: fork");
    }
    /* DIR/etcd.json first: `down` stops what started, also when it failed */
    snprintf(path, sizeof path, "%s/etcd.json", dir);
    if (json_dump_file(list, path, JSON_INDENT(2)) < 0 && rc == 0)
        rc = fp_error_set(err, errno, "write %s", path);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        json_t *o = json_array_get(list, i);
        const char *client = json_string_value(json_object_get(o, "client"));
        pid_t pid = (pid_t)json_integer_value(json_object_get(o, "pid"));
        bool ok = false;
        for (int t = 0; t < 300 && !ok; t++) { /* up to 30 s: elections */
            ok = healthy(client);
            if (!ok && waitpid(pid, NULL, WNOHANG) == pid) break;
            if (!ok) nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
        }
        if (!ok)
            rc = fp_error_set(err, 0, "etcd member %s did not become healthy; see %s/etcd/%s.log",
                              m[i].id, dir, m[i].id);
    }
    if (rc == 0) snprintf(endpoints, len, "%s", ends.data);
    fp_buf_free(&cluster);
    fp_buf_free(&ends);
    if (rc == 0)
        *record = list;
    else
        json_decref(list);
    return rc;
}

static bool is_etcd(pid_t pid)
{
    char cmd[256];
    return fp_sbproc_cmdline(pid, cmd, sizeof cmd) && !strncmp(cmd, "etcd ", 5);
}

int fp_sbetcd_down(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/etcd.json", dir);
    json_t *list = json_load_file(path, 0, NULL);
    if (!list) return 0;
    pid_t pids[FP_SBETCD_MAX];
    size_t np = 0, i;
    json_t *o;
    json_array_foreach(list, i, o)
    {
        if (np < FP_SBETCD_MAX) pids[np++] = (pid_t)json_integer_value(json_object_get(o, "pid"));
    }
    json_decref(list);
    np = fp_sbproc_stop(pids, np, is_etcd, 5000);
    unlink(path);
    return (int)np;
}
