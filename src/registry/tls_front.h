/* The TLS front: fogport terminates TLS itself, with OpenSSL (the library
 * its JWTs, CA and HTTP client already use), and hands each decrypted
 * stream to libmicrohttpd as one end of a socketpair. One TLS stack per
 * process instead of two (libmicrohttpd's GnuTLS cost about 2 MiB RSS),
 * and libmicrohttpd can be built without HTTPS. OpenSSL writes to the
 * client's socket with write(): the process must ignore SIGPIPE (fogport
 * serve does). */
#ifndef FP_REGISTRY_TLS_FRONT_H
#define FP_REGISTRY_TLS_FRONT_H

#include <stdbool.h>
#include <sys/socket.h>

#include "core/error.h"

struct MHD_Daemon;
typedef struct fp_tls_front fp_tls_front;

typedef struct fp_tls_front_opts {
    const char *cert;      /* PEM: the certificate, then its chain */
    const char *key;       /* PEM private key (read, used and wiped) */
    const char *client_ca; /* request client certificates chaining to it; "" or NULL: none */
    unsigned threads;      /* worker threads (each its own epoll set) */
    unsigned max_connections;
    unsigned handshake_s; /* a handshake not done by then is closed */
    unsigned idle_s;      /* a client not taking the rest of an answer for this long too */
} fp_tls_front_opts;

/* Load the certificate and key and bind the listening socket (addr), not
 * yet accepting: a bad key or a taken port fails before anything runs. */
int fp_tls_front_open(fp_tls_front **out, const struct sockaddr *addr, socklen_t addrlen,
                      const fp_tls_front_opts *o, fp_error *err);
/* The port actually bound (useful with port 0). */
unsigned fp_tls_front_port(const fp_tls_front *f);
/* Start the workers: accept, handshake, then MHD_add_connection(daemon)
 * with the client's real address (per-IP limits and logs see the peer). */
int fp_tls_front_run(fp_tls_front *f, struct MHD_Daemon *daemon, fp_error *err);
/* Did the client behind libmicrohttpd's socket mhd_fd present a
 * certificate that chains to client_ca? */
bool fp_tls_front_client_verified(const fp_tls_front *f, int mhd_fd);
/* Stop accepting, close every connection, join the workers, free.
 * Before MHD_stop_daemon: a worker may be handing a connection over. */
void fp_tls_front_stop(fp_tls_front *f);

#endif
