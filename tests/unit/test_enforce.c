/* Unit tests for agent/enforce: the window evaluation (sustained use versus
 * spikes, the window's edges, missing samples), the evidence it yields,
 * the node policy and the privilege check. Samples are built 1 s apart,
 * as the agent takes them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/enforce.h"
#include "agent/spec.h"

/* n samples 1 s apart ending at t_ms = n*1000, with these CPU shares. */
static size_t cpu_run(fp_enforce_sample *s, const double *cpu, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s[i] = (fp_enforce_sample){.t_ms = (int64_t)(i + 1) * 1000,
                                   .wall = 1700000000 + (int64_t)i,
                                   .has_cpu = true,
                                   .cpu = cpu[i],
                                   .memory = 1 << 20,
                                   .pids = 1};
    return n;
}

static void sustained_cpu_is_a_violation(void **state)
{
    (void)state;
    fp_enforce_sample s[8];
    const double cpu[] = {0.1, 0.9, 0.95, 1.0};
    size_t n = cpu_run(s, cpu, 4);
    fp_enforce_policy p = {.max_cpu = 0.2, .window_s = 3};
    fp_enforce_verdict v;
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_CPU);
    assert_int_equal(v.first, 1);
    assert_int_equal(v.count, 3);
    json_t *e = fp_enforce_evidence(s, &v, &p);
    assert_string_equal(json_string_value(json_object_get(e, "kind")), "cpu");
    assert_int_equal(json_array_size(json_object_get(e, "samples")), 3);
    assert_true(json_real_value(json_object_get(e, "limit")) == 0.2);
    assert_int_equal(json_integer_value(json_object_get(e, "window_s")), 3);
    assert_int_equal(json_integer_value(json_object_get(e, "time")), 1700000003);
    json_decref(e);
}

static void spikes_are_tolerated(void **state)
{
    (void)state;
    fp_enforce_sample s[8];
    const double cpu[] = {1.0, 1.0, 0.1, 1.0, 1.0, 0.0, 1.0};
    size_t n = cpu_run(s, cpu, 7);
    fp_enforce_policy p = {.max_cpu = 0.2, .window_s = 3};
    fp_enforce_verdict v;
    for (size_t k = 1; k <= n; k++) { /* as the agent sees them, one at a time */
        fp_enforce_evaluate(s, k, &p, s[k - 1].t_ms, &v);
        assert_int_equal(v.kind, FP_VIOLATION_NONE);
    }
}

static void window_boundaries(void **state)
{
    (void)state;
    fp_enforce_sample s[8];
    const double cpu[] = {1.0, 1.0, 1.0};
    fp_enforce_policy p = {.max_cpu = 0.5, .window_s = 3};
    fp_enforce_verdict v;
    /* one sample short of the window: not yet */
    size_t n = cpu_run(s, cpu, 2);
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_NONE);
    /* exactly the window, with a little jitter: yes */
    n = cpu_run(s, cpu, 3);
    s[2].t_ms -= FP_ENFORCE_SLACK_MS / 2;
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_CPU);
    /* at the limit is not above it */
    const double at[] = {0.5, 0.5, 0.5, 0.5};
    n = cpu_run(s, at, 4);
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_NONE);
    /* the default window is 10 s */
    fp_enforce_sample many[12];
    const double hot[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    fp_enforce_policy d = {.max_cpu = 0.5};
    n = cpu_run(many, hot, 9);
    fp_enforce_evaluate(many, n, &d, many[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_NONE);
    n = cpu_run(many, hot, 10);
    fp_enforce_evaluate(many, n, &d, many[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_CPU);
}

static void missing_samples(void **state)
{
    (void)state;
    fp_enforce_sample s[8];
    const double cpu[] = {1.0, 1.0, 1.0, 1.0};
    fp_enforce_policy p = {.max_cpu = 0.5, .window_s = 4};
    fp_enforce_verdict v;
    /* one missed sample (2 s apart): the share after it covers the gap */
    size_t n = cpu_run(s, cpu, 3);
    s[2].t_ms += 1000;
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_CPU);
    /* a longer gap is no evidence: the run starts after it */
    n = cpu_run(s, cpu, 4);
    s[2].t_ms += 5000;
    s[3].t_ms += 5000;
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_NONE);
    /* a stale newest sample (the instance stopped being sampled) */
    n = cpu_run(s, cpu, 4);
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms + FP_ENFORCE_GAP_MS + 1, &v);
    assert_int_equal(v.kind, FP_VIOLATION_NONE);
    /* the first sample after a start has no CPU share: it breaks the run */
    n = cpu_run(s, cpu, 4);
    s[1].has_cpu = false;
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_NONE);
    /* no samples at all */
    fp_enforce_evaluate(s, 0, &p, 0, &v);
    assert_int_equal(v.kind, FP_VIOLATION_NONE);
}

static void memory_and_pids(void **state)
{
    (void)state;
    fp_enforce_sample s[8];
    const double cpu[] = {0, 0, 0};
    size_t n = cpu_run(s, cpu, 3);
    for (size_t i = 0; i < n; i++) {
        s[i].memory = 100 << 20;
        s[i].pids = 10;
    }
    fp_enforce_policy p = {.max_memory = 64 << 20, .max_pids = 5, .window_s = 3};
    fp_enforce_verdict v;
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_MEMORY); /* memory is judged before pids */
    json_t *e = fp_enforce_evidence(s, &v, &p);
    assert_int_equal(json_integer_value(json_object_get(e, "limit")), 64 << 20);
    json_decref(e);
    p.max_memory = 0;
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_PIDS);
    p.max_pids = 0;
    assert_false(fp_enforce_policy_set(&p));
    fp_enforce_evaluate(s, n, &p, s[n - 1].t_ms, &v);
    assert_int_equal(v.kind, FP_VIOLATION_NONE);
}

static void the_window_keeps_the_newest(void **state)
{
    (void)state;
    static fp_enforce_window w;
    for (int i = 0; i < FP_ENFORCE_SAMPLES + 5; i++) {
        fp_enforce_sample s = {.t_ms = i};
        fp_enforce_push(&w, &s);
    }
    assert_int_equal(w.n, FP_ENFORCE_SAMPLES);
    assert_int_equal(w.s[0].t_ms, 5);
    assert_int_equal(w.s[w.n - 1].t_ms, FP_ENFORCE_SAMPLES + 4);
}

static void node_policy_and_privileges(void **state)
{
    (void)state;
    json_t *pol;
    fp_error err;
    char why[256];
    assert_int_equal(
        fp_node_policy_build("CAP_CHOWN, CAP_NET_BIND_SERVICE", "80 8000-8999", "", &pol, &err), 0);
    json_t *def = json_loads("{\"name\":\"a\",\"capabilities\":[\"CAP_CHOWN\"],"
                             "\"ports\":[80, 8080]}",
                             0, NULL);
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 0);
    json_object_set_new(def, "capabilities", json_pack("[s]", "CAP_NET_RAW"));
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 1);
    assert_non_null(strstr(why, "CAP_NET_RAW"));
    /* never more than Docker's default set, whatever the policy */
    json_object_set_new(def, "capabilities", json_pack("[s]", "CAP_SYS_ADMIN"));
    assert_int_equal(fp_enforce_privileges(def, NULL, why, sizeof why), 1);
    assert_non_null(strstr(why, "CAP_SYS_ADMIN"));
    json_object_del(def, "capabilities");
    json_object_set_new(def, "ports", json_pack("[i]", 9000));
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 1);
    assert_non_null(strstr(why, "port 9000"));
    assert_int_equal(fp_enforce_privileges(def, NULL, why, sizeof why), 0);
    json_decref(pol);
    json_decref(def);
    /* defaults: both null */
    assert_int_equal(fp_node_policy_build("", "", "", &pol, &err), 0);
    assert_true(json_is_null(json_object_get(pol, "capabilities")));
    assert_true(json_is_null(json_object_get(pol, "ports")));
    json_decref(pol);
    /* "none": nothing allowed */
    assert_int_equal(fp_node_policy_build("none", "none", "", &pol, &err), 0);
    assert_int_equal(json_array_size(json_object_get(pol, "capabilities")), 0);
    json_decref(pol);
    assert_int_equal(fp_node_policy_build("CAP_SYS_ADMIN", "", "", &pol, &err), -1);
    assert_int_equal(fp_node_policy_build("", "90-80", "", &pol, &err), -1);
    assert_int_equal(fp_node_policy_build("", "0", "", &pol, &err), -1);
}

/* A symlink below an allowed directory (a service with it mounted
 * writable can make one) does not lead a bind mount out of it; one that
 * stays inside, and an allowed directory that is itself a symlink, do. */
static void host_paths_resolved_here(void **state)
{
    (void)state;
    char dir[] = "/tmp/fp-enforce-XXXXXX", p[4][256], spec[5][600];
    assert_non_null(mkdtemp(dir));
    snprintf(p[0], sizeof p[0], "%s/data", dir);
    snprintf(p[1], sizeof p[1], "%s/data/sub", dir);
    snprintf(p[2], sizeof p[2], "%s/secret", dir);
    snprintf(p[3], sizeof p[3], "%s/link", dir);
    for (int i = 0; i < 3; i++)
        assert_int_equal(mkdir(p[i], 0700), 0);
    assert_int_equal(symlink(p[0], p[3]), 0); /* link -> data */
    snprintf(spec[0], sizeof spec[0], "%s/data/out", dir);
    assert_int_equal(symlink(p[2], spec[0]), 0); /* data/out -> secret */
    snprintf(spec[1], sizeof spec[1], "%s/data/in", dir);
    assert_int_equal(symlink(p[1], spec[1]), 0); /* data/in -> data/sub */
    json_t *pol;
    fp_error err;
    char why[512];
    assert_int_equal(fp_node_policy_build("", "", p[0], &pol, &err), 0);
    char out[700], in[700], sub[700], missing[700];
    snprintf(out, sizeof out, "%s/data/out:/d", dir);
    snprintf(in, sizeof in, "%s/data/in:/d", dir);
    snprintf(sub, sizeof sub, "%s/data/sub:/d:ro", dir);
    snprintf(missing, sizeof missing, "%s/data/not-there:/d", dir);
    char *bad[] = {sub, out, NULL}, *good[] = {in, sub, NULL}, *gone[] = {missing, NULL};
    /* as written, data/out is below data: only resolving finds it */
    json_t *def = json_pack("{s:s, s:[s]}", "name", "a", "host_paths", out);
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 0);
    json_decref(def);
    assert_int_equal(fp_enforce_host_paths_here(bad, pol, why, sizeof why), 1);
    assert_non_null(strstr(why, "/secret"));
    assert_int_equal(fp_enforce_host_paths_here(good, pol, why, sizeof why), 0);
    assert_int_equal(fp_enforce_host_paths_here(NULL, pol, why, sizeof why), 0);
    /* not there: refused (made later, it could be a symlink) */
    assert_int_equal(fp_enforce_host_paths_here(gone, pol, why, sizeof why), 1);
    assert_non_null(strstr(why, "No such file"));
    json_decref(pol);
    /* an allowed directory that is a symlink: judged where it leads */
    assert_int_equal(fp_node_policy_build("", "", p[3], &pol, &err), 0);
    snprintf(sub, sizeof sub, "%s/link/sub:/d", dir);
    char *via_link[] = {sub, NULL};
    assert_int_equal(fp_enforce_host_paths_here(via_link, pol, why, sizeof why), 0);
    assert_int_equal(fp_enforce_host_paths_here(bad, pol, why, sizeof why), 1);
    json_decref(pol);
    /* no host path allowed: whatever exists is refused */
    assert_int_equal(fp_enforce_host_paths_here(good, NULL, why, sizeof why), 1);
    unlink(spec[0]);
    unlink(spec[1]);
    unlink(p[3]);
    rmdir(p[1]);
    rmdir(p[0]);
    rmdir(p[2]);
    rmdir(dir);
}

static void host_paths_policy(void **state)
{
    (void)state;
    json_t *pol;
    fp_error err;
    char why[256];
    json_t *def =
        json_loads("{\"name\":\"a\",\"host_paths\":[\"/srv/data/www:/www:ro\"]}", 0, NULL);
    /* none by default: no policy, an empty one, "none" */
    assert_int_equal(fp_enforce_privileges(def, NULL, why, sizeof why), 1);
    assert_non_null(strstr(why, "host path /srv/data/www"));
    assert_int_equal(fp_node_policy_build("", "", "none", &pol, &err), 0);
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 1);
    json_decref(pol);
    /* a directory allows itself and what is below it, on a component
     * boundary */
    assert_int_equal(fp_node_policy_build("", "", "/srv/data, /opt/x", &pol, &err), 0);
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 0);
    json_object_set_new(def, "host_paths", json_pack("[s]", "/srv/data:/d"));
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 0);
    json_object_set_new(def, "host_paths", json_pack("[s]", "/srv/database:/d"));
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 1);
    json_object_set_new(def, "host_paths", json_pack("[s]", "/srv/data/../../etc:/d"));
    assert_int_equal(fp_enforce_privileges(def, pol, why, sizeof why), 1);
    json_decref(pol);
    json_decref(def);
    assert_int_equal(fp_node_policy_build("", "", "relative/dir", &pol, &err), -1);
    assert_int_equal(fp_node_policy_build("", "", "/", &pol, &err), -1);
    /* the entry's grammar */
    char host[512], ctr[512];
    bool ro;
    assert_int_equal(fp_host_path_parse("/a/b:/c:ro", host, ctr, &ro), 0);
    assert_string_equal(host, "/a/b");
    assert_string_equal(ctr, "/c");
    assert_true(ro);
    assert_int_equal(fp_host_path_parse("/a:/c", host, ctr, &ro), 0);
    assert_false(ro);
    assert_int_equal(fp_host_path_parse("/a:/c:rw", host, ctr, &ro), -1);
    assert_int_equal(fp_host_path_parse("/a:/", host, ctr, &ro), -1); /* over the root */
    assert_int_equal(fp_host_path_parse("/a//b:/c", host, ctr, &ro), -1);
    assert_int_equal(fp_host_path_parse("a:/c", host, ctr, &ro), -1);
    assert_int_equal(fp_host_path_parse("/a:/c/./d", host, ctr, &ro), -1);
}

static void definition_policy_fields(void **state)
{
    (void)state;
    json_t *j = json_loads("{\"name\":\"b\",\"image\":\"x:1\",\"max_cpu\":0.2,\"window_s\":3,"
                           "\"max_memory\":1000,\"max_pids\":4}",
                           0, NULL);
    fp_service s;
    fp_error err;
    assert_int_equal(fp_service_from_json(j, &s, &err), 0);
    assert_true(s.max_cpu == 0.2);
    assert_int_equal(s.window_s, 3);
    json_t *back = fp_service_to_json(&s);
    assert_true(json_real_value(json_object_get(back, "max_cpu")) == 0.2);
    assert_int_equal(json_integer_value(json_object_get(back, "max_memory")), 1000);
    json_decref(back);
    fp_service_free(&s);
    /* at or above the hard limit it could never be seen */
    json_object_set_new(j, "memory", json_integer(1000));
    assert_int_equal(fp_service_from_json(j, &s, &err), -1);
    assert_non_null(strstr(err.msg, "max_memory"));
    json_object_del(j, "memory");
    json_object_set_new(j, "window_s", json_integer(FP_ENFORCE_WINDOW_MAX + 1));
    assert_int_equal(fp_service_from_json(j, &s, &err), -1);
    json_decref(j);
    /* without a policy the encoding has none of the fields */
    j = json_loads("{\"name\":\"b\",\"image\":\"x:1\"}", 0, NULL);
    assert_int_equal(fp_service_from_json(j, &s, &err), 0);
    back = fp_service_to_json(&s);
    assert_null(json_object_get(back, "max_cpu"));
    assert_null(json_object_get(back, "window_s"));
    json_decref(back);
    fp_service_free(&s);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sustained_cpu_is_a_violation),
        cmocka_unit_test(spikes_are_tolerated),
        cmocka_unit_test(window_boundaries),
        cmocka_unit_test(missing_samples),
        cmocka_unit_test(memory_and_pids),
        cmocka_unit_test(the_window_keeps_the_newest),
        cmocka_unit_test(node_policy_and_privileges),
        cmocka_unit_test(host_paths_policy),
        cmocka_unit_test(host_paths_resolved_here),
        cmocka_unit_test(definition_policy_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
