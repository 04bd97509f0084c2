/* The deployment's public-key infrastructure: one CA per deployment (the
 * cloud keeps it), a certificate for each node's names and addresses so
 * every link between nodes is TLS that both ends verify, and the token
 * signing key. EC P-256 and SHA-256 throughout. */
#ifndef FP_AUTH_PKI_H
#define FP_AUTH_PKI_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

/* Create DIR/ca.key (0600), DIR/ca.crt (self-signed, 10 years), and the
 * token signing pair DIR/token.key, DIR/token.pub. Refuses to overwrite. */
int fp_ca_init(const char *dir, const char *name, fp_error *err);

/* Issue PREFIX.key (0600) and PREFIX.crt (leaf then CA certificate) for
 * cn, valid for `days`, with subjectAltNames for every DNS name and IP
 * address given, usable as TLS server and client. */
int fp_cert_issue(const char *ca_dir, const char *cn, const char *const *dns, size_t ndns,
                  const char *const *ips, size_t nips, unsigned days, const char *prefix,
                  fp_error *err);

/* A certificate signing request for key, CN cn, with the given DNS names
 * and IP addresses (PEM into pem). */
int fp_csr_create(void *evp_key, const char *cn, const char *const *dns, size_t ndns,
                  const char *const *ips, size_t nips, fp_buf *pem, fp_error *err);
/* Sign a CSR (PEM) for node `cn` with the CA in ca_dir, as a server and
 * client certificate. The CSR proves the key; the names are the CA's
 * decision: always DNS:cn, plus the request's DNS names under cn (cn.*), and
 * its IP addresses only when equal to allowed_ip (the joining connection's
 * address). Other requested names are dropped. PEM chain (leaf then CA)
 * into pem. */
int fp_csr_sign(const char *ca_dir, const char *csr_pem, const char *cn, const char *allowed_ip,
                unsigned days, fp_buf *pem, fp_error *err);
/* Token-signing ("signer") certificates let a fog issue tokens while the
 * cloud is unreachable (x5c, src/auth/x5c.h). They carry the document
 * signing extended key usage (id-kp-documentSigning, RFC 9336), critical and
 * alone, and OU = FP_SIGNER_OU; the deployment CA's TLS certificates never
 * do (serverAuth, clientAuth). A registered OID rather than a private one:
 * every X.509 library parses it (a UUID arc under 2.25 overflows some). */
#define FP_SIGNER_EKU_OID "1.3.6.1.5.5.7.3.36"
#define FP_SIGNER_OU      "fogport token signer"
/* Sign a CSR (PEM, EC P-256 key) for node cn as a token-signing certificate
 * valid for days (0: 30). The CSR contributes only its key. PEM chain
 * (leaf then CA) into pem. */
int fp_signer_csr_sign(const char *ca_dir, const char *csr_pem, const char *cn, unsigned days,
                       fp_buf *pem, fp_error *err);
/* The whole of a PEM file (the CA certificate, a public key) into pem. */
int fp_pem_read(const char *path, fp_buf *pem, fp_error *err);

#endif
