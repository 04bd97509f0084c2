/* Errors travel as values: a fallible function returns < 0 and fills an
 * fp_error with errno and a message built where the failure happened; callers
 * may add context with fp_error_prefix; only the top level prints it. */
#ifndef FP_CORE_ERROR_H
#define FP_CORE_ERROR_H

typedef struct fp_error {
    int errnum;    /* errno at the failure site, 0 when not a system error */
    char msg[512]; /* human-readable, includes strerror(errnum) when set */
} fp_error;

/* Fill err and return -1. errnum 0 means "not a system error". */
int fp_error_set(fp_error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prepend "context: " to an existing message and return -1. */
int fp_error_prefix(fp_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
