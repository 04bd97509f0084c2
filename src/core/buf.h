/* A growable byte buffer, always NUL-terminated so text can be used as a C
 * string. Used for request bodies, JSON output and paths. */
#ifndef FP_CORE_BUF_H
#define FP_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct fp_buf {
    char *data;
    size_t len;
    size_t cap;
} fp_buf;

#define FP_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* All return 0, or -1 with errno ENOMEM. */
int fp_buf_reserve(fp_buf *b, size_t extra);
int fp_buf_append(fp_buf *b, const void *data, size_t len);
int fp_buf_puts(fp_buf *b, const char *s);
int fp_buf_printf(fp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s percent-encoded for a URL query value (RFC 3986 unreserved kept). */
int fp_buf_put_urlencoded(fp_buf *b, const char *s);
void fp_buf_reset(fp_buf *b);
void fp_buf_free(fp_buf *b);
/* Give the storage to the caller (who frees it); the buffer becomes empty. */
char *fp_buf_steal(fp_buf *b);

static inline void fp_buf_freep(fp_buf *b)
{
    fp_buf_free(b);
}
#define cleanup_buf __attribute__((cleanup(fp_buf_freep)))

#endif
