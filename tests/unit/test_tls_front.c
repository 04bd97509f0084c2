/* Unit tests for registry/tls_front: a real libmicrohttpd daemon behind the
 * front on 127.0.0.1:0, driven by an OpenSSL client. 20 MiB both ways
 * intact (also to a reader that takes small pieces with pauses), a
 * handshake that never comes is closed at the deadline, aborted transfers
 * leave no descriptor behind, 50 connections at once, the client
 * certificate verdict, the connection cap. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "auth/pki.h"
#include "core/fs.h"
#include "registry/tls_front.h"

#define BIG (20u << 20)

struct fixture {
    char dir[64];
    char path[8][160]; /* ca, ca.crt, server, client, foreign */
    fp_tls_front *front;
    struct MHD_Daemon *daemon;
    unsigned port;
    int base_fds;
};
static struct fixture *F;

enum { P_CA, P_CACRT, P_SRV, P_CLI, P_OTHER_CA, P_FOREIGN };

static unsigned char pattern(uint64_t i)
{
    return (unsigned char)(i * 131 + (i >> 13));
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (const unsigned char *c = p; n--; c++)
        h = (h ^ *c) * 0x100000001b3ULL;
    return h;
}

static ssize_t serve_pattern(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    for (size_t i = 0; i < max; i++)
        buf[i] = (char)pattern(pos + i);
    return (ssize_t)max;
}

static enum MHD_Result answer(struct MHD_Connection *conn, const char *text)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static int second_call; /* con_cls of a GET after its first call */

/* GET /big?size=N: N bytes of pattern; PUT /sum: FNV-1a of the body, read
 * slowly so the client meets backpressure; GET /whoami: the verdict. */
static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls)
{
    (void)cls;
    (void)version;
    if (!strcmp(method, "PUT")) {
        uint64_t *h = *con_cls;
        if (!h) {
            *con_cls = h = malloc(sizeof *h);
            *h = 0xcbf29ce484222325ULL;
            return MHD_YES;
        }
        if (*size) {
            *h = fnv(*h, data, *size);
            *size = 0;
            usleep(300);
            return MHD_YES;
        }
        char hex[32];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)*h);
        return answer(conn, hex);
    }
    /* answered on the second call: queued on the first, libmicrohttpd
     * would close instead of keeping the connection alive */
    if (!*con_cls) {
        *con_cls = &second_call;
        return MHD_YES;
    }
    if (!strcmp(url, "/whoami")) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        return answer(conn, fp_tls_front_client_verified(F->front, ci->connect_fd) ? "verified"
                                                                                   : "unverified");
    }
    const char *sz = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "size");
    struct MHD_Response *r = MHD_create_response_from_callback(sz ? strtoull(sz, NULL, 10) : BIG,
                                                               32 << 10, serve_pattern, NULL, NULL);
    enum MHD_Result rc = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return rc;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    if (*con_cls != &second_call) free(*con_cls);
    *con_cls = NULL;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* The descriptor count once it has settled back to want (or the last). */
static int fds_settle(int want)
{
    int n = count_fds();
    for (int i = 0; i < 100 && n != want; i++) {
        usleep(50000);
        n = count_fds();
    }
    return n;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int tcp_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* A client that trusts the test CA, presenting prefix.crt if given. */
static SSL *tls_connect_to(unsigned port, const char *prefix)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_int_equal(SSL_CTX_load_verify_locations(ctx, F->path[P_CACRT], NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (prefix) {
        char crt[200], key[200];
        snprintf(crt, sizeof crt, "%s.crt", prefix);
        snprintf(key, sizeof key, "%s.key", prefix);
        assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, crt), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL keeps its reference */
    SSL_set_fd(ssl, tcp_connect(port));
    SSL_set1_host(ssl, "127.0.0.1");
    assert_int_equal(SSL_connect(ssl), 1);
    return ssl;
}

static SSL *tls_connect(const char *prefix)
{
    return tls_connect_to(F->port, prefix);
}

static void tls_close(SSL *ssl, bool abrupt)
{
    int fd = SSL_get_fd(ssl);
    if (!abrupt) SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

static void write_all(SSL *ssl, const void *p, size_t n)
{
    while (n) {
        int w = SSL_write(ssl, p, n > (1 << 16) ? 1 << 16 : (int)n);
        assert_true(w > 0);
        p = (const char *)p + w;
        n -= (size_t)w;
    }
}

/* Status line and headers (byte by byte: OpenSSL buffers the record);
 * returns Content-Length. */
static size_t read_head(SSL *ssl)
{
    char head[4096];
    size_t n = 0;
    while (n < 4 || memcmp(head + n - 4, "\r\n\r\n", 4)) {
        assert_true(n < sizeof head - 1);
        assert_int_equal(SSL_read(ssl, head + n, 1), 1);
        n++;
    }
    head[n] = '\0';
    assert_memory_equal(head, "HTTP/1.1 200", 12);
    const char *cl = strcasestr(head, "\r\nContent-Length:");
    assert_non_null(cl);
    return strtoull(cl + 17, NULL, 10);
}

static void get(SSL *ssl, const char *path)
{
    char req[256];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    write_all(ssl, req, strlen(req));
}

static void read_body_text(SSL *ssl, char *out, size_t cap)
{
    size_t len = read_head(ssl);
    assert_true(len < cap);
    for (size_t got = 0; got < len;) {
        int n = SSL_read(ssl, out + got, (int)(len - got));
        assert_true(n > 0);
        got += (size_t)n;
    }
    out[len] = '\0';
}

/* Read the pattern body of size len in pieces of `piece`, pausing
 * pause_us every `every` bytes: true if every byte is right. */
static bool read_pattern(SSL *ssl, size_t len, size_t piece, size_t every, unsigned pause_us)
{
    char buf[1 << 16];
    size_t got = 0, next_pause = every;
    bool ok = true;
    while (got < len) {
        size_t want = len - got < piece ? len - got : piece;
        int n = SSL_read(ssl, buf, (int)want);
        if (n <= 0) return false;
        for (int i = 0; i < n; i++)
            ok &= (unsigned char)buf[i] == pattern(got + (size_t)i);
        got += (size_t)n;
        if (every && got >= next_pause) {
            usleep(pause_us);
            next_pause += every;
        }
    }
    return ok;
}

/* A front (cap max_conns, handshake deadline hs) before a daemon. */
static int serve(fp_tls_front **front, struct MHD_Daemon **daemon, unsigned max_conns, unsigned hs)
{
    char crt[200], key[200];
    snprintf(crt, sizeof crt, "%s.crt", F->path[P_SRV]);
    snprintf(key, sizeof key, "%s.key", F->path[P_SRV]);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fp_tls_front_opts o = {.cert = crt,
                           .key = key,
                           .client_ca = F->path[P_CACRT],
                           .threads = 2,
                           .max_connections = max_conns,
                           .handshake_s = hs,
                           .idle_s = 10};
    fp_error err;
    if (fp_tls_front_open(front, (struct sockaddr *)&a, sizeof a, &o, &err) < 0) {
        fprintf(stderr, "front: %s\n", err.msg);
        return -1;
    }
    *daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC, 0,
        NULL, NULL, handler, NULL, MHD_OPTION_THREAD_POOL_SIZE, 2, MHD_OPTION_CONNECTION_TIMEOUT,
        10, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_END);
    return *daemon && fp_tls_front_run(*front, *daemon, &err) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    F = calloc(1, sizeof *F);
    char dir[64] = "/tmp/fogport-test-tls-XXXXXX";
    if (!mkdtemp(dir)) return -1;
    snprintf(F->dir, sizeof F->dir, "%s", dir);
    const char *names[] = {"ca", "ca/ca.crt", "server", "client", "other", "foreign"};
    for (int i = 0; i < 6; i++)
        snprintf(F->path[i], sizeof F->path[i], "%s/%s", dir, names[i]);
    fp_error err;
    const char *ip[] = {"127.0.0.1"}, *cli[] = {"client"}, *foreign[] = {"foreign"};
    if (fp_ca_init(F->path[P_CA], "test CA", &err) < 0 ||
        fp_ca_init(F->path[P_OTHER_CA], "other CA", &err) < 0 ||
        fp_cert_issue(F->path[P_CA], "server", NULL, 0, ip, 1, 1, F->path[P_SRV], &err) < 0 ||
        fp_cert_issue(F->path[P_CA], "client", cli, 1, NULL, 0, 1, F->path[P_CLI], &err) < 0 ||
        fp_cert_issue(F->path[P_OTHER_CA], "foreign", foreign, 1, NULL, 0, 1, F->path[P_FOREIGN],
                      &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    if (serve(&F->front, &F->daemon, 60, 1) < 0) return -1;
    F->port = fp_tls_front_port(F->front);
    F->base_fds = count_fds();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fp_tls_front_stop(F->front);
    MHD_stop_daemon(F->daemon);
    fp_rm_rf(F->dir);
    free(F);
    return 0;
}

static void test_bound_port(void **state)
{
    (void)state;
    assert_true(F->port > 0 && F->port < 65536);
}

static void test_download_20mib(void **state)
{
    (void)state;
    SSL *ssl = tls_connect(NULL);
    get(ssl, "/big");
    assert_int_equal(read_head(ssl), BIG);
    assert_true(read_pattern(ssl, BIG, 1 << 16, 0, 0));
    /* the connection is kept alive and serves a second request */
    get(ssl, "/big?size=100000");
    assert_int_equal(read_head(ssl), 100000);
    assert_true(read_pattern(ssl, 100000, 1 << 16, 0, 0));
    tls_close(ssl, false);
}

/* libmicrohttpd answers and closes at once: the whole answer, then
 * close_notify, reaches the client (the EOF right behind the data must not
 * be missed) */
static void test_close_after_answer(void **state)
{
    (void)state;
    for (int i = 0; i < 20; i++) {
        SSL *ssl = tls_connect(NULL);
        struct timeval tv = {.tv_sec = 3};
        setsockopt(SSL_get_fd(ssl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        const char *req = "GET /big?size=3000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        write_all(ssl, req, strlen(req));
        assert_int_equal(read_head(ssl), 3000);
        assert_true(read_pattern(ssl, 3000, 1 << 16, 0, 0));
        char c;
        int n = SSL_read(ssl, &c, 1);
        assert_int_equal(n, 0);
        assert_int_equal(SSL_get_error(ssl, n), SSL_ERROR_ZERO_RETURN);
        tls_close(ssl, false);
    }
}

static void test_slow_reader(void **state)
{
    (void)state;
    SSL *ssl = tls_connect(NULL);
    get(ssl, "/big");
    assert_int_equal(read_head(ssl), BIG);
    /* small pieces, a pause every 4 MiB: the front must hold back, not
     * drop or reorder */
    assert_true(read_pattern(ssl, BIG, 4096, 4u << 20, 200000));
    tls_close(ssl, false);
}

static void test_upload_20mib(void **state)
{
    (void)state;
    unsigned char *body = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        body[i] = pattern(i * 7);
    char want[32], got[64], req[128];
    snprintf(want, sizeof want, "%016llx",
             (unsigned long long)fnv(0xcbf29ce484222325ULL, body, BIG));
    SSL *ssl = tls_connect(NULL);
    snprintf(req, sizeof req, "PUT /sum HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n", BIG);
    write_all(ssl, req, strlen(req));
    write_all(ssl, body, BIG);
    read_body_text(ssl, got, sizeof got);
    assert_string_equal(got, want);
    tls_close(ssl, false);
    free(body);
}

static void test_handshake_deadline(void **state)
{
    (void)state;
    int lazy = tcp_connect(F->port); /* never says hello */
    double t0 = now_s();
    /* a real client is served meanwhile */
    SSL *ssl = tls_connect(NULL);
    char text[64];
    get(ssl, "/whoami");
    read_body_text(ssl, text, sizeof text);
    assert_string_equal(text, "unverified");
    tls_close(ssl, false);
    struct pollfd p = {.fd = lazy, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    char c;
    assert_true(recv(lazy, &c, 1, 0) <= 0); /* closed: EOF or reset */
    double waited = now_s() - t0;
    assert_true(waited > 0.9 && waited < 2.5);
    close(lazy);
}

static void test_aborted_transfers_leak_nothing(void **state)
{
    (void)state;
    assert_int_equal(fds_settle(F->base_fds), F->base_fds);
    /* a download dropped after 1 MiB, without close_notify */
    SSL *ssl = tls_connect(NULL);
    get(ssl, "/big");
    read_head(ssl);
    assert_true(read_pattern(ssl, 1 << 20, 1 << 16, 0, 0));
    tls_close(ssl, true);
    /* an upload dropped halfway */
    ssl = tls_connect(NULL);
    char req[128], chunk[1 << 16] = {0};
    snprintf(req, sizeof req, "PUT /sum HTTP/1.1\r\nHost: x\r\nContent-Length: %u\r\n\r\n", BIG);
    write_all(ssl, req, strlen(req));
    for (int i = 0; i < 16; i++)
        write_all(ssl, chunk, sizeof chunk);
    tls_close(ssl, true);
    /* a handshake given up half way */
    int fd = tcp_connect(F->port);
    assert_int_equal(send(fd, "\x16\x03\x01\x02\x00\x01", 6, 0), 6);
    close(fd);
    assert_int_equal(fds_settle(F->base_fds), F->base_fds);
}

static void test_fifty_connections(void **state)
{
    (void)state;
    enum { N = 50, SIZE = 256 << 10 };
    SSL *c[N];
    for (int i = 0; i < N; i++)
        c[i] = tls_connect(NULL);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/big?size=%d", SIZE);
        get(c[i], path);
    }
    /* read in reverse: the first ones wait with full buffers meanwhile */
    for (int i = N - 1; i >= 0; i--) {
        assert_int_equal(read_head(c[i]), SIZE);
        assert_true(read_pattern(c[i], SIZE, 1 << 16, 0, 0));
    }
    for (int i = 0; i < N; i++)
        tls_close(c[i], false);
    assert_int_equal(fds_settle(F->base_fds), F->base_fds);
}

static void whoami(const char *prefix, const char *want)
{
    SSL *ssl = tls_connect(prefix);
    char text[64];
    for (int i = 0; i < 2; i++) { /* and again on the kept-alive connection */
        get(ssl, "/whoami");
        read_body_text(ssl, text, sizeof text);
        assert_string_equal(text, want);
    }
    tls_close(ssl, false);
}

static void test_client_cert_verdict(void **state)
{
    (void)state;
    whoami(F->path[P_CLI], "verified");
    whoami(NULL, "unverified");
    whoami(F->path[P_FOREIGN], "unverified");
    whoami(F->path[P_CLI], "verified");
}

static void test_connection_cap(void **state)
{
    (void)state;
    enum { CAP = 4 };
    fp_tls_front *front;
    struct MHD_Daemon *daemon;
    assert_int_equal(serve(&front, &daemon, CAP, 10), 0);
    unsigned port = fp_tls_front_port(front);
    int base = count_fds(), held[CAP];
    for (int i = 0; i < CAP; i++)
        held[i] = tcp_connect(port);
    /* all accepted (ours and the front's ends), handshaking for 10 s */
    assert_int_equal(fds_settle(base + 2 * CAP), base + 2 * CAP);
    /* one over the cap is accepted and closed at once */
    int extra = tcp_connect(port);
    struct pollfd p = {.fd = extra, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 2000), 1);
    char c;
    assert_true(recv(extra, &c, 1, 0) <= 0);
    close(extra);
    for (int i = 0; i < CAP; i++)
        close(held[i]);
    assert_int_equal(fds_settle(base), base);
    /* and room again afterwards */
    SSL *ssl = tls_connect_to(port, NULL);
    get(ssl, "/big?size=1000");
    assert_int_equal(read_head(ssl), 1000);
    assert_true(read_pattern(ssl, 1000, 1 << 16, 0, 0));
    tls_close(ssl, false);
    fp_tls_front_stop(front);
    MHD_stop_daemon(daemon);
}

int main(void)
{
    /* as fogport serve: OpenSSL writes to client sockets with write() */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bound_port),
        cmocka_unit_test(test_download_20mib),
        cmocka_unit_test(test_close_after_answer),
        cmocka_unit_test(test_slow_reader),
        cmocka_unit_test(test_upload_20mib),
        cmocka_unit_test(test_handshake_deadline),
        cmocka_unit_test(test_aborted_transfers_leak_nothing),
        cmocka_unit_test(test_fifty_connections),
        cmocka_unit_test(test_client_cert_verdict),
        cmocka_unit_test(test_connection_cap),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
