/* The TLS front (tls_front.h). Every worker has its own epoll set with the
 * shared listening socket (EPOLLEXCLUSIVE: one worker wakes per arrival),
 * the stop eventfd and both sockets of each of its connections. The
 * connection sockets are edge-triggered and their readiness is kept per
 * direction (set by an event, cleared when a call would block): on any
 * event the pump moves bytes both ways until each step is blocked, so the
 * interest sets never change as buffers fill and empty, and no call is
 * made that is bound to fail (on small requests those were half the
 * front's system calls). */
#include "registry/tls_front.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/log.h"

/* Per direction: one TLS record of plaintext. Allocated when the
 * handshake is done, so a connection that never finishes it costs little. */
#define BUF_SIZE (16u << 10)
/* Descriptors not counted against the connection cap (store, databases,
 * outgoing requests, libmicrohttpd's own). */
#define FD_RESERVE 128

struct worker;
struct conn;

/* What an epoll event names: one of a connection's two sockets. */
struct end {
    struct conn *c;
    bool readable, writable;
    bool hup;        /* the peer has closed: its EOF must be read, it brings no event */
    unsigned events; /* as registered */
};

struct conn {
    struct worker *w;
    struct conn *prev, *next;
    SSL *ssl;
    int tcp;
    int pair; /* our end of the socketpair; -1 while handshaking */
    struct end tcp_end, pair_end;
    bool read_wants_out; /* OpenSSL's last read needs the socket writable */
    bool write_wants_in; /* its last write needs it readable */
    struct sockaddr_storage peer;
    socklen_t peer_len;
    uint64_t deadline_ms; /* handshake, or flushing after libmicrohttpd closed; 0: none */
    bool dead;
    bool tls_eof;   /* the client sends no more */
    bool pair_eof;  /* libmicrohttpd sends no more */
    bool pair_shut; /* and it has been told the client does not either */
    unsigned char *in, *out;
    size_t in_off, in_len;   /* client -> libmicrohttpd, not yet passed on */
    size_t out_off, out_len; /* libmicrohttpd -> client, not yet encrypted */
    int out_retry;           /* an SSL_write to repeat with the same bytes */
};

struct worker {
    fp_tls_front *f;
    pthread_t thread;
    int ep;
    struct conn *live, *dead; /* dead: freed after the event batch naming it */
};

struct fp_tls_front {
    SSL_CTX *ctx;
    int lfd, stop_fd;
    unsigned port;
    unsigned max_conns;
    uint64_t handshake_ms, idle_ms;
    atomic_uint nconns;
    atomic_bool stopping;
    struct MHD_Daemon *daemon;
    struct worker *workers;
    unsigned nworkers, started;
    atomic_bool *verified; /* by libmicrohttpd-side fd; NULL: no client_ca */
    size_t nverified;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *peer_name(const struct conn *c, char *out, size_t len)
{
    const struct sockaddr *sa = (const struct sockaddr *)&c->peer;
    const void *a = sa->sa_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (!inet_ntop(sa->sa_family, a, out, (socklen_t)len)) snprintf(out, len, "-");
    return out;
}

static void conn_close(struct conn *c)
{
    if (c->dead) return;
    struct worker *w = c->w;
    c->dead = true;
    /* closing takes the sockets out of the epoll set; events already
     * fetched still name c, so it is freed after the batch */
    close(c->tcp);
    if (c->pair >= 0) close(c->pair);
    SSL_free(c->ssl);
    if (c->in) munmap(c->in, 2 * BUF_SIZE);
    c->ssl = NULL;
    c->in = c->out = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->live = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = NULL;
    c->next = w->dead;
    w->dead = c;
    atomic_fetch_sub(&w->f->nconns, 1);
}

static void log_tls_error(const struct conn *c, const char *event)
{
    char addr[INET6_ADDRSTRLEN], why[256];
    unsigned long e = ERR_peek_last_error();
    ERR_error_string_n(e, why, sizeof why);
    fp_debug("event=%s remote=%s error=%s", event, peer_name(c, addr, sizeof addr),
             e ? why : strerror(errno));
    ERR_clear_error();
}

/* libmicrohttpd closed its end and everything is flushed: close_notify,
 * retried on the next writable event while the socket is full. */
static void finish(struct conn *c)
{
    ERR_clear_error();
    int rc = SSL_shutdown(c->ssl);
    if (rc < 0 && SSL_get_error(c->ssl, rc) == SSL_ERROR_WANT_WRITE)
        c->tcp_end.writable = false;
    else
        conn_close(c);
}

static bool ssl_would_block(SSL *ssl, int rc)
{
    int e = SSL_get_error(ssl, rc);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

/* client -> libmicrohttpd. OpenSSL may hold whole records already read
 * from the socket, which epoll cannot see: read until it wants the socket
 * or the buffer is full. */
static bool pump_in(struct conn *c)
{
    bool moved = false;
    while (!c->tls_eof && c->in_len < BUF_SIZE &&
           (c->read_wants_out ? c->tcp_end.writable : c->tcp_end.readable)) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, c->in + c->in_len, (int)(BUF_SIZE - c->in_len));
        if (n > 0) {
            c->in_len += (size_t)n;
            c->read_wants_out = false;
            moved = true;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN) {
            c->tls_eof = moved = true; /* close_notify, or TCP EOF (IGNORE_UNEXPECTED_EOF) */
        } else if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            c->read_wants_out = e == SSL_ERROR_WANT_WRITE;
            *(c->read_wants_out ? &c->tcp_end.writable : &c->tcp_end.readable) = false;
        } else {
            log_tls_error(c, "tls_read_failed");
            conn_close(c);
            return false;
        }
        break;
    }
    while (c->in_off < c->in_len && c->pair_end.writable) {
        ssize_t n = send(c->pair, c->in + c->in_off, c->in_len - c->in_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->in_off += (size_t)n;
            moved = true;
        } else if (errno == EAGAIN) {
            c->pair_end.writable = false;
        } else if (errno != EINTR) {
            /* libmicrohttpd is gone; its answer may still wait in the pair */
            c->tls_eof = c->pair_shut = true;
            c->in_off = c->in_len;
        }
    }
    if (c->in_off == c->in_len) c->in_off = c->in_len = 0;
    if (c->tls_eof && !c->in_len && !c->pair_shut) {
        shutdown(c->pair, SHUT_WR);
        c->pair_shut = true;
    }
    return moved;
}

/* libmicrohttpd -> client. A write OpenSSL could not finish is repeated
 * with the same length; the bytes stay where they are in the buffer. */
static bool pump_out(struct conn *c)
{
    bool moved = false;
    while (!c->pair_eof && c->out_len < BUF_SIZE && c->pair_end.readable) {
        size_t room = BUF_SIZE - c->out_len;
        ssize_t n = read(c->pair, c->out + c->out_len, room);
        if (n > 0) {
            c->out_len += (size_t)n;
            moved = true;
            /* a short read emptied the socket: the next byte brings an
             * event, no need to call read() for its EAGAIN */
            if ((size_t)n < room && !c->pair_end.hup) c->pair_end.readable = false;
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            c->pair_eof = moved = true;
            c->deadline_ms = now_ms() + c->w->f->idle_ms;
        } else if (errno == EAGAIN) {
            c->pair_end.readable = false;
        }
    }
    while (c->out_off < c->out_len &&
           (c->write_wants_in ? c->tcp_end.readable : c->tcp_end.writable)) {
        int len = c->out_retry ? c->out_retry : (int)(c->out_len - c->out_off);
        ERR_clear_error();
        int n = SSL_write(c->ssl, c->out + c->out_off, len);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->out_retry = 0;
            c->write_wants_in = false;
            moved = true;
            /* a slow reader is not stuck while it makes progress */
            if (c->pair_eof) c->deadline_ms = now_ms() + c->w->f->idle_ms;
            continue;
        }
        int e = SSL_get_error(c->ssl, n);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
            log_tls_error(c, "tls_write_failed");
            conn_close(c);
            return false;
        }
        c->write_wants_in = e == SSL_ERROR_WANT_READ;
        *(c->write_wants_in ? &c->tcp_end.readable : &c->tcp_end.writable) = false;
        c->out_retry = len;
        break;
    }
    if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
    return moved;
}

/* Writability is asked for only while a write is blocked: otherwise every
 * ACK and every read libmicrohttpd makes would wake the worker for nothing
 * (edge-triggered, and MOD reports a socket already writable at once). */
static void watch(struct conn *c, struct end *e, int fd)
{
    unsigned want = EPOLLIN | EPOLLRDHUP | EPOLLET | (e->writable ? 0 : EPOLLOUT);
    if (want == e->events) return;
    struct epoll_event ev = {.events = want, .data.ptr = e};
    if (epoll_ctl(c->w->ep, EPOLL_CTL_MOD, fd, &ev) < 0)
        conn_close(c);
    else
        e->events = want;
}

static void pump(struct conn *c)
{
    bool moved;
    do {
        moved = pump_in(c);
        if (c->dead) return;
        moved = pump_out(c) || moved;
        if (c->dead) return;
    } while (moved);
    if (c->pair_eof && !c->out_len) finish(c);
    if (!c->dead) watch(c, &c->tcp_end, c->tcp);
    if (!c->dead) watch(c, &c->pair_end, c->pair);
}

static void hand_over(struct conn *c)
{
    fp_tls_front *f = c->w->f;
    int sv[2];
    /* mapped, not malloc'd: unmapped at close, the pages go back at once
     * instead of staying in the worker's malloc arena (edges count RSS) */
    c->in = mmap(NULL, 2 * BUF_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (c->in == MAP_FAILED) c->in = NULL;
    if (!c->in || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) {
        fp_warn("event=tls_handover_failed error=%s", strerror(errno ? errno : ENOMEM));
        conn_close(c);
        return;
    }
    c->out = c->in + BUF_SIZE;
    c->pair = sv[0];
    /* unknown until tried: OpenSSL may already hold the first request */
    c->tcp_end.readable = c->tcp_end.writable = true;
    c->pair_end = (struct end){
        .c = c, .readable = true, .writable = true, .events = EPOLLIN | EPOLLRDHUP | EPOLLET};
    c->deadline_ms = 0;
    if (f->verified && (size_t)sv[1] < f->nverified) {
        /* the verify callback let every chain through: judge it here */
        X509 *cert = SSL_get1_peer_certificate(c->ssl);
        bool ok = cert && SSL_get_verify_result(c->ssl) == X509_V_OK;
        X509_free(cert);
        atomic_store(&f->verified[sv[1]], ok);
    }
    struct epoll_event ev = {.events = c->pair_end.events, .data.ptr = &c->pair_end};
    if (epoll_ctl(c->w->ep, EPOLL_CTL_ADD, c->pair, &ev) < 0) {
        close(sv[1]);
        conn_close(c);
        return;
    }
    /* libmicrohttpd closes sv[1] itself, also when it refuses it (limits) */
    if (MHD_add_connection(f->daemon, sv[1], (struct sockaddr *)&c->peer, c->peer_len) != MHD_YES) {
        conn_close(c);
        return;
    }
    pump(c); /* the first request may have come with the handshake's end */
}

static void handshake(struct conn *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        hand_over(c);
    } else if (!ssl_would_block(c->ssl, rc)) {
        log_tls_error(c, "tls_handshake_failed");
        conn_close(c);
    }
}

static void accept_some(struct worker *w)
{
    fp_tls_front *f = w->f;
    /* a few at a time: the other workers take their share */
    for (int i = 0; i < 16; i++) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        int fd = accept4(f->lfd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                fp_warn("event=accept_failed error=%s", strerror(errno));
            return;
        }
        /* over the cap: closed at once, so descriptors cannot run out */
        if (atomic_fetch_add(&f->nconns, 1) >= f->max_conns) {
            atomic_fetch_sub(&f->nconns, 1);
            close(fd);
            continue;
        }
        struct conn *c = calloc(1, sizeof *c);
        SSL *ssl = c ? SSL_new(f->ctx) : NULL;
        if (!ssl) {
            free(c);
            close(fd);
            atomic_fetch_sub(&f->nconns, 1);
            continue;
        }
        int one = 1; /* records are written whole; Nagle would hold the last one */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL_set_fd(ssl, fd);
        SSL_set_accept_state(ssl);
        *c = (struct conn){.w = w,
                           .ssl = ssl,
                           .tcp = fd,
                           .pair = -1,
                           .peer = peer,
                           .peer_len = plen,
                           .deadline_ms = now_ms() + f->handshake_ms,
                           .next = w->live};
        c->tcp_end.c = c;
        c->tcp_end.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET; /* the handshake's */
        if (w->live) w->live->prev = c;
        w->live = c;
        struct epoll_event ev = {.events = c->tcp_end.events, .data.ptr = &c->tcp_end};
        if (epoll_ctl(w->ep, EPOLL_CTL_ADD, fd, &ev) < 0) conn_close(c);
    }
}

/* A handshake not done by its deadline (a slowloris), or a client that
 * does not take the rest of an answer, is closed. */
static void sweep(struct worker *w, uint64_t now)
{
    for (struct conn *c = w->live, *next; c; c = next) {
        next = c->next;
        if (c->deadline_ms && now >= c->deadline_ms) {
            char addr[INET6_ADDRSTRLEN];
            fp_debug("event=tls_deadline remote=%s handshake=%s", peer_name(c, addr, sizeof addr),
                     c->pair < 0 ? "true" : "false");
            conn_close(c);
        }
    }
}

static void free_dead(struct worker *w)
{
    while (w->dead) {
        struct conn *c = w->dead;
        w->dead = c->next;
        free(c);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    fp_tls_front *f = w->f;
    struct epoll_event ev[64];
    uint64_t next_sweep = 0;
    while (!atomic_load(&f->stopping)) {
        int n = epoll_wait(w->ep, ev, 64, w->live ? 250 : -1);
        for (int i = 0; i < n; i++) {
            if (ev[i].data.ptr == &f->lfd) {
                accept_some(w);
                continue;
            }
            if (ev[i].data.ptr == &f->stop_fd) continue; /* stopping is set */
            struct end *e = ev[i].data.ptr;
            struct conn *c = e->c;
            if (c->dead) continue;
            /* an error or hang-up is told by the call it makes fail */
            if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e->readable = true;
            if (ev[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) e->hup = true;
            if (ev[i].events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) e->writable = true;
            if (c->pair < 0)
                handshake(c);
            else
                pump(c);
        }
        uint64_t now = now_ms();
        if (now >= next_sweep) {
            sweep(w, now);
            next_sweep = now + 250;
        }
        free_dead(w);
    }
    while (w->live)
        conn_close(w->live);
    free_dead(w);
    return NULL;
}

/* Every chain is let through the handshake; hand_over keeps the verdict,
 * and server.c enforces it per request (/api/v1/join needs none). */
static int keep_verdict(int ok, X509_STORE_CTX *x)
{
    (void)ok;
    (void)x;
    return 1;
}

static int no_passphrase(char *buf, int size, int rw, void *u)
{
    (void)buf;
    (void)size;
    (void)rw;
    (void)u;
    return -1;
}

static int ssl_fail(fp_error *err, const char *what, const char *path)
{
    char why[256] = "";
    unsigned long e = ERR_peek_last_error();
    if (e) ERR_error_string_n(e, why, sizeof why);
    ERR_clear_error();
    return fp_error_set(err, 0, "[tls] %s %s: %s", what, path, e ? why : "unreadable");
}

static int load_key(SSL_CTX *ctx, const char *path, fp_error *err)
{
    char *pem = NULL;
    size_t len = 0;
    if (fp_read_file(path, 1 << 20, &pem, &len, err) < 0) return -1;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    BIO_free(bio);
    OPENSSL_cleanse(pem, len); /* do not keep the private key in memory twice */
    free(pem);
    int rc = key && SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1
                 ? 0
                 : ssl_fail(err, "key", path);
    EVP_PKEY_free(key);
    return rc;
}

static int make_ctx(fp_tls_front *f, const fp_tls_front_opts *o, fp_error *err)
{
    SSL_CTX *ctx = f->ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return ssl_fail(err, "context", "");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* renegotiation only serves an attacker's CPU; a client that drops
     * TCP without close_notify is an EOF like any other */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    /* one read() per record or fewer, not one for its header and one for
     * the rest (the pump reads until OpenSSL wants the socket anyway) */
    SSL_CTX_set_read_ahead(ctx, 1);
    /* resumption (tickets are on by default) needs a context id once
     * peers are verified */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"fogport", 7);
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1)
        return ssl_fail(err, "cert", o->cert);
    if (load_key(ctx, o->key, err) < 0) return -1;
    if (!o->client_ca || !o->client_ca[0]) return 0;
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->client_ca);
    if (!names || SSL_CTX_load_verify_locations(ctx, o->client_ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return ssl_fail(err, "client_ca", o->client_ca);
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, keep_verdict);
    return 0;
}

static int listen_on(fp_tls_front *f, const struct sockaddr *addr, socklen_t addrlen, fp_error *err)
{
    int one = 1;
    f->lfd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (f->lfd < 0) return fp_error_set(err, errno, "socket");
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (addr->sa_family == AF_INET6)
        setsockopt(f->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (bind(f->lfd, addr, addrlen) < 0 || listen(f->lfd, SOMAXCONN) < 0 ||
        getsockname(f->lfd, (struct sockaddr *)&bound, &blen) < 0)
        return fp_error_set(err, errno, "cannot listen");
    f->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int fp_tls_front_open(fp_tls_front **out, const struct sockaddr *addr, socklen_t addrlen,
                      const fp_tls_front_opts *o, fp_error *err)
{
    fp_tls_front *f = calloc(1, sizeof *f);
    if (!f) return fp_error_set(err, ENOMEM, "TLS front");
    f->lfd = f->stop_fd = -1;
    f->nworkers = o->threads ? o->threads : 1;
    f->handshake_ms = (uint64_t)(o->handshake_s ? o->handshake_s : 10) * 1000;
    f->idle_ms = (uint64_t)(o->idle_s ? o->idle_s : 60) * 1000;
    /* a TLS connection holds three descriptors once handed over */
    struct rlimit rl = {0};
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t fit = rl.rlim_cur > 3 * FD_RESERVE ? (rl.rlim_cur - FD_RESERVE) / 3 : FD_RESERVE;
    if (fit > (1u << 20)) fit = 1u << 20;
    f->max_conns =
        o->max_connections && o->max_connections < fit ? o->max_connections : (unsigned)fit;
    if (o->max_connections > f->max_conns)
        fp_warn("event=tls_connection_cap max_connections=%u open_files=%llu cap=%u",
                o->max_connections, (unsigned long long)rl.rlim_cur, f->max_conns);
    if (o->client_ca && o->client_ca[0]) {
        f->nverified = rl.rlim_cur < (1u << 20) ? (size_t)rl.rlim_cur : (1u << 20);
        f->verified = calloc(f->nverified, sizeof *f->verified);
    }
    f->workers = calloc(f->nworkers, sizeof *f->workers);
    f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!f->workers || (o->client_ca && o->client_ca[0] && !f->verified) || f->stop_fd < 0) {
        fp_tls_front_stop(f);
        return fp_error_set(err, ENOMEM, "TLS front");
    }
    if (make_ctx(f, o, err) < 0 || listen_on(f, addr, addrlen, err) < 0) {
        fp_tls_front_stop(f);
        return -1;
    }
    *out = f;
    return 0;
}

unsigned fp_tls_front_port(const fp_tls_front *f)
{
    return f->port;
}

int fp_tls_front_run(fp_tls_front *f, struct MHD_Daemon *daemon, fp_error *err)
{
    f->daemon = daemon;
    for (; f->started < f->nworkers; f->started++) {
        struct worker *w = &f->workers[f->started];
        w->f = f;
        w->ep = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &f->lfd};
        struct epoll_event sev = {.events = EPOLLIN, .data.ptr = &f->stop_fd};
        if (w->ep < 0 || epoll_ctl(w->ep, EPOLL_CTL_ADD, f->lfd, &lev) < 0 ||
            epoll_ctl(w->ep, EPOLL_CTL_ADD, f->stop_fd, &sev) < 0 ||
            (errno = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
            if (w->ep >= 0) close(w->ep);
            return fp_error_set(err, errno, "TLS front worker");
        }
    }
    return 0;
}

bool fp_tls_front_client_verified(const fp_tls_front *f, int mhd_fd)
{
    return f && f->verified && mhd_fd >= 0 && (size_t)mhd_fd < f->nverified &&
           atomic_load(&f->verified[mhd_fd]);
}

void fp_tls_front_stop(fp_tls_front *f)
{
    if (!f) return;
    atomic_store(&f->stopping, true);
    if (f->stop_fd >= 0 && eventfd_write(f->stop_fd, 1) < 0)
        fp_warn("event=tls_front_stop error=%s", strerror(errno));
    for (unsigned i = 0; i < f->started; i++) {
        pthread_join(f->workers[i].thread, NULL);
        close(f->workers[i].ep);
    }
    if (f->lfd >= 0) close(f->lfd);
    if (f->stop_fd >= 0) close(f->stop_fd);
    SSL_CTX_free(f->ctx);
    free(f->verified);
    free(f->workers);
    free(f);
}
