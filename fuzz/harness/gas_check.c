#include "gas_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gas/full.h"
#include "gas_ref.h"
#include "program/program.h"

const struct cpvm_cost_model *exec_cost_model_override(void)
{
    static bool loaded;
    static struct cpvm_cost_model model;
    static const struct cpvm_cost_model *result;
    if (loaded) return result;
    loaded = true;
    const char *v = getenv("CPVM_FUZZ_COST_MODEL");
    if (!v || !*v) return NULL;
    memset(&model, 0, sizeof model);
    if (!cpvm_cost_model_from_name(v, &model)) {
        static uint8_t table[CPVM_COST_TABLE_SIZE + 4];
        FILE *f = fopen(v, "rb");
        size_t n = f ? fread(table, 1, sizeof table, f) : 0;
        bool more = f && fgetc(f) != EOF;
        if (f) fclose(f);
        if (!f || more || (n != CPVM_COST_TABLE_SIZE && n != CPVM_COST_TABLE_SIZE + 4)) {
            fprintf(stderr, "CPVM_FUZZ_COST_MODEL=%s: not naive, full[:l1|l2|l3] or a serialized cost table\n", v);
            abort();
        }
        model.kind = CPVM_COST_TABLE;
        model.table = table;
        model.table_len = n;
    }
    result = &model;
    return result;
}

static void ignore_event(void *ctx, uint32_t cycle, uint32_t insn, enum gas_event ev)
{
    (void)ctx;
    (void)cycle;
    (void)insn;
    (void)ev;
}

static int8_t latency_of(cpvm_cache_model cache)
{
    return cache == CPVM_CACHE_L1 ? GAS_CACHE_L1 : cache == CPVM_CACHE_L3 ? GAS_CACHE_L3 : GAS_CACHE_L2;
}

/* A copy of `p` in a new buffer whose code is `shift` trap instructions and then
 * p's code (code and bitmask malloc'd). Trap, not anything else, so that a branch
 * target that wrapped below 0 and now lands in the prefix is still "predicted",
 * as it was out of the code before. */
static bool make_shifted(const struct cpvm_program *p, unsigned shift, struct cpvm_program *out)
{
    *out = *p;
    uint32_t len = p->code_len + shift;
    uint8_t *code = malloc(len ? len : 1), *mask = calloc(len / 8 + 1, 1);
    if (!code || !mask) {
        free(code);
        free(mask);
        return false;
    }
    memset(code, (uint8_t)isa_rows[OP_trap].opcode[p->isa], shift);
    memcpy(code + shift, p->code, p->code_len);
    for (uint32_t k = 0; k < len; k++) {
        bool set = k < shift || dec_bit(p, k - shift);
        if (set) mask[k >> 3] |= (uint8_t)(1u << (k & 7));
    }
    out->code = code;
    out->bitmask = mask;
    out->code_len = len;
    out->owned = NULL;
    return true;
}

/* Whether the block at `pc` of `a` and the one at `pc + shift` of `b` decode to
 * the same instructions. The decoder's skip can depend on where an instruction
 * sits (the reference's bitmask scan reads whole words: isa.md §10), so a block
 * of a non-canonical long encoding may not be the same block once moved; only
 * the same instructions must cost the same. */
static bool same_block(const struct cpvm_program *a, const struct cpvm_program *b, uint32_t pc, unsigned shift)
{
    struct dec_block_iter ia = dec_block_begin(a, pc), ib = dec_block_begin(b, pc + shift);
    struct dec_insn x, y;
    for (;;) {
        bool more_a = dec_block_next(&ia, &x), more_b = dec_block_next(&ib, &y);
        if (more_a != more_b) return false;
        if (!more_a) return true;
        if (x.op != y.op || x.len != y.len || x.a != y.a || x.b != y.b || x.d != y.d || x.i1 != y.i1 ||
            x.i2 != y.i2 || x.imm64 != y.imm64 || x.target + shift != y.target)
            return false;
    }
}

void gas_check_full_model(const struct exec_setup *su, const cpvm_module *interp, const cpvm_module *compiled,
                          cpvm_cache_model cache, unsigned shift)
{
    const struct cpvm_program *p = su->prog;
    int8_t lat = latency_of(cache);
    struct cpvm_program shifted;
    bool have_shifted = make_shifted(p, shift, &shifted);
    for (uint32_t pc = 0; pc < p->code_len; pc++) {
        if (!dec_is_block_start(p, pc)) continue;
        uint32_t cost = gas_full_block_cost(p, pc, lat, NULL, NULL, NULL);
        if (cost < 1) exec_fail(su, "full gas model: block %u costs 0", pc);
        if (gas_full_block_cost(p, pc, lat, NULL, NULL, NULL) != cost)
            exec_fail(su, "full gas model: block %u costs differently the second time", pc);
        /* traced, the model ticks every cycle: no skipping, no solving without ticks */
        uint32_t slow = gas_full_block_cost(p, pc, lat, ignore_event, NULL, NULL);
        if (slow != cost)
            exec_fail(su, "full gas model: block %u costs %u, cycle by cycle %u (the shortcuts changed it)", pc,
                      cost, slow);
        /* the plain model (gas_ref.c): no shortcut, its own cost table */
        uint32_t plain = gas_ref_block_cost(p, pc, lat, NULL);
        if (plain != cost)
            exec_fail(su, "full gas model: block %u costs %u, the plain model says %u", pc, cost, plain);
        uint32_t got = 0;
        if (!cpvm_module_block_cost(interp, pc, &got) || got != cost)
            exec_fail(su, "full gas model: block %u: interpreter charges %u, the model says %u", pc, got, cost);
        /* the compiler emits every block the program can enter; a block start it
         * skipped (unreachable) is not an error */
        if (compiled && cpvm_module_block_cost(compiled, pc, &got) && got != cost)
            exec_fail(su, "full gas model: block %u: compiler charges %u, the model says %u", pc, got, cost);
        if (have_shifted && same_block(p, &shifted, pc, shift)) {
            uint32_t moved = gas_full_block_cost(&shifted, pc + shift, lat, NULL, NULL, NULL);
            if (moved != cost)
                exec_fail(su, "full gas model: block %u costs %u, the same code at %u costs %u", pc, cost,
                          pc + shift, moved);
        }
    }
    if (have_shifted) {
        free((void *)shifted.code);
        free((void *)shifted.bitmask);
    }
}

void gas_check_lazy_eager(const struct exec_setup *su, const cpvm_module *compiled, const struct exec_outcome *lazy,
                          cpvm_cache_model cache)
{
    const struct cpvm_program *p = su->prog;
    int8_t lat = latency_of(cache);
    /* every pc, so that whatever the compiler looks up (block starts, blocks
     * after a fallthrough, lone traps at gaps) is there; past the code, the lone trap */
    struct cpvm_block_cost *t = malloc(((size_t)p->code_len + 1) * sizeof *t);
    if (!t) return;
    for (uint32_t pc = 0; pc <= p->code_len; pc++)
        t[pc] = (struct cpvm_block_cost){.pc = pc, .cost = gas_full_block_cost(p, pc, lat, NULL, NULL, NULL)};
    struct cpvm_module_config cfg;
    exec_module_config(su, CPVM_BACKEND_COMPILER, &cfg);
    cfg.sandbox = cpvm_module_sandbox(compiled);
    cfg.cost_model = (struct cpvm_cost_model){.kind = CPVM_COST_BLOCK_TABLE, .blocks = t, .count = p->code_len + 1,
                                              .missing_cost = t[p->code_len].cost};
    cpvm_module *eager = NULL;
    struct cpvm_error err;
    cpvm_status s = cpvm_module_new(p, &cfg, &eager, &err);
    free(t);
    if (s == CPVM_E_NO_MEMORY) return;
    if (s) exec_fail(su, "compiler module with a block cost table failed: %s", err.detail);
    struct exec_outcome o;
    exec_run_instance(su, eager, su->step_limit, false, &o);
    if (o.complete && lazy->complete) exec_compare(su, lazy, &o, false, "block costs computed lazily vs eagerly");
    exec_outcome_free(&o);
    cpvm_module_free(eager);
}
