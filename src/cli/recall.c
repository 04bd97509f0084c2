/* fogport recall IMAGE | recall ls | unrecall DIGEST: revoke an image
 * everywhere (docs/security.md, "Recall"). The cloud resolves a tag to its
 * manifest digest; every registry then refuses it, fogs and edges delete
 * it, agents stop what runs from it. Un-recall is explicit. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/context.h"

const char fp_help_recall[] =
    "usage: fogport recall IMAGE[:TAG|@DIGEST] [--reason TEXT]\n"
    "       fogport recall ls [--json]\n"
    "       fogport unrecall DIGEST\n\n"
    "Recall an image: every registry of the deployment (cloud, fogs, edges)\n"
    "answers DENIED for it, even to a client holding a token; fogs and edges\n"
    "delete it; agents stop and remove the services that run it, and a node\n"
    "that was away applies the recall before it serves again. The layers an\n"
    "image shares with images that are not recalled stay available. The cloud\n"
    "keeps the content, so `fogport unrecall DIGEST` makes it pullable again.\n"
    "Needs delete permission on the repository. Uses the client context.\n\n"
    "examples:\n"
    "  fogport recall iot_service:1.0 --reason \"CVE-2024-1234\"\n"
    "  fogport recall ls\n"
    "  fogport unrecall sha256:4f3c...\n";

static int list(bool as_json)
{
    json_t *doc;
    fp_error err;
    if (fp_context_get_json("/api/v1/recalls", &doc, &err) < 0) return fp_cli_fail(&err);
    json_t *all = json_object_get(doc, "recalls");
    if (as_json) {
        fp_cli_print_json(all);
        json_decref(doc);
        return 0;
    }
    printf("%-20s %-30s %-19s %-10s %s\n", "DIGEST", "IMAGE", "WHEN", "BY", "REASON");
    size_t i;
    json_t *r;
    json_array_foreach(all, i, r)
    {
        time_t t = (time_t)json_integer_value(json_object_get(r, "time"));
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
        const char *d = json_string_value(json_object_get(r, "digest")) ?: "";
        printf("%-20.19s %-30s %-19s %-10s %s\n", d, json_string_value(json_object_get(r, "ref")),
               when, json_string_value(json_object_get(r, "user")),
               json_string_value(json_object_get(r, "reason")));
    }
    json_decref(doc);
    return 0;
}

int fp_cmd_recall(int argc, char **argv)
{
    static const struct option opts[] = {
        {"reason", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *reason = "";
    bool as_json = false;
    int c;
    while ((c = getopt_long(argc, argv, "r:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            reason = optarg;
            break;
        case 'j':
            as_json = true;
            break;
        case 'h':
            fp_cli_help("recall");
            return 0;
        default:
            return fp_cli_usage_error("recall", "unknown option");
        }
    }
    if (optind != argc - 1) return fp_cli_usage_error("recall", "expected IMAGE or ls");
    if (!strcmp(argv[optind], "ls")) return list(as_json);
    json_t *req = json_pack("{s:s, s:s}", "image", argv[optind], "reason", reason);
    char *text = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    json_t *answer = NULL;
    fp_error err;
    int rc = text ? fp_context_call("POST", "/api/v1/recalls", text, &answer, &err) : -1;
    free(text);
    if (rc < 0) return fp_cli_fail(&err);
    printf("recalled %s: %s (%zu child manifests, %zu blobs)\n",
           json_string_value(json_object_get(answer, "ref")),
           json_string_value(json_object_get(answer, "digest")),
           json_array_size(json_object_get(answer, "children")),
           json_array_size(json_object_get(answer, "blobs")));
    json_decref(answer);
    return 0;
}

int fp_cmd_unrecall(int argc, char **argv)
{
    if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        fp_cli_help("recall");
        return 0;
    }
    if (argc != 2 || !strchr(argv[1], ':'))
        return fp_cli_usage_error("unrecall", "expected one DIGEST (sha256:...)");
    char path[256];
    snprintf(path, sizeof path, "/api/v1/recalls/%s", argv[1]);
    fp_error err;
    if (fp_context_call("DELETE", path, NULL, NULL, &err) < 0) return fp_cli_fail(&err);
    printf("unrecalled %s\n", argv[1]);
    return 0;
}
