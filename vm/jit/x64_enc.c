/* x86-64 instruction encoding: prefixes, REX, ModRM/SIB, displacement, immediate.
 * Every opcode byte the compiler emits is written here and nowhere else. */
#include "x64_enc.h"

#include <string.h>

#include "../common/error.h"

/* The r/m operand: a register or a memory reference. */
struct rm {
    bool is_mem;
    enum x64_reg reg;
    struct x64_mem mem;
};

static struct rm R(enum x64_reg r) { return (struct rm){.is_mem = false, .reg = r}; }
static struct rm M(struct x64_mem m) { return (struct rm){.is_mem = true, .mem = m}; }

enum {
    P66 = 1u << 0,  /* operand-size override (16-bit) */
    PF3 = 1u << 1,  /* mandatory prefix of popcnt/lzcnt/tzcnt */
    BREG = 1u << 2, /* the ModRM.reg operand is an 8-bit register: spl..dil need a REX */
    BRM = 1u << 3,  /* the ModRM.rm operand is an 8-bit register: the same */
};

static inline bool fits8(int64_t v) { return v >= -128 && v <= 127; }

/* An operation width is one of `allowed` (a mask of 1|2|4|8). */
static inline void check_width(x64_width w, unsigned allowed)
{
    /* one test: w is a power of two in `allowed` (1|2|4|8 at most) */
    if (__builtin_expect((w & (w - 1)) || !(w & allowed & 15), 0)) CPVM_BUG("x64: width %u not encodable here", w);
}

static bool is_byte_reg_needing_rex(unsigned r) { return r >= 4 && r <= 7; }

/* Emits [prefixes][REX][opcode][ModRM][SIB][disp] and returns the length. */
/* Inlined into every form so that the constant flags and opcode fold away. */
static inline __attribute__((always_inline)) unsigned encode(uint8_t *out, unsigned flags, bool w, const uint8_t *op,
                                                             unsigned oplen, unsigned reg, struct rm rm)
{
    unsigned n = 0;
    if (flags & P66) out[n++] = 0x66;
    if (flags & PF3) out[n++] = 0xf3;
    if (rm.is_mem && rm.mem.addr32) out[n++] = 0x67;
    unsigned rex = (w ? 8u : 0u) | ((reg & 8) ? 4u : 0u);
    bool need_rex = w || (reg & 8);
    if ((flags & BREG) && is_byte_reg_needing_rex(reg & 15)) need_rex = true;
    if (!rm.is_mem) {
        if (rm.reg & 8) rex |= 1, need_rex = true;
        if ((flags & BRM) && is_byte_reg_needing_rex((unsigned)rm.reg)) need_rex = true;
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
    unsigned mod = (m.disp == 0 && base != 5) ? 0u : fits8(m.disp) ? 1u : 2u;
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
static unsigned encode_o(uint8_t *out, unsigned flags, bool w, const uint8_t *op, unsigned oplen, enum x64_reg r)
{
    unsigned n = 0;
    if (flags & P66) out[n++] = 0x66;
    if (w || (r & 8) || ((flags & BRM) && is_byte_reg_needing_rex((unsigned)r)))
        out[n++] = (uint8_t)(0x40 | (w ? 8 : 0) | ((r & 8) ? 1 : 0));
    memcpy(out + n, op, oplen);
    n += oplen;
    out[n - 1] = (uint8_t)(out[n - 1] + (r & 7));
    return n;
}

static unsigned put_imm(uint8_t *out, unsigned n, int64_t imm, unsigned size)
{
    for (unsigned i = 0; i < size; i++) out[n + i] = (uint8_t)((uint64_t)imm >> (8 * i));
    return n + size;
}

/* The usual width convention of the integer instructions: the byte form's opcode is
 * one less than the full-size one (88/89, c6/c7, f6/f7, d2/d3, 84/85, 00/01, ...),
 * 16-bit adds 0x66, 64-bit REX.W. `reg_is_operand`: ModRM.reg names a register of
 * width w (not an opcode extension), so at width 1 it is a byte register too. */
static inline __attribute__((always_inline)) unsigned encode_w(uint8_t *out, x64_width w, uint8_t op_full, bool reg_is_operand, unsigned reg, struct rm rm)
{
    check_width(w, 1 | 2 | 4 | 8);
    uint8_t op = w == 1 ? (uint8_t)(op_full - 1) : op_full;
    unsigned flags = w == 2 ? P66 : w == 1 ? (BRM | (reg_is_operand ? BREG : 0)) : 0;
    return encode(out, flags, w == 8, &op, 1, reg, rm);
}

/* Prefix flags of an instruction with no byte form (imul, cmov, lea, bit counts). */
static unsigned wide_flags(x64_width w)
{
    check_width(w, 2 | 4 | 8);
    return w == 2 ? P66 : 0;
}

/* The immediate of a width-w operation, as the CPU sees it after sign extension. */
static int64_t imm_at_width(int64_t imm, x64_width w)
{
    return w == 1 ? (int8_t)imm : w == 2 ? (int16_t)imm : w == 4 ? (int32_t)imm : imm;
}

unsigned x64_mov_rr(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    return encode_w(out, w, 0x89, true, src, R(dst));
}

unsigned x64_mov_ri(uint8_t *out, x64_width w, enum x64_reg dst, int64_t imm)
{
    check_width(w, 1 | 2 | 4 | 8);
    if (w == 8 && (imm < INT32_MIN || imm > (int64_t)UINT32_MAX)) return x64_movabs(out, dst, (uint64_t)imm);
    if (w == 8 && imm < 0) { /* mov r/m64, imm32 (sign-extended) */
        uint8_t op = 0xc7;
        unsigned n = encode(out, 0, true, &op, 1, 0, R(dst));
        return put_imm(out, n, imm, 4);
    }
    if (w == 1) {
        uint8_t op = 0xb0; /* mov r8, imm8 */
        return put_imm(out, encode_o(out, BRM, false, &op, 1, dst), imm, 1);
    }
    /* mov r16, imm16 / mov r32, imm32, which zero-extends into the full register */
    uint8_t op = 0xb8;
    return put_imm(out, encode_o(out, w == 2 ? P66 : 0, false, &op, 1, dst), imm, w == 2 ? 2 : 4);
}

unsigned x64_movabs(uint8_t *out, enum x64_reg dst, uint64_t imm)
{
    uint8_t op = 0xb8;
    return put_imm(out, encode_o(out, 0, true, &op, 1, dst), (int64_t)imm, 8);
}

unsigned x64_load(uint8_t *out, x64_width w, enum x64_reg dst, struct x64_mem m)
{
    return encode_w(out, w, 0x8b, true, dst, M(m));
}

unsigned x64_store(uint8_t *out, x64_width w, struct x64_mem m, enum x64_reg src)
{
    return encode_w(out, w, 0x89, true, src, M(m));
}

unsigned x64_store_imm(uint8_t *out, x64_width w, struct x64_mem m, int32_t imm)
{
    unsigned n = encode_w(out, w, 0xc7, false, 0, M(m));
    return put_imm(out, n, imm, w == 8 ? 4 : w);
}

unsigned x64_movzx(uint8_t *out, x64_width from, enum x64_reg dst, enum x64_reg src)
{
    check_width(from, 1 | 2);
    uint8_t op[2] = {0x0f, from == 1 ? 0xb6 : 0xb7};
    return encode(out, from == 1 ? BRM : 0, false, op, 2, dst, R(src));
}

unsigned x64_movzx_m(uint8_t *out, x64_width from, enum x64_reg dst, struct x64_mem m)
{
    check_width(from, 1 | 2);
    uint8_t op[2] = {0x0f, from == 1 ? 0xb6 : 0xb7};
    return encode(out, 0, false, op, 2, dst, M(m));
}

unsigned x64_movsx(uint8_t *out, x64_width from, enum x64_reg dst, enum x64_reg src)
{
    check_width(from, 1 | 2 | 4);
    if (from == 4) {
        uint8_t op = 0x63; /* movsxd */
        return encode(out, 0, true, &op, 1, dst, R(src));
    }
    uint8_t op[2] = {0x0f, from == 1 ? 0xbe : 0xbf};
    return encode(out, from == 1 ? BRM : 0, true, op, 2, dst, R(src));
}

unsigned x64_movsx_m(uint8_t *out, x64_width from, enum x64_reg dst, struct x64_mem m)
{
    check_width(from, 1 | 2 | 4);
    if (from == 4) {
        uint8_t op = 0x63;
        return encode(out, 0, true, &op, 1, dst, M(m));
    }
    uint8_t op[2] = {0x0f, from == 1 ? 0xbe : 0xbf};
    return encode(out, 0, true, op, 2, dst, M(m));
}

unsigned x64_lea(uint8_t *out, x64_width w, enum x64_reg dst, struct x64_mem m)
{
    uint8_t op = 0x8d;
    return encode(out, wide_flags(w), w == 8, &op, 1, dst, M(m));
}

unsigned x64_alu_rr(uint8_t *out, enum x64_alu alu, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    return encode_w(out, w, (uint8_t)(alu << 3 | 1), true, src, R(dst)); /* op r/m, r */
}

/* 80 /op ib (bytes), 83 /op ib (sign-extended), 81 /op iw|id. */
static unsigned alu_imm(uint8_t *out, enum x64_alu alu, x64_width w, struct rm dst, int32_t imm)
{
    check_width(w, 1 | 2 | 4 | 8);
    int64_t v = imm_at_width(imm, w);
    bool short_imm = w == 1 || fits8(v);
    uint8_t op = w == 1 ? 0x80 : short_imm ? 0x83 : 0x81;
    unsigned flags = w == 2 ? P66 : w == 1 ? BRM : 0;
    unsigned n = encode(out, flags, w == 8, &op, 1, alu, dst);
    return put_imm(out, n, v, short_imm ? 1 : w == 2 ? 2 : 4);
}

unsigned x64_alu_ri(uint8_t *out, enum x64_alu alu, x64_width w, enum x64_reg dst, int32_t imm)
{
    return alu_imm(out, alu, w, R(dst), imm);
}

unsigned x64_alu_mi(uint8_t *out, enum x64_alu alu, x64_width w, struct x64_mem m, int32_t imm)
{
    return alu_imm(out, alu, w, M(m), imm);
}

unsigned x64_test_rr(uint8_t *out, x64_width w, enum x64_reg a, enum x64_reg b)
{
    return encode_w(out, w, 0x85, true, b, R(a));
}

unsigned x64_imul_rr(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    uint8_t op[2] = {0x0f, 0xaf};
    return encode(out, wide_flags(w), w == 8, op, 2, dst, R(src));
}

unsigned x64_imul_rri(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src, int32_t imm)
{
    unsigned flags = wide_flags(w);
    int64_t v = imm_at_width(imm, w);
    uint8_t op = fits8(v) ? 0x6b : 0x69;
    unsigned n = encode(out, flags, w == 8, &op, 1, dst, R(src));
    return put_imm(out, n, v, fits8(v) ? 1 : w == 2 ? 2 : 4);
}

unsigned x64_unary(uint8_t *out, enum x64_unary u, x64_width w, enum x64_reg r)
{
    return encode_w(out, w, 0xf7, false, u, R(r));
}

unsigned x64_shift_cl(uint8_t *out, enum x64_shift s, x64_width w, enum x64_reg r)
{
    return encode_w(out, w, 0xd3, false, s, R(r));
}

unsigned x64_shift_i(uint8_t *out, enum x64_shift s, x64_width w, enum x64_reg r, uint8_t count)
{
    unsigned n = encode_w(out, w, 0xc1, false, s, R(r));
    out[n] = count;
    return n + 1;
}

unsigned x64_setcc(uint8_t *out, enum x64_cc cc, enum x64_reg r)
{
    uint8_t op[2] = {0x0f, (uint8_t)(0x90 + cc)};
    return encode(out, BRM, false, op, 2, 0, R(r));
}

unsigned x64_cmov(uint8_t *out, enum x64_cc cc, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    uint8_t op[2] = {0x0f, (uint8_t)(0x40 + cc)};
    return encode(out, wide_flags(w), w == 8, op, 2, dst, R(src));
}

unsigned x64_bitcount(uint8_t *out, enum x64_bitcount bc, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    uint8_t op[2] = {0x0f, (uint8_t)bc};
    return encode(out, wide_flags(w) | PF3, w == 8, op, 2, dst, R(src));
}

unsigned x64_bswap(uint8_t *out, x64_width w, enum x64_reg r)
{
    check_width(w, 4 | 8);
    uint8_t op[2] = {0x0f, 0xc8};
    return encode_o(out, 0, w == 8, op, 2, r);
}

unsigned x64_cqo(uint8_t *out, x64_width w)
{
    uint8_t op = 0x99; /* cwd / cdq / cqo */
    unsigned flags = wide_flags(w);
    unsigned n = 0;
    if (flags & P66) out[n++] = 0x66;
    if (w == 8) out[n++] = 0x48;
    out[n++] = op;
    return n;
}

unsigned x64_push(uint8_t *out, enum x64_reg r)
{
    uint8_t op = 0x50;
    return encode_o(out, 0, false, &op, 1, r);
}

unsigned x64_pop(uint8_t *out, enum x64_reg r)
{
    uint8_t op = 0x58;
    return encode_o(out, 0, false, &op, 1, r);
}

unsigned x64_ret(uint8_t *out)
{
    out[0] = 0xc3;
    return 1;
}

unsigned x64_int3(uint8_t *out)
{
    out[0] = 0xcc;
    return 1;
}

unsigned x64_jmp_r(uint8_t *out, enum x64_reg r)
{
    uint8_t op = 0xff;
    return encode(out, 0, false, &op, 1, 4, R(r));
}

unsigned x64_jmp_rel32(uint8_t *out, int32_t rel)
{
    out[0] = 0xe9;
    return put_imm(out, 1, rel, 4);
}

unsigned x64_jcc_rel32(uint8_t *out, enum x64_cc cc, int32_t rel)
{
    out[0] = 0x0f;
    out[1] = (uint8_t)(0x80 + cc);
    return put_imm(out, 2, rel, 4);
}

