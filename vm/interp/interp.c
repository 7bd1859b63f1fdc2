/* The interpreter's run loop and the instructions too rare or too long to
 * live in ops.inc. */
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "../isa/semantics.h"
#include "interp.h"

/* Resolves a dynamic jump address (isa.md §10.5, the return-to-host case
 * excluded) to a block's op index. Returns 0, -1 for a trap, or a status > 0. */
static int interp_dynamic_target(struct cpvm_instance *in, uint32_t addr, uint32_t *idx)
{
    const struct cpvm_program *p = in->mod->prog;
    uint32_t len = program_jump_table_len(p);
    /* SECURITY: dynamic jumps reach only jump-table entries that are valid block starts. */
    if (addr == 0 || (addr & (VM_CODE_ALIGN - 1))) return -1;
    uint32_t i = addr / VM_CODE_ALIGN - 1;
    if (i >= len) return -1;
    if (!in->jt_op) {
        in->jt_op = calloc(len, sizeof *in->jt_op);
        if (!in->jt_op) return CPVM_E_NO_MEMORY;
    }
    uint32_t cached = in->jt_op[i];
    if (cached == UINT32_MAX) return -1;
    if (cached) {
        *idx = cached - 1;
        return 0;
    }
    uint32_t target;
    cpvm_program_jump_table_entry(p, i, &target);
    if (!interp_target_ok(in, target)) {
        in->jt_op[i] = UINT32_MAX;
        return -1;
    }
    cpvm_status s = interp_block(in, target, idx);
    if (s) return (int)s;
    in->jt_op[i] = *idx + 1;
    return 0;
}

/* memset in the loop: the work is shared with every backend (mem_memset);
 * here only where a stop resumes. Returns 0 when done, 1 when stopped. */
static int interp_memset(struct cpvm_instance *in, uint32_t op_index, struct cpvm_interrupt *out)
{
    if (!mem_memset(in, out)) return 0;
    out->pc = in->ops[op_index].pc;
    in->next = out->exit == CPVM_EXIT_PANIC ? NEXT_NONE : NEXT_OP; /* out of gas / page fault resume here */
    in->next_op = op_index;
    return 1;
}

#ifdef CPVM_INTERNAL_CHECKS
#include <stdio.h>
/* A broken internal invariant of the interpreter: a cpvm bug, never the guest's. */
static _Noreturn void interp_check_failed(const char *what, uint32_t pc)
{
    fprintf(stderr, "cpvm: interpreter internal check failed: %s at pc %u\n", what, pc);
    abort();
}
#endif

#define LOOP_NAME run_fast
#define LOOP_STEPPING 0
#define LOOP_FREE 0
#define LOOP_ASYNC 1
#include "loop.inc"
#undef LOOP_NAME
#undef LOOP_FREE
#undef LOOP_ASYNC

#define LOOP_NAME run_fast_free
#define LOOP_FREE 1
#define LOOP_ASYNC 0
#include "loop.inc"
#undef LOOP_NAME
#undef LOOP_FREE
#undef LOOP_STEPPING
#undef LOOP_ASYNC

#define LOOP_NAME run_stepping
#define LOOP_STEPPING 1
#define LOOP_FREE 0
#define LOOP_ASYNC 1
#include "loop.inc"
#undef LOOP_NAME
#undef LOOP_STEPPING
#undef LOOP_FREE
#undef LOOP_ASYNC

static bool is_head(uint8_t kind) { return kind == IOP_gas || kind == IOP_gas_async; }

/* Host-set entry (isa.md §10.7, execution.md §8.4). Returns 0 with *start set,
 * 1 when the run already ended with *out filled, or a status > 0. */
static int enter_at(struct cpvm_instance *in, uint32_t pc, uint32_t *start, struct cpvm_interrupt *out)
{
    const struct cpvm_program *p = in->mod->prog;
    uint32_t block_pc, head;
    if (in->mod->cfg.compat == CPVM_COMPAT_GP) /* the GP runs from exactly there */
        return (int)interp_block(in, pc, start);
    if (!dec_block_start(p, pc, &block_pc)) {
        out->exit = CPVM_EXIT_PANIC; /* the next pc stays: running again traps again */
        out->pc = pc;
        return 1;
    }
    cpvm_status s = interp_block(in, block_pc, &head);
    if (s) return (int)s;
    if (block_pc == pc) {
        *start = head;
        return 0;
    }
    uint32_t k = head + 1;
    while (k < in->nops && !is_head(in->ops[k].kind) && in->ops[k].pc != pc) k++;
    if (k >= in->nops || is_head(in->ops[k].kind)) {
        out->exit = CPVM_EXIT_PANIC; /* the block walk never reaches pc */
        out->pc = pc;
        return 1;
    }
    /* Entering mid-block pays for the whole block first. */
    if (in->mod->cfg.gas_metering) {
        int64_t cost = (int64_t)in->ops[head].imm;
        if (cost > in->gas) {
            out->exit = CPVM_EXIT_OUT_OF_GAS;
            out->pc = pc;
            return 1;
        }
        in->gas -= cost;
    }
    in->insn_count += in->ops[head].x;
    *start = k;
    return 0;
}

cpvm_status interp_run(struct cpvm_instance *in, struct cpvm_interrupt *out)
{
    memset(out, 0, sizeof *out);
    if (in->next == NEXT_NONE) return CPVM_E_NO_PC;
    if (in->mod->cfg.gas_metering && in->gas < 0) {
        out->exit = CPVM_EXIT_OUT_OF_GAS;
        out->pc = in->next == NEXT_OP ? in->ops[in->next_op].pc : in->next_pc;
        return CPVM_OK;
    }
    uint32_t start;
    if (in->next == NEXT_ENTRY) {
        int rc = enter_at(in, in->next_pc, &start, out);
        if (rc == 1) return CPVM_OK;
        if (rc) return (cpvm_status)rc;
    } else {
        start = in->next_op;
    }
    const struct cpvm_module_config *cfg = &in->mod->cfg;
    int rc = in->step_on                             ? run_stepping(in, start, out)
             : cfg->gas_metering || cfg->gas_async ? run_fast(in, start, out)
                                                   : run_fast_free(in, start, out);
    return (cpvm_status)rc;
}
