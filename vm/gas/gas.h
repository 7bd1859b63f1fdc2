/* Gas cost models behind one small interface (gas.md §4-§5). A backend asks for
 * each instruction's cost while it builds a block, then for the block's total;
 * a model may use either (naive sums, the block table looks the start pc up). */
#ifndef CPVM_GAS_H
#define CPVM_GAS_H

#include "../isa/isa.h"

struct gas_model {
    cpvm_cost_model_kind kind;
    struct cpvm_block_cost *blocks; /* sorted by pc, owned */
    size_t count;
    uint32_t missing_cost;
};

cpvm_status gas_model_init(struct gas_model *m, const struct cpvm_cost_model *spec, struct cpvm_error *err);
void gas_model_free(struct gas_model *m);

/* Cost of one instruction (OP_invalid included) under a per-instruction model. */
static inline uint32_t gas_insn_cost(const struct gas_model *m, enum op op)
{
    (void)m;
    (void)op;
    return 1; /* naive: every instruction, the implicit trap included */
}

/* Cost of the block starting at `start_pc`, given the sum of its instructions' costs. */
uint32_t gas_block_cost(const struct gas_model *m, uint32_t start_pc, uint64_t insn_cost_sum);

#endif
