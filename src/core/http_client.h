/* A small HTTP client over libcurl for the CLI and node-to-node calls:
 * one request, the whole response body in memory (bounded), the headers a
 * registry client needs. Credentials go only to the host they were given
 * for (libcurl does not forward them across redirects to other hosts). */
#ifndef FP_CORE_HTTP_CLIENT_H
#define FP_CORE_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"

/* Receives a successful (2xx) response body piece by piece; returns 0 to
 * go on, -1 to abort the transfer. */
typedef int (*fp_http_sink)(void *ctx, const char *data, size_t len);

typedef struct fp_http_opts {
    const char *userpwd;        /* "user:password" for Basic auth, or NULL */
    const char *cacert;         /* CA bundle to verify TLS with, or NULL for the system's */
    int insecure;               /* skip TLS verification (tests only) */
    const char *client_cert;    /* PEM certificate to present (mutual TLS), or NULL */
    const char *client_key;     /* its key (default: in client_cert) */
    long timeout_s;             /* 0: 30 s */
    size_t max_body;            /* 0: 64 MiB */
    long connect_timeout_s;     /* 0: libcurl's default */
    long stall_s;               /* abort when no byte arrives for this long (0: never) */
    const char *const *headers; /* extra request header lines, NULL-terminated */
    fp_http_sink sink;          /* stream a 2xx body here instead of into resp->body */
    void *sink_ctx;
    /* Asked with every piece that arrives and about once a second while
     * nothing does (connecting, waiting for an answer): nonzero abandons
     * the request (it fails with "cancelled"). NULL: never. */
    int (*cancel)(void *ctx);
    void *cancel_ctx;
    /* A request body of any bytes (a blob, a manifest) for POST or PUT,
     * sent as content_type; the json argument of fp_http_request wins. */
    const void *body;
    size_t body_len;
    const char *content_type;
} fp_http_opts;

typedef struct fp_http_response {
    long status;
    fp_buf body;
    char link_next[2048]; /* target of a Link: <...>; rel="next" header, or "" */
    char content_type[256];
    char www_authenticate[1024];
    char digest[160];        /* Docker-Content-Digest */
    char content_range[96];  /* Content-Range */
    uint64_t content_length; /* Content-Length, when has_length */
    int has_length;
} fp_http_response;

/* One request: method "GET", "HEAD", "DELETE" or "POST"/"PUT" (with json), an optional
 * Bearer token. Connections (and TLS sessions) are kept and reused between
 * calls from any thread. */
int fp_http_request(const char *method, const char *url, const fp_http_opts *opts,
                    const char *bearer, const char *json, fp_http_response *resp, fp_error *err);
int fp_http_get(const char *url, const fp_http_opts *opts, fp_http_response *resp, fp_error *err);
/* POST a JSON body (Content-Type: application/json). */
int fp_http_post_json(const char *url, const fp_http_opts *opts, const char *json,
                      fp_http_response *resp, fp_error *err);
/* The value of key="..." in a WWW-Authenticate challenge. */
int fp_http_challenge_param(const char *challenge, const char *key, char *out, size_t outlen);
/* Answer a Bearer challenge: ask its realm (with opts->userpwd as Basic
 * credentials) for a token for its service and scope. token gets the token
 * (NUL-terminated), *expires_in its lifetime in seconds. A refusal (HTTP
 * 401 or 403) fails with err->errnum EACCES. */
int fp_http_fetch_token(const char *challenge, const fp_http_opts *opts, fp_buf *token,
                        unsigned *expires_in, fp_error *err);
/* GET as a registry client: on a 401 with a Bearer challenge, fetch a token
 * from the challenge's realm (with opts->userpwd as Basic credentials) for
 * its service and scope, and retry once with it. Basic credentials are sent
 * only to the token service, never to the registry. */
int fp_http_registry_get(const char *url, const fp_http_opts *opts, fp_http_response *resp,
                         fp_error *err);
void fp_http_response_free(fp_http_response *resp);

#endif
