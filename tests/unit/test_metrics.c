/* Unit tests for core/metrics: the Prometheus text rendering (escaping,
 * histogram buckets cumulative up to +Inf, _sum and _count). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/metrics.h"

static void assert_text(fp_buf *b, const char *want)
{
    fp_buf_append(b, "", 1); /* NUL */
    if (strcmp(b->data, want) != 0) fail_msg("got:\n%s\nwant:\n%s", b->data, want);
}

static void test_family_and_escaping(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    fp_metrics_family(&b, "x_total", "counter", "a \\ b\nc \"q\"");
    fp_label l[] = {{"a", "back\\slash"}, {"b", "new\nline"}, {"c", "say \"hi\""}};
    fp_metrics_sample_u64(&b, "x_total", l, 3, 42);
    fp_metrics_sample(&b, "y", NULL, 0, 0.5);
    assert_text(&b, "# HELP x_total a \\\\ b\\nc \"q\"\n"
                    "# TYPE x_total counter\n"
                    "x_total{a=\"back\\\\slash\",b=\"new\\nline\",c=\"say \\\"hi\\\"\"} 42\n"
                    "y 0.5\n");
    fp_buf_free(&b);
}

static void test_special_values(void **state)
{
    (void)state;
    fp_buf b = FP_BUF_INIT;
    fp_metrics_sample(&b, "a", NULL, 0, 1.0 / 0.0);
    fp_metrics_sample(&b, "b", NULL, 0, -1.0 / 0.0);
    fp_metrics_sample(&b, "c", NULL, 0, 0.0 / 0.0);
    fp_metrics_sample_u64(&b, "d", NULL, 0, UINT64_MAX);
    assert_text(&b, "a +Inf\nb -Inf\nc NaN\nd 18446744073709551615\n");
    fp_buf_free(&b);
}

static void test_histogram(void **state)
{
    (void)state;
    static const double bounds[] = {0.1, 1, 10};
    fp_histogram h = {.bounds = bounds, .nbounds = 3};
    fp_histogram_observe(&h, 0.05); /* <= 0.1 */
    fp_histogram_observe(&h, 0.1);  /* le is inclusive */
    fp_histogram_observe(&h, 5);    /* <= 10 */
    fp_histogram_observe(&h, 100);  /* only +Inf */
    fp_buf b = FP_BUF_INIT;
    fp_label l[] = {{"family", "blobs"}};
    fp_metrics_histogram(&b, "d_seconds", l, 1, &h);
    assert_text(&b, "d_seconds_bucket{family=\"blobs\",le=\"0.1\"} 2\n"
                    "d_seconds_bucket{family=\"blobs\",le=\"1\"} 2\n"
                    "d_seconds_bucket{family=\"blobs\",le=\"10\"} 3\n"
                    "d_seconds_bucket{family=\"blobs\",le=\"+Inf\"} 4\n"
                    "d_seconds_sum{family=\"blobs\"} 105.15\n"
                    "d_seconds_count{family=\"blobs\"} 4\n");
    fp_buf_free(&b);
}

static void test_histogram_without_labels(void **state)
{
    (void)state;
    static const double bounds[] = {0.25};
    fp_histogram h = {.bounds = bounds, .nbounds = 1};
    fp_buf b = FP_BUF_INIT;
    fp_metrics_histogram(&b, "e", NULL, 0, &h);
    assert_text(&b, "e_bucket{le=\"0.25\"} 0\ne_bucket{le=\"+Inf\"} 0\ne_sum 0\ne_count 0\n");
    fp_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_escaping),
        cmocka_unit_test(test_special_values),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_histogram_without_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
