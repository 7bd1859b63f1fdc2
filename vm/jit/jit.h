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

#include "../interp/interp.h"
#include "x64_asm.h"

/* Why native code gave control back. */
enum jit_exit {
    JIT_EXIT_NONE = 0,
    JIT_EXIT_HALT,     /* dynamic jump to 0xffff0000; pc = the jump */
    JIT_EXIT_PANIC,    /* trap, invalid instruction or jump; pc = the instruction */
    JIT_EXIT_ECALLI,   /* arg = host call number; resume after it */
    JIT_EXIT_OOG,      /* block cost > gas (gas restored); pc = block start; resume = block head */
    JIT_EXIT_STEP,     /* step limit reached; resume = the check */
    JIT_EXIT_MEMSET,   /* the host performs memset, then resumes */
    JIT_EXIT_SBRK,     /* arg = A | B << 8; the host performs sbrk, then resumes */
    JIT_EXIT_FAULT,    /* a hardware fault in guest code (from the signal handler) */
    JIT_EXIT_BUG,      /* a fault that is not a guest memory access: a host error */
};

/* The context block the native code reads and writes. Field offsets are part
 * of the generated code (CTX_* in compile.c), checked by static asserts. */
struct jit_ctx {
    uint64_t regs[CPVM_REG_COUNT];
    int64_t gas;
    uint64_t steps;
    uint64_t host_rsp;   /* host-owned: the stack pointer to return to */
    uint64_t resume;     /* native address to continue at, or 0 */
    uint32_t exit;       /* enum jit_exit */
    uint32_t pc;
    uint32_t arg;
    uint32_t fault_signal;
    uint64_t fault_rip;  /* offset into the code of a faulting instruction */
    uint64_t fault_addr;
    uint64_t canary;     /* host-owned: checked after every run */
};

#define JIT_CTX_OFFSET 0x1000 /* the context is at window - 0x1000 */
#define JIT_WINDOW_PRE 0x10000
#define JIT_WINDOW_POST 0x10000
#define JIT_CANARY 0x6370766d63747821ull

struct jit_pcmap {
    uint32_t pc, native; /* every emitted instruction start, sorted by both */
};
struct jit_block {
    uint32_t pc, native, cost; /* every block head, sorted by both */
};

struct jit_code {
    uint8_t *code;         /* read + execute after compilation */
    size_t map_size, len;
    uint32_t entry_off;    /* void entry(uint8_t *window, uintptr_t target) */
    uint32_t restore_off;  /* the exit path after registers are saved */
    uint32_t cold_off;     /* where the out-of-line stubs start (after the last block) */
    uint32_t table_off;    /* the jump table: int32 offsets from here to block heads */
    struct jit_pcmap *insns;
    size_t ninsns;
    struct jit_block *blocks;
    size_t nblocks;
};

/* Compiles the module's program; O(code size), native size bounded per guest byte. */
cpvm_status jit_compile(const struct cpvm_module *m, struct jit_code **out, struct cpvm_error *err);
void jit_code_free(struct jit_code *jc);

/* Whether this CPU has what the generated code uses (LZCNT, BMI1, POPCNT). */
bool jit_cpu_supported(const char **missing);

/* Guest register -> host register (the first 13 entries). */
extern const enum x64_reg jit_host_reg[CPVM_REG_COUNT];

/* runtime.c */
cpvm_status jit_run(struct cpvm_instance *in, struct cpvm_interrupt *out);
/* Native offset of a block head / an instruction start, or UINT32_MAX. */
uint32_t jit_block_native(const struct jit_code *jc, uint32_t pc, uint32_t *cost);
uint32_t jit_insn_native(const struct jit_code *jc, uint32_t pc);

#endif
