#include "auth/cloudapi.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/authdata.h"
#include "auth/join.h"
#include "auth/jwt.h"
#include "auth/pki.h"
#include "auth/x5c.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"
#include "core/http_client.h"
#include "core/log.h"

static int call_cloud(const fp_config *cfg, const char *path, const char *body, unsigned timeout_s,
                      fp_http_response *resp, fp_error *err)
{
    fp_node_cred cred;
    if (fp_node_cred_load(cfg, &cred, err) < 0) return -1;
    fp_http_opts o = {.timeout_s = timeout_s};
    fp_node_cred_opts(&cred, &o);
    cleanup_buf fp_buf url = FP_BUF_INIT;
    fp_buf_printf(&url, "%s%s", cfg->node_cloud, path);
    int rc = body ? fp_http_post_json(url.data, &o, body, resp, err)
                  : fp_http_get(url.data, &o, resp, err);
    fp_node_cred_clear(&cred);
    if (rc < 0) return -1;
    if (resp->status / 100 != 2) {
        fp_error_set(err, 0, "%s: HTTP %ld", path, resp->status);
        fp_http_response_free(resp);
        return -1;
    }
    return 0;
}

int fp_node_call_cloud(const fp_config *cfg, const char *path, const char *body,
                       fp_http_response *resp, fp_error *err)
{
    return call_cloud(cfg, path, body, 5, resp, err);
}

/* Keep a list the node must remember across a restart while the cloud is
 * unreachable; rewritten only when it changed. */
static void save_list(const fp_config *cfg, const char *leaf, const json_t *list)
{
    char path[FP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/node/%s", cfg->data_dir, leaf);
    cleanup_free char *text = json_dumps(list, JSON_COMPACT);
    cleanup_free char *old = NULL;
    size_t oldlen = 0;
    fp_error ignored;
    if (text &&
        (fp_read_file(path, 32u << 20, &old, &oldlen, &ignored) < 0 || strcmp(old, text) != 0) &&
        fp_write_file_atomic(path, text, strlen(text), 0600, &ignored) < 0)
        fp_warn("event=list_not_saved file=%s error=\"%s\"", leaf, ignored.msg);
}

static json_t *saved_list(const fp_config *cfg, const char *leaf)
{
    char path[FP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/node/%s", cfg->data_dir, leaf);
    json_t *list = json_load_file(path, 0, NULL);
    if (json_is_array(list)) return list;
    json_decref(list);
    return NULL;
}

int fp_node_fetch_recalls(const fp_config *cfg, unsigned timeout_s, json_t **records, fp_error *err)
{
    fp_http_response resp;
    if (call_cloud(cfg, "/api/v1/recalls", NULL, timeout_s ? timeout_s : 5, &resp, err) < 0)
        return -1;
    json_t *body = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    fp_http_response_free(&resp);
    json_t *list = json_object_get(body, "recalls");
    if (!json_is_array(list)) {
        json_decref(body);
        return fp_error_set(err, 0, "recall list: malformed answer");
    }
    *records = json_incref(list);
    json_decref(body);
    /* a node restarted while the cloud is away must not serve what it
     * was told to refuse */
    save_list(cfg, "recalls.json", *records);
    return 0;
}

json_t *fp_node_saved_recalls(const fp_config *cfg)
{
    return saved_list(cfg, "recalls.json");
}

int fp_node_fetch_revoked(const fp_config *cfg, json_t **ids, fp_error *err)
{
    fp_http_response resp;
    if (fp_node_call_cloud(cfg, "/api/v1/revoked", NULL, &resp, err) < 0) return -1;
    json_t *body = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    fp_http_response_free(&resp);
    json_t *nodes = json_object_get(body, "nodes");
    if (!json_is_array(nodes)) {
        json_decref(body);
        return fp_error_set(err, 0, "revocation list: malformed answer");
    }
    *ids = json_incref(nodes);
    json_decref(body);
    /* kept for a restart while the cloud is unreachable: a node that forgot
     * a revocation would honour the revoked node's tokens again */
    char path[FP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/node/revoked.json", cfg->data_dir);
    cleanup_free char *text = json_dumps(*ids, JSON_COMPACT);
    cleanup_free char *old = NULL;
    size_t oldlen = 0;
    fp_error ignored;
    if (text &&
        (fp_read_file(path, 1 << 20, &old, &oldlen, &ignored) < 0 || strcmp(old, text) != 0) &&
        fp_write_file_atomic(path, text, strlen(text), 0600, &ignored) < 0)
        fp_warn("event=revocations_not_saved error=\"%s\"", ignored.msg);
    return 0;
}

json_t *fp_node_saved_revoked(const fp_config *cfg)
{
    char path[FP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/node/revoked.json", cfg->data_dir);
    json_t *ids = json_load_file(path, 0, NULL);
    if (json_is_array(ids)) return ids;
    json_decref(ids);
    return NULL;
}

/* Does the signer certificate in dir have more than a third of its
 * lifetime (of 30 days) left, and match its key? */
static bool signer_fresh(const char *dir)
{
    char key[FP_PATH_MAX + 64], crt[FP_PATH_MAX + 64];
    snprintf(key, sizeof key, "%s/signer.key", dir);
    snprintf(crt, sizeof crt, "%s/signer.crt", dir);
    fp_key *k = NULL;
    cleanup_buf fp_buf x5c = FP_BUF_INIT;
    time_t not_after = 0;
    fp_error err;
    int rc = fp_x5c_signer_load(key, crt, &k, &x5c, &not_after, &err);
    fp_key_free(k);
    return rc == 0 && not_after - time(NULL) > 10 * 86400;
}

int fp_node_sync_signer(const fp_config *cfg, bool *changed, fp_error *err)
{
    *changed = false;
    char dir[FP_PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/node", cfg->data_dir);
    if (signer_fresh(dir)) return 0;
    /* a new key each time: a renewal also rotates the key */
    fp_key *k = NULL;
    cleanup_buf fp_buf csr = FP_BUF_INIT;
    const char *dns[] = {cfg->node_id};
    if (fp_key_generate(&k, err) < 0) return -1;
    if (fp_csr_create(fp_key_evp(k), cfg->node_id, dns, 1, NULL, 0, &csr, err) < 0) {
        fp_key_free(k);
        return -1;
    }
    json_t *req = json_pack("{s:s}", "csr", csr.data);
    cleanup_free char *body = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    fp_http_response resp;
    if (!body || fp_node_call_cloud(cfg, "/api/v1/signer", body, &resp, err) < 0) {
        fp_key_free(k);
        return fp_error_prefix(err, "signer certificate");
    }
    json_t *ans = json_loadb(resp.body.data, resp.body.len, 0, NULL);
    fp_http_response_free(&resp);
    const char *cert = json_string_value(json_object_get(ans, "certificate"));
    char key_path[FP_PATH_MAX + 64], crt_path[FP_PATH_MAX + 64];
    snprintf(key_path, sizeof key_path, "%s/signer.key", dir);
    snprintf(crt_path, sizeof crt_path, "%s/signer.crt", dir);
    /* key first: a crash in between leaves a mismatch, which reads as "no
     * signer" and is renewed, never a certificate for a lost key */
    int rc = cert ? 0 : fp_error_set(err, 0, "signer certificate: unexpected answer");
    if (rc == 0) rc = fp_key_save_private(k, key_path, err);
    if (rc == 0) rc = fp_write_file_atomic(crt_path, cert, strlen(cert), 0644, err);
    json_decref(ans);
    fp_key_free(k);
    if (rc == 0) {
        *changed = true;
        fp_info("event=signer_renewed node=%s", cfg->node_id);
    }
    return rc;
}

int fp_node_sync_authdata(const fp_config *cfg, bool *changed, fp_error *err)
{
    *changed = false;
    fp_http_response resp;
    if (fp_node_call_cloud(cfg, "/api/v1/authdata", NULL, &resp, err) < 0) return -1;
    /* keep only what parses: a bad answer must not replace a good copy */
    fp_authdata *d = NULL;
    int rc = fp_authdata_parse(resp.body.data ? resp.body.data : "", resp.body.len, &d, err);
    fp_authdata_unref(d);
    char path[FP_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/node/authdata.json", cfg->data_dir);
    cleanup_free char *old = NULL;
    size_t oldlen = 0;
    fp_error ignored;
    bool same = rc == 0 && fp_read_file(path, 32u << 20, &old, &oldlen, &ignored) == 0 &&
                oldlen == resp.body.len && memcmp(old, resp.body.data, oldlen) == 0;
    if (rc == 0 && !same) {
        rc = fp_write_file_atomic(path, resp.body.data, resp.body.len, 0600, err);
        *changed = rc == 0;
    }
    if (old) OPENSSL_cleanse(old, oldlen);
    OPENSSL_cleanse(resp.body.data, resp.body.len);
    fp_http_response_free(&resp);
    return rc;
}
