/* Unit tests for core/platform: which child manifest of an index a node
 * runs (os, architecture with aliases, variants), and the error naming the
 * platforms an index has when none fits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "core/platform.h"

#define D(c)                                                                                       \
    "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c  \
        c c c c c c c c c c c c c c c c c c c c c c

static const char INDEX[] =
    "{\"schemaVersion\":2,\"manifests\":["
    "{\"digest\":\"" D(
        "1") "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}},"
             "{\"digest\":\"" D(
                 "2") "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\","
                      "\"variant\":\"v8\"}},"
                      "{\"digest\":\"" D(
                          "3") "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\","
                               "\"variant\":\"v6\"}},"
                               "{\"digest\":\"" D(
                                   "4") "\",\"platform\":{\"os\":\"linux\",\"architecture\":"
                                        "\"arm\","
                                        "\"variant\":\"v5\"}},"
                                        "{\"digest\":\"" D(
                                            "5") "\",\"platform\":{\"os\":\"windows\","
                                                 "\"architecture\":\"386\"}},"
                                                 "{\"digest\":\"" D(
                                                     "6") "\",\"platform\":{\"os\":\"unknown\","
                                                          "\"architecture\":\"unknown\"}}"
                                                          "]}";

static const char *pick(const char *body, const char *os, const char *arch, const char *variant,
                        char *why, size_t whylen)
{
    static char out[FP_DIGEST_MAX];
    fp_platform p = {0};
    snprintf(p.os, sizeof p.os, "%s", os);
    snprintf(p.arch, sizeof p.arch, "%s", arch);
    snprintf(p.variant, sizeof p.variant, "%s", variant);
    char w[512];
    if (fp_platform_pick(body, strlen(body), &p, out, why ? why : w, why ? whylen : sizeof w) < 0)
        return NULL;
    return out;
}

static void test_exact_and_aliases(void **state)
{
    (void)state;
    assert_string_equal(pick(INDEX, "linux", "amd64", "", NULL, 0), D("1"));
    assert_string_equal(pick(INDEX, "linux", "x86_64", "", NULL, 0), D("1"));
    /* arm64's only variant is v8: with or without it, either spelling */
    assert_string_equal(pick(INDEX, "linux", "arm64", "", NULL, 0), D("2"));
    assert_string_equal(pick(INDEX, "linux", "aarch64", "", NULL, 0), D("2"));
    assert_string_equal(pick(INDEX, "linux", "arm64", "v8", NULL, 0), D("2"));
    assert_string_equal(pick(INDEX, "linux", "arm", "v6", NULL, 0), D("3"));
    assert_string_equal(pick(INDEX, "linux", "arm", "6", NULL, 0), D("3"));
    assert_string_equal(pick(INDEX, "windows", "386", "", NULL, 0), D("5"));
}

static void test_variants(void **state)
{
    (void)state;
    /* arm v7 runs v6 (the highest below), not v5 */
    assert_string_equal(pick(INDEX, "linux", "arm", "v7", NULL, 0), D("3"));
    assert_string_equal(pick(INDEX, "linux", "armhf", "", NULL, 0), D("3"));
    /* v5 does not run v6 */
    assert_string_equal(pick(INDEX, "linux", "arm", "v5", NULL, 0), D("4"));
    /* a child with no variant fits any variant, after an exact one */
    static const char nov[] =
        "{\"manifests\":["
        "{\"digest\":\"" D(
            "a") "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\"}},"
                 "{\"digest\":\"" D(
                     "b") "\",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\","
                          "\"variant\":\"v7\"}}]}";
    assert_string_equal(pick(nov, "linux", "arm", "v7", NULL, 0), D("b"));
    assert_string_equal(pick(nov, "linux", "arm", "v6", NULL, 0), D("a"));
}

static void test_none_fits(void **state)
{
    (void)state;
    char why[512];
    assert_null(pick(INDEX, "linux", "s390x", "", why, sizeof why));
    assert_non_null(strstr(why, "no manifest for linux/s390x"));
    assert_non_null(strstr(why, "linux/amd64, linux/arm64, linux/arm/v6"));
    /* the os must match too */
    assert_null(pick(INDEX, "linux", "386", "", why, sizeof why));
    /* a newer arm variant than the CPU's does not run */
    static const char v8only[] =
        "{\"manifests\":[{\"digest\":\"" D("c") "\",\"platform\":{\"os\":\"linux\","
                                                "\"architecture\":\"arm\",\"variant\":\"v8\"}}]}";
    assert_null(pick(v8only, "linux", "arm", "v7", why, sizeof why));
    /* children without a platform, or with a bad digest, are never taken */
    static const char bare[] = "{\"manifests\":[{\"digest\":\"" D(
        "d") "\"},"
             "{\"digest\":\"nope\",\"platform\":{\"os\":\"linux\","
             "\"architecture\":\"amd64\"}}]}";
    assert_null(pick(bare, "linux", "amd64", "", why, sizeof why));
    assert_null(pick("{}", "linux", "amd64", "", why, sizeof why));
    assert_null(pick("not json", "linux", "amd64", "", why, sizeof why));
}

static void test_host(void **state)
{
    (void)state;
    fp_platform p;
    fp_platform_host(&p);
    assert_string_equal(p.os, "linux");
    struct utsname u;
    assert_int_equal(uname(&u), 0);
    if (!strcmp(u.machine, "x86_64")) assert_string_equal(p.arch, "amd64");
    if (!strcmp(u.machine, "aarch64")) assert_string_equal(p.arch, "arm64");
    char s[96];
    fp_platform_str(&p, s, sizeof s);
    assert_true(!strcmp(u.machine, "x86_64") ? !strcmp(s, "linux/amd64") : strlen(s) > 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_aliases),
        cmocka_unit_test(test_variants),
        cmocka_unit_test(test_none_fits),
        cmocka_unit_test(test_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
