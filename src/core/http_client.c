#include "core/http_client.h"

#include <ctype.h>
#include <errno.h>
#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One connection cache for the process: node-to-node calls reuse their
 * TCP connections and TLS sessions instead of a handshake per request. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLSH *share;
static pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *u)
{
    (void)c, (void)access, (void)u;
    pthread_mutex_lock(&share_locks[data]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *u)
{
    (void)c, (void)u;
    pthread_mutex_unlock(&share_locks[data]);
}

static void curl_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&share_locks[i], NULL);
    share = curl_share_init();
    if (!share) return;
    curl_share_setopt(share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
}

struct sink {
    fp_http_response *resp;
    const fp_http_opts *opts;
    CURL *curl;
    size_t max;
    int overflow;
    int aborted;
    int cancelled;
};

static int on_progress(void *cls, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    struct sink *s = cls;
    if (!s->opts->cancel(s->opts->cancel_ctx)) return 0;
    s->cancelled = 1;
    return 1;
}

static size_t on_body(char *data, size_t size, size_t n, void *cls)
{
    struct sink *s = cls;
    size_t len = size * n;
    if (s->opts->sink) {
        long status = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            if (s->opts->sink(s->opts->sink_ctx, data, len) == 0) return len;
            s->aborted = 1;
            return 0;
        }
    }
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
    } else if (len > 22 && strncasecmp(data, "Docker-Content-Digest:", 22) == 0) {
        trim_copy(s->resp->digest, sizeof s->resp->digest, data + 22, len - 22);
    } else if (len > 14 && strncasecmp(data, "Content-Range:", 14) == 0) {
        trim_copy(s->resp->content_range, sizeof s->resp->content_range, data + 14, len - 14);
    } else if (len > 15 && strncasecmp(data, "Content-Length:", 15) == 0) {
        char v[32];
        trim_copy(v, sizeof v, data + 15, len - 15);
        char *end;
        unsigned long long value = strtoull(v, &end, 10);
        if (v[0] >= '0' && v[0] <= '9' && !*end) {
            s->resp->content_length = value;
            s->resp->has_length = 1;
        }
    } else if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* a new response (after a 100 or a redirect): forget the last one's */
        s->resp->digest[0] = s->resp->content_range[0] = '\0';
        s->resp->has_length = 0;
    }
    return len;
}

static int http_get(const char *url, const fp_http_opts *opts, const char *bearer,
                    fp_http_response *resp, fp_error *err)
{
    return fp_http_request("GET", url, opts, bearer, NULL, resp, err);
}

int fp_http_post_json(const char *url, const fp_http_opts *opts, const char *json,
                      fp_http_response *resp, fp_error *err)
{
    return fp_http_request("POST", url, opts, NULL, json, resp, err);
}

int fp_http_get(const char *url, const fp_http_opts *opts, fp_http_response *resp, fp_error *err)
{
    return http_get(url, opts, NULL, resp, err);
}

int fp_http_challenge_param(const char *ch, const char *key, char *out, size_t outlen)
{
    size_t kl = strlen(key);
    for (const char *p = ch; (p = strstr(p, key)); p += kl) {
        if ((p == ch || p[-1] == ' ' || p[-1] == ',') && p[kl] == '=' && p[kl + 1] == '"') {
            const char *v = p + kl + 2, *e = strchr(v, '"');
            if (!e || (size_t)(e - v) >= outlen) return 0;
            memcpy(out, v, (size_t)(e - v));
            out[e - v] = '\0';
            return 1;
        }
    }
    return 0;
}

int fp_http_fetch_token(const char *challenge, const fp_http_opts *opts, fp_buf *token,
                        unsigned *expires_in, fp_error *err)
{
    char realm[512], service[256] = "", scope[512] = "";
    if (strncasecmp(challenge, "Bearer ", 7) != 0 ||
        !fp_http_challenge_param(challenge, "realm", realm, sizeof realm))
        return fp_error_set(err, 0, "not a Bearer challenge");
    fp_http_challenge_param(challenge, "service", service, sizeof service);
    fp_http_challenge_param(challenge, "scope", scope, sizeof scope);
    CURL *c = curl_easy_init();
    char *es = c ? curl_easy_escape(c, service, 0) : NULL;
    char *esc = c ? curl_easy_escape(c, scope, 0) : NULL;
    fp_buf turl = FP_BUF_INIT;
    fp_buf_printf(&turl, "%s%sservice=%s%s%s", realm, strchr(realm, '?') ? "&" : "?", es ? es : "",
                  scope[0] ? "&scope=" : "", scope[0] && esc ? esc : "");
    curl_free(es);
    curl_free(esc);
    curl_easy_cleanup(c);
    fp_http_opts topts = opts ? *opts : (fp_http_opts){0};
    topts.headers = NULL;
    topts.sink = NULL;
    fp_http_response tr;
    int rc = http_get(turl.data, &topts, NULL, &tr, err);
    fp_buf_free(&turl);
    if (rc < 0) return -1;
    if (tr.status != 200) {
        /* EACCES: the credentials were refused (the caller may ask again,
         * say once the service knows them) */
        fp_error_set(err, tr.status == 401 || tr.status == 403 ? EACCES : 0,
                     "token service answered HTTP %ld: %.200s", tr.status,
                     tr.body.data ? tr.body.data : "");
        fp_http_response_free(&tr);
        return -1;
    }
    json_t *j = json_loadb(tr.body.data ? tr.body.data : "", tr.body.len, 0, NULL);
    fp_http_response_free(&tr);
    const char *t = json_string_value(json_object_get(j, "token"));
    if (!t) t = json_string_value(json_object_get(j, "access_token"));
    json_int_t ttl = json_integer_value(json_object_get(j, "expires_in"));
    if (expires_in) *expires_in = ttl > 0 ? (unsigned)ttl : 60; /* the spec's default */
    rc = t ? fp_buf_append(token, t, strlen(t))
           : fp_error_set(err, 0, "token service gave no token");
    json_decref(j);
    return rc;
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
    char challenge[sizeof resp->www_authenticate];
    memcpy(challenge, resp->www_authenticate, sizeof challenge);
    fp_http_response_free(resp); /* the 401 is spent; on failure resp holds nothing */
    fp_http_opts topts = plain;
    topts.userpwd = userpwd;
    fp_buf token = FP_BUF_INIT;
    if (fp_http_fetch_token(challenge, &topts, &token, NULL, err) < 0) {
        memset(resp, 0, sizeof *resp);
        return -1;
    }
    int rc = http_get(url, &plain, token.data, resp, err);
    fp_buf_free(&token);
    return rc;
}

int fp_http_request(const char *method, const char *url, const fp_http_opts *opts,
                    const char *bearer, const char *json, fp_http_response *resp, fp_error *err)
{
    static const fp_http_opts defaults = {0};
    if (!opts) opts = &defaults;
    pthread_once(&curl_once, curl_init);
    memset(resp, 0, sizeof *resp);
    CURL *c = curl_easy_init();
    if (!c) return fp_error_set(err, 0, "curl init failed");
    struct sink s = {.resp = resp,
                     .opts = opts,
                     .curl = c,
                     .max = opts->max_body ? opts->max_body : (64u << 20)};
    if (share) curl_easy_setopt(c, CURLOPT_SHARE, share);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
    /* a streamed body may take long: then only a stall ends it */
    if (!opts->sink || opts->timeout_s)
        curl_easy_setopt(c, CURLOPT_TIMEOUT, opts->timeout_s ? opts->timeout_s : 30L);
    if (opts->connect_timeout_s)
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opts->connect_timeout_s);
    if (opts->stall_s) {
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opts->stall_s);
    }
    if (opts->cancel) {
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    }
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "fogport");
    if (!strcmp(method, "HEAD")) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (!strcmp(method, "DELETE") || !strcmp(method, "PUT") || !strcmp(method, "PATCH"))
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (opts->userpwd) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, opts->userpwd);
    }
    struct curl_slist *headers = NULL;
    fp_buf ctype = FP_BUF_INIT;
    if (json) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    } else if (opts->body && (!strcmp(method, "POST") || !strcmp(method, "PUT"))) {
        fp_buf_printf(&ctype, "Content-Type: %s",
                      opts->content_type ? opts->content_type : "application/octet-stream");
        headers = curl_slist_append(headers, ctype.data);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)opts->body_len);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, opts->body);
    }
    fp_buf auth = FP_BUF_INIT;
    if (bearer) {
        fp_buf_printf(&auth, "Authorization: Bearer %s", bearer);
        headers = curl_slist_append(headers, auth.data);
    }
    for (const char *const *h = opts->headers; h && *h; h++)
        headers = curl_slist_append(headers, *h);
    if (headers) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
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
    fp_buf_free(&auth);
    fp_buf_free(&ctype);
    if (rc != CURLE_OK) {
        fp_error_set(err, 0, "%s %s: %s", method, url,
                     s.overflow    ? "response too large"
                     : s.aborted   ? "aborted by the receiver"
                     : s.cancelled ? "cancelled"
                                   : curl_easy_strerror(rc));
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
