#include "gas.h"

#include <stdlib.h>
#include <string.h>

#include "../common/error.h"

static int by_pc(const void *a, const void *b)
{
    uint32_t x = ((const struct cpvm_block_cost *)a)->pc, y = ((const struct cpvm_block_cost *)b)->pc;
    return (x > y) - (x < y);
}

cpvm_status gas_model_init(struct gas_model *m, const struct cpvm_cost_model *spec, struct cpvm_error *err)
{
    memset(m, 0, sizeof *m);
    m->kind = spec ? spec->kind : CPVM_COST_NAIVE;
    switch (m->kind) {
    case CPVM_COST_NAIVE:
        return CPVM_OK;
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
    m->blocks = NULL;
}

uint32_t gas_block_cost(const struct gas_model *m, uint32_t start_pc, uint64_t sum)
{
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
