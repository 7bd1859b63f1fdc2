/* The assembler and disassembler (vm/text): round trips of every conformance
 * program and of every instruction template, the alias forms, label rules,
 * programs that only %raw can describe, error lines, and hostile input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/bits.h"
#include "common/error.h"
#include "decode/decode.h"
#include "program/writer.h"
#include "text/text.h"

/* ---- helpers -------------------------------------------------------------- */

static const char *conformance_dir(void)
{
    static char buf[4096];
    const char *d = getenv("CPVM_CONFORMANCE_DIR");
    if (d && *d) return d;
    d = getenv("CPVM_CONFORMANCE_DEFAULT"); /* configured by CMake */
    if (d && *d) return d;
    const char *src = getenv("CPVM_SOURCE_DIR");
    if (src && *src) {
        if (snprintf(buf, sizeof buf, "%s/../shared/conformance", src) >= (int)sizeof buf) return "../shared/conformance";
        return buf;
    }
    return "../shared/conformance";
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

/* The "program" byte array of a JSON test vector; NULL if absent. */
static uint8_t *json_program(const char *path, size_t *len)
{
    size_t tl;
    char *text = read_file(path, &tl);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) return NULL;
    const cJSON *prog = cJSON_GetObjectItemCaseSensitive(j, "program");
    uint8_t *out = NULL;
    if (cJSON_IsArray(prog)) {
        int n = cJSON_GetArraySize(prog);
        out = malloc((size_t)n + 1);
        for (int i = 0; out && i < n; i++) {
            const cJSON *v = cJSON_GetArrayItem(prog, i);
            out[i] = (uint8_t)(cJSON_IsNumber(v) ? v->valueint : 0);
        }
        *len = (size_t)n;
    }
    cJSON_Delete(j);
    return out;
}

static cpvm_program *parse(const uint8_t *bytes, size_t len, bool raw, cpvm_isa isa)
{
    cpvm_program *p = NULL;
    struct cpvm_error err = {0};
    cpvm_status s = raw ? cpvm_program_parse_raw(bytes, len, isa, 0, &p, &err) : cpvm_program_parse(bytes, len, 0, &p, &err);
    if (s) fail_msg("parse failed: %s", err.detail);
    return p;
}

/* disassemble(parse(bytes)) and assemble it again; the bytes must come back.
 * Returns the disassembly (caller frees). */
static char *round_trip_opts(const uint8_t *bytes, size_t len, bool raw, cpvm_isa isa,
                             const struct text_disasm_options *opt, const char *what)
{
    cpvm_program *p = parse(bytes, len, raw, isa);
    char *text = NULL;
    struct cpvm_error err = {0};
    assert_int_equal(text_disassemble(p, opt, &text, &err), CPVM_OK);
    uint8_t *out = NULL;
    size_t out_len = 0;
    /* The text names its instruction set: the default must not matter. */
    cpvm_isa other = isa == CPVM_ISA_LATEST32 ? CPVM_ISA_JAM_V1 : CPVM_ISA_LATEST32;
    cpvm_status s = text_assemble(text, strlen(text), other, raw, &out, &out_len, &err);
    if (s) fail_msg("%s: reassembly failed at line %llu: %s\n%s", what, (unsigned long long)err.offset, err.detail, text);
    if (out_len != len || memcmp(out, bytes, len) != 0) fail_msg("%s: bytes differ after the round trip\n%s", what, text);
    free(out);
    cpvm_program_free(p);
    return text;
}

static char *round_trip(const uint8_t *bytes, size_t len, bool raw, cpvm_isa isa, const char *what)
{
    return round_trip_opts(bytes, len, raw, isa, NULL, what);
}

/* Assembles `src` as a raw program; returns the parsed result. */
static cpvm_program *assemble_raw(const char *src, cpvm_isa isa)
{
    uint8_t *out = NULL;
    size_t len = 0;
    struct cpvm_error err = {0};
    cpvm_status s = text_assemble(src, strlen(src), isa, true, &out, &len, &err);
    if (s) fail_msg("assembling \"%s\" failed at line %llu: %s", src, (unsigned long long)err.offset, err.detail);
    cpvm_program *p = parse(out, len, true, isa);
    free(out);
    return p;
}

static cpvm_status assemble_status(const char *src, cpvm_isa isa, bool raw, struct cpvm_error *err)
{
    uint8_t *out = NULL;
    size_t len = 0;
    cpvm_status s = text_assemble(src, strlen(src), isa, raw, &out, &len, err);
    if (s == CPVM_OK) assert_non_null(out);
    else assert_null(out);
    free(out);
    return s;
}

/* Raw program bytes: jump table (entry size 1) + code + bitmask of `starts`. */
static size_t make_raw(uint8_t *out, const uint8_t *jt, unsigned jt_count, unsigned jt_size, const uint8_t *code,
                       unsigned code_len, const unsigned *starts, unsigned n_starts)
{
    size_t n = 0;
    out[n++] = (uint8_t)jt_count;
    out[n++] = (uint8_t)jt_size;
    out[n++] = (uint8_t)code_len; /* < 128: one-byte varint */
    if (jt_count) memcpy(out + n, jt, (size_t)jt_count * jt_size);
    n += (size_t)jt_count * jt_size;
    if (code_len) memcpy(out + n, code, code_len);
    n += code_len;
    size_t bm = (code_len + 7) / 8;
    memset(out + n, 0, bm);
    for (unsigned i = 0; i < n_starts; i++) out[n + starts[i] / 8] |= (uint8_t)(1u << (starts[i] % 8));
    return n + bm;
}

/* ---- conformance programs ------------------------------------------------- */

static unsigned round_trip_dir(const char *sub, cpvm_isa isa)
{
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/%s", conformance_dir(), sub) >= (int)sizeof dir) fail_msg("path too long");
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot open %s (set CPVM_CONFORMANCE_DIR)", dir);
    unsigned count = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        size_t n = strlen(ent->d_name);
        if (n < 6 || strcmp(ent->d_name + n - 5, ".json") != 0) continue;
        char path[8192];
        if (snprintf(path, sizeof path, "%s/%s", dir, ent->d_name) >= (int)sizeof path) fail_msg("path too long");
        size_t len = 0;
        uint8_t *prog = json_program(path, &len);
        if (!prog) fail_msg("%s has no program", path);
        static const struct text_disasm_options variants[] = {{false, false}, {true, true}};
        for (unsigned v = 0; v < 2; v++) free(round_trip_opts(prog, len, true, isa, &variants[v], ent->d_name));
        free(prog);
        count++;
    }
    closedir(d);
    return count;
}

static void test_polkavm_035_vectors(void **state)
{
    (void)state;
    assert_int_equal(round_trip_dir("polkavm-0.35", CPVM_ISA_JAM_V1), 257);
}

static void test_jam_v04_vectors(void **state)
{
    (void)state;
    assert_int_equal(round_trip_dir("jam-pvm-v0.4/programs", CPVM_ISA_LATEST64), 201);
}

/* ---- every template ------------------------------------------------------- */

static const int32_t edge_imms[] = {0, 1, -1, 127, -128, 128, -129, 0x7fff, 0x8000, 0x800000, 0x7fffffff, INT32_MIN};
static const uint32_t edge_targets[] = {0, 3, 200, 0x7fffffff, 0x80000000u, 0xffffffffu};
static const uint64_t edge_imm64[] = {0, 1, 0x7fffffff, 0x80000000u, 0xffffffffu, 0xffffffff80000000ull,
                                      0x8000000000000000ull, UINT64_MAX, 0x123456789abcdef0ull};
static const uint8_t edge_regs[][3] = {{0, 0, 0}, {12, 1, 7}, {5, 12, 0}, {7, 8, 9}};

/* One instruction at pc 0 as a raw program, round-tripped through text; and
 * its text_format_insn() line assembled alone must give the same bytes. */
static void check_one(cpvm_isa isa, const struct dec_insn *in, unsigned *count)
{
    uint8_t bytes[LIMIT_INSN_MAX_LEN], raw[64];
    unsigned n = dec_encode(isa, in, 0, bytes);
    assert_true(n > 0);
    unsigned start = 0;
    size_t len = make_raw(raw, NULL, 0, 0, bytes, n, &start, 1);
    char what[256];
    char line[160];
    size_t ln = text_format_insn(isa, in, line, sizeof line);
    assert_int_equal(ln, strlen(line));
    snprintf(what, sizeof what, "%s in %s: \"%s\"", isa_rows[in->op].name, cpvm_isa_name(isa), line);
    char *text = round_trip(raw, len, true, isa, what);
    if (strstr(text, "%raw")) fail_msg("%s: printed as raw bytes\n%s", what, text);
    free(text);

    char src[256];
    snprintf(src, sizeof src, "%%isa = %s\n%s\n", cpvm_isa_name(isa), line);
    cpvm_program *p = assemble_raw(src, CPVM_ISA_LATEST64);
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    if (info.code.len != n || memcmp(info.code.ptr, bytes, n) != 0) fail_msg("%s: the line assembles differently", what);
    cpvm_program_free(p);
    ++*count;
}

static void test_every_template(void **state)
{
    (void)state;
    for (unsigned isa = 0; isa < CPVM_ISA_COUNT; isa++) {
        unsigned count = 0, ops = 0;
        for (unsigned op = 0; op < OP_COUNT; op++) {
            if (!isa_has((cpvm_isa)isa, (enum op)op)) continue;
            ops++;
            const char *operands = isa_class_operands[isa_rows[op].cls];
            bool has_t = strchr(operands, 'T') != NULL, has_w = strchr(operands, 'W') != NULL;
            bool has_i = strstr(operands, "i") != NULL, two = strstr(operands, "i2") != NULL;
            for (unsigned r = 0; r < sizeof edge_regs / sizeof edge_regs[0]; r++) {
                struct dec_insn in = {.op = (uint8_t)op, .a = edge_regs[r][0], .b = edge_regs[r][1], .d = edge_regs[r][2]};
                if (has_w) {
                    for (unsigned k = 0; k < sizeof edge_imm64 / sizeof edge_imm64[0]; k++) {
                        in.imm64 = edge_imm64[k];
                        check_one((cpvm_isa)isa, &in, &count);
                    }
                    continue;
                }
                unsigned ni = has_i ? sizeof edge_imms / sizeof edge_imms[0] : 1;
                unsigned nt = has_t ? sizeof edge_targets / sizeof edge_targets[0] : 1;
                for (unsigned k = 0; k < ni; k++) {
                    for (unsigned t = 0; t < nt; t++) {
                        in.i1 = has_i ? edge_imms[k] : 0;
                        in.i2 = two ? edge_imms[(k + 3) % ni] : 0;
                        in.target = has_t ? edge_targets[t] : 0;
                        check_one((cpvm_isa)isa, &in, &count);
                        if (two) { /* the other immediate at every edge too */
                            in.i1 = edge_imms[(k + 5) % ni];
                            in.i2 = edge_imms[k];
                            check_one((cpvm_isa)isa, &in, &count);
                        }
                    }
                }
            }
        }
        assert_true(ops > 100);
        assert_true(count > ops * 4);
    }
}

/* ---- aliases and immediate forms ------------------------------------------ */

struct alias_case {
    cpvm_isa isa;
    const char *text;
    struct dec_insn want; /* op and operands; target is absolute, pc 0 */
};

#define I(opname, ...) {.op = OP_##opname, __VA_ARGS__}
enum { RA = 0, SP = 1, T0 = 2, S0 = 5, A0 = 7, A1 = 8, A2 = 9, A5 = 12 };

static const struct alias_case alias_cases[] = {
    {CPVM_ISA_JAM_V1, "ret", I(jump_indirect, .a = RA)},
    {CPVM_ISA_JAM_V1, "nop", I(move_reg, .a = RA, .b = RA)},
    {CPVM_ISA_JAM_V1, "ra = ra", I(move_reg, .a = RA, .b = RA)},
    {CPVM_ISA_JAM_V1, "jump [a0]", I(jump_indirect, .a = A0)},
    {CPVM_ISA_JAM_V1, "jump [ a0 + 0x10 ]", I(jump_indirect, .a = A0, .i1 = 16)},
    {CPVM_ISA_JAM_V1, "a0 = u8 [a1]", I(load_indirect_u8, .a = A0, .b = A1)},
    {CPVM_ISA_JAM_V1, "a0 = i32 [a1 + -4]", I(load_indirect_i32, .a = A0, .b = A1, .i1 = -4)},
    {CPVM_ISA_JAM_V1, "u8 [a1] = a0", I(store_indirect_u8, .a = A0, .b = A1)},
    {CPVM_ISA_JAM_V1, "u32 [sp - 4] = a0", I(store_indirect_u32, .a = A0, .b = SP, .i1 = -4)},
    {CPVM_ISA_JAM_V1, "a0 = i8 [sp - 0x10]", I(load_indirect_i8, .a = A0, .b = SP, .i1 = -16)},
    {CPVM_ISA_JAM_V1, "u8 [a0 - -1] = 7", I(store_imm_indirect_u8, .a = A0, .i1 = 1, .i2 = 7)},
    {CPVM_ISA_JAM_V1, "jump [a0 - 8]", I(jump_indirect, .a = A0, .i1 = -8)},
    {CPVM_ISA_JAM_V1, "tmp = a0, a0 = 1, jump [tmp - 2]", I(load_imm_and_jump_indirect, .a = A0, .b = A0, .i1 = 1, .i2 = -2)},
    {CPVM_ISA_JAM_V1, "u16 [a1] = 5", I(store_imm_indirect_u16, .a = A1, .i2 = 5)},
    {CPVM_ISA_JAM_V1, "u64 [0x20000] = 0xffffffffffffffff", I(store_imm_u64, .i1 = 0x20000, .i2 = -1)},
    {CPVM_ISA_JAM_V1, "a0 = u8 [a1 + 0xffffffff]", I(load_indirect_u8, .a = A0, .b = A1, .i1 = -1)},
    {CPVM_ISA_JAM_V1, "a0 = u8 [a1 + 0xffffffffffffffff]", I(load_indirect_u8, .a = A0, .b = A1, .i1 = -1)},
    {CPVM_ISA_JAM_V1, "a0 = a1 - 5", I(add_imm_64, .a = A0, .b = A1, .i1 = -5)},
    {CPVM_ISA_JAM_V1, "a0 = a1 - -5", I(add_imm_64, .a = A0, .b = A1, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = a1 - 2147483648", I(add_imm_64, .a = A0, .b = A1, .i1 = INT32_MIN)},
    {CPVM_ISA_JAM_V1, "i32 a0 = a1 - 4095", I(add_imm_32, .a = A0, .b = A1, .i1 = -4095)},
    {CPVM_ISA_JAM_V1, "a0 = -a1", I(negate_and_add_imm_64, .a = A0, .b = A1)},
    {CPVM_ISA_JAM_V1, "i32 a0 = -a1", I(negate_and_add_imm_32, .a = A0, .b = A1)},
    {CPVM_ISA_JAM_V1, "a0 = 7 - a1", I(negate_and_add_imm_64, .a = A0, .b = A1, .i1 = 7)},
    {CPVM_ISA_JAM_V1, "tmp = a0, a0 = 1, jump [tmp + 4]", I(load_imm_and_jump_indirect, .a = A0, .b = A0, .i1 = 1, .i2 = 4)},
    {CPVM_ISA_JAM_V1, "tmp = a1, a0 = 0x4d2, jump [tmp]", I(load_imm_and_jump_indirect, .a = A0, .b = A1, .i1 = 1234)},
    {CPVM_ISA_JAM_V1, "a0 = 1, jump [a1]", I(load_imm_and_jump_indirect, .a = A0, .b = A1, .i1 = 1)},
    {CPVM_ISA_JAM_V1, "a0 = 1, jump 10", I(load_imm_and_jump, .a = A0, .i1 = 1, .target = 10)},
    {CPVM_ISA_JAM_V1, "a0 = 5", I(load_imm, .a = A0, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = -1", I(load_imm, .a = A0, .i1 = -1)},
    {CPVM_ISA_JAM_V1, "a0 = 0b101", I(load_imm, .a = A0, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = 0xffffffffffffffff", I(load_imm, .a = A0, .i1 = -1)},
    {CPVM_ISA_JAM_V1, "a0 = 18446744073709551615", I(load_imm, .a = A0, .i1 = -1)},
    {CPVM_ISA_JAM_V1, "a0 = 0xffffffff", I(load_imm64, .a = A0, .imm64 = 0xffffffffu)},
    {CPVM_ISA_JAM_V1, "a0 = 2147483648", I(load_imm64, .a = A0, .imm64 = 0x80000000u)},
    {CPVM_ISA_JAM_V1, "a0 = i64 5", I(load_imm64, .a = A0, .imm64 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = i64 -1", I(load_imm64, .a = A0, .imm64 = UINT64_MAX)},
    {CPVM_ISA_JAM_V1, "a0 = 5 + a1", I(add_imm_64, .a = A0, .b = A1, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "i32 a0 = 5 * a1", I(mul_imm_32, .a = A0, .b = A1, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = 5 & a1", I(and_imm, .a = A0, .b = A1, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = 5 <u a1", I(set_greater_than_unsigned_imm, .a = A0, .b = A1, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = 5 >s a1", I(set_less_than_signed_imm, .a = A0, .b = A1, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = a1 >u a2", I(set_less_than_unsigned, .d = A0, .a = A2, .b = A1)},
    {CPVM_ISA_JAM_V1, "a0 = a1 >s a2", I(set_less_than_signed, .d = A0, .a = A2, .b = A1)},
    {CPVM_ISA_JAM_V1, "a0 = a1 <u a2", I(set_less_than_unsigned, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "jump 10 if a0 <=u a1", I(branch_greater_or_equal_unsigned, .a = A1, .b = A0, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if a0 <=s a1", I(branch_greater_or_equal_signed, .a = A1, .b = A0, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if a0 >u a1", I(branch_less_unsigned, .a = A1, .b = A0, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if a0 >s a1", I(branch_less_signed, .a = A1, .b = A0, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if a0 == a1", I(branch_eq, .a = A0, .b = A1, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if a0 == 0x4d2", I(branch_eq_imm, .a = A0, .i1 = 1234, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if 5 == a0", I(branch_eq_imm, .a = A0, .i1 = 5, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if 5 != a0", I(branch_not_eq_imm, .a = A0, .i1 = 5, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if 5 <u a0", I(branch_greater_unsigned_imm, .a = A0, .i1 = 5, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if -5 <s a0", I(branch_greater_signed_imm, .a = A0, .i1 = -5, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if 5 <=u a0", I(branch_greater_or_equal_unsigned_imm, .a = A0, .i1 = 5, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if 5 >u a0", I(branch_less_unsigned_imm, .a = A0, .i1 = 5, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if 5 >=s a0", I(branch_less_or_equal_signed_imm, .a = A0, .i1 = 5, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 10 if a0 <=u 5", I(branch_less_or_equal_unsigned_imm, .a = A0, .i1 = 5, .target = 10)},
    {CPVM_ISA_JAM_V1, "jump 4294967295", I(jump, .target = 0xffffffffu)},
    {CPVM_ISA_JAM_V1, "a0 = a1 if a2 == 0", I(cmov_if_zero, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "a0 = a1 if a2 != 0", I(cmov_if_not_zero, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "a0 = 5 if a2 == 0", I(cmov_if_zero_imm, .a = A0, .b = A2, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = 5 if a2 != 0", I(cmov_if_not_zero_imm, .a = A0, .b = A2, .i1 = 5)},
    {CPVM_ISA_JAM_V1, "a0 = ~(a1 ^ a2)", I(xnor, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "a0 = maxs(a1, a2)", I(maximum, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "a0 = a1 & ~a2", I(and_inverted, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "a0 = a1 mulhu a2", I(mul_upper_unsigned_unsigned, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "a0 = a1 mulhsu a2", I(mul_upper_signed_unsigned, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "a0=a1+a2", I(add_64, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_JAM_V1, "r7 = r8 + r12", I(add_64, .d = A0, .a = A1, .b = A5)},
    {CPVM_ISA_JAM_V1, "a0 = cpop a1", I(count_set_bits_64, .a = A0, .b = A1)},
    {CPVM_ISA_JAM_V1, "i32 a0 = cpop a1", I(count_set_bits_32, .a = A0, .b = A1)},
    {CPVM_ISA_JAM_V1, "a0 = sext8 a1", I(sign_extend_8, .a = A0, .b = A1)},
    {CPVM_ISA_JAM_V1, "ecalli 4294967295", I(ecalli, .i1 = -1)},
    {CPVM_ISA_JAM_V1, "ecalli 7", I(ecalli, .i1 = 7)},
    {CPVM_ISA_JAM_V1, "unlikely", I(unlikely)},
    {CPVM_ISA_JAM_V1, "t0 = s0 >>a 3 // comment", I(shift_arithmetic_right_imm_64, .a = T0, .b = S0, .i1 = 3)},
    {CPVM_ISA_LATEST64, "sp = sbrk a0", I(sbrk, .a = SP, .b = A0)},
    {CPVM_ISA_LATEST64, "[a0..a0 + a2] = u8 a1", I(memset)},
    {CPVM_ISA_LATEST32, "a0 = a1 + a2", I(add_32, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_LATEST32, "i32 a0 = a1 + a2", I(add_32, .d = A0, .a = A1, .b = A2)},
    {CPVM_ISA_LATEST32, "a0 = a1 - 5", I(add_imm_32, .a = A0, .b = A1, .i1 = -5)},
    {CPVM_ISA_LATEST32, "a0 = -a1", I(negate_and_add_imm_32, .a = A0, .b = A1)},
    {CPVM_ISA_LATEST32, "a0 = cpop a1", I(count_set_bits_32, .a = A0, .b = A1)},
    {CPVM_ISA_LATEST32, "a0 = 0xffffffff", I(load_imm, .a = A0, .i1 = -1)},
    {CPVM_ISA_LATEST32, "a0 = a1 + 0x80000000", I(add_imm_32, .a = A0, .b = A1, .i1 = INT32_MIN)},
    {CPVM_ISA_LATEST32, "a0 = a1 >>r 3", I(rotate_right_imm_32, .a = A0, .b = A1, .i1 = 3)},
};

static void test_alias_forms(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof alias_cases / sizeof alias_cases[0]; k++) {
        const struct alias_case *c = &alias_cases[k];
        uint8_t want[LIMIT_INSN_MAX_LEN];
        unsigned n = dec_encode(c->isa, &c->want, 0, want);
        assert_true(n > 0);
        cpvm_program *p = assemble_raw(c->text, c->isa);
        struct cpvm_program_info info;
        cpvm_program_get_info(p, &info);
        if (info.code.len != n || memcmp(info.code.ptr, want, n) != 0)
            fail_msg("\"%s\" (%s) is not %s", c->text, cpvm_isa_name(c->isa), isa_rows[c->want.op].name);
        assert_int_equal(info.bitmask.ptr[0] & 1, 1);
        cpvm_program_free(p);
    }
}

/* What the disassembler prints for aliased encodings. */
static void test_formatter_aliases(void **state)
{
    (void)state;
    static const struct {
        cpvm_isa isa;
        struct dec_insn in;
        const char *text;
    } cases[] = {
        {CPVM_ISA_JAM_V1, I(jump_indirect, .a = RA), "ret"},
        {CPVM_ISA_JAM_V1, I(jump_indirect, .a = A0), "jump [a0]"},
        {CPVM_ISA_JAM_V1, I(jump_indirect, .a = A0, .i1 = -1), "jump [a0 + 0xffffffffffffffff]"},
        {CPVM_ISA_LATEST32, I(jump_indirect, .a = A0, .i1 = -1), "jump [a0 + 0xffffffff]"},
        {CPVM_ISA_JAM_V1, I(load_indirect_u8, .a = A0, .b = A1), "a0 = u8 [a1]"},
        {CPVM_ISA_JAM_V1, I(store_indirect_u16, .a = A0, .b = A1), "u16 [a1] = a0"},
        {CPVM_ISA_JAM_V1, I(add_imm_64, .a = A0, .b = A1, .i1 = -100), "a0 = a1 - 100"},
        {CPVM_ISA_JAM_V1, I(add_imm_64, .a = A0, .b = A1, .i1 = -4096), "a0 = a1 + 0xfffffffffffff000"},
        {CPVM_ISA_JAM_V1, I(add_imm_32, .a = A0, .b = A1, .i1 = -1), "i32 a0 = a1 - 1"},
        {CPVM_ISA_LATEST32, I(add_imm_32, .a = A0, .b = A1, .i1 = -1), "a0 = a1 - 1"},
        {CPVM_ISA_JAM_V1, I(negate_and_add_imm_64, .a = A0, .b = A1), "a0 = -a1"},
        {CPVM_ISA_JAM_V1, I(load_imm_and_jump_indirect, .a = A0, .b = A1, .i1 = 1), "a0 = 0x1, jump [a1]"},
        {CPVM_ISA_JAM_V1, I(load_imm_and_jump_indirect, .a = A0, .b = A0, .i1 = 1, .i2 = 4),
         "tmp = a0, a0 = 0x1, jump [tmp + 0x4]"},
        {CPVM_ISA_JAM_V1, I(load_imm64, .a = A0, .imm64 = 5), "a0 = i64 0x5"},
        {CPVM_ISA_JAM_V1, I(load_imm64, .a = A0, .imm64 = 0xdeadbeef), "a0 = 0xdeadbeef"},
        {CPVM_ISA_JAM_V1, I(load_imm, .a = A0, .i1 = 0), "a0 = 0"},
        {CPVM_ISA_JAM_V1, I(branch_eq_imm, .a = A0, .i1 = 1234, .target = 10), "jump 10 if a0 == 0x4d2"},
        {CPVM_ISA_JAM_V1, I(ecalli, .i1 = -1), "ecalli 4294967295"},
        {CPVM_ISA_JAM_V1, I(add_32, .d = A0, .a = A1, .b = A2), "i32 a0 = a1 + a2"},
        {CPVM_ISA_LATEST32, I(add_32, .d = A0, .a = A1, .b = A2), "a0 = a1 + a2"},
        {CPVM_ISA_LATEST32, I(load_imm, .a = A0, .i1 = -2), "a0 = 0xfffffffe"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char buf[128];
        text_format_insn(cases[k].isa, &cases[k].in, buf, sizeof buf);
        assert_string_equal(buf, cases[k].text);
    }
    /* Truncation keeps the terminator. */
    struct dec_insn in = I(add_64, .d = A0, .a = A1, .b = A2);
    char small[5];
    assert_int_equal(text_format_insn(CPVM_ISA_JAM_V1, &in, small, sizeof small), 4);
    assert_string_equal(small, "a0 =");
    assert_int_equal(text_format_insn(CPVM_ISA_JAM_V1, &in, small, 1), 0);
    assert_string_equal(small, "");
}

/* ---- labels, exports, jump table, data ------------------------------------ */

static void decode_at(const cpvm_program *p, uint32_t pc, struct dec_insn *in)
{
    assert_true(dec_bit(p, pc));
    dec_decode(p, pc, in);
}

static void test_labels(void **state)
{
    (void)state;
    struct dec_insn in;
    /* The reference's own example: a fallthrough goes in before the label. */
    cpvm_program *p = assemble_raw("jump @label\na0 = 1\n@label:\na0 = 2\n", CPVM_ISA_LATEST64);
    decode_at(p, 0, &in);
    assert_int_equal(in.op, OP_jump);
    assert_int_equal(in.target, 6);
    decode_at(p, 5, &in);
    assert_int_equal(in.op, OP_fallthrough);
    decode_at(p, 6, &in);
    assert_int_equal(in.op, OP_load_imm);
    assert_int_equal(in.i1, 2);
    cpvm_program_free(p);

    /* After %no_fallthrough mid-block the label names the block's start. */
    p = assemble_raw("trap\na0 = 1\n@l: %no_fallthrough\na1 = 2\njump @l\n", CPVM_ISA_LATEST64);
    decode_at(p, 7, &in);
    assert_int_equal(in.op, OP_jump);
    assert_int_equal(in.target, 1);
    cpvm_program_free(p);

    /* Backward and forward branches, targets that need wider offsets. */
    char src[8192] = "@top:\njump @end if a0 == 0\n";
    for (int i = 0; i < 60; i++) strcat(src, "a0 = 0x12345678\n");
    strcat(src, "jump @top\n@end:\ntrap\n");
    p = assemble_raw(src, CPVM_ISA_LATEST64);
    decode_at(p, 0, &in);
    assert_int_equal(in.op, OP_branch_eq_imm);
    uint32_t end = in.target;
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    assert_int_equal(end, info.code.len - 1);
    decode_at(p, end, &in);
    assert_int_equal(in.op, OP_trap);
    cpvm_program_free(p);

    /* d = @label: jump table entry after the explicit ones; address 2*(index+1). */
    p = assemble_raw("%jump_table = 0, 0\na0 = @x\ntrap\n@x:\ntrap\n", CPVM_ISA_LATEST64);
    uint32_t pc;
    assert_true(cpvm_program_jump_table_entry(p, 2, &pc));
    decode_at(p, 0, &in);
    assert_int_equal(in.op, OP_load_imm);
    assert_int_equal(in.i1, 6);
    decode_at(p, pc, &in);
    assert_int_equal(in.op, OP_trap);
    assert_int_equal(pc, 4);
    cpvm_program_free(p);
}

static void test_container_directives(void **state)
{
    (void)state;
    static const char src[] = "%isa = latest32\n"
                              "%ro_data_size = 8\n%rw_data_size = 4096\n%stack_size = 0x1000\n"
                              "%ro_data = 01 02\n%ro_data += 0304\n%rw_data = ff\n"
                              "%import \"log\"\n%import \"a\\\"b\\x00\"\n"
                              "%export \"odd name\" = 1\n"
                              "pub @zeta:\npub @alpha:\n  a0 = a1 + a2 // comment\n"
                              "pub @mid: %no_fallthrough\n  trap\n";
    uint8_t *out = NULL;
    size_t len = 0;
    struct cpvm_error err = {0};
    assert_int_equal(text_assemble(src, sizeof src - 1, CPVM_ISA_JAM_V1, false, &out, &len, &err), CPVM_OK);
    cpvm_program *p = parse(out, len, false, CPVM_ISA_JAM_V1);
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    assert_int_equal(info.isa, CPVM_ISA_LATEST32);
    assert_int_equal(info.ro_data_size, 8);
    assert_int_equal(info.rw_data_size, 4096);
    assert_int_equal(info.stack_size, 4096);
    assert_int_equal(info.ro_data.len, 4);
    assert_memory_equal(info.ro_data.ptr, "\x01\x02\x03\x04", 4);
    assert_int_equal(info.rw_data.len, 1);
    assert_int_equal(info.import_count, 2);
    struct cpvm_symbol sym;
    assert_true(cpvm_program_import(p, 1, &sym));
    assert_int_equal(sym.name_len, 4);
    assert_memory_equal(sym.name, "a\"b\0", 4);
    /* %export first, then label exports sorted by name. */
    static const char *names[] = {"odd name", "alpha", "mid", "zeta"};
    static const uint32_t pcs[] = {1, 0, 3, 0};
    assert_int_equal(info.export_count, 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_true(cpvm_program_export(p, i, &sym));
        assert_int_equal(sym.name_len, strlen(names[i]));
        assert_memory_equal(sym.name, names[i], sym.name_len);
        assert_int_equal(sym.pc, pcs[i]);
    }
    /* No fallthrough before @mid: add_32 then trap. */
    assert_int_equal(info.code.len, 4);
    cpvm_program_free(p);
    free(round_trip(out, len, false, CPVM_ISA_JAM_V1, "container"));
    free(out);
}

/* Containers whose exports cannot be labels use %export; all round-trip. */
static void test_container_round_trips(void **state)
{
    (void)state;
    static const uint8_t code[] = {0xc8, 0x87, 0x09, 0x00, 0x01};
    static const uint8_t bitmask[] = {0x19};
    static const uint32_t jt[] = {3, 4, 3};
    static const uint8_t ro[] = {9, 8, 7};
    struct writer_symbol good[] = {{(const uint8_t *)"a", 1, 0}, {(const uint8_t *)"b.c", 3, 3}};
    struct writer_symbol bad1[] = {{(const uint8_t *)"b", 1, 0}, {(const uint8_t *)"a", 1, 3}};        /* unsorted */
    struct writer_symbol bad2[] = {{(const uint8_t *)"x y", 3, 0}};                                   /* not a name */
    struct writer_symbol bad3[] = {{(const uint8_t *)"m", 1, 1}};                                     /* mid-insn */
    struct writer_symbol bad4[] = {{(const uint8_t *)"m", 1, 0}, {(const uint8_t *)"m", 1, 0}};       /* duplicate */
    struct writer_symbol bad5[] = {{(const uint8_t *)"\xff\"\\", 3, 99}};                             /* bytes */
    struct writer_symbol imps[] = {{(const uint8_t *)"ext", 3, 0}, {(const uint8_t *)"", 0, 0}};
    const struct writer_symbol *sets[] = {good, bad1, bad2, bad3, bad4, bad5};
    const size_t counts[] = {2, 2, 1, 1, 2, 1};
    for (unsigned k = 0; k < 6; k++) {
        for (unsigned size = 0; size <= 4; size++) {
            struct writer_parts parts = {
                .isa = (cpvm_isa)(k % 4), .ro_data_size = 16, .rw_data_size = k, .stack_size = 8192,
                .ro_data = ro, .ro_data_len = sizeof ro, .imports = imps, .import_count = 2,
                .exports = sets[k], .export_count = counts[k], .jump_table = jt, .jump_table_count = 3,
                .jump_table_entry_size = size, .code = code, .code_len = sizeof code, .bitmask = bitmask,
            };
            uint8_t *blob;
            size_t len;
            struct cpvm_error err;
            assert_int_equal(writer_build(&parts, false, &blob, &len, &err), CPVM_OK);
            char *text = round_trip(blob, len, false, CPVM_ISA_LATEST64, "container");
            assert_true((strstr(text, "%export") != NULL) == (k != 0));
            assert_true((strstr(text, "%jump_table_entry_size") != NULL) == (size > 1));
            free(text);
            free(blob);
        }
    }
}

/* ---- programs only %raw can describe --------------------------------------- */

static void test_raw_programs(void **state)
{
    (void)state;
    uint8_t raw[256];
    size_t n;
    char *text;
    static const uint8_t jt1[] = {2};

    /* Non-minimal immediate: load_imm a0 = -1 in two bytes. */
    static const uint8_t c1[] = {0x33, 0x07, 0xff, 0xff, 0x00};
    static const unsigned s1[] = {0, 4};
    n = make_raw(raw, jt1, 1, 1, c1, sizeof c1, s1, 2);
    text = round_trip(raw, n, true, CPVM_ISA_JAM_V1, "non-minimal immediate");
    assert_non_null(strstr(text, "%raw 33 07 ff ff"));
    free(text);

    /* Register nibbles 13..15. */
    static const uint8_t c2[] = {0xc8, 0xd7, 0x0f, 0x64, 0xef, 0x00};
    static const unsigned s2[] = {0, 3, 5};
    n = make_raw(raw, NULL, 0, 0, c2, sizeof c2, s2, 3);
    free(round_trip(raw, n, true, CPVM_ISA_LATEST64, "register nibbles"));

    /* Bit 0 clear: bytes before the first start. */
    static const uint8_t c3[] = {0x33, 0x07, 0x01, 0x00};
    static const unsigned s3[] = {2, 3};
    n = make_raw(raw, NULL, 0, 0, c3, sizeof c3, s3, 2);
    text = round_trip(raw, n, true, CPVM_ISA_JAM_V1, "bit 0 clear");
    assert_non_null(strstr(text, "%raw_cont 33 07"));
    free(text);

    /* No start bit at all. */
    n = make_raw(raw, NULL, 0, 0, c3, sizeof c3, NULL, 0);
    free(round_trip(raw, n, true, CPVM_ISA_JAM_V1, "no start bit"));

    /* A gap longer than 24 bits after an instruction, and trailing bytes. */
    uint8_t c4[60];
    for (unsigned i = 0; i < sizeof c4; i++) c4[i] = (uint8_t)(i * 37);
    c4[0] = 0xc8;
    c4[1] = 0x87;
    c4[2] = 0x09;
    c4[40] = 0x00;
    static const unsigned s4[] = {0, 40, 41};
    n = make_raw(raw, NULL, 0, 0, c4, sizeof c4, s4, 3);
    free(round_trip(raw, n, true, CPVM_ISA_LATEST64, "long gap"));

    /* Unknown opcodes and truncated instructions. */
    static const uint8_t c5[] = {0xff, 0x33, 0x14, 0x07, 0x01, 0x02, 0x51};
    static const unsigned s5[] = {0, 1, 2, 6};
    for (unsigned isa = 0; isa < CPVM_ISA_COUNT; isa++) {
        n = make_raw(raw, NULL, 0, 0, c5, sizeof c5, s5, 4);
        free(round_trip(raw, n, true, (cpvm_isa)isa, "garbage"));
    }

    /* Empty code. */
    n = make_raw(raw, NULL, 0, 0, NULL, 0, NULL, 0);
    free(round_trip(raw, n, true, CPVM_ISA_LATEST64, "empty"));

    /* A declared jump table with entry size 0, raw and in a container. */
    n = make_raw(raw, NULL, 0, 0, c1, sizeof c1, s1, 2);
    raw[0] = 100;
    text = round_trip(raw, n, true, CPVM_ISA_LATEST64, "entry size 0");
    assert_non_null(strstr(text, "%jump_table_count = 100"));
    free(text);
    uint8_t blob[300];
    size_t b = 0;
    memcpy(blob, "PVM\0\x02", 5);
    b = 13;
    blob[b++] = 6;
    blob[b++] = (uint8_t)n;
    memcpy(blob + b, raw, n);
    b += n;
    blob[b++] = 0;
    wr_le64(blob + 5, b);
    free(round_trip(blob, b, false, CPVM_ISA_LATEST64, "container, entry size 0"));

    /* Jump table entries wider than needed. */
    static const uint8_t jt4[] = {4, 0, 0, 0, 0, 0, 0, 0};
    n = make_raw(raw, jt4, 2, 4, c1, sizeof c1, s1, 2);
    text = round_trip(raw, n, true, CPVM_ISA_LATEST64, "entry size 4");
    assert_non_null(strstr(text, "%jump_table_entry_size = 4"));
    free(text);
}

/* Random programs of every ISA: whatever the bytes, the round trip holds. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random_programs(void **state)
{
    (void)state;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t code[100], raw[256];
        unsigned starts[100], ns = 0, len = (unsigned)(next_rand() % 100);
        unsigned density = 1 + (unsigned)(next_rand() % 5);
        for (unsigned i = 0; i < len; i++) {
            unsigned r = (unsigned)(next_rand() % 8);
            code[i] = r < 4 ? (uint8_t)next_rand() : r < 6 ? (uint8_t)(next_rand() % 231) : r == 6 ? 0 : 0xff;
            if (next_rand() % density == 0 && !(len > 40 && i > 5 && i < 35 && iter % 3 == 0)) starts[ns++] = i;
        }
        size_t n = make_raw(raw, NULL, 0, 0, code, len, starts, ns);
        free(round_trip(raw, n, true, (cpvm_isa)(iter % 4), "random program"));
    }
}

/* ---- errors ---------------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *src;
        cpvm_status code;
        uint64_t line;
        bool container;
    } cases[] = {
        {"trap\nfoo bar\n", CPVM_E_ASM_SYNTAX, 2, false},
        {"// c\n\n  a0 = a1 + 0xffffffff\n", CPVM_E_ASM_RANGE, 3, false},
        {"a0 = u8 [a1 + 0x100000000]", CPVM_E_ASM_RANGE, 1, false},
        {"a0 = u8 [a1 - 0x80000000]", CPVM_E_ASM_RANGE, 1, false},
        {"a0 = u8 [a1 - a2]", CPVM_E_ASM_SYNTAX, 1, false},
        {"jump 4294967296", CPVM_E_ASM_RANGE, 1, false},
        {"a0 = 99999999999999999999999", CPVM_E_ASM_RANGE, 1, false},
        {"a0 = a1 - 2147483649", CPVM_E_ASM_RANGE, 1, false},
        {"trap\n%isa = bogus\n", CPVM_E_ASM_SYNTAX, 2, false},
        {"trap\n%isa = latest32\n", CPVM_E_ASM_SYNTAX, 2, false},
        {"%isa = latest32\n\na0 = 0x123456789\n", CPVM_E_ASM_SYNTAX, 3, false},
        {"%isa = jam_v1\nsp = sbrk a0\n", CPVM_E_ASM_SYNTAX, 2, false},
        {"@a:\ntrap\n@a:\n", CPVM_E_ASM_LABEL, 3, false},
        {"trap\n\njump @nowhere\n@x:\n", CPVM_E_ASM_LABEL, 3, false},
        {"a0 = @nowhere\n", CPVM_E_ASM_LABEL, 1, false},
        {"trap\n%raw 3\n", CPVM_E_ASM_SYNTAX, 2, false},
        {"%raw\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"%raw zz\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"%export \"x = 1\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"%export \"x\\q\" = 1\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"%import x\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"trap\na0 = 1, jump [a0]\n", CPVM_E_ASM_SYNTAX, 2, false},
        {"%jump_table_entry_size = 1\n%jump_table = 300\n", CPVM_E_ASM_RANGE, 1, false},
        {"%jump_table_entry_size = 5\n", CPVM_E_ASM_RANGE, 1, false},
        {"%jump_table_count = 3\n%jump_table = 1\n", CPVM_E_ASM_RANGE, 1, false},
        {"%jump_table = 1,\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"%bogus = 1\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"%ro_data_size = -1\n", CPVM_E_ASM_RANGE, 1, false},
        {"@l: trap\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"@:\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"ecalli5\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"a0 = a1 mulhx a2\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"a0 = a1 + a2 a3\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"i32 a0 = a1 & a2\n", CPVM_E_ASM_SYNTAX, 1, false},
        {"%ro_data = 0102\ntrap\n", CPVM_E_ASM_RANGE, 1, true},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct cpvm_error err = {0};
        cpvm_status s = assemble_status(cases[k].src, CPVM_ISA_LATEST64, !cases[k].container, &err);
        if (s != cases[k].code || err.offset != cases[k].line)
            fail_msg("\"%s\": got %s at line %llu, want %s at line %llu", cases[k].src, cpvm_status_message(s),
                     (unsigned long long)err.offset, cpvm_status_message(cases[k].code),
                     (unsigned long long)cases[k].line);
    }
    struct cpvm_error err;
    /* Only empty names: nothing in the name pool. */
    assert_int_equal(assemble_status("%import \"\"\n%export \"\" = 0\n", CPVM_ISA_LATEST64, false, &err), CPVM_OK);
    /* The same data fits a raw program (no data there). */
    assert_int_equal(assemble_status("%ro_data = 0102\ntrap\n", CPVM_ISA_LATEST64, true, &err), CPVM_OK);
    /* Arguments. */
    uint8_t *out;
    size_t len;
    assert_int_equal(text_assemble("trap", 4, (cpvm_isa)9, true, &out, &len, &err), CPVM_E_INVALID_ARGUMENT);
    assert_int_equal(text_assemble(NULL, 0, CPVM_ISA_JAM_V1, true, &out, &len, &err), CPVM_OK);
    free(out);
    char *text;
    assert_int_equal(text_disassemble(NULL, NULL, &text, &err), CPVM_E_INVALID_ARGUMENT);
}

/* Hostile text: random bytes and mangled disassemblies never crash or leak. */
static void test_hostile_text(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "a0", " = ", "[", "]", "+", "-", "0x", "ffffffffffffffffff", "@", "@l", ":", "\n", "//", "\"", "%raw ",
        "%raw_cont ", "jump ", " if ", "==", "<=u", ",", "tmp", "i32 ", "i64 ", "pub ", "%no_fallthrough", "9",
        "%export ", "%jump_table = ", "\\x", "\0", "\r", "\t", "%isa = latest32\n", "ret", "u8 ", "(", ")", "~",
    };
    const size_t np = sizeof pieces / sizeof pieces[0];
    char buf[512];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0;
        unsigned k = (unsigned)(next_rand() % 24);
        for (unsigned i = 0; i < k; i++) {
            const char *piece = pieces[next_rand() % np];
            size_t pl = piece[0] ? strlen(piece) : 1;
            if (len + pl >= sizeof buf) break;
            memcpy(buf + len, piece, pl);
            len += pl;
        }
        if (iter % 4 == 0)
            for (size_t i = 0; i < len; i++)
                if (next_rand() % 8 == 0) buf[i] = (char)next_rand();
        uint8_t *out = NULL;
        size_t out_len = 0;
        struct cpvm_error err = {0};
        cpvm_status s = text_assemble(buf, len, CPVM_ISA_LATEST64, iter % 2, &out, &out_len, &err);
        if (s == CPVM_OK) {
            cpvm_program *p = NULL;
            /* Whatever assembles parses back. */
            s = iter % 2 ? cpvm_program_parse_raw(out, out_len, CPVM_ISA_LATEST64, 0, &p, &err)
                         : cpvm_program_parse(out, out_len, 0, &p, &err);
            assert_int_equal(s, CPVM_OK);
            cpvm_program_free(p);
            free(out);
        } else {
            assert_true(s == CPVM_E_ASM_SYNTAX || s == CPVM_E_ASM_LABEL || s == CPVM_E_ASM_RANGE || s == CPVM_E_LIMIT);
            assert_null(out);
            assert_true(err.offset >= 1 || s == CPVM_E_ASM_LABEL || s == CPVM_E_ASM_RANGE);
        }
    }
}

/* Long lines and many labels: linear work, bounded memory. */
static void test_large_inputs(void **state)
{
    (void)state;
    size_t n = 200000;
    char *src = malloc(n * 32 + LIMIT_ASM_LINE + 64);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += (size_t)sprintf(src + len, "@l%zu:\njump @l%zu\n", i, (i * 7919) % n);
    uint8_t *out;
    size_t out_len;
    struct cpvm_error err;
    assert_int_equal(text_assemble(src, len, CPVM_ISA_LATEST64, true, &out, &out_len, &err), CPVM_OK);
    free(round_trip(out, out_len, true, CPVM_ISA_LATEST64, "large"));
    free(out);
    /* An instruction line beyond the line limit. */
    memset(src, ' ', LIMIT_ASM_LINE + 10);
    memcpy(src + LIMIT_ASM_LINE + 10, "trap", 4);
    assert_int_equal(text_assemble(src, LIMIT_ASM_LINE + 14, CPVM_ISA_LATEST64, true, &out, &out_len, &err), CPVM_OK);
    free(out);
    memset(src, 'a', LIMIT_ASM_LINE + 10);
    assert_int_equal(text_assemble(src, LIMIT_ASM_LINE + 10, CPVM_ISA_LATEST64, true, &out, &out_len, &err),
                     CPVM_E_LIMIT);
    assert_int_equal(err.offset, 1);
    free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_polkavm_035_vectors), cmocka_unit_test(test_jam_v04_vectors),
        cmocka_unit_test(test_every_template),      cmocka_unit_test(test_alias_forms),
        cmocka_unit_test(test_formatter_aliases),   cmocka_unit_test(test_labels),
        cmocka_unit_test(test_container_directives), cmocka_unit_test(test_container_round_trips),
        cmocka_unit_test(test_raw_programs),        cmocka_unit_test(test_random_programs),
        cmocka_unit_test(test_errors),              cmocka_unit_test(test_hostile_text),
        cmocka_unit_test(test_large_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
