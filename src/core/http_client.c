#include "core/http_client.h"

#include <ctype.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct sink {
    fp_http_response *resp;
    size_t max;
    int overflow;
};

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    struct sink *s = cls;
    size_t len = size * n;
    if (s->resp->body.len + len > s->max) {
        s->overflow = 1;
        return 0;
    }
    return fp_buf_append(&s->resp->body, data, len) == 0 ? len : 0;
}

static void trim_copy(char *dst, size_t dl, const char *src, size_t sl)
{
    while (sl && isspace((unsigned char)*src))
        src++, sl--;
    while (sl && isspace((unsigned char)src[sl - 1]))
        sl--;
    if (sl >= dl) sl = dl - 1;
    memcpy(dst, src, sl);
    dst[sl] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *cls)
{
    struct sink *s = cls;
    size_t len = size * n;
    if (len > 5 && strncasecmp(data, "Link:", 5) == 0) {
        const char *lt = memchr(data, '<', len);
        const char *gt = lt ? memchr(lt, '>', len - (size_t)(lt - data)) : NULL;
        if (gt && memmem(gt, len - (size_t)(gt - data), "rel=\"next\"", 10))
            trim_copy(s->resp->link_next, sizeof s->resp->link_next, lt + 1, (size_t)(gt - lt - 1));
    } else if (len > 17 && strncasecmp(data, "WWW-Authenticate:", 17) == 0) {
        trim_copy(s->resp->www_authenticate, sizeof s->resp->www_authenticate, data + 17, len - 17);
    } else if (len > 13 && strncasecmp(data, "Content-Type:", 13) == 0) {
        trim_copy(s->resp->content_type, sizeof s->resp->content_type, data + 13, len - 13);
    }
    return len;
}

static int http_do(const char *url, const fp_http_opts *opts, const char *bearer, const char *json,
                   fp_http_response *resp, fp_error *err);

static int http_get(const char *url, const fp_http_opts *opts, const char *bearer,
                    fp_http_response *resp, fp_error *err)
{
    return http_do(url, opts, bearer, NULL, resp, err);
}

int fp_http_post_json(const char *url, const fp_http_opts *opts, const char *json,
                      fp_http_response *resp, fp_error *err)
{
    return http_do(url, opts, NULL, json, resp, err);
}

int fp_http_get(const char *url, const fp_http_opts *opts, fp_http_response *resp, fp_error *err)
{
    return http_get(url, opts, NULL, resp, err);
}

/* value of key="..." in a challenge */
static bool challenge_param(const char *ch, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    for (const char *p = ch; (p = strstr(p, key)); p += kl) {
        if ((p == ch || p[-1] == ' ' || p[-1] == ',') && p[kl] == '=' && p[kl + 1] == '"') {
            const char *v = p + kl + 2, *e = strchr(v, '"');
            if (!e || (size_t)(e - v) >= outlen) return false;
            memcpy(out, v, (size_t)(e - v));
            out[e - v] = '\0';
            return true;
        }
    }
    return false;
}

int fp_http_registry_get(const char *url, const fp_http_opts *opts, fp_http_response *resp,
                         fp_error *err)
{
    fp_http_opts plain = opts ? *opts : (fp_http_opts){0};
    const char *userpwd = plain.userpwd;
    plain.userpwd = NULL; /* credentials go to the token service only */
    if (http_get(url, &plain, NULL, resp, err) < 0) return -1;
    if (resp->status != 401) return 0;
    if (strncasecmp(resp->www_authenticate, "Basic", 5) == 0 && userpwd) {
        /* a Basic registry: the same URL again, now with the credentials */
        fp_http_response_free(resp);
        return http_get(url, opts, NULL, resp, err);
    }
    if (strncasecmp(resp->www_authenticate, "Bearer ", 7) != 0) return 0;
    char realm[512], service[256] = "", scope[512] = "";
    if (!challenge_param(resp->www_authenticate, "realm", realm, sizeof realm)) return 0;
    challenge_param(resp->www_authenticate, "service", service, sizeof service);
    challenge_param(resp->www_authenticate, "scope", scope, sizeof scope);
    fp_http_response_free(resp); /* the 401 is spent; on failure resp holds nothing */
    CURL *c = curl_easy_init();
    char *es = c ? curl_easy_escape(c, service, 0) : NULL;
    char *esc = c ? curl_easy_escape(c, scope, 0) : NULL;
    fp_buf turl = FP_BUF_INIT;
    fp_buf_printf(&turl, "%s%sservice=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", es ? es : "",
                  scope[0] ? "&scope=" : "", scope[0] && esc ? esc : "");
    curl_free(es);
    curl_free(esc);
    curl_easy_cleanup(c);
    fp_http_opts topts = plain;
    topts.userpwd = userpwd;
    fp_http_response tr;
    int rc = http_get(turl.data, &topts, NULL, &tr, err);
    fp_buf_free(&turl);
    if (rc < 0) return -1;
    if (tr.status != 200) {
        fp_error_set(err, 0, "token service answered HTTP %ld: %.200s", tr.status,
                     tr.body.data ? tr.body.data : "");
        fp_http_response_free(&tr);
        return -1;
    }
    json_t *j = json_loadb(tr.body.data ? tr.body.data : "", tr.body.len, 0, NULL);
    fp_http_response_free(&tr);
    const char *token = json_string_value(json_object_get(j, "token"));
    if (!token) token = json_string_value(json_object_get(j, "access_token"));
    if (!token) {
        json_decref(j);
        return fp_error_set(err, 0, "token service gave no token");
    }
    fp_http_response_free(resp);
    rc = http_get(url, &plain, token, resp, err);
    json_decref(j);
    return rc;
}

static int http_do(const char *url, const fp_http_opts *opts, const char *bearer, const char *json,
                   fp_http_response *resp, fp_error *err)
{
    static const fp_http_opts defaults = {0};
    if (!opts) opts = &defaults;
    pthread_once(&curl_once, curl_init);
    memset(resp, 0, sizeof *resp);
    CURL *c = curl_easy_init();
    if (!c) return fp_error_set(err, 0, "curl init failed");
    struct sink s = {.resp = resp, .max = opts->max_body ? opts->max_body : (64u << 20)};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, opts->timeout_s ? opts->timeout_s : 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "fogport");
    if (opts->userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, opts->userpwd);
    }
    struct curl_slist *headers = NULL;
    if (json) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    }
    if (bearer) {
        fp_buf h = FP_BUF_INIT;
        fp_buf_printf(&h, "Authorization: Bearer %s", bearer);
        headers = curl_slist_append(headers, h.data);
        fp_buf_free(&h);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    }
    if (opts->cacert) curl_easy_setopt(c, CURLOPT_CAINFO, opts->cacert);
    if (opts->client_cert) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, opts->client_cert);
        curl_easy_setopt(c, CURLOPT_SSLKEY,
                         opts->client_key ? opts->client_key : opts->client_cert);
    }
    if (opts->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        fp_error_set(err, 0, "GET %s: %s", url,
                     s.overflow ? "response too large" : curl_easy_strerror(rc));
        curl_easy_cleanup(c);
        fp_buf_free(&resp->body);
        return -1;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_cleanup(c);
    return 0;
}

void fp_http_response_free(fp_http_response *resp)
{
    fp_buf_free(&resp->body);
}
