/* A pure x86-64 encoder for the forms the compiler emits (x64_forms.def):
 * typed operands in, at most 15 bytes out. No other file writes opcode bytes. */
#ifndef CPVM_X64_ENC_H
#define CPVM_X64_ENC_H

#include <stdbool.h>
#include <stdint.h>

enum x64_reg {
    RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
    R8, R9, R10, R11, R12, R13, R14, R15,
    X64_NOREG = -1,
};

/* Operand size in bytes: 1, 2, 4 or 8, as far as each form has it (x64_forms.def);
 * a width the form lacks aborts (CPVM_BUG). */
typedef unsigned x64_width;

/* [base + index*scale + disp]; base X64_NOREG = absolute disp32; rip = [rip + disp]
 * (disp relative to the end of the instruction); addr32 adds the 0x67 prefix so the
 * address is computed in 32 bits. */
struct x64_mem { /* 8 bytes: passed and built in one register */
    int32_t disp;
    int8_t base, index;
    uint8_t scale; /* 1, 2, 4, 8 */
    bool addr32 : 1;
    bool rip : 1;
};

static inline struct x64_mem x64_mem_bd(enum x64_reg base, int32_t disp)
{
    return (struct x64_mem){.base = (int8_t)base, .index = X64_NOREG, .scale = 1, .disp = disp};
}
static inline struct x64_mem x64_mem_bis(enum x64_reg base, enum x64_reg index, unsigned scale, int32_t disp)
{
    return (struct x64_mem){.base = (int8_t)base, .index = (int8_t)index, .scale = (uint8_t)scale, .disp = disp};
}
static inline struct x64_mem x64_mem_rip(int32_t disp)
{
    return (struct x64_mem){.base = X64_NOREG, .index = X64_NOREG, .scale = 1, .disp = disp, .rip = true};
}

enum x64_alu { X64_ADD = 0, X64_OR = 1, X64_AND = 4, X64_SUB = 5, X64_XOR = 6, X64_CMP = 7 };
enum x64_shift { X64_ROL = 0, X64_ROR = 1, X64_SHL = 4, X64_SHR = 5, X64_SAR = 7 };
enum x64_unary { X64_NOT = 2, X64_NEG = 3, X64_MUL = 4, X64_IMUL1 = 5, X64_DIV = 6, X64_IDIV = 7 };
enum x64_cc {
    X64_O = 0, X64_NO, X64_B, X64_AE, X64_E, X64_NE, X64_BE, X64_A,
    X64_S, X64_NS, X64_P, X64_NP, X64_L, X64_GE, X64_LE, X64_G,
};
enum x64_bitcount { X64_POPCNT = 0xb8, X64_TZCNT = 0xbc, X64_LZCNT = 0xbd };

#define X64_MAX_LEN 15

/* Every function writes one instruction to out[] and returns its length. */
static inline unsigned x64_mov_rr(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src);
static inline unsigned x64_mov_ri(uint8_t *out, x64_width w, enum x64_reg dst, int64_t imm); /* picks the short form */
static inline unsigned x64_movabs(uint8_t *out, enum x64_reg dst, uint64_t imm);
static inline unsigned x64_load(uint8_t *out, x64_width w, enum x64_reg dst, struct x64_mem m);      /* mov r, [m] */
static inline unsigned x64_store(uint8_t *out, x64_width w, struct x64_mem m, enum x64_reg src);     /* mov [m], r */
static inline unsigned x64_store_imm(uint8_t *out, x64_width w, struct x64_mem m, int32_t imm);     /* mov [m], imm */
static inline unsigned x64_movzx(uint8_t *out, x64_width from, enum x64_reg dst, enum x64_reg src);  /* from 1|2 */
static inline unsigned x64_movzx_m(uint8_t *out, x64_width from, enum x64_reg dst, struct x64_mem m);
static inline unsigned x64_movsx(uint8_t *out, x64_width from, enum x64_reg dst, enum x64_reg src);  /* from 1|2|4, to 64 */
static inline unsigned x64_movsx_m(uint8_t *out, x64_width from, enum x64_reg dst, struct x64_mem m);
static inline unsigned x64_lea(uint8_t *out, x64_width w, enum x64_reg dst, struct x64_mem m);
static inline unsigned x64_alu_rr(uint8_t *out, enum x64_alu op, x64_width w, enum x64_reg dst, enum x64_reg src);
static inline unsigned x64_alu_ri(uint8_t *out, enum x64_alu op, x64_width w, enum x64_reg dst, int32_t imm);
static inline unsigned x64_alu_mi(uint8_t *out, enum x64_alu op, x64_width w, struct x64_mem m, int32_t imm);
static inline unsigned x64_test_rr(uint8_t *out, x64_width w, enum x64_reg a, enum x64_reg b);
static inline unsigned x64_imul_rr(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src);
static inline unsigned x64_imul_rri(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src, int32_t imm);
static inline unsigned x64_unary(uint8_t *out, enum x64_unary op, x64_width w, enum x64_reg r);
static inline unsigned x64_shift_cl(uint8_t *out, enum x64_shift op, x64_width w, enum x64_reg r);
static inline unsigned x64_shift_i(uint8_t *out, enum x64_shift op, x64_width w, enum x64_reg r, uint8_t count);
static inline unsigned x64_setcc(uint8_t *out, enum x64_cc cc, enum x64_reg r);
static inline unsigned x64_cmov(uint8_t *out, enum x64_cc cc, x64_width w, enum x64_reg dst, enum x64_reg src);
static inline unsigned x64_bitcount(uint8_t *out, enum x64_bitcount op, x64_width w, enum x64_reg dst, enum x64_reg src);
static inline unsigned x64_bswap(uint8_t *out, x64_width w, enum x64_reg r);
static inline unsigned x64_cqo(uint8_t *out, x64_width w); /* cdq for 4, cqo for 8 */
static inline unsigned x64_push(uint8_t *out, enum x64_reg r);
static inline unsigned x64_pop(uint8_t *out, enum x64_reg r);
static inline unsigned x64_ret(uint8_t *out);
static inline unsigned x64_int3(uint8_t *out);
static inline unsigned x64_jmp_r(uint8_t *out, enum x64_reg r);
/* Branches with a rel32 displacement relative to the end of the instruction. */
static inline unsigned x64_jmp_rel32(uint8_t *out, int32_t rel);
static inline unsigned x64_jcc_rel32(uint8_t *out, enum x64_cc cc, int32_t rel);

/* The definitions, inline so that the compiler's constant operands (widths, the
 * guest memory operand [r15 + rcx]) fold into direct byte writes. The memory
 * forms always: a memory operand passed at run time costs ~100 instructions. */
#define X64_MEM_FORM __attribute__((always_inline))
#include <string.h>

#include "../common/error.h"

/* The r/m operand: a register or a memory reference. */
struct x64_rm {
    bool is_mem;
    enum x64_reg reg;
    struct x64_mem mem;
};

static inline struct x64_rm x64_R(enum x64_reg r) { return (struct x64_rm){.is_mem = false, .reg = r}; }
static inline struct x64_rm x64_M(struct x64_mem m) { return (struct x64_rm){.is_mem = true, .mem = m}; }

enum {
    X64_P66 = 1u << 0,  /* operand-size override (16-bit) */
    X64_PF3 = 1u << 1,  /* mandatory prefix of popcnt/lzcnt/tzcnt */
    X64_BREG = 1u << 2, /* the ModRM.reg operand is an 8-bit register: spl..dil need a REX */
    X64_BRM = 1u << 3,  /* the ModRM.rm operand is an 8-bit register: the same */
};

static inline bool x64_fits8(int64_t v) { return v >= -128 && v <= 127; }

/* An operation width is one of `allowed` (a mask of 1|2|4|8). */
static inline void x64_check_width(x64_width w, unsigned allowed)
{
    /* one test: w is a power of two in `allowed` (1|2|4|8 at most) */
    if (__builtin_expect((w & (w - 1)) || !(w & allowed & 15), 0)) CPVM_BUG("x64: width %u not encodable here", w);
}

static inline bool x64_byte_reg_needs_rex(unsigned r) { return r >= 4 && r <= 7; }

/* Emits [prefixes][REX][opcode][ModRM][SIB][disp] and returns the length. */
/* Inlined into every form so that the constant flags and opcode fold away. */
static inline __attribute__((always_inline)) unsigned x64_encode(uint8_t *out, unsigned flags, bool w, const uint8_t *op,
                                                             unsigned oplen, unsigned reg, struct x64_rm rm)
{
    unsigned n = 0;
    if (flags & X64_P66) out[n++] = 0x66;
    if (flags & X64_PF3) out[n++] = 0xf3;
    if (rm.is_mem && rm.mem.addr32) out[n++] = 0x67;
    unsigned rex = (w ? 8u : 0u) | ((reg & 8) ? 4u : 0u);
    bool need_rex = w || (reg & 8);
    if ((flags & X64_BREG) && x64_byte_reg_needs_rex(reg & 15)) need_rex = true;
    if (!rm.is_mem) {
        if (rm.reg & 8) rex |= 1, need_rex = true;
        if ((flags & X64_BRM) && x64_byte_reg_needs_rex((unsigned)rm.reg)) need_rex = true;
    } else {
        if (rm.mem.base != X64_NOREG && (rm.mem.base & 8)) rex |= 1, need_rex = true;
        if (rm.mem.index != X64_NOREG && (rm.mem.index & 8)) rex |= 2, need_rex = true;
    }
    if (need_rex) out[n++] = (uint8_t)(0x40 | rex);
    memcpy(out + n, op, oplen);
    n += oplen;
    unsigned r3 = (reg & 7) << 3;
    if (!rm.is_mem) {
        out[n++] = (uint8_t)(0xc0 | r3 | (rm.reg & 7));
        return n;
    }
    struct x64_mem m = rm.mem;
    if (m.rip) {
        out[n++] = (uint8_t)(0x05 | r3);
        memcpy(out + n, &m.disp, 4);
        return n + 4;
    }
    unsigned ss = m.scale == 8 ? 3 : m.scale == 4 ? 2 : m.scale == 2 ? 1 : 0;
    if (m.index == (int8_t)RSP) CPVM_BUG("rsp cannot be an index");
    if (m.base == X64_NOREG) {
        /* [index*scale + disp32] or absolute [disp32]: SIB with base = 101, mod = 00 */
        unsigned idx = m.index == X64_NOREG ? 4u : (unsigned)(m.index & 7);
        out[n++] = (uint8_t)(0x04 | r3);
        out[n++] = (uint8_t)(ss << 6 | idx << 3 | 5);
        memcpy(out + n, &m.disp, 4);
        return n + 4;
    }
    unsigned base = (unsigned)(m.base & 7);
    unsigned mod = (m.disp == 0 && base != 5) ? 0u : x64_fits8(m.disp) ? 1u : 2u;
    if (m.index == X64_NOREG && base != 4) {
        out[n++] = (uint8_t)(mod << 6 | r3 | base);
    } else {
        unsigned idx = m.index == X64_NOREG ? 4u : (unsigned)(m.index & 7);
        out[n++] = (uint8_t)(mod << 6 | r3 | 4);
        out[n++] = (uint8_t)(ss << 6 | idx << 3 | base);
    }
    if (mod == 1) out[n++] = (uint8_t)(int8_t)m.disp;
    if (mod == 2) {
        memcpy(out + n, &m.disp, 4);
        n += 4;
    }
    return n;
}

/* An opcode with the register in its low three bits: [66][REX][op...+r]. */
static inline unsigned x64_encode_o(uint8_t *out, unsigned flags, bool w, const uint8_t *op, unsigned oplen, enum x64_reg r)
{
    unsigned n = 0;
    if (flags & X64_P66) out[n++] = 0x66;
    if (w || (r & 8) || ((flags & X64_BRM) && x64_byte_reg_needs_rex((unsigned)r)))
        out[n++] = (uint8_t)(0x40 | (w ? 8 : 0) | ((r & 8) ? 1 : 0));
    memcpy(out + n, op, oplen);
    n += oplen;
    out[n - 1] = (uint8_t)(out[n - 1] + (r & 7));
    return n;
}

static inline unsigned x64_put_imm(uint8_t *out, unsigned n, int64_t imm, unsigned size)
{
    for (unsigned i = 0; i < size; i++) out[n + i] = (uint8_t)((uint64_t)imm >> (8 * i));
    return n + size;
}

/* The usual width convention of the integer instructions: the byte form's opcode is
 * one less than the full-size one (88/89, c6/c7, f6/f7, d2/d3, 84/85, 00/01, ...),
 * 16-bit adds 0x66, 64-bit REX.W. `reg_is_operand`: ModRM.reg names a register of
 * width w (not an opcode extension), so at width 1 it is a byte register too. */
static inline __attribute__((always_inline)) unsigned x64_encode_w(uint8_t *out, x64_width w, uint8_t op_full, bool reg_is_operand, unsigned reg, struct x64_rm rm)
{
    x64_check_width(w, 1 | 2 | 4 | 8);
    uint8_t op = w == 1 ? (uint8_t)(op_full - 1) : op_full;
    unsigned flags = w == 2 ? X64_P66 : w == 1 ? (X64_BRM | (reg_is_operand ? X64_BREG : 0)) : 0;
    return x64_encode(out, flags, w == 8, &op, 1, reg, rm);
}

/* Prefix flags of an instruction with no byte form (imul, cmov, lea, bit counts). */
static inline unsigned x64_wide_flags(x64_width w)
{
    x64_check_width(w, 2 | 4 | 8);
    return w == 2 ? X64_P66 : 0;
}

/* The immediate of a width-w operation, as the CPU sees it after sign extension. */
static inline int64_t x64_imm_at_width(int64_t imm, x64_width w)
{
    return w == 1 ? (int8_t)imm : w == 2 ? (int16_t)imm : w == 4 ? (int32_t)imm : imm;
}

static inline unsigned x64_mov_rr(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    return x64_encode_w(out, w, 0x89, true, src, x64_R(dst));
}

static inline unsigned x64_mov_ri(uint8_t *out, x64_width w, enum x64_reg dst, int64_t imm)
{
    x64_check_width(w, 1 | 2 | 4 | 8);
    if (w == 8 && (imm < INT32_MIN || imm > (int64_t)UINT32_MAX)) return x64_movabs(out, dst, (uint64_t)imm);
    if (w == 8 && imm < 0) { /* mov r/m64, imm32 (sign-extended) */
        uint8_t op = 0xc7;
        unsigned n = x64_encode(out, 0, true, &op, 1, 0, x64_R(dst));
        return x64_put_imm(out, n, imm, 4);
    }
    if (w == 1) {
        uint8_t op = 0xb0; /* mov r8, imm8 */
        return x64_put_imm(out, x64_encode_o(out, X64_BRM, false, &op, 1, dst), imm, 1);
    }
    /* mov r16, imm16 / mov r32, imm32, which zero-extends into the full register */
    uint8_t op = 0xb8;
    return x64_put_imm(out, x64_encode_o(out, w == 2 ? X64_P66 : 0, false, &op, 1, dst), imm, w == 2 ? 2 : 4);
}

static inline unsigned x64_movabs(uint8_t *out, enum x64_reg dst, uint64_t imm)
{
    uint8_t op = 0xb8;
    return x64_put_imm(out, x64_encode_o(out, 0, true, &op, 1, dst), (int64_t)imm, 8);
}

static inline X64_MEM_FORM unsigned x64_load(uint8_t *out, x64_width w, enum x64_reg dst, struct x64_mem m)
{
    return x64_encode_w(out, w, 0x8b, true, dst, x64_M(m));
}

static inline X64_MEM_FORM unsigned x64_store(uint8_t *out, x64_width w, struct x64_mem m, enum x64_reg src)
{
    return x64_encode_w(out, w, 0x89, true, src, x64_M(m));
}

static inline X64_MEM_FORM unsigned x64_store_imm(uint8_t *out, x64_width w, struct x64_mem m, int32_t imm)
{
    unsigned n = x64_encode_w(out, w, 0xc7, false, 0, x64_M(m));
    return x64_put_imm(out, n, imm, w == 8 ? 4 : w);
}

static inline unsigned x64_movzx(uint8_t *out, x64_width from, enum x64_reg dst, enum x64_reg src)
{
    x64_check_width(from, 1 | 2);
    uint8_t op[2] = {0x0f, from == 1 ? 0xb6 : 0xb7};
    return x64_encode(out, from == 1 ? X64_BRM : 0, false, op, 2, dst, x64_R(src));
}

static inline X64_MEM_FORM unsigned x64_movzx_m(uint8_t *out, x64_width from, enum x64_reg dst, struct x64_mem m)
{
    x64_check_width(from, 1 | 2);
    uint8_t op[2] = {0x0f, from == 1 ? 0xb6 : 0xb7};
    return x64_encode(out, 0, false, op, 2, dst, x64_M(m));
}

static inline unsigned x64_movsx(uint8_t *out, x64_width from, enum x64_reg dst, enum x64_reg src)
{
    x64_check_width(from, 1 | 2 | 4);
    if (from == 4) {
        uint8_t op = 0x63; /* movsxd */
        return x64_encode(out, 0, true, &op, 1, dst, x64_R(src));
    }
    uint8_t op[2] = {0x0f, from == 1 ? 0xbe : 0xbf};
    return x64_encode(out, from == 1 ? X64_BRM : 0, true, op, 2, dst, x64_R(src));
}

static inline X64_MEM_FORM unsigned x64_movsx_m(uint8_t *out, x64_width from, enum x64_reg dst, struct x64_mem m)
{
    x64_check_width(from, 1 | 2 | 4);
    if (from == 4) {
        uint8_t op = 0x63;
        return x64_encode(out, 0, true, &op, 1, dst, x64_M(m));
    }
    uint8_t op[2] = {0x0f, from == 1 ? 0xbe : 0xbf};
    return x64_encode(out, 0, true, op, 2, dst, x64_M(m));
}

static inline X64_MEM_FORM unsigned x64_lea(uint8_t *out, x64_width w, enum x64_reg dst, struct x64_mem m)
{
    uint8_t op = 0x8d;
    return x64_encode(out, x64_wide_flags(w), w == 8, &op, 1, dst, x64_M(m));
}

static inline unsigned x64_alu_rr(uint8_t *out, enum x64_alu alu, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    return x64_encode_w(out, w, (uint8_t)(alu << 3 | 1), true, src, x64_R(dst)); /* op r/m, r */
}

/* 80 /op ib (bytes), 83 /op ib (sign-extended), 81 /op iw|id. */
static inline unsigned x64_alu_imm(uint8_t *out, enum x64_alu alu, x64_width w, struct x64_rm dst, int32_t imm)
{
    x64_check_width(w, 1 | 2 | 4 | 8);
    int64_t v = x64_imm_at_width(imm, w);
    bool short_imm = w == 1 || x64_fits8(v);
    uint8_t op = w == 1 ? 0x80 : short_imm ? 0x83 : 0x81;
    unsigned flags = w == 2 ? X64_P66 : w == 1 ? X64_BRM : 0;
    unsigned n = x64_encode(out, flags, w == 8, &op, 1, alu, dst);
    return x64_put_imm(out, n, v, short_imm ? 1 : w == 2 ? 2 : 4);
}

static inline unsigned x64_alu_ri(uint8_t *out, enum x64_alu alu, x64_width w, enum x64_reg dst, int32_t imm)
{
    return x64_alu_imm(out, alu, w, x64_R(dst), imm);
}

static inline unsigned x64_alu_mi(uint8_t *out, enum x64_alu alu, x64_width w, struct x64_mem m, int32_t imm)
{
    return x64_alu_imm(out, alu, w, x64_M(m), imm);
}

static inline X64_MEM_FORM unsigned x64_alu_mr(uint8_t *out, enum x64_alu alu, x64_width w, struct x64_mem m,
                                              enum x64_reg src)
{
    return x64_encode_w(out, w, (uint8_t)(alu << 3 | 1), true, src, x64_M(m)); /* op r/m, r */
}

static inline unsigned x64_test_rr(uint8_t *out, x64_width w, enum x64_reg a, enum x64_reg b)
{
    return x64_encode_w(out, w, 0x85, true, b, x64_R(a));
}

static inline unsigned x64_imul_rr(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    uint8_t op[2] = {0x0f, 0xaf};
    return x64_encode(out, x64_wide_flags(w), w == 8, op, 2, dst, x64_R(src));
}

static inline unsigned x64_imul_rri(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src, int32_t imm)
{
    unsigned flags = x64_wide_flags(w);
    int64_t v = x64_imm_at_width(imm, w);
    uint8_t op = x64_fits8(v) ? 0x6b : 0x69;
    unsigned n = x64_encode(out, flags, w == 8, &op, 1, dst, x64_R(src));
    return x64_put_imm(out, n, v, x64_fits8(v) ? 1 : w == 2 ? 2 : 4);
}

static inline unsigned x64_unary(uint8_t *out, enum x64_unary u, x64_width w, enum x64_reg r)
{
    return x64_encode_w(out, w, 0xf7, false, u, x64_R(r));
}

static inline unsigned x64_shift_cl(uint8_t *out, enum x64_shift s, x64_width w, enum x64_reg r)
{
    return x64_encode_w(out, w, 0xd3, false, s, x64_R(r));
}

static inline unsigned x64_shift_i(uint8_t *out, enum x64_shift s, x64_width w, enum x64_reg r, uint8_t count)
{
    unsigned n = x64_encode_w(out, w, 0xc1, false, s, x64_R(r));
    out[n] = count;
    return n + 1;
}

static inline unsigned x64_setcc(uint8_t *out, enum x64_cc cc, enum x64_reg r)
{
    uint8_t op[2] = {0x0f, (uint8_t)(0x90 + cc)};
    return x64_encode(out, X64_BRM, false, op, 2, 0, x64_R(r));
}

static inline unsigned x64_cmov(uint8_t *out, enum x64_cc cc, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    uint8_t op[2] = {0x0f, (uint8_t)(0x40 + cc)};
    return x64_encode(out, x64_wide_flags(w), w == 8, op, 2, dst, x64_R(src));
}

static inline unsigned x64_bitcount(uint8_t *out, enum x64_bitcount bc, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    uint8_t op[2] = {0x0f, (uint8_t)bc};
    return x64_encode(out, x64_wide_flags(w) | X64_PF3, w == 8, op, 2, dst, x64_R(src));
}

static inline unsigned x64_bswap(uint8_t *out, x64_width w, enum x64_reg r)
{
    x64_check_width(w, 4 | 8);
    uint8_t op[2] = {0x0f, 0xc8};
    return x64_encode_o(out, 0, w == 8, op, 2, r);
}

static inline unsigned x64_cqo(uint8_t *out, x64_width w)
{
    uint8_t op = 0x99; /* cwd / cdq / cqo */
    unsigned flags = x64_wide_flags(w);
    unsigned n = 0;
    if (flags & X64_P66) out[n++] = 0x66;
    if (w == 8) out[n++] = 0x48;
    out[n++] = op;
    return n;
}

static inline unsigned x64_push(uint8_t *out, enum x64_reg r)
{
    uint8_t op = 0x50;
    return x64_encode_o(out, 0, false, &op, 1, r);
}

static inline unsigned x64_pop(uint8_t *out, enum x64_reg r)
{
    uint8_t op = 0x58;
    return x64_encode_o(out, 0, false, &op, 1, r);
}

static inline unsigned x64_ret(uint8_t *out)
{
    out[0] = 0xc3;
    return 1;
}

static inline unsigned x64_int3(uint8_t *out)
{
    out[0] = 0xcc;
    return 1;
}

static inline unsigned x64_jmp_r(uint8_t *out, enum x64_reg r)
{
    uint8_t op = 0xff;
    return x64_encode(out, 0, false, &op, 1, 4, x64_R(r));
}

static inline unsigned x64_jmp_rel32(uint8_t *out, int32_t rel)
{
    out[0] = 0xe9;
    return x64_put_imm(out, 1, rel, 4);
}

static inline unsigned x64_jcc_rel32(uint8_t *out, enum x64_cc cc, int32_t rel)
{
    out[0] = 0x0f;
    out[1] = (uint8_t)(0x80 + cc);
    return x64_put_imm(out, 2, rel, 4);
}

#endif
