/* Instruction boundaries, operands, jump targets and block starts (isa.md §2-§5,
 * §10), exactly as the reference decodes them, quirks included. */
#ifndef CPVM_DECODE_H
#define CPVM_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "../isa/isa.h"
#include "../common/limits.h"
#include "../program/program.h"
#include "../common/bits.h"

struct dec_insn {
    uint32_t pc;
    uint32_t target;   /* T: (pc + offset) mod 2^32 */
    int32_t i1, i2;    /* i1 doubles as the single immediate `i` */
    uint64_t imm64;
    uint8_t op;        /* enum op; OP_invalid for an unknown opcode */
    uint8_t len;       /* 1 + skip */
    uint8_t a, b, d;   /* register fields, clamped to 0..12 */
};

/* bit(k) of isa.md §1: 0 for k >= code length. */
static inline bool dec_bit(const struct cpvm_program *p, uint32_t k)
{
    return k < p->code_len && ((p->bitmask[k >> 3] >> (k & 7)) & 1);
}

/* Decodes the instruction at `pc` (< code length) as if bit(pc) were set. */
void dec_decode(const struct cpvm_program *p, uint32_t pc, struct dec_insn *out);

/* Whether next(pc) = pc + len is a proper successor (isa.md §2, with the
 * slow-scanner quirk near the end of the code). */
static inline bool dec_next_is_proper(const struct cpvm_program *p, uint32_t pc, unsigned len)
{
    uint32_t next = pc + len;
    if (next >= p->code_len || !dec_bit(p, next)) return false;
    /* The reference's slow scanner (used when pc + 32 > code length) gives up
     * after three zero bytes when pc+1 is byte-aligned: isa.md §2 quirk. */
    if ((uint64_t)pc + 32 > p->code_len && (pc & 7) == 7 && len == LIMIT_INSN_MAX_LEN) return false;
    return true;
}

/* Distance back to the previous instruction start, within the reference's
 * look-back window of min(25, 24 + t mod 8) bytes (isa.md §10.2 quirk). */
static inline bool dec_previous_start(const struct cpvm_program *p, uint32_t t, uint32_t *prev)
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

/* valid(t) of isa.md §10.2. */
static inline bool dec_valid_target(const struct cpvm_program *p, uint32_t t)
{
    if (!dec_bit(p, t)) return false;
    if (t == 0) return true;
    uint32_t prev;
    if (!dec_previous_start(p, t, &prev)) return false;
    enum op op = p->decode_map[p->code[prev]];
    /* isa.md §9: an unknown opcode is a terminator, but not for this check. */
    return op != OP_invalid && isa_is_terminator(op);
}

/* Whether t is in the Graypaper's basic-block set (A.2): 0, or n + 1 + skip(n)
 * for a known terminator n (skip reads the bits past the code as set, so one
 * after a final terminator is the end of the code). The predecessor is the
 * nearest instruction start up to 25 bytes back: no look-back window quirk. */
bool dec_gp_block_start(const struct cpvm_program *p, uint32_t t);

/* start(p) of isa.md §10.7; false when `pc` is not inside any block. */
bool dec_block_start(const struct cpvm_program *p, uint32_t pc, uint32_t *start);

/* The instructions of the basic block starting at `start` (isa.md §10.1, §2): up to
 * and including its terminator, or the implicit trap (OP_invalid at next(pc)) after
 * an instruction with no proper successor, or a lone OP_invalid when `start` is not
 * an instruction start. Every backend builds its blocks with this. */
struct dec_block_iter {
    const struct cpvm_program *p;
    uint32_t pc;
    enum { DEC_ITER_MORE, DEC_ITER_TRAP, DEC_ITER_DONE } state;
    /* Graypaper walk: any pc below the code length decodes (bit set or not) and
     * next(pc) = pc + len always follows (no scanner quirk, no >24-bit gap rule) */
    bool gp;
};
static inline struct dec_block_iter dec_block_begin(const struct cpvm_program *p, uint32_t start)
{
    return (struct dec_block_iter){.p = p, .pc = start, .state = DEC_ITER_MORE};
}
static inline bool dec_block_next(struct dec_block_iter *it, struct dec_insn *out)
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
    if (it->gp ? it->pc >= p->code_len : !dec_bit(p, it->pc)) {
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
        if (it->gp ? it->pc + out->len >= p->code_len : !dec_next_is_proper(p, it->pc, out->len))
            it->state = DEC_ITER_TRAP;
        it->pc += out->len;
    }
    return true;
}

/* Whether a block starts at `pc`: the first instruction, or one whose predecessor
 * (within the look-back window) ends a block, an unknown opcode included. */
static inline bool dec_is_block_start(const struct cpvm_program *p, uint32_t pc)
{
    if (!dec_bit(p, pc)) return false;
    if (pc == 0) return true;
    uint32_t prev;
    return dec_previous_start(p, pc, &prev) && isa_is_terminator((enum op)p->decode_map[p->code[prev]]);
}

/* JamV1 load-time validation (blob-format.md §5); on failure fills err. */
cpvm_status dec_validate_jam(const struct cpvm_program *p, struct cpvm_error *err);

/* Minimal encoding of an instruction for `isa` (isa.md §3.3, §5 writer layouts).
 * `pc` is where it will sit (branch offsets are relative). Returns the length
 * (1..25), or 0 when the ISA lacks the instruction. Registers must be 0..12. */
unsigned dec_encode(cpvm_isa isa, const struct dec_insn *insn, uint32_t pc, uint8_t out[LIMIT_INSN_MAX_LEN]);

#endif
