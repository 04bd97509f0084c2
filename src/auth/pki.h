/* The deployment's public-key infrastructure: one CA per deployment (the
 * cloud keeps it), a certificate for each node's names and addresses so
 * every link between nodes is TLS that both ends verify, and the token
 * signing key. EC P-256 and SHA-256 throughout. */
#ifndef FP_AUTH_PKI_H
#define FP_AUTH_PKI_H

#include <stddef.h>

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

#endif
