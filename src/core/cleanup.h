/* Scope-bound cleanup (GCC/Clang cleanup attribute): a variable declared with
 * one of these is released when it leaves scope, so early returns cannot leak.
 * Mirrors crun's cleanup_free / cleanup_close. */
#ifndef FP_CORE_CLEANUP_H
#define FP_CORE_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void fp_freep(void *p)
{
    free(*(void **)p);
}
static inline void fp_closep(int *fd)
{
    if (*fd >= 0) close(*fd);
}
static inline void fp_fclosep(FILE **f)
{
    if (*f) fclose(*f);
}

#define cleanup_free   __attribute__((cleanup(fp_freep)))
#define cleanup_close  __attribute__((cleanup(fp_closep)))
#define cleanup_fclose __attribute__((cleanup(fp_fclosep)))

/* Hand ownership out of a cleanup-scoped variable. */
#define fp_steal_ptr(p)                                                                            \
    ({                                                                                             \
        __typeof__(p) fp_tmp_ = (p);                                                               \
        (p) = NULL;                                                                                \
        fp_tmp_;                                                                                   \
    })
#define fp_steal_fd(fd)                                                                            \
    ({                                                                                             \
        int fp_tmpfd_ = (fd);                                                                      \
        (fd) = -1;                                                                                 \
        fp_tmpfd_;                                                                                 \
    })

#endif
