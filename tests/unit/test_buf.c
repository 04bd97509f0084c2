/* Unit tests for core/buf: the growable NUL-terminated byte buffer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

static void test_append_growth(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    char expect[5000];
    size_t n = 0;
    /* many small appends cross several capacity doublings */
    for (int i = 0; i < 1000; i++) {
        char c[3] = {(char)('a' + i % 26), (char)('A' + i % 26), '0'};
        size_t len = (size_t)(i % 3) + 1;
        assert_int_equal(fp_buf_append(&b, c, len), 0);
        memcpy(expect + n, c, len);
        n += len;
        assert_int_equal(b.len, n);
        assert_true(b.cap > b.len);
        assert_int_equal(b.data[b.len], '\0');
    }
    assert_memory_equal(b.data, expect, n);
    assert_int_equal(strlen(b.data), n);

    /* one large append */
    char big[3000];
    memset(big, 'z', sizeof big);
    assert_int_equal(fp_buf_append(&b, big, sizeof big), 0);
    assert_int_equal(b.len, n + sizeof big);
    assert_memory_equal(b.data, expect, n);
    assert_memory_equal(b.data + n, big, sizeof big);
    assert_int_equal(b.data[b.len], '\0');

    /* binary data with NULs keeps its length */
    size_t before = b.len;
    assert_int_equal(fp_buf_append(&b, "a\0b", 3), 0);
    assert_int_equal(b.len, before + 3);
    assert_memory_equal(b.data + before, "a\0b", 4);

    /* appending nothing still leaves a terminated buffer */
    assert_int_equal(fp_buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, before + 3);
    fp_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_empty_append_allocates(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    assert_int_equal(fp_buf_append(&b, "", 0), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    fp_buf_free(&b);
}

static void test_puts_and_reset(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    assert_int_equal(fp_buf_puts(&b, "hello"), 0);
    assert_int_equal(fp_buf_puts(&b, ", world"), 0);
    assert_string_equal(b.data, "hello, world");
    assert_int_equal(b.len, 12);
    size_t cap = b.cap;
    fp_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(b.cap, cap); /* storage is kept */
    assert_int_equal(fp_buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    fp_buf_free(&b);
    /* reset and free of an empty buffer are harmless */
    fp_buf_reset(&b);
    fp_buf_free(&b);
    assert_null(b.data);
}

static void test_printf_growth(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    assert_int_equal(fp_buf_printf(&b, "%d-%s", 42, "x"), 0);
    assert_string_equal(b.data, "42-x");
    assert_int_equal(b.len, 4);
    /* output far longer than the current capacity */
    char arg[1000];
    memset(arg, 'q', sizeof arg - 1);
    arg[sizeof arg - 1] = '\0';
    assert_int_equal(fp_buf_printf(&b, "[%s|%05u]", arg, 7u), 0);
    assert_int_equal(b.len, 4 + 1 + 999 + 7);
    assert_int_equal(strlen(b.data), b.len);
    assert_memory_equal(b.data, "42-x[", 5);
    assert_memory_equal(b.data + 5, arg, 999);
    assert_string_equal(b.data + 5 + 999, "|00007]");
    /* many printfs accumulate */
    fp_buf_reset(&b);
    for (int i = 0; i < 500; i++)
        assert_int_equal(fp_buf_printf(&b, "%d,", i), 0);
    assert_int_equal(strncmp(b.data, "0,1,2,3,", 8), 0);
    assert_non_null(strstr(b.data, ",498,499,"));
    assert_int_equal(b.data[b.len - 1], ',');
    assert_int_equal(strlen(b.data), b.len);
    fp_buf_free(&b);

    /* an empty format on an empty buffer yields an empty string */
    assert_int_equal(fp_buf_printf(&b, "%s", ""), 0);
    assert_non_null(b.data);
    assert_string_equal(b.data, "");
    assert_int_equal(b.len, 0);
    fp_buf_free(&b);
}

static void test_urlencode(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    assert_int_equal(fp_buf_put_urlencoded(&b, "a b/c:d"), 0);
    assert_string_equal(b.data, "a%20b%2Fc%3Ad");
    fp_buf_reset(&b);
    /* RFC 3986 unreserved characters are kept */
    assert_int_equal(fp_buf_put_urlencoded(&b, "AZaz09-._~"), 0);
    assert_string_equal(b.data, "AZaz09-._~");
    fp_buf_reset(&b);
    assert_int_equal(fp_buf_put_urlencoded(&b, "&=?#%+@\xff\x01"), 0);
    assert_string_equal(b.data, "%26%3D%3F%23%25%2B%40%FF%01");
    fp_buf_reset(&b);
    /* appends to existing content */
    assert_int_equal(fp_buf_puts(&b, "last="), 0);
    assert_int_equal(fp_buf_put_urlencoded(&b, "repo/name:tag"), 0);
    assert_string_equal(b.data, "last=repo%2Fname%3Atag");
    fp_buf_free(&b);
}

static void test_steal(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    assert_int_equal(fp_buf_puts(&b, "owned"), 0);
    char *p = fp_buf_steal(&b);
    assert_string_equal(p, "owned");
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    free(p);

    /* stealing from a never-used buffer gives an empty C string */
    p = fp_buf_steal(&b);
    assert_non_null(p);
    assert_string_equal(p, "");
    free(p);
}

static void test_reserve(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    assert_int_equal(fp_buf_reserve(&b, 1000), 0);
    assert_true(b.cap >= 1001);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    char *data = b.data;
    /* reserved room is used without reallocating */
    char fill[1000];
    memset(fill, 'r', sizeof fill);
    assert_int_equal(fp_buf_append(&b, fill, sizeof fill), 0);
    assert_ptr_equal(b.data, data);
    /* impossible sizes fail with ENOMEM instead of wrapping around */
    errno = 0;
    assert_int_equal(fp_buf_reserve(&b, SIZE_MAX - 10), -1);
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_int_equal(fp_buf_append(&b, fill, SIZE_MAX), -1);
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(b.len, sizeof fill);
    fp_buf_free(&b);
}

static void test_cleanup_attribute(void **state)
{
    (void)state;
    /* cleanup_buf frees on scope exit; LeakSanitizer fails the test otherwise */
    for (int i = 0; i < 3; i++) {
        cleanup_buf fp_buf b = FP_BUF_INIT;
        assert_int_equal(fp_buf_printf(&b, "iteration %d", i), 0);
        assert_int_equal(b.len, 11);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_growth),  cmocka_unit_test(test_empty_append_allocates),
        cmocka_unit_test(test_puts_and_reset), cmocka_unit_test(test_printf_growth),
        cmocka_unit_test(test_urlencode),      cmocka_unit_test(test_steal),
        cmocka_unit_test(test_reserve),        cmocka_unit_test(test_cleanup_attribute),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
