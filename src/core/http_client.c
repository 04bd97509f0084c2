#include "core/http_client.h"

#include <ctype.h>
#include <curl/curl.h>
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
    } else if (len > 13 && strncasecmp(data, "Content-Type:", 13) == 0) {
        trim_copy(s->resp->content_type, sizeof s->resp->content_type, data + 13, len - 13);
    }
    return len;
}

int fp_http_get(const char *url, const fp_http_opts *opts, fp_http_response *resp, fp_error *err)
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
    if (opts->cacert) curl_easy_setopt(c, CURLOPT_CAINFO, opts->cacert);
    if (opts->insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    CURLcode rc = curl_easy_perform(c);
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
