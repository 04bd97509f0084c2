/* The operator's client context, like a kubeconfig: which cloud, which CA to
 * verify it with, which credential. A JSON file, 0600:
 *   {"cloud": URL, "ca": PATH, "user": NAME, "password": SECRET}
 * at $FOGPORT_CONFIG or ~/.config/fogport/config.json. `fogport login`
 * writes it, `fogport sandbox up` writes one for its admin, and operator
 * subcommands use it when not told otherwise. */
#ifndef FP_CLI_CONTEXT_H
#define FP_CLI_CONTEXT_H

#include <stdbool.h>

#include "core/error.h"

typedef struct fp_context {
    char cloud[512];
    char ca[1024];
    char userpwd[600]; /* "user:password" */
    char path[1024];   /* where it was read from */
} fp_context;

/* 0 loaded, 1 no context file, -1 error (unreadable or malformed). */
int fp_context_load(fp_context *ctx, fp_error *err);
/* GET cloud/path with the client context's credential; *doc is the 200
 * answer's JSON (caller decrefs). */
struct json_t;
int fp_context_get_json(const char *path, struct json_t **doc, fp_error *err);
/* method ("GET", "POST", "DELETE") to the cloud's path, or to an absolute
 * URL of another node of the deployment (same CA, same credential), with
 * an optional JSON body. *doc (may be NULL) gets a 2xx answer's JSON, NULL
 * when it has none; any other status is an error carrying the registry's
 * message. */
int fp_context_call(const char *method, const char *where, const char *json, struct json_t **doc,
                    fp_error *err);
int fp_context_save(const char *cloud, const char *ca, const char *user, const char *password,
                    char path_out[1024], fp_error *err);

#endif
