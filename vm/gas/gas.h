/* Gas cost models behind one small interface (gas.md §4-§5). A backend asks for
 * each instruction's cost while it builds a block, then for the block's total;
 * a model may use either (naive and the opcode table sum, the block table looks
 * the start pc up, the full model simulates the block from its start). */
#ifndef CPVM_GAS_H
#define CPVM_GAS_H

#include "../isa/isa.h"
#include "full.h"

struct cpvm_program;

struct gas_model {
    cpvm_cost_model_kind kind;
    struct cpvm_block_cost *blocks; /* sorted by pc, owned */
    size_t count;
    uint32_t missing_cost;
    int8_t load_latency;            /* full model */
    uint32_t *op_cost;              /* opcode table: OP_COUNT + 1 entries, owned */
};

cpvm_status gas_model_init(struct gas_model *m, const struct cpvm_program *p, const struct cpvm_cost_model *spec,
                           struct cpvm_error *err);
void gas_model_free(struct gas_model *m);

/* Cost of one instruction (OP_invalid included) under a per-instruction model. */
static inline uint32_t gas_insn_cost(const struct gas_model *m, enum op op)
{
    return m->op_cost ? m->op_cost[op] : 1; /* naive: every instruction, the implicit trap included */
}

/* Cost of the block starting at `start_pc`, given the sum of its instructions' costs
 * (the full model decodes the block itself; gas_block_* below saves that). */
uint32_t gas_block_cost(const struct gas_model *m, const struct cpvm_program *p, uint32_t start_pc,
                        uint64_t insn_cost_sum);

/* Cost of the block starting at `start_pc` under any model, decoding it here
 * (for a backend that did not cost it while decoding). */
uint32_t gas_block_cost_at(const struct gas_model *m, const struct cpvm_program *p, uint32_t start_pc);

/* A block's cost from the instructions a backend decodes anyway: prepare once per
 * program, then per block begin, add each instruction the block iterator yields,
 * end. */
struct gas_block {
    uint64_t sum;
    struct gas_sim sim; /* full model */
};
void gas_block_prepare(const struct gas_model *m, const struct cpvm_program *p, struct gas_block *b);
static inline void gas_block_begin(const struct gas_model *m, struct gas_block *b)
{
    b->sum = 0;
    if (m->kind == CPVM_COST_FULL) gas_sim_restart(&b->sim);
}
static inline void gas_block_add(const struct gas_model *m, struct gas_block *b, const struct dec_insn *in)
{
    if (m->kind == CPVM_COST_FULL) gas_sim_feed(&b->sim, in);
    else b->sum += gas_insn_cost(m, (enum op)in->op);
}
/* The same for `n` instructions at once (the whole block, from its start). */
static inline void gas_block_add_all(const struct gas_model *m, struct gas_block *b, const struct dec_insn *in,
                                     size_t n)
{
    if (m->kind == CPVM_COST_FULL) gas_sim_feed_all(&b->sim, in, n);
    else
        for (size_t k = 0; k < n; k++) b->sum += gas_insn_cost(m, (enum op)in[k].op);
}
uint32_t gas_block_table_end(const struct gas_model *m, const struct cpvm_program *p, struct gas_block *b,
                             uint32_t start_pc);
static inline uint32_t gas_block_end(const struct gas_model *m, const struct cpvm_program *p, struct gas_block *b,
                                     uint32_t start_pc)
{
    /* full: every caller fed a whole block from dec_block_next, which ends with
     * a terminator, so the model has finished it */
    if (m->kind == CPVM_COST_FULL) return gas_sim_cost(&b->sim);
    if (m->kind != CPVM_COST_BLOCK_TABLE) return b->sum > UINT32_MAX ? UINT32_MAX : (uint32_t)b->sum; /* the sum */
    return gas_block_table_end(m, p, b, start_pc);
}

/* Parses a serialized opcode table (gas.md §4) into OP_COUNT + 1 costs. */
cpvm_status gas_table_parse(const uint8_t *blob, size_t len, uint32_t out[OP_COUNT + 1], struct cpvm_error *err);

#endif
