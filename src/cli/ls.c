/* fogport ls: the registered services of a registry, one JSON line per
 * repository, in the paper's form: {"name": "iot_service", "tags": ["1.0"]} */
#include <getopt.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/context.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/http_client.h"

const char fp_help_ls[] =
    "usage: fogport ls [--registry URL] [--user USER:PASSWORD] [--cacert FILE]\n"
    "                  [--insecure] [--all]\n\n"
    "List every repository (service) of a registry with its tags, one JSON object\n"
    "per line. The registry defaults to the client context's cloud (fogport login),\n"
    "else http://127.0.0.1:5000; the password may also come from FOGPORT_PASSWORD\n"
    "(with --user USER). --all lists every node of the deployment (from the cloud's\n"
    "directory) and adds which nodes hold each service.\n\n"
    "example:\n"
    "  fogport ls --registry http://127.0.0.1:5000\n"
    "  {\"name\": \"iot_service\", \"tags\": [\"1.0\"]}\n"
    "  fogport ls --all\n"
    "  {\"name\": \"iot_service\", \"tags\": [\"1.0\"], \"nodes\": [\"cloud\", \"fog-1\"]}\n";

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

/* Every repository of the registry at base with its tags, into services
 * (name -> {"name", "tags"}). */
static int list_registry(const char *base, const fp_http_opts *o, json_t *services, fp_error *err)
{
    json_t *repos = json_array();
    if (get_pages(base, "/v2/_catalog?n=1000", o, collect_repos, repos, err) < 0) {
        json_decref(repos);
        return -1;
    }
    size_t i;
    json_t *name;
    json_array_foreach(repos, i, name)
    {
        if (!json_is_string(name)) continue;
        char path[600];
        snprintf(path, sizeof path, "/v2/%s/tags/list?n=1000", json_string_value(name));
        json_t *tags = json_array();
        if (get_pages(base, path, o, collect_tags, tags, err) < 0) {
            json_decref(tags);
            json_decref(repos);
            return -1;
        }
        json_object_set_new(services, json_string_value(name),
                            json_pack("{s:O, s:o}", "name", name, "tags", tags));
    }
    json_decref(repos);
    return 0;
}

/* The federated catalog: every node's services, their tags (all of them
 * together) and which nodes hold each. A node that does not answer is
 * named on stderr and left out. */
static int list_all(const fp_http_opts *o, json_t *services, fp_error *err)
{
    json_t *nodes;
    if (fp_cli_fetch_nodes(&nodes, err) < 0) return -1;
    size_t i;
    json_t *node;
    json_array_foreach(nodes, i, node)
    {
        const char *id = json_string_value(json_object_get(node, "id"));
        const char *url = json_string_value(json_object_get(node, "url"));
        if (!id || !url || !url[0] || json_is_true(json_object_get(node, "revoked"))) continue;
        json_t *mine = json_object();
        fp_error nerr;
        if (list_registry(url, o, mine, &nerr) < 0) {
            fprintf(stderr, "fogport: %s: %s\n", id, nerr.msg);
            json_decref(mine);
            continue;
        }
        const char *name;
        json_t *svc;
        json_object_foreach(mine, name, svc)
        {
            json_t *all = json_object_get(services, name);
            if (!all) {
                all = json_pack("{s:s, s:[], s:[]}", "name", name, "tags", "nodes");
                json_object_set_new(services, name, all);
            }
            json_t *tags = json_object_get(all, "tags"), *tag;
            size_t k;
            json_array_foreach(json_object_get(svc, "tags"), k, tag)
            {
                bool seen = false;
                for (size_t j = 0; j < json_array_size(tags) && !seen; j++)
                    seen = json_equal(json_array_get(tags, j), tag);
                if (!seen) json_array_append(tags, tag);
            }
            json_array_append_new(json_object_get(all, "nodes"), json_string(id));
        }
        json_decref(mine);
    }
    json_decref(nodes);
    return 0;
}

int fp_cmd_ls(int argc, char **argv)
{
    static const struct option opts[] = {
        {"registry", required_argument, NULL, 'r'},
        {"user", required_argument, NULL, 'u'},
        {"cacert", required_argument, NULL, 'C'},
        {"insecure", no_argument, NULL, 'k'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bool all = false;
    const char *registry = NULL;
    fp_http_opts o = {0};
    cleanup_free char *userpwd = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "r:u:C:kah", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            all = true;
            break;
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
            fp_cli_help("ls");
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
    json_t *services = json_object();
    if (!all) {
        if (list_registry(base, &o, services, &err) < 0) {
            json_decref(services);
            return fp_cli_fail(&err);
        }
    } else if (list_all(&o, services, &err) < 0) {
        json_decref(services);
        return fp_cli_fail(&err);
    }
    const char *key;
    json_t *line;
    json_object_foreach(services, key, line)
    {
        /* jansson's default separators give the paper's ", " and ": " */
        char *text = json_dumps(line, JSON_PRESERVE_ORDER);
        if (text) printf("%s\n", text);
        free(text);
    }
    json_decref(services);
    return fflush(stdout) == 0 ? 0 : 1;
}
