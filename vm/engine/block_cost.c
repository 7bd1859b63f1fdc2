/* cpvm_module_block_cost: what the module's backend charges on entering a block. */
#include "../decode/decode.h"
#include "../jit/jit.h"
#include "../machine/machine.h"

bool cpvm_module_block_cost(const cpvm_module *m, uint32_t pc, uint32_t *cost)
{
    if (m->jit) return jit_block_native(m, pc, cost) != UINT32_MAX; /* what the block's stub charges */
    /* the interpreter computes it as it first enters the block, the same way */
    if (!dec_is_block_start(m->prog, pc)) return false;
    *cost = gas_block_cost_at(&m->gas, m->prog, pc);
    return true;
}
