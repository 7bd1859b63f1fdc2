/* The machine every backend runs: a module's facts (program, configuration,
 * memory map, gas model), an instance's guest state (registers, gas, where the
 * next run() starts, guest memory) and the guest-memory operations all
 * backends share (memory.c). The engine (vm/engine/) owns the public API on top;
 * the backends (interp, jit, sandbox) fill in what is theirs through the
 * forward-declared pointers. */
#ifndef CPVM_MACHINE_H
#define CPVM_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "../gas/gas.h"
#include "cpvm.h"
#include "layout.h"

_Static_assert(JIT_REGS == CPVM_REG_COUNT, "the context holds every guest register");

struct jit_code;
struct sbx_worker;
struct iop;
struct vm_backend;
struct mem_window;

struct cpvm_module {
    const struct cpvm_program *prog;
    const struct vm_backend *backend; /* what runs its instances (engine/module.c) */
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

enum perm { PERM_R = 1, PERM_W = 2 };

enum next_kind { NEXT_NONE, NEXT_OP, NEXT_ENTRY, NEXT_NATIVE };

/* A page range [lo, hi] (page numbers); lo > hi is empty. */
struct mem_span {
    uint32_t lo, hi;
};
#define MEM_SPANS 8u

struct cpvm_instance {
    const struct cpvm_module *mod;
    uint64_t regs[CPVM_REG_COUNT];
    int64_t gas;

    /* Guest memory: a 4 GiB window guarded by a permission byte per 4 KiB page
     * (checked in software by the interpreter) and, for compiled code, by the
     * same permissions in hardware: mprotect here (hw_perms) or in a worker
     * (shared_view). With hardware permissions in this process, `mem` is
     * the guarded view the compiled code runs on and `host` a read-write
     * view of the same memfd, so the host never changes a protection to
     * write read-only data (else host == mem). `hw` is what the hardware has now; the pages whose `perm`
     * changed since are in `perm_dirty`, applied in runs before native code
     * runs (mem_sync). `mapped` covers every page accessible since the window
     * was clean (what a window's next user must wipe, permissions included);
     * `written` the pages whose contents may have changed since the initial
     * memory was loaded (ever writable, or written by the host): what a reset
     * wipes. Read-only data the host never wrote survives a reset as it is. */
    uint8_t *mem;
    uint8_t *host;          /* the same memory, always read-write: the host's accesses */
    uint8_t *perm;
    uint8_t *hw;
    struct mem_window *win; /* the pooled reservation behind `mem` (in-process) */
    bool hw_perms;
    bool shared_view;       /* mem is the host's view of a worker's memfd */
    bool memfd;             /* backed by a memfd: discarding pages punches holes */
    int view_fd;            /* that memfd (shared_view), guest address 0 at view_off: the host reads with
                             * pread, which copies zeros out of holes instead of filling them with pages */
    uint64_t view_off;
    struct mem_span perm_dirty[MEM_SPANS];
    unsigned ndirty;
    bool sync_due;          /* perm_dirty holds more than sbrk's openings: sync before native code */
    struct mem_span mapped[MEM_SPANS], written[MEM_SPANS];
    unsigned nmapped, nwritten;
    /* In-process (hw_perms): pages the host wrote while the hardware denied
     * the guest all access to them (through /proc/self/mem) since they were
     * last zeroed. Any other page accessible in `perm` but not at all in `hw`
     * reads zero: it was zeroed when it became accessible and nothing could
     * write it since, so the host reads and wipes it without opening it. */
    struct mem_span forced[MEM_SPANS];
    unsigned nforced;
    uint32_t heap_size;
    uint32_t rw_size; /* current rw region size (grows with sbrk) */

    /* The interpreter's lazily compiled op stream (interp/). */
    struct iop *ops;
    uint32_t nops, cap;
    uint32_t *block_of; /* pc -> op index + 1 of the block starting there, 0 = none */
    uint32_t *jt_op;    /* jump table index -> block op index + 1, UINT32_MAX invalid */

    enum next_kind next;
    uint32_t next_op, next_pc, next_native;

    /* Zygote sandbox: the worker this instance runs in (its memory view is
     * `mem`), the deadline of a run, and the error that ended the instance. */
    struct sbx_worker *worker;
    uint64_t deadline_ns;
    cpvm_status dead;
    bool step_on;
    uint64_t steps_left;
    uint64_t insn_count;
};

/* What a backend does for an instance (engine/ picks one per module). */
struct vm_backend {
    const char *name;
    /* Sets up the instance's backend state and its memory (mem_init*). */
    cpvm_status (*prepare)(struct cpvm_instance *in, struct cpvm_error *err);
    cpvm_status (*run)(struct cpvm_instance *in, struct cpvm_interrupt *out);
    /* After the engine reset registers and memory: anything of the backend's. */
    cpvm_status (*reset)(struct cpvm_instance *in);
    void (*free)(struct cpvm_instance *in);
};

/* The mmap protection a permission byte stands for. */
static inline int mem_prot(uint8_t perm)
{
    return perm & PERM_W ? 3 /* PROT_READ | PROT_WRITE */ : perm & PERM_R ? 1 /* PROT_READ */ : 0;
}

/* memory.c */
/* A window of this process (from the per-process pool), or the host's view
 * `window` of a worker's memory; then the program's initial memory. */
cpvm_status mem_init(struct cpvm_instance *in, struct cpvm_error *err);
cpvm_status mem_init_view(struct cpvm_instance *in, uint8_t *window, int fd, uint64_t off, uint8_t *perm, uint8_t *hw);
void mem_free(struct cpvm_instance *in);
/* Whether the canary pages beside the window still hold their pattern. */
bool mem_canaries_intact(const struct cpvm_instance *in);
/* Back to the module's initial memory: only the written pages are wiped. */
cpvm_status mem_reset(struct cpvm_instance *in);
void mem_set_perm(struct cpvm_instance *in, uint32_t addr, uint64_t len, uint8_t perm);
/* In-process hardware permissions: applies the pending changes (as runs). */
void mem_sync(struct cpvm_instance *in);
/* The pending changes as runs of pages that get protection `prot` (mmap's),
 * each passed to `apply` (which stops the walk with an error); `hw` follows. */
cpvm_status mem_sync_runs(struct cpvm_instance *in, cpvm_status (*apply)(void *arg, uint32_t page, uint32_t n, int prot),
                          void *arg);

/* A descriptor of /proc/self/mem (writes go through page protections, as a
 * debugger's do), opened on first use and again after a fork; negative where
 * refused. */
int mem_self_fd(void);

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

#endif
