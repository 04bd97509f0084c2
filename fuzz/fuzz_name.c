/* libFuzzer target: repository names and tags (core/name). Invariants from
 * name.h, plus a differential check against the OCI grammar as a POSIX
 * regular expression. */
#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/name.h"
#include "fuzz.h"

#define NAME_RE "^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$"
#define TAG_RE  "^[a-zA-Z0-9_][a-zA-Z0-9._-]*$"

static regex_t name_re, tag_re;

static void init_regexes(void)
{
    static bool ready;
    if (ready) return;
    if (regcomp(&name_re, NAME_RE, REG_EXTENDED | REG_NOSUB) != 0 ||
        regcomp(&tag_re, TAG_RE, REG_EXTENDED | REG_NOSUB) != 0)
        abort();
    ready = true;
}

static bool lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static void check_valid_name(const char *s, size_t len)
{
    CHECK(len > 0 && len <= FP_NAME_MAX);
    CHECK(strlen(s) == len); /* no embedded NUL */
    CHECK(!strstr(s, ".."));
    CHECK(!strstr(s, "//"));
    CHECK(!strstr(s, "/."));
    CHECK(!strstr(s, "./"));
    CHECK(s[0] != '/' && s[len - 1] != '/');
    CHECK(lower_alnum(s[0]) && lower_alnum(s[len - 1]));
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        CHECK(lower_alnum(c) || c == '.' || c == '_' || c == '-' || c == '/');
    }
    /* valid as a whole means valid as a prefix ending at a component end */
    const char *slash = strrchr(s, '/');
    if (slash) CHECK(fp_name_valid(s, (size_t)(slash - s)));
}

static void check_valid_tag(const char *s, size_t len)
{
    CHECK(len > 0 && len <= FP_TAG_MAX);
    CHECK(strlen(s) == len);
    CHECK(s[0] != '.' && s[0] != '-');
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-');
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_regexes();
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    bool has_nul = memchr(s, '\0', size) != NULL;

    bool name_ok = fp_name_valid(s, size);
    if (name_ok) check_valid_name(s, size);
    if (!has_nul && size <= FP_NAME_MAX)
        CHECK(name_ok == (size > 0 && regexec(&name_re, s, 0, NULL, 0) == 0));
    if (size > FP_NAME_MAX) CHECK(!name_ok);

    bool tag_ok = fp_tag_valid(s, size);
    if (tag_ok) check_valid_tag(s, size);
    if (!has_nul && size <= FP_TAG_MAX)
        CHECK(tag_ok == (size > 0 && regexec(&tag_re, s, 0, NULL, 0) == 0));
    if (size > FP_TAG_MAX) CHECK(!tag_ok);

    free(s);
    return 0;
}
