/* Instruction boundaries, operands, jump targets and block starts (isa.md §2-§5,
 * §10), exactly as the reference decodes them, quirks included. */
#ifndef CPVM_DECODE_H
#define CPVM_DECODE_H

#include <stdbool.h>
#include <stdint.h>

#include "../isa/isa.h"
#include "../common/limits.h"
#include "../program/program.h"

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
bool dec_next_is_proper(const struct cpvm_program *p, uint32_t pc, unsigned len);

/* valid(t) of isa.md §10.2. */
bool dec_valid_target(const struct cpvm_program *p, uint32_t t);

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
};
static inline struct dec_block_iter dec_block_begin(const struct cpvm_program *p, uint32_t start)
{
    return (struct dec_block_iter){.p = p, .pc = start, .state = DEC_ITER_MORE};
}
bool dec_block_next(struct dec_block_iter *it, struct dec_insn *out);

/* Whether a block starts at `pc`: the first instruction, or one whose predecessor
 * (within the look-back window) ends a block, an unknown opcode included. */
bool dec_is_block_start(const struct cpvm_program *p, uint32_t pc);

/* JamV1 load-time validation (blob-format.md §5); on failure fills err. */
cpvm_status dec_validate_jam(const struct cpvm_program *p, struct cpvm_error *err);

/* Minimal encoding of an instruction for `isa` (isa.md §3.3, §5 writer layouts).
 * `pc` is where it will sit (branch offsets are relative). Returns the length
 * (1..25), or 0 when the ISA lacks the instruction. Registers must be 0..12. */
unsigned dec_encode(cpvm_isa isa, const struct dec_insn *insn, uint32_t pc, uint8_t out[LIMIT_INSN_MAX_LEN]);

#endif
