/* What the host and the zygote agree on: the worker's fixed address-space
 * layout and the control block they share. Included by the freestanding zygote,
 * so only <stdint.h> and plain definitions here.
 *
 * Worker address space (everything else is unmapped by the zygote at start):
 *
 *   SBX_ZYGOTE_BASE   the zygote image: text r-x, rodata r--, data+bss rw- (its
 *                     stack and signal stack live in its bss)
 *   SBX_MEM_MAP       one MAP_SHARED view of this worker's memory memfd:
 *                       window - 0x10000 .. window - 0x8000   guard (---)
 *                       window - 0x8000                       control block (rw-)
 *                       window - 0x2000                       canary page (rw-)
 *                       window - 0x1000                       JIT context (rw-)
 *                       window .. window + 4 GiB              guest memory (per page)
 *                       window + 4 GiB .. + 64 KiB            guard, canary at +0x8000
 *   SBX_CODE          the native code memfd, PROT_EXEC only, MAP_SHARED of a memfd
 *                     sealed against writable mappings; the host writes it
 *                     through its own mapping while the worker is idle.
 *
 * The window is 4 GiB aligned, so the seccomp rule for mprotect can pin the
 * address to it with one masked compare; with the length capped at 4 GiB an
 * mprotect reaches at most window + 8 GiB, and nothing is mapped there. */
#ifndef CPVM_SANDBOX_LAYOUT_H
#define CPVM_SANDBOX_LAYOUT_H

#include <stdint.h>

#include "../machine/layout.h"

#define SBX_ZYGOTE_BASE 0x10000000ull
#define SBX_WINDOW 0x1000000000ull /* 64 GiB */
#define SBX_WINDOW_PRE ((uint64_t)MEM_PRE) /* the in-process reservation's layout */
#define SBX_MEM_MAP (SBX_WINDOW - SBX_WINDOW_PRE)
#define SBX_MEM_SIZE ((uint64_t)MEM_RESERVATION)
#define SBX_MPROTECT_REACH 0x200000000ull /* window .. window + 8 GiB: all an allowed mprotect can touch */
#define SBX_CODE (SBX_WINDOW + 0x400000000ull) /* window + 16 GiB */
#define SBX_CODE_CAP 0x10000000ull             /* 256 MiB of native code per module */

#define SBX_CTRL_OFFSET MEM_CTRL_BELOW /* below the window */
#define SBX_CTRL_SIZE 0x4000u

/* Worker file descriptors at exec time; the zygote closes both after mapping. */
#define SBX_FD_MEM 3
#define SBX_FD_CODE 4
#define SBX_FD_EXE 5 /* close-on-exec: gone once the zygote runs */

/* ctrl.state, the futex word. SBX_BUSY: a command waits for the worker (the
 * host sets it, the worker clears it to answer). SBX_WORKER_ASLEEP /
 * SBX_HOST_ASLEEP: that side sleeps in FUTEX_WAIT on the word (each side sets
 * and clears its own bit), so the other makes the FUTEX_WAKE call only then.
 * Both sides spin a while before sleeping, for as long as spinning recently
 * paid off (an answer that came while spinning doubles the budget, a sleep
 * halves it): when the two share a core, or a third process takes one, the
 * hand-off degrades to futex wake-ups instead of spinning out time slices.
 * Everything else in the block is written by one side while the other waits. */
enum { SBX_IDLE = 0, SBX_BUSY = 1, SBX_WORKER_ASLEEP = 2, SBX_HOST_ASLEEP = 4 };
#define SBX_SPIN_MIN 32u     /* pause iterations: a few microseconds at most */
#define SBX_SPIN_MAX 16384u

enum sbx_cmd {
    SBX_CMD_INIT = 1, /* lock down (namespaces are already set), install the filter */
    SBX_CMD_RUN,      /* apply `prot`, then call code + entry(window, target) */
    SBX_CMD_PROTECT,  /* apply `prot` only */
    SBX_CMD_SCRUB,    /* reuse: wipe the zygote's own stacks, then apply `prot` */
};

enum sbx_result {
    SBX_R_NONE = 0,
    SBX_R_OK,
    SBX_R_FAILED, /* a setup step failed: message says which */
};

#define SBX_MAX_PROT 400
#define SBX_MAX_FILTER 320

struct sbx_prot {
    uint64_t addr, len; /* absolute worker addresses inside the window */
    uint32_t prot, pad;
};

struct sbx_filter_insn {
    uint16_t code;
    uint8_t jt, jf;
    uint32_t k;
};

struct sbx_ctrl {
    uint32_t state;
    uint32_t cmd;
    uint32_t result;
    uint32_t nprot;
    uint64_t code_len;   /* RUN: valid bytes at SBX_CODE (the fault-handler's range) */
    uint64_t entry;      /* RUN: offset of the entry stub */
    uint64_t target;     /* RUN: absolute native address to start at */
    uint64_t restore;    /* RUN: offset where a faulting instruction continues */
    uint64_t code_gen;   /* RUN: changes whenever the host rewrote the code */
    /* RUN: sbrk (execution.md §7) in the worker, without a round trip per
     * call: with sbrk_on the worker grows heap_size, opens [rw_end, the new
     * page-rounded top) read-write itself and moves rw_end; the host checks
     * what comes back. Without it every sbrk exits to the host. */
    uint32_t sbrk_on, sbrk_is64;
    uint32_t heap_base, heap_size, heap_max, page_size;
    uint64_t rw_end;     /* end of rw data + heap pages (guest address) */
    uint8_t regmap[16];  /* INIT: guest register i lives in x86 register regmap[i] */
    uint32_t spin;       /* INIT: the worker's first spin budget (0, never, when it has one core) */
    uint32_t pad2;
    uint32_t filter_len; /* INIT: the seccomp program, built by the host */
    uint32_t pad;
    struct sbx_filter_insn filter[SBX_MAX_FILTER];
    char message[256]; /* FAILED: what went wrong, NUL-terminated */
    struct sbx_prot prot[SBX_MAX_PROT];
};

_Static_assert(sizeof(struct sbx_ctrl) <= SBX_CTRL_SIZE, "control block fits its pages");
_Static_assert(SBX_CTRL_OFFSET - SBX_CTRL_SIZE >= MEM_CANARY_BELOW, "control block below the canary");

#endif
