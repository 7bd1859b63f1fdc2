/* The x86-64 encoder and compiler against a disassembler (Zydis).
 *
 * 1. Every row of vm/jit/x64_forms.def is encoded over edge operands (all 16
 *    registers, rsp/rbp/r12/r13 bases, every index and scale, disp 0/8/32 at their
 *    limits, absolute, rip-relative and addr32 addresses, immediates at their
 *    limits, every width and condition) and decoded: the length must match and
 *    the mnemonic and operands (registers, memory components and size, immediate
 *    value and encoded size, displacement size, address size) must be the
 *    intended ones. Both sides are printed in one canonical text and compared.
 * 2. x64_enc.h is read back: a function or an op enumerator without a row fails.
 * 3. Programs with every instruction of every ISA, over aliasing registers
 *    (a1 = rax and a2 = rdx among them), are compiled in several configurations
 *    and the whole native buffer is decoded from each guest instruction's start
 *    to the next one's: every byte decodes, no instruction straddles a boundary,
 *    and every branch and rip-relative target is an instruction start. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "testutil.h"

#include "decode/decode.h"
#include "interp/interp.h"
#include "isa/isa.h"
#include "jit/jit.h"
#include "jit/x64_enc.h"
#include "program/program.h"
#include "program/writer.h"

/* ---- the forms table ------------------------------------------------------- */

enum shape {
    SH_W_R_R, SH_W_R_I64, SH_R_U64, SH_W_R_M, SH_W_M_R, SH_W_M_I, SH_ALU_R_R, SH_ALU_R_I, SH_ALU_M_R,
    SH_ALU_M_I, SH_W_R_R_I, SH_UNARY, SH_SHIFT_R, SH_SHIFT_R_I, SH_CC_R, SH_CC_W_R_R, SH_BITCOUNT, SH_W_R,
    SH_W, SH_R, SH_M, SH_NONE, SH_REL32, SH_REL8, SH_CC_REL32, SH_CC_REL8, SH_COUNT
};

/* One member per shape: the row's function must have exactly that type. */
union form_fn {
    unsigned (*W_R_R)(uint8_t *, x64_width, enum x64_reg, enum x64_reg);
    unsigned (*W_R_I64)(uint8_t *, x64_width, enum x64_reg, int64_t);
    unsigned (*R_U64)(uint8_t *, enum x64_reg, uint64_t);
    unsigned (*W_R_M)(uint8_t *, x64_width, enum x64_reg, struct x64_mem);
    unsigned (*W_M_R)(uint8_t *, x64_width, struct x64_mem, enum x64_reg);
    unsigned (*W_M_I)(uint8_t *, x64_width, struct x64_mem, int32_t);
    unsigned (*ALU_R_R)(uint8_t *, enum x64_alu, x64_width, enum x64_reg, enum x64_reg);
    unsigned (*ALU_R_I)(uint8_t *, enum x64_alu, x64_width, enum x64_reg, int32_t);
    unsigned (*ALU_M_R)(uint8_t *, enum x64_alu, x64_width, struct x64_mem, enum x64_reg);
    unsigned (*ALU_M_I)(uint8_t *, enum x64_alu, x64_width, struct x64_mem, int32_t);
    unsigned (*W_R_R_I)(uint8_t *, x64_width, enum x64_reg, enum x64_reg, int32_t);
    unsigned (*UNARY)(uint8_t *, enum x64_unary, x64_width, enum x64_reg);
    unsigned (*SHIFT_R)(uint8_t *, enum x64_shift, x64_width, enum x64_reg);
    unsigned (*SHIFT_R_I)(uint8_t *, enum x64_shift, x64_width, enum x64_reg, uint8_t);
    unsigned (*CC_R)(uint8_t *, enum x64_cc, enum x64_reg);
    unsigned (*CC_W_R_R)(uint8_t *, enum x64_cc, x64_width, enum x64_reg, enum x64_reg);
    unsigned (*BITCOUNT)(uint8_t *, enum x64_bitcount, x64_width, enum x64_reg, enum x64_reg);
    unsigned (*W_R)(uint8_t *, x64_width, enum x64_reg);
    unsigned (*W)(uint8_t *, x64_width);
    unsigned (*R)(uint8_t *, enum x64_reg);
    unsigned (*M)(uint8_t *, struct x64_mem);
    unsigned (*NONE)(uint8_t *);
    unsigned (*REL32)(uint8_t *, int32_t);
    unsigned (*REL8)(uint8_t *, int8_t);
    unsigned (*CC_REL32)(uint8_t *, enum x64_cc, int32_t);
    unsigned (*CC_REL8)(uint8_t *, enum x64_cc, int8_t);
};

struct form {
    const char *id, *fn_name, *op_name, *mnemonic, *operands;
    enum shape shape;
    int op;
    unsigned widths;
    union form_fn fn;
};

#define CC (-1) /* the op column of the condition forms: all 16 conditions */

static const struct form forms[] = {
#define FORM(id, fn_, shape, op, widths, mnemonic, operands) \
    {#id, #fn_, #op, mnemonic, operands, SH_##shape, (int)(op), widths, {.shape = x64_##fn_}},
#include "jit/x64_forms.def"
#undef FORM
};
#define NFORMS (sizeof forms / sizeof forms[0])

/* The arguments of each shape after the op/cc and the width. */
enum slot { K_END, K_REG, K_MEM, K_I32, K_I64, K_U64, K_U8, K_REL8, K_REL32 };
static const uint8_t shape_slots[SH_COUNT][3] = {
    [SH_W_R_R] = {K_REG, K_REG},      [SH_W_R_I64] = {K_REG, K_I64},   [SH_R_U64] = {K_REG, K_U64},
    [SH_W_R_M] = {K_REG, K_MEM},      [SH_W_M_R] = {K_MEM, K_REG},     [SH_W_M_I] = {K_MEM, K_I32},
    [SH_ALU_R_R] = {K_REG, K_REG},    [SH_ALU_R_I] = {K_REG, K_I32},   [SH_ALU_M_R] = {K_MEM, K_REG},
    [SH_ALU_M_I] = {K_MEM, K_I32},    [SH_W_R_R_I] = {K_REG, K_REG, K_I32},
    [SH_UNARY] = {K_REG},             [SH_SHIFT_R] = {K_REG},          [SH_SHIFT_R_I] = {K_REG, K_U8},
    [SH_CC_R] = {K_REG},              [SH_CC_W_R_R] = {K_REG, K_REG},  [SH_BITCOUNT] = {K_REG, K_REG},
    [SH_W_R] = {K_REG},               [SH_W] = {K_END},                [SH_R] = {K_REG},
    [SH_M] = {K_MEM},                 [SH_NONE] = {K_END},             [SH_REL32] = {K_REL32},
    [SH_REL8] = {K_REL8},             [SH_CC_REL32] = {K_REL32},       [SH_CC_REL8] = {K_REL8},
};

struct args {
    enum x64_reg reg[3];
    struct x64_mem mem;
    int64_t imm;
};

static unsigned encode_form(const struct form *f, x64_width w, int op, const struct args *a, uint8_t *out)
{
    const union form_fn *fn = &f->fn;
    enum x64_reg r0 = a->reg[0], r1 = a->reg[1];
    switch (f->shape) {
    case SH_W_R_R: return fn->W_R_R(out, w, r0, r1);
    case SH_W_R_I64: return fn->W_R_I64(out, w, r0, a->imm);
    case SH_R_U64: return fn->R_U64(out, r0, (uint64_t)a->imm);
    case SH_W_R_M: return fn->W_R_M(out, w, r0, a->mem);
    case SH_W_M_R: return fn->W_M_R(out, w, a->mem, r0);
    case SH_W_M_I: return fn->W_M_I(out, w, a->mem, (int32_t)a->imm);
    case SH_ALU_R_R: return fn->ALU_R_R(out, (enum x64_alu)op, w, r0, r1);
    case SH_ALU_R_I: return fn->ALU_R_I(out, (enum x64_alu)op, w, r0, (int32_t)a->imm);
    case SH_ALU_M_R: return fn->ALU_M_R(out, (enum x64_alu)op, w, a->mem, r0);
    case SH_ALU_M_I: return fn->ALU_M_I(out, (enum x64_alu)op, w, a->mem, (int32_t)a->imm);
    case SH_W_R_R_I: return fn->W_R_R_I(out, w, r0, r1, (int32_t)a->imm);
    case SH_UNARY: return fn->UNARY(out, (enum x64_unary)op, w, r0);
    case SH_SHIFT_R: return fn->SHIFT_R(out, (enum x64_shift)op, w, r0);
    case SH_SHIFT_R_I: return fn->SHIFT_R_I(out, (enum x64_shift)op, w, r0, (uint8_t)a->imm);
    case SH_CC_R: return fn->CC_R(out, (enum x64_cc)op, r0);
    case SH_CC_W_R_R: return fn->CC_W_R_R(out, (enum x64_cc)op, w, r0, r1);
    case SH_BITCOUNT: return fn->BITCOUNT(out, (enum x64_bitcount)op, w, r0, r1);
    case SH_W_R: return fn->W_R(out, w, r0);
    case SH_W: return fn->W(out, w);
    case SH_R: return fn->R(out, r0);
    case SH_M: return fn->M(out, a->mem);
    case SH_NONE: return fn->NONE(out);
    case SH_REL32: return fn->REL32(out, (int32_t)a->imm);
    case SH_REL8: return fn->REL8(out, (int8_t)a->imm);
    case SH_CC_REL32: return fn->CC_REL32(out, (enum x64_cc)op, (int32_t)a->imm);
    case SH_CC_REL8: return fn->CC_REL8(out, (enum x64_cc)op, (int8_t)a->imm);
    case SH_COUNT: break;
    }
    fail_msg("form %s: unknown shape", f->id);
    return 0;
}

/* ---- canonical text ------------------------------------------------------------
 * "mnemonic op, op" where an operand is a register name, "m<bits>[...]" or
 * "a[...]" (address only) with [base|index*scale|disp|d<disp bits>|a<address bits>],
 * "i<encoded bits>:0x<value at the operation's width>" or "rel<bits>:<offset>". */

static const char *const REGS[4][16] = {
    {"al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil", "r8b", "r9b", "r10b", "r11b", "r12b", "r13b", "r14b", "r15b"},
    {"ax", "cx", "dx", "bx", "sp", "bp", "si", "di", "r8w", "r9w", "r10w", "r11w", "r12w", "r13w", "r14w", "r15w"},
    {"eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "r8d", "r9d", "r10d", "r11d", "r12d", "r13d", "r14d",
     "r15d"},
    {"rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"},
};

static const char *reg_name(int r, unsigned bits)
{
    unsigned k = bits == 8 ? 0 : bits == 16 ? 1 : bits == 32 ? 2 : 3;
    return REGS[k][r & 15];
}

/* Zydis' condition suffixes, keyed by our enum so its values are checked too. */
static const char *const CC_NAMES[16] = {
    [X64_O] = "o", [X64_NO] = "no", [X64_B] = "b",  [X64_AE] = "nb", [X64_E] = "z",  [X64_NE] = "nz",
    [X64_BE] = "be", [X64_A] = "nbe", [X64_S] = "s", [X64_NS] = "ns", [X64_P] = "p", [X64_NP] = "np",
    [X64_L] = "l", [X64_GE] = "nl", [X64_LE] = "le", [X64_G] = "nle",
};

static uint64_t mask_bits(unsigned bits) { return bits >= 64 ? ~0ull : (1ull << bits) - 1; }
static int64_t sext_bits(uint64_t v, unsigned bits)
{
    return bits >= 64 ? (int64_t)v : (int64_t)(v << (64 - bits)) >> (64 - bits);
}
static bool fits8(int64_t v) { return v >= -128 && v <= 127; }

struct text {
    char s[256];
    size_t n;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->s + t->n, sizeof t->s - t->n, fmt, ap);
    va_end(ap);
    if (k > 0) t->n += (size_t)k < sizeof t->s - t->n ? (size_t)k : sizeof t->s - t->n - 1;
}

static void put_sep(struct text *t, unsigned i) { put(t, i ? ", " : " "); }

static void put_mem(struct text *t, const char *kind, const char *base, const char *index, unsigned scale,
                    int64_t disp, unsigned dbits, unsigned abits)
{
    put(t, "%s[%s|", kind, base);
    if (index) put(t, "%s*%u", index, scale);
    else put(t, "-");
    put(t, "|%" PRId64 "|d%u|a%u]", disp, dbits, abits);
}

static void decoded_text(const ZydisDecodedInstruction *in, const ZydisDecodedOperand *ops, struct text *t)
{
    put(t, "%s", ZydisMnemonicGetString(in->mnemonic));
    for (unsigned i = 0; i < in->operand_count_visible; i++) {
        const ZydisDecodedOperand *o = &ops[i];
        put_sep(t, i);
        switch (o->type) {
        case ZYDIS_OPERAND_TYPE_REGISTER:
            put(t, "%s", ZydisRegisterGetString(o->reg.value));
            break;
        case ZYDIS_OPERAND_TYPE_MEMORY: {
            char kind[8];
            if (o->mem.type == ZYDIS_MEMOP_TYPE_AGEN) snprintf(kind, sizeof kind, "a");
            else snprintf(kind, sizeof kind, "m%u", o->size);
            const char *base = o->mem.base == ZYDIS_REGISTER_NONE ? "-" : ZydisRegisterGetString(o->mem.base);
            const char *index = o->mem.index == ZYDIS_REGISTER_NONE ? NULL : ZydisRegisterGetString(o->mem.index);
            int64_t disp = o->mem.disp.value;
            if (disp >= INT32_MIN && disp <= (int64_t)UINT32_MAX) disp = (int32_t)(uint32_t)disp;
            put_mem(t, kind, base, index, o->mem.scale, disp, in->raw.disp.size, in->address_width);
            break;
        }
        case ZYDIS_OPERAND_TYPE_IMMEDIATE:
            if (o->imm.is_relative) put(t, "rel%u:%" PRId64, o->size, o->imm.value.s);
            else put(t, "i%u:0x%" PRIx64, o->size, o->imm.value.u & mask_bits(in->operand_width));
            break;
        default:
            put(t, "?type%d", (int)o->type);
            break;
        }
    }
}

/* The row's mnemonic at width w: "name" or "name W=other ...", plus a condition. */
static void want_mnemonic(const struct form *f, x64_width w, int op, struct text *t)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", f->mnemonic);
    const char *pick = NULL;
    for (char *save = NULL, *word = strtok_r(buf, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(word, '=');
        if (!eq) {
            if (!pick) pick = word;
        } else if ((unsigned)atoi(word) == w) {
            pick = eq + 1;
        }
    }
    put(t, "%s%s", pick ? pick : "?", f->op == CC ? CC_NAMES[op] : "");
}

static void want_mem(struct text *t, const char *kind, struct x64_mem m)
{
    unsigned abits = m.addr32 ? 32 : 64;
    const char *base = m.rip ? (m.addr32 ? "eip" : "rip") : m.base == X64_NOREG ? "-" : reg_name(m.base, abits);
    const char *index = m.index == X64_NOREG ? NULL : reg_name(m.index, abits);
    unsigned dbits = m.rip || m.base == X64_NOREG          ? 32
                     : m.disp == 0 && (m.base & 7) != RBP ? 0
                     : fits8(m.disp)                      ? 8
                                                          : 32;
    put_mem(t, kind, base, index, index ? m.scale : 0, m.disp, dbits, abits);
}

/* The intended disassembly of one encoding, from the row's operand spec. */
static void want_text(const struct form *f, x64_width w, int op, const struct args *a, struct text *t)
{
    want_mnemonic(f, w, op, t);
    unsigned bits = w * 8, nreg = 0, i = 0;
    char spec[64];
    snprintf(spec, sizeof spec, "%s", f->operands);
    for (char *save = NULL, *tok = strtok_r(spec, " ", &save); tok; tok = strtok_r(NULL, " ", &save), i++) {
        put_sep(t, i);
        int64_t imm = a->imm;
        if (strcmp(tok, "r:w") == 0) {
            put(t, "%s", reg_name(a->reg[nreg++], bits));
        } else if (tok[0] == 'r' && tok[1] >= '0' && tok[1] <= '9') {
            put(t, "%s", reg_name(a->reg[nreg++], (unsigned)atoi(tok + 1)));
        } else if (strcmp(tok, "m:w") == 0) {
            char kind[8];
            snprintf(kind, sizeof kind, "m%u", bits);
            want_mem(t, kind, a->mem);
        } else if (tok[0] == 'm') {
            want_mem(t, tok, a->mem);
        } else if (strcmp(tok, "a") == 0) {
            want_mem(t, "a", a->mem);
        } else if (strcmp(tok, "cl") == 0) {
            put(t, "cl");
        } else if (strcmp(tok, "i:w") == 0) {
            uint64_t v = (uint64_t)imm & mask_bits(bits);
            unsigned size = w == 1 || fits8(sext_bits(v, bits)) ? 8 : w == 2 ? 16 : 32;
            put(t, "i%u:0x%" PRIx64, size, v);
        } else if (strcmp(tok, "u:w") == 0) {
            put(t, "i%u:0x%" PRIx64, w > 4 ? 32 : bits, (uint64_t)imm & mask_bits(bits));
        } else if (strcmp(tok, "u8") == 0) {
            put(t, "i8:0x%" PRIx64, (uint64_t)imm & 0xff);
        } else if (strcmp(tok, "i64") == 0) {
            put(t, "i64:0x%" PRIx64, (uint64_t)imm);
        } else if (strncmp(tok, "rel", 3) == 0) {
            put(t, "%s:%" PRId64, tok, imm);
        } else if (strcmp(tok, "r:mov") == 0) {
            bool r32 = w == 8 && imm >= 0 && imm <= (int64_t)UINT32_MAX;
            put(t, "%s", reg_name(a->reg[nreg++], r32 ? 32 : bits));
        } else if (strcmp(tok, "i:mov") == 0) {
            if (w != 8) put(t, "i%u:0x%" PRIx64, bits, (uint64_t)imm & mask_bits(bits));
            else if (imm >= 0 && imm <= (int64_t)UINT32_MAX) put(t, "i32:0x%" PRIx64, (uint64_t)imm);
            else if (imm >= INT32_MIN && imm < 0) put(t, "i32:0x%" PRIx64, (uint64_t)imm);
            else put(t, "i64:0x%" PRIx64, (uint64_t)imm);
        } else {
            fail_msg("form %s: unknown operand kind '%s' in x64_forms.def", f->id, tok);
        }
    }
}

/* ---- operand values -------------------------------------------------------------- */

static const int64_t I32S[] = {0,      1,      -1,      127,       -128,      128,      -129,     255,
                               256,    0x7fff, -0x8000, 0x8000,    0xffff,    -0x8001,  INT32_MIN, INT32_MAX,
                               0x12345678};
static const int64_t I64S[] = {0,          1,          -1,          127,        -128,      128,
                               INT32_MIN,  INT32_MAX,  (int64_t)INT32_MIN - 1, 0x80000000, 0xffffffff,
                               0x100000000, INT64_MIN, INT64_MAX,   0x123456789abcdef0, -0x123456789abcdef0,
                               0xff,       0xffff};
static const int64_t U64S[] = {0, 1, -1, INT64_MIN, INT64_MAX, 0xffffffff, 0x100000000, 0x123456789abcdef0};
static const int64_t U8S[] = {0, 1, 7, 8, 31, 32, 63, 64, 127, 128, 255};
static const int64_t REL8S[] = {0, 1, -1, 2, -2, 127, -128};
static const int64_t REL32S[] = {0, 1, -1, 127, -128, 128, -129, INT32_MIN, INT32_MAX, 0x12345678};
static const int32_t DISPS[] = {0, 1, -1, 127, -128, 128, -129, INT32_MIN, INT32_MAX};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static const int64_t *slot_values(enum slot k, size_t *n)
{
    static int64_t regs[16];
    for (int r = 0; r < 16; r++) regs[r] = r;
    switch (k) {
    case K_REG: *n = 16; return regs;
    case K_I32: *n = N(I32S); return I32S;
    case K_I64: *n = N(I64S); return I64S;
    case K_U64: *n = N(U64S); return U64S;
    case K_U8: *n = N(U8S); return U8S;
    case K_REL8: *n = N(REL8S); return REL8S;
    case K_REL32: *n = N(REL32S); return REL32S;
    default: *n = 1; return NULL;
    }
}

/* Memory operands: every base at every displacement, every base with every legal
 * index (never rsp) and scale, absolute, index-only, rip-relative, and the same
 * again with the addr32 prefix. The first HARD ones also meet every other operand. */
static struct x64_mem mems[4096];
static size_t nmems;
#define HARD 8

static void add_mem(struct x64_mem m)
{
    assert_true(nmems < N(mems));
    mems[nmems++] = m;
}

static void build_mems(void)
{
    if (nmems) return;
    const struct x64_mem hard[HARD] = {
        x64_mem_bd(RSP, 0), x64_mem_bd(RBP, 0), x64_mem_bd(R12, -128), x64_mem_bd(R13, INT32_MIN),
        x64_mem_bis(R12, R12, 8, 127), x64_mem_bis(R13, R13, 2, 0), x64_mem_rip(-129),
        x64_mem_bis(X64_NOREG, RBP, 4, INT32_MAX),
    };
    for (unsigned i = 0; i < HARD; i++) add_mem(hard[i]);
    for (unsigned a32 = 0; a32 < 2; a32++) {
        size_t first = nmems;
        for (int b = 0; b < 16; b++)
            for (unsigned d = 0; d < N(DISPS); d++) add_mem(x64_mem_bd((enum x64_reg)b, DISPS[d]));
        for (int b = 0; b < 16; b++)
            for (int x = 0; x < 16; x++)
                for (unsigned s = 1; s <= 8; s *= 2)
                    if (x != RSP && (!a32 || (b + x + (int)s) % 3 == 0))
                        add_mem(x64_mem_bis((enum x64_reg)b, (enum x64_reg)x, s,
                                            DISPS[(unsigned)(b * 3 + x + s) % N(DISPS)]));
        for (unsigned d = 0; d < N(DISPS); d++) {
            add_mem(x64_mem_bis(X64_NOREG, X64_NOREG, 1, DISPS[d])); /* absolute [disp32] */
            add_mem(x64_mem_rip(DISPS[d]));
        }
        for (int x = 0; x < 16; x++)
            for (unsigned s = 1; s <= 8; s *= 2)
                if (x != RSP) add_mem(x64_mem_bis(X64_NOREG, (enum x64_reg)x, s, DISPS[(unsigned)x % N(DISPS)]));
        if (a32)
            for (size_t i = first; i < nmems; i++) mems[i].addr32 = true;
    }
}

/* ---- checking one encoding ---------------------------------------------------------- */

static ZydisDecoder decoder;
static ZydisFormatter formatter;

static void zydis_init(void)
{
    static bool done;
    if (done) return;
    assert_true(ZYAN_SUCCESS(ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)));
    assert_true(ZYAN_SUCCESS(ZydisFormatterInit(&formatter, ZYDIS_FORMATTER_STYLE_INTEL)));
    done = true;
}

struct stats {
    unsigned long checked, failed;
    unsigned long per_form[NFORMS], failed_form[NFORMS];
    unsigned shown_width[NFORMS]; /* the first failure of each row and width is shown */
};

static void hex(const uint8_t *b, unsigned n, char *out, size_t cap)
{
    size_t o = 0;
    out[0] = 0;
    for (unsigned i = 0; i < n && o + 4 < cap; i++) o += (size_t)snprintf(out + o, cap - o, i ? " %02x" : "%02x", b[i]);
}

static void check_one(size_t fi, x64_width w, int op, const struct args *a, struct stats *st)
{
    const struct form *f = &forms[fi];
    uint8_t buf[32];
    memset(buf, 0xa5, sizeof buf);
    unsigned n = encode_form(f, w, op, a, buf);
    struct text want = {0}, got = {0};
    want_text(f, w, op, a, &want);
    char intel[128] = "", bytes[100];
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    bool decoded = n >= 1 && n <= X64_MAX_LEN && ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, buf, n, &in, ops));
    if (decoded) {
        decoded_text(&in, ops, &got);
        ZydisFormatterFormatInstruction(&formatter, &in, ops, in.operand_count_visible, intel, sizeof intel,
                                        ZYDIS_RUNTIME_ADDRESS_NONE, NULL);
    }
    bool clean = true; /* nothing written past the returned length */
    for (unsigned i = n < sizeof buf ? n : sizeof buf; i < sizeof buf; i++) clean = clean && buf[i] == 0xa5;
    st->checked++;
    st->per_form[fi]++;
    if (decoded && in.length == n && clean && strcmp(want.s, got.s) == 0) return;
    st->failed++;
    if (st->failed_form[fi]++ == 0 || !(st->shown_width[fi] & w)) {
        st->shown_width[fi] |= w;
        hex(buf, n < 16 ? n : 16, bytes, sizeof bytes);
        print_error("form %s (x64_%s, width %u, op %d): bytes [%s] (%u)%s%s\n  want: %s\n  got:  %s (length %u) %s\n",
                    f->id, f->fn_name, w, op, bytes, n, clean ? "" : " WRITES PAST ITS LENGTH",
                    decoded ? "" : " DOES NOT DECODE", want.s, got.s, decoded ? in.length : 0, intel);
    }
}

/* Every operand combination of one row at one width and op: the full product of
 * the non-memory operands; each memory operand with two of those combinations in
 * turn, and the HARD memory operands with all of them. */
static void check_row_op(size_t fi, x64_width w, int op, struct stats *st)
{
    const uint8_t *slots = shape_slots[forms[fi].shape];
    const int64_t *vals[3] = {0};
    size_t nv[3] = {1, 1, 1}, combos = 1;
    bool has_mem = false;
    for (unsigned s = 0; s < 3 && slots[s] != K_END; s++) {
        if (slots[s] == K_MEM) {
            has_mem = true;
            continue;
        }
        vals[s] = slot_values(slots[s], &nv[s]);
        combos *= nv[s];
    }
    size_t mem_rounds = has_mem ? nmems : 1;
    for (size_t mi = 0; mi < mem_rounds; mi++) {
        for (size_t c = 0; c < combos; c++) {
            if (has_mem && mi >= HARD && c != (mi * 2) % combos && c != (mi * 2 + combos / 2 + 1) % combos) continue;
            struct args a = {.mem = has_mem ? mems[mi] : x64_mem_bd(RAX, 0)};
            size_t rest = c;
            unsigned nreg = 0;
            for (unsigned s = 0; s < 3 && slots[s] != K_END; s++) {
                if (slots[s] == K_MEM) continue;
                int64_t v = vals[s][rest % nv[s]];
                rest /= nv[s];
                if (slots[s] == K_REG) a.reg[nreg++] = (enum x64_reg)v;
                else a.imm = v;
            }
            check_one(fi, w, op, &a, st);
        }
    }
}

static void test_forms_decode(void **state)
{
    (void)state;
    zydis_init();
    build_mems();
    static struct stats st;
    memset(&st, 0, sizeof st);
    unsigned long form_widths = 0;
    for (size_t fi = 0; fi < NFORMS; fi++) {
        const struct form *f = &forms[fi];
        for (x64_width w = f->widths ? 1 : 0; w <= (f->widths ? 8u : 0u); w = w ? w * 2 : 1) {
            if (f->widths && !(f->widths & w)) continue;
            form_widths++;
            if (f->op == CC)
                for (int cc = 0; cc < 16; cc++) check_row_op(fi, w, cc, &st);
            else check_row_op(fi, w, f->op, &st);
            if (!f->widths) break;
        }
    }
    for (size_t fi = 0; fi < NFORMS; fi++) {
        if (st.per_form[fi] == 0) print_error("form %s was never checked\n", forms[fi].id);
        if (st.failed_form[fi])
            print_error("form %s: %lu of %lu encodings wrong\n", forms[fi].id, st.failed_form[fi], st.per_form[fi]);
    }
    print_message("x64 forms: %zu rows, %lu row x width pairs, %zu memory operands, %lu encodings decoded, %lu wrong\n",
                  NFORMS, form_widths, nmems, st.checked, st.failed);
    assert_int_equal(st.failed, 0);
}

/* ---- every function and op enumerator of x64_enc.h has a row -------------------------- */

static bool has_row(const char *fn, const char *op)
{
    for (size_t i = 0; i < NFORMS; i++)
        if (strcmp(forms[i].fn_name, fn) == 0 && (!op || strcmp(forms[i].op_name, op) == 0)) return true;
    return false;
}

/* The X64_* enumerators of `enum x64_<name> {...}` in the header text. */
static unsigned enumerators(const char *hdr, const char *name, char names[][32], unsigned cap)
{
    char head[64];
    snprintf(head, sizeof head, "enum x64_%s {", name);
    const char *p = strstr(hdr, head);
    if (!p) return 0;
    const char *end = strchr(p, '}');
    unsigned n = 0;
    for (p += strlen(head); p && p < end; p++) {
        if (strncmp(p, "X64_", 4) != 0 || (p[-1] != ' ' && p[-1] != '\n' && p[-1] != '{')) continue;
        size_t k = 0;
        while ((p[k] >= 'A' && p[k] <= 'Z') || (p[k] >= '0' && p[k] <= '9') || p[k] == '_') k++;
        if (n < cap && k < 32) {
            memcpy(names[n], p, k);
            names[n][k] = 0;
            n++;
        }
        p += k;
    }
    return n;
}

static void test_forms_complete(void **state)
{
    (void)state;
    char path[4096];
    if (getenv("CPVM_SOURCE_DIR")) {
        snprintf(path, sizeof path, "%s/vm/jit/x64_enc.h", tu_source_dir());
    } else { /* run by hand: next to this file's directory */
        const char *slash = strrchr(__FILE__, '/');
        snprintf(path, sizeof path, "%.*s/../jit/x64_enc.h", slash ? (int)(slash - __FILE__) : 1,
                 slash ? __FILE__ : ".");
    }
    size_t len;
    char *hdr = (char *)tu_read_file(path, &len);
    if (!hdr) fail_msg("cannot read %s (set CPVM_SOURCE_DIR)", path);
    unsigned fns = 0, ops = 0, missing = 0;
    /* the declarations (the inline definitions follow them) */
    const char *decl = "\nstatic inline unsigned x64_", *defs = strstr(hdr, "/* The definitions");
    for (const char *p = hdr; (p = strstr(p, decl)) != NULL && (!defs || p < defs); p++) {
        const char *name = p + strlen(decl), *paren = strchr(name, '(');
        const char *close = paren ? strchr(paren, ')') : NULL;
        if (!close) break;
        char fn[64], params[256];
        snprintf(fn, sizeof fn, "%.*s", (int)(paren - name), name);
        snprintf(params, sizeof params, "%.*s", (int)(close - paren), paren);
        fns++;
        if (!has_row(fn, NULL)) {
            print_error("x64_%s has no FORM row in vm/jit/x64_forms.def\n", fn);
            missing++;
            continue;
        }
        /* an op argument: every enumerator needs a row (conditions: the CC rows) */
        const char *e = strstr(params, "enum x64_");
        while (e && strncmp(e, "enum x64_reg", 12) == 0) e = strstr(e + 1, "enum x64_");
        if (!e) continue;
        char ename[32];
        size_t k = 0;
        for (e += strlen("enum x64_"); e[k] >= 'a' && e[k] <= 'z' && k < sizeof ename - 1; k++) ename[k] = e[k];
        ename[k] = 0;
        char names[32][32];
        unsigned nn = enumerators(hdr, ename, names, 32);
        if (nn == 0) {
            print_error("cannot find enum x64_%s in x64_enc.h\n", ename);
            missing++;
            continue;
        }
        if (strcmp(ename, "cc") == 0) {
            if (nn != 16 || !has_row(fn, "CC")) {
                print_error("x64_%s: needs CC rows (and enum x64_cc 16 conditions, found %u)\n", fn, nn);
                missing++;
            }
            ops += nn;
            continue;
        }
        for (unsigned i = 0; i < nn; i++, ops++) {
            if (has_row(fn, names[i])) continue;
            print_error("x64_%s with %s has no FORM row in vm/jit/x64_forms.def\n", fn, names[i]);
            missing++;
        }
    }
    free(hdr);
    print_message("x64_enc.h: %u encoder functions, %u (function, op enumerator) pairs, all with rows: %s\n", fns, ops,
                  missing ? "no" : "yes");
    assert_true(fns >= 30);
    assert_int_equal(missing, 0);
}

/* ---- whole compiled programs ------------------------------------------------------------ */

struct pb {
    cpvm_isa isa;
    uint8_t *code, *starts;
    size_t len, cap;
    uint32_t jt[64];
    size_t njt;
    bool after_term;
    unsigned count;
};

static void pb_bytes(struct pb *b, const uint8_t *bytes, unsigned n)
{
    if (b->len + n > b->cap) {
        b->cap = b->cap ? b->cap * 2 : 65536;
        b->code = realloc(b->code, b->cap);
        b->starts = realloc(b->starts, b->cap);
        assert_non_null(b->code);
        assert_non_null(b->starts);
    }
    memcpy(b->code + b->len, bytes, n);
    memset(b->starts + b->len, 0, n);
    b->starts[b->len] = 1;
    b->len += n;
}

/* Appends one instruction; a branch/jump target of UINT32_MAX means "the next instruction". */
static void pb_insn(struct pb *b, enum op op, struct dec_insn in)
{
    uint8_t out[LIMIT_INSN_MAX_LEN];
    uint32_t pc = (uint32_t)b->len;
    in.op = (uint8_t)op;
    in.pc = pc;
    bool to_next = in.target == UINT32_MAX;
    unsigned n = 0;
    if (to_next) {
        /* the encoding's length depends on the offset: settle on a fixpoint */
        in.target = pc + 2;
        for (int round = 0; round < 8; round++) {
            n = dec_encode(b->isa, &in, pc, out);
            if (n == 0 || in.target == pc + n) break;
            in.target = pc + n;
        }
        assert_int_equal(in.target, pc + n);
    } else {
        n = dec_encode(b->isa, &in, pc, out);
    }
    assert_true(n > 0);
    if (b->after_term && b->njt < N(b->jt) && b->count % 97 == 0) b->jt[b->njt++] = pc;
    pb_bytes(b, out, n);
    b->after_term = isa_is_terminator(op);
    b->count++;
}

static const uint8_t PREGS[] = {CPVM_REG_A1 /* rax */, CPVM_REG_A2 /* rdx */, 3 /* t1 = rbp */, 4 /* t2 = r12 */,
                                2 /* t0 = r13 */, 0 /* ra = rbx */};
static const int32_t PIMMS[] = {0, 1, -1, 31, 32, 63, 64, 127, -128, 128, 0x7fff, -32769, INT32_MIN, INT32_MAX};
static const uint64_t PIMM64[] = {0, 1, UINT64_MAX, 0x80000000, 0xffffffff, 0x100000000, 0x8000000000000000ull,
                                  0x123456789abcdef0ull};
static const int32_t PADDRS[] = {0, 0x10000, -1, INT32_MAX, 0x20000 - 3};

/* Every instruction of the ISA over the register and immediate sets above. */
static void build_program(struct pb *b)
{
    const uint32_t targets[] = {UINT32_MAX, 0, 1}; /* next (valid), start (valid, backward), inside (invalid) */
    for (unsigned o = 0; o < OP_COUNT; o++) {
        enum op op = (enum op)o;
        if (!isa_has(b->isa, op)) continue;
        unsigned cls = isa_rows[op].cls;
        struct dec_insn in = {0};
        size_t R = N(PREGS);
        switch (cls) {
        case CLS_N: pb_insn(b, op, in); break;
        case CLS_I:
            for (size_t i = 0; i < N(PIMMS); i++) pb_insn(b, op, (struct dec_insn){.i1 = PIMMS[i]});
            break;
        case CLS_I_I:
            for (size_t i = 0; i < N(PADDRS); i++)
                for (size_t j = 0; j < N(PIMMS); j += 3)
                    pb_insn(b, op, (struct dec_insn){.i1 = PADDRS[i], .i2 = PIMMS[j]});
            break;
        case CLS_R_I:
            for (size_t r = 0; r < R; r++)
                for (size_t i = 0; i < N(PIMMS); i++) pb_insn(b, op, (struct dec_insn){.a = PREGS[r], .i1 = PIMMS[i]});
            break;
        case CLS_R_I_O:
            for (size_t r = 0; r < R; r++)
                for (size_t i = 0; i < N(PIMMS); i += 2)
                    pb_insn(b, op, (struct dec_insn){.a = PREGS[r], .i1 = PIMMS[i], .target = targets[i % 3]});
            break;
        case CLS_R_I_I:
            for (size_t r = 0; r < R; r++)
                for (size_t i = 0; i < N(PADDRS); i++)
                    pb_insn(b, op, (struct dec_insn){.a = PREGS[r], .i1 = PADDRS[i], .i2 = PIMMS[(r + i) % N(PIMMS)]});
            break;
        case CLS_RR_I:
            for (size_t r = 0; r < R * R; r++)
                for (size_t i = 0; i < N(PIMMS); i++)
                    pb_insn(b, op, (struct dec_insn){.a = PREGS[r / R], .b = PREGS[r % R], .i1 = PIMMS[i]});
            break;
        case CLS_RR_O:
            for (size_t r = 0; r < R * R; r++)
                pb_insn(b, op, (struct dec_insn){.a = PREGS[r / R], .b = PREGS[r % R], .target = targets[r % 3]});
            break;
        case CLS_RRR:
            for (size_t r = 0; r < R * R * R; r++)
                pb_insn(b, op, (struct dec_insn){.a = PREGS[r / R / R], .b = PREGS[r / R % R], .d = PREGS[r % R]});
            break;
        case CLS_O:
            for (size_t t = 0; t < 3; t++) pb_insn(b, op, (struct dec_insn){.target = targets[t]});
            break;
        case CLS_RR:
            for (size_t r = 0; r < R * R; r++) pb_insn(b, op, (struct dec_insn){.a = PREGS[r / R], .b = PREGS[r % R]});
            break;
        case CLS_RR_I_I:
            for (size_t r = 0; r < R * R; r++)
                for (size_t i = 0; i < N(PADDRS); i++)
                    pb_insn(b, op, (struct dec_insn){.a = PREGS[r / R], .b = PREGS[r % R],
                                                     .i1 = PIMMS[(r + i) % N(PIMMS)], .i2 = PADDRS[i]});
            break;
        case CLS_R_I64:
            for (size_t r = 0; r < R; r++)
                for (size_t i = 0; i < N(PIMM64); i++)
                    pb_insn(b, op, (struct dec_insn){.a = PREGS[r], .imm64 = PIMM64[i]});
            break;
        default: fail_msg("unknown class %u", cls);
        }
    }
    pb_insn(b, OP_trap, (struct dec_insn){0}); /* JamV1: nothing may fall off the end */
    b->jt[b->njt++] = 1;                       /* an invalid entry: the panic stub */
}

static cpvm_program *pb_program(struct pb *b)
{
    size_t mlen = (b->len + 7) / 8;
    uint8_t *mask = calloc(mlen ? mlen : 1, 1);
    assert_non_null(mask);
    for (size_t k = 0; k < b->len; k++)
        if (b->starts[k]) mask[k / 8] |= (uint8_t)(1u << (k % 8));
    struct writer_parts parts = {.isa = b->isa, .jump_table = b->jt, .jump_table_count = b->njt, .code = b->code,
                                 .code_len = b->len, .bitmask = mask};
    uint8_t *raw = NULL;
    size_t raw_len = 0;
    struct cpvm_error err = {0};
    assert_int_equal(writer_build(&parts, true, &raw, &raw_len, &err), CPVM_OK);
    cpvm_program *p = NULL;
    if (cpvm_program_parse_raw(raw, raw_len, b->isa, 0, &p, &err) != CPVM_OK) fail_msg("parse: %s", err.detail);
    free(raw);
    free(mask);
    return p;
}

struct native_stats {
    unsigned long modules, guest_insns, x64_insns, bytes, targets;
};

static void native_fail(const struct jit_code *jc, size_t at, const char *what, const char *ctx)
{
    char bytes[100];
    size_t n = jc->len - at < 16 ? jc->len - at : 16;
    hex(jc->code + at, (unsigned)n, bytes, sizeof bytes);
    fail_msg("%s: native offset 0x%zx: %s [%s]", ctx, at, what, bytes);
}

/* Decodes [from, to) completely; marks instruction starts; records branch targets. */
static void decode_range(const struct jit_code *jc, size_t from, size_t to, uint8_t *is_start, uint32_t *targets,
                         size_t *ntargets, struct native_stats *st, const char *ctx)
{
    size_t at = from;
    while (at < to) {
        ZydisDecodedInstruction in;
        ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
        if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, jc->code + at, to - at, &in, ops)))
            native_fail(jc, at, "does not decode within its guest instruction's code", ctx);
        is_start[at] = 1;
        for (unsigned i = 0; i < in.operand_count_visible; i++) {
            int64_t rel;
            if (ops[i].type == ZYDIS_OPERAND_TYPE_IMMEDIATE && ops[i].imm.is_relative) rel = ops[i].imm.value.s;
            else if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && ops[i].mem.base == ZYDIS_REGISTER_RIP)
                rel = ops[i].mem.disp.value;
            else continue;
            int64_t t = (int64_t)at + in.length + rel;
            if (t < 0 || t > (int64_t)jc->len) native_fail(jc, at, "target outside the code", ctx);
            targets[(*ntargets)++] = (uint32_t)t;
        }
        at += in.length;
        st->x64_insns++;
    }
}

static void check_native(const struct jit_code *jc, uint32_t jt_len, struct native_stats *st, const char *ctx)
{
    assert_true(jc->len >= (size_t)jt_len * 4);
    size_t table = jc->len - (size_t)jt_len * 4;
    assert_true(table % 4 == 0);
    uint8_t *is_start = calloc(jc->len + 1, 1);
    uint32_t *targets = malloc(sizeof *targets * (jc->len + 1)); /* at most one per 2 bytes */
    assert_non_null(is_start);
    assert_non_null(targets);
    size_t ntargets = 0;
    size_t prev = 0;
    for (size_t i = 0; i <= jc->ninsns; i++) {
        size_t next = i < jc->ninsns ? jc->insns[i].native : table;
        if (next < prev || next > table) native_fail(jc, next, "guest instruction map out of order", ctx);
        decode_range(jc, prev, next, is_start, targets, &ntargets, st, ctx);
        prev = next;
    }
    is_start[table] = 1; /* lea of the table (also when it is empty) */
    for (size_t i = 0; i < ntargets; i++)
        if (!is_start[targets[i]])
            native_fail(jc, targets[i], "branch or rip-relative target is not an instruction start", ctx);
    for (uint32_t i = 0; i < jt_len; i++) {
        int32_t off;
        memcpy(&off, jc->code + table + 4 * (size_t)i, 4);
        int64_t t = (int64_t)table + off;
        if (t < 0 || t >= (int64_t)table || !is_start[t])
            native_fail(jc, table + 4 * (size_t)i, "bad jump table entry", ctx);
    }
    for (size_t i = 0; i < jc->nblocks; i++)
        if (!is_start[jc->blocks[i].native])
            native_fail(jc, jc->blocks[i].native, "block head inside an instruction", ctx);
    assert_true(is_start[jc->entry_off] && is_start[jc->restore_off]);
    st->guest_insns += jc->ninsns;
    st->bytes += jc->len;
    st->targets += ntargets;
    free(is_start);
    free(targets);
}

static void test_compiled_programs_decode(void **state)
{
    (void)state;
    zydis_init();
    struct native_stats st = {0};
    unsigned long programs = 0;
    for (unsigned isa = 0; isa < CPVM_ISA_COUNT; isa++) {
        struct pb b = {.isa = (cpvm_isa)isa};
        build_program(&b);
        cpvm_program *p = pb_program(&b);
        programs++;
        /* plain, metered, metered + step tracing, asynchronous metering, GP v0.4 */
        for (unsigned cfgi = 0; cfgi < 5; cfgi++) {
            struct cpvm_module_config cfg;
            cpvm_module_config_default(&cfg);
            cfg.backend = CPVM_BACKEND_COMPILER;
            cfg.gas_metering = cfgi >= 1;
            cfg.step_tracing = cfgi == 2;
            cfg.gas_async = cfgi == 3;
            cfg.compat = cfgi == 4 ? CPVM_COMPAT_GP_V04 : CPVM_COMPAT_POLKAVM_035;
            cpvm_module *m = NULL;
            struct cpvm_error err = {0};
            if (cpvm_module_new(p, &cfg, &m, &err) != CPVM_OK)
                fail_msg("%s: %s", cpvm_isa_name((cpvm_isa)isa), err.detail);
            const char *why = NULL;
            if (cpvm_module_backend(m, &why) != CPVM_BACKEND_COMPILER) {
                cpvm_module_free(m);
                cpvm_program_free(p);
                free(b.code);
                free(b.starts);
                print_message("compiler unavailable (%s): skipped\n", why ? why : "?");
                skip();
            }
            char ctx[96];
            snprintf(ctx, sizeof ctx, "%s config %u (%u guest instructions)", cpvm_isa_name((cpvm_isa)isa), cfgi,
                     b.count);
            /* every instruction was compiled (the programs have no unreachable code) */
            if (m->jit->ninsns != b.count) fail_msg("%s: %zu instructions compiled", ctx, m->jit->ninsns);
            check_native(m->jit, program_jump_table_len(p), &st, ctx);
            st.modules++;
            cpvm_module_free(m);
        }
        cpvm_program_free(p);
        free(b.code);
        free(b.starts);
    }
    print_message("compiled: %lu programs (every instruction of %u ISAs) x 5 configurations = %lu modules, %lu guest "
                  "instructions, %lu native bytes, %lu x86-64 instructions decoded, %lu targets checked\n",
                  programs, CPVM_ISA_COUNT, st.modules, st.guest_insns, st.bytes, st.x64_insns, st.targets);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms_complete),
        cmocka_unit_test(test_forms_decode),
        cmocka_unit_test(test_compiled_programs_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
