/* libFuzzer target: Range / Content-Range headers and fp_parse_u64
 * (core/range). The first input byte picks the representation size, the rest
 * is the header. Results must satisfy start <= end < size, and headers in the
 * strict "bytes=A-B" form must agree with an independent reference model. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/range.h"
#include "fuzz.h"

#define SENTINEL 0x5555555555555555ULL

static uint64_t pick_size(uint8_t b)
{
    if (b < 200) return b;
    if (b < 250) return (uint64_t)b * 1000003u;
    return UINT64_MAX - (uint64_t)(255 - b);
}

/* Digits only, strtoull-based; *ok false on empty or overflow. */
static uint64_t model_number(const char *s, size_t n, bool *ok)
{
    char tmp[64];
    *ok = false;
    if (n == 0 || n >= sizeof tmp) return 0;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    char *end;
    unsigned long long v = strtoull(tmp, &end, 10);
    if (errno || *end) return 0;
    *ok = true;
    return v;
}

/* RFC 9110 single byte-range semantics for "bytes=[A]-[B]" with no blanks.
 * Returns false when the header is not of that strict form. */
static bool model_range(const char *h, uint64_t size, enum fp_range_status *st, uint64_t *start,
                        uint64_t *end)
{
    if (strncmp(h, "bytes=", 6) != 0) return false;
    const char *a = h + 6;
    size_t al = strspn(a, "0123456789");
    if (a[al] != '-') return false;
    const char *b = a + al + 1;
    size_t bl = strspn(b, "0123456789");
    if (b[bl] != '\0' || al + bl >= 60) return false;
    bool aok, bok;
    uint64_t av = model_number(a, al, &aok), bv = model_number(b, bl, &bok);
    *st = FP_RANGE_IGNORE;
    if (al == 0) { /* suffix */
        if (!bok) return true;
        if (bv == 0 || size == 0) {
            *st = FP_RANGE_UNSATISFIABLE;
            return true;
        }
        *st = FP_RANGE_OK;
        *start = bv >= size ? 0 : size - bv;
        *end = size - 1;
        return true;
    }
    if (!aok || (bl > 0 && (!bok || bv < av))) return true;
    if (av >= size) {
        *st = FP_RANGE_UNSATISFIABLE;
        return true;
    }
    *st = FP_RANGE_OK;
    *start = av;
    *end = (bl == 0 || bv >= size) ? size - 1 : bv;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint64_t rsize = pick_size(data[0]);
    char *h = malloc(size);
    if (!h) return 0;
    memcpy(h, data + 1, size - 1);
    h[size - 1] = '\0';

    uint64_t s = SENTINEL, e = SENTINEL;
    enum fp_range_status st = fp_range_parse(h, rsize, &s, &e);
    CHECK(st == FP_RANGE_OK || st == FP_RANGE_IGNORE || st == FP_RANGE_UNSATISFIABLE);
    if (st == FP_RANGE_OK) {
        CHECK(s <= e);
        CHECK(e < rsize);
    } else {
        CHECK(s == SENTINEL && e == SENTINEL);
    }
    if (strchr(h, ',')) CHECK(st == FP_RANGE_IGNORE);
    enum fp_range_status mst;
    uint64_t ms = SENTINEL, me = SENTINEL;
    if (model_range(h, rsize, &mst, &ms, &me)) {
        CHECK(st == mst);
        if (st == FP_RANGE_OK) CHECK(s == ms && e == me);
    }

    s = e = SENTINEL;
    int rc = fp_content_range_parse(h, &s, &e);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0)
        CHECK(s <= e);
    else
        CHECK(s == SENTINEL && e == SENTINEL);

    uint64_t v = SENTINEL;
    rc = fp_parse_u64(h, &v);
    size_t len = strlen(h);
    bool digits = len > 0 && strspn(h, "0123456789") == len;
    if (rc == 0) {
        CHECK(digits);
        bool ok;
        CHECK(model_number(h, len, &ok) == v || len >= 60);
    } else {
        CHECK(rc == -1);
        /* all-digit strings fail only on overflow */
        if (digits) {
            errno = 0;
            (void)strtoull(h, NULL, 10);
            CHECK(errno == ERANGE);
        }
    }
    free(h);
    return 0;
}
