/* Fuzz target diff_interp_jit: a generated valid program runs on the
 * interpreter (the oracle) and on the x86-64 compiler with the same memory,
 * registers, gas and host behaviour, in lockstep; everything a guest can
 * observe must match (STYLE.md §9), and the compiled code must leave the
 * memory around its window and the context block's host-owned fields alone.
 *
 * Input framing (bytes 0-1 and the generator input as interp_exec, so its
 * seeds serve here too; fuzz/harness/exec.h has the details):
 *   byte 0   run configuration
 *     bit 0     dynamic memory (host-mapped regions, page faults answered)
 *     bit 1     compat GP v0.4 instead of PolkaVM 0.35
 *     bit 2     no gas metering (only when the program has no memset)
 *     bit 3     asynchronous gas metering (cfg.gas_async; with metering):
 *               cpvm defines its checks identically on both backends, so
 *               everything must still match exactly
 *     bits 4-5  cost model: 0 naive; 1 a block table with a cost of 1-8 at
 *               every offset, or, with bit 7 of the host seed, the full model
 *               (gas.md §5; seed bits 5-6: 1 L1, 3 L3, else L2 hits), whose
 *               invariants are checked too (harness/gas_check.h); 2 a sparse
 *               table (costs 1-200, missing blocks 1-4), or, with bit 7 of
 *               the host seed, a per-opcode table in the reference's
 *               serialized form (costs 1-8; gas.md §4); 3 a table of extreme
 *               costs (up to 0xffffffff). CPVM_FUZZ_COST_MODEL overrides
 *               these bits (harness/gas_check.h).
 *     bit 6     the host refills the gas once after (synchronous) out-of-gas
 *     bit 7     after every other host call the host sets the next pc itself
 *   byte 1   host seed (host call answers, host writes, unmapping, page
 *            fault policy) and the seed of the cost table
 *   bytes 2.. generator input (gen.h, GEN_CONFIG_INTERP_EXEC)
 *
 * Compared after every run() (the first divergence is caught where it
 * happens): exit kind, pc, host call number, page-fault address, all
 * registers, gas, next pc and heap size; the host then answers both
 * instances identically. At the end: the final state and the contents of
 * every mapped page (rw/heap ranges over 256 KiB are sampled: 128 KiB at both
 * ends and at most 64 pages between: three snapshots per input, and reading
 * untouched heap pages was most of the time of the inputs with big heaps;
 * a value that differs in the middle still shows in the registers once the
 * guest loads it). On the compiler instance cpvm_instance_integrity_ok() must
 * hold (canary pages beside the window, the context canary) after each of
 * the first 64 run() calls, then after every 64th (the check reads 8 KiB),
 * and once more at the end. Both instances also satisfy the harness's
 * per-stop invariants.
 * Then the compiler's instance is reset (cpvm_instance_reset) and runs the
 * input again alone: its outcome must equal the first run's in everything
 * (interrupt sequence, registers, gas, next pc, heap, memory), so each input
 * runs twice on one reused instance and once (interpreter) on a fresh one,
 * and all three agree.
 * Sampled under a fuzzing engine (exec_sampled: by a hash of the input, so an
 * input always gets the same checks; replay runs them all): the reset run on
 * one input in 2, the full gas model's invariants on one full-model input in
 * 4 (every one with CPVM_FUZZ_COST_MODEL). A program stepped one instruction
 * at a time is stepped exactly for its first 512 step stops, then every 1000
 * instructions (exec.h: EXEC_STEP_STOPS_EXACT).
 *
 * A divergence prints the first differing field, both states, the last
 * stops both agreed on and the program's disassembly, then aborts.
 */
#ifndef DIFF_SANDBOX /* diff_interp_jit_zygote.c sets CPVM_SANDBOX_ZYGOTE */
#define DIFF_SANDBOX CPVM_SANDBOX_NONE
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpvm.h"
#include "exec.h"
#include "gas_check.h"
#include "describe.h"
#include "text/text.h"

#define HISTORY 8u
#define DIFF_SNAPSHOT_FULL (1u << 18)
#define INTEGRITY_ALL 64u /* stops checked one by one (8 KiB of memcmp each: not all of thousands) */
#define INTEGRITY_EVERY 64u /* then every 64th */
/* Under a fuzzing engine the costliest checks run on a share of the inputs
 * (exec_sampled: by a hash of the input, every check in replay): the full gas
 * model's invariants (the model four times per block, a second compiler
 * module and a fourth run) and the run on the reset instance (a third run). */
#define GAS_CHECK_ONE_IN 4u
#define RESET_CHECK_ONE_IN 2u
#define SALT_GAS 0x6761u
#define SALT_RESET 0x7265u

struct diff {
    struct exec_setup su;
    struct exec_run ri, rc;          /* interpreter, compiler */
    struct exec_outcome oi, oc;
    unsigned ni, nc;                 /* stops seen on each side */
    struct exec_stop hist[HISTORY];  /* the interpreter's last stops */
    bool final;                      /* comparing the end states */
    unsigned cost_mode;
    bool full_model;                 /* cost_mode 1 with host seed bit 7 */
    bool opcode_table;               /* cost_mode 2 with host seed bit 7 */
    cpvm_cache_model cache;
};

/* --- the report --------------------------------------------------------------------- */

static void print_stop(const char *who, unsigned n, const struct exec_stop *s)
{
    fprintf(stderr, "  %-11s stop #%u: %s at pc %u", who, n, cpvm_exit_name(s->intr.exit), s->intr.pc);
    if (s->intr.exit == CPVM_EXIT_ECALLI) fprintf(stderr, " hostcall %u", s->intr.hostcall);
    if (s->intr.exit == CPVM_EXIT_PAGE_FAULT) fprintf(stderr, " fault address 0x%x", s->intr.fault_address);
    fprintf(stderr, ", gas %lld, next pc ", (long long)s->gas);
    if (s->has_next) fprintf(stderr, "%u", s->next_pc);
    else fprintf(stderr, "none");
    fprintf(stderr, ", heap %u\n   ", s->heap);
    for (unsigned r = 0; r < CPVM_REG_COUNT; r++)
        fprintf(stderr, " %s=0x%llx", cpvm_reg_name(r), (unsigned long long)s->regs[r]);
    fputc('\n', stderr);
}

static void print_outcome(const char *who, const struct exec_outcome *o)
{
    fprintf(stderr, "  %-11s final: %u stops, gas %lld, next pc ", who, o->events, (long long)o->gas);
    if (o->has_next) fprintf(stderr, "%u", o->next_pc);
    else fprintf(stderr, "none");
    fprintf(stderr, ", heap %u, %zu memory bytes compared\n   ", o->heap, o->mem_len);
    for (unsigned r = 0; r < CPVM_REG_COUNT; r++)
        fprintf(stderr, " %s=0x%llx", cpvm_reg_name(r), (unsigned long long)o->regs[r]);
    fputc('\n', stderr);
}

static void report(void *arg)
{
    const struct diff *d = arg;
    const struct exec_setup *su = &d->su;
    const struct gen_program *g = &su->g;
    static const char *const costs[4] = {"naive", "dense table", "sparse table", "extreme table"};
    static const char *const caches[3] = {"full L2", "full L1", "full L3"};
    fprintf(stderr, "\n=== diff_interp_jit report ===\n");
    fprintf(stderr, "run config 0x%02x: %s memory, compat %s, metering %s, cost model %s%s%s; host seed 0x%02x\n",
            su->cfg, su->dynamic ? "dynamic" : "standard", (su->cfg & 2) ? "gp-v0.4" : "polkavm-0.35",
            !su->metered ? "off" : su->async ? "asynchronous" : "synchronous",
            d->full_model ? caches[d->cache] : d->opcode_table ? "opcode table" : costs[d->cost_mode],
            su->refill ? ", one refill" : "", su->reenter ? ", host re-enters" : "", su->seed);
    const struct cpvm_memory_map *m = &g->map;
    fprintf(stderr,
            "program: %s, %u instructions, %u code bytes, entry pc %u, gas %lld, step limit %llu; page 0x%x, "
            "ro 0x%x+0x%x, rw 0x%x+0x%x, heap base 0x%x max 0x%x, stack 0x%x-0x%x, aux 0x%x+0x%x\n",
            cpvm_isa_name(g->isa), g->insn_count, g->code_len, g->entry_pc, (long long)g->gas,
            (unsigned long long)su->step_limit, m->page_size, m->ro_data_address, m->ro_data_size,
            m->rw_data_address, m->rw_data_size, m->heap_base, m->max_heap_size, m->stack_address_low,
            m->stack_address_high, m->aux_data_address, m->aux_data_size);
    unsigned from = d->ni > HISTORY ? d->ni - HISTORY : 0;
    fprintf(stderr, "stops before (interpreter; the compiler agreed):\n");
    for (unsigned i = from; i + 1 < d->ni; i++) print_stop("", i + 1, &d->hist[i % HISTORY]);
    fprintf(stderr, "states:\n");
    if (d->ni) print_stop("interpreter", d->ni, &d->ri.last);
    if (d->nc) print_stop("compiler", d->nc, &d->rc.last);
    if (d->final) {
        print_outcome("interpreter", &d->oi);
        print_outcome("compiler", &d->oc);
    }
    char *text = NULL;
    struct cpvm_error err;
    struct text_disasm_options opt = {.show_offsets = true};
    if (su->prog && text_disassemble(su->prog, &opt, &text, &err) == CPVM_OK) {
        fprintf(stderr, "disassembly:\n%s\n", text);
        free(text);
    } else {
        fprintf(stderr, "disassembly failed\n");
    }
    fprintf(stderr, "=== end of report (replay_<target> --describe INPUT, or cpvm repro INPUT, shows the program) ===\n");
}

/* --- lockstep comparison ------------------------------------------------------------- */

static void after_interp_run(struct exec_run *r, void *arg)
{
    struct diff *d = arg;
    d->hist[d->ni % HISTORY] = r->last;
    d->ni++;
}

static void check_integrity(const struct diff *d, const struct exec_run *r, const char *when)
{
    if (!cpvm_instance_integrity_ok(r->inst))
        exec_fail(&d->su, "sandbox integrity: a canary beside the window or in the context block changed (%s #%u)",
                  when, d->nc);
}

static void after_compiler_run(struct exec_run *r, void *arg)
{
    struct diff *d = arg;
    const struct exec_setup *su = &d->su;
    d->nc++;
    const struct exec_stop *a = &d->ri.last, *b = &r->last;
    if (d->nc != d->ni) exec_fail(su, "divergence: the compiler stopped once more (stop #%u)", d->nc);
#define DIFFER(field, fmt, x, y)                                                                              \
    exec_fail(su, "divergence at stop #%u: %s differs: interpreter " fmt ", compiler " fmt, d->nc, field, x, y)
    /* the first differing field, in the order a guest would notice it */
    if (a->intr.exit != b->intr.exit)
        DIFFER("exit kind", "%s", cpvm_exit_name(a->intr.exit), cpvm_exit_name(b->intr.exit));
    if (a->intr.pc != b->intr.pc) DIFFER("pc", "%u", a->intr.pc, b->intr.pc);
    if (a->intr.hostcall != b->intr.hostcall) DIFFER("host call number", "%u", a->intr.hostcall, b->intr.hostcall);
    if (a->intr.fault_address != b->intr.fault_address)
        DIFFER("page-fault address", "0x%x", a->intr.fault_address, b->intr.fault_address);
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++)
        if (a->regs[i] != b->regs[i]) {
            char what[32];
            snprintf(what, sizeof what, "register %s", cpvm_reg_name(i));
            DIFFER(what, "0x%llx", (unsigned long long)a->regs[i], (unsigned long long)b->regs[i]);
        }
    if (a->gas != b->gas) DIFFER("gas", "%lld", (long long)a->gas, (long long)b->gas);
    if (a->has_next != b->has_next) DIFFER("having a next pc", "%d", a->has_next, b->has_next);
    if (a->has_next && a->next_pc != b->next_pc) DIFFER("next pc", "%u", a->next_pc, b->next_pc);
    if (a->heap != b->heap) DIFFER("heap size", "%u", a->heap, b->heap);
    /* SECURITY: the compiled code touched nothing outside the guest window:
     * checked after each of the first 64 stops, then every 64th (two 4 KiB
     * memcmps and the context canary; a changed canary stays changed). */
    if (d->nc <= INTEGRITY_ALL || d->nc % INTEGRITY_EVERY == 0) check_integrity(d, r, "stop");
#undef DIFFER
}

static void compare_final(struct diff *d)
{
    const struct exec_setup *su = &d->su;
    const struct exec_outcome *a = &d->oi, *b = &d->oc;
    d->final = true;
#define FINAL_DIFFER(field, fmt, x, y) \
    exec_fail(su, "divergence at the end: %s differs: interpreter " fmt ", compiler " fmt, field, x, y)
    if (a->events != b->events || a->hash_all != b->hash_all)
        FINAL_DIFFER("interrupt sequence", "%u stops", a->events, b->events);
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++)
        if (a->regs[i] != b->regs[i]) {
            char what[32];
            snprintf(what, sizeof what, "register %s", cpvm_reg_name(i));
            FINAL_DIFFER(what, "0x%llx", (unsigned long long)a->regs[i], (unsigned long long)b->regs[i]);
        }
    if (a->gas != b->gas) FINAL_DIFFER("gas", "%lld", (long long)a->gas, (long long)b->gas);
    if (a->has_next != b->has_next || (a->has_next && a->next_pc != b->next_pc))
        FINAL_DIFFER("next pc", "%lld", a->has_next ? (long long)a->next_pc : -1LL,
                     b->has_next ? (long long)b->next_pc : -1LL);
    if (a->heap != b->heap) FINAL_DIFFER("heap size", "%u", a->heap, b->heap);
    if (a->mem_len != b->mem_len) FINAL_DIFFER("memory snapshot size", "%zu", a->mem_len, b->mem_len);
    if (!a->mem_len || memcmp(a->mem, b->mem, a->mem_len) == 0) return;
    size_t i = 0;
    while (a->mem[i] == b->mem[i]) i++;
    uint32_t addr = 0;
    exec_snapshot_addr(a, i, &addr);
    size_t lo = i >= 8 ? i - 8 : 0, hi = i + 8 < a->mem_len ? i + 8 : a->mem_len;
    fprintf(stderr, "memory from snapshot byte 0x%zx (guest 0x%x):\n  interpreter", lo, addr - (uint32_t)(i - lo));
    for (size_t k = lo; k < hi; k++) fprintf(stderr, " %02x", a->mem[k]);
    fprintf(stderr, "\n  compiler   ");
    for (size_t k = lo; k < hi; k++) fprintf(stderr, " %02x", b->mem[k]);
    fputc('\n', stderr);
    char what[48];
    snprintf(what, sizeof what, "memory at 0x%x", addr);
    FINAL_DIFFER(what, "0x%02x", a->mem[i], b->mem[i]);
#undef FINAL_DIFFER
}

/* --- cost models ---------------------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Never a zero cost: a loop of free blocks would run forever. */
static struct cpvm_block_cost *cost_table(const struct diff *d, struct cpvm_cost_model *cm)
{
    static const uint32_t extreme[8] = {1, 2, 1000, 65536, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu};
    uint32_t n = d->su.g.code_len + 1; /* the implicit trap's block starts at the end */
    struct cpvm_block_cost *t = malloc(n * sizeof *t);
    if (!t) return NULL;
    uint64_t salt = (uint64_t)d->su.seed << 32;
    size_t k = 0;
    for (uint32_t pc = 0; pc < n; pc++) {
        uint64_t r = mix64(salt ^ pc);
        uint32_t cost;
        switch (d->cost_mode) {
        case 1: cost = 1 + (uint32_t)(r & 7); break;
        case 2:
            if (r & 3) continue;
            cost = 1 + (uint32_t)((r >> 8) % 200);
            break;
        default: cost = (r & 0x30) ? 1 + (uint32_t)((r >> 8) & 3) : extreme[(r >> 8) & 7]; break;
        }
        t[k++] = (struct cpvm_block_cost){.pc = pc, .cost = cost};
    }
    cm->kind = CPVM_COST_BLOCK_TABLE;
    cm->blocks = t;
    cm->count = k;
    cm->missing_cost = 1 + (uint32_t)(mix64(salt) & 3);
    return t;
}

/* CPVM_COST_TABLE: a version word, then a cost per opcode and one for
 * `invalid`, all little-endian; never a zero cost (as above). */
static void opcode_table(const struct diff *d, uint8_t blob[CPVM_COST_TABLE_SIZE], struct cpvm_cost_model *cm)
{
    uint64_t salt = (uint64_t)d->su.seed << 32 | 0x7ab1e;
    for (uint32_t i = 0; i < CPVM_COST_TABLE_SIZE / 4; i++) {
        uint32_t v = i == 0 ? 2 : 1 + (uint32_t)(mix64(salt ^ i) & 7);
        for (unsigned k = 0; k < 4; k++) blob[4 * i + k] = (uint8_t)(v >> (8 * k));
    }
    cm->kind = CPVM_COST_TABLE;
    cm->table = blob;
    cm->table_len = CPVM_COST_TABLE_SIZE;
}

/* --- the target ------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct diff d; /* the hosts' page tables are a few KiB each */
    static uint8_t op_costs[CPVM_COST_TABLE_SIZE];
    memset(&d, 0, sizeof d);
    struct exec_setup *su = &d.su;
    if (!exec_setup_init(su, "diff_interp_jit", data, size)) return 0;
    su->async = (su->cfg & 8) != 0 && su->metered;
    su->snapshot_full = DIFF_SNAPSHOT_FULL;
    su->widen_steps = true;
    su->on_fail = report;
    su->on_fail_arg = &d;
    d.cost_mode = (su->cfg >> 4) & 3;
    const struct gen_program *g = &su->g;
    cpvm_module *modi = NULL, *modc = NULL;
    struct cpvm_block_cost *table = NULL;
    struct cpvm_error err;

    struct cpvm_module_config mi, mcomp;
    exec_module_config(su, CPVM_BACKEND_INTERPRETER, &mi);
    const struct cpvm_cost_model *forced = exec_cost_model_override();
    d.full_model = forced ? forced->kind == CPVM_COST_FULL : d.cost_mode == 1 && (su->seed & 0x80);
    d.opcode_table = !forced && d.cost_mode == 2 && (su->seed & 0x80);
    if (forced) {
        d.cache = forced->cache; /* exec_module_config set the model */
    } else if (d.full_model) {
        /* by name, as a user picks it (cpvm run --cost-model) */
        static const char *const by_bits[4] = {"full", "full:l1", "full:l2", "full:l3"};
        const char *name = by_bits[(su->seed >> 5) & 3];
        if (!cpvm_cost_model_from_name(name, &mi.cost_model) || mi.cost_model.kind != CPVM_COST_FULL)
            exec_fail(su, "cost model name %s is not the full model", name);
        d.cache = mi.cost_model.cache;
    } else if (d.opcode_table) {
        opcode_table(&d, op_costs, &mi.cost_model);
    } else if (d.cost_mode && !(table = cost_table(&d, &mi.cost_model))) {
        goto out;
    }
    mcomp = mi;
    mcomp.backend = CPVM_BACKEND_COMPILER;
    mcomp.sandbox = DIFF_SANDBOX;
    cpvm_status s = cpvm_module_new(su->prog, &mi, &modi, &err);
    if (s == CPVM_E_NO_MEMORY) goto out;
    if (s) exec_fail(su, "interpreter module creation failed for a generated %s program: %s", cpvm_isa_name(g->isa),
                     err.detail);
    s = cpvm_module_new(su->prog, &mcomp, &modc, &err);
    if (s == CPVM_E_NO_MEMORY) goto out;
    if (s) exec_fail(su, "compiler module creation failed for a generated %s program: %s", cpvm_isa_name(g->isa),
                     err.detail);
    const char *why = NULL;
    if (cpvm_module_backend(modc, &why) != CPVM_BACKEND_COMPILER) {
        static bool warned;
        if (!warned) fprintf(stderr, "diff_interp_jit: the compiler is not available (%s): nothing to compare\n",
                             why ? why : "?");
        warned = true;
        goto out;
    }
    if (memcmp(cpvm_module_memory_map(modi), &g->map, sizeof g->map) != 0 ||
        memcmp(cpvm_module_memory_map(modc), &g->map, sizeof g->map) != 0)
        exec_fail(su, "module memory map differs from the generator's");

    d.ri.hook = after_interp_run;
    d.ri.hook_arg = &d;
    d.rc.hook = after_compiler_run;
    d.rc.hook_arg = &d;
    d.ri.reuse = d.rc.reuse = NULL;
    d.ri.keep = false;
    d.rc.keep = true; /* run again after cpvm_instance_reset */
    bool ok_i = exec_begin(&d.ri, su, modi, su->step_limit, false, &d.oi);
    bool ok_c = ok_i && exec_begin(&d.rc, su, modc, su->step_limit, false, &d.oc);
    if (ok_i && ok_c) {
        enum exec_step_result a, b;
        do {
            a = exec_step(&d.ri);
            if (a == EXEC_NO_MEMORY) break;
            b = exec_step(&d.rc);
            if (b == EXEC_NO_MEMORY) break;
            if (a != b) exec_fail(su, "divergence after stop #%u: the run loop %s on one side only", d.ni,
                                  a == EXEC_CAPPED || b == EXEC_CAPPED ? "hit its cap" : "ended");
        } while (a == EXEC_CONTINUE);
    }
    if (ok_c) check_integrity(&d, &d.rc, "at the end, after stop");
    bool compare = ok_i && ok_c && !d.ri.no_memory && !d.rc.no_memory;
    exec_end(&d.ri);
    exec_end(&d.rc);
    if (compare) compare_final(&d);
    /* after the runs: asking the compiler for its costs computes the lazy ones;
     * one full-model input in GAS_CHECK_ONE_IN (all with CPVM_FUZZ_COST_MODEL) */
    bool gas_checks = d.full_model && (forced || exec_sampled(su, SALT_GAS, GAS_CHECK_ONE_IN));
    if (gas_checks && compare) gas_check_lazy_eager(su, modc, &d.oc, d.cache);
    if (gas_checks) gas_check_full_model(su, modi, modc, d.cache, 1 + (su->seed & 7));
    /* The compiler's instance once more, reset: everything must repeat
     * exactly, so nothing of a run survives a reset (nor, through the pooled
     * windows the fresh instances came from, an earlier input). One input in
     * RESET_CHECK_ONE_IN. */
    cpvm_instance *again = d.rc.reuse;
    d.rc.reuse = NULL;
    if (again && compare && exec_sampled(su, SALT_RESET, RESET_CHECK_ONE_IN)) {
        struct exec_outcome o2;
        exec_run_reused(su, modc, &again, su->step_limit, false, &o2);
        exec_compare(su, &d.oc, &o2, false, "the compiler's instance, fresh vs reset");
        if (again && !cpvm_instance_integrity_ok(again))
            exec_fail(su, "sandbox integrity: a canary changed on the reset instance");
        exec_outcome_free(&o2);
    }
    cpvm_instance_free(again);
    exec_outcome_free(&d.oi);
    exec_outcome_free(&d.oc);
out:
    cpvm_module_free(modc);
    cpvm_module_free(modi);
    free(table);
    exec_setup_free(su);
    return 0;
}

void fuzz_describe(const uint8_t *data, size_t size, const struct describe_opts *o)
{
    static const char *const models[4] = {"naive", "dense table", "sparse table", "extreme table"};
    static const char *const full_by_bits[4] = {"full L2", "full L1", "full L2", "full L3"};
    uint8_t c = size > 0 ? data[0] : 0, seed = size > 1 ? data[1] : 0;
    bool full = ((c >> 4) & 3) == 1 && (seed & 0x80), by_opcode = ((c >> 4) & 3) == 2 && (seed & 0x80);
    char bits[64];
    snprintf(bits, sizeof bits, "%s, cost model %s", (c & 8) ? ", asynchronous gas" : "",
             full ? full_by_bits[(seed >> 5) & 3] : by_opcode ? "opcode table" : models[(c >> 4) & 3]);
    describe_exec_framing(data, size, bits, o);
    struct gen_config cfg = GEN_CONFIG_INTERP_EXEC;
    describe_generated(size > 2 ? data + 2 : NULL, size > 2 ? size - 2 : 0, &cfg, o);
}
