/* The seccomp profile of every service container (linux.seccomp in the
 * OCI runtime spec): Docker's default in spirit, an allowlist with EPERM
 * for everything else. The same for every service: a definition cannot
 * relax it (docs/security.md "Seccomp"). */
#ifndef FP_AGENT_SECCOMP_H
#define FP_AGENT_SECCOMP_H

#include <jansson.h>

/* The errno a syscall outside the allowlist fails with. */
#define FP_SECCOMP_ERRNO 1 /* EPERM */

/* The profile as a new JSON object for linux.seccomp, for the
 * architectures of this build's host (x86_64 with its 32-bit and x32
 * ABIs, or aarch64 with 32-bit arm). NULL only when out of memory. */
json_t *fp_seccomp_profile(void);

#endif
