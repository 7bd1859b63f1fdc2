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
        unsigned z = dec_skip_word(p, k);
        return z < left ? z : left;
    }
    unsigned z = zeros_from(p, k, LIMIT_BITMASK_MAX);
    return z < left ? z : left;
}

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
    dec_operands(b, pc, skip_at(p, pc), p->decode_map[b[0]], o);
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
