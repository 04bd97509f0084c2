#include "cli/context.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"
#include "core/http_client.h"

static void context_path(char out[1024])
{
    const char *env = getenv("FOGPORT_CONFIG");
    if (env && env[0]) {
        snprintf(out, 1024, "%s", env);
        return;
    }
    const char *home = getenv("HOME");
    snprintf(out, 1024, "%s/.config/fogport/config.json", home && home[0] ? home : "/root");
}

int fp_context_load(fp_context *ctx, fp_error *err)
{
    memset(ctx, 0, sizeof *ctx);
    context_path(ctx->path);
    if (access(ctx->path, F_OK) != 0) return 1;
    json_error_t jerr;
    json_t *j = json_load_file(ctx->path, 0, &jerr);
    if (!j) return fp_error_set(err, 0, "%s: %s", ctx->path, jerr.text);
    const char *cloud = json_string_value(json_object_get(j, "cloud"));
    const char *ca = json_string_value(json_object_get(j, "ca"));
    const char *user = json_string_value(json_object_get(j, "user"));
    const char *pw = json_string_value(json_object_get(j, "password"));
    int rc = 0;
    if (!cloud)
        rc = fp_error_set(err, 0, "%s: no \"cloud\"", ctx->path);
    else {
        snprintf(ctx->cloud, sizeof ctx->cloud, "%s", cloud);
        snprintf(ctx->ca, sizeof ctx->ca, "%s", ca ? ca : "");
        if (user && pw) snprintf(ctx->userpwd, sizeof ctx->userpwd, "%s:%s", user, pw);
    }
    json_decref(j);
    return rc;
}

int fp_context_save(const char *cloud, const char *ca, const char *user, const char *password,
                    char path_out[1024], fp_error *err)
{
    context_path(path_out);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path_out);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (fp_mkdir_p(dir, 0700, err) < 0) return -1;
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "cloud", cloud, "ca", ca ? ca : "", "user", user,
                          "password", password);
    char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    json_decref(j);
    if (!text) return fp_error_set(err, ENOMEM, "context");
    int rc = fp_write_file_atomic(path_out, text, strlen(text), 0600, err);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return rc;
}

int fp_context_call(const char *method, const char *where, const char *json, json_t **doc,
                    fp_error *err)
{
    fp_context ctx;
    int rc = fp_context_load(&ctx, err);
    if (rc < 0) return -1;
    if (rc == 1) return fp_error_set(err, 0, "no client context: run fogport login first");
    cleanup_buf fp_buf url = FP_BUF_INIT;
    fp_buf_printf(&url, "%s%s", where[0] == '/' ? ctx.cloud : "", where);
    fp_http_opts o = {.userpwd = ctx.userpwd, .cacert = ctx.ca[0] ? ctx.ca : NULL, .timeout_s = 10};
    fp_http_response resp;
    rc = fp_http_request(method, url.data, &o, NULL, json, &resp, err);
    OPENSSL_cleanse(ctx.userpwd, sizeof ctx.userpwd);
    if (rc < 0) return -1;
    json_t *body = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, NULL);
    long status = resp.status;
    fp_http_response_free(&resp);
    if (status < 200 || status > 299) {
        /* the registry's error: {"errors":[{"code","message"}]} */
        json_t *e = json_array_get(json_object_get(body, "errors"), 0);
        const char *msg = json_string_value(json_object_get(e, "message"));
        fp_error_set(err, 0, "%s %s: HTTP %ld%s%s", method, url.data, status, msg ? ": " : "",
                     msg ? msg : "");
        json_decref(body);
        return -1;
    }
    if (doc)
        *doc = body;
    else
        json_decref(body);
    return 0;
}

int fp_context_get_json(const char *path, json_t **doc, fp_error *err)
{
    if (fp_context_call("GET", path, NULL, doc, err) < 0) return -1;
    return *doc ? 0 : fp_error_set(err, 0, "GET %s: not JSON", path);
}
