/* A small HTTP client over libcurl for the CLI and node-to-node calls:
 * one request, the whole response body in memory (bounded), the headers a
 * registry client needs. Credentials go only to the host they were given
 * for (libcurl does not forward them across redirects to other hosts). */
#ifndef FP_CORE_HTTP_CLIENT_H
#define FP_CORE_HTTP_CLIENT_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

typedef struct fp_http_opts {
    const char *userpwd;     /* "user:password" for Basic auth, or NULL */
    const char *cacert;      /* CA bundle to verify TLS with, or NULL for the system's */
    int insecure;            /* skip TLS verification (tests only) */
    const char *client_cert; /* PEM certificate to present (mutual TLS), or NULL */
    const char *client_key;  /* its key (default: in client_cert) */
    long timeout_s;          /* 0: 30 s */
    size_t max_body;         /* 0: 64 MiB */
} fp_http_opts;

typedef struct fp_http_response {
    long status;
    fp_buf body;
    char link_next[2048]; /* target of a Link: <...>; rel="next" header, or "" */
    char content_type[256];
    char www_authenticate[1024];
} fp_http_response;

int fp_http_get(const char *url, const fp_http_opts *opts, fp_http_response *resp, fp_error *err);
/* POST a JSON body (Content-Type: application/json). */
int fp_http_post_json(const char *url, const fp_http_opts *opts, const char *json,
                      fp_http_response *resp, fp_error *err);
/* GET as a registry client: on a 401 with a Bearer challenge, fetch a token
 * from the challenge's realm (with opts->userpwd as Basic credentials) for
 * its service and scope, and retry once with it. Basic credentials are sent
 * only to the token service, never to the registry. */
int fp_http_registry_get(const char *url, const fp_http_opts *opts, fp_http_response *resp,
                         fp_error *err);
void fp_http_response_free(fp_http_response *resp);

#endif
