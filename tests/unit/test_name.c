/* Unit tests for core/name: repository names, tags and image references. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/name.h"

#define HEX64 "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static bool name_ok(const char *s)
{
    return fp_name_valid(s, strlen(s));
}

static bool tag_ok(const char *s)
{
    return fp_tag_valid(s, strlen(s));
}

static void test_name_accepts(void **state)
{
    (void)state;
    const char *good[] = {
        "a",         "a/b",        "a.b_c__d--e/f0", "0",         "library/busybox",
        "a-----b",   "a1/b2/c3d4", "my.registry/x",  "a_b.c-d/e", "iot_service",
        "x/y/z/w/v", "9a/8b",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!name_ok(good[i])) fail_msg("'%s' should be a valid name", good[i]);
}

static void test_name_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "",     "A",    "a//b", "/a",    "a/",  "..",    "a/../b", "a..b", "a_-b", "a___b",
        "a b",  "a:b",  ".",    "a/.",   "./a", "a/./b", "_a",     "a_",   "-a",   "a-",
        ".a",   "a.",   "aB",   "a/B",   "a@b", "a\\b",  "a/-b",   "a/b-", "a._b", "a-.b",
        "a\nb", "a/b/", "//",   "a/_/b", "é",   "a+b",   "a%2fb",  "a\tb", "a.-b", "a__.b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (name_ok(bad[i])) fail_msg("'%s' should be an invalid name", bad[i]);
    assert_false(fp_name_valid(NULL, 0));
    assert_false(fp_name_valid(NULL, 3));
}

static void test_name_explicit_length(void **state)
{
    (void)state;
    /* only len bytes are examined */
    assert_true(fp_name_valid("abc/../x", 3));
    assert_false(fp_name_valid("abc/../x", 4));
    assert_false(fp_name_valid("abc/../x", 8));
    assert_false(fp_name_valid("abc", 0));
    /* an embedded NUL is not a name character */
    assert_false(fp_name_valid("ab\0c", 4));
}

static void test_name_length_limit(void **state)
{
    (void)state;
    char s[300];
    memset(s, 'a', sizeof s);
    assert_true(fp_name_valid(s, 255));
    assert_false(fp_name_valid(s, 256));
    assert_false(fp_name_valid(s, 300));
    /* 255 characters with many components */
    for (size_t i = 1; i < 255; i += 2)
        s[i] = '/';
    s[255] = '\0';
    assert_int_equal(strlen(s), 255);
    assert_true(name_ok(s));
    s[255] = 'b';
    s[256] = '\0';
    assert_false(name_ok(s));
}

static void test_tag(void **state)
{
    (void)state;
    const char *good[] = {"latest", "1.0", "v1.2.3-rc.1", "_x", "A", "0", "Z_z.9-", "a..b", "a--"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!tag_ok(good[i])) fail_msg("'%s' should be a valid tag", good[i]);
    const char *bad[] = {"", ".a", "-a", "a/b", "a:b", "a b", "a@b", "a+b", "é", "a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (tag_ok(bad[i])) fail_msg("'%s' should be an invalid tag", bad[i]);

    char t[200];
    memset(t, 'x', sizeof t);
    assert_true(fp_tag_valid(t, 128));
    assert_false(fp_tag_valid(t, 129));
    t[0] = '.';
    assert_false(fp_tag_valid(t, 5));
    t[0] = '-';
    assert_false(fp_tag_valid(t, 5));
    t[0] = '_';
    assert_true(fp_tag_valid(t, 128));
    assert_false(fp_tag_valid(NULL, 1));
    assert_true(fp_tag_valid("v1:junk", 2));
}

static void expect_ref(const char *s, const char *host, const char *name, const char *tag,
                       const char *digest)
{
    fp_reference ref;
    memset(&ref, 'z', sizeof ref);
    if (fp_reference_parse(s, &ref) != 0) fail_msg("'%s' should parse", s);
    assert_string_equal(ref.host, host);
    assert_string_equal(ref.name, name);
    assert_string_equal(ref.tag, tag);
    assert_string_equal(ref.digest, digest);
}

static void test_reference_parse(void **state)
{
    (void)state;
    expect_ref("busybox", "", "busybox", "", "");
    expect_ref("busybox:1.0", "", "busybox", "1.0", "");
    expect_ref("library/busybox:latest", "", "library/busybox", "latest", "");
    expect_ref("localhost:5000/iot_service:1.0", "localhost:5000", "iot_service", "1.0", "");
    expect_ref("127.0.0.1:5000/a/b@sha256:" HEX64, "127.0.0.1:5000", "a/b", "", "sha256:" HEX64);
    expect_ref("a/b:tag@sha256:" HEX64, "", "a/b", "tag", "sha256:" HEX64);
    expect_ref("busybox@sha256:" HEX64, "", "busybox", "", "sha256:" HEX64);
    expect_ref("registry.example.com/team/app:v2", "registry.example.com", "team/app", "v2", "");
    expect_ref("[::1]:5000/x:y", "[::1]:5000", "x", "y", "");
    expect_ref("Example.COM/x", "Example.COM", "x", "", "");
}

static void test_reference_host_rules(void **state)
{
    (void)state;
    /* a first component is a host if it has '.' or ':' or is "localhost" */
    expect_ref("localhost/foo", "localhost", "foo", "", "");
    expect_ref("example.com/foo", "example.com", "foo", "", "");
    expect_ref("host:5000/foo", "host:5000", "foo", "", "");
    expect_ref("localhost:5000/a/b/c:t", "localhost:5000", "a/b/c", "t", "");
    /* otherwise it belongs to the name */
    expect_ref("localhostx/foo", "", "localhostx/foo", "", "");
    expect_ref("local/foo", "", "local/foo", "", "");
    expect_ref("foo/bar", "", "foo/bar", "", "");
    expect_ref("a-b/c", "", "a-b/c", "", "");
    /* with no '/', there is no host: "localhost:5000" is name:tag */
    expect_ref("localhost", "", "localhost", "", "");
    expect_ref("localhost:5000", "", "localhost", "5000", "");
    expect_ref("example.com", "", "example.com", "", "");
    /* a tag-looking ':' in the host part is not a tag */
    expect_ref("host:5000/foo:bar", "host:5000", "foo", "bar", "");
}

static void test_reference_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "Busybox",
        "a//b",
        "/a",
        "a/",
        "busybox:",
        "busybox@",
        "busybox:@sha256:" HEX64,
        "busybox@sha256:abc",
        "busybox@sha256:" HEX64 "0",
        "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
        "busybox@SHA256:" HEX64,
        "busybox:-tag",
        "busybox:.tag",
        "busybox:tag:tag",
        "example.com/",
        "localhost:5000/",
        "exa_mple.com/foo",
        "exa mple.com/foo",
        "example.com/Foo",
        "a b",
        "a/../b",
        "localhost/../etc",
        "busybox@sha256:" HEX64 "@sha256:" HEX64,
        ":tag",
        "@sha256:" HEX64,
        "example.com/@sha256:" HEX64,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fp_reference ref;
        memset(&ref, 'z', sizeof ref);
        if (fp_reference_parse(bad[i], &ref) == 0)
            fail_msg("'%s' should not parse (name '%s' tag '%s')", bad[i], ref.name, ref.tag);
    }
    fp_reference ref;
    assert_int_equal(fp_reference_parse(NULL, &ref), -1);
}

static void test_reference_limits(void **state)
{
    (void)state;
    fp_reference ref;
    char s[1200], want[300];

    /* a 129-character tag is too long, 128 fits */
    memset(want, 't', 128);
    want[128] = '\0';
    snprintf(s, sizeof s, "busybox:%s", want);
    assert_int_equal(fp_reference_parse(s, &ref), 0);
    assert_string_equal(ref.tag, want);
    snprintf(s, sizeof s, "busybox:%st", want);
    assert_int_equal(fp_reference_parse(s, &ref), -1);

    /* a 255-character name behind a host fits, 256 does not */
    memset(want, 'n', 255);
    want[255] = '\0';
    snprintf(s, sizeof s, "example.com/%s:t", want);
    assert_int_equal(fp_reference_parse(s, &ref), 0);
    assert_string_equal(ref.host, "example.com");
    assert_string_equal(ref.name, want);
    snprintf(s, sizeof s, "example.com/n%s:t", want);
    assert_int_equal(fp_reference_parse(s, &ref), -1);

    /* a sha512 digest fills the digest field exactly */
    char d[140];
    memset(d, 'f', 128);
    d[128] = '\0';
    snprintf(s, sizeof s, "a/b@sha512:%s", d);
    assert_int_equal(fp_reference_parse(s, &ref), 0);
    assert_int_equal(strlen(ref.digest), 135);
    assert_string_equal(ref.digest + 7, d);

    /* a host longer than 255 characters is rejected */
    memset(s, 'h', 300);
    s[0] = '.';
    s[299] = 'h';
    snprintf(s + 300, sizeof s - 300, "/x");
    assert_int_equal(fp_reference_parse(s, &ref), -1);

    /* inputs over 1024 bytes are rejected outright */
    memset(s, 'a', 1100);
    s[1100] = '\0';
    assert_int_equal(fp_reference_parse(s, &ref), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_accepts),
        cmocka_unit_test(test_name_rejects),
        cmocka_unit_test(test_name_explicit_length),
        cmocka_unit_test(test_name_length_limit),
        cmocka_unit_test(test_tag),
        cmocka_unit_test(test_reference_parse),
        cmocka_unit_test(test_reference_host_rules),
        cmocka_unit_test(test_reference_invalid),
        cmocka_unit_test(test_reference_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
