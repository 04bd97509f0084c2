#include "core/name.h"

#include <ctype.h>
#include <string.h>

#include "core/digest.h"

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool component_valid(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || !lower_alnum(s[0])) return false;
    while (i < len) {
        while (i < len && lower_alnum(s[i]))
            i++;
        if (i == len) return true;
        /* separator */
        size_t start = i;
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < len && s[i] == '_') i++;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else {
            return false;
        }
        (void)start;
        if (i == len || !lower_alnum(s[i])) return false;
    }
    return true;
}

bool fp_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > FP_NAME_MAX) return false;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || name[i] == '/') {
            if (!component_valid(name + start, i - start)) return false;
            start = i + 1;
        }
    }
    return true;
}

bool fp_tag_valid(const char *tag, size_t len)
{
    if (!tag || len == 0 || len > FP_TAG_MAX) return false;
    char c = tag[0];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
        return false;
    for (size_t i = 1; i < len; i++) {
        c = tag[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

static bool host_valid(const char *s, size_t len)
{
    if (len == 0 || len > 255) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

int fp_reference_parse(const char *s, fp_reference *ref)
{
    memset(ref, 0, sizeof *ref);
    if (!s) return -1;
    size_t len = strlen(s);
    if (len == 0 || len > 1024) return -1;

    /* digest suffix */
    const char *at = memchr(s, '@', len);
    size_t rest = len;
    if (at) {
        size_t dlen = len - (size_t)(at + 1 - s);
        if (dlen >= sizeof ref->digest || fp_digest_parse(at + 1, dlen, NULL) != FP_DIGEST_OK)
            return -1;
        memcpy(ref->digest, at + 1, dlen);
        rest = (size_t)(at - s);
    }

    /* host prefix: first component, if it looks like a host */
    size_t name_start = 0;
    const char *slash = memchr(s, '/', rest);
    if (slash) {
        size_t hl = (size_t)(slash - s);
        bool is_host =
            memchr(s, '.', hl) || memchr(s, ':', hl) || (hl == 9 && memcmp(s, "localhost", 9) == 0);
        if (is_host) {
            if (!host_valid(s, hl)) return -1;
            memcpy(ref->host, s, hl);
            name_start = hl + 1;
        }
    }

    /* tag: a ':' after the last '/' */
    size_t name_end = rest;
    for (size_t i = rest; i > name_start; i--) {
        if (s[i - 1] == '/') break;
        if (s[i - 1] == ':') {
            size_t tl = rest - i;
            if (!fp_tag_valid(s + i, tl)) return -1;
            memcpy(ref->tag, s + i, tl);
            name_end = i - 1;
            break;
        }
    }
    size_t nl = name_end - name_start;
    if (!fp_name_valid(s + name_start, nl)) return -1;
    memcpy(ref->name, s + name_start, nl);
    return 0;
}

bool fp_labels_valid(const char *labels, unsigned max_pairs)
{
    size_t n = strlen(labels);
    if (n == 0 || n > FP_LABELS_MAX) return false;
    unsigned pairs = 0;
    for (const char *p = labels; *p;) {
        size_t len = strcspn(p, ","), k = strcspn(p, "=");
        if (k >= len || k == 0 || ++pairs > max_pairs) return false;
        if (!islower((unsigned char)p[0]) && !isdigit((unsigned char)p[0])) return false;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            bool ok = i < k ? islower(c) || isdigit(c) || strchr("_./-", c)
                            : isalnum(c) || strchr("_.-", c) || (i == k);
            if (!ok || !c) return false;
        }
        p += len;
        if (*p == ',' && !*++p) return false; /* a trailing comma */
    }
    return true;
}

bool fp_service_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > FP_SERVICE_NAME_MAX) return false;
    if (!islower((unsigned char)name[0]) && !isdigit((unsigned char)name[0])) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!islower(c) && !isdigit(c) && c != '_' && c != '-') return false;
    }
    return true;
}
