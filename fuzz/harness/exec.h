/* The execution harness shared by the targets that run generated programs
 * (interp_exec, diff_interp_jit): decoding the common input framing, a
 * deterministic host (host call answers, page-fault policy, dynamic mapping),
 * the run loop with its per-stop invariants, and the outcome of a run (the
 * interrupt sequence, final registers, gas, next pc, heap and a snapshot of
 * every mapped page), compared between instances.
 *
 * The run loop is exposed one run() at a time (exec_begin, exec_step,
 * exec_end) so a differential target can drive two instances in lockstep and
 * compare them after every stop; exec_run_instance() is the whole loop.
 *
 * Common input framing (the targets add their own meaning to byte 0 bits 3-5):
 *   byte 0   run configuration
 *     bit 0     dynamic memory: the host maps the program's ro/rw/stack/aux
 *               regions itself and answers page faults by mapping pages
 *     bit 1     compat GP v0.4 instead of PolkaVM 0.35
 *     bit 2     no gas metering (only when the program has no memset; a step
 *               budget then bounds the run)
 *     bits 3-5  the target's
 *     bit 6     the host refills the gas once after out-of-gas (synchronous
 *               metering; asynchronous out-of-gas is final)
 *     bit 7     after every other host call the host sets the next pc itself
 *               (a mid-block re-entry, charged again)
 *   byte 1   host seed: host call answers (a0, a1; writes into rw data,
 *            into read-only data with standard memory (the first
 *            EXEC_MAX_RO_WRITES: each costs the in-process compiler a system
 *            call, and a thousand say no more than a few); unmapping a page with
 *            dynamic memory; 1 call in 32, with synchronous metering, a
 *            host function dearer than the gas left: gas -1) and the page
 *            fault policy (map read-write or read-only first)
 *   bytes 2.. generator input (gen.h, GEN_CONFIG_INTERP_EXEC)
 *
 * Invariants checked at every stop (abort on violation):
 *   - every run() returns CPVM_OK (CPVM_E_NO_MEMORY ends the case quietly);
 *   - the exit kind is one the configuration allows; its pc is <= code length;
 *     halt/panic leave no next pc (except a failed entry at a host-set pc),
 *     ecalli a later one, page fault / step / synchronous out of gas the same
 *     pc, asynchronous out of gas none;
 *   - with metering, gas never grows across run() and goes negative only in an
 *     asynchronous out-of-gas stop; a run() entered with negative gas stops
 *     out of gas at once, charging nothing; without metering, gas never changes;
 *   - page faults only with dynamic memory, page-aligned, >= 0x4000, and on a
 *     page the host has not mapped writable;
 *   - standard memory: ro data keeps its initial contents (plus the host's
 *     writes), aux stays zero, the heap stays within max_heap_size, and the
 *     bytes around the rw/heap and stack ends are unmapped;
 *   - with check_reset: reset_memory restores the initial memory (standard) or
 *     unmaps every page (dynamic) and empties the heap;
 *   - a reused instance (exec_run.reuse) is first reset with
 *     cpvm_instance_reset and must then look fresh: registers and gas zero, no
 *     next pc, empty heap, the initial memory (or nothing mapped), intact canaries.
 */
#ifndef CPVM_FUZZ_HARNESS_EXEC_H
#define CPVM_FUZZ_HARNESS_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpvm.h"
#include "gen.h"

#define EXEC_MAX_RUNS 4096u               /* run() calls per instance, step stops excluded */
#define EXEC_MAX_STEP_STOPS 200000u       /* step stops per instance */
/* With exec_setup.widen_steps (diff_interp_jit), after this many step stops
 * at the input's step limit the host widens the limit to
 * EXEC_STEP_LIMIT_LATE for the rest of the instance (both sides of a
 * comparison alike): a program stepped one instruction at a time up to its
 * gas ran up to 200,000 stops per instance, a few inputs in a hundred that
 * took most of the fuzzer's time while repeating the same loop bodies; the
 * run still goes to its end, every later stop still compared. */
#define EXEC_STEP_STOPS_EXACT 512u
#define EXEC_STEP_LIMIT_LATE 1000u
#define EXEC_UNMETERED_STEP_BUDGET 10000u /* instructions per run() without gas */
#define EXEC_UNMETERED_MAX_STOPS 4u
#define EXEC_MAX_FAULT_MAPS 32u
#define EXEC_MAX_RO_WRITES 4u             /* host writes into read-only data per instance */
#define EXEC_MAX_DYN_PAGES 512u
#define EXEC_SNAPSHOT_FULL (1u << 20)     /* default: regions up to 1 MiB are compared whole */
#define EXEC_SNAPSHOT_MIDDLE_PAGES 64u   /* pages sampled from the middle of a bigger one */

/* What the input asks for; filled by exec_setup_init. */
struct exec_setup {
    const char *target;            /* for messages: "<target> invariant violated: ..." */
    struct gen_program g;
    cpvm_program *prog;
    uint8_t cfg, seed;
    bool dynamic, metered, refill, reenter;
    bool async;                    /* set by the target (gas_async), only with metering */
    bool widen_steps;              /* set by the target: EXEC_STEP_STOPS_EXACT applies */
    uint64_t step_limit;           /* per run(): the generator's, or the unmetered budget */
    uint64_t snapshot_full;        /* regions up to this size are snapshotted whole */
    struct cpvm_program_info info;
    uint64_t input_hash;           /* of the whole input: picks the sampled checks (exec_sampled) */
    /* Called before any abort (an invariant or a divergence), e.g. to print
     * the program; may be NULL. */
    void (*on_fail)(void *arg);
    void *on_fail_arg;
};

/* Decodes the common framing and generates the program. Returns false when
 * the case is to be skipped (generator out of memory); aborts when the
 * generated program does not parse. exec_setup_free releases it. */
bool exec_setup_init(struct exec_setup *su, const char *target, const uint8_t *data, size_t size);
void exec_setup_free(struct exec_setup *su);

/* Whether this input runs a sampled check: one input in `one_in`, chosen by a
 * hash of the input and `salt` (one salt per check, so the shares are
 * independent), so the same input always runs the same checks. The fuzzing
 * engines sample the costliest checks of a target this way; the replay
 * driver (CTest, triage, cpvm repro) sets CPVM_FUZZ_CHECKS=all, which runs
 * every check on every input (CPVM_FUZZ_CHECKS=all does that under an
 * engine too). */
bool exec_sampled(const struct exec_setup *su, uint64_t salt, unsigned one_in);

/* The module configuration the setup implies, for `backend`. */
void exec_module_config(const struct exec_setup *su, cpvm_backend backend, struct cpvm_module_config *mc);

/* Prints the message, calls su->on_fail, aborts. */
__attribute__((noreturn, format(printf, 2, 3))) void exec_fail(const struct exec_setup *su, const char *fmt, ...);

/* One contiguous piece of a memory snapshot: `len` bytes at snapshot offset
 * `at` are guest bytes [addr, addr + len). */
struct exec_chunk {
    uint32_t addr, len;
    size_t at;
};

/* What one instance did. */
struct exec_outcome {
    uint64_t hash_all, hash_filtered; /* interrupt sequence, with and without step stops */
    uint32_t events, filtered_events;
    uint64_t regs[CPVM_REG_COUNT];
    int64_t gas;
    bool has_next;
    uint32_t next_pc, heap;
    uint8_t *mem;
    size_t mem_len, mem_cap;
    struct exec_chunk *chunks;
    size_t nchunks, chunks_cap;
    bool complete; /* ended by halt/panic/out-of-gas/policy, not by a cap or host OOM */
};
void exec_outcome_free(struct exec_outcome *o);

struct exec_dyn_page {
    uint32_t addr;
    bool writable;
};

/* The host's state for one instance. */
struct exec_host {
    struct exec_dyn_page pages[EXEC_MAX_DYN_PAGES];
    unsigned n_pages;
    unsigned ecallis, faults, ro_writes;
    bool refilled;
    uint8_t *ro_expect; /* standard memory: what ro data must hold (the host may write it) */
};

/* The guest-observable state right after one run(), before the host reacts. */
struct exec_stop {
    struct cpvm_interrupt intr;
    uint64_t regs[CPVM_REG_COUNT];
    int64_t gas;
    bool has_next;
    uint32_t next_pc, heap;
};

enum exec_step_result {
    EXEC_CONTINUE, /* the host answered; run() again */
    EXEC_DONE,     /* halt, panic, final out-of-gas, or the host's policy ended it */
    EXEC_CAPPED,   /* a run/step cap ended it before the guest did */
    EXEC_NO_MEMORY /* the host ran out of memory: nothing to compare */
};

struct exec_run;
/* Called after every run() that returned CPVM_OK, with r->last filled and
 * before any invariant check or host reaction. */
typedef void (*exec_hook)(struct exec_run *r, void *arg);

/* One instance running one setup. */
struct exec_run {
    const struct exec_setup *su;
    const cpvm_module *mod;
    cpvm_instance *inst;
    struct exec_host h;
    struct exec_outcome *o, initial;
    uint64_t step_limit, insns;
    unsigned runs, stops;
    bool host_set_pc, check_reset, no_memory;
    enum exec_step_result state;
    struct exec_stop last;
    exec_hook hook;
    void *hook_arg;
    /* Set by the caller before exec_begin (kept across it): `reuse` is an
     * instance of the same module to reset and run instead of a new one;
     * with `keep`, exec_end leaves the instance in `reuse` instead of freeing it. */
    cpvm_instance *reuse;
    bool keep;
};

/* Creates the instance (host setup, prepare_call, gas, step limit). Returns
 * false when instance creation ran out of memory (*o is then empty). */
bool exec_begin(struct exec_run *r, const struct exec_setup *su, const cpvm_module *mod, uint64_t step_limit,
                bool check_reset, struct exec_outcome *o);
/* One run(), its invariants and the host's answer. */
enum exec_step_result exec_step(struct exec_run *r);
/* The final state and memory into *o, the reset check, and the instance freed. */
void exec_end(struct exec_run *r);

/* exec_begin + exec_step until it ends + exec_end. */
void exec_run_instance(const struct exec_setup *su, const cpvm_module *mod, uint64_t step_limit, bool check_reset,
                       struct exec_outcome *o);
/* The same on *inst after cpvm_instance_reset (a new instance when *inst is
 * NULL), which stays in *inst for the caller to run again or free. */
void exec_run_reused(const struct exec_setup *su, const cpvm_module *mod, cpvm_instance **inst, uint64_t step_limit,
                     bool check_reset, struct exec_outcome *o);

/* Aborts (through exec_fail) unless both outcomes agree: interrupt sequence
 * (all stops, or `filtered`: without step stops), registers, gas, next pc,
 * heap size and memory. `what` names the comparison. */
void exec_compare(const struct exec_setup *su, const struct exec_outcome *a, const struct exec_outcome *b,
                  bool filtered, const char *what);

/* Guest address of snapshot byte `at`, or false if it is past the snapshot. */
bool exec_snapshot_addr(const struct exec_outcome *o, size_t at, uint32_t *addr);

#endif
