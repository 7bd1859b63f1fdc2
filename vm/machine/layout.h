/* The guest window and the context block, as the compiler's code, the
 * in-process runtime and the freestanding zygote all see them. Included by the
 * zygote, so only <stdint.h> and plain definitions here.
 *
 * One reservation per instance (in this process, or a worker's memfd view):
 *
 *   window - MEM_PRE (0x10000)   guard (---)
 *   window - 0x8000              sandbox control block (workers only, rw-)
 *   window - MEM_CANARY_BELOW    canary page (rw-)
 *   window - JIT_CTX_OFFSET      the context block below (rw-)
 *   window .. window + 4 GiB     guest memory, one permission per 4 KiB page
 *   window + 4 GiB .. + MEM_POST guard for accesses running past 2^32,
 *                                canary page at + MEM_CANARY_ABOVE
 *
 * Native code reaches the context as [r15 - JIT_CTX_OFFSET + offsetof(field)]
 * and guest memory as [r15 + rcx], so nothing in it is absolute. */
#ifndef CPVM_MACHINE_LAYOUT_H
#define CPVM_MACHINE_LAYOUT_H

#include <stdint.h>

#define MEM_PAGE_SHIFT 12u
#define MEM_PAGES (1u << (32 - MEM_PAGE_SHIFT))
#define MEM_WINDOW (1ull << 32)
#define MEM_PRE 0x10000u
#define MEM_POST 0x10000u
#define MEM_RESERVATION (MEM_PRE + MEM_WINDOW + MEM_POST)
#define MEM_CANARY_BELOW 0x2000u
#define MEM_CANARY_ABOVE 0x8000u
#define MEM_CTRL_BELOW 0x8000u /* the sandbox's control block (SBX_CTRL_SIZE bytes) */

#define JIT_CTX_OFFSET 0x1000u /* the context is at window - 0x1000 */
#define JIT_CANARY 0x6370766d63747821ull
#define JIT_REGS 13u /* CPVM_REG_COUNT */

/* Why native code gave control back (ctx.exit). */
enum jit_exit {
    JIT_EXIT_NONE = 0,
    JIT_EXIT_HALT,     /* dynamic jump to 0xffff0000; pc = the jump */
    JIT_EXIT_PANIC,    /* trap, invalid instruction or jump; pc = the instruction */
    JIT_EXIT_ECALLI,   /* arg = host call number; resume after it */
    JIT_EXIT_OOG,      /* block cost > gas (gas restored); pc = block start; resume = block head */
    JIT_EXIT_STEP,     /* step limit reached; resume = the check */
    JIT_EXIT_MEMSET,   /* the host performs memset, then resumes */
    JIT_EXIT_SBRK,     /* arg = A | B << 8; the host performs sbrk, then resumes */
    JIT_EXIT_FAULT,    /* a hardware fault in guest code (from a signal handler) */
    JIT_EXIT_BUG,      /* a fault that is not a guest memory access: a host error */
};

/* The context block native code reads and writes; its field offsets are part
 * of the generated code. The fault handlers (in-process and the zygote's)
 * fill regs, exit and the fault_* fields. */
struct jit_ctx {
    uint64_t regs[JIT_REGS];
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

_Static_assert(sizeof(struct jit_ctx) <= JIT_CTX_OFFSET, "the context fits its page");
_Static_assert(JIT_CTX_OFFSET < MEM_CANARY_BELOW && MEM_CANARY_BELOW < MEM_CTRL_BELOW && MEM_CTRL_BELOW < MEM_PRE,
               "context, canary and control block below the window, in that order");
_Static_assert(MEM_CANARY_ABOVE + 0x1000u <= MEM_POST, "the upper canary inside the upper guard");

#endif
