/* The zygote sandbox, host side: worker processes (worker.c), the pool that
 * reuses them (pool.c) and the seccomp policy they run under (policy.c).
 *
 * A worker is a process in fresh namespaces running the embedded zygote. It
 * shares two memfds with the host: guest memory (with the control block and
 * the JIT context below the window) and native code (exec-only in the worker).
 * The host trusts nothing the worker writes: every value read back is checked
 * (runtime.c), and a worker that dies, misbehaves or overruns its deadline is
 * killed and reported as an error. */
#ifndef CPVM_SANDBOX_H
#define CPVM_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cpvm.h"
#include "layout.h"

struct sbx_worker {
    pid_t pid;
    int pidfd;
    int memfd, codefd;
    uint8_t *mem_view;  /* host view of the memory memfd: SBX_MEM_SIZE bytes */
    uint8_t *code_view; /* host view of the code memfd: SBX_CODE_CAP bytes, writable */
    volatile struct sbx_ctrl *ctrl;
    uint64_t code_owner; /* module id whose code is loaded, 0 = none */
    size_t code_used;    /* bytes of code written since the last wipe */
    uint64_t code_gen;
    bool dead;
    int exit_code, exit_status; /* waitid's si_code and si_status once dead */
    uint64_t runs;
    uint32_t spin;      /* the host's spin budget (layout.h) */
    /* The permission tables of its instances' host views (machine.h perm and
     * hw, MEM_PAGES bytes each), kept with the worker: all zero between
     * instances, as the scrubbed worker's pages are all inaccessible. */
    uint8_t *perm_table, *hw_table;
    struct sbx_worker *next;                    /* idle list */
    struct sbx_worker *busy_next, *busy_prev;   /* busy list (accounting) */
};

/* Outcome of a command. */
enum sbx_wait {
    SBX_DONE = 0,  /* the worker answered */
    SBX_DIED,      /* it exited or was killed (exit_code/exit_status say how) */
    SBX_TIMEOUT,   /* the deadline passed; the worker was killed */
    SBX_REFUSED,   /* it answered FAILED (message in ctrl) */
};

/* Guest window of a worker as the host sees it (window base, like instance->mem). */
static inline uint8_t *sbx_window(const struct sbx_worker *w) { return w->mem_view + SBX_WINDOW_PRE; }

/* worker.c */
/* Whether workers can be created here; *why says why not. Probed once. */
bool sbx_available(const char **why);
cpvm_status sbx_worker_spawn(struct sbx_worker **out, char *why, size_t why_len);
/* Posts `cmd` and waits for the answer, at most until `deadline_ns` (CLOCK_MONOTONIC,
 * 0 = no deadline; liveness is checked either way). */
enum sbx_wait sbx_worker_call(struct sbx_worker *w, enum sbx_cmd cmd, uint64_t deadline_ns);
/* Kills (if alive) and reaps it, then releases everything. */
void sbx_worker_destroy(struct sbx_worker *w);
/* Replaces the worker's code with `code` (the old code is overwritten first). */
cpvm_status sbx_worker_load_code(struct sbx_worker *w, uint64_t owner, const uint8_t *code, size_t len);
/* Bytes the worker holds: committed memfd pages and its private memory. */
void sbx_worker_memory(const struct sbx_worker *w, uint64_t *shared, uint64_t *private_bytes);
/* A description of how it died ("killed by SIGSYS", "exit 3"). */
void sbx_worker_death(const struct sbx_worker *w, char *buf, size_t len);
uint64_t sbx_now_ns(void);

/* Whether it still runs (records how it ended otherwise). */
bool sbx_worker_alive(struct sbx_worker *w);
/* Kills and reaps the process now (the struct stays until destroyed). */
void sbx_worker_kill(struct sbx_worker *w);

/* enter.c */
struct cpvm_instance;
/* The sandboxed compiler (machine.h): runs an instance's code in its worker.
 * On death, deadline or refusal the instance is dead and run() says why. */
extern const struct vm_backend sbx_backend;
/* Marks the instance dead with `why` and kills its worker. */
cpvm_status sbx_fail(struct cpvm_instance *in, cpvm_status why);

/* pool.c */
/* A clean worker, preferring one that already holds `owner`'s code. */
cpvm_status sbx_acquire(uint64_t owner, struct sbx_worker **out, char *why, size_t why_len);
/* Gives it back: scrubbed and pooled if healthy and there is room, else destroyed. */
void sbx_release(struct sbx_worker *w);
uint64_t sbx_new_owner_id(void);

/* policy.c */
struct sbx_check {
    uint8_t arg;
    uint8_t op; /* SBX_EQ, SBX_MASKED_EQ, SBX_LE */
    uint64_t value, mask;
};
enum { SBX_EQ = 1, SBX_MASKED_EQ, SBX_LE };

struct sbx_rule {
    const char *name;
    int nr;
    uint8_t nchecks;
    struct sbx_check checks[3];
    const char *constraint; /* the checks, in words */
    const char *why;        /* what in the zygote needs it */
};

extern const struct sbx_rule sbx_rules[];
extern const size_t sbx_nrules;
/* The filter as a classic BPF program (built with libseccomp); count in *len. */
cpvm_status sbx_policy_build(struct sbx_filter_insn *out, uint32_t max, uint32_t *len, char *why, size_t why_len);

#endif
