/* Instances: creation on the module's backend, the guest state the host reads
 * and sets, run dispatch, and reset to the module's initial state. */
#include <stdlib.h>
#include <string.h>

#include "../common/bits.h"
#include "../common/error.h"
#include "../common/limits.h"
#include "../interp/interp.h"

/* The context block: zero but for the host-owned canary (checked after every
 * native run and by cpvm_instance_integrity_ok). */
static void ctx_init(struct cpvm_instance *in)
{
    struct jit_ctx *ctx = (struct jit_ctx *)(in->mem - JIT_CTX_OFFSET);
    memset(ctx, 0, sizeof *ctx);
    ctx->canary = JIT_CANARY;
}

cpvm_status cpvm_instance_new(const cpvm_module *m, cpvm_instance **out, struct cpvm_error *err)
{
    *out = NULL;
    struct cpvm_instance *in = calloc(1, sizeof *in);
    if (!in) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
    in->mod = m;
    cpvm_status s = m->backend->prepare(in, err);
    if (s) {
        cpvm_instance_free(in);
        return s;
    }
    ctx_init(in);
    *out = in;
    return CPVM_OK;
}

void cpvm_instance_free(cpvm_instance *in)
{
    if (!in) return;
    in->mod->backend->free(in);
    free(in);
}

cpvm_status cpvm_instance_reset(cpvm_instance *in)
{
    if (in->dead) return in->dead; /* its worker is gone */
    cpvm_status s = mem_reset(in);
    if (!s) s = in->mod->backend->reset(in);
    if (s) return s;
    memset(in->regs, 0, sizeof in->regs);
    in->gas = 0;
    in->next = NEXT_NONE;
    in->next_op = in->next_pc = in->next_native = 0;
    in->deadline_ns = 0;
    in->step_on = false;
    in->steps_left = 0;
    in->insn_count = 0;
    ctx_init(in);
    return mem_canaries_intact(in) ? CPVM_OK : CPVM_E_UNSUPPORTED;
}

uint64_t cpvm_instance_reg(const cpvm_instance *in, unsigned reg)
{
    if (reg >= CPVM_REG_COUNT) return 0;
    return in->mod->is64 ? in->regs[reg] : (uint32_t)in->regs[reg];
}

void cpvm_instance_set_reg(cpvm_instance *in, unsigned reg, uint64_t value)
{
    if (reg >= CPVM_REG_COUNT) return;
    in->regs[reg] = in->mod->is64 ? value : sext32(value);
}

int64_t cpvm_instance_gas(const cpvm_instance *in) { return in->gas; }
void cpvm_instance_set_gas(cpvm_instance *in, int64_t gas) { in->gas = gas; }

void cpvm_instance_prepare_call(cpvm_instance *in, uint32_t pc)
{
    memset(in->regs, 0, sizeof in->regs);
    cpvm_instance_set_reg(in, CPVM_REG_SP, in->mod->map.stack_address_high);
    cpvm_instance_set_reg(in, CPVM_REG_RA, VM_ADDR_RETURN_TO_HOST);
    cpvm_instance_set_next_pc(in, pc);
}

void cpvm_instance_set_next_pc(cpvm_instance *in, uint32_t pc)
{
    in->next = NEXT_ENTRY;
    in->next_pc = pc;
}

bool cpvm_instance_next_pc(const cpvm_instance *in, uint32_t *pc)
{
    switch (in->next) {
    case NEXT_NONE: return false;
    case NEXT_ENTRY: *pc = in->next_pc; return true;
    case NEXT_OP: *pc = in->ops[in->next_op].pc; return true;
    case NEXT_NATIVE: *pc = in->next_pc; return true;
    }
    return false;
}

void cpvm_instance_set_step_limit(cpvm_instance *in, uint64_t limit)
{
    in->step_on = in->mod->cfg.step_tracing && limit != 0;
    in->steps_left = limit;
}

cpvm_status cpvm_instance_set_deadline(cpvm_instance *in, uint64_t nanoseconds)
{
    if (!in->worker) return CPVM_E_UNSUPPORTED;
    in->deadline_ns = nanoseconds;
    return CPVM_OK;
}

cpvm_status cpvm_instance_run(cpvm_instance *in, struct cpvm_interrupt *out)
{
    if (in->dead) {
        memset(out, 0, sizeof *out);
        return in->dead;
    }
    cpvm_status s = in->mod->backend->run(in, out);
    const struct cpvm_module_config *cfg = &in->mod->cfg;
    if (!s && cfg->gas_metering && cfg->gas_async && (in->gas < 0 || out->exit == CPVM_EXIT_OUT_OF_GAS)) {
        /* gas.md §1: any stop with negative gas is out of gas; async ones are final (F2). */
        out->exit = CPVM_EXIT_OUT_OF_GAS;
        out->hostcall = out->fault_address = 0;
        in->next = NEXT_NONE;
    }
    return s;
}

uint64_t cpvm_instance_insn_count(const cpvm_instance *in) { return in->insn_count; }

uint32_t cpvm_instance_heap_size(const cpvm_instance *in) { return in->heap_size; }

cpvm_status cpvm_instance_reset_memory(cpvm_instance *in) { return mem_reset(in); }

bool cpvm_instance_integrity_ok(const cpvm_instance *in)
{
    const struct jit_ctx *ctx = (const struct jit_ctx *)(in->mem - JIT_CTX_OFFSET);
    return !in->dead && mem_canaries_intact(in) && (!in->mod->jit || ctx->canary == JIT_CANARY);
}

const char *cpvm_exit_name(cpvm_exit exit)
{
    static const char *const names[] = {"halt", "panic", "ecalli", "page-fault", "out-of-gas", "steps"};
    return (unsigned)exit < sizeof names / sizeof *names ? names[exit] : "unknown";
}
