/* fogport ps: every instance of every service, as the agents reported it
 * to the cloud; fogport logs: a service's log, which the cloud fetches from
 * the node that runs it. */
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/spec.h"
#include "cli/cli.h"
#include "cli/context.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/http_client.h"

const char fp_help_ps[] =
    "usage: fogport ps [--json]\n\n"
    "Every service instance of the deployment: service, node, state (pending,\n"
    "pulling, starting, running, backoff, exited, failed, violated: stopped for\n"
    "its policy, see fogport violations), endpoint, image digest,\n"
    "CPU (share of one CPU), memory (current/limit), processes, restarts and OOM\n"
    "kills, as the nodes' agents last reported them to the cloud.\n\n"
    "example:\n"
    "  FOGPORT_CONFIG=/tmp/sb/client.json fogport ps\n";

void fp_cli_human_bytes(char *out, size_t n, long long bytes)
{
    if (bytes >= (1 << 30))
        snprintf(out, n, "%.1fG", (double)bytes / (1 << 30));
    else if (bytes >= (1 << 20))
        snprintf(out, n, "%.1fM", (double)bytes / (1 << 20));
    else
        snprintf(out, n, "%lldK", (long long)(bytes >> 10));
}

void fp_cli_usage_cells(const json_t *u, int decimals, const char *unit, char cpu[16], char mem[32],
                        char pids[16])
{
    if (!u) return; /* not running: the cells keep their "-" */
    snprintf(cpu, 16, "%.*f%s", decimals, 100 * json_number_value(json_object_get(u, "cpu")), unit);
    char cur[12], lim[12] = "-";
    fp_cli_human_bytes(cur, sizeof cur, json_integer_value(json_object_get(u, "memory")));
    if (json_integer_value(json_object_get(u, "memory_limit")))
        fp_cli_human_bytes(lim, sizeof lim, json_integer_value(json_object_get(u, "memory_limit")));
    snprintf(mem, 32, "%s/%s", cur, lim);
    snprintf(pids, 16, "%lld", (long long)json_integer_value(json_object_get(u, "pids")));
}

int fp_cmd_ps(int argc, char **argv)
{
    bool as_json;
    int rc = fp_cli_json_opts(argc, argv, "ps", &as_json);
    if (rc >= 0) return rc;
    json_t *doc;
    fp_error err;
    if (fp_context_get_json("/api/v1/instances", &doc, &err) < 0) return fp_cli_fail(&err);
    json_t *list = json_object_get(doc, "instances");
    if (as_json) {
        fp_cli_print_json(list);
        json_decref(doc);
        return 0;
    }
    printf("%-20s %-8s %-9s %-28s %-15s %6s %-15s %5s %4s %3s\n", "SERVICE", "NODE", "STATE",
           "ENDPOINT", "DIGEST", "CPU", "MEMORY", "PIDS", "REST", "OOM");
    size_t i;
    json_t *in;
    json_array_foreach(list, i, in)
    {
        const char *digest = json_string_value(json_object_get(in, "digest"));
        const char *ep = json_string_value(json_object_get(in, "endpoint"));
        char shortd[16] = "-", cpu[16] = "-", mem[32] = "-", pids[16] = "-";
        if (digest && strlen(digest) > 19) snprintf(shortd, sizeof shortd, "%.12s", digest + 7);
        fp_cli_usage_cells(json_object_get(in, "usage"), 0, "%", cpu, mem, pids);
        printf("%-20s %-8s %-9s %-28s %-15s %6s %-15s %5s %4lld %3lld\n",
               json_string_value(json_object_get(in, "service")),
               json_string_value(json_object_get(in, "node")),
               json_string_value(json_object_get(in, "state")), ep ? ep : "-", shortd, cpu, mem,
               pids, (long long)json_integer_value(json_object_get(in, "restarts")),
               (long long)json_integer_value(json_object_get(in, "oom_kills")));
    }
    json_decref(doc);
    return 0;
}

const char fp_help_logs[] =
    "usage: fogport logs SERVICE [--node NODE] [--tail BYTES]\n\n"
    "Print the end of a service's log (its standard output and error, as its\n"
    "node's agent captured them, each line stamped with the time). The cloud\n"
    "fetches it from the node (without --node: the first node that reports the\n"
    "service), for operators who may deploy the service's image.\n\n"
    "example:\n"
    "  fogport logs iot --node edge-1 --tail 2000\n";

int fp_cmd_logs(int argc, char **argv)
{
    static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
                                         {"tail", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *node = NULL, *tail = "65536";
    int c;
    while ((c = getopt_long(argc, argv, "n:t:h", opts, NULL)) != -1) {
        if (c == 'n')
            node = optarg;
        else if (c == 't')
            tail = optarg;
        else if (c == 'h') {
            fp_cli_help("logs");
            return 0;
        } else
            return fp_cli_usage_error("logs", "unknown option");
    }
    if (optind != argc - 1 || !fp_service_name_valid(argv[optind]))
        return fp_cli_usage_error("logs", "expected one SERVICE");
    fp_context ctx;
    fp_error err;
    int loaded = fp_context_load(&ctx, &err);
    if (loaded == 1) fp_error_set(&err, 0, "no client context: run fogport login first");
    if (loaded != 0) return fp_cli_fail(&err);
    cleanup_buf fp_buf url = FP_BUF_INIT;
    fp_buf_printf(&url, "%s/api/v1/logs/%s?tail=", ctx.cloud, argv[optind]);
    fp_buf_put_urlencoded(&url, tail);
    if (node) {
        fp_buf_puts(&url, "&node=");
        fp_buf_put_urlencoded(&url, node);
    }
    fp_http_opts o = {.userpwd = ctx.userpwd, .cacert = ctx.ca[0] ? ctx.ca : NULL, .timeout_s = 20};
    fp_http_response resp;
    int rc = fp_http_get(url.data, &o, &resp, &err);
    OPENSSL_cleanse(ctx.userpwd, sizeof ctx.userpwd);
    if (rc < 0) return fp_cli_fail(&err);
    if (resp.status != 200) {
        json_t *body = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
        const char *msg = json_string_value(
            json_object_get(json_array_get(json_object_get(body, "errors"), 0), "message"));
        fprintf(stderr, "fogport: logs %s: HTTP %ld%s%s\n", argv[optind], resp.status,
                msg ? ": " : "", msg ? msg : "");
        json_decref(body);
        fp_http_response_free(&resp);
        return 1;
    }
    if (resp.body.len) fwrite(resp.body.data, 1, resp.body.len, stdout);
    fp_http_response_free(&resp);
    return 0;
}
