#include "gas.h"

#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "full.h"

/* The serialized table's field order (gas.md §4); `invalid` follows. */
static const uint8_t TABLE_ORDER[OP_COUNT] = {
    OP_add_32, OP_add_64, OP_add_imm_32, OP_add_imm_64, OP_and, OP_and_imm, OP_and_inverted, OP_branch_eq,
    OP_branch_eq_imm, OP_branch_greater_or_equal_signed, OP_branch_greater_or_equal_signed_imm,
    OP_branch_greater_or_equal_unsigned, OP_branch_greater_or_equal_unsigned_imm, OP_branch_greater_signed_imm,
    OP_branch_greater_unsigned_imm, OP_branch_less_or_equal_signed_imm, OP_branch_less_or_equal_unsigned_imm,
    OP_branch_less_signed, OP_branch_less_signed_imm, OP_branch_less_unsigned, OP_branch_less_unsigned_imm,
    OP_branch_not_eq, OP_branch_not_eq_imm, OP_cmov_if_not_zero, OP_cmov_if_not_zero_imm, OP_cmov_if_zero,
    OP_cmov_if_zero_imm, OP_count_leading_zero_bits_32, OP_count_leading_zero_bits_64, OP_count_set_bits_32,
    OP_count_set_bits_64, OP_count_trailing_zero_bits_32, OP_count_trailing_zero_bits_64, OP_div_signed_32,
    OP_div_signed_64, OP_div_unsigned_32, OP_div_unsigned_64, OP_ecalli, OP_fallthrough, OP_jump, OP_jump_indirect,
    OP_load_i16, OP_load_i32, OP_load_i8, OP_load_imm, OP_load_imm64, OP_load_imm_and_jump,
    OP_load_imm_and_jump_indirect, OP_load_indirect_i16, OP_load_indirect_i32, OP_load_indirect_i8,
    OP_load_indirect_u16, OP_load_indirect_u32, OP_load_indirect_u64, OP_load_indirect_u8, OP_load_u16,
    OP_load_u32, OP_load_u64, OP_load_u8, OP_maximum, OP_maximum_unsigned, OP_memset, OP_minimum,
    OP_minimum_unsigned, OP_move_reg, OP_mul_32, OP_mul_64, OP_mul_imm_32, OP_mul_imm_64,
    OP_mul_upper_signed_signed, OP_mul_upper_signed_unsigned, OP_mul_upper_unsigned_unsigned,
    OP_negate_and_add_imm_32, OP_negate_and_add_imm_64, OP_or, OP_or_imm, OP_or_inverted, OP_rem_signed_32,
    OP_rem_signed_64, OP_rem_unsigned_32, OP_rem_unsigned_64, OP_reverse_byte, OP_rotate_left_32,
    OP_rotate_left_64, OP_rotate_right_32, OP_rotate_right_64, OP_rotate_right_imm_32, OP_rotate_right_imm_64,
    OP_rotate_right_imm_alt_32, OP_rotate_right_imm_alt_64, OP_sbrk, OP_set_greater_than_signed_imm,
    OP_set_greater_than_unsigned_imm, OP_set_less_than_signed, OP_set_less_than_signed_imm,
    OP_set_less_than_unsigned, OP_set_less_than_unsigned_imm, OP_shift_arithmetic_right_32,
    OP_shift_arithmetic_right_64, OP_shift_arithmetic_right_imm_32, OP_shift_arithmetic_right_imm_64,
    OP_shift_arithmetic_right_imm_alt_32, OP_shift_arithmetic_right_imm_alt_64, OP_shift_logical_left_32,
    OP_shift_logical_left_64, OP_shift_logical_left_imm_32, OP_shift_logical_left_imm_64,
    OP_shift_logical_left_imm_alt_32, OP_shift_logical_left_imm_alt_64, OP_shift_logical_right_32,
    OP_shift_logical_right_64, OP_shift_logical_right_imm_32, OP_shift_logical_right_imm_64,
    OP_shift_logical_right_imm_alt_32, OP_shift_logical_right_imm_alt_64, OP_sign_extend_16, OP_sign_extend_8,
    OP_store_imm_indirect_u16, OP_store_imm_indirect_u32, OP_store_imm_indirect_u64, OP_store_imm_indirect_u8,
    OP_store_imm_u16, OP_store_imm_u32, OP_store_imm_u64, OP_store_imm_u8, OP_store_indirect_u16,
    OP_store_indirect_u32, OP_store_indirect_u64, OP_store_indirect_u8, OP_store_u16, OP_store_u32,
    OP_store_u64, OP_store_u8, OP_sub_32, OP_sub_64, OP_trap, OP_unlikely, OP_xnor, OP_xor, OP_xor_imm,
    OP_zero_extend_16,
};
_Static_assert(CPVM_COST_TABLE_SIZE == (2 + OP_COUNT) * 4, "table = version, one entry per op, invalid");

static uint32_t le32(const uint8_t *b) { return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24; }

cpvm_status gas_table_parse(const uint8_t *blob, size_t len, uint32_t out[OP_COUNT + 1], struct cpvm_error *err)
{
    /* The reference writes 143 words; its reader's length check asks for one more. */
    if (!blob || (len != CPVM_COST_TABLE_SIZE && len != CPVM_COST_TABLE_SIZE + 4))
        return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "cost table: %zu bytes, expected %u", len,
                         CPVM_COST_TABLE_SIZE);
    if (le32(blob) != 2) return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "cost table: version %u, expected 2", le32(blob));
    for (unsigned i = 0; i < OP_COUNT; i++) out[TABLE_ORDER[i]] = le32(blob + 4 + 4 * i);
    out[OP_invalid] = le32(blob + 4 + 4 * OP_COUNT);
    return CPVM_OK;
}

static int by_pc(const void *a, const void *b)
{
    uint32_t x = ((const struct cpvm_block_cost *)a)->pc, y = ((const struct cpvm_block_cost *)b)->pc;
    return (x > y) - (x < y);
}

bool cpvm_cost_model_from_name(const char *name, struct cpvm_cost_model *out)
{
    static const struct { const char *name; cpvm_cost_model_kind kind; cpvm_cache_model cache; } names[] = {
        {"naive", CPVM_COST_NAIVE, CPVM_CACHE_L2}, {"full", CPVM_COST_FULL, CPVM_CACHE_L2},
        {"full:l1", CPVM_COST_FULL, CPVM_CACHE_L1}, {"full:l2", CPVM_COST_FULL, CPVM_CACHE_L2},
        {"full:l3", CPVM_COST_FULL, CPVM_CACHE_L3},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            out->kind = names[i].kind;
            out->cache = names[i].cache;
            return true;
        }
    return false;
}

cpvm_status gas_model_init(struct gas_model *m, const struct cpvm_program *p, const struct cpvm_cost_model *spec,
                           struct cpvm_error *err)
{
    (void)p;
    memset(m, 0, sizeof *m);
    m->kind = spec ? spec->kind : CPVM_COST_NAIVE;
    switch (m->kind) {
    case CPVM_COST_NAIVE:
        return CPVM_OK;
    case CPVM_COST_FULL:
        switch (spec->cache) {
        case CPVM_CACHE_L1: m->load_latency = GAS_CACHE_L1; return CPVM_OK;
        case CPVM_CACHE_L2: m->load_latency = GAS_CACHE_L2; return CPVM_OK;
        case CPVM_CACHE_L3: m->load_latency = GAS_CACHE_L3; return CPVM_OK;
        }
        return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "unknown cache model %d", (int)spec->cache);
    case CPVM_COST_TABLE: {
        m->op_cost = malloc((OP_COUNT + 1) * sizeof *m->op_cost);
        if (!m->op_cost) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
        cpvm_status s = gas_table_parse(spec->table, spec->table_len, m->op_cost, err);
        if (s) gas_model_free(m);
        return s;
    }
    case CPVM_COST_BLOCK_TABLE:
        if (spec->count && !spec->blocks)
            return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "block cost table is NULL");
        if (spec->count > (SIZE_MAX / sizeof *m->blocks))
            return cpvm_fail(err, CPVM_E_LIMIT, 0, "block cost table too large");
        m->count = spec->count;
        m->missing_cost = spec->missing_cost;
        if (m->count) {
            m->blocks = malloc(m->count * sizeof *m->blocks);
            if (!m->blocks) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
            memcpy(m->blocks, spec->blocks, m->count * sizeof *m->blocks);
            qsort(m->blocks, m->count, sizeof *m->blocks, by_pc);
        }
        return CPVM_OK;
    }
    return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "unknown cost model %d", (int)m->kind);
}

void gas_model_free(struct gas_model *m)
{
    free(m->blocks);
    free(m->op_cost);
    m->blocks = NULL;
    m->op_cost = NULL;
}

uint32_t gas_block_cost(const struct gas_model *m, const struct cpvm_program *p, uint32_t start_pc, uint64_t sum)
{
    if (m->kind == CPVM_COST_FULL) return gas_full_block_cost(p, start_pc, m->load_latency, NULL, NULL, NULL);
    if (m->kind == CPVM_COST_BLOCK_TABLE) {
        size_t lo = 0, hi = m->count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (m->blocks[mid].pc < start_pc) lo = mid + 1;
            else hi = mid;
        }
        return lo < m->count && m->blocks[lo].pc == start_pc ? m->blocks[lo].cost : m->missing_cost;
    }
    return sum > UINT32_MAX ? UINT32_MAX : (uint32_t)sum;
}

uint32_t gas_block_cost_at(const struct gas_model *m, const struct cpvm_program *p, uint32_t start_pc)
{
    struct gas_block gb;
    gas_block_prepare(m, p, &gb);
    struct dec_block_iter it = dec_block_begin(p, start_pc);
    struct dec_insn in;
    while (dec_block_next(&it, &in)) gas_block_add(m, &gb, &in);
    return gas_block_end(m, p, &gb, start_pc);
}

void gas_block_prepare(const struct gas_model *m, const struct cpvm_program *p, struct gas_block *b)
{
    b->sum = 0;
    if (m->kind == CPVM_COST_FULL) gas_sim_init(&b->sim, p, m->load_latency);
}

uint32_t gas_block_table_end(const struct gas_model *m, const struct cpvm_program *p, struct gas_block *b,
                             uint32_t start_pc)
{
    return gas_block_cost(m, p, start_pc, b->sum);
}
