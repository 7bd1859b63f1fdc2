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
#include "../common/error.h"

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

/* skip(k - 1) from one 8-byte bitmask read at bit k's byte (the caller checks that
 * the read is inside the bitmask and that 24 bits fit before the code's end). */
static inline unsigned dec_skip_word(const struct cpvm_program *p, uint32_t k)
{
    uint64_t w = (rd_le64(p->bitmask + (k >> 3)) >> (k & 7)) | (1ull << LIMIT_BITMASK_MAX);
    return (unsigned)__builtin_ctzll(w);
}

/* A register field: the low nibble, clamped to 12 (a table: one load, no compare). */
static inline uint8_t dec_reg(uint8_t nibble)
{
    static const uint8_t clamp[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 12, 12, 12};
    return clamp[nibble & 15];
}

/* Sign-extending little-endian read of L (0..4) bytes; b[k..k+3] is readable. */
static inline int32_t dec_imm(const uint8_t *b, unsigned k, unsigned L)
{
    if (L == 0) return 0;
    unsigned shift = 32 - 8 * L;
    return (int32_t)(rd_le32(b + k) << shift) >> shift;
}

static inline unsigned dec_clamp4(int x) { return x < 0 ? 0 : x > 4 ? 4 : (unsigned)x; }

/* The operands of instruction `op` of class `cls` at `pc` from its bytes b[0..16]
 * (b[0] the opcode, zero past the code) and its skip: the one body of every
 * decode path. A constant `cls` folds the switch away (the compiler's walk). */
static inline __attribute__((always_inline)) void dec_operands_cls(const uint8_t *b, uint32_t pc, unsigned skip,
                                                                   enum op op, enum isa_class cls,
                                                                   struct dec_insn *o)
{
    *o = (struct dec_insn){.pc = pc, .len = (uint8_t)(1 + skip), .op = (uint8_t)op};
    unsigned L1;
    switch (cls) {
    case CLS_N:
        break;
    case CLS_R_I:
        o->a = dec_reg(b[1]);
        o->i1 = dec_imm(b, 2, dec_clamp4((int)skip - 1));
        break;
    case CLS_R_I_O:
    case CLS_R_I_I:
        o->a = dec_reg(b[1]);
        L1 = dec_clamp4((b[1] >> 4) & 7);
        o->i1 = dec_imm(b, 2, L1);
        o->i2 = dec_imm(b, 2 + L1, dec_clamp4((int)skip - (int)L1 - 1));
        o->target = pc + (uint32_t)o->i2;
        break;
    case CLS_RR_I:
    case CLS_RR_O:
        o->a = dec_reg(b[1]);
        o->b = dec_reg(b[1] >> 4);
        o->i1 = dec_imm(b, 2, dec_clamp4((int)skip - 1));
        o->target = pc + (uint32_t)o->i1;
        break;
    case CLS_RRR:
        o->a = dec_reg(b[1]);
        o->b = dec_reg(b[1] >> 4);
        o->d = dec_reg(b[2]);
        break;
    case CLS_O:
        o->i1 = dec_imm(b, 1, dec_clamp4((int)skip));
        o->target = pc + (uint32_t)o->i1;
        break;
    case CLS_I:
        o->i1 = dec_imm(b, 1, dec_clamp4((int)skip));
        break;
    case CLS_I_I:
        L1 = dec_clamp4(b[1] & 7);
        o->i1 = dec_imm(b, 2, L1);
        o->i2 = dec_imm(b, 2 + L1, dec_clamp4((int)skip - (int)L1 - 1));
        break;
    case CLS_RR:
        o->a = dec_reg(b[1]);
        o->b = dec_reg(b[1] >> 4);
        break;
    case CLS_RR_I_I:
        o->a = dec_reg(b[1]);
        o->b = dec_reg(b[1] >> 4);
        L1 = dec_clamp4(b[2] & 7);
        o->i1 = dec_imm(b, 3, L1);
        o->i2 = dec_imm(b, 3 + L1, dec_clamp4((int)skip - (int)L1 - 2));
        break;
    case CLS_R_I64:
        o->a = dec_reg(b[1]);
        o->imm64 = rd_le64(b + 2);
        break;
    case CLS_COUNT:
        CPVM_BUG("bad class");
    }
}

static inline __attribute__((always_inline)) void dec_operands(const uint8_t *b, uint32_t pc, unsigned skip,
                                                               enum op op, struct dec_insn *o)
{
    dec_operands_cls(b, pc, skip, op, (enum isa_class)isa_rows[op].cls, o);
}

/* dec_decode, inline for the block walks: away from the code's end (more than 64
 * bytes left, so the code bytes and the bitmask word are read in place and the
 * skip needs no clamp to the end) it is one bitmask read and the operands. */
static inline __attribute__((always_inline)) void dec_decode_inline(const struct cpvm_program *p, uint32_t pc,
                                                                    struct dec_insn *out)
{
    if (__builtin_expect(p->code_len - pc > 64, 1)) {
        const uint8_t *b = p->code + pc;
        dec_operands(b, pc, dec_skip_word(p, pc + 1), p->decode_map[b[0]], out);
    } else {
        dec_decode(p, pc, out);
    }
}

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

/* dec_valid_target(p, pc + len) for a known terminator at instruction start pc of
 * length len (no start in between): the nearest start before pc + len is pc itself
 * when the look-back window reaches it. */
static inline bool dec_valid_after_terminator(const struct cpvm_program *p, uint32_t pc, unsigned len)
{
    uint32_t t = pc + len;
    unsigned window = 24 + (t & 7);
    return dec_bit(p, t) && len <= (window > 25 ? 25 : window);
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
    /* MORE: pc is still to be checked; NEXT: pc is a proper successor (its bit is set) */
    enum { DEC_ITER_MORE, DEC_ITER_NEXT, DEC_ITER_TRAP, DEC_ITER_DONE } state;
    /* Graypaper walk: any pc below the code length decodes (bit set or not) and
     * next(pc) = pc + len always follows (no scanner quirk, no >24-bit gap rule) */
    bool gp;
};
static inline struct dec_block_iter dec_block_begin(const struct cpvm_program *p, uint32_t start)
{
    return (struct dec_block_iter){.p = p, .pc = start, .state = DEC_ITER_MORE};
}
/* One step of the walk; `full` false fills only pc, len and op (the shape of the
 * block: where each instruction is and what it is), the operands are left unset. */
static inline __attribute__((always_inline)) bool dec_block_step(struct dec_block_iter *it, struct dec_insn *out,
                                                                 bool full)
{
    const struct cpvm_program *p = it->p;
    if (__builtin_expect(it->state != DEC_ITER_NEXT, 0)) {
        switch (it->state) {
        case DEC_ITER_DONE:
            return false;
        case DEC_ITER_TRAP:
            *out = (struct dec_insn){.pc = it->pc, .op = OP_invalid, .len = 1};
            it->state = DEC_ITER_DONE;
            return true;
        case DEC_ITER_MORE:
        case DEC_ITER_NEXT:
            break;
        }
        if (it->gp ? it->pc >= p->code_len : !dec_bit(p, it->pc)) {
            *out = (struct dec_insn){.pc = it->pc, .op = OP_invalid, .len = 1};
            it->state = DEC_ITER_DONE;
            return true;
        }
    }
    if (!full && __builtin_expect(p->code_len - it->pc > 64, 1)) {
        /* what dec_decode_inline's fast path puts in these three */
        unsigned skip = dec_skip_word(p, it->pc + 1);
        out->pc = it->pc;
        out->len = (uint8_t)(1 + skip);
        out->op = p->decode_map[p->code[it->pc]];
        if (isa_is_terminator((enum op)out->op)) {
            it->state = DEC_ITER_DONE;
        } else {
            /* A skip short of the longest stopped at a set bit, which is inside the
             * code (bits past it are zero), and the scanner quirk needs pc + 32 past
             * the end: a proper successor without looking again. */
            bool proper = !it->gp && skip < LIMIT_BITMASK_MAX ? true
                          : it->gp                            ? it->pc + out->len < p->code_len
                                                              : dec_next_is_proper(p, it->pc, out->len);
            it->state = proper ? DEC_ITER_NEXT : DEC_ITER_TRAP;
            it->pc += out->len;
        }
        return true;
    }
    dec_decode_inline(p, it->pc, out);
    if (isa_is_terminator((enum op)out->op)) {
        it->state = DEC_ITER_DONE;
    } else {
        /* No proper successor: the implicit trap at next(pc) (isa.md §2) comes next,
         * even where a bit is set (the slow-scanner quirk). */
        bool proper = it->gp ? it->pc + out->len < p->code_len : dec_next_is_proper(p, it->pc, out->len);
        it->state = proper ? DEC_ITER_NEXT : DEC_ITER_TRAP;
        it->pc += out->len;
    }
    return true;
}
static inline __attribute__((always_inline)) bool dec_block_next(struct dec_block_iter *it, struct dec_insn *out)
{
    return dec_block_step(it, out, true);
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
