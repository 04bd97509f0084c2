/* fogport top: every instance on every node with its usage, live, from the
 * cloud's reports and usage history; fogport events: the state changes the
 * cloud saw in agents' reports, once or followed (Server-Sent Events). */
#include <getopt.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/context.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/http_client.h"

const char fp_help_top[] =
    "usage: fogport top [--once] [--interval SECONDS]\n\n"
    "Every service instance on every node with its state, CPU (share of one CPU,\n"
    "now and averaged over the last minute of the cloud's usage history), memory\n"
    "(current/limit), processes, restarts and OOM kills, refreshed every second\n"
    "(or every --interval seconds) until interrupted. --once prints one frame\n"
    "without clearing the screen, for scripts.\n\n"
    "example:\n"
    "  FOGPORT_CONFIG=/tmp/sb/client.json fogport top --once\n";

static const char *str_or(const json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* Mean CPU of service on node over the samples (those with usage). */
static bool mean_cpu(const json_t *samples, const char *service, const char *node, double *out)
{
    double sum = 0;
    size_t n = 0, i;
    json_t *s;
    json_array_foreach(samples, i, s)
    {
        json_t *cpu = json_object_get(s, "cpu");
        if (!json_is_number(cpu) || strcmp(str_or(s, "service", ""), service) != 0 ||
            strcmp(str_or(s, "node", ""), node) != 0)
            continue;
        sum += json_number_value(cpu);
        n++;
    }
    if (n) *out = sum / (double)n;
    return n > 0;
}

static int top_frame(bool clear)
{
    json_t *doc, *hist = NULL;
    fp_error err;
    if (fp_context_get_json("/api/v1/instances", &doc, &err) < 0) return fp_cli_fail(&err);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/usage?since=%lld", (long long)time(NULL) - 60);
    /* an older cloud without the history: the current values only */
    if (fp_context_get_json(path, &hist, &err) < 0) hist = NULL;
    json_t *samples = json_object_get(hist, "samples");
    if (clear) fputs("\033[H\033[2J", stdout);
    time_t now = time(NULL);
    char when[16];
    strftime(when, sizeof when, "%H:%M:%S", localtime(&now));
    json_t *list = json_object_get(doc, "instances");
    printf("fogport top - %s - %zu instances\n\n", when, json_array_size(list));
    printf("%-20s %-10s %-9s %6s %6s %-15s %5s %8s %4s\n", "SERVICE", "NODE", "STATE", "CPU%",
           "1MIN", "MEM/LIMIT", "PIDS", "RESTARTS", "OOM");
    size_t i;
    json_t *in;
    json_array_foreach(list, i, in)
    {
        const char *service = str_or(in, "service", "-"), *node = str_or(in, "node", "-");
        char cpu[16] = "-", avg[16] = "-", mem[32] = "-", pids[16] = "-";
        json_t *u = json_object_get(in, "usage");
        fp_cli_usage_cells(u, 1, "", cpu, mem, pids);
        double m;
        if (mean_cpu(samples, service, node, &m)) snprintf(avg, sizeof avg, "%.1f", 100 * m);
        printf("%-20s %-10s %-9s %6s %6s %-15s %5s %8lld %4lld\n", service, node,
               str_or(in, "state", "-"), cpu, avg, mem, pids,
               (long long)json_integer_value(json_object_get(in, "restarts")),
               (long long)json_integer_value(json_object_get(in, "oom_kills")));
    }
    fflush(stdout);
    json_decref(hist);
    json_decref(doc);
    return 0;
}

int fp_cmd_top(int argc, char **argv)
{
    static const struct option opts[] = {{"once", no_argument, NULL, 'o'},
                                         {"interval", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool once = false;
    double interval = 1;
    int c;
    while ((c = getopt_long(argc, argv, "oi:h", opts, NULL)) != -1) {
        if (c == 'o')
            once = true;
        else if (c == 'i') {
            char *end;
            interval = strtod(optarg, &end);
            if (*end || !(interval >= 0.1 && interval <= 3600))
                return fp_cli_usage_error("top", "--interval: seconds, 0.1 to 3600");
        } else if (c == 'h') {
            fp_cli_help("top");
            return 0;
        } else
            return fp_cli_usage_error("top", "unknown option");
    }
    if (optind != argc) return fp_cli_usage_error("top", "unexpected argument");
    if (once) return top_frame(false);
    for (;;) {
        int rc = top_frame(true);
        if (rc) return rc;
        struct timespec ts = {.tv_sec = (time_t)interval,
                              .tv_nsec = (long)((interval - (double)(time_t)interval) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

const char fp_help_events[] =
    "usage: fogport events [--follow] [--json] [--service NAME]\n\n"
    "The recent events the cloud saw in the agents' reports: an instance started,\n"
    "exited (with its exit code), failed, went into backoff, restarted between two\n"
    "reports, was killed for memory (oom_killed) or removed. --follow keeps\n"
    "printing new ones as they come (the cloud's Server-Sent Events stream) until\n"
    "interrupted; --json prints each event as a JSON object (an array without\n"
    "--follow, one object a line with it).\n\n"
    "example:\n"
    "  fogport events --follow --service web\n";

static void print_event(const json_t *e, bool as_json)
{
    if (as_json) {
        char *text = json_dumps(e, JSON_COMPACT);
        if (text) puts(text);
        free(text);
        fflush(stdout);
        return;
    }
    time_t t = (time_t)json_integer_value(json_object_get(e, "time"));
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    printf("%s  %-10s %-20s %-10s", when, str_or(e, "node", "-"), str_or(e, "service", "-"),
           str_or(e, "event", "-"));
    const char *from = str_or(e, "from", NULL);
    if (from) printf(" (was %s)", from);
    json_t *code = json_object_get(e, "exit_code");
    if (json_is_integer(code)) printf(" exit code %lld", (long long)json_integer_value(code));
    const char *why = str_or(e, "error", NULL);
    if (why) printf(": %s", why);
    putchar('\n');
    fflush(stdout);
}

struct sse {
    fp_buf line;
    bool as_json;
};

/* Server-Sent Events, a line at a time: "data: " lines carry the events;
 * comments (keep-alives), ids and retry hints need nothing here. */
static int sse_sink(void *ctx, const char *data, size_t len)
{
    struct sse *s = ctx;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (s->line.len > (1u << 20)) return -1; /* not an event stream */
            if (fp_buf_append(&s->line, data + i, 1) < 0) return -1;
            continue;
        }
        if (s->line.len > 6 && !strncmp(s->line.data, "data: ", 6)) {
            json_t *e = json_loadb(s->line.data + 6, s->line.len - 6, 0, NULL);
            if (e) print_event(e, s->as_json);
            json_decref(e);
        }
        fp_buf_reset(&s->line);
    }
    return 0;
}

static int follow_events(const char *service, bool as_json)
{
    fp_context ctx;
    fp_error err;
    int loaded = fp_context_load(&ctx, &err);
    if (loaded == 1) fp_error_set(&err, 0, "no client context: run fogport login first");
    if (loaded != 0) return fp_cli_fail(&err);
    cleanup_buf fp_buf url = FP_BUF_INIT;
    fp_buf_printf(&url, "%s/api/v1/events?follow=1", ctx.cloud);
    if (service) {
        fp_buf_puts(&url, "&service=");
        fp_buf_put_urlencoded(&url, service);
    }
    struct sse s = {.line = FP_BUF_INIT, .as_json = as_json};
    /* no time limit with a sink; the cloud sends a keep-alive every 15 s,
     * so silence for longer is a lost cloud */
    fp_http_opts o = {.userpwd = ctx.userpwd,
                      .cacert = ctx.ca[0] ? ctx.ca : NULL,
                      .connect_timeout_s = 10,
                      .stall_s = 40,
                      .sink = sse_sink,
                      .sink_ctx = &s};
    fp_http_response resp;
    int rc = fp_http_get(url.data, &o, &resp, &err);
    OPENSSL_cleanse(ctx.userpwd, sizeof ctx.userpwd);
    fp_buf_free(&s.line);
    if (rc < 0) return fp_cli_fail(&err);
    long status = resp.status;
    fp_http_response_free(&resp);
    if (status != 200) {
        fprintf(stderr, "fogport: events: HTTP %ld\n", status);
        return 1;
    }
    return 0; /* the cloud stopped */
}

int fp_cmd_events(int argc, char **argv)
{
    static const struct option opts[] = {{"follow", no_argument, NULL, 'f'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"service", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool follow = false, as_json = false;
    const char *service = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "fjs:h", opts, NULL)) != -1) {
        if (c == 'f')
            follow = true;
        else if (c == 'j')
            as_json = true;
        else if (c == 's')
            service = optarg;
        else if (c == 'h') {
            fp_cli_help("events");
            return 0;
        } else
            return fp_cli_usage_error("events", "unknown option");
    }
    if (optind != argc) return fp_cli_usage_error("events", "unexpected argument");
    if (follow) return follow_events(service, as_json);
    cleanup_buf fp_buf path = FP_BUF_INIT;
    fp_buf_puts(&path, "/api/v1/events");
    if (service) {
        fp_buf_puts(&path, "?service=");
        fp_buf_put_urlencoded(&path, service);
    }
    json_t *doc;
    fp_error err;
    if (fp_context_get_json(path.data, &doc, &err) < 0) return fp_cli_fail(&err);
    json_t *list = json_object_get(doc, "events");
    if (as_json) {
        fp_cli_print_json(list);
    } else {
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) print_event(e, false);
    }
    json_decref(doc);
    return 0;
}
