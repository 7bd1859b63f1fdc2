/* The decoder: operands of every class, the bitmask corner cases of isa.md §2
 * and §10, encode/decode round trips, and JamV1 validation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decode.h"
#include "testutil.h"

/* A program from raw code bytes and the offsets that start instructions. */
static cpvm_program *prog(cpvm_isa isa, const uint8_t *code, uint32_t n, const uint32_t *starts, size_t ns)
{
    uint8_t raw[512] = {0};
    size_t at = 0;
    raw[at++] = 0; /* no jump table */
    raw[at++] = 0;
    raw[at++] = (uint8_t)n; /* tests keep n < 128 */
    memcpy(raw + at, code, n);
    at += n;
    for (size_t i = 0; i < ns; i++) raw[at + starts[i] / 8] |= (uint8_t)(1u << (starts[i] % 8));
    at += (n + 7) / 8;
    cpvm_program *p = NULL;
    struct cpvm_error e;
    if (cpvm_program_parse_raw(raw, at, isa, 0, &p, &e)) fail_msg("parse: %s", e.detail);
    return p;
}

static void test_appendix_examples(void **state)
{
    (void)state;
    /* A.2: load_imm, branch_eq_imm, trap, load_imm64 */
    static const uint8_t code[] = {0x33, 0x07, 0xd2, 0x04, 0x51, 0x27, 0xd2, 0x04, 0x06, 0x00,
                                   0x14, 0x07, 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0};
    uint32_t starts[] = {0, 4, 9, 10};
    cpvm_program *p = prog(CPVM_ISA_LATEST64, code, sizeof code, starts, 4);
    struct dec_insn d;
    dec_decode(p, 0, &d);
    assert_int_equal(d.op, OP_load_imm);
    assert_int_equal(d.a, 7);
    assert_int_equal(d.i1, 1234);
    assert_int_equal(d.len, 4);
    dec_decode(p, 4, &d);
    assert_int_equal(d.op, OP_branch_eq_imm);
    assert_int_equal(d.i1, 1234);
    assert_int_equal(d.target, 10);
    assert_int_equal(d.len, 5);
    assert_true(dec_next_is_proper(p, 4, d.len));
    dec_decode(p, 10, &d);
    assert_int_equal(d.op, OP_load_imm64);
    assert_int_equal(d.imm64, 0xdeadbeef);
    assert_int_equal(d.len, 10);
    assert_false(dec_next_is_proper(p, 10, d.len)); /* last: implicit trap at 20 */
    assert_true(dec_valid_target(p, 10));   /* after trap */
    assert_true(dec_valid_target(p, 9));    /* after the branch */
    assert_false(dec_valid_target(p, 4));   /* after load_imm */
    assert_true(dec_valid_target(p, 0));
    assert_false(dec_valid_target(p, 20));  /* end of code */
    assert_false(dec_valid_target(p, 3));   /* not a start */
    cpvm_program_free(p);
}

static void test_immediates_and_registers(void **state)
{
    (void)state;
    /* load_imm r15 (clamps to a5), one byte 0x80 = -128 */
    static const uint8_t c1[] = {0x33, 0xff, 0x80, 0x33, 0x0d, 0x80, 0x00, 0x00};
    uint32_t s1[] = {0, 3, 7};
    cpvm_program *p = prog(CPVM_ISA_LATEST64, c1, sizeof c1, s1, 3);
    struct dec_insn d;
    dec_decode(p, 0, &d);
    assert_int_equal(d.a, 12);
    assert_int_equal(d.i1, -128);
    dec_decode(p, 3, &d);
    assert_int_equal(d.a, 12);
    assert_int_equal(d.i1, 128); /* 80 00: two bytes, positive */
    cpvm_program_free(p);

    /* R_I_O with a length field of 7 (means 4) and no room: the first immediate
     * reads past its instruction, into the next one (isa.md §3.2). */
    static const uint8_t c2[] = {0x51, 0x70, 0x11, 0x22, 0x33, 0x44, 0x00};
    uint32_t s2[] = {0, 2, 3, 4, 5, 6};
    p = prog(CPVM_ISA_LATEST64, c2, sizeof c2, s2, 6);
    dec_decode(p, 0, &d);
    assert_int_equal(d.op, OP_branch_eq_imm);
    assert_int_equal(d.len, 2);
    assert_int_equal((uint32_t)d.i1, 0x44332211u);
    assert_int_equal(d.target, 0); /* second immediate gets no bytes */
    cpvm_program_free(p);

    /* load_imm64 always reads 8 bytes, zeros past the end of the code */
    static const uint8_t c3[] = {0x14, 0x07, 0x01, 0x02};
    uint32_t s3[] = {0};
    p = prog(CPVM_ISA_LATEST64, c3, sizeof c3, s3, 1);
    dec_decode(p, 0, &d);
    assert_int_equal(d.imm64, 0x0201);
    assert_int_equal(d.len, 4);
    cpvm_program_free(p);

    /* RRR reads b1/b2 even in a 1-byte instruction (from the next one) */
    static const uint8_t c4[] = {0xc8, 0x87, 0x09};
    uint32_t s4[] = {0, 1, 2};
    p = prog(CPVM_ISA_LATEST64, c4, sizeof c4, s4, 3);
    dec_decode(p, 0, &d);
    assert_int_equal(d.len, 1);
    assert_int_equal(d.a, 7);
    assert_int_equal(d.b, 8);
    assert_int_equal(d.d, 9);
    cpvm_program_free(p);
}

/* isa.md §2 quirk: add_64 at 7, next start at 32 (exactly 24 zero bits between). */
static void test_slow_scanner_quirk(void **state)
{
    (void)state;
    uint8_t code[40] = {0};
    code[7] = 200; /* add_64 */
    uint32_t starts[] = {0, 7, 32};
    cpvm_program *p = prog(CPVM_ISA_LATEST64, code, 40, starts, 3);
    struct dec_insn d;
    dec_decode(p, 7, &d);
    assert_int_equal(d.len, 25);
    assert_true(dec_next_is_proper(p, 7, d.len)); /* n = 40: the fast scanner */
    cpvm_program_free(p);
    p = prog(CPVM_ISA_LATEST64, code, 38, starts, 3);
    dec_decode(p, 7, &d);
    assert_int_equal(d.len, 25);
    assert_false(dec_next_is_proper(p, 7, d.len)); /* n = 38: the slow scanner gives up */
    cpvm_program_free(p);
    /* the same gap from pc 6 is fine near the end too */
    uint32_t starts2[] = {0, 6, 31};
    code[6] = 200;
    p = prog(CPVM_ISA_LATEST64, code, 38, starts2, 3);
    dec_decode(p, 6, &d);
    assert_true(dec_next_is_proper(p, 6, d.len));
    cpvm_program_free(p);
    /* a gap of 25 zero bits: length capped at 25, no successor */
    uint32_t starts3[] = {0, 2, 28};
    p = prog(CPVM_ISA_LATEST64, code, 40, starts3, 3);
    dec_decode(p, 2, &d);
    assert_int_equal(d.len, 25);
    assert_false(dec_next_is_proper(p, 2, d.len));
    cpvm_program_free(p);
}

/* isa.md §10.2 quirk: the look-back window is 24 + t mod 8 bytes. */
static void test_jump_target_window(void **state)
{
    (void)state;
    uint8_t code[64] = {0}; /* all trap */
    uint32_t s1[] = {0, 7, 32};
    cpvm_program *p = prog(CPVM_ISA_LATEST64, code, 40, s1, 3);
    assert_false(dec_valid_target(p, 32)); /* 25 back, t % 8 == 0 */
    uint32_t st;
    assert_false(dec_block_start(p, 32, &st));
    cpvm_program_free(p);
    uint32_t s2[] = {0, 8, 33};
    p = prog(CPVM_ISA_LATEST64, code, 40, s2, 3);
    assert_true(dec_valid_target(p, 33)); /* 25 back, t % 8 == 1 */
    cpvm_program_free(p);
    /* after an unknown opcode: not a valid target, but a block start for entry */
    uint8_t c3[] = {0xff, 0x00};
    uint32_t s3[] = {0, 1};
    p = prog(CPVM_ISA_LATEST64, c3, 2, s3, 2);
    assert_false(dec_valid_target(p, 1));
    assert_true(dec_block_start(p, 1, &st));
    assert_int_equal(st, 1);
    cpvm_program_free(p);
    /* block start search walks back over non-terminators */
    uint8_t c4[] = {0x00, 0x33, 0x07, 0x01, 0x64, 0x78, 0x00};
    uint32_t s4[] = {0, 1, 4, 6};
    p = prog(CPVM_ISA_LATEST64, c4, sizeof c4, s4, 4);
    assert_true(dec_block_start(p, 6, &st));
    assert_int_equal(st, 1);
    assert_false(dec_block_start(p, 5, &st)); /* not an instruction start */
    cpvm_program_free(p);
}

/* CPVM_COMPAT_GP: the Graypaper's basic-block set (A.2) and block walk. */
static void test_gp_block_set(void **state)
{
    (void)state;
    uint8_t code[64] = {0}; /* all trap */
    code[7] = 200;          /* add_64 at 7, 25 bytes: a non-terminator */
    /* a 25-byte trap at 7 ends where the next starts, t % 8 == 0: in the set
     * (PolkaVM's window misses it); the end of the code after a final
     * terminator too; a non-instruction only as a capped 25-byte successor */
    uint32_t s1[] = {0, 7, 32};
    cpvm_program *p = prog(CPVM_ISA_LATEST64, code, 33, s1, 3);
    assert_false(dec_gp_block_start(p, 32)); /* after add_64 */
    code[7] = 0;
    cpvm_program_free(p);
    p = prog(CPVM_ISA_LATEST64, code, 33, s1, 3);
    assert_true(dec_gp_block_start(p, 0));
    assert_true(dec_gp_block_start(p, 32));
    assert_false(dec_valid_target(p, 32));
    assert_true(dec_gp_block_start(p, 33));  /* the end, after the trap at 32 */
    assert_false(dec_gp_block_start(p, 34)); /* past the end */
    assert_false(dec_gp_block_start(p, 20)); /* inside the trap at 7 */
    cpvm_program_free(p);
    uint32_t s2[] = {0, 2, 28};
    p = prog(CPVM_ISA_LATEST64, code, 40, s2, 3);
    assert_true(dec_gp_block_start(p, 27));  /* 25 after the trap at 2: no bit, capped skip */
    assert_false(dec_gp_block_start(p, 28)); /* 26 back: nothing ends there */
    cpvm_program_free(p);
    /* after an unknown opcode: not in the set */
    uint8_t c3[] = {0xff, 0x00};
    uint32_t s3[] = {0, 1};
    p = prog(CPVM_ISA_LATEST64, c3, 2, s3, 2);
    assert_false(dec_gp_block_start(p, 1));
    cpvm_program_free(p);
    /* the walk: add_64 at 7 (25 bytes) then an instruction at 32 of 38: the
     * slow scanner's implicit trap (isa.md §2) is not the GP's */
    code[7] = 200;
    code[32] = 1; /* fallthrough */
    p = prog(CPVM_ISA_LATEST64, code, 38, s1, 3);
    struct dec_block_iter it = dec_block_begin(p, 7);
    it.gp = true;
    struct dec_insn d;
    assert_true(dec_block_next(&it, &d));
    assert_int_equal(d.pc, 7);
    assert_true(dec_block_next(&it, &d));
    assert_int_equal(d.pc, 32);
    assert_int_equal(d.op, OP_fallthrough);
    assert_false(dec_block_next(&it, &d));
    it = dec_block_begin(p, 7);
    assert_true(dec_block_next(&it, &d));
    assert_true(dec_block_next(&it, &d));
    assert_int_equal(d.op, OP_invalid); /* PolkaVM's walk */
    /* a GP walk decodes a pc whose bit is clear and stops at the end */
    it = dec_block_begin(p, 33);
    it.gp = true;
    assert_true(dec_block_next(&it, &d));
    assert_int_equal(d.op, OP_trap);
    it = dec_block_begin(p, 38);
    it.gp = true;
    assert_true(dec_block_next(&it, &d));
    assert_int_equal(d.op, OP_invalid);
    assert_int_equal(d.pc, 38);
    cpvm_program_free(p);
}

/* Every instruction of every ISA: minimal encoding decodes back to itself. */
static void test_encode_decode_round_trip(void **state)
{
    (void)state;
    static const int32_t imms[] = {0, 1, -1, 127, -128, 128, 0x7fff, -32769, 0x7fffff, INT32_MAX, INT32_MIN};
    unsigned checked = 0;
    for (int isa = 0; isa < CPVM_ISA_COUNT; isa++) {
        for (int op = 0; op < OP_COUNT; op++) {
            if (!isa_has((cpvm_isa)isa, (enum op)op)) continue;
            for (size_t k = 0; k < sizeof imms / sizeof *imms; k++) {
                struct dec_insn in = {.op = (uint8_t)op, .a = (uint8_t)(k % 13), .b = (uint8_t)((k * 5) % 13),
                                      .d = (uint8_t)((k * 7) % 13), .i1 = imms[k],
                                      .i2 = imms[(k + 3) % (sizeof imms / sizeof *imms)],
                                      .imm64 = 0x8000000000000001ull * (uint64_t)k};
                uint32_t pc = 16;
                in.target = pc + (uint32_t)imms[(k + 5) % (sizeof imms / sizeof *imms)];
                uint8_t code[64] = {0};
                unsigned len = dec_encode((cpvm_isa)isa, &in, pc, code + pc);
                assert_in_range(len, 1, 25);
                uint32_t starts[] = {0, pc, pc + len};
                code[pc + len] = 0; /* trap */
                cpvm_program *p = prog((cpvm_isa)isa, code, pc + len + 1, starts, 3);
                struct dec_insn out;
                dec_decode(p, pc, &out);
                assert_int_equal(out.op, op);
                assert_int_equal(out.len, len);
                const char *ops = isa_class_operands[isa_rows[op].cls];
                if (strstr(ops, "A")) assert_int_equal(out.a, in.a);
                if (strstr(ops, "B")) assert_int_equal(out.b, in.b);
                if (strstr(ops, "D")) assert_int_equal(out.d, in.d);
                if (strstr(ops, "i1") || strstr(ops, "i ")) assert_int_equal(out.i1, in.i1);
                if (!strcmp(ops, "i") || !strcmp(ops, "A i")) assert_int_equal(out.i1, in.i1);
                if (strstr(ops, "i2")) assert_int_equal(out.i2, in.i2);
                if (strstr(ops, "T")) assert_int_equal(out.target, in.target);
                if (strstr(ops, "W")) assert_int_equal(out.imm64, in.imm64);
                cpvm_program_free(p);
                checked++;
            }
        }
    }
    assert_int_equal(checked, (141 + 139 + 138 + 106) * 11);
    /* an instruction the ISA lacks does not encode */
    struct dec_insn in = {.op = OP_memset};
    uint8_t out[25];
    assert_int_equal(dec_encode(CPVM_ISA_JAM_V1, &in, 0, out), 0);
}

/* The operands as isa.md §5 lays them out, class by class, written apart from the
 * decoder: the oracle for dec_operands. */
static int32_t ref_imm(const uint8_t *b, unsigned k, unsigned L)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < L; i++) v |= (uint32_t)b[k + i] << (8 * i);
    if (L && L < 4 && (v >> (8 * L - 1)) & 1) v |= UINT32_MAX << (8 * L);
    return (int32_t)v;
}
static uint8_t ref_reg(unsigned nibble) { return (uint8_t)((nibble & 15) > 12 ? 12 : nibble & 15); }
static unsigned ref_len(int x) { return x < 0 ? 0 : x > 4 ? 4 : (unsigned)x; }

static void ref_operands(const uint8_t *b, uint32_t pc, unsigned skip, struct dec_insn *o)
{
    unsigned L1;
    switch ((enum isa_class)isa_rows[o->op].cls) {
    case CLS_N: break;
    case CLS_R_I:
        o->a = ref_reg(b[1]);
        o->i1 = ref_imm(b, 2, ref_len((int)skip - 1));
        break;
    case CLS_R_I_O:
    case CLS_R_I_I:
        o->a = ref_reg(b[1]);
        L1 = ref_len((b[1] >> 4) & 7);
        o->i1 = ref_imm(b, 2, L1);
        o->i2 = ref_imm(b, 2 + L1, ref_len((int)skip - (int)L1 - 1));
        o->target = pc + (uint32_t)o->i2; /* also for R_I_I, unused there */
        break;
    case CLS_RR_I:
    case CLS_RR_O:
        o->a = ref_reg(b[1]);
        o->b = ref_reg(b[1] >> 4);
        o->i1 = ref_imm(b, 2, ref_len((int)skip - 1));
        o->target = pc + (uint32_t)o->i1;
        break;
    case CLS_RRR:
        o->a = ref_reg(b[1]);
        o->b = ref_reg(b[1] >> 4);
        o->d = ref_reg(b[2]);
        break;
    case CLS_O:
        o->i1 = ref_imm(b, 1, ref_len((int)skip));
        o->target = pc + (uint32_t)o->i1;
        break;
    case CLS_I: o->i1 = ref_imm(b, 1, ref_len((int)skip)); break;
    case CLS_I_I:
        L1 = ref_len(b[1] & 7);
        o->i1 = ref_imm(b, 2, L1);
        o->i2 = ref_imm(b, 2 + L1, ref_len((int)skip - (int)L1 - 1));
        break;
    case CLS_RR:
        o->a = ref_reg(b[1]);
        o->b = ref_reg(b[1] >> 4);
        break;
    case CLS_RR_I_I:
        o->a = ref_reg(b[1]);
        o->b = ref_reg(b[1] >> 4);
        L1 = ref_len(b[2] & 7);
        o->i1 = ref_imm(b, 3, L1);
        o->i2 = ref_imm(b, 3 + L1, ref_len((int)skip - (int)L1 - 2));
        break;
    case CLS_R_I64:
        o->a = ref_reg(b[1]);
        for (unsigned i = 0; i < 8; i++) o->imm64 |= (uint64_t)b[2 + i] << (8 * i);
        break;
    case CLS_COUNT: fail();
    }
}

/* The block walks' inline decoder (in-place reads away from the code's end) and
 * dec_decode against the class-by-class oracle and a bit-by-bit skip, for every
 * opcode byte, random operand bytes and bitmasks with gaps of every length up to
 * past the 24-bit cap. */
static void test_inline_decoder(void **state)
{
    (void)state;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    unsigned fast = 0;
    for (int isa = 0; isa < CPVM_ISA_COUNT; isa++) {
        for (unsigned opcode = 0; opcode < 256; opcode++) {
            for (unsigned trial = 0; trial < 6; trial++) {
                enum { N = 127 };
                uint8_t code[N];
                uint32_t starts[N];
                size_t ns = 0;
                for (unsigned i = 0; i < N; i++) {
                    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                    code[i] = (uint8_t)(seed >> 56);
                    /* trial t: a start every ~2^t bytes, so gaps run from 0 to past 24 */
                    if (((seed >> 20) & ((1u << trial) - 1)) == 0 || (trial == 5 && i % 29 == 0)) starts[ns++] = i;
                }
                static const uint32_t at[] = {0, 1, 7, 30, 62};
                for (size_t j = 0; j < sizeof at / sizeof *at; j++) code[at[j]] = (uint8_t)opcode;
                cpvm_program *p = prog((cpvm_isa)isa, code, N, starts, ns);
                for (uint32_t pc = 0; pc < N; pc++) {
                    struct dec_insn want, got;
                    dec_decode(p, pc, &want);
                    dec_decode_inline(p, pc, &got);
                    unsigned skip = 0;
                    while (skip < 24 && pc + 1 + skip < N && !dec_bit(p, pc + 1 + skip)) skip++;
                    uint8_t bytes[17] = {0};
                    memcpy(bytes, code + pc, N - pc < 17 ? N - pc : 17);
                    struct dec_insn ref = {.pc = pc, .len = (uint8_t)(1 + skip), .op = p->decode_map[code[pc]]};
                    ref_operands(bytes, pc, skip, &ref);
                    assert_int_equal(want.len, ref.len);
                    assert_int_equal(want.op, ref.op);
                    assert_int_equal(want.a, ref.a);
                    assert_int_equal(want.b, ref.b);
                    assert_int_equal(want.d, ref.d);
                    assert_int_equal(want.i1, ref.i1);
                    assert_int_equal(want.i2, ref.i2);
                    assert_int_equal(want.target, ref.target);
                    assert_int_equal(want.imm64, ref.imm64);
                    assert_int_equal(got.pc, want.pc);
                    assert_int_equal(got.len, want.len);
                    assert_int_equal(got.op, want.op);
                    assert_int_equal(got.a, want.a);
                    assert_int_equal(got.b, want.b);
                    assert_int_equal(got.d, want.d);
                    assert_int_equal(got.i1, want.i1);
                    assert_int_equal(got.i2, want.i2);
                    assert_int_equal(got.target, want.target);
                    assert_int_equal(got.imm64, want.imm64);
                    fast += N - pc > 64;
                }
                cpvm_program_free(p);
            }
        }
    }
    assert_int_equal(fast, CPVM_ISA_COUNT * 256u * 6u * 63u);
}

static void test_jam_validation(void **state)
{
    (void)state;
    struct cpvm_error e;
    static const uint8_t ok[] = {0x33, 0x07, 0x01, 0x00};
    uint32_t s[] = {0, 3};
    cpvm_program *p = prog(CPVM_ISA_JAM_V1, ok, sizeof ok, s, 2);
    assert_int_equal(dec_validate_jam(p, &e), CPVM_OK);
    cpvm_program_free(p);
    static const uint8_t falls[] = {0x00, 0xc8, 0x87, 0x09}; /* ends with add_64 */
    uint32_t s2[] = {0, 1};
    p = prog(CPVM_ISA_JAM_V1, falls, sizeof falls, s2, 2);
    assert_int_equal(dec_validate_jam(p, &e), CPVM_E_VALIDATION);
    assert_int_equal(e.offset, 1);
    cpvm_program_free(p);
    static const uint8_t unknown[] = {0x33, 0x07, 0x01, 0xff};
    p = prog(CPVM_ISA_JAM_V1, unknown, sizeof unknown, s, 2);
    assert_int_equal(dec_validate_jam(p, &e), CPVM_E_VALIDATION);
    assert_int_equal(e.offset, 3);
    cpvm_program_free(p);
    uint32_t s3[] = {1, 3};
    p = prog(CPVM_ISA_JAM_V1, ok, sizeof ok, s3, 2); /* bit 0 clear */
    assert_int_equal(dec_validate_jam(p, &e), CPVM_E_VALIDATION);
    assert_int_equal(e.offset, 0);
    cpvm_program_free(p);
    /* a jump followed by a gap: the walk stops there, silently (blob-format.md §5) */
    uint8_t gap[40] = {0x28, 0x00};
    gap[39] = 0xff;
    uint32_t s4[] = {0, 39};
    p = prog(CPVM_ISA_JAM_V1, gap, sizeof gap, s4, 2);
    assert_int_equal(dec_validate_jam(p, &e), CPVM_OK);
    cpvm_program_free(p);
    /* memset's byte means unlikely in JamV1 and falls through */
    static const uint8_t c5[] = {0x02};
    uint32_t s5[] = {0};
    p = prog(CPVM_ISA_JAM_V1, c5, 1, s5, 1);
    assert_int_equal(dec_validate_jam(p, &e), CPVM_E_VALIDATION);
    cpvm_program_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appendix_examples),    cmocka_unit_test(test_immediates_and_registers),
        cmocka_unit_test(test_slow_scanner_quirk),   cmocka_unit_test(test_jump_target_window),
        cmocka_unit_test(test_gp_block_set),
        cmocka_unit_test(test_encode_decode_round_trip), cmocka_unit_test(test_jam_validation),
        cmocka_unit_test(test_inline_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
