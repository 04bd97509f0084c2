/* Unit tests for control/audit: a log of appended entries verifies; an
 * edited byte, a removed, swapped, re-signed or respaced entry, a forged
 * head and a cut-off tail are each caught at the right entry; a torn last
 * line (a crash mid-append) still verifies up to it and is cut at the next
 * open; appends from threads and from two handles (the cloud and a
 * command) chain correctly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "control/audit.h"
#include "core/fs.h"

#define N 20

struct fixture {
    char dir[64];
    char log[128], head[128], pub[128];
    fp_key *key;
    fp_keyring *ring;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/fogport-test-audit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof f->log, "%s/audit.log", f->dir);
    snprintf(f->head, sizeof f->head, "%s/audit.head", f->dir);
    snprintf(f->pub, sizeof f->pub, "%s/token.pub", f->dir);
    fp_error err;
    assert_int_equal(fp_key_generate(&f->key, &err), 0);
    assert_int_equal(fp_key_save_public(f->key, f->pub, &err), 0);
    f->ring = fp_keyring_new();
    assert_int_equal(fp_keyring_load(f->ring, f->pub, &err), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    fp_key_free(f->key);
    fp_keyring_free(f->ring);
    fp_rm_rf(f->dir);
    free(f);
    return 0;
}

/* A log of n entries: deployments of service-K with a digest each. */
static void fill(struct fixture *f, int n)
{
    fp_audit *a;
    fp_error err;
    assert_int_equal(fp_audit_open(&a, f->dir, f->key, &err), 0);
    for (int i = 1; i <= n; i++) {
        char name[32];
        snprintf(name, sizeof name, "service-%d", i);
        json_t *d =
            json_pack("{s:s, s:s, s:s}", "image", "web_service:latest", "digest",
                      "sha256:1111111111111111111111111111111111111111111111111111111111111111",
                      "node", "fog-1");
        assert_int_equal(fp_audit_append(a, FP_AUDIT_SERVICE_CREATED, "user:admin", name, d, &err),
                         0);
        json_decref(d);
    }
    fp_audit_close(a);
}

static int verify(struct fixture *f, bool head, fp_audit_report *rep)
{
    fp_error err;
    int rc = fp_audit_verify(f->log, head ? f->head : NULL, f->ring, NULL, NULL, rep, &err);
    assert_true(rc >= 0);
    return rc;
}

/* The log's lines (each with its '\n'), to edit and write back. */
struct lines {
    char *v[256];
    size_t n;
};

static void lines_read(const char *path, struct lines *l)
{
    char *text;
    size_t len;
    fp_error err;
    assert_int_equal(fp_read_file(path, 1 << 24, &text, &len, &err), 0);
    l->n = 0;
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        size_t k = nl ? (size_t)(nl - p + 1) : strlen(p);
        l->v[l->n++] = strndup(p, k);
        p += k;
    }
    free(text);
}

static void lines_write(const char *path, struct lines *l)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i]) fputs(l->v[i], fp);
    fclose(fp);
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
}

static int count_entry(void *ctx, const json_t *e)
{
    (void)e;
    (*(int *)ctx)++;
    return 0;
}

static void test_appended_log_verifies(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    fp_audit_report rep;
    int seen = 0;
    fp_error err;
    assert_int_equal(fp_audit_verify(f->log, f->head, f->ring, count_entry, &seen, &rep, &err), 0);
    assert_int_equal(rep.entries, N);
    assert_int_equal(seen, N);
    assert_true(rep.head_found);
    assert_int_equal(rep.head_seq, N);
    assert_int_equal(rep.torn_bytes, 0);
    /* reopening chains on: seq N+1 */
    fill(f, 1);
    assert_int_equal(verify(f, true, &rep), 0);
    assert_int_equal(rep.entries, N + 1);
    json_t *all;
    bool more;
    assert_int_equal(fp_audit_read(f->log, 5, 3, &all, &more, &err), 0);
    assert_int_equal(json_array_size(all), 3);
    assert_true(more);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 0), "seq")), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(all, 1), "prev")),
                        json_string_value(json_object_get(json_array_get(all, 0), "hash")));
    json_decref(all);
    json_t *last;
    assert_int_equal(fp_audit_find_last(f->log, FP_AUDIT_SERVICE_CREATED, &last, &err), 0);
    assert_string_equal(json_string_value(json_object_get(last, "subject")), "service-1");
    json_decref(last);
    assert_int_equal(fp_audit_find_last(f->log, FP_AUDIT_RECALL, &last, &err), 1);
}

static void test_edited_byte(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    struct lines l;
    lines_read(f->log, &l);
    char *p = strstr(l.v[4], "sha256:1111");
    assert_non_null(p);
    p[10] = '2'; /* one digit of entry 5's image digest */
    lines_write(f->log, &l);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 1);
    assert_int_equal(rep.bad_line, 5);
    assert_int_equal(rep.bad_seq, 5);
    assert_int_equal(rep.entries, 4);
    assert_non_null(strstr(rep.why, "edited"));
}

static void test_respaced_entry(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    struct lines l;
    lines_read(f->log, &l);
    /* same JSON meaning, one more space: still an edit */
    char *p = strstr(l.v[2], "\"kind\":");
    assert_non_null(p);
    char *edited = malloc(strlen(l.v[2]) + 2);
    sprintf(edited, "%.*s \"kind\":%s", (int)(p - l.v[2]), l.v[2], p + 7);
    free(l.v[2]);
    l.v[2] = edited;
    lines_write(f->log, &l);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 1);
    assert_int_equal(rep.bad_seq, 3);
    assert_non_null(strstr(rep.why, "canonical"));
}

static void test_removed_entry(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    struct lines l;
    lines_read(f->log, &l);
    free(l.v[6]);
    l.v[6] = NULL; /* entry 7 */
    lines_write(f->log, &l);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 1);
    assert_int_equal(rep.bad_line, 7);
    assert_int_equal(rep.bad_seq, 8);
    assert_non_null(strstr(rep.why, "entry 7 was removed"));
}

static void test_swapped_entries(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    struct lines l;
    lines_read(f->log, &l);
    char *t = l.v[2];
    l.v[2] = l.v[3];
    l.v[3] = t;
    lines_write(f->log, &l);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 1);
    assert_int_equal(rep.bad_line, 3);
    assert_int_equal(rep.bad_seq, 4);
}

/* Entry 6 edited by someone with another key, hash and signature redone;
 * kid either naming the other key or kept. */
static void resign(struct fixture *f, bool keep_kid)
{
    fp_key *other;
    fp_error err;
    assert_int_equal(fp_key_generate(&other, &err), 0);
    struct lines l;
    lines_read(f->log, &l);
    json_t *e = json_loads(l.v[5], 0, NULL);
    assert_non_null(e);
    json_object_set_new(json_object_get(e, "details"), "node", json_string("evil-1"));
    if (!keep_kid) json_object_set_new(e, "kid", json_string(fp_key_id(other)));
    json_object_del(e, "hash");
    json_object_del(e, "sig");
    int flags = JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII;
    char *body = json_dumps(e, flags);
    char hash[FP_DIGEST_MAX];
    fp_digest_bytes(FP_SHA256, body, strlen(body), hash);
    free(body);
    char input[128];
    snprintf(input, sizeof input, "fogport-audit-v1:%s", hash);
    fp_buf sig = FP_BUF_INIT;
    assert_int_equal(fp_es256_sign(other, input, strlen(input), &sig, &err), 0);
    json_object_set_new(e, "hash", json_string(hash));
    json_object_set_new(e, "sig", json_string(sig.data));
    fp_buf_free(&sig);
    char *line = json_dumps(e, flags);
    json_decref(e);
    free(l.v[5]);
    l.v[5] = malloc(strlen(line) + 2);
    sprintf(l.v[5], "%s\n", line);
    free(line);
    lines_write(f->log, &l);
    fp_key_free(other);
}

static void test_resigned_entry(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    resign(f, false);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 1);
    assert_int_equal(rep.bad_seq, 6);
    assert_non_null(strstr(rep.why, "unknown key"));
}

static void test_resigned_entry_same_kid(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    resign(f, true);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 1);
    assert_int_equal(rep.bad_seq, 6);
    assert_non_null(strstr(rep.why, "bad signature"));
}

static void test_cut_tail(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    struct lines l;
    lines_read(f->log, &l);
    free(l.v[N - 1]);
    l.v[N - 1] = NULL;
    lines_write(f->log, &l);
    fp_audit_report rep;
    /* the chain alone cannot tell; the signed head can */
    assert_int_equal(verify(f, false, &rep), 0);
    assert_int_equal(rep.entries, N - 1);
    assert_int_equal(verify(f, true, &rep), 1);
    assert_int_equal(rep.bad_line, 0);
    assert_non_null(strstr(rep.why, "removed"));
    /* the next append notices and says so in the log: the log stays
     * failing even though a new head now matches it */
    fill(f, 1);
    assert_int_equal(verify(f, true, &rep), 1);
    assert_int_equal(rep.bad_seq, N);
    assert_non_null(strstr(rep.why, "tampered"));
    json_t *e;
    fp_error err;
    assert_int_equal(fp_audit_find_last(f->log, FP_AUDIT_TAMPERED, &e, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "details"), "head_seq")),
                     N);
    json_decref(e);
}

static void test_head_missing_or_forged(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    char *text;
    size_t len;
    fp_error err;
    assert_int_equal(fp_read_file(f->head, 1 << 16, &text, &len, &err), 0);
    unlink(f->head);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 1);
    assert_non_null(strstr(rep.why, "no signed head"));
    /* a head claiming more than was signed */
    json_t *h = json_loads(text, 0, NULL);
    json_object_set_new(h, "seq", json_integer(N + 5));
    char *forged = json_dumps(h, JSON_COMPACT);
    assert_int_equal(fp_write_file_atomic(f->head, forged, strlen(forged), 0600, &err), 0);
    assert_int_equal(verify(f, true, &rep), 1);
    assert_non_null(strstr(rep.why, "forged"));
    free(forged);
    json_decref(h);
    free(text);
}

static void test_torn_tail(void **state)
{
    struct fixture *f = *state;
    fill(f, N);
    FILE *fp = fopen(f->log, "a");
    fputs("{\"actor\":\"user:admin\",\"details\":{\"ima", fp); /* a crash mid-append */
    fclose(fp);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 0);
    assert_int_equal(rep.entries, N);
    assert_true(rep.torn_bytes > 0);
    /* the next open cuts it, records the cut, and chains on */
    fill(f, 2);
    assert_int_equal(verify(f, true, &rep), 0);
    assert_int_equal(rep.torn_bytes, 0);
    assert_int_equal(rep.entries, N + 3);
    json_t *e;
    fp_error err;
    assert_int_equal(fp_audit_find_last(f->log, FP_AUDIT_REPAIRED, &e, &err), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "seq")), N + 1);
    json_decref(e);
}

static void test_unreadable_last_line_refused(void **state)
{
    struct fixture *f = *state;
    fill(f, 3);
    FILE *fp = fopen(f->log, "a");
    fputs("not json\n", fp);
    fclose(fp);
    fp_audit *a;
    fp_error err;
    assert_int_equal(fp_audit_open(&a, f->dir, f->key, &err), -1);
    assert_non_null(strstr(err.msg, "unreadable"));
}

struct worker {
    fp_audit *a;
    int id;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 25; i++) {
        char subject[32];
        snprintf(subject, sizeof subject, "t%d-%d", w->id, i);
        fp_error err;
        if (fp_audit_append(w->a, FP_AUDIT_VIOLATION, "fogport", subject, NULL, &err) < 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_appends(void **state)
{
    struct fixture *f = *state;
    fp_audit *a, *b;
    fp_error err;
    /* two handles, as the cloud and `fogport node revoke` have */
    assert_int_equal(fp_audit_open(&a, f->dir, f->key, &err), 0);
    assert_int_equal(fp_audit_open(&b, f->dir, f->key, &err), 0);
    pthread_t t[4];
    struct worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.a = i % 2 ? b : a, .id = i};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(t[i], &res);
        assert_null(res);
    }
    fp_audit_close(a);
    fp_audit_close(b);
    fp_audit_report rep;
    assert_int_equal(verify(f, true, &rep), 0);
    assert_int_equal(rep.entries, 100);
    assert_int_equal(rep.head_seq, 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_appended_log_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_respaced_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_swapped_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resigned_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resigned_entry_same_kid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cut_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_missing_or_forged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_last_line_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
