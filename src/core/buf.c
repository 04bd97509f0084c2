#include "core/buf.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fp_buf_reserve(fp_buf *b, size_t extra)
{
    if (extra > SIZE_MAX / 2 - b->len) {
        errno = ENOMEM;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return -1;
    p[b->len] = '\0'; /* a fresh allocation must read as a C string too */
    b->data = p;
    b->cap = cap;
    return 0;
}

int fp_buf_append(fp_buf *b, const void *data, size_t len)
{
    if (fp_buf_reserve(b, len) < 0) return -1;
    if (len) memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int fp_buf_puts(fp_buf *b, const char *s)
{
    return fp_buf_append(b, s, strlen(s));
}

int fp_buf_printf(fp_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || fp_buf_reserve(b, (size_t)n) < 0) return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int fp_buf_put_urlencoded(fp_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            if (fp_buf_append(b, p, 1) < 0) return -1;
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (fp_buf_append(b, enc, 3) < 0) return -1;
        }
    }
    return 0;
}

void fp_buf_reset(fp_buf *b)
{
    b->len = 0;
    if (b->data) b->data[0] = '\0';
}

void fp_buf_free(fp_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *fp_buf_steal(fp_buf *b)
{
    if (!b->data && fp_buf_reserve(b, 0) < 0) return NULL;
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}
