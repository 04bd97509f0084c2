/* Unit tests for control/usage: the cloud's usage history (append, query
 * filters, folding old samples into one-minute averages and dropping them
 * after a day, all with made-up times) and the events found by comparing
 * one report with the previous. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/usage.h"

/* a whole minute, so buckets start where the test expects */
#define T0 ((time_t)1700000040)

static char dir[64];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/fp-usage-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    fp_usage *u = NULL;
    fp_error err;
    if (fp_usage_open(&u, dir, &err) < 0) fail_msg("%s", err.msg);
    *state = u;
    return 0;
}

static int teardown(void **state)
{
    fp_usage_close(*state);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *inst(const char *service, const char *state, double cpu, json_int_t mem,
                    json_int_t restarts, json_int_t ooms)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:i}", "service", service, "state", state,
                          "restarts", restarts, "oom_kills", ooms, "exit_code", 3);
    if (!strcmp(state, "running"))
        json_object_set_new(o, "usage",
                            json_pack("{s:f, s:I, s:I, s:i}", "cpu", cpu, "memory", mem,
                                      "memory_limit", (json_int_t)1 << 20, "pids", 2));
    return o;
}

static int record(fp_usage *u, const char *node, time_t t, json_t *list)
{
    fp_error err;
    int n = fp_usage_record(u, node, list, t, &err);
    json_decref(list);
    if (n < 0) fail_msg("%s", err.msg);
    return n;
}

static json_t *query(fp_usage *u, const char *service, const char *node, int64_t since,
                     size_t limit)
{
    fp_usage_filter f = {.service = service, .node = node, .since = since, .limit = limit};
    json_t *out = NULL;
    fp_error err;
    if (fp_usage_query(u, &f, &out, &err) < 0) fail_msg("%s", err.msg);
    return out;
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void test_append_and_query(void **state)
{
    fp_usage *u = *state;
    for (int i = 0; i < 10; i++) {
        json_t *a = json_pack("[o, o]", inst("web", "running", 0.25, 1000 + i, 0, 0),
                              inst("db", "running", 0.5, 5000, 0, 0));
        record(u, "fog-1", T0 + i, a);
        record(u, "fog-2", T0 + i, json_pack("[o]", inst("web", "running", 0.1, 42, 0, 0)));
    }
    json_t *all = query(u, NULL, NULL, 0, 0);
    assert_int_equal(json_array_size(all), 30);
    /* oldest first */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 0), "t")), T0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 29), "t")), T0 + 9);
    json_decref(all);

    json_t *web1 = query(u, "web", "fog-1", 0, 0);
    assert_int_equal(json_array_size(web1), 10);
    json_t *s = json_array_get(web1, 9);
    assert_string_equal(str(s, "state"), "running");
    assert_int_equal(json_integer_value(json_object_get(s, "memory")), 1009);
    assert_int_equal(json_integer_value(json_object_get(s, "memory_limit")), 1 << 20);
    assert_int_equal(json_integer_value(json_object_get(s, "pids")), 2);
    assert_int_equal(json_integer_value(json_object_get(s, "period")), 1);
    assert_true(json_real_value(json_object_get(s, "cpu")) == 0.25);
    json_decref(web1);

    json_t *since = query(u, "web", NULL, T0 + 8, 0);
    assert_int_equal(json_array_size(since), 4); /* two nodes, two seconds */
    json_decref(since);

    /* limit keeps the newest */
    json_t *lim = query(u, "db", NULL, 0, 3);
    assert_int_equal(json_array_size(lim), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(lim, 0), "t")), T0 + 7);
    json_decref(lim);

    json_t *none = query(u, "nothere", NULL, 0, 0);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
}

static void test_not_running_has_no_usage(void **state)
{
    fp_usage *u = *state;
    record(u, "edge-1", T0, json_pack("[o]", inst("job", "exited", 0, 0, 0, 0)));
    json_t *q = query(u, "job", NULL, 0, 0);
    assert_int_equal(json_array_size(q), 1);
    assert_true(json_is_null(json_object_get(json_array_get(q, 0), "memory")));
    json_decref(q);
}

static void test_fold_and_drop(void **state)
{
    fp_usage *u = *state;
    /* two minutes of one sample a second: memory 0..59 then 100..159 */
    for (int i = 0; i < 120; i++)
        record(u, "fog-1", T0 + i,
               json_pack("[o]", inst("web", i < 119 ? "running" : "backoff", 0.5,
                                     i < 60 ? i : 100 + (i - 60), i / 60, 0)));
    fp_error err;
    /* still within the hour: nothing changes */
    assert_int_equal(fp_usage_prune(u, T0 + 3600, &err), 0);
    json_t *q = query(u, NULL, NULL, 0, 0);
    assert_int_equal(json_array_size(q), 120);
    json_decref(q);

    /* a sample within the hour stays as it is */
    record(u, "fog-1", T0 + 200, json_pack("[o]", inst("web", "running", 0.5, 7, 1, 0)));
    assert_int_equal(fp_usage_prune(u, T0 + 3600 + 120, &err), 0);
    q = query(u, NULL, NULL, 0, 0);
    assert_int_equal(json_array_size(q), 3);
    json_t *b0 = json_array_get(q, 0), *b1 = json_array_get(q, 1), *raw = json_array_get(q, 2);
    assert_int_equal(json_integer_value(json_object_get(b0, "t")), T0);
    assert_int_equal(json_integer_value(json_object_get(b0, "period")), 60);
    assert_int_equal(json_integer_value(json_object_get(b0, "memory")), 29); /* avg 0..59 */
    assert_true(json_real_value(json_object_get(b0, "cpu")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(b0, "restarts")), 0);
    assert_string_equal(str(b0, "state"), "running");
    assert_int_equal(json_integer_value(json_object_get(b1, "t")), T0 + 60);
    assert_int_equal(json_integer_value(json_object_get(b1, "restarts")), 1);
    /* the bucket's last sample was in backoff (no usage: not averaged) */
    assert_string_equal(str(b1, "state"), "backoff");
    assert_int_equal(json_integer_value(json_object_get(b1, "memory")), 129); /* avg 100..158 */
    assert_int_equal(json_integer_value(json_object_get(raw, "period")), 1);
    json_decref(q);

    /* folding again is a no-op: buckets are not folded twice */
    assert_int_equal(fp_usage_prune(u, T0 + 3600 + 150, &err), 0);
    q = query(u, NULL, NULL, 0, 0);
    assert_int_equal(json_array_size(q), 3);
    json_decref(q);

    /* a day later the averages go too */
    assert_int_equal(fp_usage_prune(u, T0 + 24 * 3600 + 100, &err), 0);
    q = query(u, NULL, NULL, 0, 0);
    assert_int_equal(json_array_size(q), 1); /* the minute at T0+180 */
    json_decref(q);
    assert_int_equal(fp_usage_prune(u, T0 + 24 * 3600 + 3600, &err), 0);
    q = query(u, NULL, NULL, 0, 0);
    assert_int_equal(json_array_size(q), 0);
    json_decref(q);
}

static void test_events(void **state)
{
    fp_usage *u = *state;
    assert_int_equal(record(u, "fog-1", T0, json_pack("[o]", inst("web", "pulling", 0, 0, 0, 0))),
                     1);
    assert_int_equal(
        record(u, "fog-1", T0 + 1, json_pack("[o]", inst("web", "running", 0, 1, 0, 0))), 1);
    /* nothing changed: no event */
    assert_int_equal(
        record(u, "fog-1", T0 + 2, json_pack("[o]", inst("web", "running", 0, 1, 0, 0))), 0);
    /* restarted between two reports, then OOM-killed and in backoff */
    assert_int_equal(
        record(u, "fog-1", T0 + 3, json_pack("[o]", inst("web", "running", 0, 1, 1, 0))), 1);
    assert_int_equal(
        record(u, "fog-1", T0 + 4, json_pack("[o]", inst("web", "backoff", 0, 0, 1, 1))), 2);
    assert_int_equal(
        record(u, "fog-1", T0 + 5, json_pack("[o]", inst("web", "exited", 0, 0, 1, 1))), 1);
    /* another node's report does not remove fog-1's instance */
    assert_int_equal(record(u, "fog-2", T0 + 5, json_array()), 0);
    assert_int_equal(record(u, "fog-1", T0 + 6, json_array()), 1);

    uint64_t last = 0;
    json_t *ev = fp_usage_events(u, 0, NULL, 100, &last);
    const char *want[] = {"pulling", "started", "restarted", "oom_killed",
                          "backoff", "exited",  "removed"};
    assert_int_equal(json_array_size(ev), 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(str(json_array_get(ev, i), "event"), want[i]);
    json_t *exited = json_array_get(ev, 5);
    assert_int_equal(json_integer_value(json_object_get(exited, "exit_code")), 3);
    assert_string_equal(str(exited, "from"), "backoff");
    assert_string_equal(str(exited, "node"), "fog-1");
    assert_int_equal(json_integer_value(json_object_get(exited, "time")), T0 + 5);
    assert_int_equal(last, 7);
    json_decref(ev);

    /* resume after an id; filter by service */
    ev = fp_usage_events(u, 5, NULL, 100, &last);
    assert_int_equal(json_array_size(ev), 2);
    assert_int_equal(last, 7);
    json_decref(ev);
    ev = fp_usage_events(u, 0, "other", 100, &last);
    assert_int_equal(json_array_size(ev), 0);
    assert_int_equal(last, 7);
    json_decref(ev);
    ev = fp_usage_events(u, 7, NULL, 100, &last);
    assert_int_equal(json_array_size(ev), 0);
    assert_int_equal(last, 7);
    json_decref(ev);
}

static void test_ring_is_bounded(void **state)
{
    fp_usage *u = *state;
    for (int i = 0; i < FP_USAGE_EVENTS_MAX + 10; i++)
        record(u, "fog-1", T0 + i,
               json_pack("[o]", inst("web", i % 2 ? "running" : "backoff", 0, 0, 0, 0)));
    uint64_t last = 0;
    json_t *ev = fp_usage_events(u, 0, NULL, 100000, &last);
    assert_int_equal(json_array_size(ev), FP_USAGE_EVENTS_MAX);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(ev, 0), "id")), 11);
    assert_int_equal(last, FP_USAGE_EVENTS_MAX + 10);
    json_decref(ev);
    /* at most max at a time, resuming where the last one stopped */
    ev = fp_usage_events(u, 0, NULL, 5, &last);
    assert_int_equal(json_array_size(ev), 5);
    assert_int_equal(last, 15);
    json_decref(ev);
}

static void test_reopen_remembers_states(void **state)
{
    fp_usage *u = *state;
    time_t now = time(NULL);
    record(u, "fog-1", now, json_pack("[o]", inst("web", "running", 0, 1, 0, 0)));
    fp_usage_close(u);
    fp_error err;
    if (fp_usage_open(&u, dir, &err) < 0) fail_msg("%s", err.msg);
    *state = u;
    /* the cloud restarted: an unchanged instance raises no "started" */
    assert_int_equal(
        record(u, "fog-1", now + 1, json_pack("[o]", inst("web", "running", 0, 1, 0, 0))), 0);
    json_t *q = query(u, "web", NULL, 0, 0);
    assert_int_equal(json_array_size(q), 2);
    json_decref(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_append_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_running_has_no_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_remembers_states, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
