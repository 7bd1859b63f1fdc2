/* The full cost model (gas.md §5), one test per rule, each with its cycle count
 * worked out by hand from the rules (an instruction decoded in cycle c with
 * latency L, started in c + 1, is done at c + L, executed at c + L + 1 and retires
 * at c + L + 2 unless an older entry holds it; cost = cycles - 3, at least 1).
 * Plus the opcode table's serialized form and the model invariants. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "testutil.h"
#include "gas_ref.h"
#include "gas/full.h"
#include "gas/gas.h"
#include "jit/jit.h"
#include "program/program.h"
#include "text/text.h"

#define MAX_ROWS 48
#define MAX_COLS 160

struct timeline {
    char grid[MAX_ROWS][MAX_COLS];
    uint32_t rows;
};

static void record(void *ctx, uint32_t cycle, uint32_t insn, enum gas_event ev)
{
    struct timeline *t = ctx;
    assert_true(insn < MAX_ROWS && cycle < MAX_COLS);
    assert_int_equal(t->grid[insn][cycle], '.'); /* one event per instruction and cycle */
    t->grid[insn][cycle] = (char)ev;
    if (insn + 1 > t->rows) t->rows = insn + 1;
}

static cpvm_program *assemble(const char *src)
{
    uint8_t *raw = NULL;
    size_t len = 0;
    struct cpvm_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(text_assemble(src, strlen(src), CPVM_ISA_LATEST64, true, &raw, &len, &e), CPVM_OK);
    cpvm_program *p = NULL;
    assert_int_equal(cpvm_program_parse_raw(raw, len, CPVM_ISA_LATEST64, 0, &p, &e), CPVM_OK);
    free(raw);
    return p;
}

/* Cost of the block at `pc`, checked equal with and without fast-forward and
 * tracing; the total cycle count goes to *cycles. */
static uint32_t block_cost(const char *src, uint32_t pc, int8_t latency, uint32_t *cycles, struct timeline *tl)
{
    cpvm_program *p = assemble(src);
    uint32_t fast_cycles = 0, traced_cycles = 0;
    uint32_t fast = gas_full_block_cost(p, pc, latency, NULL, NULL, &fast_cycles);
    struct timeline local;
    struct timeline *t = tl ? tl : &local;
    memset(t->grid, '.', sizeof t->grid);
    t->rows = 0;
    uint32_t traced = gas_full_block_cost(p, pc, latency, record, t, &traced_cycles);
    assert_int_equal(fast, traced); /* fast-forward never changes the result */
    assert_int_equal(fast_cycles, traced_cycles);
    for (uint32_t r = 0; r < t->rows; r++) t->grid[r][traced_cycles] = 0;
    cpvm_program_free(p);
    if (cycles) *cycles = fast_cycles;
    return fast;
}

static void expect_timeline(const struct timeline *t, const char *const *rows, uint32_t n)
{
    assert_int_equal(t->rows, n);
    for (uint32_t r = 0; r < n; r++) assert_string_equal(t->grid[r], rows[r]);
}

/* No dependencies: both adds start together; 2 + 1 + 1 decode slots fit one cycle. */
static void test_parallel_independent(void **state)
{
    (void)state;
    struct timeline t;
    uint32_t cycles;
    assert_int_equal(block_cost("a0 = a1 + a2\na1 = a1 + a2\ntrap\n", 0, GAS_CACHE_L1, &cycles, &t), 2);
    assert_int_equal(cycles, 5);
    const char *rows[] = {"DeER.", "DeER.", "DeeER"};
    expect_timeline(&t, rows, 3);
}

/* Decode limit: four slots a cycle. load_imm64 takes 2, so two per cycle; the
 * trap is decoded in cycle 2, done at 4, retired at 6: 7 cycles, cost 4. */
static void test_decode_limit(void **state)
{
    (void)state;
    struct timeline t;
    uint32_t cycles;
    const char *src = "a0 = 0x12345678aabbccdd\na1 = 0x12345678aabbccdd\n"
                      "a2 = 0x12345678aabbccdd\na3 = 0x12345678aabbccdd\ntrap\n";
    assert_int_equal(block_cost(src, 0, GAS_CACHE_L1, &cycles, &t), 4);
    assert_int_equal(cycles, 7);
    const char *rows[] = {"DeER...", "DeER...", ".DeER..", ".DeER..", "..DeeER"};
    expect_timeline(&t, rows, 5);
}

/* A dependency chain: the second add waits a cycle for the first ('='). Its two
 * 2-slot adds fill cycle 0, so the trap decodes in cycle 1: 6 cycles, cost 3. */
static void test_dependency_chain(void **state)
{
    (void)state;
    struct timeline t;
    uint32_t cycles;
    assert_int_equal(block_cost("a0 = a1 + a2\na1 = a0 + a2\ntrap\n", 0, GAS_CACHE_L1, &cycles, &t), 3);
    assert_int_equal(cycles, 6);
    const char *rows[] = {"DeER..", "D=eER.", ".DeeER"};
    expect_timeline(&t, rows, 3);
    /* four chained adds (1 slot each) start at 1, 2, 3, 4: the last retires at 6,
     * cost 4; four independent ones all start at 1 and the trap (decoded at 1)
     * retires last at 5: cost 3 */
    assert_int_equal(block_cost("a0 = a0 + a1\na0 = a0 + a1\na0 = a0 + a1\na0 = a0 + a1\ntrap\n", 0, GAS_CACHE_L1,
                                NULL, NULL),
                     4);
    assert_int_equal(block_cost("a0 = a0 + a1\na2 = a2 + a1\na3 = a3 + a1\na4 = a4 + a1\ntrap\n", 0, GAS_CACHE_L1,
                                NULL, NULL),
                     3);
}

/* move_reg is eliminated: one decode slot, no ROB entry, and its reader depends
 * on the moved value's producer (the load_imm), finishing like the chain above. */
static void test_move_elimination(void **state)
{
    (void)state;
    struct timeline t;
    uint32_t cycles;
    assert_int_equal(block_cost("s0 = 1\na0 = s0\na1 = a0 + 1\ntrap\n", 0, GAS_CACHE_L1, &cycles, &t), 3);
    assert_int_equal(cycles, 6);
    const char *rows[] = {"DeER..", "D.....", "D=eER.", ".DeeER"};
    expect_timeline(&t, rows, 4);
    /* a move of a ready register leaves nothing to wait for */
    assert_int_equal(block_cost("a0 = s0\na1 = a0 + 1\ntrap\n", 0, GAS_CACHE_L1, NULL, NULL), 2);
}

/* MUL limit, one multiplier: the second (independent) mul starts when the first
 * is done at cycle 3, so it runs 4..6, executed at 7, retired at 8: cost 6. */
static void test_mul_limit(void **state)
{
    (void)state;
    struct timeline t;
    uint32_t cycles;
    assert_int_equal(block_cost("a0 = a1 * a2\na1 = a3 * a4\ntrap\n", 0, GAS_CACHE_L1, &cycles, &t), 6);
    assert_int_equal(cycles, 9);
    const char *rows[] = {"DeeeER...", "D===eeeER", ".DeeE---R"};
    expect_timeline(&t, rows, 3);
}

/* ALU limit, four: ctz holds two ALU slots for 2 cycles, so of four ready ones
 * two start at cycle 1 and two at 3 (done at 4, retired at 6): cost 4 (3 if
 * all four could start together). */
static void test_alu_limit(void **state)
{
    (void)state;
    uint32_t cycles;
    const char *src = "a0 = ctz a4\na1 = ctz a4\na2 = ctz a4\na3 = ctz a4\ntrap\n";
    assert_int_equal(block_cost(src, 0, GAS_CACHE_L1, &cycles, NULL), 4);
    assert_int_equal(cycles, 7);
}

/* DIV limit, one divider, latency 60: one div per cycle to decode (4 slots); the
 * second starts at 61 when the first frees the divider, done at 120, retired at
 * 122: 123 cycles, cost 120. */
static void test_div_limit(void **state)
{
    (void)state;
    uint32_t cycles;
    assert_int_equal(block_cost("a0 = a1 /u a2\na3 = a4 /u a5\ntrap\n", 0, GAS_CACHE_L1, &cycles, NULL), 120);
    assert_int_equal(cycles, 123);
}

/* LOAD limit (4, each load also holding an ALU slot): four L1 loads start at 1
 * and free their slots at 4; the fifth, decoded in cycle 1, starts at 5, done
 * at 8, retired at 10: cost 8. With the L3 latency (37) the fifth starts at 38,
 * is done at 74, retired at 76: cost 74. */
static void test_load_limit(void **state)
{
    (void)state;
    const char *src = "a0 = u64 [0x1000]\na1 = u64 [0x1008]\na2 = u64 [0x1010]\na3 = u64 [0x1018]\n"
                      "a4 = u64 [0x1020]\ntrap\n";
    uint32_t cycles;
    assert_int_equal(block_cost(src, 0, GAS_CACHE_L1, &cycles, NULL), 8);
    assert_int_equal(cycles, 11);
    assert_int_equal(block_cost(src, 0, GAS_CACHE_L3, NULL, NULL), 74);
}

/* STORE limit (4, latency 25 whatever the cache): the fifth store starts at 26
 * when the first four are done at 25; done at 50, retired at 52: cost 50. */
static void test_store_limit(void **state)
{
    (void)state;
    const char *src = "u64 [0x1000] = a0\nu64 [0x1008] = a0\nu64 [0x1010] = a0\nu64 [0x1018] = a0\n"
                      "u64 [0x1020] = a0\ntrap\n";
    uint32_t cycles;
    assert_int_equal(block_cost(src, 0, GAS_CACHE_L1, &cycles, NULL), 50);
    assert_int_equal(cycles, 53);
    assert_int_equal(block_cost(src, 0, GAS_CACHE_L3, NULL, NULL), 50);
}

/* ROB full: 33 `unlikely` (latency 40, no units), four decoded a cycle. Group k
 * (cycle k) retires at k + 42; the 33rd waits for a free entry until group 0
 * retires at 42, decodes at 43 and retires at 85: 86 cycles, cost 83 (48 with
 * an unbounded ROB). */
static void test_rob_full(void **state)
{
    (void)state;
    char src[33 * 9 + 8] = "";
    for (int i = 0; i < 33; i++) strcat(src, "unlikely\n");
    strcat(src, "trap\n");
    uint32_t cycles;
    assert_int_equal(block_cost(src, 0, GAS_CACHE_L1, &cycles, NULL), 83);
    assert_int_equal(cycles, 86);
    /* 31 and the trap fit: the last group (cycle 7) retires at 49, cost 47 */
    char src31[31 * 9 + 8] = "";
    for (int i = 0; i < 31; i++) strcat(src31, "unlikely\n");
    strcat(src31, "trap\n");
    assert_int_equal(block_cost(src31, 0, GAS_CACHE_L1, NULL, NULL), 47);
}

/* Branch rule: latency 1 when the next instruction or the target is trap or
 * unlikely or out of the code, else 20 (decoded at 0: retired at L + 2). */
static void test_branch_rule(void **state)
{
    (void)state;
    /* next = add, target = add: mispredicted, 23 cycles, cost 20 */
    const char *miss = "pub @main:\njump @t if a0 == a1\na0 = a1 + a2\ntrap\n@t:\na2 = a0 + a1\ntrap\n";
    uint32_t cycles;
    assert_int_equal(block_cost(miss, 0, GAS_CACHE_L2, &cycles, NULL), 20);
    assert_int_equal(cycles, 23);
    /* next = trap: predicted, 4 cycles, cost 1 (also the minimum) */
    const char *next_trap = "pub @main:\njump @t if a0 == a1\ntrap\n@t:\na2 = a0 + a1\ntrap\n";
    assert_int_equal(block_cost(next_trap, 0, GAS_CACHE_L2, &cycles, NULL), 1);
    assert_int_equal(cycles, 4);
    /* target = unlikely: predicted */
    const char *target_unlikely = "pub @main:\njump @t if a0 == a1\na0 = a1 + a2\ntrap\n@t:\nunlikely\ntrap\n";
    assert_int_equal(block_cost(target_unlikely, 0, GAS_CACHE_L2, NULL, NULL), 1);
    /* the branch is the last instruction: the next one is out of the code */
    assert_int_equal(block_cost("pub @main:\njump @main if a0 != 0\n", 0, GAS_CACHE_L2, NULL, NULL), 1);
    /* a register-immediate branch follows the same rule */
    assert_int_equal(block_cost("pub @main:\njump @t if a0 == 5\na0 = a1 + a2\ntrap\n@t:\na2 = a0 + a1\ntrap\n", 0,
                                GAS_CACHE_L2, NULL, NULL),
                     20);
}

/* Terminators: trap/fallthrough latency 2 (5 cycles), jump 15, jump_indirect 22. */
static void test_terminators(void **state)
{
    (void)state;
    assert_int_equal(block_cost("fallthrough\ntrap\n", 0, GAS_CACHE_L2, NULL, NULL), 2);
    assert_int_equal(block_cost("pub @main:\njump @main\n", 0, GAS_CACHE_L2, NULL, NULL), 15);
    assert_int_equal(block_cost("jump [a0 + 0]\n", 0, GAS_CACHE_L2, NULL, NULL), 22);
    /* no terminator at the end: the implicit trap closes the block */
    assert_int_equal(block_cost("a0 = a1 + a2\n", 0, GAS_CACHE_L2, NULL, NULL), 2);
}

/* The block's cost depends on its bytes, not on where the program sits: the
 * same block copied into a second program at another offset costs the same. */
static void test_position_independent(void **state)
{
    (void)state;
    const char *body = "a0 = u64 [0x1000]\na1 = a0 * a2\nu64 [0x2000] = a1\njump @t if a1 == a3\n"
                       "a4 = a1 + a2\ntrap\n@t:\na5 = a1 + a2\ntrap\n";
    char shifted[512];
    snprintf(shifted, sizeof shifted, "pub @main:\na0 = 1\na1 = 2\nfallthrough\n@b:\n%s", body);
    char plain[512];
    snprintf(plain, sizeof plain, "pub @main:\n%s", body);
    uint32_t base = block_cost(plain, 0, GAS_CACHE_L2, NULL, NULL);
    cpvm_program *p = assemble(shifted);
    uint32_t start = 0;
    for (uint32_t pc = 1; pc < p->code_len; pc++)
        if (dec_is_block_start(p, pc)) {
            start = pc;
            break;
        }
    assert_true(start > 0);
    assert_int_equal(gas_full_block_cost(p, start, GAS_CACHE_L2, NULL, NULL, NULL), base);
    cpvm_program_free(p);
    assert_true(base >= 1);
}

static void ignore_event(void *ctx, uint32_t cycle, uint32_t insn, enum gas_event ev)
{
    (void)ctx;
    (void)cycle;
    (void)insn;
    (void)ev;
}

/* Blocks of every shape (short, resource-bound, past the ROB, mostly moves)
 * cost the same fed at once through one model reused block after block (as the
 * compiler does), one instruction at a time into a fresh model, and traced. */
static void test_block_at_once(void **state)
{
    (void)state;
    static char src[16384];
    size_t len = 0;
#define PUT(...) len += (size_t)snprintf(src + len, sizeof src - len, __VA_ARGS__)
    PUT("pub @main:\na0 = a1 + a2\ntrap\n");
    for (int i = 0; i < 9; i++) PUT("a%d = u32 [a%d + 8]\nu32 [a%d + 16] = a%d\n", i % 6, (i + 1) % 6, i % 5, i % 6);
    PUT("jump @main if a0 == a1\n");
    for (int i = 0; i < 40; i++) PUT(i % 3 ? "a%d = a%d + a2\n" : "a%d = u64 [a%d + 0]\n", i % 6, (i + 3) % 6);
    PUT("trap\n");
    for (int i = 0; i < 70; i++) PUT("a%d = a%d\n", i % 4, (i + 1) % 4);
    PUT("a2 = a0 + a3\ntrap\n");
    for (int i = 0; i < 12; i++) PUT(i % 2 ? "a%d = a%d * a%d\n" : "a%d = a%d /u a%d\n", i % 5, (i + 1) % 5, (i + 2) % 5);
    PUT("trap\na0 = 1\na1 = 2\na2 = 3\na3 = 4\na4 = 5\na5 = 6\na0 = a0 + a1\ntrap\n");
#undef PUT
    assert_true(len < sizeof src - 1);
    cpvm_program *p = assemble(src);
    struct gas_sim *reused = malloc(sizeof *reused);
    assert_non_null(reused);
    gas_sim_init(reused, p, GAS_CACHE_L2);
    uint32_t blocks = 0;
    for (int round = 0; round < 2; round++)
        for (uint32_t pc = 0; pc < p->code_len; pc++) {
            if (!dec_is_block_start(p, pc)) continue;
            struct dec_insn in[256];
            size_t n = 0;
            struct dec_block_iter it = dec_block_begin(p, pc);
            while (n < 256 && dec_block_next(&it, &in[n])) n++;
            gas_sim_restart(reused);
            gas_sim_feed_all(reused, in, n);
            assert_true(gas_sim_done(reused));
            uint32_t fresh = gas_full_block_cost(p, pc, GAS_CACHE_L2, NULL, NULL, NULL);
            uint32_t traced = gas_full_block_cost(p, pc, GAS_CACHE_L2, ignore_event, NULL, NULL);
            assert_int_equal(gas_sim_cost(reused), fresh);
            assert_int_equal(fresh, traced);
            blocks += round == 0;
        }
    assert_true(blocks >= 6);
    free(reused);
    cpvm_program_free(p);
}

/* ---- Against the plain model (fuzz/harness/gas_ref.c: the reference's
 * simulator with its own cost table and no shortcut but its fast-forward): every block of real
 * programs, at every cache latency, through each way the library computes a
 * cost (one instruction at a time, a whole block into a model reused block
 * after block as the compiler does, and traced). */
static uint32_t compare_with_reference(const cpvm_program *p, const char *name)
{
    static const int8_t latencies[] = {GAS_CACHE_L1, GAS_CACHE_L2, GAS_CACHE_L3};
    struct gas_sim *reused = malloc(sizeof *reused);
    size_t cap = 64;
    struct dec_insn *in = malloc(cap * sizeof *in);
    assert_true(reused && in);
    uint32_t blocks = 0;
    for (unsigned l = 0; l < 3; l++) {
        gas_sim_init(reused, p, latencies[l]);
        for (uint32_t pc = 0; pc < p->code_len; pc++) {
            if (!dec_is_block_start(p, pc)) continue;
            uint32_t want_cycles = 0, cycles = 0;
            uint32_t want = gas_ref_block_cost(p, pc, latencies[l], &want_cycles);
            uint32_t got = gas_full_block_cost(p, pc, latencies[l], NULL, NULL, &cycles);
            if (got != want || cycles != want_cycles)
                fail_msg("%s: block %u, load latency %d: %u (%u cycles), the plain model %u (%u)", name, pc,
                         latencies[l], got, cycles, want, want_cycles);
            size_t n = 0;
            struct dec_block_iter it = dec_block_begin(p, pc);
            for (;;) {
                if (n == cap) {
                    cap *= 2;
                    in = realloc(in, cap * sizeof *in);
                    assert_non_null(in);
                }
                if (!dec_block_next(&it, &in[n])) break;
                n++;
            }
            gas_sim_restart(reused);
            gas_sim_feed_all(reused, in, n);
            assert_true(gas_sim_done(reused));
            if (gas_sim_cost(reused) != want)
                fail_msg("%s: block %u, load latency %d: %u fed at once, the plain model %u", name, pc, latencies[l],
                         gas_sim_cost(reused), want);
            if (gas_full_block_cost(p, pc, latencies[l], ignore_event, NULL, NULL) != want)
                fail_msg("%s: block %u, load latency %d: traced differs from the plain model", name, pc,
                         latencies[l]);
            blocks++;
        }
    }
    free(in);
    free(reused);
    return blocks;
}

/* The "program" array of a JSON test vector (malloc'd); NULL if absent. */
static uint8_t *vector_program(const char *path, size_t *len)
{
    size_t tl = 0;
    uint8_t *text = tu_read_file(path, &tl);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse((const char *)text);
    free(text);
    const cJSON *prog = cJSON_GetObjectItemCaseSensitive(j, "program");
    uint8_t *out = NULL;
    if (cJSON_IsArray(prog)) {
        int n = cJSON_GetArraySize(prog);
        out = malloc((size_t)n + 1);
        assert_non_null(out);
        for (int i = 0; i < n; i++) out[i] = (uint8_t)cJSON_GetArrayItem(prog, i)->valueint;
        *len = (size_t)n;
    }
    cJSON_Delete(j);
    return out;
}

static void test_reference_model_vectors(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/polkavm-0.35", tu_conformance_dir());
    char **names = tu_list_dir(dir, ".json");
    assert_non_null(names);
    uint32_t programs = 0, blocks = 0;
    for (char **n = names; *n; n++) {
        size_t len = 0;
        uint8_t *bytes = vector_program(*n, &len);
        if (!bytes) fail_msg("%s: no program", *n);
        cpvm_program *p = NULL;
        struct cpvm_error e;
        memset(&e, 0, sizeof e);
        assert_int_equal(cpvm_program_parse_raw(bytes, len, CPVM_ISA_JAM_V1, 0, &p, &e), CPVM_OK);
        blocks += compare_with_reference(p, *n);
        cpvm_program_free(p);
        free(bytes);
        programs++;
    }
    tu_free_list(names);
    assert_int_equal(programs, 257);
    assert_true(blocks >= 3 * 369);
}

/* doom.polkavm and quake.polkavm ($CPVM_BENCH_DIR, else ../shared/bench beside
 * the source tree): 34,842 and 19,375 blocks of real compiler output. */
static void test_reference_model_bench(void **state)
{
    (void)state;
    const char *env = getenv("CPVM_BENCH_DIR");
    char dir[4096];
    if (env && *env) snprintf(dir, sizeof dir, "%s", env);
    else snprintf(dir, sizeof dir, "%s/../shared/bench", tu_source_dir());
    static const char *const programs[] = {"doom.polkavm", "quake.polkavm"};
    for (unsigned k = 0; k < 2; k++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, programs[k]);
        size_t len = 0;
        uint8_t *bytes = tu_read_file(path, &len);
        if (!bytes) {
            print_message("skipped: %s not found (set CPVM_BENCH_DIR)\n", path);
            continue;
        }
        cpvm_program *p = NULL;
        struct cpvm_error e;
        memset(&e, 0, sizeof e);
        assert_int_equal(cpvm_program_parse(bytes, len, 0, &p, &e), CPVM_OK);
        uint32_t blocks = compare_with_reference(p, programs[k]);
        print_message("%s: %u blocks x cache models agree with the plain model\n", programs[k], blocks);
        assert_true(blocks > 3 * 10000);
        cpvm_program_free(p);
        free(bytes);
    }
}

/* The opcode table: version 2, fields in the reference's order, `invalid` last,
 * distinct from `trap`. */
static void test_table_serialized_form(void **state)
{
    (void)state;
    uint8_t blob[CPVM_COST_TABLE_SIZE + 4];
    memset(blob, 0, sizeof blob);
    blob[0] = 2;
    for (unsigned i = 0; i < OP_COUNT + 1; i++) blob[4 + 4 * i] = (uint8_t)(i + 1);
    uint32_t costs[OP_COUNT + 1];
    struct cpvm_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(gas_table_parse(blob, CPVM_COST_TABLE_SIZE, costs, &e), CPVM_OK);
    assert_int_equal(costs[OP_add_32], 1);               /* first field */
    assert_int_equal(costs[OP_add_64], 2);
    assert_int_equal(costs[OP_zero_extend_16], OP_COUNT); /* last named field */
    assert_int_equal(costs[OP_invalid], OP_COUNT + 1);
    assert_int_equal(costs[OP_trap], 136);                /* 136th in the order */
    assert_int_equal(costs[OP_unlikely], 137);
    /* the reference's reader asks for one word more; tolerated */
    assert_int_equal(gas_table_parse(blob, CPVM_COST_TABLE_SIZE + 4, costs, &e), CPVM_OK);
    assert_int_equal(gas_table_parse(blob, CPVM_COST_TABLE_SIZE - 4, costs, &e), CPVM_E_INVALID_ARGUMENT);
    blob[0] = 1;
    assert_int_equal(gas_table_parse(blob, CPVM_COST_TABLE_SIZE, costs, &e), CPVM_E_INVALID_ARGUMENT);
}

/* The table through a module: block cost = sum of its instructions' entries, an
 * unknown opcode charged its `invalid` entry on both backends. */
static void test_table_module(void **state)
{
    (void)state;
    uint8_t blob[CPVM_COST_TABLE_SIZE];
    memset(blob, 0, sizeof blob);
    blob[0] = 2;
    for (unsigned i = 0; i < OP_COUNT + 1; i++) blob[4 + 4 * i] = 10;
    blob[4 + 4 * 0] = 3;          /* add_32 */
    blob[4 + 4 * 135] = 7;        /* trap */
    blob[4 + 4 * OP_COUNT] = 100; /* invalid */
    cpvm_program *p = assemble("pub @main:\ni32 a0 = a1 + a2\ntrap\n");
    for (int b = 0; b < 2; b++) {
        struct cpvm_module_config cfg;
        cpvm_module_config_default(&cfg);
        cfg.backend = b ? CPVM_BACKEND_COMPILER : CPVM_BACKEND_INTERPRETER;
        cfg.sandbox = CPVM_SANDBOX_NONE;
        cfg.gas_metering = true;
        cfg.cost_model.kind = CPVM_COST_TABLE;
        cfg.cost_model.table = blob;
        cfg.cost_model.table_len = sizeof blob;
        cpvm_module *m = NULL;
        struct cpvm_error e;
        memset(&e, 0, sizeof e);
        assert_int_equal(cpvm_module_new(p, &cfg, &m, &e), CPVM_OK);
        uint32_t cost = 0;
        assert_true(cpvm_module_block_cost(m, 0, &cost));
        assert_int_equal(cost, 3 + 7);
        cpvm_module_free(m);
    }
    cpvm_program_free(p);
    /* a lone unknown opcode: its block costs the invalid entry */
    static const char *const bad[] = {"ff"};
    size_t len = 0;
    uint8_t *raw = tu_raw_program(bad, 1, NULL, 0, &len);
    cpvm_program *q = NULL;
    struct cpvm_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(cpvm_program_parse_raw(raw, len, CPVM_ISA_LATEST64, 0, &q, &e), CPVM_OK);
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.gas_metering = true;
    cfg.cost_model.kind = CPVM_COST_TABLE;
    cfg.cost_model.table = blob;
    cfg.cost_model.table_len = sizeof blob;
    cpvm_module *m = NULL;
    assert_int_equal(cpvm_module_new(q, &cfg, &m, &e), CPVM_OK);
    uint32_t cost = 0;
    assert_true(cpvm_module_block_cost(m, 0, &cost));
    assert_int_equal(cost, 100);
    cpvm_module_free(m);
    cpvm_program_free(q);
    free(raw);
}

static void test_every_instruction_costed(void **state)
{
    (void)state;
    assert_true(gas_full_table_complete());
}

/* Names accepted by --cost-model, and a bad table rejected at module creation. */
static void test_model_names(void **state)
{
    (void)state;
    struct cpvm_cost_model m;
    memset(&m, 0, sizeof m);
    assert_true(cpvm_cost_model_from_name("full", &m));
    assert_int_equal(m.kind, CPVM_COST_FULL);
    assert_int_equal(m.cache, CPVM_CACHE_L2);
    assert_true(cpvm_cost_model_from_name("full:l3", &m));
    assert_int_equal(m.cache, CPVM_CACHE_L3);
    assert_true(cpvm_cost_model_from_name("naive", &m));
    assert_int_equal(m.kind, CPVM_COST_NAIVE);
    assert_false(cpvm_cost_model_from_name("full:l4", &m));
    cpvm_program *p = assemble("trap\n");
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.cost_model.kind = CPVM_COST_TABLE;
    cfg.cost_model.table = (const uint8_t *)"short";
    cfg.cost_model.table_len = 5;
    cpvm_module *mod = NULL;
    struct cpvm_error e;
    memset(&e, 0, sizeof e);
    assert_int_equal(cpvm_module_new(p, &cfg, &mod, &e), CPVM_E_INVALID_ARGUMENT);
    assert_null(mod);
    cpvm_program_free(p);
}

/* The compiler costs blocks lazily under the full model: a block first run at
 * the out-of-gas boundary, a block entered mid-way, a block another instance
 * (another worker) costed first: the same stops, pcs, gas and registers as the
 * interpreter, on both compiler modes. */
struct lazy_run {
    cpvm_exit exit;
    uint32_t pc, next;
    int64_t gas;
    uint64_t a0;
};

static struct lazy_run lazy_step(cpvm_instance *in, int64_t gas)
{
    struct cpvm_interrupt out;
    if (gas >= 0) cpvm_instance_set_gas(in, gas);
    assert_int_equal(cpvm_instance_run(in, &out), CPVM_OK);
    struct lazy_run r = {.exit = out.exit, .pc = out.pc, .gas = cpvm_instance_gas(in),
                         .a0 = cpvm_instance_reg(in, CPVM_REG_A0), .next = UINT32_MAX};
    cpvm_instance_next_pc(in, &r.next);
    return r;
}

static void lazy_same(struct lazy_run x, struct lazy_run y)
{
    assert_int_equal(x.exit, y.exit);
    assert_int_equal(x.pc, y.pc);
    assert_int_equal(x.next, y.next);
    assert_int_equal(x.gas, y.gas);
    assert_int_equal(x.a0, y.a0);
}

static void test_lazy_costs(void **state)
{
    (void)state;
    cpvm_program *p = assemble("pub @main:\n a0 = 1\n a1 = 2\n jump @b\n@b:\n a0 = a0 + a1\n a1 = a1 * a1\n"
                               " a0 = a0 + a1\n ret\n");
    static const struct { cpvm_backend backend; cpvm_sandbox sandbox; } kinds[] = {
        {CPVM_BACKEND_INTERPRETER, CPVM_SANDBOX_NONE},
        {CPVM_BACKEND_COMPILER, CPVM_SANDBOX_NONE},
        {CPVM_BACKEND_COMPILER, CPVM_SANDBOX_ZYGOTE},
    };
    struct lazy_run want[8];
    uint32_t ca = 0, cb = 0, b = 0, mid = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        struct cpvm_module_config cfg;
        cpvm_module_config_default(&cfg);
        cfg.backend = kinds[k].backend;
        cfg.sandbox = kinds[k].sandbox;
        cfg.gas_metering = true;
        assert_true(cpvm_cost_model_from_name("full:l2", &cfg.cost_model));
        cpvm_module *m = NULL;
        struct cpvm_error e;
        memset(&e, 0, sizeof e);
        assert_int_equal(cpvm_module_new(p, &cfg, &m, &e), CPVM_OK);
        const struct jit_code *jc = m->jit;
        if (k == 0) { /* the interpreter: the costs and the block boundaries */
            assert_true(cpvm_module_block_cost(m, 0, &ca));
            struct dec_insn d;
            for (uint32_t pc = 0; pc < p->code_len; pc += d.len) {
                dec_decode(p, pc, &d);
                if (d.op == OP_jump) b = d.target;
            }
            assert_true(cpvm_module_block_cost(m, b, &cb));
            dec_decode(p, b, &d);
            mid = b + d.len;
            assert_true(ca >= 1 && cb >= 1);
        } else if (kinds[k].backend == CPVM_BACKEND_COMPILER && jc) {
            assert_non_null(jc->costs);
            assert_int_equal(jit_blocks_costed(jc), 0); /* module creation costs nothing */
        }
        cpvm_instance *in = NULL, *other = NULL;
        assert_int_equal(cpvm_instance_new(m, &in, &e), CPVM_OK);
        assert_int_equal(cpvm_instance_new(m, &other, &e), CPVM_OK); /* a second worker, its own table copy */
        struct lazy_run got[8];
        size_t n = 0;
        /* the entry block one short: out of gas at 0, nothing charged */
        cpvm_instance_prepare_call(in, 0);
        got[n++] = lazy_step(in, ca - 1);
        /* block b first runs with one gas too few: out of gas at its start */
        got[n++] = lazy_step(in, ca + cb - 1);
        if (jc) assert_int_equal(jit_blocks_costed(jc), 2);
        got[n++] = lazy_step(in, cb); /* exactly enough: halts with 0 */
        /* the other instance: both blocks known to the module, not to its worker's copy */
        cpvm_instance_prepare_call(other, 0);
        got[n++] = lazy_step(other, ca + cb);
        cpvm_instance_prepare_call(other, 0);
        got[n++] = lazy_step(other, ca + cb - 1);
        cpvm_instance_free(other);
        cpvm_instance_free(in);
        /* a fresh module entered mid-block first: pays for the whole block */
        cpvm_module_free(m);
        assert_int_equal(cpvm_module_new(p, &cfg, &m, &e), CPVM_OK);
        assert_int_equal(cpvm_instance_new(m, &in, &e), CPVM_OK);
        cpvm_instance_prepare_call(in, 0);
        cpvm_instance_set_next_pc(in, mid);
        got[n++] = lazy_step(in, cb - 1);
        got[n++] = lazy_step(in, cb + 5);
        if (m->jit) assert_int_equal(jit_blocks_costed(m->jit), 1);
        cpvm_instance_free(in);
        cpvm_module_free(m);
        if (k == 0) {
            memcpy(want, got, sizeof got);
            assert_int_equal(want[0].exit, CPVM_EXIT_OUT_OF_GAS);
            assert_int_equal(want[0].gas, ca - 1);
            assert_int_equal(want[1].exit, CPVM_EXIT_OUT_OF_GAS);
            assert_int_equal(want[1].pc, b);
            assert_int_equal(want[1].next, b);
            assert_int_equal(want[1].gas, cb - 1);
            assert_int_equal(want[2].exit, CPVM_EXIT_HALT);
            assert_int_equal(want[2].gas, 0);
            assert_int_equal(want[2].a0, 1 + 2 + 4);
            assert_int_equal(want[5].exit, CPVM_EXIT_OUT_OF_GAS);
            assert_int_equal(want[6].gas, 5);
        } else {
            for (size_t i = 0; i < n; i++) lazy_same(want[i], got[i]);
        }
    }
    cpvm_program_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_independent),
        cmocka_unit_test(test_decode_limit),
        cmocka_unit_test(test_dependency_chain),
        cmocka_unit_test(test_move_elimination),
        cmocka_unit_test(test_mul_limit),
        cmocka_unit_test(test_alu_limit),
        cmocka_unit_test(test_div_limit),
        cmocka_unit_test(test_load_limit),
        cmocka_unit_test(test_store_limit),
        cmocka_unit_test(test_rob_full),
        cmocka_unit_test(test_branch_rule),
        cmocka_unit_test(test_terminators),
        cmocka_unit_test(test_position_independent),
        cmocka_unit_test(test_block_at_once),
        cmocka_unit_test(test_reference_model_vectors),
        cmocka_unit_test(test_reference_model_bench),
        cmocka_unit_test(test_table_serialized_form),
        cmocka_unit_test(test_table_module),
        cmocka_unit_test(test_model_names),
        cmocka_unit_test(test_every_instruction_costed),
        cmocka_unit_test(test_lazy_costs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
