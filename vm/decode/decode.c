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

bool dec_next_is_proper(const struct cpvm_program *p, uint32_t pc, unsigned len)
{
    uint32_t next = pc + len;
    if (next >= p->code_len || !dec_bit(p, next)) return false;
    /* The reference's slow scanner (used when pc + 32 > code length) gives up
     * after three zero bytes when pc+1 is byte-aligned: isa.md §2 quirk. */
    if ((uint64_t)pc + 32 > p->code_len && (pc & 7) == 7 && len == LIMIT_INSN_MAX_LEN) return false;
    return true;
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

/* Distance back to the previous instruction start, within the reference's
 * look-back window of min(25, 24 + t mod 8) bytes (isa.md §10.2 quirk). */
static bool previous_start(const struct cpvm_program *p, uint32_t t, uint32_t *prev)
{
    unsigned window = 24 + (t & 7);
    if (window > 25) window = 25;
    /* Fast path: the highest set bit of [t - window, t - 1] from one 8-byte read
     * (t < code length here, so every bit in range is a real one). */
    if (t >= window && ((t - window) >> 3) + 8 <= (p->code_len + 7) / 8) {
        uint32_t s = t - window;
        uint64_t w = rd_le64(p->bitmask + (s >> 3)) >> (s & 7);
        w &= (1ull << window) - 1;
        if (!w) return false;
        *prev = s + 63u - (unsigned)__builtin_clzll(w);
        return true;
    }
    for (unsigned k = 1; k <= window && k <= t; k++) {
        if (dec_bit(p, t - k)) {
            *prev = t - k;
            return true;
        }
    }
    return false;
}

bool dec_valid_target(const struct cpvm_program *p, uint32_t t)
{
    if (!dec_bit(p, t)) return false;
    if (t == 0) return true;
    uint32_t prev;
    if (!previous_start(p, t, &prev)) return false;
    enum op op = p->decode_map[p->code[prev]];
    /* isa.md §9: an unknown opcode is a terminator, but not for this check. */
    return op != OP_invalid && isa_is_terminator(op);
}

bool dec_block_start(const struct cpvm_program *p, uint32_t pc, uint32_t *start)
{
    if (!dec_bit(p, pc)) return false;
    while (pc != 0) {
        uint32_t prev;
        if (!previous_start(p, pc, &prev)) return false;
        enum op op = p->decode_map[p->code[prev]]; /* unknown counts as trap here */
        if (isa_is_terminator(op)) break;
        pc = prev;
    }
    *start = pc;
    return true;
}

bool dec_block_next(struct dec_block_iter *it, struct dec_insn *out)
{
    const struct cpvm_program *p = it->p;
    switch (it->state) {
    case DEC_ITER_DONE:
        return false;
    case DEC_ITER_TRAP:
        *out = (struct dec_insn){.pc = it->pc, .op = OP_invalid, .len = 1};
        it->state = DEC_ITER_DONE;
        return true;
    case DEC_ITER_MORE:
        break;
    }
    if (!dec_bit(p, it->pc)) {
        *out = (struct dec_insn){.pc = it->pc, .op = OP_invalid, .len = 1};
        it->state = DEC_ITER_DONE;
        return true;
    }
    dec_decode(p, it->pc, out);
    if (isa_is_terminator((enum op)out->op)) {
        it->state = DEC_ITER_DONE;
    } else {
        /* No proper successor: the implicit trap at next(pc) (isa.md §2) comes next,
         * even where a bit is set (the slow-scanner quirk). */
        if (!dec_next_is_proper(p, it->pc, out->len)) it->state = DEC_ITER_TRAP;
        it->pc += out->len;
    }
    return true;
}

bool dec_is_block_start(const struct cpvm_program *p, uint32_t pc)
{
    if (!dec_bit(p, pc)) return false;
    if (pc == 0) return true;
    uint32_t prev;
    return previous_start(p, pc, &prev) && isa_is_terminator((enum op)p->decode_map[p->code[prev]]);
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
