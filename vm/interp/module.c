/* Modules and instances: the public face of the interpreter backend. */
#include <stdlib.h>
#include <string.h>

#include "../common/bits.h"
#include "../common/limits.h"
#include "../jit/jit.h"
#include "../sandbox/sandbox.h"
#include "interp.h"

void cpvm_module_config_default(struct cpvm_module_config *c)
{
    memset(c, 0, sizeof *c);
    c->page_size = VM_PAGE_MIN;
}

cpvm_status cpvm_module_new(const cpvm_program *p, const struct cpvm_module_config *cfg, cpvm_module **out,
                            struct cpvm_error *err)
{
    *out = NULL;
    struct cpvm_module_config def;
    if (!cfg) {
        cpvm_module_config_default(&def);
        cfg = &def;
    }
    if (cfg->backend != CPVM_BACKEND_INTERPRETER && cfg->backend != CPVM_BACKEND_COMPILER)
        return cpvm_fail(err, CPVM_E_UNSUPPORTED, 0, "unknown backend %d", (int)cfg->backend);
    if (cfg->memory_model != CPVM_MEMORY_STANDARD && cfg->memory_model != CPVM_MEMORY_DYNAMIC)
        return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "unknown memory model %d", (int)cfg->memory_model);
    uint32_t page = cfg->page_size ? cfg->page_size : VM_PAGE_MIN;
    struct cpvm_module *m = calloc(1, sizeof *m);
    if (!m) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
    m->prog = p;
    m->cfg = *cfg;
    m->cfg.cost_model.blocks = NULL; /* the copies live in m->gas */
    m->cfg.cost_model.table = NULL;
    m->page_size = page;
    m->is64 = cpvm_program_is_64_bit(p);
    cpvm_status s = cpvm_memory_map_build(page, p->ro_data_size, p->rw_data_size, p->stack_size,
                                          cfg->aux_data_size, &m->map, err);
    if (!s) s = gas_model_init(&m->gas, p, &cfg->cost_model, err);
    /* blob-format.md §5: the reference validates JamV1 code at load time. */
    if (!s && p->isa == CPVM_ISA_JAM_V1) s = dec_validate_jam(p, err);
    const char *missing;
    if (!s && (unsigned)cfg->sandbox > CPVM_SANDBOX_NONE)
        s = cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "unknown sandbox %d", (int)cfg->sandbox);
    if (!s && cfg->backend == CPVM_BACKEND_COMPILER) {
        /* SECURITY: never a silent downgrade to unsandboxed native code: without
         * a sandbox the interpreter runs it, and cpvm_module_backend says why. */
        m->sandboxed = cfg->sandbox != CPVM_SANDBOX_NONE;
        if (!jit_cpu_supported(&missing)) m->backend_note = missing;
        else if (m->sandboxed && !sbx_available(&missing)) m->backend_note = missing;
        else s = jit_compile(m, &m->jit, err);
        if (!m->jit) m->sandboxed = false;
        m->owner_id = sbx_new_owner_id();
    }
    if (s) {
        cpvm_module_free(m);
        return s;
    }
    *out = m;
    return CPVM_OK;
}

void cpvm_module_free(cpvm_module *m)
{
    if (!m) return;
    jit_code_free(m->jit);
    gas_model_free(&m->gas);
    free(m);
}

const cpvm_program *cpvm_module_program(const cpvm_module *m) { return m->prog; }
const struct cpvm_memory_map *cpvm_module_memory_map(const cpvm_module *m) { return &m->map; }

cpvm_backend cpvm_module_backend(const cpvm_module *m, const char **why)
{
    if (why) *why = m->backend_note ? m->backend_note : NULL;
    return m->jit ? CPVM_BACKEND_COMPILER : CPVM_BACKEND_INTERPRETER;
}

cpvm_status cpvm_instance_new(const cpvm_module *m, cpvm_instance **out, struct cpvm_error *err)
{
    *out = NULL;
    struct cpvm_instance *in = calloc(1, sizeof *in);
    if (!in) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
    in->mod = m;
    in->hw_perms = m->jit != NULL && !m->sandboxed;
    /* One slot per code offset plus the end: calloc leaves untouched pages unbacked. */
    in->block_of = calloc((size_t)m->prog->code_len + 1, sizeof *in->block_of);
    cpvm_status s = in->block_of ? CPVM_OK : cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
    if (!s && m->sandboxed) {
        char why[200];
        if (sbx_acquire(m->owner_id, &in->worker, why, sizeof why))
            s = cpvm_fail(err, CPVM_E_SANDBOX, 0, "%s", why);
        else if (in->worker->code_owner != m->owner_id &&
                 sbx_worker_load_code(in->worker, m->owner_id, m->jit->code, m->jit->len))
            s = cpvm_fail(err, CPVM_E_LIMIT, 0, "%zu bytes of native code exceed a worker's code window",
                          m->jit->len);
    }
    if (!s) s = mem_init(in, err);
    if (s) {
        cpvm_instance_free(in);
        return s;
    }
    /* Host-owned, checked after every native run and by cpvm_instance_integrity_ok. */
    ((struct jit_ctx *)(in->mem - JIT_CTX_OFFSET))->canary = JIT_CANARY;
    *out = in;
    return CPVM_OK;
}

void cpvm_instance_free(cpvm_instance *in)
{
    if (!in) return;
    mem_free(in);
    free(in->ops);
    free(in->block_of);
    free(in->jt_op);
    free(in);
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

cpvm_sandbox cpvm_module_sandbox(const cpvm_module *m)
{
    return m->sandboxed ? CPVM_SANDBOX_ZYGOTE : CPVM_SANDBOX_NONE;
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
    cpvm_status s = in->mod->jit ? jit_run(in, out) : interp_run(in, out);
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
