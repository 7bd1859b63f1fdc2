/* The sandbox audit: a test-only hook that runs a native payload inside a real
 * worker, the syscall sweep and argument perturbation built on it, and checks
 * of a live worker's process state from /proc.
 *
 * This library is linked into the tests and the `cpvm` tool (for `cpvm audit`),
 * never into libcpvm: a program blob only ever reaches a worker through the
 * compiler, and nothing in the library can run anything else there. */
#ifndef CPVM_AUDIT_H
#define CPVM_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cpvm.h"

enum audit_kind {
    AUDIT_RETURNED, /* the payload returned; ret holds rax */
    AUDIT_FAULTED,  /* a fault inside the payload, caught by the zygote (signal in ret) */
    AUDIT_KILLED,   /* the worker died of a signal (status) */
    AUDIT_EXITED,   /* the worker exited (status) */
    AUDIT_TIMEOUT,  /* deadline passed, killed */
    AUDIT_ERROR,    /* no worker could be had */
};

struct audit_outcome {
    enum audit_kind kind;
    int status;
    int64_t ret;
};

/* A syscall as a payload issues it. */
enum audit_abi { ABI_X86_64, ABI_X32, ABI_I386 };
struct audit_call {
    enum audit_abi abi;
    uint64_t nr;
    uint64_t args[6];
};

/* Runs `call` in a worker from the pool. */
void audit_syscall(const struct audit_call *call, struct audit_outcome *out);
/* Runs `len` bytes of payload body (emitted between the hook's prologue and
 * epilogue; rax at the end is reported) in a worker. */
void audit_run_body(const uint8_t *body, size_t len, struct audit_outcome *out);
/* Describes an outcome ("returned -11", "killed by SIGSYS"). */
void audit_describe(const struct audit_outcome *o, char *buf, size_t len);

/* The full live audit: every x86-64 number, x32 and i386 sweeps, every rule's
 * allowed and perturbed arguments, and the worker's process state. Prints one
 * line per failure (and per section) to `log` (may be NULL); returns the
 * number of failed checks and fills *checks with the number run. */
unsigned audit_all(FILE *log, unsigned *checks);
unsigned audit_syscall_sweep(FILE *log, unsigned *checks);
unsigned audit_arguments(FILE *log, unsigned *checks);
unsigned audit_process_state(FILE *log, unsigned *checks);

/* Highest x86-64 syscall number swept (the kernel's table ends well below). */
#define AUDIT_MAX_NR 600u
#define AUDIT_MAX_I386_NR 460u

#endif
