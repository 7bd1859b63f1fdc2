#include "decode.h"

#include <string.h>

#include "../common/bits.h"
#include "../common/limits.h"

/* Count of 0-bits from bit `k` upwards, stopping at `cap` (bits past the code read as 0). */
static unsigned zeros_from(const struct cpvm_program *p, uint32_t k, unsigned cap)
{
    unsigned z = 0;
    while (z < cap && !dec_bit(p, k + z)) {
        if (k + z >= p->code_len) return cap; /* nothing set past the end */
        z++;
    }
    return z;
}

static unsigned skip_at(const struct cpvm_program *p, uint32_t pc)
{
    uint32_t left = p->code_len - pc - 1, k = pc + 1;
    /* Fast path: 8 bitmask bytes from bit k's byte hold 57+ bits (>= the 24 that
     * can matter); bits past the code are the zero padding (blob.c checks it). */
    if ((k >> 3) + 8 <= (p->code_len + 7) / 8) {
        uint64_t w = (rd_le64(p->bitmask + (k >> 3)) >> (k & 7)) | (1ull << LIMIT_BITMASK_MAX);
        unsigned z = (unsigned)__builtin_ctzll(w);
        return z < left ? z : left;
    }
    unsigned z = zeros_from(p, k, LIMIT_BITMASK_MAX);
    return z < left ? z : left;
}

static inline uint8_t reg(uint8_t nibble)
{
    nibble &= 15;
    return nibble > 12 ? 12 : nibble;
}

/* Sign-extending little-endian read of L (0..4) bytes. */
/* Sign-extending little-endian read of L (0..4) bytes; b[k..k+3] is readable. */
static inline int32_t imm_at(const uint8_t *b, unsigned k, unsigned L)
{
    if (L == 0) return 0;
    unsigned shift = 32 - 8 * L;
    return (int32_t)(rd_le32(b + k) << shift) >> shift;
}

static inline unsigned clamp4(int x) { return x < 0 ? 0 : x > 4 ? 4 : (unsigned)x; }

void dec_decode(const struct cpvm_program *p, uint32_t pc, struct dec_insn *o)
{
    /* b[j] = code[pc + j], zero past the end; b[0] is the opcode. 1+16 bytes
     * (the longest operands end at b[10]), copied only near the end of the code. */
    uint8_t tail[17];
    const uint8_t *b = p->code + pc;
    uint32_t avail = p->code_len - pc;
    if (avail < sizeof tail) {
        memset(tail, 0, sizeof tail);
        memcpy(tail, b, avail);
        b = tail;
    }
    unsigned skip = skip_at(p, pc);
    *o = (struct dec_insn){.pc = pc, .len = (uint8_t)(1 + skip), .op = p->decode_map[b[0]]};
    unsigned L1;
    switch ((enum isa_class)isa_rows[o->op].cls) {
    case CLS_N:
        break;
    case CLS_R_I:
        o->a = reg(b[1]);
        o->i1 = imm_at(b, 2, clamp4((int)skip - 1));
        break;
    case CLS_R_I_O:
    case CLS_R_I_I:
        o->a = reg(b[1]);
        L1 = clamp4((b[1] >> 4) & 7);
        o->i1 = imm_at(b, 2, L1);
        o->i2 = imm_at(b, 2 + L1, clamp4((int)skip - (int)L1 - 1));
        o->target = pc + (uint32_t)o->i2;
        break;
    case CLS_RR_I:
    case CLS_RR_O:
        o->a = reg(b[1]);
        o->b = reg(b[1] >> 4);
        o->i1 = imm_at(b, 2, clamp4((int)skip - 1));
        o->target = pc + (uint32_t)o->i1;
        break;
    case CLS_RRR:
        o->a = reg(b[1]);
        o->b = reg(b[1] >> 4);
        o->d = reg(b[2]);
        break;
    case CLS_O:
        o->i1 = imm_at(b, 1, clamp4((int)skip));
        o->target = pc + (uint32_t)o->i1;
        break;
    case CLS_I:
        o->i1 = imm_at(b, 1, clamp4((int)skip));
        break;
    case CLS_I_I:
        L1 = clamp4(b[1] & 7);
        o->i1 = imm_at(b, 2, L1);
        o->i2 = imm_at(b, 2 + L1, clamp4((int)skip - (int)L1 - 1));
        break;
    case CLS_RR:
        o->a = reg(b[1]);
        o->b = reg(b[1] >> 4);
        break;
    case CLS_RR_I_I:
        o->a = reg(b[1]);
        o->b = reg(b[1] >> 4);
        L1 = clamp4(b[2] & 7);
        o->i1 = imm_at(b, 3, L1);
        o->i2 = imm_at(b, 3 + L1, clamp4((int)skip - (int)L1 - 2));
        break;
    case CLS_R_I64:
        o->a = reg(b[1]);
        o->imm64 = rd_le64(b + 2);
        break;
    case CLS_COUNT:
        CPVM_BUG("bad class");
    }
}

bool dec_gp_block_start(const struct cpvm_program *p, uint32_t t)
{
    if (t == 0) return true;
    if (t > p->code_len) return false;
    for (uint32_t k = 1; k <= LIMIT_INSN_MAX_LEN && k <= t; k++) {
        if (!dec_bit(p, t - k)) continue;
        enum op op = p->decode_map[p->code[t - k]];
        if (op == OP_invalid || !isa_is_terminator(op)) return false;
        struct dec_insn d;
        dec_decode(p, t - k, &d);
        return d.len == k;
    }
    return false;
}

bool dec_block_start(const struct cpvm_program *p, uint32_t pc, uint32_t *start)
{
    if (!dec_bit(p, pc)) return false;
    while (pc != 0) {
        uint32_t prev;
        if (!dec_previous_start(p, pc, &prev)) return false;
        enum op op = p->decode_map[p->code[prev]]; /* unknown counts as trap here */
        if (isa_is_terminator(op)) break;
        pc = prev;
    }
    *start = pc;
    return true;
}

cpvm_status dec_validate_jam(const struct cpvm_program *p, struct cpvm_error *err)
{
    if (!dec_bit(p, 0))
        return cpvm_fail(err, CPVM_E_VALIDATION, 0, "offset 0 is not an instruction start");
    uint32_t pc = 0;
    for (;;) {
        struct dec_insn in;
        dec_decode(p, pc, &in);
        if (in.op == OP_invalid)
            return cpvm_fail(err, CPVM_E_VALIDATION, pc, "unknown opcode 0x%02x at code offset %u", p->code[pc],
                             pc);
        if (dec_next_is_proper(p, pc, in.len)) {
            pc += in.len;
            continue;
        }
        if (isa_can_fall_through((enum op)in.op))
            return cpvm_fail(err, CPVM_E_VALIDATION, pc,
                             "instruction %s at code offset %u can fall through into %s", isa_rows[in.op].name, pc,
                             pc + in.len >= p->code_len ? "the end of the code" : "a gap");
        return CPVM_OK;
    }
}
