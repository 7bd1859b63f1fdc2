/* Filling struct cpvm_error; the one way the library reports a host error. */
#ifndef CPVM_COMMON_ERROR_H
#define CPVM_COMMON_ERROR_H

#include <stdio.h>
#include <stdlib.h>

#include "cpvm.h"

/* Records (code, offset, printf-style detail) in `err` if non-NULL and returns code. */
cpvm_status cpvm_fail(struct cpvm_error *err, cpvm_status code, uint64_t offset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An internal invariant broke: abort in every build so fuzzers catch it. */
#define CPVM_BUG(...)                                                               \
    do {                                                                            \
        fprintf(stderr, "cpvm internal error at %s:%d: ", __FILE__, __LINE__);      \
        fprintf(stderr, __VA_ARGS__);                                               \
        fputc('\n', stderr);                                                        \
        abort();                                                                    \
    } while (0)

#define CPVM_ASSERT(cond)                                                           \
    do {                                                                            \
        if (__builtin_expect(!(cond), 0)) CPVM_BUG("assertion failed: %s", #cond); \
    } while (0)

#endif
