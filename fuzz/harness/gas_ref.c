#include "gas_ref.h"

#include <stdbool.h>
#include <string.h>

#include "decode/decode.h"
#include "program/program.h"

enum { ROB = 32, NONE = -1 };
enum { EMPTY, DECODING, WAITING, EXECUTING, EXECUTED };

/* Resource fields and their guard bits, as the reference packs them. */
#define PACK(alu, load, store, mul, div) ((alu) | (load) << 4 | (store) << 8 | (mul) << 12 | (div) << 14)
#define GUARD_BITS (1u << 3 | 1u << 7 | 1u << 11 | 1u << 13 | 1u << 15)

struct ref_cost {
    int latency, decode;
    unsigned res;
    int dst, src1, src2; /* registers, NONE for none */
    bool move, drain;    /* move_reg (renamed); ends the block (wait until empty) */
};

/* Branch latency: 1 when the next instruction's or the target's opcode byte is
 * trap or unlikely, or lies outside the code; else 20. An ISA without one of them
 * (revive_v1 has no unlikely) compares with the reference's unused-opcode byte 255,
 * so a 0xff byte there counts as predicted too. */
static bool cheap_at(const struct cpvm_program *p, uint64_t at)
{
    if (at >= p->code_len) return true;
    int16_t t = isa_rows[OP_trap].opcode[p->isa], u = isa_rows[OP_unlikely].opcode[p->isa];
    return p->code[at] == (t >= 0 ? t : 255) || p->code[at] == (u >= 0 ? u : 255);
}

/* The reference's dispatch for one instruction. Operands: three-register forms
 * are D = A op B; two-register forms A = op B; the rest name A (and B). */
static struct ref_cost cost_of(const struct cpvm_program *p, const struct dec_insn *in, int load_latency)
{
    const int w = cpvm_program_is_64_bit(p) ? 1 : 0, a = in->a, b = in->b, d = in->d;
    const unsigned alu = PACK(1, 0, 0, 0, 0);
    struct ref_cost c = {.decode = 1, .dst = NONE, .src1 = NONE, .src2 = NONE};
#define R3(lat, dec) (c.latency = (lat), c.decode = (dec), c.res = alu, c.dst = d, c.src1 = a, c.src2 = b)
#define R2(lat, dec) (c.latency = (lat), c.decode = (dec), c.res = alu, c.dst = a, c.src1 = b)
    const int d3 = d != a && d != b, d2 = a != b, da = d != a;
    switch ((enum op)in->op) {
    case OP_add_64: case OP_sub_64: case OP_and: case OP_or: case OP_xor:
        R3(1, 1 + d3); break;
    case OP_add_32: case OP_sub_32:
        R3(1 + w, 1 + d3 + w); break;
    case OP_xor_imm: case OP_and_imm: case OP_or_imm: case OP_add_imm_64: case OP_shift_logical_right_imm_64:
    case OP_shift_arithmetic_right_imm_64: case OP_shift_logical_left_imm_64: case OP_rotate_right_imm_64:
    case OP_reverse_byte:
        R2(1, 1 + d2); break;
    case OP_add_imm_32: case OP_shift_logical_right_imm_32: case OP_shift_arithmetic_right_imm_32:
    case OP_shift_logical_left_imm_32: case OP_rotate_right_imm_32:
        R2(1 + w, 1 + d2 + w); break;
    case OP_count_leading_zero_bits_32: case OP_count_leading_zero_bits_64: case OP_count_set_bits_32:
    case OP_count_set_bits_64: case OP_sign_extend_8: case OP_sign_extend_16: case OP_zero_extend_16:
        R2(1, 1); break;
    case OP_count_trailing_zero_bits_32: case OP_count_trailing_zero_bits_64:
        R2(2, 1); c.res = PACK(2, 0, 0, 0, 0); break;
    case OP_shift_logical_right_64: case OP_shift_arithmetic_right_64: case OP_shift_logical_left_64:
    case OP_rotate_left_64: case OP_rotate_right_64:
        R3(1, 2 + da); break;
    case OP_shift_logical_right_32: case OP_shift_arithmetic_right_32: case OP_shift_logical_left_32:
    case OP_rotate_left_32: case OP_rotate_right_32:
        R3(1 + w, 2 + da + w); break;
    case OP_shift_logical_right_imm_alt_64: case OP_shift_arithmetic_right_imm_alt_64:
    case OP_shift_logical_left_imm_alt_64: case OP_rotate_right_imm_alt_64:
        R2(1, 3); break;
    case OP_shift_logical_right_imm_alt_32: case OP_shift_arithmetic_right_imm_alt_32:
    case OP_shift_logical_left_imm_alt_32: case OP_rotate_right_imm_alt_32:
        R2(2, 4); break;
    case OP_set_less_than_unsigned: case OP_set_less_than_signed: R3(3, 3); break;
    case OP_set_less_than_unsigned_imm: case OP_set_less_than_signed_imm: case OP_set_greater_than_unsigned_imm:
    case OP_set_greater_than_signed_imm:
        R2(3, 3); break;
    case OP_cmov_if_zero: case OP_cmov_if_not_zero: R3(2, 2); break;
    case OP_cmov_if_zero_imm: case OP_cmov_if_not_zero_imm: R2(2, 3); break;
    case OP_maximum: case OP_maximum_unsigned: case OP_minimum: case OP_minimum_unsigned: R3(3, 2 + d3); break;
    case OP_and_inverted: case OP_or_inverted: R3(2, 3); break;
    case OP_xnor: R3(2, 2 + d3); break;
    case OP_negate_and_add_imm_64: R2(2, 3); break;
    case OP_negate_and_add_imm_32: R2(3, 4); break;
    case OP_mul_64: R3(3, 1 + d3); c.res = PACK(1, 0, 0, 1, 0); break;
    case OP_mul_32: R3(4, 2 + d3); c.res = PACK(1, 0, 0, 1, 0); break;
    case OP_mul_imm_64: R2(3, 1 + d2); c.res = PACK(1, 0, 0, 1, 0); break;
    case OP_mul_imm_32: R2(4, 2 + d2); c.res = PACK(1, 0, 0, 1, 0); break;
    case OP_mul_upper_signed_signed: case OP_mul_upper_unsigned_unsigned:
        R3(4, 4); c.res = PACK(1, 0, 0, 1, 0); break;
    case OP_mul_upper_signed_unsigned: R3(6, 4); c.res = PACK(1, 0, 0, 1, 0); break;
    case OP_div_unsigned_32: case OP_div_signed_32: case OP_rem_unsigned_32: case OP_rem_signed_32:
    case OP_div_unsigned_64: case OP_div_signed_64: case OP_rem_unsigned_64: case OP_rem_signed_64:
        R3(60, 4); c.res = PACK(1, 0, 0, 0, 1); break;
    case OP_load_indirect_u8: case OP_load_indirect_i8: case OP_load_indirect_u16: case OP_load_indirect_i16:
    case OP_load_indirect_u32: case OP_load_indirect_i32: case OP_load_indirect_u64:
        c.latency = load_latency; c.res = PACK(1, 1, 0, 0, 0); c.dst = a; c.src1 = b; break;
    case OP_load_u8: case OP_load_i8: case OP_load_u16: case OP_load_i16: case OP_load_u32: case OP_load_i32:
    case OP_load_u64:
        c.latency = load_latency; c.res = PACK(1, 1, 0, 0, 0); c.dst = a; break;
    case OP_store_imm_u8: case OP_store_imm_u16: case OP_store_imm_u32: case OP_store_imm_u64:
        c.latency = 25; c.res = PACK(1, 0, 1, 0, 0); break;
    case OP_store_u8: case OP_store_u16: case OP_store_u32: case OP_store_u64:
    case OP_store_imm_indirect_u8: case OP_store_imm_indirect_u16: case OP_store_imm_indirect_u32:
    case OP_store_imm_indirect_u64:
        c.latency = 25; c.res = PACK(1, 0, 1, 0, 0); c.src1 = a; break;
    case OP_store_indirect_u8: case OP_store_indirect_u16: case OP_store_indirect_u32: case OP_store_indirect_u64:
        c.latency = 25; c.res = PACK(1, 0, 1, 0, 0); c.src1 = a; c.src2 = b; break;
    case OP_branch_eq: case OP_branch_not_eq: case OP_branch_less_unsigned: case OP_branch_less_signed:
    case OP_branch_greater_or_equal_unsigned: case OP_branch_greater_or_equal_signed:
        c.src2 = b;
        /* fall through */
    case OP_branch_eq_imm: case OP_branch_not_eq_imm: case OP_branch_less_unsigned_imm:
    case OP_branch_less_or_equal_unsigned_imm: case OP_branch_greater_or_equal_unsigned_imm:
    case OP_branch_greater_unsigned_imm: case OP_branch_less_signed_imm: case OP_branch_less_or_equal_signed_imm:
    case OP_branch_greater_or_equal_signed_imm: case OP_branch_greater_signed_imm:
        c.src1 = a;
        c.res = alu;
        c.latency = cheap_at(p, (uint64_t)in->pc + in->len) || cheap_at(p, in->target) ? 1 : 20;
        c.drain = true;
        break;
    case OP_move_reg: c.move = true; c.dst = a; c.src1 = b; break;
    case OP_load_imm: c.latency = 1; c.dst = a; break;
    case OP_load_imm64: c.latency = 1; c.decode = 2; c.dst = a; break;
    case OP_trap: case OP_fallthrough: case OP_invalid: c.latency = 2; c.drain = true; break;
    case OP_unlikely: c.latency = 40; break;
    case OP_jump: case OP_load_imm_and_jump: c.latency = 15; c.drain = true; break;
    case OP_jump_indirect: c.latency = 22; c.src1 = a; c.drain = true; break;
    case OP_load_imm_and_jump_indirect: c.latency = 22; c.src1 = b; c.drain = true; break;
    case OP_ecalli: case OP_memset: c.latency = 100; c.decode = 4; c.res = alu; break;
    case OP_sbrk: R2(100, 4); break;
    }
#undef R3
#undef R2
    return c;
}

struct ref_sim {
    uint32_t cycles, in_flight, head, tail, decode_left, avail;
    bool finished;
    int state[ROB], remaining[ROB];
    unsigned required[ROB];
    uint32_t deps[ROB];    /* slots whose results it waits for */
    uint32_t writes[ROB];  /* registers it is the latest producer of */
    int producer[16];      /* register -> slot, NONE */
};

static void tick(struct ref_sim *s, bool decoded, bool finishing)
{
    /* 1. retire the leading executed entries */
    uint32_t retired = 0;
    while (s->in_flight && s->state[s->head] == EXECUTED) {
        s->state[s->head] = EMPTY;
        s->head = (s->head + 1) % ROB;
        s->in_flight--;
        retired++;
    }
    /* 2. start up to 5 waiting entries, oldest first, whose inputs are ready
     * and whose resources are free */
    bool started[ROB] = {false};
    for (int n = 0; n < 5; n++) {
        int pick = NONE;
        for (uint32_t age = 0; age < ROB && pick == NONE; age++) {
            uint32_t slot = (s->head + age) % ROB;
            if (s->state[slot] != WAITING || s->deps[slot] || started[slot]) continue;
            if ((((s->avail - s->required[slot]) & 0xffff) & GUARD_BITS) == GUARD_BITS) pick = (int)slot;
        }
        if (pick == NONE) break;
        s->avail -= s->required[pick];
        started[pick] = true;
    }
    for (int slot = 0; slot < ROB; slot++)
        if (started[slot]) s->state[slot] = EXECUTING;
    /* 3. advance execution: a result at 0 cycles left, executed at -1. The
     * reference's fast-forward (on in every cost it computes): with nothing
     * decoded this cycle, and finishing or nothing retired, skip to the first
     * cycle an executing entry reaches 0 left. */
    int step = 1;
    if (!decoded && (finishing || retired == 0)) {
        int least = 255;
        for (int slot = 0; slot < ROB; slot++)
            if (s->state[slot] == EXECUTING && s->remaining[slot] < least) least = s->remaining[slot];
        if (least > 0 && least < 255) step = least;
    }
    uint32_t finished = 0;
    for (int slot = 0; slot < ROB; slot++) {
        if (s->state[slot] != EXECUTING) continue;
        s->remaining[slot] -= step;
        if (s->remaining[slot] == 0) finished |= 1u << slot;
    }
    if (finished) {
        for (int slot = 0; slot < ROB; slot++) s->deps[slot] &= ~finished;
        for (int slot = 0; slot < ROB; slot++) {
            if (!(finished >> slot & 1)) continue;
            for (int r = 0; r < 16; r++)
                if (s->writes[slot] >> r & 1) s->producer[r] = NONE;
            s->writes[slot] = 0;
            s->avail += s->required[slot];
            s->required[slot] = 0;
        }
    }
    for (int slot = 0; slot < ROB; slot++)
        if (s->state[slot] == EXECUTING && s->remaining[slot] == -1) s->state[slot] = EXECUTED;
    /* 4. what was decoded this cycle waits from the next */
    if (decoded) {
        for (int slot = 0; slot < ROB; slot++)
            if (s->state[slot] == DECODING) s->state[slot] = WAITING;
        s->decode_left = 4;
    }
    s->cycles += (uint32_t)step;
}

static void tick_loop(struct ref_sim *s, bool finishing)
{
    tick(s, true, finishing);
    while (s->in_flight > (finishing ? 0u : ROB - 1u)) tick(s, false, finishing);
}

static void feed(struct ref_sim *s, const struct ref_cost *c)
{
    if (s->decode_left < (uint32_t)c->decode || s->in_flight == ROB) tick_loop(s, false);
    if (c->move) {
        int old = s->producer[c->dst], now = s->producer[c->src1];
        if (old != NONE) s->writes[old] &= ~(1u << c->dst);
        if (now != NONE) s->writes[now] |= 1u << c->dst;
        s->producer[c->dst] = now;
        s->decode_left -= 1;
        return;
    }
    uint32_t slot = s->tail;
    s->tail = (s->tail + 1) % ROB;
    s->remaining[slot] = c->latency;
    s->required[slot] = c->res;
    uint32_t deps = 0;
    if (c->src1 != NONE && s->producer[c->src1] != NONE) deps |= 1u << s->producer[c->src1];
    if (c->src2 != NONE && s->producer[c->src2] != NONE) deps |= 1u << s->producer[c->src2];
    s->deps[slot] = deps;
    if (c->dst != NONE) {
        for (int k = 0; k < ROB; k++) s->writes[k] &= ~(1u << c->dst);
        s->writes[slot] |= 1u << c->dst;
        s->producer[c->dst] = (int)slot;
    }
    s->state[slot] = DECODING;
    s->in_flight++;
    s->decode_left -= (uint32_t)c->decode;
    if (c->drain) {
        s->finished = true;
        tick_loop(s, true);
    }
}

uint32_t gas_ref_block_cost(const struct cpvm_program *p, uint32_t start, int load_latency, uint32_t *cycles)
{
    struct ref_sim s;
    memset(&s, 0, sizeof s);
    s.decode_left = 4;
    s.avail = PACK(4, 4, 4, 1, 1) | GUARD_BITS;
    for (int r = 0; r < 16; r++) s.producer[r] = NONE;
    struct dec_block_iter it = dec_block_begin(p, start);
    struct dec_insn in;
    while (!s.finished && dec_block_next(&it, &in)) {
        struct ref_cost c = cost_of(p, &in, load_latency);
        feed(&s, &c);
    }
    if (cycles) *cycles = s.cycles;
    return s.cycles > 4 ? s.cycles - 3 : 1;
}
