/*
 * cpvm — a PolkaVM 0.35 compatible virtual machine.
 *
 * The whole public API. Three kinds of objects, each opaque:
 *
 *   cpvm_program   a parsed program: a `.polkavm` container or a raw Graypaper
 *                  program. Immutable; read-only accessors for every section.
 *   cpvm_module    a program prepared for execution with a configuration
 *                  (backend, memory model, gas metering and cost model).
 *   cpvm_instance  one running machine: registers, gas, memory, program counter.
 *
 * Three channels, never mixed:
 *   - host errors: every fallible call returns enum cpvm_status and, when given a
 *     struct cpvm_error, fills it with the code, the input offset and a detail;
 *   - guest outcomes: cpvm_instance_run() returns CPVM_OK and describes why the
 *     guest stopped in struct cpvm_interrupt (halt, panic, page fault, ...);
 *   - internal bugs abort the process in every build (so fuzzers see them).
 *
 * Nothing here allocates without a bound derived from the input's size, and no
 * call reads outside the buffers it is given.
 */
#ifndef CPVM_H
#define CPVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

typedef enum cpvm_status {
#define ERR(name, msg) CPVM_E_##name,
#include "../common/errors.def"
#undef ERR
    CPVM_E_COUNT
} cpvm_status;

#define CPVM_OK CPVM_E_OK

/* Filled by a failing call: what went wrong, where (byte offset into the input,
 * or line number for the assembler), and a human-readable detail. */
struct cpvm_error {
    cpvm_status code;
    uint64_t offset;
    char detail[192];
};

/* Static text for a status code (never NULL). */
const char *cpvm_status_message(cpvm_status code);

/* ------------------------------------------------------------------------ */
/* Instruction sets and registers                                           */

/* The container's version byte selects one of these (blob-format.md §3). */
typedef enum cpvm_isa {
    CPVM_ISA_REVIVE_V1 = 0,
    CPVM_ISA_LATEST32 = 1,
    CPVM_ISA_LATEST64 = 2,
    CPVM_ISA_JAM_V1 = 3,
} cpvm_isa;
#define CPVM_ISA_COUNT 4

/* "revive_v1", "latest32", "latest64", "jam_v1" (the assembler's %isa names). */
const char *cpvm_isa_name(cpvm_isa isa);
/* Accepts those names and "jamv1"; returns false for anything else. */
bool cpvm_isa_from_name(const char *name, cpvm_isa *out);

#define CPVM_REG_COUNT 13
/* ABI name of register 0..12: ra sp t0 t1 t2 s0 s1 a0 a1 a2 a3 a4 a5. */
const char *cpvm_reg_name(unsigned reg);
/* Accepts ABI names and r0..r12; returns -1 when not a register. */
int cpvm_reg_from_name(const char *name);

enum { CPVM_REG_RA = 0, CPVM_REG_SP = 1, CPVM_REG_A0 = 7, CPVM_REG_A1 = 8, CPVM_REG_A2 = 9 };

/* ------------------------------------------------------------------------ */
/* Programs                                                                 */

typedef struct cpvm_program cpvm_program;

enum cpvm_parse_flags {
    /* Keep pointers into the caller's buffer instead of copying it once. The
     * buffer must then outlive the program and every module made from it. */
    CPVM_PARSE_BORROW = 1u << 0,
};

/* Parses a `.polkavm` container (magic "PVM\0"). On failure *out is NULL and
 * err (if given) says what and at which offset. */
cpvm_status cpvm_program_parse(const uint8_t *bytes, size_t len, unsigned flags,
                               cpvm_program **out, struct cpvm_error *err);

/* Parses a raw Graypaper program (jump table + code + bitmask, the JSON test
 * vectors' "program"); the format carries no ISA, so the caller names it. */
cpvm_status cpvm_program_parse_raw(const uint8_t *bytes, size_t len, cpvm_isa isa, unsigned flags,
                                   cpvm_program **out, struct cpvm_error *err);

void cpvm_program_free(cpvm_program *program);

cpvm_isa cpvm_program_isa(const cpvm_program *program);
bool cpvm_program_is_64_bit(const cpvm_program *program);

struct cpvm_bytes {
    const uint8_t *ptr;
    size_t len;
};

struct cpvm_program_info {
    cpvm_isa isa;
    uint32_t ro_data_size, rw_data_size, stack_size; /* declared sizes */
    struct cpvm_bytes ro_data, rw_data;              /* initial contents */
    struct cpvm_bytes code, bitmask;
    uint32_t jump_table_count;                       /* 0 when the entry size is 0 */
    uint8_t jump_table_entry_size;
    uint32_t export_count, import_count;
    size_t container_size;                           /* 0 for raw programs */
    struct cpvm_bytes code_section;                  /* section 6 payload = the raw program */
};
void cpvm_program_get_info(const cpvm_program *program, struct cpvm_program_info *info);

/* Jump table entry `index` (a code offset); false when out of range. */
bool cpvm_program_jump_table_entry(const cpvm_program *program, uint32_t index, uint32_t *pc);

struct cpvm_symbol {
    const uint8_t *name; /* not NUL-terminated, arbitrary bytes */
    size_t name_len;
    uint32_t pc;         /* exports only */
};
/* Exports are parsed lazily by the reference and a malformed entry silently ends
 * the list; cpvm_program_info.export_count counts the well-formed prefix. */
bool cpvm_program_export(const cpvm_program *program, uint32_t index, struct cpvm_symbol *out);
/* An import whose symbol range is invalid returns true with name_len 0 and name NULL. */
bool cpvm_program_import(const cpvm_program *program, uint32_t index, struct cpvm_symbol *out);
/* Looks an export up by NUL-terminated name. */
bool cpvm_program_find_export(const cpvm_program *program, const char *name, uint32_t *pc);

/* ------------------------------------------------------------------------ */
/* Memory map (execution.md §3.1)                                           */

struct cpvm_memory_map {
    uint32_t page_size;
    uint32_t ro_data_address, ro_data_size;
    uint32_t rw_data_address, rw_data_size;
    uint32_t heap_base, max_heap_size;
    uint32_t stack_address_low, stack_address_high, stack_size;
    uint32_t aux_data_address, aux_data_size;
};

/* Lays out a program's regions; fails with CPVM_E_BAD_MEMORY_MAP when they do not fit. */
cpvm_status cpvm_memory_map_build(uint32_t page_size, uint32_t ro_size, uint32_t rw_size,
                                  uint32_t stack_size, uint32_t aux_size,
                                  struct cpvm_memory_map *out, struct cpvm_error *err);

/* ------------------------------------------------------------------------ */
/* Gas cost models                                                          */

typedef enum cpvm_cost_model_kind {
    CPVM_COST_NAIVE = 0,      /* every instruction costs 1 */
    CPVM_COST_BLOCK_TABLE,    /* caller-supplied cost per basic block start pc */
    CPVM_COST_FULL,           /* the reference's pipeline model (gas.md §5), with `cache` */
    CPVM_COST_TABLE,          /* a cost per opcode, the reference's serialized form (gas.md §4) */
} cpvm_cost_model_kind;

/* The full model's memory latency: which cache every load is assumed to hit. */
typedef enum cpvm_cache_model {
    CPVM_CACHE_L2 = 0, /* what the PolkaVM 0.35 test vectors use */
    CPVM_CACHE_L1,
    CPVM_CACHE_L3,
} cpvm_cache_model;

/* Bytes of a serialized per-opcode table: version 2, one u32 per instruction in
 * the reference's field order, then `invalid` (all little-endian). */
#define CPVM_COST_TABLE_SIZE (143u * 4u)

struct cpvm_block_cost {
    uint32_t pc;
    uint32_t cost;
};

struct cpvm_cost_model {
    cpvm_cost_model_kind kind;
    /* CPVM_COST_BLOCK_TABLE: `count` entries, copied at module creation. A block
     * whose start pc is missing from the table costs `missing_cost`. */
    const struct cpvm_block_cost *blocks;
    size_t count;
    uint32_t missing_cost;
    cpvm_cache_model cache;  /* CPVM_COST_FULL */
    /* CPVM_COST_TABLE: the serialized table (CPVM_COST_TABLE_SIZE bytes; a
     * trailing 4 more are tolerated), copied at module creation. An unknown
     * opcode costs the `invalid` entry, on every backend. */
    const uint8_t *table;
    size_t table_len;
};

/* "naive", "full" (= full:l2), "full:l1|l2|l3": fills `out` (table fields untouched).
 * False for anything else (a caller may then treat the text as a table file). */
bool cpvm_cost_model_from_name(const char *name, struct cpvm_cost_model *out);

/* ------------------------------------------------------------------------ */
/* Modules                                                                  */

typedef struct cpvm_module cpvm_module;

typedef enum cpvm_backend {
    CPVM_BACKEND_INTERPRETER = 0,
    /* x86-64 native code; falls back to the interpreter on CPUs without
     * LZCNT/BMI1/POPCNT or where no sandbox can be had (see cpvm_module_backend). */
    CPVM_BACKEND_COMPILER,
} cpvm_backend;

/* Where compiled code runs (SECURITY.md). */
typedef enum cpvm_sandbox {
    /* The zygote sandbox for the compiler backend. */
    CPVM_SANDBOX_DEFAULT = 0,
    /* A worker process in fresh namespaces under a kill-by-default seccomp filter;
     * this process never executes guest code. */
    CPVM_SANDBOX_ZYGOTE,
    /* UNSANDBOXED: native code runs in this process (fuzzing speed). Only the
     * compiler's own confinement of guest addresses stands between a guest and
     * the host. */
    CPVM_SANDBOX_NONE,
} cpvm_sandbox;

typedef enum cpvm_memory_model {
    /* Regions from the program's memory map; bad accesses trap (execution.md §3.2). */
    CPVM_MEMORY_STANDARD = 0,
    /* Host-mapped pages; bad accesses raise resumable page faults (§3.3). */
    CPVM_MEMORY_DYNAMIC,
} cpvm_memory_model;

/* Which reading of an under-specified corner to follow. */
typedef enum cpvm_compat {
    /* PolkaVM 0.35: `fallthrough` as the last instruction traps at its own pc. */
    CPVM_COMPAT_POLKAVM_035 = 0,
    /* JAM PVM test vectors v0.4 / Graypaper: it falls into the implicit trap at
     * the end of the code, which is charged as one more block. */
    CPVM_COMPAT_GP_V04,
    /* GP_V04 plus the Graypaper's control flow (A.2): jumps go to its
     * basic-block set (no look-back window), a branch is checked only when
     * taken, the next pc is entered exactly as set, no bitmask-scanner quirks.
     * Interpreter only (a compiler module runs on it; cpvm_module_backend). */
    CPVM_COMPAT_GP,
} cpvm_compat;

struct cpvm_module_config {
    cpvm_backend backend;
    cpvm_memory_model memory_model;
    cpvm_compat compat;
    uint32_t page_size;          /* 0 = 4096; power of two in [4 KiB, 64 KiB] */
    uint32_t aux_data_size;      /* standard memory: read-only region at the top */
    bool gas_metering;           /* charged per basic block on entry */
    /* Asynchronous metering: blocks are charged without a check; gas is checked
     * only on backward jumps and branches taken, dynamic jumps, and when the guest
     * stops. Running out is final (never resumable, gas left negative): cheaper, and
     * a program overruns its gas by at most one pass over straight-line code. */
    bool gas_async;
    struct cpvm_cost_model cost_model;
    bool step_tracing;           /* allow cpvm_instance_set_step_limit() */
    cpvm_sandbox sandbox;        /* compiler backend only */
};

/* Zero-initialised config = interpreter, standard memory, 0.35 semantics, no gas. */
void cpvm_module_config_default(struct cpvm_module_config *config);

/* Prepares `program` for execution. The module keeps a reference to the
 * program, which must outlive it. JamV1 programs are validated as the
 * reference does (blob-format.md §5) and rejected with CPVM_E_VALIDATION. */
cpvm_status cpvm_module_new(const cpvm_program *program, const struct cpvm_module_config *config,
                            cpvm_module **out, struct cpvm_error *err);
void cpvm_module_free(cpvm_module *module);
const cpvm_program *cpvm_module_program(const cpvm_module *module);
/* The backend actually in use; when it differs from the one asked for, *why
 * (if non-NULL) says why (e.g. a missing CPU feature). */
cpvm_backend cpvm_module_backend(const cpvm_module *module, const char **why);
/* The gas the module charges on entering the basic block at `pc` (the reference's
 * calculate_gas_cost_for); false when no block starts there. */
bool cpvm_module_block_cost(const cpvm_module *module, uint32_t pc, uint32_t *cost);
/* Standard memory: the program's layout. Dynamic memory: the layout the program's
 * sizes would have (handy for mapping its data), with aux as configured. */
const struct cpvm_memory_map *cpvm_module_memory_map(const cpvm_module *module);
/* ZYGOTE when compiled code runs in sandbox workers, else NONE (interpreter included). */
cpvm_sandbox cpvm_module_sandbox(const cpvm_module *module);

/* ------------------------------------------------------------------------ */
/* The zygote sandbox's worker pool (process-wide)                         */

/* Whether sandbox workers can be created on this machine (user namespaces,
 * seccomp, memfd exec); *why (if non-NULL) says why not. */
bool cpvm_sandbox_available(const char **why);
/* At most `max_idle` idle workers are kept for reuse (default 4); 0 = none. */
void cpvm_sandbox_set_pool_size(unsigned max_idle);
/* Starts idle workers ahead of time (up to the pool size). */
cpvm_status cpvm_sandbox_prewarm(unsigned count, struct cpvm_error *err);

struct cpvm_sandbox_stats {
    uint32_t workers_idle, workers_busy, max_idle;
    uint64_t spawned, reused, destroyed;
    /* Memory held by workers: "shared" is committed memfd pages (guest memory,
     * context, control block, native code), "private" the worker processes' own
     * pages (zygote data, stacks, page-table-free figure from smaps_rollup). */
    uint64_t idle_shared_bytes, idle_private_bytes;
    uint64_t busy_shared_bytes, busy_private_bytes;
};
void cpvm_sandbox_stats(struct cpvm_sandbox_stats *out);

/* ------------------------------------------------------------------------ */
/* Instances                                                                */

typedef struct cpvm_instance cpvm_instance;

typedef enum cpvm_exit {
    CPVM_EXIT_HALT = 0,      /* dynamic jump to 0xFFFF0000 ("Finished") */
    CPVM_EXIT_PANIC,         /* trap, invalid instruction or jump, bad standard access */
    CPVM_EXIT_ECALLI,        /* host call; run() again resumes after it */
    CPVM_EXIT_PAGE_FAULT,    /* dynamic memory; run() again retries the access */
    CPVM_EXIT_OUT_OF_GAS,    /* block cost exceeded gas; gas untouched; resumable */
    CPVM_EXIT_STEP,          /* step limit reached; run() again continues */
} cpvm_exit;

/* "halt", "panic", "ecalli", "page-fault", "out-of-gas", "steps" */
const char *cpvm_exit_name(cpvm_exit exit);

struct cpvm_interrupt {
    cpvm_exit exit;
    uint32_t pc;                 /* where it happened (execution.md §4.1) */
    uint32_t hostcall;           /* ECALLI: the host call number */
    uint32_t fault_address;      /* PAGE_FAULT: the faulting page's address */
};

/* A fresh instance: registers 0, no pc, gas 0, memory initialised from the
 * program (standard) or empty (dynamic). */
cpvm_status cpvm_instance_new(const cpvm_module *module, cpvm_instance **out, struct cpvm_error *err);
void cpvm_instance_free(cpvm_instance *instance);

/* Registers. In Latest32 the value read is the low 32 bits and a write keeps
 * the low 32 bits (stored sign-extended, as the reference does). */
uint64_t cpvm_instance_reg(const cpvm_instance *instance, unsigned reg);
void cpvm_instance_set_reg(cpvm_instance *instance, unsigned reg, uint64_t value);

int64_t cpvm_instance_gas(const cpvm_instance *instance);
void cpvm_instance_set_gas(cpvm_instance *instance, int64_t gas);

/* Sets up a call the PolkaVM way: registers cleared, sp = stack top,
 * ra = 0xFFFF0000, next pc = `pc`. */
void cpvm_instance_prepare_call(cpvm_instance *instance, uint32_t pc);

/* The next run() starts at `pc`. Entering mid-block charges the whole block. */
void cpvm_instance_set_next_pc(cpvm_instance *instance, uint32_t pc);
/* False when there is no next pc (fresh, or after halt/panic). */
bool cpvm_instance_next_pc(const cpvm_instance *instance, uint32_t *pc);

/* Step tracing (module config step_tracing): stop with CPVM_EXIT_STEP before
 * executing instruction number `limit` + 1 of the coming run() calls. 0 = off. */
void cpvm_instance_set_step_limit(cpvm_instance *instance, uint64_t limit);

/* Runs until the guest stops. Host errors: CPVM_E_NO_PC without a next pc. */
cpvm_status cpvm_instance_run(cpvm_instance *instance, struct cpvm_interrupt *out);

/* Zygote sandbox only: every later run() returns within about `nanoseconds` of
 * wall-clock time (0 = no limit); past it the worker is killed and run() fails
 * with CPVM_E_DEADLINE. A worker that dies fails run() with CPVM_E_SANDBOX.
 * Either way the instance is unusable afterwards. CPVM_E_UNSUPPORTED elsewhere
 * (bound the interpreter and the in-process compiler with gas). */
cpvm_status cpvm_instance_set_deadline(cpvm_instance *instance, uint64_t nanoseconds);

/* Number of guest instructions executed so far (for benchmarks). */
uint64_t cpvm_instance_insn_count(const cpvm_instance *instance);

/* Host access to guest memory: any mapped byte can be read; any mapped byte can
 * be written, read-only pages included (the host is trusted). Fails with
 * CPVM_E_BAD_ADDRESS and changes nothing if any byte is unmapped. */
cpvm_status cpvm_instance_read_memory(const cpvm_instance *instance, uint32_t address, void *out, size_t len);
cpvm_status cpvm_instance_write_memory(cpvm_instance *instance, uint32_t address, const void *data, size_t len);

/* Dynamic memory only: map zero-filled pages covering [address, address+len)
 * (rounded out to the page size), readable, and writable if `writable`.
 * Addresses below 0x10000 are refused. Already mapped pages are zeroed again. */
cpvm_status cpvm_instance_map_pages(cpvm_instance *instance, uint32_t address, uint32_t len, bool writable);
cpvm_status cpvm_instance_unmap_pages(cpvm_instance *instance, uint32_t address, uint32_t len);
cpvm_status cpvm_instance_protect_pages(cpvm_instance *instance, uint32_t address, uint32_t len, bool writable);

/* For fuzzers and tests: whether everything around the guest window that the
 * guest must never touch is as the host left it (canary pages beside the window,
 * host-owned context fields). */
bool cpvm_instance_integrity_ok(const cpvm_instance *instance);

/* Standard memory: current heap size (sbrk). */
uint32_t cpvm_instance_heap_size(const cpvm_instance *instance);

/* Restores memory to the program's initial contents and the heap to empty. */
cpvm_status cpvm_instance_reset_memory(cpvm_instance *instance);

/* Returns the instance to the state cpvm_instance_new gave it (registers,
 * gas, no next pc, no step limit or deadline, memory, heap, canaries), in
 * time proportional to the pages it made accessible since, not to the 4 GiB
 * window: those pages are zeroed (or given back), the rest of the window, its
 * guards and a sandboxed instance's worker stay. Fails with the instance's
 * error if it is dead (a killed worker). Cheaper than free + new. */
cpvm_status cpvm_instance_reset(cpvm_instance *instance);

#ifdef __cplusplus
}
#endif
#endif
