#include "core/range.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Parse digits at *p, advancing it. Fails on no digits or overflow. */
static bool parse_digits(const char **p, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    if (*s < '0' || *s > '9') return false;
    while (*s >= '0' && *s <= '9') {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return true;
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

int fp_parse_u64(const char *s, uint64_t *out)
{
    if (!s) return -1;
    const char *p = s;
    if (!parse_digits(&p, out) || *p != '\0') return -1;
    return 0;
}

enum fp_range_status fp_range_parse(const char *hdr, uint64_t size, uint64_t *start, uint64_t *end)
{
    if (!hdr) return FP_RANGE_IGNORE;
    const char *p = skip_ws(hdr);
    if (strncmp(p, "bytes=", 6) != 0) return FP_RANGE_IGNORE;
    p = skip_ws(p + 6);
    if (strchr(p, ',')) return FP_RANGE_IGNORE; /* multipart ranges: RFC lets us send the whole */
    uint64_t a = 0, b = 0;
    if (*p == '-') {
        /* suffix range: the last b bytes */
        p++;
        if (!parse_digits(&p, &b) || *skip_ws(p) != '\0') return FP_RANGE_IGNORE;
        if (b == 0 || size == 0) return FP_RANGE_UNSATISFIABLE;
        *start = b >= size ? 0 : size - b;
        *end = size - 1;
        return FP_RANGE_OK;
    }
    if (!parse_digits(&p, &a) || *p != '-') return FP_RANGE_IGNORE;
    p++;
    bool open_end = (*skip_ws(p) == '\0');
    if (!open_end) {
        if (!parse_digits(&p, &b) || *skip_ws(p) != '\0') return FP_RANGE_IGNORE;
        if (b < a) return FP_RANGE_IGNORE; /* invalid range-spec: ignore the header */
    }
    if (a >= size) return FP_RANGE_UNSATISFIABLE;
    *start = a;
    *end = (open_end || b >= size) ? size - 1 : b;
    return FP_RANGE_OK;
}

int fp_content_range_parse(const char *hdr, uint64_t *start, uint64_t *end)
{
    if (!hdr) return -1;
    const char *p = skip_ws(hdr);
    if (strncmp(p, "bytes", 5) == 0) {
        p += 5;
        if (*p == '=' || *p == ' ') p++;
        p = skip_ws(p);
    }
    uint64_t a, b;
    if (!parse_digits(&p, &a) || *p != '-') return -1;
    p++;
    if (!parse_digits(&p, &b)) return -1;
    if (*p == '/') {
        p++;
        uint64_t total;
        if (*p == '*')
            p++;
        else if (!parse_digits(&p, &total))
            return -1;
    }
    if (*skip_ws(p) != '\0' || b < a) return -1;
    *start = a;
    *end = b;
    return 0;
}
