/* Failed-login rate limiting per source address: after `max` failures in a
 * window of `window` seconds, further attempts from that address are refused
 * (429 with Retry-After) until the window ends, so passwords cannot be
 * brute-forced at the speed of the network. A fixed table: an attacker with
 * many addresses evicts old entries rather than growing memory. */
#ifndef FP_AUTH_RATELIMIT_H
#define FP_AUTH_RATELIMIT_H

#include <stdbool.h>

typedef struct fp_ratelimit fp_ratelimit;

fp_ratelimit *fp_ratelimit_new(unsigned max, unsigned window_s);
void fp_ratelimit_free(fp_ratelimit *rl);
/* Seconds until addr may try again, 0 if it may now. */
unsigned fp_ratelimit_blocked(fp_ratelimit *rl, const char *addr);
void fp_ratelimit_failure(fp_ratelimit *rl, const char *addr);

#endif
