/* cpvm_module_block_cost: what the module's backend charges on entering a block. */
#include "../decode/decode.h"
#include "../jit/jit.h"
#include "../machine/machine.h"

bool cpvm_module_block_cost(const cpvm_module *m, uint32_t pc, uint32_t *cost)
{
    if (m->jit) return jit_block_native(m, pc, cost) != UINT32_MAX; /* what the block's stub charges */
    /* the interpreter computes it as it first enters the block, the same way */
    const struct cpvm_program *p = m->prog;
    if (!dec_is_block_start(p, pc)) return false;
    struct gas_block gb;
    gas_block_prepare(&m->gas, p, &gb);
    struct dec_block_iter it = dec_block_begin(p, pc);
    struct dec_insn in;
    while (dec_block_next(&it, &in)) gas_block_add(&m->gas, &gb, &in);
    *cost = gas_block_end(&m->gas, p, &gb, pc);
    return true;
}
