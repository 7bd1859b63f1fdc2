/* The interpreter: modules, instances, guest memory and the pre-decoded op
 * stream its dispatch loop runs. */
#ifndef CPVM_INTERP_H
#define CPVM_INTERP_H

#include <stdbool.h>
#include <stdint.h>

#include "../decode/decode.h"
#include "../gas/gas.h"

struct jit_code;
struct sbx_worker;

struct cpvm_module {
    const struct cpvm_program *prog;
    struct jit_code *jit;      /* compiled code (compiler backend), else NULL */
    const char *backend_note;  /* why the compiler is not used, if it was asked for */
    struct cpvm_module_config cfg;
    struct cpvm_memory_map map;
    struct gas_model gas;
    uint32_t page_size;
    bool is64;
    bool sandboxed;            /* compiled code runs in zygote workers */
    uint64_t owner_id;         /* names this module's code inside workers */
};

/* Op kinds: one per instruction (same order as enum op) plus pseudo ops. */
enum iop_kind {
#define ISA(name, cls, jam, l64, l32, rv, tmpl, flags) IOP_##name,
#include "../isa/isa.def"
#undef ISA
    IOP_invalid,           /* trap at this pc: unknown opcode, implicit trap */
    IOP_gas,               /* block head: charge imm, count x instructions */
    IOP_gas_async,         /* the same without the check (gas_async) */
    IOP_trap_at,           /* jump/branch whose target is invalid: trap at pc */
    IOP_load_imm_trap,     /* load_imm_and_jump to an invalid target */
    IOP_mul_upper_ss_32,   /* Latest32 variants (isa.md §8) */
    IOP_mul_upper_uu_32,
    IOP_mul_upper_su_32,
    IOP_reverse_byte_32,
    IOP_COUNT
};
_Static_assert((int)IOP_invalid == (int)OP_invalid, "op kinds mirror enum op");

#define IOP_UNRESOLVED UINT32_MAX

/* One pre-decoded instruction. Targets are op indices resolved on first use
 * (blocks are compiled lazily), so `t`/`f` start as IOP_UNRESOLVED and the
 * guest pcs stay in `tpc`/`fpc`. */
struct iop {
    uint8_t kind;
    uint8_t a, b, d;       /* jumps use d as "check gas first" (async metering) */
    uint32_t pc;
    uint64_t imm;      /* X(i) / X(i1) / imm64 / gas cost / store address */
    uint32_t t, f;     /* target / fall-through op index */
    uint32_t tpc;      /* target pc */
    uint32_t x;        /* second immediate (i2) / fall-through pc / block insn count */
};
_Static_assert(sizeof(struct iop) == 32, "ops stay two per cache line");

enum perm { PERM_R = 1, PERM_W = 2 };
#define MEM_PAGE_SHIFT 12u
#define MEM_PAGES (1u << (32 - MEM_PAGE_SHIFT))
#define MEM_PRE 0x10000u  /* below the window: guard, a canary page at -0x2000, the context at -0x1000 */
#define MEM_POST 0x10000u /* above it: a guard for accesses running past 2^32, a canary page at +0x8000 */
#define MEM_CANARY_BELOW 0x2000u
#define MEM_CANARY_ABOVE 0x8000u

enum next_kind { NEXT_NONE, NEXT_OP, NEXT_ENTRY, NEXT_NATIVE };

struct cpvm_instance {
    const struct cpvm_module *mod;
    uint64_t regs[CPVM_REG_COUNT];
    int64_t gas;

    /* Guest memory: a private 4 GiB window, guarded by a permission byte per
     * 4 KiB page (checked in software by the interpreter) and, for compiled
     * code (hw_perms), by the same permissions applied with mprotect. The
     * reservation is [MEM_PRE: guard + context page][window][MEM_POST: guard]. */
    uint8_t *mem;
    uint8_t *perm;
    bool hw_perms;
    uint32_t heap_size;
    uint32_t rw_size; /* current rw region size (grows with sbrk) */

    /* Lazily compiled op stream. */
    struct iop *ops;
    uint32_t nops, cap;
    uint32_t *block_of; /* pc -> op index + 1 of the block starting there, 0 = none */
    uint32_t *jt_op;    /* jump table index -> block op index + 1, UINT32_MAX invalid */

    enum next_kind next;
    uint32_t next_op, next_pc, next_native;

    /* Zygote sandbox: the worker this instance runs in (its memory view is
     * `mem`), the pages whose permissions changed since the worker last saw
     * them, the deadline of a run, and the error that ended the instance. */
    struct sbx_worker *worker;
    uint32_t dirty_lo, dirty_hi; /* page numbers; lo > hi = nothing to sync */
    uint64_t deadline_ns;
    cpvm_status dead;
    bool step_on;
    uint64_t steps_left;
    uint64_t insn_count;
};

/* The mmap protection a permission byte stands for. */
static inline int mem_prot(uint8_t perm)
{
    return perm & PERM_W ? 3 /* PROT_READ | PROT_WRITE */ : perm & PERM_R ? 1 /* PROT_READ */ : 0;
}

/* memory.c */
cpvm_status mem_init(struct cpvm_instance *in, struct cpvm_error *err);
void mem_free(struct cpvm_instance *in);
/* Whether the canary pages beside the window still hold their pattern. */
bool mem_canaries_intact(const struct cpvm_instance *in);
cpvm_status mem_reset(struct cpvm_instance *in);
void mem_set_perm(struct cpvm_instance *in, uint32_t addr, uint64_t len, uint8_t perm);

/* sbrk (execution.md §7): grows the heap, returns the new top as the register value. */
uint64_t mem_sbrk(struct cpvm_instance *in, uint64_t request);
/* memset (isa.md §7) on a0/a1/a2, gas and memory. Returns 0 when done, or 1 when it
 * stopped (out->exit: out of gas, page fault with address, or panic; pc not set). */
int mem_memset(struct cpvm_instance *in, struct cpvm_interrupt *out);

/* The outcome of a failed guest access at `addr` of `width` (execution.md §3.2-3.3):
 * fills exit PANIC or PAGE_FAULT (with the page address). */
void mem_fault(const struct cpvm_instance *in, uint32_t addr, unsigned width, bool write, struct cpvm_interrupt *out);

/* SECURITY: every guest load and store passes here before touching the window.
 * Whether [addr, addr + width) is accessible for `need` (PERM_R or PERM_W). */
static inline bool mem_ok(const struct cpvm_instance *in, uint32_t addr, unsigned width, uint8_t need)
{
    uint64_t end = (uint64_t)addr + width;
    if (end > 0xffffffffu) return false; /* execution.md §3.3 step 1 */
    return (in->perm[addr >> MEM_PAGE_SHIFT] & in->perm[(uint32_t)(end - 1) >> MEM_PAGE_SHIFT] & need) != 0;
}

/* predecode.c */
/* Op index of the block starting at `pc` (compiling it if needed). */
cpvm_status interp_block(struct cpvm_instance *in, uint32_t pc, uint32_t *idx);

/* interp.c */
cpvm_status interp_run(struct cpvm_instance *in, struct cpvm_interrupt *out);

#endif
