/* Unit tests for core/range: Range and Content-Range headers, fp_parse_u64. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/range.h"

#define SENTINEL 0xdeadbeefULL

static void expect_ok(const char *hdr, uint64_t size, uint64_t want_start, uint64_t want_end)
{
    uint64_t s = SENTINEL, e = SENTINEL;
    enum fp_range_status st = fp_range_parse(hdr, size, &s, &e);
    if (st != FP_RANGE_OK)
        fail_msg("'%s' (size %llu): want OK, got %d", hdr, (unsigned long long)size, st);
    assert_int_equal(s, want_start);
    assert_int_equal(e, want_end);
}

static void expect_status(const char *hdr, uint64_t size, enum fp_range_status want)
{
    uint64_t s = SENTINEL, e = SENTINEL;
    enum fp_range_status st = fp_range_parse(hdr, size, &s, &e);
    if (st != want)
        fail_msg("'%s' (size %llu): want %d, got %d", hdr ? hdr : "(null)",
                 (unsigned long long)size, want, st);
    /* nothing is reported for a range that is not served */
    assert_int_equal(s, SENTINEL);
    assert_int_equal(e, SENTINEL);
}

static void test_range_basic(void **state)
{
    (void)state;
    expect_ok("bytes=0-0", 100, 0, 0);
    expect_ok("bytes=0-99", 100, 0, 99);
    expect_ok("bytes=10-19", 100, 10, 19);
    expect_ok("bytes=99-99", 100, 99, 99);
    expect_ok("bytes=0-", 100, 0, 99);
    expect_ok("bytes=42-", 100, 42, 99);
    expect_ok("bytes=99-", 100, 99, 99);
    /* whitespace around the spec is tolerated */
    expect_ok(" bytes= 1-2 ", 100, 1, 2);
    expect_ok("bytes=1-\t", 100, 1, 99);
}

static void test_range_suffix(void **state)
{
    (void)state;
    expect_ok("bytes=-5", 100, 95, 99);
    expect_ok("bytes=-1", 100, 99, 99);
    expect_ok("bytes=-100", 100, 0, 99);
    /* a suffix longer than the representation selects all of it */
    expect_ok("bytes=-500", 100, 0, 99);
    expect_ok("bytes=-18446744073709551615", 7, 0, 6);
    expect_status("bytes=-0", 100, FP_RANGE_UNSATISFIABLE);
}

static void test_range_reversed_ignored(void **state)
{
    (void)state;
    expect_status("bytes=5-2", 100, FP_RANGE_IGNORE);
    expect_status("bytes=1-0", 100, FP_RANGE_IGNORE);
    /* even when the start is past the end of the representation */
    expect_status("bytes=500-200", 100, FP_RANGE_IGNORE);
}

static void test_range_unsatisfiable(void **state)
{
    (void)state;
    expect_status("bytes=100-", 100, FP_RANGE_UNSATISFIABLE);
    expect_status("bytes=100-100", 100, FP_RANGE_UNSATISFIABLE);
    expect_status("bytes=150-200", 100, FP_RANGE_UNSATISFIABLE);
    expect_status("bytes=18446744073709551615-", 100, FP_RANGE_UNSATISFIABLE);
}

static void test_range_end_clamped(void **state)
{
    (void)state;
    expect_ok("bytes=0-100", 100, 0, 99);
    expect_ok("bytes=50-1000000", 100, 50, 99);
    expect_ok("bytes=0-18446744073709551615", 100, 0, 99);
    expect_ok("bytes=0-18446744073709551615", UINT64_MAX, 0, UINT64_MAX - 1);
}

static void test_range_size_zero(void **state)
{
    (void)state;
    expect_status("bytes=0-0", 0, FP_RANGE_UNSATISFIABLE);
    expect_status("bytes=0-", 0, FP_RANGE_UNSATISFIABLE);
    expect_status("bytes=-5", 0, FP_RANGE_UNSATISFIABLE);
    expect_status("bytes=3-1", 0, FP_RANGE_IGNORE);
    expect_status("garbage", 0, FP_RANGE_IGNORE);
}

static void test_range_ignored(void **state)
{
    (void)state;
    const char *bad[] = {
        "",
        "bytes",
        "bytes=",
        "bytes=-",
        "bytes=--1",
        "bytes=a-b",
        "bytes=1-b",
        "bytes=1-2x",
        "bytes=1x-2",
        "bytes=-5x",
        "bytes=1 -2",
        "bytes=+1-2",
        "bytes:0-1",
        "bytes 0-1",
        "items=0-1",
        "0-1",
        "bytes=0-1,3-4", /* multiple ranges: serve the whole */
        "bytes=0-1, 3-4",
        "bytes=-1,-2",
        "bytes=,0-1",
        /* numbers that do not fit in 64 bits */
        "bytes=18446744073709551616-",
        "bytes=0-18446744073709551616",
        "bytes=0-99999999999999999999999999",
        "bytes=-18446744073709551616",
        "bytes=99999999999999999999999999-",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_status(bad[i], 100, FP_RANGE_IGNORE);
    expect_status(NULL, 100, FP_RANGE_IGNORE);
}

static void test_content_range(void **state)
{
    (void)state;
    struct {
        const char *hdr;
        uint64_t start, end;
    } good[] = {
        {"0-99", 0, 99},
        {"0-0", 0, 0},
        {"100-199", 100, 199},
        {"bytes 0-99/100", 0, 99},
        {"bytes 0-99/*", 0, 99},
        {"bytes=0-99", 0, 99},
        {"bytes=5-9", 5, 9},
        {" 0-99 ", 0, 99},
        {"0-18446744073709551615", 0, UINT64_MAX},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t s = SENTINEL, e = SENTINEL;
        if (fp_content_range_parse(good[i].hdr, &s, &e) != 0)
            fail_msg("'%s' should parse", good[i].hdr);
        assert_int_equal(s, good[i].start);
        assert_int_equal(e, good[i].end);
    }
    const char *bad[] = {
        "5-2",
        "1-0",
        "",
        "junk",
        "0-",
        "-5",
        "0",
        "0-99/",
        "0-99/x",
        "0-99 x",
        "0-9x",
        "a-b",
        "0--1",
        "-",
        "0-99/-1",
        "bytes 0-",
        "bytes */100",
        "0-1-2",
        "0-99,1-2",
        "+0-1",
        "0+1",
        "0-99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t s = SENTINEL, e = SENTINEL;
        if (fp_content_range_parse(bad[i], &s, &e) != -1)
            fail_msg("'%s' should be rejected", bad[i]);
        assert_int_equal(s, SENTINEL);
        assert_int_equal(e, SENTINEL);
    }
    uint64_t s, e;
    assert_int_equal(fp_content_range_parse(NULL, &s, &e), -1);
}

static void test_parse_u64(void **state)
{
    (void)state;
    uint64_t v = 7;
    assert_int_equal(fp_parse_u64("0", &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(fp_parse_u64("12345", &v), 0);
    assert_int_equal(v, 12345);
    assert_int_equal(fp_parse_u64("007", &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(fp_parse_u64("18446744073709551615", &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(fp_parse_u64("18446744073709551610", &v), 0);
    assert_int_equal(v, UINT64_MAX - 5);

    const char *bad[] = {
        "18446744073709551616",
        "18446744073709551620",
        "99999999999999999999",
        "-1",
        "-0",
        "+1",
        "",
        "12a",
        "a12",
        " 1",
        "1 ",
        "1.0",
        "0x10",
        "1e3",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 42;
        if (fp_parse_u64(bad[i], &v) != -1) fail_msg("'%s' should be rejected", bad[i]);
    }
    assert_int_equal(fp_parse_u64(NULL, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_range_basic),
        cmocka_unit_test(test_range_suffix),
        cmocka_unit_test(test_range_reversed_ignored),
        cmocka_unit_test(test_range_unsatisfiable),
        cmocka_unit_test(test_range_end_clamped),
        cmocka_unit_test(test_range_size_zero),
        cmocka_unit_test(test_range_ignored),
        cmocka_unit_test(test_content_range),
        cmocka_unit_test(test_parse_u64),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
