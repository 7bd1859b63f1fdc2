/* The writer's side of isa.md §5: minimal immediates, fixed field layouts. */
#include <string.h>

#include "../common/bits.h"
#include "decode.h"

/* Fewest bytes whose sign extension gives back v (isa.md §3.3). */
static unsigned imm_len(int32_t v)
{
    if (v == 0) return 0;
    if (v >= -128 && v <= 127) return 1;
    if (v >= -32768 && v <= 32767) return 2;
    if (v >= -(1 << 23) && v <= (1 << 23) - 1) return 3;
    return 4;
}

static unsigned put_imm(uint8_t *out, unsigned at, int32_t v)
{
    unsigned L = imm_len(v);
    for (unsigned i = 0; i < L; i++) out[at + i] = (uint8_t)((uint32_t)v >> (8 * i));
    return at + L;
}

unsigned dec_encode(cpvm_isa isa, const struct dec_insn *in, uint32_t pc, uint8_t out[LIMIT_INSN_MAX_LEN])
{
    enum op op = (enum op)in->op;
    if (op >= OP_COUNT || !isa_has(isa, op)) return 0;
    memset(out, 0, LIMIT_INSN_MAX_LEN);
    out[0] = (uint8_t)isa_rows[op].opcode[isa];
    uint8_t ab = (uint8_t)(in->a | in->b << 4);
    int32_t off = (int32_t)(in->target - pc);
    unsigned L1, n;
    switch ((enum isa_class)isa_rows[op].cls) {
    case CLS_N:
        return 1;
    case CLS_R_I:
        out[1] = in->a;
        return put_imm(out, 2, in->i1);
    case CLS_R_I_O:
    case CLS_R_I_I:
        L1 = imm_len(in->i1);
        out[1] = (uint8_t)(in->a | L1 << 4);
        n = put_imm(out, 2, in->i1);
        return put_imm(out, n, isa_rows[op].cls == CLS_R_I_O ? off : in->i2);
    case CLS_RR_I:
        out[1] = ab;
        return put_imm(out, 2, in->i1);
    case CLS_RR_O:
        out[1] = ab;
        return put_imm(out, 2, off);
    case CLS_RRR:
        out[1] = ab;
        out[2] = in->d;
        return 3;
    case CLS_O:
        return put_imm(out, 1, off);
    case CLS_I:
        return put_imm(out, 1, in->i1);
    case CLS_I_I:
        out[1] = (uint8_t)imm_len(in->i1);
        n = put_imm(out, 2, in->i1);
        return put_imm(out, n, in->i2);
    case CLS_RR:
        out[1] = ab;
        return 2;
    case CLS_RR_I_I:
        out[1] = ab;
        out[2] = (uint8_t)imm_len(in->i1);
        n = put_imm(out, 3, in->i1);
        return put_imm(out, n, in->i2);
    case CLS_R_I64:
        out[1] = in->a;
        wr_le64(out + 2, in->imm64);
        return 10;
    case CLS_COUNT:
        break;
    }
    CPVM_BUG("bad class");
}
