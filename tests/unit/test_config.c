/* Unit tests for core/config: defaults, the INI loader and value parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"

/* Write text to a fresh temporary file; path receives its name. */
static void write_temp(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/fogport-test-config-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* Load text over the defaults; returns fp_config_load's result. */
static int load_text(const char *text, fp_config *cfg, fp_error *err, char path[64])
{
    write_temp(path, text);
    fp_config_defaults(cfg);
    memset(err, 0, sizeof *err);
    int rc = fp_config_load(cfg, path, err);
    unlink(path);
    return rc;
}

static void test_defaults(void **state)
{
    (void)state;
    fp_config cfg;
    memset(&cfg, 0xa5, sizeof cfg);
    fp_config_defaults(&cfg);
    assert_string_equal(cfg.listen, "127.0.0.1:5000");
    assert_int_equal(cfg.threads, 0);
    assert_int_equal(cfg.timeout_s, 60);
    assert_int_equal(cfg.max_connections, 1024);
    assert_int_equal(cfg.max_connections_per_ip, 256);
    assert_string_equal(cfg.data_dir, "/var/lib/fogport");
    assert_true(cfg.delete_enabled);
    assert_false(cfg.metrics_public); /* /metrics asks for credentials */
    assert_int_equal(cfg.gc_grace_s, 3600);
    assert_int_equal(cfg.upload_expiry_s, 86400);
    assert_int_equal(cfg.cache_max, 0);
    assert_int_equal(cfg.fed_hedge_after_ms, 500);
    assert_string_equal(cfg.tls_cert, "");
    assert_string_equal(cfg.tls_key, "");
    assert_string_equal(cfg.htpasswd, "");
    assert_string_equal(cfg.realm, "fogport");
    assert_int_equal(cfg.max_manifest_bytes, 4 * 1024 * 1024);
    assert_int_equal(cfg.max_blob_bytes, 0);
    assert_int_equal(cfg.max_page, 1000);
    assert_string_equal(cfg.log_level, "info");
    assert_string_equal(cfg.log_file, "");
    assert_true(cfg.access_log);
}

static void test_load_every_key(void **state)
{
    (void)state;
    const char *text = "# fogport test configuration\n"
                       "; another comment style\n"
                       "\n"
                       "[server]\n"
                       "listen = \"[::]:8443\"\n"
                       "threads=8\n"
                       "  timeout   =   2m  \n"
                       "max_connections = 50\n"
                       "max_connections_per_ip = 5\n"
                       "\t# indented comment\n"
                       "[ storage ]\n"
                       "data = '/srv/fog port'\n"
                       "delete = false\n"
                       "gc_grace = 1d\n"
                       "upload_expiry = 90s\n"
                       "cache_max = 20G\n"
                       "[federation]\n"
                       "hedge_after = 250ms\n"
                       "[tls]\n"
                       "cert = /etc/fogport/cert.pem\n"
                       "key = /etc/fogport/key.pem\n"
                       "[auth]\n"
                       "htpasswd = /etc/fogport/htpasswd\n"
                       "realm = \"edge = site 1\"\n"
                       "[limits]\n"
                       "max_manifest_size = 1MiB\n"
                       "max_blob_size = 2G\n"
                       "max_page = 77\n"
                       "[log]\n"
                       "level = debug\n"
                       "file = /var/log/fogport.log\n"
                       "access = off\n"
                       "[metrics]\n"
                       "access = public\n";
    fp_config cfg;
    fp_error err;
    char path[64];
    int rc = load_text(text, &cfg, &err, path);
    if (rc != 0) fail_msg("load failed: %s", err.msg);
    assert_string_equal(cfg.listen, "[::]:8443");
    assert_int_equal(cfg.threads, 8);
    assert_int_equal(cfg.timeout_s, 120);
    assert_int_equal(cfg.max_connections, 50);
    assert_int_equal(cfg.max_connections_per_ip, 5);
    assert_string_equal(cfg.data_dir, "/srv/fog port");
    assert_false(cfg.delete_enabled);
    assert_int_equal(cfg.gc_grace_s, 86400);
    assert_int_equal(cfg.upload_expiry_s, 90);
    assert_int_equal(cfg.cache_max, 20ULL << 30);
    assert_int_equal(cfg.fed_hedge_after_ms, 250);
    assert_string_equal(cfg.tls_cert, "/etc/fogport/cert.pem");
    assert_string_equal(cfg.tls_key, "/etc/fogport/key.pem");
    assert_string_equal(cfg.htpasswd, "/etc/fogport/htpasswd");
    assert_string_equal(cfg.realm, "edge = site 1");
    assert_int_equal(cfg.max_manifest_bytes, 1024 * 1024);
    assert_int_equal(cfg.max_blob_bytes, 2ULL << 30);
    assert_int_equal(cfg.max_page, 77);
    assert_string_equal(cfg.log_level, "debug");
    assert_string_equal(cfg.log_file, "/var/log/fogport.log");
    assert_false(cfg.access_log);
    assert_true(cfg.metrics_public);
}

static void test_load_keeps_unset_values(void **state)
{
    (void)state;
    fp_config cfg;
    fp_error err;
    char path[64];
    /* no trailing newline on the last line; CRLF line ends */
    assert_int_equal(
        load_text("[server]\r\nthreads = 3\r\n[log]\nlevel = 'warn'", &cfg, &err, path), 0);
    assert_int_equal(cfg.threads, 3);
    assert_string_equal(cfg.log_level, "warn");
    /* everything else is still the default */
    assert_string_equal(cfg.listen, "127.0.0.1:5000");
    assert_int_equal(cfg.timeout_s, 60);
    assert_string_equal(cfg.data_dir, "/var/lib/fogport");
    assert_true(cfg.access_log);

    /* an empty file changes nothing */
    assert_int_equal(load_text("", &cfg, &err, path), 0);
    assert_int_equal(cfg.threads, 0);
    /* unmatched quotes are kept verbatim */
    assert_int_equal(load_text("[auth]\nrealm = \"x'\n", &cfg, &err, path), 0);
    assert_string_equal(cfg.realm, "\"x'");
    assert_int_equal(load_text("[auth]\nrealm = \"\n", &cfg, &err, path), 0);
    assert_string_equal(cfg.realm, "\"");
}

/* Expect load to fail with a message containing "<path>:<line>" and `needle`. */
static void expect_load_error(const char *text, unsigned line, const char *needle)
{
    fp_config cfg;
    fp_error err;
    char path[64], where[96];
    if (load_text(text, &cfg, &err, path) != -1) fail_msg("load of '%.200s' should fail", text);
    snprintf(where, sizeof where, "%s:%u:", path, line);
    if (!strstr(err.msg, where)) fail_msg("error '%s' does not mention '%s'", err.msg, where);
    if (needle && !strstr(err.msg, needle))
        fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void test_load_errors(void **state)
{
    (void)state;
    expect_load_error("[server]\nthreads = 2\nthreadz = 2\n", 3, "threadz");
    expect_load_error("# c\n\n[servre]\nlisten = :1\n", 4, "servre");
    expect_load_error("listen = 127.0.0.1:1\n", 1, "listen");
    expect_load_error("[server]\nlisten 127.0.0.1:1\n", 2, NULL);
    expect_load_error("[server\nthreads = 1\n", 1, NULL);
    expect_load_error("[server] x\n", 1, NULL);
    expect_load_error("[server]\nthreads = many\n", 2, "many");
    expect_load_error("[server]\ntimeout = 1x\n", 2, "1x");
    expect_load_error("[storage]\ndelete = maybe\n", 2, "maybe");
    expect_load_error("[federation]\nhedge_after = 0.5s\n", 2, "0.5s");
    expect_load_error("[storage]\ncache_max = lots\n", 2, "lots");
    expect_load_error("[limits]\nmax_blob_size = 4Q\n", 2, "4Q");
    expect_load_error("[log]\nlevel = verbose\n", 2, "verbose");
    expect_load_error("[log]\nlevel = INFO\n", 2, NULL);
    expect_load_error("[metrics]\naccess = open\n", 2, "open");
    expect_load_error("[server]\nthreads = 4294967296\n", 2, NULL);
    /* section names are case-sensitive; a key in the wrong section is unknown */
    expect_load_error("[Server]\nthreads = 1\n", 2, NULL);
    expect_load_error("[tls]\nlisten = :1\n", 2, "listen");
}

static void test_load_long_values(void **state)
{
    (void)state;
    /* a string longer than its field is an error, not truncated */
    char text[2000];
    int n = snprintf(text, sizeof text, "[log]\nlevel = info\n[auth]\nrealm = ");
    memset(text + n, 'r', 200);
    snprintf(text + n + 200, sizeof text - (size_t)n - 200, "\n");
    expect_load_error(text, 4, "too long");

    /* A line longer than the reader's 4 KiB buffer is an error too: its tail
     * must never be read as a line of its own. Here the comment's first 4095
     * bytes would fill the buffer and leave "threads = 7" behind. */
    static char t[4200];
    size_t fill = 4093;
    n = snprintf(t, sizeof t, "[server]\n# ");
    memset(t + n, 'c', fill);
    snprintf(t + n + fill, 100, "threads = 7\nmax_page = 5\n");
    fp_config cfg;
    fp_error err;
    char path[64], where[96];
    int rc = load_text(t, &cfg, &err, path);
    assert_int_equal(cfg.threads, 0);
    assert_int_equal(rc, -1);
    snprintf(where, sizeof where, "%s:2:", path);
    if (!strstr(err.msg, where)) fail_msg("error '%s' does not mention '%s'", err.msg, where);

    /* a line of exactly 4095 characters plus newline still fits */
    n = snprintf(t, sizeof t, "[server]\n# ");
    memset(t + n, 'c', 4093);
    snprintf(t + n + 4093, 100, "\nthreads = 6\n");
    assert_int_equal(load_text(t, &cfg, &err, path), 0);
    assert_int_equal(cfg.threads, 6);
    /* and so does one that ends the file without a newline */
    n = snprintf(t, sizeof t, "[server]\nthreads = 5\n# ");
    memset(t + n, 'c', 4093);
    t[n + 4093] = '\0';
    assert_int_equal(load_text(t, &cfg, &err, path), 0);
    assert_int_equal(cfg.threads, 5);
}

static void test_load_missing_file(void **state)
{
    (void)state;
    fp_config cfg;
    fp_error err;
    fp_config_defaults(&cfg);
    memset(&err, 0, sizeof err);
    assert_int_equal(fp_config_load(&cfg, "/nonexistent/fogport.conf", &err), -1);
    assert_int_equal(err.errnum, ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/fogport.conf"));
}

static void test_config_set(void **state)
{
    (void)state;
    fp_config cfg;
    fp_error err;
    fp_config_defaults(&cfg);
    assert_int_equal(fp_config_set(&cfg, "server", "max_connections", "12", &err), 0);
    assert_int_equal(cfg.max_connections, 12);
    assert_int_equal(fp_config_set(&cfg, "limits", "max_manifest_size", "8k", &err), 0);
    assert_int_equal(cfg.max_manifest_bytes, 8192);
    assert_int_equal(fp_config_set(&cfg, "log", "level", "error", &err), 0);
    assert_string_equal(cfg.log_level, "error");
    assert_int_equal(fp_config_set(&cfg, "nope", "x", "1", &err), -1);
    assert_non_null(strstr(err.msg, "nope"));
    /* a rejected value leaves the field alone */
    assert_int_equal(fp_config_set(&cfg, "server", "timeout", "soon", &err), -1);
    assert_int_equal(cfg.timeout_s, 60);
    assert_int_equal(fp_config_set(&cfg, "storage", "delete", "2", &err), -1);
    assert_true(cfg.delete_enabled);
    assert_int_equal(fp_config_set(&cfg, "log", "level", "loud", &err), -1);
    assert_string_equal(cfg.log_level, "error");
}

static void test_parse_size(void **state)
{
    (void)state;
    struct {
        const char *s;
        uint64_t v;
    } good[] = {
        {"4MiB", 4ULL << 20},
        {"4M", 4ULL << 20},
        {"4k", 4096},
        {"4K", 4096},
        {"4KB", 4096},
        {"4kib", 4096},
        {"10", 10},
        {"0", 0},
        {"1G", 1ULL << 30},
        {"2GiB", 2ULL << 30},
        {"3T", 3ULL << 40},
        {"18446744073709551615", UINT64_MAX},
        {"16777215T", 16777215ULL << 40},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        if (fp_parse_size(good[i].s, &v) != 0) fail_msg("'%s' should parse", good[i].s);
        assert_int_equal(v, good[i].v);
    }
    const char *bad[] = {
        "x",
        "4Q",
        "",
        "-1",
        " 4",
        "4 M",
        "4MiBx",
        "4MB ",
        "4iB",
        "4Mi",
        "4.5M",
        "M",
        "+4",
        "0x10",
        "4MM",
        "16777216T",
        "18446744073709551616",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 12345;
        if (fp_parse_size(bad[i], &v) != -1) fail_msg("'%s' should be rejected", bad[i]);
        assert_int_equal(v, 12345);
    }
    uint64_t v;
    assert_int_equal(fp_parse_size(NULL, &v), -1);
}

static void test_parse_duration(void **state)
{
    (void)state;
    struct {
        const char *s;
        unsigned v;
    } good[] = {
        {"30s", 30},
        {"5m", 300},
        {"1h", 3600},
        {"2d", 172800},
        {"10", 10},
        {"0", 0},
        {"0d", 0},
        {"4294967295", 4294967295U},
        {"49710d", 49710U * 86400U},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        unsigned v = 12345;
        if (fp_parse_duration(good[i].s, &v) != 0) fail_msg("'%s' should parse", good[i].s);
        assert_int_equal(v, good[i].v);
    }
    const char *bad[] = {
        "1x", "",   "-1",   "s",          "1ms",    "1 s",       " 1",
        "1S", "1H", "1.5h", "4294967296", "49711d", "71582789m", "99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned v = 12345;
        if (fp_parse_duration(bad[i], &v) != -1) fail_msg("'%s' should be rejected", bad[i]);
        assert_int_equal(v, 12345);
    }
    unsigned v;
    assert_int_equal(fp_parse_duration(NULL, &v), -1);
}

static void test_parse_duration_ms(void **state)
{
    (void)state;
    struct {
        const char *s;
        unsigned v;
    } good[] = {
        {"500ms", 500},
        {"0ms", 0},
        {"0", 0},
        {"2", 2000},
        {"2s", 2000},
        {"1m", 60000},
        {"4294967295ms", 4294967295U},
        {"4294967s", 4294967000U},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        unsigned v = 12345;
        if (fp_parse_duration_ms(good[i].s, &v) != 0) fail_msg("'%s' should parse", good[i].s);
        assert_int_equal(v, good[i].v);
    }
    const char *bad[] = {"ms",           "",
                         "-1ms",         "1.5s",
                         "1 ms",         " 1ms",
                         "1MS",          "1msx",
                         "4294967296ms", "4294968s",
                         "1xms",         "ms1",
                         "1sms",         "99999999999999999999999ms"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned v = 12345;
        if (fp_parse_duration_ms(bad[i], &v) != -1) fail_msg("'%s' should be rejected", bad[i]);
        assert_int_equal(v, 12345);
    }
    unsigned v;
    assert_int_equal(fp_parse_duration_ms(NULL, &v), -1);
}

static void test_parse_bool(void **state)
{
    (void)state;
    const char *yes[] = {"true", "TRUE", "True", "yes", "YES", "on", "On", "1"};
    const char *no[] = {"false", "FALSE", "no", "No", "off", "OFF", "0"};
    const char *bad[] = {"", "2", "maybe", "y", "n", "t", "truee", " true", "01"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        bool b = false;
        assert_int_equal(fp_parse_bool(yes[i], &b), 0);
        assert_true(b);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        bool b = true;
        assert_int_equal(fp_parse_bool(no[i], &b), 0);
        assert_false(b);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bool b = true;
        if (fp_parse_bool(bad[i], &b) != -1) fail_msg("'%s' should be rejected", bad[i]);
        assert_true(b);
    }
}

static void test_list_has(void **state)
{
    (void)state;
    assert_true(fp_config_list_has("fog-1,fog-2", "fog-2"));
    assert_true(fp_config_list_has(" fog-1 , fog-2 ", "fog-1"));
    assert_true(fp_config_list_has("a b,c", "b"));
    assert_false(fp_config_list_has("fog-10,fog-2", "fog-1")); /* no prefix match */
    assert_false(fp_config_list_has("fog-1", "fog-10"));
    assert_false(fp_config_list_has("", "fog-1"));
    assert_false(fp_config_list_has(",,", ""));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_every_key),
        cmocka_unit_test(test_load_keeps_unset_values),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_load_long_values),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_config_set),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_duration_ms),
        cmocka_unit_test(test_parse_bool),
        cmocka_unit_test(test_list_has),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
