/* cpvm info --gas / --gas-trace PC: every block's cost under a cost model, and
 * the full model's cycle-by-cycle schedule of one block (how one debugs a gas
 * difference with the reference, whose timeline tests use the same letters). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gas/full.h"
#include "../gas/gas.h"
#include "../text/text.h"
#include "info_gas.h"
#include "util.h"

#define TRACE_MAX_CELLS (16u << 20)

int info_gas_costs(const char *cmd, const cpvm_program *p, const struct cpvm_cost_model *model)
{
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.gas_metering = true;
    cfg.cost_model = *model;
    cpvm_module *m = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    if (cpvm_module_new(p, &cfg, &m, &err) != CPVM_OK) {
        cli_print_error(cmd, "module", &err);
        return 2;
    }
    uint32_t n = 0;
    uint64_t total = 0;
    printf("block costs (pc: cost):\n");
    for (uint32_t pc = 0; pc < p->code_len; pc++) {
        uint32_t cost;
        if (!cpvm_module_block_cost(m, pc, &cost)) continue;
        printf("  %" PRIu32 ": %" PRIu32 "\n", pc, cost);
        n++;
        total += cost;
    }
    printf("%" PRIu32 " blocks, costs summing to %" PRIu64 "\n", n, total);
    cpvm_module_free(m);
    return 0;
}

struct grid {
    char *cells;
    uint32_t rows, cols;
};

static void put(void *ctx, uint32_t cycle, uint32_t insn, enum gas_event ev)
{
    struct grid *g = ctx;
    if (insn < g->rows && cycle < g->cols) g->cells[(size_t)insn * g->cols + cycle] = (char)ev;
}

int info_gas_trace(const char *cmd, const cpvm_program *p, int8_t latency, uint32_t pc)
{
    if (!dec_is_block_start(p, pc)) {
        fprintf(stderr, "cpvm %s: --gas-trace: no basic block starts at %" PRIu32 "\n", cmd, pc);
        return 2;
    }
    struct grid g = {NULL, 0, 0};
    struct dec_block_iter it = dec_block_begin(p, pc);
    struct dec_insn in;
    while (dec_block_next(&it, &in)) g.rows++;
    uint32_t cycles = 0;
    uint32_t cost = gas_full_block_cost(p, pc, latency, NULL, NULL, &cycles);
    printf("block %" PRIu32 ": %" PRIu32 " instructions, %" PRIu32 " cycles, cost %" PRIu32
           " (cycles - 3, at least 1)\n",
           pc, g.rows, cycles, cost);
    if ((uint64_t)g.rows * cycles > TRACE_MAX_CELLS) {
        printf("(schedule too large to draw)\n");
        return 0;
    }
    g.cols = cycles;
    g.cells = malloc((size_t)g.rows * g.cols + 1);
    if (!g.cells) {
        fprintf(stderr, "cpvm %s: out of memory\n", cmd);
        return 2;
    }
    memset(g.cells, '.', (size_t)g.rows * g.cols);
    gas_full_block_cost(p, pc, latency, put, &g, NULL);
    printf("D decoded, = waiting, e executing, E executed, - waiting to retire, R retired\n");
    it = dec_block_begin(p, pc);
    for (uint32_t r = 0; r < g.rows && dec_block_next(&it, &in); r++) {
        char text[128];
        if (in.op == OP_invalid) snprintf(text, sizeof text, "invalid (trap)");
        else text_format_insn(p->isa, &in, text, sizeof text);
        printf("%.*s  %6" PRIu32 ": %s\n", (int)g.cols, g.cells + (size_t)r * g.cols, in.pc, text);
    }
    free(g.cells);
    return 0;
}
