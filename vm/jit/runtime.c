/* Running compiled code in this process: entering and leaving it, doing the
 * instructions native code hands back (memset, sbrk), and turning hardware
 * faults inside the guest window into guest results (recompiler.md §6-§7). */
#define _GNU_SOURCE /* REG_* in ucontext */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include "../common/bits.h"
#include "../common/error.h"
#include "jit.h"

typedef void (*jit_entry_fn)(uint8_t *window, uintptr_t target);

/* Generated code carries no UBSan function-type signature in front of it. */
#if defined(__clang__)
__attribute__((no_sanitize("function")))
#endif
static void enter(jit_entry_fn entry, uint8_t *window, uintptr_t target)
{
    entry(window, target);
}

struct jit_active {
    const struct jit_code *jc;
    struct jit_ctx *ctx;
};

static __thread struct jit_active *volatile active;
static struct sigaction previous[32];

static const int greg_of_host[16] = {
    REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
    REG_R8,  REG_R9,  REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

static void chain(int sig, siginfo_t *si, void *uc)
{
    const struct sigaction *p = &previous[sig];
    if (p->sa_flags & SA_SIGINFO) {
        if (p->sa_sigaction) p->sa_sigaction(sig, si, uc);
        return;
    }
    if (p->sa_handler == SIG_IGN) return;
    if (p->sa_handler == SIG_DFL) {
        /* Returning re-executes the faulting instruction, now with the default action. */
        signal(sig, SIG_DFL);
        return;
    }
    p->sa_handler(sig);
}

/* A fault in generated code: save the guest state, leave through the restore path. */
static void on_signal(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    struct jit_active *a = active;
    uintptr_t rip = (uintptr_t)g[REG_RIP];
    if (!a || rip < (uintptr_t)a->jc->code || rip >= (uintptr_t)a->jc->code + a->jc->len) {
        chain(sig, si, ucv);
        return;
    }
    struct jit_ctx *ctx = a->ctx;
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++) ctx->regs[i] = (uint64_t)g[greg_of_host[jit_host_reg[i]]];
    ctx->exit = JIT_EXIT_FAULT;
    ctx->fault_signal = (uint32_t)sig;
    ctx->fault_rip = rip - (uintptr_t)a->jc->code;
    ctx->fault_addr = (uintptr_t)si->si_addr;
    g[REG_RIP] = (greg_t)(uintptr_t)(a->jc->code + a->jc->restore_off);
}

static const int handled_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};

/* Our handler must be first in line whenever native code runs; a host that
 * installed its own since (test frameworks do, per test) is chained behind
 * it. Checked when an instance is created (one query), not per run: a run
 * makes no system call unless the guest faults or changes permissions. */
static pthread_mutex_t handlers_lock = PTHREAD_MUTEX_INITIALIZER;

static void install_handlers(void)
{
    pthread_mutex_lock(&handlers_lock);
    for (size_t i = 0; i < sizeof handled_signals / sizeof *handled_signals; i++) {
        int sig = handled_signals[i];
        struct sigaction sa, cur;
        if (sigaction(sig, NULL, &cur) == 0 && (cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_signal) {
            if (i == 0) break; /* installed together: SIGSEGV stands for all */
            continue;
        }
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_signal;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(sig, &sa, &previous[sig]);
    }
    pthread_mutex_unlock(&handlers_lock);
}

uint32_t jit_block_native(const struct cpvm_module *m, uint32_t pc, uint32_t *cost)
{
    size_t k = jit_block_index(m->jit, pc);
    if (k == SIZE_MAX) return UINT32_MAX;
    *cost = jit_block_cost(m, k);
    return m->jit->blocks[k].native;
}

uint32_t jit_insn_native(const struct jit_code *jc, uint32_t pc)
{
    size_t k = jit_find_pc(jc->insns, jc->ninsns, sizeof *jc->insns, pc);
    return k == SIZE_MAX ? UINT32_MAX : jc->insns[k].native;
}

/* The guest instruction whose native code contains `off`. */
static bool pc_of_native(const struct jit_code *jc, uint64_t off, uint32_t *pc)
{
    size_t lo = 0, hi = jc->ninsns;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (jc->insns[mid].native <= off) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0) return false;
    *pc = jc->insns[lo - 1].pc;
    return true;
}

/* A hardware fault at guest instruction `pc`: recompute its access from the saved
 * registers and classify it exactly as the interpreter does (mem_fault), so both
 * backends report the same page and the same trap/fault choice. */
static bool classify_fault(struct cpvm_instance *in, uint32_t pc, struct cpvm_interrupt *out)
{
    struct dec_insn d;
    if (pc >= in->mod->prog->code_len) return false;
    dec_decode(in->mod->prog, pc, &d);
    unsigned flags = isa_flags((enum op)d.op), width = isa_access_width((enum op)d.op);
    if (d.op == OP_invalid || !(flags & (LOAD | STORE)) || !width) return false;
    uint64_t x = sext32((uint32_t)d.i1), base = 0;
    switch ((enum isa_class)isa_rows[d.op].cls) {
    case CLS_R_I: case CLS_I_I: base = 0; break;
    case CLS_RR_I: base = in->regs[d.b]; break;
    case CLS_R_I_I: base = in->regs[d.a]; break;
    default: return false;
    }
    uint32_t addr = lo32(base + x);
    bool write = (flags & STORE) != 0;
    if (mem_ok(in, addr, width, write ? PERM_W : PERM_R)) return false; /* hardware and table disagree */
    mem_fault(in, addr, width, write, out);
    out->pc = pc;
    return true;
}

static void stop(struct cpvm_instance *in, struct cpvm_interrupt *out, cpvm_exit exit, uint32_t pc,
                 bool resumable, uint32_t resume_native)
{
    out->exit = exit;
    out->pc = pc;
    in->next = resumable ? NEXT_NATIVE : NEXT_NONE;
    in->next_native = resume_native;
    in->next_pc = pc;
}

/* An out-of-gas exit at the block starting at `pc` (lazy costs): its cost is
 * known now (computed if it was not, and told to where `x` runs the code).
 * LAZY_RUN: the gas pays for it, the block runs after all. A pc that is no
 * block is out of gas as it says; LAZY_LIE: a worker whose copy of the cost
 * was known and paid for took the out-of-gas path anyway. */
enum lazy_exit { LAZY_OOG, LAZY_RUN, LAZY_LIE };
static enum lazy_exit lazy_cost_known(struct cpvm_instance *in, const struct jit_exec *x, uint32_t pc)
{
    const struct jit_code *jc = in->mod->jit;
    size_t k = jit_block_index(jc, pc);
    if (k == SIZE_MAX) return LAZY_OOG;
    uint32_t cost = jit_block_cost(in->mod, k);
    bool pays = (int64_t)cost <= in->gas;
    if (x->cost_known) {
        if (!x->cost_known(in, jc, k, cost) && pays) return LAZY_LIE;
        /* the blocks after it, mostly of the same function: each costs far
         * less to compute than an exit of its own (DOOM, in the zygote: 5845
         * exits one by one, about 1/4 of that 16 at a time) */
        for (size_t i = k + 1; i < jc->nblocks && i - k < x->cost_batch; i++)
            x->cost_known(in, jc, i, jit_block_cost(in->mod, i));
    }
    return pays ? LAZY_RUN : LAZY_OOG;
}

cpvm_status jit_run(struct cpvm_instance *in, struct cpvm_interrupt *out, const struct jit_exec *x)
{
    const struct cpvm_module *m = in->mod;
    const struct jit_code *jc = m->jit;
    const struct cpvm_program *p = m->prog;
    memset(out, 0, sizeof *out);
    if (in->next == NEXT_NONE) return CPVM_E_NO_PC;
    if (m->cfg.gas_metering && in->gas < 0) {
        out->exit = CPVM_EXIT_OUT_OF_GAS;
        out->pc = in->next_pc;
        return CPVM_OK;
    }
    uint32_t target;
    if (in->next == NEXT_ENTRY) {
        uint32_t pc = in->next_pc, start, cost = 0;
        uint32_t head = dec_block_start(p, pc, &start) ? jit_block_native(m, start, &cost) : UINT32_MAX;
        uint32_t at = head == UINT32_MAX || start == pc ? head : jit_insn_native(jc, pc);
        if (at == UINT32_MAX) { /* not inside any block: trap, the next pc stays */
            out->exit = CPVM_EXIT_PANIC;
            out->pc = pc;
            return CPVM_OK;
        }
        if (start != pc) { /* mid-block entry pays for the whole block (gas.md §2) */
            if (m->cfg.gas_metering) {
                if ((int64_t)cost > in->gas) {
                    out->exit = CPVM_EXIT_OUT_OF_GAS;
                    out->pc = pc;
                    return CPVM_OK;
                }
                in->gas -= cost;
            }
        }
        target = at;
    } else {
        target = in->next_native;
    }

    struct jit_ctx *ctx = (struct jit_ctx *)(in->mem - JIT_CTX_OFFSET);
    uintptr_t base = x->code_base ? x->code_base : (uintptr_t)jc->code;
    for (;;) {
        memcpy(ctx->regs, in->regs, sizeof ctx->regs);
        ctx->gas = in->gas;
        ctx->steps = in->step_on ? in->steps_left : UINT64_MAX;
        ctx->exit = JIT_EXIT_NONE;
        cpvm_status s = x->enter(in, jc, target);
        if (s) return s;
        /* SECURITY: the context is the worker's word (or, in-process, the word
         * of code that may have been subverted): everything the host acts on is
         * checked, and a sandboxed instance that lies is ended with its worker. */
        int64_t gas = ctx->gas;
        uint64_t steps_after = ctx->steps;
        uint32_t why = ctx->exit, pc = ctx->pc, arg = ctx->arg;
        uint64_t resume = ctx->resume - base; /* meaningful for resumable exits only */
        bool resumable = why == JIT_EXIT_ECALLI || (why == JIT_EXIT_OOG && !m->cfg.gas_async) || why == JIT_EXIT_STEP ||
                         why == JIT_EXIT_MEMSET || why == JIT_EXIT_SBRK;
        bool sane = ctx->canary == JIT_CANARY && why <= JIT_EXIT_BUG && gas <= in->gas &&
                    pc <= p->code_len && (!resumable || resume < jc->len) &&
                    (why != JIT_EXIT_SBRK || ((arg & 0xff) < CPVM_REG_COUNT && (arg >> 8 & 0xff) < CPVM_REG_COUNT)) &&
                    (why != JIT_EXIT_ECALLI || pc < p->code_len);
        if (!sane) return x->reject(in);
        memcpy(in->regs, ctx->regs, sizeof ctx->regs);
        in->gas = gas;
        if (in->step_on) in->steps_left = steps_after;
        switch ((enum jit_exit)why) {
        case JIT_EXIT_HALT: stop(in, out, CPVM_EXIT_HALT, pc, false, 0); return CPVM_OK;
        case JIT_EXIT_PANIC: stop(in, out, CPVM_EXIT_PANIC, pc, false, 0); return CPVM_OK;
        case JIT_EXIT_ECALLI: {
            /* execution.md §4.1: the next pc is the instruction after the ecalli
             * (next(pc) = pc + len, the implicit trap when nothing follows). */
            struct dec_insn d;
            dec_decode(p, pc, &d);
            out->hostcall = arg;
            stop(in, out, CPVM_EXIT_ECALLI, pc, true, (uint32_t)resume);
            in->next_pc = pc + d.len;
            return CPVM_OK;
        }
        case JIT_EXIT_OOG:
            if (jc->costs && !m->cfg.gas_async) {
                enum lazy_exit e = lazy_cost_known(in, x, pc);
                if (e == LAZY_LIE) return x->reject(in);
                if (e == LAZY_RUN) {
                    target = (uint32_t)resume; /* the head charges again, now the block's cost */
                    continue;
                }
            }
            stop(in, out, CPVM_EXIT_OUT_OF_GAS, pc, true, (uint32_t)resume);
            return CPVM_OK;
        case JIT_EXIT_STEP: stop(in, out, CPVM_EXIT_STEP, pc, true, (uint32_t)resume); return CPVM_OK;
        case JIT_EXIT_SBRK:
            in->regs[arg & 0xff] = mem_sbrk(in, in->regs[(arg >> 8) & 0xff]);
            target = (uint32_t)resume;
            continue;
        case JIT_EXIT_MEMSET:
            if (mem_memset(in, out)) { /* out of gas and page faults retry the memset */
                cpvm_exit e = out->exit;
                stop(in, out, e, pc, e != CPVM_EXIT_PANIC, jit_insn_native(jc, pc));
                return CPVM_OK;
            }
            target = (uint32_t)resume;
            continue;
        case JIT_EXIT_FAULT: {
            uint32_t fpc;
            bool access = (ctx->fault_signal == SIGSEGV || ctx->fault_signal == SIGBUS) &&
                          pc_of_native(jc, ctx->fault_rip, &fpc);
            if (access && in->hw_perms && in->ndirty) {
                /* Pages sbrk opened that the hardware does not allow yet
                 * (mem_sbrk leaves them pending): apply, retry the access.
                 * Stepping: the instruction's native code starts with its
                 * step count, which the retry passes again; give it back. */
                mem_sync(in);
                if (in->step_on) in->steps_left++;
                target = jit_insn_native(jc, fpc);
                continue;
            }
            if (access && classify_fault(in, fpc, out)) {
                cpvm_exit e = out->exit;
                uint32_t fa = out->fault_address;
                stop(in, out, e, fpc, e == CPVM_EXIT_PAGE_FAULT, jit_insn_native(jc, fpc));
                out->fault_address = fa;
                return CPVM_OK;
            }
            in->next = NEXT_NONE; /* a fault that is not a guest access: a host error */
            return CPVM_E_UNSUPPORTED;
        }
        case JIT_EXIT_NONE:
        case JIT_EXIT_BUG:
            in->next = NEXT_NONE;
            return CPVM_E_UNSUPPORTED;
        }
    }
}

/* --- in this process ------------------------------------------------------------ */

/* SECURITY: the host's permission changes are applied here, in runs, before
 * native code runs (the host itself goes by the table, so the hardware may
 * lag behind it in between); during a run only sbrk changes the table, and
 * it only opens pages. So what the hardware lets the guest do is never more
 * than the table allows. */
static cpvm_status enter_here(struct cpvm_instance *in, const struct jit_code *jc, uint32_t target)
{
    if (in->sync_due) mem_sync(in);
    struct jit_active act = {.jc = jc, .ctx = (struct jit_ctx *)(in->mem - JIT_CTX_OFFSET)};
    jit_entry_fn entry = (jit_entry_fn)(void *)(jc->code + jc->entry_off);
    active = &act;
    enter(entry, in->mem, (uintptr_t)jc->code + target);
    active = NULL;
    return CPVM_OK;
}

static cpvm_status reject_here(struct cpvm_instance *in)
{
    in->next = NEXT_NONE;
    return CPVM_E_UNSUPPORTED;
}

static const struct jit_exec here = {.code_base = 0, .enter = enter_here, .reject = reject_here, .cost_known = NULL};

static cpvm_status run_here(struct cpvm_instance *in, struct cpvm_interrupt *out) { return jit_run(in, out, &here); }

static cpvm_status prepare_here(struct cpvm_instance *in, struct cpvm_error *err)
{
    in->hw_perms = true;
    install_handlers();
    return mem_init(in, err);
}

static cpvm_status reset_here(struct cpvm_instance *in)
{
    (void)in;
    return CPVM_OK;
}

const struct vm_backend jit_backend = {
    .name = "compiler", .prepare = prepare_here, .run = run_here, .reset = reset_here, .free = mem_free};
