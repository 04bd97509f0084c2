/* fogport ls: the registered services of a registry, one JSON line per
 * repository, in the paper's form: {"name": "iot_service", "tags": ["1.0"]} */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/context.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/http_client.h"

static void help(void)
{
    printf("usage: fogport ls [--registry URL] [--user USER:PASSWORD] [--cacert FILE]\n"
           "                  [--insecure]\n\n"
           "List every repository (service) of a registry with its tags, one JSON object\n"
           "per line. The registry defaults to the client context's cloud (fogport login),\n"
           "else http://127.0.0.1:5000; the password may also come from FOGPORT_PASSWORD\n"
           "(with --user USER).\n\n"
           "example:\n"
           "  fogport ls --registry http://127.0.0.1:5000\n"
           "  {\"name\": \"iot_service\", \"tags\": [\"1.0\"]}\n");
}

/* GET url and every rel="next" page after it, calling fn with each body. */
static int get_pages(const char *base, const char *first, const fp_http_opts *o,
                     int (*fn)(json_t *page, void *ctx), void *ctx, fp_error *err)
{
    cleanup_buf fp_buf url = FP_BUF_INIT;
    fp_buf_printf(&url, "%s%s", base, first);
    for (int pages = 0; pages < 100000; pages++) {
        fp_http_response resp;
        if (fp_http_registry_get(url.data, o, &resp, err) < 0) return -1;
        if (resp.status != 200) {
            fp_error_set(err, 0, "GET %s: HTTP %ld: %.200s", url.data, resp.status,
                         resp.body.data ? resp.body.data : "");
            fp_http_response_free(&resp);
            return -1;
        }
        json_t *page = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
        char next[sizeof resp.link_next];
        snprintf(next, sizeof next, "%s", resp.link_next);
        fp_http_response_free(&resp);
        if (!page) return fp_error_set(err, 0, "GET %s: response is not JSON", url.data);
        int rc = fn(page, ctx);
        json_decref(page);
        if (rc < 0) return fp_error_set(err, 0, "unexpected response from %s", url.data);
        if (!next[0]) return 0;
        fp_buf_reset(&url);
        /* Link targets are paths on the same registry */
        if (next[0] == '/')
            fp_buf_printf(&url, "%s%s", base, next);
        else
            fp_buf_puts(&url, next);
    }
    return fp_error_set(err, 0, "too many pages");
}

static int collect_repos(json_t *page, void *ctx)
{
    json_t *repos = json_object_get(page, "repositories");
    if (!json_is_array(repos)) return -1;
    return json_array_extend(ctx, repos) == 0 ? 0 : -1;
}

static int collect_tags(json_t *page, void *ctx)
{
    json_t *tags = json_object_get(page, "tags");
    if (json_is_null(tags)) return 0;
    if (!json_is_array(tags)) return -1;
    return json_array_extend(ctx, tags) == 0 ? 0 : -1;
}

int fp_cmd_ls(int argc, char **argv)
{
    static const struct option opts[] = {
        {"registry", required_argument, NULL, 'r'}, {"user", required_argument, NULL, 'u'},
        {"cacert", required_argument, NULL, 'C'},   {"insecure", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    const char *registry = NULL;
    fp_http_opts o = {0};
    cleanup_free char *userpwd = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "r:u:C:kh", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            registry = optarg;
            break;
        case 'u':
            if (!strchr(optarg, ':') && getenv("FOGPORT_PASSWORD")) {
                free(userpwd);
                if (asprintf(&userpwd, "%s:%s", optarg, getenv("FOGPORT_PASSWORD")) < 0) return 1;
                o.userpwd = userpwd;
            } else {
                o.userpwd = optarg;
            }
            break;
        case 'C':
            o.cacert = optarg;
            break;
        case 'k':
            o.insecure = 1;
            break;
        case 'h':
            help();
            return 0;
        default:
            return fp_cli_usage_error("ls", "unknown option");
        }
    }
    /* without --registry: the client context (fogport login), else the
     * local default */
    fp_context ctx;
    fp_error cerr;
    int crc = registry ? 1 : fp_context_load(&ctx, &cerr);
    if (crc < 0) return fp_cli_fail(&cerr);
    if (crc == 0) {
        registry = ctx.cloud;
        if (!o.cacert && ctx.ca[0]) o.cacert = ctx.ca;
        if (!o.userpwd && ctx.userpwd[0]) o.userpwd = ctx.userpwd;
    } else if (!registry) {
        registry = "http://127.0.0.1:5000";
    }
    char base[1024];
    snprintf(base, sizeof base, "%s", registry);
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        base[--bl] = '\0';
    if (!strstr(base, "://")) {
        /* a bare host:port means plain HTTP */
        memmove(base + 7, base, bl + 1);
        memcpy(base, "http://", 7);
    }

    fp_error err;
    json_t *repos = json_array();
    if (get_pages(base, "/v2/_catalog?n=1000", &o, collect_repos, repos, &err) < 0) {
        json_decref(repos);
        return fp_cli_fail(&err);
    }
    size_t i;
    json_t *name;
    json_array_foreach(repos, i, name)
    {
        if (!json_is_string(name)) continue;
        char path[600];
        snprintf(path, sizeof path, "/v2/%s/tags/list?n=1000", json_string_value(name));
        json_t *tags = json_array();
        if (get_pages(base, path, &o, collect_tags, tags, &err) < 0) {
            json_decref(tags);
            json_decref(repos);
            return fp_cli_fail(&err);
        }
        json_t *line = json_object();
        json_object_set(line, "name", name);
        json_object_set_new(line, "tags", tags);
        /* jansson's default separators give the paper's ", " and ": " */
        char *text = json_dumps(line, JSON_PRESERVE_ORDER);
        if (text) printf("%s\n", text);
        free(text);
        json_decref(line);
    }
    json_decref(repos);
    return fflush(stdout) == 0 ? 0 : 1;
}
