/* Block costs the compiler's code charges, lazily computed (jit.h, JIT_COST_UNKNOWN). */
#include "jit.h"

size_t jit_block_index(const struct jit_code *jc, uint32_t pc)
{
    return jit_find_pc(jc->blocks, jc->nblocks, sizeof *jc->blocks, pc);
}

/* Instances of one module may run on several threads: an entry is written
 * whole, and two threads that compute it store the same value. */
uint32_t jit_block_cost(const struct cpvm_module *m, size_t k)
{
    const struct jit_code *jc = m->jit;
    /* no metering: what the block would cost with it, as the interpreter does */
    if (jc->costs_deferred) return gas_block_cost_at(&m->gas, m->prog, jc->blocks[k].pc);
    if (!jc->costs) return jc->blocks[k].cost;
    uint64_t v = __atomic_load_n(&jc->costs[k], __ATOMIC_RELAXED);
    if (v == JIT_COST_UNKNOWN) {
        v = gas_block_cost_at(&m->gas, m->prog, jc->blocks[k].pc); /* the block the compiler emitted */
        __atomic_store_n(&jc->costs[k], v, __ATOMIC_RELAXED);
    }
    return (uint32_t)v;
}

size_t jit_blocks_costed(const struct jit_code *jc)
{
    size_t n = 0;
    for (size_t k = 0; k < jc->ncosts; k++) n += __atomic_load_n(&jc->costs[k], __ATOMIC_RELAXED) != JIT_COST_UNKNOWN;
    return n;
}
