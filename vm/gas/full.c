/* The full cost model (gas.md §5), scalar: the reference keeps each ROB field in
 * a SIMD lane per slot; here entry states are 32-bit masks over the slots and the
 * per-slot fields are small arrays walked only over the slots a phase touches. */
#include "full.h"

#include <string.h>

#include "../program/program.h"

#define DECODE_PER_CYCLE 4u
#define START_PER_CYCLE 5
#define COST_SLACK 3
#define BRANCH_HIT 1
#define BRANCH_MISS 20
#define STORE_LATENCY 25

/* Resources, one field each, with a guard bit above: subtracting a demand larger
 * than what is free clears the guard, so one subtraction tests all five. */
#define ALU_AT 0
#define LOAD_AT 4
#define STORE_AT 8
#define MUL_AT 12
#define DIV_AT 14
#define GUARDS ((1u << 3) | (1u << 7) | (1u << 11) | (1u << 13) | (1u << 15))
#define RES(alu, load, store, mul, div)                                                                     \
    (uint16_t)(((alu) << ALU_AT) | ((load) << LOAD_AT) | ((store) << STORE_AT) | ((mul) << MUL_AT) |        \
               ((div) << DIV_AT))
#define ALL_FREE (RES(4, 4, 4, 1, 1) | GUARDS)

#define ROB_MASK (GAS_ROB_SIZE - 1)

static inline uint32_t rotr(uint32_t x, uint32_t n) { return n ? (x >> n) | (x << (32 - n)) : x; }
static inline uint32_t rotl(uint32_t x, uint32_t n) { return n ? (x << n) | (x >> (32 - n)) : x; }
static inline uint32_t bit(uint32_t slot) { return 1u << slot; }

#define FOR_SLOTS(mask, slot) \
    for (uint32_t m_ = (mask), slot; m_ && ((slot = (uint32_t)__builtin_ctz(m_)), 1); m_ &= m_ - 1)

/* Per-slot arrays need no clearing: a slot's fields are written when it is
 * dispatched, and `deps` is read only for slots in `blocked`. */
static void reset(struct gas_sim *s)
{
    s->cycles = s->insns = 0;
    s->finished = false;
    s->in_flight = s->head = s->tail = 0;
    s->decode_left = DECODE_PER_CYCLE;
    s->avail = ALL_FREE;
    s->decoding = s->waiting = s->executing = s->executed = s->blocked = 0;
    for (int r = 0; r < 16; r++) s->producer[r] = -1;
}

void gas_sim_restart(struct gas_sim *s) { reset(s); }

void gas_sim_init(struct gas_sim *s, const struct cpvm_program *p, int8_t load_latency)
{
    s->code = p->code;
    s->code_len = p->code_len;
    /* an ISA without the instruction compares against a byte no ISA uses for it */
    int16_t t = isa_rows[OP_trap].opcode[p->isa], u = isa_rows[OP_unlikely].opcode[p->isa];
    s->trap_byte = t >= 0 ? t : 255;
    s->unlikely_byte = u >= 0 ? u : 255;
    s->load_latency = load_latency;
    s->is64 = cpvm_program_is_64_bit(p);
    s->fast_forward = true;
    s->trace = NULL;
    s->trace_ctx = NULL;
    reset(s);
}

static void emit(struct gas_sim *s, uint32_t mask, enum gas_event ev)
{
    FOR_SLOTS(mask, slot) s->trace(s->trace_ctx, s->cycles, s->rob.slot_insn[slot], ev);
}

/* One cycle: retire, start, advance execution, then what was decoded this cycle
 * starts waiting. With `draining` (after the terminator) or when nothing retired,
 * and nothing was decoded, idle cycles up to the next completion are skipped. */
static inline __attribute__((always_inline)) void tick(struct gas_sim *s, bool draining, bool decoded)
{
    /* the state in locals: the per-slot arrays would otherwise force reloads */
    uint32_t head = s->head, executed = s->executed, waiting = s->waiting, executing = s->executing;
    uint32_t avail = s->avail;

    /* 1. retire the run of executed entries at the head, in order */
    uint32_t ready = rotr(executed, head);
    uint32_t nret = ready == UINT32_MAX ? 32 : (uint32_t)__builtin_ctz(~ready);
    if (nret) {
        uint32_t retired = rotl(nret == 32 ? UINT32_MAX : bit(nret) - 1, head);
        if (s->trace) {
            emit(s, retired, GAS_EV_RETIRED);
            emit(s, executed & ~retired, GAS_EV_RETIRE_WAIT);
        }
        executed &= ~retired;
        s->in_flight -= nret;
        head = (head + nret) & ROB_MASK;
    } else if (s->trace) {
        emit(s, executed, GAS_EV_RETIRE_WAIT);
    }

    /* 2. start up to 5 entries whose inputs are ready and whose resources are free,
     * oldest first. Resources only shrink meanwhile, so an entry that does not fit
     * now will not later in this cycle: one pass in age order picks the same
     * entries as picking the oldest that fits five times. */
    uint32_t started = 0;
    int nstart = 0;
    FOR_SLOTS(rotr(waiting & ~s->blocked, head), age)
    {
        uint32_t slot = (age + head) & ROB_MASK;
        uint32_t need = s->rob.needs[slot];
        if (((avail - need) & GUARDS) != GUARDS) continue;
        avail -= need;
        started |= bit(slot);
        if (++nstart == START_PER_CYCLE) break;
    }
    waiting &= ~started;
    executing |= started;
    if (s->trace) emit(s, waiting, GAS_EV_WAITING);

    /* 3. advance execution; idle cycles up to the next completion are skipped */
    int step = 1;
    uint32_t exec = executing;
    if (exec) {
        if (!decoded && s->fast_forward && (draining || nret == 0)) {
            int least = 127;
            FOR_SLOTS(exec, slot) if (s->rob.remaining[slot] < least) least = s->rob.remaining[slot];
            if (least > 0) step = least;
        }
        uint32_t done = 0, last = 0;
        FOR_SLOTS(exec, slot)
        {
            int r = s->rob.remaining[slot] - step; /* never below -1 */
            s->rob.remaining[slot] = (int16_t)r;
            if (r == 0) done |= bit(slot);
            if (r == -1) last |= bit(slot);
        }
        if (done) {
            /* results are ready: release dependents, registers and resources */
            uint32_t blocked = s->blocked;
            FOR_SLOTS(blocked, slot)
            {
                if (!(s->rob.deps[slot] &= ~done)) blocked &= ~bit(slot);
            }
            s->blocked = blocked;
            uint32_t regs = 0;
            FOR_SLOTS(done, slot)
            {
                regs |= s->rob.writes[slot];
                s->rob.writes[slot] = 0;
                avail += s->rob.needs[slot];
                s->rob.needs[slot] = 0;
            }
            FOR_SLOTS(regs, r) s->producer[r] = -1;
        }
        /* an entry at 0 left becomes executed on the following tick (-1) */
        executing &= ~last;
        executed |= last;
        if (s->trace) {
            emit(s, last, GAS_EV_EXECUTED);
            emit(s, exec & ~last, GAS_EV_EXECUTING);
        }
    }

    /* 4. this cycle's decoded entries wait from the next one */
    if (decoded) {
        waiting |= s->decoding;
        s->decoding = 0;
        s->decode_left = DECODE_PER_CYCLE;
    }
    s->head = head;
    s->executed = executed;
    s->waiting = waiting;
    s->executing = executing;
    s->avail = avail;
    s->cycles += (uint32_t)step;
}

/* Draining with every entry started: nothing changes order any more. An entry
 * with r cycles left (stored after the last advance; remaining + cycles stays
 * constant while it executes) is executed at cycles + r + 1 and an executed one
 * now; each retires at the first tick at or after that (ticks occur at every
 * completion, fast-forward or not), all in order, so the last tick is at the
 * latest of those, and the count ends one cycle later. */
static void finish_started(struct gas_sim *s)
{
    uint32_t latest = s->executed ? s->cycles : 0;
    FOR_SLOTS(s->executing, slot)
    {
        uint32_t at = s->cycles + (uint32_t)s->rob.remaining[slot] + 1;
        if (at > latest) latest = at;
    }
    s->cycles = latest + 1;
    s->in_flight = 0;
    s->executing = s->executed = 0;
}

static void tick_until(struct gas_sim *s, bool draining)
{
    tick(s, draining, true);
    if (draining) {
        while (s->in_flight) {
            if (!s->waiting && s->fast_forward) {
                finish_started(s);
                break;
            }
            tick(s, true, false);
        }
        return;
    }
    while (s->in_flight > GAS_ROB_SIZE - 1) tick(s, false, false);
}

static void make_room(struct gas_sim *s, uint32_t slots)
{
    if (s->decode_left < slots || s->in_flight == GAS_ROB_SIZE) tick_until(s, false);
}

struct cost {
    int8_t latency;
    uint8_t decode;
    uint16_t res;
};

/* dst/src1/src2: register, or -1 for none */
static void dispatch(struct gas_sim *s, int dst, int src1, int src2, struct cost c)
{
    make_room(s, c.decode);
    if (s->trace) s->trace(s->trace_ctx, s->cycles, s->insns, GAS_EV_DECODE);
    uint32_t slot = s->tail;
    s->tail = (s->tail + 1) & ROB_MASK;
    s->rob.remaining[slot] = c.latency;
    s->rob.needs[slot] = c.res;
    s->rob.writes[slot] = 0;
    if (src1 >= 0 || src2 >= 0) {
        uint32_t d = 0;
        if (src1 >= 0 && s->producer[src1] >= 0) d |= bit((uint32_t)s->producer[src1]);
        if (src2 >= 0 && s->producer[src2] >= 0) d |= bit((uint32_t)s->producer[src2]);
        s->rob.deps[slot] = d;
        if (d) s->blocked |= bit(slot);
    }
    if (dst >= 0) {
        /* a register's bit is only ever in its producer's `writes` */
        uint16_t r = (uint16_t)(1u << dst);
        if (s->producer[dst] >= 0) s->rob.writes[s->producer[dst]] &= (uint16_t)~r;
        s->rob.writes[slot] |= r;
        s->producer[dst] = (int16_t)slot;
    }
    s->decoding |= bit(slot);
    s->rob.slot_insn[slot] = s->insns;
    s->in_flight++;
    s->insns++;
    s->decode_left -= c.decode;
}

/* move_reg is renamed away: the destination now names the source's producer. */
static void move_reg(struct gas_sim *s, int dst, int src)
{
    make_room(s, 1);
    if (s->trace) s->trace(s->trace_ctx, s->cycles, s->insns, GAS_EV_DECODE);
    int old = s->producer[dst], now = s->producer[src];
    if (old >= 0) s->rob.writes[old] &= (uint16_t)~(1u << dst);
    if (now >= 0) s->rob.writes[now] |= (uint16_t)(1u << dst);
    s->producer[dst] = (int16_t)now;
    s->decode_left -= 1;
    s->insns++;
}

static void drain(struct gas_sim *s)
{
    s->finished = true;
    tick_until(s, true);
}

static bool predicted_at(const struct gas_sim *s, uint64_t at)
{
    if (at >= s->code_len) return true;
    return s->code[at] == s->trap_byte || s->code[at] == s->unlikely_byte;
}

/* gas.md §5: cheap when either way leads to trap/unlikely or out of the code. The
 * fallthrough is the byte after the whole instruction (the interpreter's reading, F7). */
static int8_t branch_latency(const struct gas_sim *s, const struct dec_insn *in)
{
    if (predicted_at(s, (uint64_t)in->pc + in->len) || predicted_at(s, in->target)) return BRANCH_HIT;
    return BRANCH_MISS;
}

static inline struct cost C(int latency, unsigned decode, uint16_t res)
{
    return (struct cost){.latency = (int8_t)latency, .decode = (uint8_t)decode, .res = res};
}

void gas_sim_feed(struct gas_sim *s, const struct dec_insn *in)
{
    const int A = in->a, B = in->b, D = in->d;
    const unsigned w = s->is64;                    /* 32-bit ops cost one more in 64-bit programs */
    const unsigned d3 = D != A && D != B;          /* 3-operand: destination is neither source */
    const unsigned d2 = A != B;                    /* 2-operand (A = B op imm) */
    const uint16_t alu = RES(1, 0, 0, 0, 0);
    const struct cost load = C(s->load_latency, 1, RES(1, 1, 0, 0, 0));
    const struct cost store = C(STORE_LATENCY, 1, RES(1, 0, 1, 0, 0));
    switch ((enum op)in->op) {
    case OP_add_64: case OP_sub_64: case OP_and: case OP_or: case OP_xor:
        dispatch(s, D, A, B, C(1, 1 + d3, alu));
        break;
    case OP_add_32: case OP_sub_32:
        dispatch(s, D, A, B, C(1 + (int)w, 1 + d3 + w, alu));
        break;
    case OP_xor_imm: case OP_and_imm: case OP_or_imm: case OP_add_imm_64:
    case OP_shift_logical_right_imm_64: case OP_shift_arithmetic_right_imm_64:
    case OP_shift_logical_left_imm_64: case OP_rotate_right_imm_64: case OP_reverse_byte:
        dispatch(s, A, B, -1, C(1, 1 + d2, alu));
        break;
    case OP_add_imm_32: case OP_shift_logical_right_imm_32: case OP_shift_arithmetic_right_imm_32:
    case OP_shift_logical_left_imm_32: case OP_rotate_right_imm_32:
        dispatch(s, A, B, -1, C(1 + (int)w, 1 + d2 + w, alu));
        break;
    case OP_count_leading_zero_bits_32: case OP_count_leading_zero_bits_64:
    case OP_count_set_bits_32: case OP_count_set_bits_64:
    case OP_sign_extend_8: case OP_sign_extend_16: case OP_zero_extend_16:
        dispatch(s, A, B, -1, C(1, 1, alu));
        break;
    case OP_count_trailing_zero_bits_32: case OP_count_trailing_zero_bits_64:
        dispatch(s, A, B, -1, C(2, 1, RES(2, 0, 0, 0, 0)));
        break;
    case OP_shift_logical_right_64: case OP_shift_arithmetic_right_64: case OP_shift_logical_left_64:
    case OP_rotate_left_64: case OP_rotate_right_64:
        dispatch(s, D, A, B, C(1, 2 + (D != A), alu));
        break;
    case OP_shift_logical_right_32: case OP_shift_arithmetic_right_32: case OP_shift_logical_left_32:
    case OP_rotate_left_32: case OP_rotate_right_32:
        dispatch(s, D, A, B, C(1 + (int)w, 2 + (D != A) + w, alu));
        break;
    case OP_shift_logical_right_imm_alt_64: case OP_shift_arithmetic_right_imm_alt_64:
    case OP_shift_logical_left_imm_alt_64: case OP_rotate_right_imm_alt_64:
        dispatch(s, A, B, -1, C(1, 3, alu));
        break;
    case OP_shift_logical_right_imm_alt_32: case OP_shift_arithmetic_right_imm_alt_32:
    case OP_shift_logical_left_imm_alt_32: case OP_rotate_right_imm_alt_32:
        dispatch(s, A, B, -1, C(2, 4, alu));
        break;
    case OP_set_less_than_unsigned: case OP_set_less_than_signed:
        dispatch(s, D, A, B, C(3, 3, alu));
        break;
    case OP_set_less_than_unsigned_imm: case OP_set_less_than_signed_imm:
    case OP_set_greater_than_unsigned_imm: case OP_set_greater_than_signed_imm:
        dispatch(s, A, B, -1, C(3, 3, alu));
        break;
    case OP_cmov_if_zero: case OP_cmov_if_not_zero:
        dispatch(s, D, A, B, C(2, 2, alu));
        break;
    case OP_cmov_if_zero_imm: case OP_cmov_if_not_zero_imm:
        dispatch(s, A, B, -1, C(2, 3, alu));
        break;
    case OP_maximum: case OP_maximum_unsigned: case OP_minimum: case OP_minimum_unsigned:
        dispatch(s, D, A, B, C(3, 2 + d3, alu));
        break;
    case OP_load_indirect_u8: case OP_load_indirect_i8: case OP_load_indirect_u16: case OP_load_indirect_i16:
    case OP_load_indirect_u32: case OP_load_indirect_i32: case OP_load_indirect_u64:
        dispatch(s, A, B, -1, load);
        break;
    case OP_load_u8: case OP_load_i8: case OP_load_u16: case OP_load_i16:
    case OP_load_u32: case OP_load_i32: case OP_load_u64:
        dispatch(s, A, -1, -1, load);
        break;
    case OP_store_imm_indirect_u8: case OP_store_imm_indirect_u16:
    case OP_store_imm_indirect_u32: case OP_store_imm_indirect_u64:
        dispatch(s, -1, A, -1, store);
        break;
    case OP_store_indirect_u8: case OP_store_indirect_u16: case OP_store_indirect_u32: case OP_store_indirect_u64:
        dispatch(s, -1, A, B, store);
        break;
    case OP_store_imm_u8: case OP_store_imm_u16: case OP_store_imm_u32: case OP_store_imm_u64:
        dispatch(s, -1, -1, -1, store);
        break;
    case OP_store_u8: case OP_store_u16: case OP_store_u32: case OP_store_u64:
        dispatch(s, -1, A, -1, store);
        break;
    case OP_branch_eq: case OP_branch_not_eq: case OP_branch_less_unsigned: case OP_branch_less_signed:
    case OP_branch_greater_or_equal_unsigned: case OP_branch_greater_or_equal_signed:
        dispatch(s, -1, A, B, C(branch_latency(s, in), 1, alu));
        drain(s);
        break;
    case OP_branch_eq_imm: case OP_branch_not_eq_imm: case OP_branch_less_unsigned_imm:
    case OP_branch_less_or_equal_unsigned_imm: case OP_branch_greater_or_equal_unsigned_imm:
    case OP_branch_greater_unsigned_imm: case OP_branch_less_signed_imm: case OP_branch_less_or_equal_signed_imm:
    case OP_branch_greater_or_equal_signed_imm: case OP_branch_greater_signed_imm:
        dispatch(s, -1, A, -1, C(branch_latency(s, in), 1, alu));
        drain(s);
        break;
    case OP_div_unsigned_32: case OP_div_signed_32: case OP_rem_unsigned_32: case OP_rem_signed_32:
    case OP_div_unsigned_64: case OP_div_signed_64: case OP_rem_unsigned_64: case OP_rem_signed_64:
        dispatch(s, D, A, B, C(60, 4, RES(1, 0, 0, 0, 1)));
        break;
    case OP_and_inverted: case OP_or_inverted:
        dispatch(s, D, A, B, C(2, 3, alu));
        break;
    case OP_xnor:
        dispatch(s, D, A, B, C(2, 2 + d3, alu));
        break;
    case OP_negate_and_add_imm_64:
        dispatch(s, A, B, -1, C(2, 3, alu));
        break;
    case OP_negate_and_add_imm_32:
        dispatch(s, A, B, -1, C(3, 4, alu));
        break;
    case OP_move_reg:
        move_reg(s, A, B);
        break;
    case OP_load_imm:
        dispatch(s, A, -1, -1, C(1, 1, 0));
        break;
    case OP_load_imm64:
        dispatch(s, A, -1, -1, C(1, 2, 0));
        break;
    case OP_mul_32:
        dispatch(s, D, A, B, C(4, 2 + d3, RES(1, 0, 0, 1, 0)));
        break;
    case OP_mul_64:
        dispatch(s, D, A, B, C(3, 1 + d3, RES(1, 0, 0, 1, 0)));
        break;
    case OP_mul_imm_32:
        dispatch(s, A, B, -1, C(4, 2 + d2, RES(1, 0, 0, 1, 0)));
        break;
    case OP_mul_imm_64:
        dispatch(s, A, B, -1, C(3, 1 + d2, RES(1, 0, 0, 1, 0)));
        break;
    case OP_mul_upper_signed_signed: case OP_mul_upper_unsigned_unsigned:
        dispatch(s, D, A, B, C(4, 4, RES(1, 0, 0, 1, 0)));
        break;
    case OP_mul_upper_signed_unsigned:
        dispatch(s, D, A, B, C(6, 4, RES(1, 0, 0, 1, 0)));
        break;
    case OP_unlikely:
        dispatch(s, -1, -1, -1, C(40, 1, 0));
        break;
    case OP_jump: case OP_load_imm_and_jump:
        dispatch(s, -1, -1, -1, C(15, 1, 0));
        drain(s);
        break;
    case OP_jump_indirect:
        dispatch(s, -1, A, -1, C(22, 1, 0));
        drain(s);
        break;
    case OP_load_imm_and_jump_indirect:
        dispatch(s, -1, B, -1, C(22, 1, 0));
        drain(s);
        break;
    case OP_ecalli: case OP_memset:
        dispatch(s, -1, -1, -1, C(100, 4, alu));
        break;
    case OP_sbrk:
        dispatch(s, A, B, -1, C(100, 4, alu));
        break;
    case OP_trap: case OP_fallthrough: case OP_invalid:
    default:
        dispatch(s, -1, -1, -1, C(2, 1, 0));
        drain(s);
        break;
    }
}

uint32_t gas_sim_cost(const struct gas_sim *s)
{
    int64_t c = (int64_t)s->cycles - COST_SLACK;
    return c < 1 ? 1 : (uint32_t)c;
}

uint32_t gas_full_block_cost(const struct cpvm_program *p, uint32_t start, int8_t load_latency,
                             gas_trace_fn *trace, void *trace_ctx, uint32_t *cycles)
{
    struct gas_sim s;
    gas_sim_init(&s, p, load_latency);
    if (trace) {
        s.trace = trace;
        s.trace_ctx = trace_ctx;
        s.fast_forward = false; /* one event per cycle */
    }
    struct dec_block_iter it = dec_block_begin(p, start);
    struct dec_insn in;
    while (!s.finished && dec_block_next(&it, &in)) gas_sim_feed(&s, &in);
    if (!s.finished) { /* cannot happen: the iterator ends with a terminator */
        struct dec_insn t = {.op = OP_invalid, .pc = p->code_len, .len = 1};
        gas_sim_feed(&s, &t);
    }
    if (cycles) *cycles = s.cycles;
    return gas_sim_cost(&s);
}
