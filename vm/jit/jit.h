/* The x86-64 recompiler: one pass from guest code to native code, and the
 * runtime that enters it, leaves it and turns hardware faults into guest results.
 *
 * Addressing: guest memory is always reached as [r15 + rcx], where r15 holds the
 * base of the instance's 4 GiB window and ecx a 32-bit guest address computed by a
 * 32-bit lea or mov, so no guest value can reach outside [base, base + 4 GiB + 8).
 * The context block sits at a fixed offset below the window ([r15 - 0x1000]).
 * Nothing in the code is absolute, so the same bytes run wherever the window is
 * mapped: in this process (the in-process mode) or in a sandboxed worker. */
#ifndef CPVM_JIT_H
#define CPVM_JIT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../decode/decode.h"
#include "../machine/machine.h"
#include "x64_asm.h"

struct jit_pcmap {
    uint32_t pc, native; /* every emitted instruction start, sorted by both */
};
struct jit_block {
    uint32_t pc, native, cost; /* every block head, sorted by both; cost: 0 when lazy or deferred */
};
_Static_assert(offsetof(struct jit_pcmap, pc) == 0 && offsetof(struct jit_block, pc) == 0, "jit_find_pc");

/* The index of the entry for `pc` in a table sorted by pc whose entries start
 * with their pc (jit_pcmap, jit_block), or SIZE_MAX. */
static inline size_t jit_find_pc(const void *table, size_t n, size_t entry_size, uint32_t pc)
{
    const unsigned char *t = table;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint32_t at;
        memcpy(&at, t + mid * entry_size, sizeof at);
        if (at < pc) lo = mid + 1;
        else hi = mid;
    }
    uint32_t at = pc + 1;
    if (lo < n) memcpy(&at, t + lo * entry_size, sizeof at);
    return at == pc ? lo : SIZE_MAX;
}

/* Lazy block costs (the full model with synchronous gas): module creation
 * costs no block. Each block's stub charges its entry of a table placed after
 * the code (own pages, writable in this process only); an entry not computed
 * yet holds JIT_COST_UNKNOWN, which drives any gas >= 0 negative, so the stub
 * takes its out-of-gas path, which restores the gas exactly and exits. The
 * host then computes the cost (jit_block_cost), stores it and resumes at the
 * block head, which charges again; only a cost above the gas is out of gas. */
#define JIT_COST_UNKNOWN (1ull << 63)

struct jit_code {
    uint8_t *code;         /* read + execute after compilation */
    size_t map_size, len;
    bool exec;             /* mapped executable (else read-only: code for sandbox workers) */
    uint32_t entry_off;    /* void entry(uint8_t *window, uintptr_t target) */
    uint32_t restore_off;  /* the exit path after registers are saved */
    uint32_t cold_off;     /* where the out-of-line stubs start (after the last block) */
    uint32_t table_off;    /* the jump table: int32 offsets from here to block heads */
    struct jit_pcmap *insns;   /* both arrays: pages_grow mappings of *_map bytes */
    size_t ninsns, insns_map;
    struct jit_block *blocks;
    size_t nblocks, blocks_map;
    /* lazy costs: jc->blocks[k]'s at costs[k] = code + costs_off (8-byte
     * entries, page-aligned), ncosts == nblocks; 0 / NULL when eager */
    uint32_t costs_off;
    size_t ncosts;
    uint64_t *costs;
    bool costs_deferred; /* no gas metering: no cost computed, the code charges none */
};

/* Compiles the module's program; O(code size), native size bounded per guest byte. */
cpvm_status jit_compile(const struct cpvm_module *m, struct jit_code **out, struct cpvm_error *err);
void jit_code_free(struct jit_code *jc);

/* code_mem.c: a read-only (exec: read + execute) mapping holding `len` bytes
 * of code, int3 after them, from a per-process pool; NULL when out of memory. */
uint8_t *jit_code_map(const uint8_t *bytes, size_t len, bool exec, size_t *map_size);
void jit_code_unmap(uint8_t *code, size_t map_size, bool exec);

/* Makes the cost table's pages [off, map_size) writable (not executable)
 * here, or protects them like the code again before the mapping is freed
 * (false: it could not, and unmapped the whole mapping). */
bool jit_code_open_data(uint8_t *code, size_t off, size_t map_size);
bool jit_code_close_data(uint8_t *code, size_t off, size_t map_size, bool exec);

/* Whether this CPU has what the generated code uses (LZCNT, BMI1, POPCNT). */
bool jit_cpu_supported(const char **missing);

/* Guest register -> host register (the first 13 entries). */
extern const enum x64_reg jit_host_reg[CPVM_REG_COUNT];

/* runtime.c */
/* Where compiled code runs: in this process, or elsewhere (the sandbox). */
struct jit_exec {
    /* Address the code is mapped at where it runs; 0 = jc->code (this process). */
    uintptr_t code_base;
    /* Runs native code from offset `target` until it exits; the outcome is in
     * the context block. An error ends the run (the instance is dead). */
    cpvm_status (*enter)(struct cpvm_instance *in, const struct jit_code *jc, uint32_t target);
    /* The context fails the host's checks: ends the instance, says why. */
    cpvm_status (*reject)(struct cpvm_instance *in);
    /* Lazy costs: block k's cost is now known (NULL: the code reads jc->costs
     * itself); whether the copy the code reads had it unknown until now. */
    bool (*cost_known)(struct cpvm_instance *in, const struct jit_code *jc, size_t k, uint64_t cost);
    size_t cost_batch; /* with cost_known: blocks from k on costed (and told) per exit */
};
cpvm_status jit_run(struct cpvm_instance *in, struct cpvm_interrupt *out, const struct jit_exec *x);
/* The in-process compiler as a backend (machine.h). */
extern const struct vm_backend jit_backend;
/* Native offset of a block head (and its cost, computed now if lazy) / an
 * instruction start, or UINT32_MAX. */
uint32_t jit_block_native(const struct cpvm_module *m, uint32_t pc, uint32_t *cost);
uint32_t jit_insn_native(const struct jit_code *jc, uint32_t pc);
/* lazy_cost.c: the index of the block starting at `pc` (SIZE_MAX if none), its cost. */
size_t jit_block_index(const struct jit_code *jc, uint32_t pc);
uint32_t jit_block_cost(const struct cpvm_module *m, size_t k);
/* How many of the lazily costed blocks have their cost (for measurements). */
size_t jit_blocks_costed(const struct jit_code *jc);

#endif
