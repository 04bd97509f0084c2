#include "federation/etcd.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/http_client.h"

#define ETCD_ANSWER_MAX (4 << 20)

int fp_etcd_init(fp_etcd *e, const char *list, fp_error *err)
{
    memset(e, 0, sizeof *e);
    const char *p = list ? list : "";
    while (*p) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (!len) break;
        if (e->n == FP_ETCD_MAX_ENDPOINTS)
            return fp_error_set(err, 0, "[control] etcd: at most %d endpoints",
                                FP_ETCD_MAX_ENDPOINTS);
        if (len >= sizeof e->endpoints[0] ||
            (strncmp(p, "http://", 7) != 0 && strncmp(p, "https://", 8) != 0))
            return fp_error_set(err, 0, "[control] etcd: \"%.*s\" is not an http(s):// URL",
                                (int)(len > 200 ? 200 : len), p);
        snprintf(e->endpoints[e->n], sizeof e->endpoints[0], "%.*s", (int)len, p);
        char *ep = e->endpoints[e->n];
        size_t l = strlen(ep);
        while (l && ep[l - 1] == '/')
            ep[--l] = '\0';
        e->n++;
        p += len;
    }
    return e->n ? 0 : fp_error_set(err, 0, "[control] etcd: no endpoint");
}

/* ---- encoding ------------------------------------------------------- */

int fp_etcd_b64(const void *data, size_t len, fp_buf *out)
{
    if (fp_buf_reserve(out, 4 * ((len + 2) / 3) + 1) < 0) return -1;
    int n = EVP_EncodeBlock((unsigned char *)out->data + out->len, data, (int)len);
    if (n < 0) return -1;
    out->len += (size_t)n;
    out->data[out->len] = '\0';
    return 0;
}

int fp_etcd_unb64(const char *text, char **out, size_t *len)
{
    size_t tl = strlen(text);
    *out = NULL;
    if (tl % 4) return -1;
    unsigned char *buf = malloc(tl / 4 * 3 + 1);
    if (!buf) return -1;
    int n = tl ? EVP_DecodeBlock(buf, (const unsigned char *)text, (int)tl) : 0;
    if (n < 0) {
        free(buf);
        return -1;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes */
    for (size_t i = tl; i > 0 && text[i - 1] == '=' && n > 0; i--)
        n--;
    buf[n] = '\0';
    *out = (char *)buf;
    if (len) *len = (size_t)n;
    return 0;
}

static json_t *b64_json(const char *s)
{
    fp_buf b = FP_BUF_INIT;
    json_t *j = fp_etcd_b64(s, strlen(s), &b) == 0 ? json_string(b.data) : NULL;
    fp_buf_free(&b);
    return j;
}

static json_t *int_json(int64_t v)
{
    char s[32];
    snprintf(s, sizeof s, "%" PRId64, v);
    return json_string(s);
}

int fp_etcd_prefix_end(const char *prefix, fp_buf *out)
{
    size_t n = strlen(prefix);
    char *end = malloc(n + 1);
    if (!end) return -1;
    memcpy(end, prefix, n + 1);
    /* the smallest key greater than every key with the prefix */
    while (n > 0 && (unsigned char)end[n - 1] == 0xff)
        n--;
    if (n == 0) { /* "\0": every key */
        free(end);
        return fp_etcd_b64("\0", 1, out);
    }
    end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
    int rc = fp_etcd_b64(end, n, out);
    free(end);
    return rc;
}

json_t *fp_etcd_txn_create_body(const char *key, const char *value, int64_t lease)
{
    json_t *put = json_pack("{s:o, s:o}", "key", b64_json(key), "value", b64_json(value));
    if (put && lease) json_object_set_new(put, "lease", int_json(lease));
    return json_pack("{s:[{s:s, s:o, s:s, s:o}], s:[{s:o}], s:[]}", "compare", "target", "CREATE",
                     "key", b64_json(key), "result", "EQUAL", "create_revision", int_json(0),
                     "success", "request_put", put, "failure");
}

json_t *fp_etcd_txn_delete_if_lease_body(const char *key, int64_t lease)
{
    return json_pack("{s:[{s:s, s:o, s:s, s:o}], s:[{s:{s:o}}], s:[]}", "compare", "target",
                     "LEASE", "key", b64_json(key), "result", "EQUAL", "lease", int_json(lease),
                     "success", "request_delete_range", "key", b64_json(key), "failure");
}

int64_t fp_etcd_int(const json_t *v)
{
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    const char *s = json_string_value(v);
    return s ? (int64_t)strtoll(s, NULL, 10) : 0;
}

void fp_etcd_kvs_free(fp_etcd_kv *kvs, size_t n)
{
    for (size_t i = 0; kvs && i < n; i++) {
        free(kvs[i].key);
        free(kvs[i].value);
    }
    free(kvs);
}

int fp_etcd_parse_range(const json_t *answer, fp_etcd_kv **out, size_t *n, fp_error *err)
{
    json_t *kvs = json_object_get(answer, "kvs");
    size_t count = json_array_size(kvs);
    *out = calloc(count + 1, sizeof **out);
    *n = 0;
    if (!*out) return fp_error_set(err, 0, "etcd: out of memory");
    size_t i;
    json_t *kv;
    json_array_foreach(kvs, i, kv)
    {
        fp_etcd_kv *o = &(*out)[*n];
        const char *k = json_string_value(json_object_get(kv, "key"));
        const char *v = json_string_value(json_object_get(kv, "value"));
        if (!k || fp_etcd_unb64(k, &o->key, NULL) < 0 ||
            fp_etcd_unb64(v ? v : "", &o->value, &o->value_len) < 0) {
            free(o->key);
            fp_etcd_kvs_free(*out, *n);
            *out = NULL;
            *n = 0;
            return fp_error_set(err, 0, "etcd: a key or value is not base64");
        }
        o->create_revision = fp_etcd_int(json_object_get(kv, "create_revision"));
        o->mod_revision = fp_etcd_int(json_object_get(kv, "mod_revision"));
        o->lease = fp_etcd_int(json_object_get(kv, "lease"));
        (*n)++;
    }
    return 0;
}

/* ---- calls ---------------------------------------------------------- */

int fp_etcd_call(fp_etcd *e, const char *path, const json_t *body, json_t **answer, fp_error *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    if (!text) return fp_error_set(err, 0, "etcd: out of memory");
    long ms = e->timeout_ms ? e->timeout_ms : 1500;
    fp_http_opts o = {
        .timeout_s = (ms + 999) / 1000, .connect_timeout_s = 1, .max_body = ETCD_ANSWER_MAX};
    int rc = -1;
    for (size_t k = 0; k < e->n && rc < 0; k++) {
        size_t i = (e->last_good + k) % e->n;
        char url[512];
        snprintf(url, sizeof url, "%s%s", e->endpoints[i], path);
        fp_http_response resp;
        fp_error one;
        if (fp_http_post_json(url, &o, text, &resp, &one) < 0) {
            fp_error_set(err, 0, "etcd %s: %s", e->endpoints[i], one.msg);
            continue;
        }
        json_error_t jerr;
        json_t *j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
        long status = resp.status;
        fp_http_response_free(&resp);
        if (status / 100 != 2 || !json_is_object(j)) {
            /* an answer, but a refusal: another member would say the same */
            const char *msg = json_string_value(json_object_get(j, "error"));
            if (!msg) msg = json_string_value(json_object_get(j, "message"));
            fp_error_set(err, 0, "etcd %s%s: HTTP %ld %s", e->endpoints[i], path, status,
                         msg ? msg : "");
            /* a member without quorum answers 5xx: the next may have it */
            bool next = status >= 500 || !json_is_object(j);
            json_decref(j);
            if (next) continue;
            break;
        }
        e->last_good = i;
        *answer = j;
        rc = 0;
    }
    free(text);
    return rc;
}

int fp_etcd_lease_grant(fp_etcd *e, unsigned ttl_s, int64_t *lease, fp_error *err)
{
    json_t *body = json_pack("{s:I}", "TTL", (json_int_t)ttl_s), *a = NULL;
    int rc = fp_etcd_call(e, "/v3/lease/grant", body, &a, err);
    json_decref(body);
    if (rc < 0) return -1;
    *lease = fp_etcd_int(json_object_get(a, "ID"));
    json_decref(a);
    return *lease ? 0 : fp_error_set(err, 0, "etcd: lease grant gave no ID");
}

int fp_etcd_lease_keepalive(fp_etcd *e, int64_t lease, int64_t *ttl, fp_error *err)
{
    json_t *body = json_pack("{s:o}", "ID", int_json(lease)), *a = NULL;
    int rc = fp_etcd_call(e, "/v3/lease/keepalive", body, &a, err);
    json_decref(body);
    if (rc < 0) return -1;
    /* a streamed call: the gateway wraps each message in "result" */
    json_t *r = json_object_get(a, "result");
    *ttl = fp_etcd_int(json_object_get(r ? r : a, "TTL"));
    json_decref(a);
    return 0;
}

int fp_etcd_lease_revoke(fp_etcd *e, int64_t lease, fp_error *err)
{
    json_t *body = json_pack("{s:o}", "ID", int_json(lease)), *a = NULL;
    int rc = fp_etcd_call(e, "/v3/lease/revoke", body, &a, err);
    json_decref(body);
    json_decref(a);
    return rc;
}

int fp_etcd_put(fp_etcd *e, const char *key, const char *value, int64_t lease, fp_error *err)
{
    json_t *body = json_pack("{s:o, s:o}", "key", b64_json(key), "value", b64_json(value)), *a;
    if (lease) json_object_set_new(body, "lease", int_json(lease));
    int rc = fp_etcd_call(e, "/v3/kv/put", body, &a, err);
    json_decref(body);
    if (rc == 0) json_decref(a);
    return rc;
}

int fp_etcd_range_prefix(fp_etcd *e, const char *prefix, fp_etcd_kv **out, size_t *n, fp_error *err)
{
    fp_buf end = FP_BUF_INIT;
    if (fp_etcd_prefix_end(prefix, &end) < 0) return fp_error_set(err, 0, "etcd: out of memory");
    json_t *body = json_pack("{s:o, s:s}", "key", b64_json(prefix), "range_end", end.data), *a;
    fp_buf_free(&end);
    int rc = fp_etcd_call(e, "/v3/kv/range", body, &a, err);
    json_decref(body);
    if (rc < 0) return -1;
    rc = fp_etcd_parse_range(a, out, n, err);
    json_decref(a);
    return rc;
}

int fp_etcd_txn(fp_etcd *e, json_t *body, bool *succeeded, fp_error *err)
{
    json_t *a = NULL;
    if (!body) return fp_error_set(err, 0, "etcd: out of memory");
    int rc = fp_etcd_call(e, "/v3/kv/txn", body, &a, err);
    json_decref(body);
    if (rc < 0) return -1;
    *succeeded = json_is_true(json_object_get(a, "succeeded"));
    json_decref(a);
    return 0;
}
