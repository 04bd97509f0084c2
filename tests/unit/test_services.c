/* Unit tests for control/services: what control.db keeps. Violations are
 * bounded by count (as they are recorded) and by age, a node's reported
 * instances by the age of its last report (fp_services_prune). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "control/services.h"
#include "core/fs.h"

static char dir[64];

static fp_services *open_db(void)
{
    snprintf(dir, sizeof dir, "/tmp/fogport-test-services-XXXXXX");
    assert_non_null(mkdtemp(dir));
    fp_services *sv = NULL;
    fp_error err;
    assert_int_equal(fp_services_open(&sv, dir, &err), 0);
    return sv;
}

static void close_db(fp_services *sv)
{
    fp_services_close(sv);
    fp_rm_rf(dir);
}

static void violate(fp_services *sv, const char *service, int i)
{
    char id[32];
    snprintf(id, sizeof id, "v-%d", i);
    json_t *rec = json_pack("{s:s, s:s}", "id", id, "kind", "privilege");
    fp_error err;
    assert_int_equal(fp_services_violation(sv, "fog-1", service, rec, &err), 0);
    /* the heartbeat repeats it: recorded once */
    assert_int_equal(fp_services_violation(sv, "fog-1", service, rec, &err), 1);
    json_decref(rec);
}

static void test_violations_kept_by_count(void **state)
{
    (void)state;
    fp_services *sv = open_db();
    fp_services_set_limits(sv, &(fp_services_limits){.violations_max = 3});
    for (int i = 0; i < 5; i++)
        violate(sv, "web", i);
    json_t *list;
    fp_error err;
    assert_int_equal(fp_services_violations(sv, NULL, &list, &err), 0);
    assert_int_equal(json_array_size(list), 3);
    /* the newest, oldest first */
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")), "v-2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 2), "id")), "v-4");
    json_decref(list);
    close_db(sv);
}

static void test_prune_by_age(void **state)
{
    (void)state;
    fp_services *sv = open_db();
    fp_services_set_limits(sv,
                           &(fp_services_limits){.violations_age_s = 100, .instances_age_s = 50});
    violate(sv, "web", 1);
    json_t *inst = json_pack("[{s:s, s:s}]", "service", "web", "state", "running");
    fp_error err;
    assert_int_equal(fp_services_report(sv, "fog-1", inst, &err), 0);
    json_decref(inst);
    time_t now = time(NULL);
    /* young: nothing goes */
    assert_int_equal(fp_services_prune(sv, now + 10, &err), 0);
    /* the instance report is older than 50 s, the violation not yet 100 */
    assert_int_equal(fp_services_prune(sv, now + 60, &err), 1);
    json_t *list;
    assert_int_equal(fp_services_instances(sv, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    assert_int_equal(fp_services_violations(sv, NULL, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    assert_int_equal(fp_services_prune(sv, now + 200, &err), 1);
    assert_int_equal(fp_services_violations(sv, NULL, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    /* no limits: nothing is pruned */
    fp_services_set_limits(sv, &(fp_services_limits){0});
    violate(sv, "web", 2);
    assert_int_equal(fp_services_prune(sv, now + 100000, &err), 0);
    close_db(sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_violations_kept_by_count),
        cmocka_unit_test(test_prune_by_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
