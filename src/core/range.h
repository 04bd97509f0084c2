/* HTTP byte ranges: the Range request header on blob GETs (RFC 9110 §14) and
 * the Content-Range header on chunked upload PATCH/PUT (the OCI form
 * "<start>-<end>", inclusive; "bytes <start>-<end>/<total|*>" accepted too). */
#ifndef FP_CORE_RANGE_H
#define FP_CORE_RANGE_H

#include <stdint.h>

enum fp_range_status {
    FP_RANGE_OK = 0,             /* *start..*end (inclusive) is satisfiable */
    FP_RANGE_IGNORE = 1,         /* absent, malformed or multi-range: serve the whole */
    FP_RANGE_UNSATISFIABLE = -1, /* answer 416 (Content-Range: bytes STAR/size) */
};

/* Parse a Range header value for a representation of `size` bytes. */
enum fp_range_status fp_range_parse(const char *hdr, uint64_t size, uint64_t *start, uint64_t *end);

/* Parse an upload Content-Range. Returns 0 with start and end (inclusive) or
 * -1 when malformed or end < start. */
int fp_content_range_parse(const char *hdr, uint64_t *start, uint64_t *end);

/* Parse a non-negative decimal integer that must fill the whole string.
 * Returns 0, or -1 on junk, sign or overflow. */
int fp_parse_u64(const char *s, uint64_t *out);

#endif
