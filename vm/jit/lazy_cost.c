/* Block costs the compiler's code charges, lazily computed (jit.h, JIT_COST_UNKNOWN). */
#include "jit.h"

size_t jit_block_index(const struct jit_code *jc, uint32_t pc)
{
    size_t lo = 0, hi = jc->nblocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (jc->blocks[mid].pc < pc) lo = mid + 1;
        else hi = mid;
    }
    return lo < jc->nblocks && jc->blocks[lo].pc == pc ? lo : SIZE_MAX;
}

/* Instances of one module may run on several threads: an entry is written
 * whole, and two threads that compute it store the same value. */
uint32_t jit_block_cost(const struct cpvm_module *m, size_t k)
{
    const struct jit_code *jc = m->jit;
    if (jc->costs_deferred) { /* what the block would cost with metering: as the interpreter does */
        const struct cpvm_program *p = m->prog;
        struct gas_block gb;
        gas_block_prepare(&m->gas, p, &gb);
        struct dec_block_iter it = dec_block_begin(p, jc->blocks[k].pc);
        struct dec_insn in;
        while (dec_block_next(&it, &in)) gas_block_add(&m->gas, &gb, &in);
        return gas_block_end(&m->gas, p, &gb, jc->blocks[k].pc);
    }
    if (!jc->costs) return jc->blocks[k].cost;
    uint64_t v = __atomic_load_n(&jc->costs[k], __ATOMIC_RELAXED);
    if (v == JIT_COST_UNKNOWN) {
        /* the block the compiler emitted: the iterator's from its start, as
         * gas_block_* would have fed it at compile time */
        v = gas_block_cost(&m->gas, m->prog, jc->blocks[k].pc, 0);
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
