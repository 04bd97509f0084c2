/* libFuzzer target: image references (core/name fp_reference_parse). A
 * reference that parses must re-validate part by part and reassemble into
 * exactly the input. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/digest.h"
#include "core/name.h"
#include "fuzz.h"

static void check_ref(const char *s, const fp_reference *ref)
{
    /* every field is a terminated string */
    CHECK(memchr(ref->host, '\0', sizeof ref->host));
    CHECK(memchr(ref->name, '\0', sizeof ref->name));
    CHECK(memchr(ref->tag, '\0', sizeof ref->tag));
    CHECK(memchr(ref->digest, '\0', sizeof ref->digest));

    CHECK(fp_name_valid(ref->name, strlen(ref->name)));
    CHECK(ref->tag[0] == '\0' || fp_tag_valid(ref->tag, strlen(ref->tag)));
    CHECK(ref->digest[0] == '\0' || fp_digest_valid(ref->digest));
    if (ref->host[0]) {
        CHECK(!strchr(ref->host, '/') && !strchr(ref->host, '@'));
        CHECK(strchr(ref->host, '.') || strchr(ref->host, ':') ||
              strcmp(ref->host, "localhost") == 0);
    } else {
        /* without a host, the first name component must not look like one */
        const char *slash = strchr(ref->name, '/');
        if (slash) {
            size_t fl = (size_t)(slash - ref->name);
            CHECK(!memchr(ref->name, '.', fl));
            CHECK(!(fl == 9 && memcmp(ref->name, "localhost", 9) == 0));
        }
    }

    /* reassemble */
    char again[2048];
    int n = snprintf(again, sizeof again, "%s%s%s%s%s%s%s", ref->host, ref->host[0] ? "/" : "",
                     ref->name, ref->tag[0] ? ":" : "", ref->tag, ref->digest[0] ? "@" : "",
                     ref->digest);
    CHECK(n > 0 && (size_t)n < sizeof again);
    CHECK(strcmp(again, s) == 0);

    /* and parsing is stable */
    fp_reference ref2;
    CHECK(fp_reference_parse(again, &ref2) == 0);
    CHECK(memcmp(ref, &ref2, sizeof ref2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    fp_reference ref;
    memset(&ref, 0x5a, sizeof ref);
    size_t len = strlen(s);
    if (fp_reference_parse(s, &ref) == 0) {
        check_ref(s, &ref);
    } else if (fp_name_valid(s, len)) {
        /* a plain name only fails when its first component is taken for a
         * host (it has a '.') and is not a valid host name (it has a '_') */
        const char *slash = strchr(s, '/');
        CHECK(slash && memchr(s, '.', (size_t)(slash - s)) && memchr(s, '_', (size_t)(slash - s)));
    }
    free(s);
    return 0;
}
