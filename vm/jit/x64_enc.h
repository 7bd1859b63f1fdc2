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
unsigned x64_mov_rr(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src);
unsigned x64_mov_ri(uint8_t *out, x64_width w, enum x64_reg dst, int64_t imm); /* picks the short form */
unsigned x64_movabs(uint8_t *out, enum x64_reg dst, uint64_t imm);
unsigned x64_load(uint8_t *out, x64_width w, enum x64_reg dst, struct x64_mem m);      /* mov r, [m] */
unsigned x64_store(uint8_t *out, x64_width w, struct x64_mem m, enum x64_reg src);     /* mov [m], r */
unsigned x64_store_imm(uint8_t *out, x64_width w, struct x64_mem m, int32_t imm);     /* mov [m], imm */
unsigned x64_movzx(uint8_t *out, x64_width from, enum x64_reg dst, enum x64_reg src);  /* from 1|2 */
unsigned x64_movzx_m(uint8_t *out, x64_width from, enum x64_reg dst, struct x64_mem m);
unsigned x64_movsx(uint8_t *out, x64_width from, enum x64_reg dst, enum x64_reg src);  /* from 1|2|4, to 64 */
unsigned x64_movsx_m(uint8_t *out, x64_width from, enum x64_reg dst, struct x64_mem m);
unsigned x64_lea(uint8_t *out, x64_width w, enum x64_reg dst, struct x64_mem m);
unsigned x64_alu_rr(uint8_t *out, enum x64_alu op, x64_width w, enum x64_reg dst, enum x64_reg src);
unsigned x64_alu_ri(uint8_t *out, enum x64_alu op, x64_width w, enum x64_reg dst, int32_t imm);
unsigned x64_alu_mi(uint8_t *out, enum x64_alu op, x64_width w, struct x64_mem m, int32_t imm);
unsigned x64_test_rr(uint8_t *out, x64_width w, enum x64_reg a, enum x64_reg b);
unsigned x64_imul_rr(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src);
unsigned x64_imul_rri(uint8_t *out, x64_width w, enum x64_reg dst, enum x64_reg src, int32_t imm);
unsigned x64_unary(uint8_t *out, enum x64_unary op, x64_width w, enum x64_reg r);
unsigned x64_shift_cl(uint8_t *out, enum x64_shift op, x64_width w, enum x64_reg r);
unsigned x64_shift_i(uint8_t *out, enum x64_shift op, x64_width w, enum x64_reg r, uint8_t count);
unsigned x64_setcc(uint8_t *out, enum x64_cc cc, enum x64_reg r);
unsigned x64_cmov(uint8_t *out, enum x64_cc cc, x64_width w, enum x64_reg dst, enum x64_reg src);
unsigned x64_bitcount(uint8_t *out, enum x64_bitcount op, x64_width w, enum x64_reg dst, enum x64_reg src);
unsigned x64_bswap(uint8_t *out, x64_width w, enum x64_reg r);
unsigned x64_cqo(uint8_t *out, x64_width w); /* cdq for 4, cqo for 8 */
unsigned x64_push(uint8_t *out, enum x64_reg r);
unsigned x64_pop(uint8_t *out, enum x64_reg r);
unsigned x64_ret(uint8_t *out);
unsigned x64_int3(uint8_t *out);
unsigned x64_jmp_r(uint8_t *out, enum x64_reg r);
/* Branches with a rel32 displacement relative to the end of the instruction. */
unsigned x64_jmp_rel32(uint8_t *out, int32_t rel);
unsigned x64_jcc_rel32(uint8_t *out, enum x64_cc cc, int32_t rel);

#endif
