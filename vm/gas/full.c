/* The full cost model (gas.md §5), scalar: the reference keeps each ROB field in
 * a SIMD lane per slot; here entry states are 32-bit masks over the slots and the
 * per-slot fields are small arrays walked only over the slots a phase touches.
 *
 * Four ways to the same number (the reference only has the first two):
 *  - the ticks, one per cycle (tracing: every event);
 *  - the ticks with the reference's fast-forward over idle cycles (results come
 *    off a calendar), and without ticks once the end is determined
 *    (finish_unconstrained); blocks of more than 31 entries (the ROB can fill),
 *    or more than 64 instructions fed one by one, go this way;
 *  - the closed form: the whole block recorded at its terminator in one loop
 *    (table lookups, no branches on an instruction's kind), each entry with its
 *    result time if no resource or start limit binds; that is the cost when the
 *    block's resources all fit at once (most blocks, and always with one or two
 *    instructions), or when a per-cycle count shows no limit is reached;
 *  - otherwise schedule(): the ticks' start decisions, made by events (results,
 *    decodes) without the ROB bookkeeping.
 * The unit tests hold them equal to each other and to the plain model of
 * fuzz/harness/gas_ref.c on every block of the conformance vectors and the
 * bench programs; the fuzz harness's gas check does on generated blocks. */
#include "full.h"

#include <string.h>

#include "../program/program.h"

#define DECODE_PER_CYCLE 4u
#define START_PER_CYCLE 5
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

/* An instruction's cost flags (the COSTS table below). */
enum {
    F_D3 = 1 << 0,    /* one more decode slot when D is neither A nor B */
    F_D2 = 1 << 1,    /* ... when A (destination) differs from B (source) */
    F_DA = 1 << 2,    /* ... when D differs from A */
    F_W = 1 << 3,     /* 32-bit op: one more cycle and decode slot in 64-bit programs */
    F_LOAD = 1 << 4,  /* latency = the cache model's */
    F_BRANCH = 1 << 5, /* latency by the branch rule */
    F_END = 1 << 6,   /* ends the block: the model drains */
    F_MOVE = 1 << 7,  /* move_reg: renamed away */
};

#define ROB_MASK (GAS_ROB_SIZE - 1)
#define NO_SRC 16
#define NO_DST 17

static inline uint32_t rotr(uint32_t x, uint32_t n) { return n ? (x >> n) | (x << (32 - n)) : x; }
static inline uint32_t rotl(uint32_t x, uint32_t n) { return n ? (x << n) | (x >> (32 - n)) : x; }
static inline uint32_t bit(uint32_t slot) { return 1u << slot; }

#define FOR_SLOTS(mask, slot) \
    for (uint32_t m_ = (mask), slot; m_ && ((slot = (uint32_t)__builtin_ctz(m_)), 1); m_ &= m_ - 1)

/* Per-slot arrays need no clearing: a slot's fields are written when it is
 * dispatched, and `deps` is read only for slots in `blocked`. */
/* The ticking model's state, emptied only when the ticks are to run. */
static void reset_ticks(struct gas_sim *s)
{
    s->cycles = s->insns = 0;
    s->in_flight = s->head = s->tail = 0;
    s->decode_left = DECODE_PER_CYCLE;
    s->held = 0;
    s->decoding = s->waiting = s->executing = s->executed = s->blocked = s->finished_now = 0;
    s->cal.busy[0] = s->cal.busy[1] = 0;
    memset(s->producer, 0, sizeof s->producer);
}

static const struct op_cost *cost_table(bool is64);

static void reset(struct gas_sim *s)
{
    gas_sim_restart(s);
    if (s->direct) reset_ticks(s);
}

void gas_sim_start_ticks(struct gas_sim *s) { reset_ticks(s); }

void gas_sim_init(struct gas_sim *s, const struct cpvm_program *p, int8_t load_latency)
{
    s->code = p->code;
    s->code_len = p->code_len;
    /* an ISA without the instruction compares with 255, as the reference does (its
     * unused-opcode byte): a 0xff byte at the fall-through or target predicts the branch */
    int16_t t = isa_rows[OP_trap].opcode[p->isa], u = isa_rows[OP_unlikely].opcode[p->isa];
    s->trap_byte = t >= 0 ? t : 255;
    s->unlikely_byte = u >= 0 ? u : 255;
    s->load_latency = (uint8_t)load_latency;
    s->is64 = cpvm_program_is_64_bit(p);
    s->costs = cost_table(s->is64);
    s->trace = NULL;
    s->trace_ctx = NULL;
    reset(s);
}

static void emit(struct gas_sim *s, uint32_t mask, enum gas_event ev)
{
    FOR_SLOTS(mask, slot) s->trace(s->trace_ctx, s->cycles, s->rob.slot_insn[slot], ev);
}

/* Each resource field widened to a byte, to add up the demands of many entries;
 * a sixth byte counts starts. */
#define WIDE(r)                                                                                              \
    ((uint64_t)(((r) >> ALU_AT) & 7) | (uint64_t)(((r) >> LOAD_AT) & 7) << 8 |                             \
     (uint64_t)(((r) >> STORE_AT) & 7) << 16 | (uint64_t)(((r) >> MUL_AT) & 1) << 24 |                      \
     (uint64_t)(((r) >> DIV_AT) & 1) << 32)
#define WIDE_START (1ull << 40)

/* Demands added up per byte (widen): over the limits of one cycle? */
static inline bool over_limits(uint64_t demand)
{
    /* per byte: limit 4, 4, 4, 1, 1 and 5 starts; adding 127 - limit sets the top
     * bit when over (a byte holds at most 32 entries x 4, so nothing carries) */
    return ((demand + 0x7a7e7e7b7b7bull) & 0x808080808080ull) != 0;
}

/* The calendar of results (struct gas_calendar): latencies are at most 100, so
 * every pending result is within 128 cycles of now. A cycle's mask is valid only
 * while its bit in `busy` is set: nothing needs clearing. */
static inline void cal_add(struct gas_calendar *c, uint32_t cycle, uint32_t entry)
{
    uint32_t k = cycle & 127;
    uint64_t b = 1ull << (k & 63), was = c->busy[k >> 6] & b;
    c->at[k] = (was ? c->at[k] : 0) | bit(entry);
    c->busy[k >> 6] |= b;
}

/* The entries whose results come at `cycle`, taken off the calendar. */
static inline uint32_t cal_take(struct gas_calendar *c, uint32_t cycle)
{
    uint32_t k = cycle & 127;
    uint64_t b = 1ull << (k & 63);
    if (!(c->busy[k >> 6] & b)) return 0;
    c->busy[k >> 6] &= ~b;
    return c->at[k];
}

/* The first cycle after `now` with a result, UINT32_MAX if none. */
static inline uint32_t cal_next(const struct gas_calendar *c, uint32_t now)
{
    uint32_t k = (now + 1) & 127; /* search from k, wrapping around */
    uint64_t lo = c->busy[0], hi = c->busy[1];
    if (!(lo | hi)) return UINT32_MAX;
    if (k >= 64) { /* rotate the 128 bits right by k */
        uint64_t t = lo;
        lo = hi;
        hi = t;
        k -= 64;
    }
    uint64_t r0 = lo, r1 = hi;
    if (k) {
        r0 = (lo >> k) | (hi << (64 - k));
        r1 = (hi >> k) | (lo << (64 - k));
    }
    return now + 1 + (r0 ? (uint32_t)__builtin_ctzll(r0) : 64 + (uint32_t)__builtin_ctzll(r1));
}

/* One cycle: retire, start, advance execution, then what was decoded this cycle
 * starts waiting. With `draining` (after the terminator) or when nothing retired,
 * and nothing was decoded, idle cycles up to the next completion are skipped. */
static inline __attribute__((always_inline)) void tick(struct gas_sim *s, bool draining, bool decoded, const bool T)
{
    /* the state in locals: stores into the per-slot arrays would force reloads */
    uint32_t head = s->head, executed = s->executed, waiting = s->waiting, executing = s->executing;
    uint32_t now = s->cycles;
    uint64_t held = s->held;

    /* 1. retire the run of executed entries at the head, in order */
    uint32_t ready = rotr(executed, head);
    uint32_t nret = ready == UINT32_MAX ? 32 : (uint32_t)__builtin_ctz(~ready);
    if (nret) {
        uint32_t retired = rotl(nret == 32 ? UINT32_MAX : bit(nret) - 1, head);
        if (T) {
            emit(s, retired, GAS_EV_RETIRED);
            emit(s, executed & ~retired, GAS_EV_RETIRE_WAIT);
        }
        executed &= ~retired;
        s->in_flight -= nret;
        head = (head + nret) & ROB_MASK;
    } else if (T) {
        emit(s, executed, GAS_EV_RETIRE_WAIT);
    }

    /* 2. start up to 5 entries whose inputs are ready and whose resources are free,
     * oldest first. Resources only shrink meanwhile, so an entry that does not fit
     * now will not later in this cycle: one pass in age order picks the same
     * entries as picking the oldest that fits five times. */
    uint32_t started = 0;
    int nstart = 0;
    uint32_t startable = waiting & ~s->blocked;
    if ((held & 0xff) == 4) startable &= s->no_alu; /* no ALU left: the rest cannot start */
    FOR_SLOTS(rotr(startable, head), age)
    {
        uint32_t slot = (age + head) & ROB_MASK;
        uint64_t need = s->rob.needs[slot];
        if (over_limits(held + need)) continue;
        held += need;
        s->rob.until[slot] += now; /* latency -> the cycle its result comes */
        cal_add(&s->cal, s->rob.until[slot], slot);
        started |= bit(slot);
        if (++nstart == START_PER_CYCLE) break;
    }
    waiting &= ~started;
    executing |= started;
    if (T) emit(s, waiting, GAS_EV_WAITING);

    /* 3. advance execution. Entries whose result came last cycle (0 left) become
     * executed (-1 left). Of the others, those whose result comes at the new cycle
     * count release what they held; with none at 0 left, the reference skips
     * idle cycles up to the first of them. */
    uint32_t last = s->finished_now, step = 1, done = 0;
    uint32_t first = cal_next(&s->cal, now); /* the first result still to come */
    if (first != UINT32_MAX) {
        if (!T && !last && !decoded && (draining || nret == 0)) step = first - now;
        if (first == now + step) done = cal_take(&s->cal, first);
    }
    if (done) {
        /* results are ready: release dependents, registers and resources */
        uint32_t blocked = s->blocked;
        FOR_SLOTS(done, slot)
        {
            for (uint32_t u = s->rob.users[slot]; u; u &= u - 1) {
                uint32_t user = (uint32_t)__builtin_ctz(u);
                if (!(s->rob.deps[user] &= ~bit(slot))) blocked &= ~bit(user);
            }
        }
        s->blocked = blocked;
        uint32_t regs = 0;
        FOR_SLOTS(done, slot)
        {
            regs |= s->rob.writes[slot];
            s->rob.writes[slot] = 0;
            held -= s->rob.needs[slot];
        }
        FOR_SLOTS(regs, r) s->producer[r] = 0;
    }
    if (T) {
        emit(s, last, GAS_EV_EXECUTED);
        emit(s, executing & ~last, GAS_EV_EXECUTING);
    }
    executing &= ~last;
    executed |= last;
    s->finished_now = done;

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
    s->held = held;
    s->cycles = now + step;
}


/* Draining, when the resources and the start limit can no longer hold anything
 * back: what the ticks would do follows from the dependencies alone. An entry
 * starts at the first tick after its inputs' results come (ticks occur at every
 * result), so its result comes at max(now, its producers' results) + latency;
 * producers are older, so age order computes them first. It is executed one
 * cycle after its result comes (one whose result came this cycle: next cycle),
 * an executed one already; each retires at the first tick at or after that, in
 * order, so the last tick is at the latest of those and the count ends one
 * cycle later. Returns false, changing nothing, when resources might bind. */
static bool finish_unconstrained(struct gas_sim *s, bool decoded)
{
    /* with `decoded`, called in place of this cycle's tick: what was decoded in
     * it starts waiting at the next one */
    uint32_t fresh = decoded ? s->decoding : 0;
    uint32_t waiting = s->waiting | fresh, running = s->executing & ~s->finished_now;
    if (waiting) {
        uint32_t beyond = waiting; /* entries past the fifth */
        for (int k = 0; k < START_PER_CYCLE; k++) beyond &= beyond - 1;
        if (beyond) return false;
        uint64_t demand = 0;
        FOR_SLOTS(waiting | running, slot) demand += s->rob.needs[slot];
        if (over_limits(demand)) return false;
    }
    uint32_t now = s->cycles, latest = s->executed ? now : 0;
    FOR_SLOTS(s->executing, slot)
    {
        uint32_t at = s->rob.until[slot] + 1;
        if (at > latest) latest = at;
    }
    FOR_SLOTS(rotr(waiting, s->head), age)
    {
        uint32_t slot = (age + s->head) & ROB_MASK, begin = now + ((fresh >> slot) & 1);
        for (uint32_t d = s->rob.deps[slot]; d; d &= d - 1) {
            uint32_t at = s->rob.until[__builtin_ctz(d)];
            if (at > begin) begin = at;
        }
        s->rob.until[slot] += begin;
        if (s->rob.until[slot] + 1 > latest) latest = s->rob.until[slot] + 1;
    }
    s->cycles = latest + 1;
    s->in_flight = 0;
    s->waiting = s->executing = s->executed = s->finished_now = s->decoding = 0;
    return true;
}

static inline __attribute__((always_inline)) void tick_until(struct gas_sim *s, bool draining, const bool T)
{
    if (draining) {
        /* the check costs about a tick: made once, then whenever nothing waits */
        if (!T && finish_unconstrained(s, true)) return;
        tick(s, true, true, T);
        while (s->in_flight) {
            if (!T && !s->waiting && finish_unconstrained(s, false)) break;
            tick(s, true, false, T);
        }
        return;
    }
    tick(s, false, true, T);
    while (s->in_flight > GAS_ROB_SIZE - 1) tick(s, false, false, T);
}

static inline __attribute__((always_inline)) void make_room(struct gas_sim *s, uint32_t slots, const bool T)
{
    if (s->decode_left < slots || s->in_flight == GAS_ROB_SIZE) tick_until(s, false, T);
}

struct cost {
    int8_t latency;
    uint8_t decode;
    uint64_t wide; /* resources, widened, without the start */
};

/* dst/src1/src2: registers; NO_SRC / NO_DST for none (producer[NO_SRC] stays 0,
 * producer[NO_DST] is written and never read) */
static inline __attribute__((always_inline)) void dispatch(struct gas_sim *s, int dst, int src1, int src2, struct cost c, const bool T)
{
    make_room(s, c.decode, T);
    if (T) s->trace(s->trace_ctx, s->cycles, s->insns, GAS_EV_DECODE);
    uint32_t slot = s->tail;
    s->tail = (s->tail + 1) & ROB_MASK;
    s->rob.until[slot] = (uint32_t)c.latency;
    s->rob.needs[slot] = c.wide;
    s->no_alu = (s->no_alu & ~bit(slot)) | (uint32_t)!(c.wide & 0xff) << slot;
    uint32_t d = s->producer[src1] | s->producer[src2];
    s->rob.deps[slot] = d;
    s->rob.users[slot] = 0;
    for (uint32_t p = d; p; p &= p - 1) s->rob.users[__builtin_ctz(p)] |= bit(slot);
    s->blocked |= (uint32_t)(d != 0) << slot;
    /* a register's bit is only ever in its producer's `writes` */
    uint32_t old = s->producer[dst];
    if (old) s->rob.writes[__builtin_ctz(old)] &= ~bit((uint32_t)dst);
    s->rob.writes[slot] = bit((uint32_t)dst);
    s->producer[dst] = bit(slot);
    s->decoding |= bit(slot);
    if (T) s->rob.slot_insn[slot] = s->insns;
    s->in_flight++;
    s->insns++;
    s->decode_left -= c.decode;
}

/* move_reg is renamed away: the destination now names the source's producer. */
static inline __attribute__((always_inline)) void move_reg(struct gas_sim *s, int dst, int src, const bool T)
{
    make_room(s, 1, T);
    if (T) s->trace(s->trace_ctx, s->cycles, s->insns, GAS_EV_DECODE);
    uint32_t old = s->producer[dst], now = s->producer[src];
    if (old) s->rob.writes[__builtin_ctz(old)] &= ~bit((uint32_t)dst);
    if (now) s->rob.writes[__builtin_ctz(now)] |= bit((uint32_t)dst);
    s->producer[dst] = now;
    s->decode_left -= 1;
    s->insns++;
}

static inline __attribute__((always_inline)) void drain(struct gas_sim *s, const bool T)
{
    s->finished = true;
    tick_until(s, true, T);
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

/* Each instruction's costs (gas.md §5 table), as data. Register roles name the
 * decoder's fields: A, B (the first two) and D (the third of three-register ops). */
/* Where each role's register sits in reg_word()'s bytes: A, B, D, none as a
 * source (NO_SRC), none as a destination (NO_DST). */
enum { R_A = 2, R_B = 3, R_D = 4, R_NONE = 5, R_NODST = 6 };
/* 16 bytes: one line holds four, the recording loop reads one per instruction. */
struct op_cost {
    uint64_t wide; /* resources widened (widen()), one start */
    uint8_t latency; /* 0 if worked out */
    uint8_t decode;  /* decode slots */
    uint8_t flags;
    uint8_t extra; /* one more decode slot for these register patterns (see decode_slots) */
    uint8_t dst, src1, src2; /* R_ positions */
    uint8_t load; /* 0xff: the latency is the cache model's */
};
#define ALU RES(1, 0, 0, 0, 0)
/* over the patterns A == B | (D == A) << 1 | (D == B) << 2: D not in {A, B}; A != B; D != A */
#define EXTRA(fl) ((fl) & F_D3 ? 0x03 : (fl) & F_D2 ? 0x55 : (fl) & F_DA ? 0x33 : 0)
#define OPC(lat, dec, fl, d, s1, s2, res)                                                                  \
    {WIDE(res) + WIDE_START, (lat) + ((fl) & F_W ? W_ : 0), (dec) + ((fl) & F_W ? W_ : 0), fl, EXTRA(fl),       \
     R_##d == R_NONE ? R_NODST : R_##d, R_##s1, R_##s2, (fl) & F_LOAD ? 0xff : 0}
#define ALU3(lat, dec, fl) OPC(lat, dec, fl, D, A, B, ALU)      /* D = A op B */
#define ALU2(lat, dec, fl) OPC(lat, dec, fl, A, B, NONE, ALU)   /* A = op B */
#define LOADS(d, s1) OPC(0, 1, F_LOAD, d, s1, NONE, RES(1, 1, 0, 0, 0))
#define STORES(s1, s2) OPC(STORE_LATENCY, 1, 0, NONE, s1, s2, RES(1, 0, 1, 0, 0))
#define BRANCH(s2) OPC(0, 1, F_BRANCH | F_END, NONE, A, s2, ALU)
#define MUL3(lat, dec, fl) OPC(lat, dec, fl, D, A, B, RES(1, 0, 0, 1, 0))
#define MUL2(lat, dec, fl) OPC(lat, dec, fl, A, B, NONE, RES(1, 0, 0, 1, 0))
#define DIV OPC(60, 4, 0, D, A, B, RES(1, 0, 0, 0, 1))
#define END(lat) OPC(lat, 1, F_END, NONE, NONE, NONE, 0)
/* Every instruction's row; W_ (0 or 1) is the program's width where expanded. */
#define COST_ROWS                                                                                           \
    [OP_add_64] = ALU3(1, 1, F_D3), [OP_sub_64] = ALU3(1, 1, F_D3), [OP_and] = ALU3(1, 1, F_D3),                    \
    [OP_or] = ALU3(1, 1, F_D3), [OP_xor] = ALU3(1, 1, F_D3),                                                        \
    [OP_add_32] = ALU3(1, 1, F_D3 | F_W), [OP_sub_32] = ALU3(1, 1, F_D3 | F_W),                                     \
    [OP_xor_imm] = ALU2(1, 1, F_D2), [OP_and_imm] = ALU2(1, 1, F_D2), [OP_or_imm] = ALU2(1, 1, F_D2),               \
    [OP_add_imm_64] = ALU2(1, 1, F_D2), [OP_shift_logical_right_imm_64] = ALU2(1, 1, F_D2),                         \
    [OP_shift_arithmetic_right_imm_64] = ALU2(1, 1, F_D2), [OP_shift_logical_left_imm_64] = ALU2(1, 1, F_D2),       \
    [OP_rotate_right_imm_64] = ALU2(1, 1, F_D2), [OP_reverse_byte] = ALU2(1, 1, F_D2),                              \
    [OP_add_imm_32] = ALU2(1, 1, F_D2 | F_W), [OP_shift_logical_right_imm_32] = ALU2(1, 1, F_D2 | F_W),             \
    [OP_shift_arithmetic_right_imm_32] = ALU2(1, 1, F_D2 | F_W),                                                    \
    [OP_shift_logical_left_imm_32] = ALU2(1, 1, F_D2 | F_W), [OP_rotate_right_imm_32] = ALU2(1, 1, F_D2 | F_W),     \
    [OP_count_leading_zero_bits_32] = ALU2(1, 1, 0), [OP_count_leading_zero_bits_64] = ALU2(1, 1, 0),               \
    [OP_count_set_bits_32] = ALU2(1, 1, 0), [OP_count_set_bits_64] = ALU2(1, 1, 0),                                 \
    [OP_sign_extend_8] = ALU2(1, 1, 0), [OP_sign_extend_16] = ALU2(1, 1, 0), [OP_zero_extend_16] = ALU2(1, 1, 0),   \
    [OP_count_trailing_zero_bits_32] = OPC(2, 1, 0, A, B, NONE, RES(2, 0, 0, 0, 0)),                                \
    [OP_count_trailing_zero_bits_64] = OPC(2, 1, 0, A, B, NONE, RES(2, 0, 0, 0, 0)),                                \
    [OP_shift_logical_right_64] = ALU3(1, 2, F_DA), [OP_shift_arithmetic_right_64] = ALU3(1, 2, F_DA),              \
    [OP_shift_logical_left_64] = ALU3(1, 2, F_DA), [OP_rotate_left_64] = ALU3(1, 2, F_DA),                          \
    [OP_rotate_right_64] = ALU3(1, 2, F_DA),                                                                        \
    [OP_shift_logical_right_32] = ALU3(1, 2, F_DA | F_W), [OP_shift_arithmetic_right_32] = ALU3(1, 2, F_DA | F_W),  \
    [OP_shift_logical_left_32] = ALU3(1, 2, F_DA | F_W), [OP_rotate_left_32] = ALU3(1, 2, F_DA | F_W),              \
    [OP_rotate_right_32] = ALU3(1, 2, F_DA | F_W),                                                                  \
    [OP_shift_logical_right_imm_alt_64] = ALU2(1, 3, 0), [OP_shift_arithmetic_right_imm_alt_64] = ALU2(1, 3, 0),    \
    [OP_shift_logical_left_imm_alt_64] = ALU2(1, 3, 0), [OP_rotate_right_imm_alt_64] = ALU2(1, 3, 0),               \
    [OP_shift_logical_right_imm_alt_32] = ALU2(2, 4, 0), [OP_shift_arithmetic_right_imm_alt_32] = ALU2(2, 4, 0),    \
    [OP_shift_logical_left_imm_alt_32] = ALU2(2, 4, 0), [OP_rotate_right_imm_alt_32] = ALU2(2, 4, 0),               \
    [OP_set_less_than_unsigned] = ALU3(3, 3, 0), [OP_set_less_than_signed] = ALU3(3, 3, 0),                         \
    [OP_set_less_than_unsigned_imm] = ALU2(3, 3, 0), [OP_set_less_than_signed_imm] = ALU2(3, 3, 0),                 \
    [OP_set_greater_than_unsigned_imm] = ALU2(3, 3, 0), [OP_set_greater_than_signed_imm] = ALU2(3, 3, 0),           \
    [OP_cmov_if_zero] = ALU3(2, 2, 0), [OP_cmov_if_not_zero] = ALU3(2, 2, 0),                                       \
    [OP_cmov_if_zero_imm] = ALU2(2, 3, 0), [OP_cmov_if_not_zero_imm] = ALU2(2, 3, 0),                               \
    [OP_maximum] = ALU3(3, 2, F_D3), [OP_maximum_unsigned] = ALU3(3, 2, F_D3), [OP_minimum] = ALU3(3, 2, F_D3),     \
    [OP_minimum_unsigned] = ALU3(3, 2, F_D3),                                                                       \
    [OP_load_indirect_u8] = LOADS(A, B), [OP_load_indirect_i8] = LOADS(A, B), [OP_load_indirect_u16] = LOADS(A, B), \
    [OP_load_indirect_i16] = LOADS(A, B), [OP_load_indirect_u32] = LOADS(A, B),                                     \
    [OP_load_indirect_i32] = LOADS(A, B), [OP_load_indirect_u64] = LOADS(A, B),                                     \
    [OP_load_u8] = LOADS(A, NONE), [OP_load_i8] = LOADS(A, NONE), [OP_load_u16] = LOADS(A, NONE),                   \
    [OP_load_i16] = LOADS(A, NONE), [OP_load_u32] = LOADS(A, NONE), [OP_load_i32] = LOADS(A, NONE),                 \
    [OP_load_u64] = LOADS(A, NONE),                                                                                 \
    [OP_store_imm_indirect_u8] = STORES(A, NONE), [OP_store_imm_indirect_u16] = STORES(A, NONE),                    \
    [OP_store_imm_indirect_u32] = STORES(A, NONE), [OP_store_imm_indirect_u64] = STORES(A, NONE),                   \
    [OP_store_indirect_u8] = STORES(A, B), [OP_store_indirect_u16] = STORES(A, B),                                  \
    [OP_store_indirect_u32] = STORES(A, B), [OP_store_indirect_u64] = STORES(A, B),                                 \
    [OP_store_imm_u8] = STORES(NONE, NONE), [OP_store_imm_u16] = STORES(NONE, NONE),                                \
    [OP_store_imm_u32] = STORES(NONE, NONE), [OP_store_imm_u64] = STORES(NONE, NONE),                               \
    [OP_store_u8] = STORES(A, NONE), [OP_store_u16] = STORES(A, NONE), [OP_store_u32] = STORES(A, NONE),            \
    [OP_store_u64] = STORES(A, NONE),                                                                               \
    [OP_branch_eq] = BRANCH(B), [OP_branch_not_eq] = BRANCH(B), [OP_branch_less_unsigned] = BRANCH(B),              \
    [OP_branch_less_signed] = BRANCH(B), [OP_branch_greater_or_equal_unsigned] = BRANCH(B),                         \
    [OP_branch_greater_or_equal_signed] = BRANCH(B),                                                                \
    [OP_branch_eq_imm] = BRANCH(NONE), [OP_branch_not_eq_imm] = BRANCH(NONE),                                       \
    [OP_branch_less_unsigned_imm] = BRANCH(NONE), [OP_branch_less_or_equal_unsigned_imm] = BRANCH(NONE),            \
    [OP_branch_greater_or_equal_unsigned_imm] = BRANCH(NONE), [OP_branch_greater_unsigned_imm] = BRANCH(NONE),      \
    [OP_branch_less_signed_imm] = BRANCH(NONE), [OP_branch_less_or_equal_signed_imm] = BRANCH(NONE),                \
    [OP_branch_greater_or_equal_signed_imm] = BRANCH(NONE), [OP_branch_greater_signed_imm] = BRANCH(NONE),          \
    [OP_div_unsigned_32] = DIV, [OP_div_signed_32] = DIV, [OP_rem_unsigned_32] = DIV, [OP_rem_signed_32] = DIV,     \
    [OP_div_unsigned_64] = DIV, [OP_div_signed_64] = DIV, [OP_rem_unsigned_64] = DIV, [OP_rem_signed_64] = DIV,     \
    [OP_and_inverted] = ALU3(2, 3, 0), [OP_or_inverted] = ALU3(2, 3, 0), [OP_xnor] = ALU3(2, 2, F_D3),              \
    [OP_negate_and_add_imm_64] = ALU2(2, 3, 0), [OP_negate_and_add_imm_32] = ALU2(3, 4, 0),                         \
    [OP_move_reg] = OPC(0, 1, F_MOVE, A, B, NONE, 0),                                                               \
    [OP_load_imm] = OPC(1, 1, 0, A, NONE, NONE, 0), [OP_load_imm64] = OPC(1, 2, 0, A, NONE, NONE, 0),               \
    [OP_mul_32] = MUL3(4, 2, F_D3), [OP_mul_64] = MUL3(3, 1, F_D3), [OP_mul_imm_32] = MUL2(4, 2, F_D2),             \
    [OP_mul_imm_64] = MUL2(3, 1, F_D2), [OP_mul_upper_signed_signed] = MUL3(4, 4, 0),                               \
    [OP_mul_upper_unsigned_unsigned] = MUL3(4, 4, 0), [OP_mul_upper_signed_unsigned] = MUL3(6, 4, 0),               \
    [OP_invalid] = END(2), [OP_trap] = END(2), [OP_fallthrough] = END(2),                                           \
    [OP_unlikely] = OPC(40, 1, 0, NONE, NONE, NONE, 0),                                                             \
    [OP_jump] = END(15), [OP_load_imm_and_jump] = END(15),                                                          \
    [OP_jump_indirect] = OPC(22, 1, F_END, NONE, A, NONE, 0),                                                       \
    [OP_load_imm_and_jump_indirect] = OPC(22, 1, F_END, NONE, B, NONE, 0),                                          \
    [OP_ecalli] = OPC(100, 4, 0, NONE, NONE, NONE, ALU), [OP_memset] = OPC(100, 4, 0, NONE, NONE, NONE, ALU),       \
    [OP_sbrk] = OPC(100, 4, 0, A, B, NONE, ALU),                                                                    \
    [OP_COUNT + 1 ... 255] = END(2) /* no such opcode: the decoder never gives one; as invalid */
#define W_ 0
static const struct op_cost COSTS32[256] = {COST_ROWS};
#undef W_
#define W_ 1
static const struct op_cost COSTS64[256] = {COST_ROWS};
#undef W_

static const struct op_cost *cost_table(bool is64) { return is64 ? COSTS64 : COSTS32; }

bool gas_full_table_complete(void)
{
    for (unsigned op = 0; op <= OP_COUNT; op++)
        if (!COSTS32[op].latency && !(COSTS32[op].flags & (F_LOAD | F_BRANCH | F_MOVE))) return false;
    return true;
}

/* The opcode and register fields in one load: op, len, a, b, d are adjacent
 * bytes of struct dec_insn; NO_SRC and NO_DST go above them (the R_ positions). */
_Static_assert(offsetof(struct dec_insn, a) == offsetof(struct dec_insn, op) + 2 &&
                   offsetof(struct dec_insn, b) == offsetof(struct dec_insn, op) + 3 &&
                   offsetof(struct dec_insn, d) == offsetof(struct dec_insn, op) + 4 &&
                   offsetof(struct dec_insn, op) + 8 <= sizeof(struct dec_insn),
               "reg_word reads op..d as one word");
struct regs {
    uint8_t at[8]; /* op, len, A, B, D, NO_SRC, NO_DST, 0: indexed by an R_ position */
    uint32_t same; /* A == B | (D == A) << 1 | (D == B) << 2 */
};

/* The register pattern of every A, B, D (at most 12 each: 4 bits), by A | B << 4 | D << 8. */
#define SAME_AT(k) (uint8_t)((((k) & 15) == ((k) >> 4 & 15)) | (((k) >> 8 & 15) == ((k) & 15)) << 1 |        \
                             (((k) >> 8 & 15) == ((k) >> 4 & 15)) << 2)
#define SAME4(k) SAME_AT(k), SAME_AT((k) + 1), SAME_AT((k) + 2), SAME_AT((k) + 3)
#define SAME16(k) SAME4(k), SAME4((k) + 4), SAME4((k) + 8), SAME4((k) + 12)
#define SAME64(k) SAME16(k), SAME16((k) + 16), SAME16((k) + 32), SAME16((k) + 48)
#define SAME256(k) SAME64(k), SAME64((k) + 64), SAME64((k) + 128), SAME64((k) + 192)
#define SAME1024(k) SAME256(k), SAME256((k) + 256), SAME256((k) + 512), SAME256((k) + 768)
static const uint8_t SAME[4096] = {SAME1024(0), SAME1024(1024), SAME1024(2048), SAME1024(3072)};

static inline struct regs reg_word(const struct dec_insn *in)
{
    uint64_t w;
    memcpy(&w, &in->op, sizeof w);
    struct regs r;
    r.same = SAME[(w >> 16 & 0xf) | (w >> 20 & 0xf0) | (w >> 24 & 0xf00)];
    memcpy(r.at, &w, sizeof r.at);
    r.at[R_NONE] = NO_SRC;
    r.at[R_NODST] = NO_DST;
    return r;
}

static inline uint32_t role(const struct regs *w, unsigned at) { return w->at[at]; }

/* One instruction with its latency, decode slots and registers worked out
 * (registers: NO_SRC, NO_DST for none). */
struct shaped {
    uint32_t dst, src1, src2, decode, latency, flags;
    uint64_t wide;
};

/* Table lookups and arithmetic, the only branch on the rare branch rule: the
 * opcodes come in no predictable order. */
static inline __attribute__((always_inline)) void shape(const struct gas_sim *s, const struct dec_insn *in,
                                                        struct shaped *o)
{
    const struct regs w = reg_word(in);
    const struct op_cost *c = &s->costs[w.at[0]];
    uint32_t fl = c->flags;
    o->decode = c->decode + (c->extra >> w.same & 1);
    o->latency = c->latency + (s->load_latency & c->load);
    if (fl & F_BRANCH) o->latency = (uint32_t)branch_latency(s, in); /* a terminator: once a block */
    o->dst = role(&w, c->dst);
    o->src1 = role(&w, c->src1);
    o->src2 = role(&w, c->src2);
    o->flags = fl;
    o->wide = c->wide;
}

static inline __attribute__((always_inline)) void feed_shaped(struct gas_sim *s, const struct shaped *o, const bool T)
{
    if (o->flags & F_MOVE) {
        move_reg(s, (int)o->dst, (int)o->src1, T);
        return;
    }
    dispatch(s, (int)o->dst, (int)o->src1, (int)o->src2,
             (struct cost){.latency = (int8_t)o->latency, .decode = (uint8_t)o->decode, .wide = o->wide - WIDE_START},
             T);
    if (o->flags & F_END) drain(s, T);
}

/* ---- Blocks of at most GAS_ENT_MAX entries (the ROB never fills), without ticks.
 *
 * As the instructions come, each entry is recorded (when it is decoded, its
 * latency, resources and producers) and its result time worked out as if no
 * resource or start limit ever bound: an entry decoded in cycle c waits from
 * c + 1 and starts at the first tick at or after that and its producers'
 * results (there is a tick every cycle while decoding, and one at every
 * result); its result comes its latency later. The block then ends one cycle
 * after its last retirement, one cycle after the latest result. That holds
 * when no limit binds: when every entry's resources fit at once (most blocks),
 * or when at every cycle what the entries started by then and not done holds
 * fits, and at most 5 start (unconstrained_fits). Otherwise schedule() makes
 * the ticks' start decisions. */

static inline uint32_t low_bits(uint32_t n) { return n >= 32 ? UINT32_MAX : bit(n) - 1; }

#define FITS_HORIZON 128 /* cycles unconstrained_fits() looks at; later blocks are scheduled */

static bool unconstrained_fits(const struct gas_sim *s)
{
    /* per cycle: what starts, less what ends; what is held can only grow at a
     * start, so the cycles up to the last start are enough */
    uint64_t delta[FITS_HORIZON + 2];
    uint32_t stop = 0;
    for (uint32_t i = 0; i < s->nent; i++) stop = s->ent_begin[i] > stop ? s->ent_begin[i] : stop;
    stop++;
    memset(delta, 0, (stop + 1) * sizeof *delta);
    for (uint32_t i = 0; i < s->nent; i++) {
        uint32_t b = s->ent_begin[i], e = b + s->ent_lat[i];
        uint64_t wide = s->ent_wide[i];
        delta[b] += wide;
        delta[b + 1] -= WIDE_START;
        delta[e < stop ? e : stop] -= wide - WIDE_START;
    }
    uint64_t use = 0, over = 0;
    for (uint32_t t = 1; t < stop; t++) {
        use += delta[t];
        over |= use + 0x7a7e7e7b7b7bull; /* over_limits(), accumulated */
    }
    return !(over & 0x808080808080ull);
}

/* The ticks' start decisions, made only at the cycles where something can
 * start: at a result, when an entry is decoded, and the cycle after one where
 * the start limit held an entry back if the ticks have that cycle (while
 * decoding, or after a result; otherwise the reference's fast-forward skips to
 * the next result). At each, what finished has released its resources and its
 * dependents; the oldest ready entries start if they fit, at most 5. Returns the
 * cycle count. */
static uint32_t schedule(const struct gas_sim *s)
{
    const uint32_t n = s->nent, last_decode = s->ent_ready[n - 1] - 1;
    const uint32_t *ready = s->ent_ready, *dep = s->ent_dep;
    uint64_t need[GAS_ENT_MAX]; /* resources, widened, without the start */
    uint32_t alu = 0;           /* entries needing an ALU */
    for (uint32_t i = 0; i < n; i++) {
        need[i] = s->ent_wide[i] - WIDE_START;
        alu |= (uint32_t)((need[i] & 0xff) != 0) << i;
    }
    struct gas_calendar cal;
    cal.busy[0] = cal.busy[1] = 0;
    uint32_t pending = low_bits(n), completed = 0, latest = 0;
    uint32_t decoded = 0; /* how many entries are decoded by now (in order) */
    uint64_t held = 0;    /* resources held, widened */
    for (uint32_t now = ready[0];;) {
        uint32_t results = cal_take(&cal, now);
        if (results) {
            completed |= results;
            FOR_SLOTS(results, j) held -= need[j];
        }
        while (decoded < n && ready[decoded] <= now) decoded++;
        uint32_t can = pending & low_bits(decoded);
        if ((held & 0xff) == 4) can &= ~alu; /* no ALU left: only the rest can start */
        int started = 0;
        FOR_SLOTS(can, i)
        {
            if ((dep[i] & ~completed) || over_limits(held + need[i])) continue;
            held += need[i];
            uint32_t done = now + s->ent_lat[i];
            latest = done > latest ? done : latest;
            cal_add(&cal, done, i);
            pending &= ~bit(i);
            if (++started == START_PER_CYCLE) break;
        }
        if (!pending) break;
        if (started == START_PER_CYCLE && (now <= last_decode || results)) {
            now++;
            continue;
        }
        uint32_t next = cal_next(&cal, now);
        if (decoded < n && ready[decoded] < next) next = ready[decoded];
        now = next != UINT32_MAX ? next : now + 1;
    }
    return latest + 2;
}

/* The block's end: its cycle count. */
static void finish_block(struct gas_sim *s)
{
    s->finished = true;
    if (!over_limits(s->demand) || (s->latest < FITS_HORIZON && unconstrained_fits(s))) s->cycles = s->latest + 2;
    else s->cycles = schedule(s);
}

/* The model proper, for blocks that outgrow the ROB, and for tracing. */
static void feed_ticks(struct gas_sim *s, const struct dec_insn *in)
{
    struct shaped o;
    shape(s, in, &o);
    if (s->trace) feed_shaped(s, &o, true);
    else feed_shaped(s, &o, false);
}

static void replay(struct gas_sim *s, const struct dec_insn *in, size_t n)
{
    s->direct = true;
    reset_ticks(s);
    for (size_t k = 0; k < n && !s->finished; k++) feed_ticks(s, &in[k]);
}

/* Records the block's instructions, each entry with when it is decoded, its
 * latency, resources and producers, and its result time if no limit binds;
 * at the terminator, the block's cost. Done for every block: table lookups and
 * arithmetic, the only branches on rare cases. Returns how many instructions it
 * took: n without a terminator (nothing kept), or when the block outgrows the
 * ROB the ticks have run from its first instruction. */
static inline __attribute__((always_inline)) size_t record(struct gas_sim *s, const struct dec_insn *in, size_t n)
{
    /* The closed form below, worked out for the blocks of one and two
     * instructions (two fifths of them), where no limit can bind: at most two
     * entries, and a terminator needs no LOAD, STORE, MUL or DIV. */
    if (n - 1 < 2) { /* n is 1 or 2 */
        struct shaped x, t;
        shape(s, &in[n - 1], &t);
        if (n == 2) shape(s, &in[0], &x);
        if ((t.flags & (F_END | F_MOVE)) == F_END && !(n == 2 && (x.flags & F_END))) {
            uint32_t latest = 1 + t.latency; /* decoded at 0, started at 1 */
            if (n == 2) {
                if (!(x.flags & F_MOVE)) { /* a move: renamed away, one slot, no entry */
                    uint32_t x_done = 1 + x.latency, t_begin = x.decode + t.decode > DECODE_PER_CYCLE ? 2 : 1;
                    if ((t.src1 == x.dst || t.src2 == x.dst) && x_done > t_begin) t_begin = x_done;
                    latest = t_begin + t.latency > x_done ? t_begin + t.latency : x_done;
                }
            }
            s->cycles = latest + 2;
            s->finished = true;
            return n;
        }
    }
    /* times count from the block's first decode cycle, 0; a register no entry
     * has written yet is ready at 0 and has no producer (16-byte stores: a
     * memset here is a call or a counted string operation) */
    typedef uint64_t pair __attribute__((vector_size(16)));
    const pair zero = {0, 0};
    _Static_assert(sizeof s->reg % sizeof zero == 0, "reg in pairs");
#pragma GCC unroll 9
    for (size_t r = 0; r < sizeof s->reg / (sizeof zero); r++) memcpy(&s->reg[2 * r], &zero, sizeof zero);
    const struct op_cost *const costs = s->costs;
    const uint32_t load_latency = s->load_latency;
    /* decode: 8 x the cycle + the slots used in it (at most 4) */
    uint32_t nent = 0, slots = 0, latest = 0;
    uint64_t demand = 0, producer = 1ull << 32; /* the next entry's bit, as in the register table */
    for (const struct dec_insn *at = in, *end = in + n; at != end; at++) {
        const struct regs w = reg_word(at);
        const struct op_cost *c = &costs[w.at[0]];
        uint32_t decode = c->decode + (c->extra >> w.same & 1), fl = c->flags;
        slots = (slots & 7) + decode > DECODE_PER_CYCLE ? (slots | 7) + 1 + decode : slots + decode;
        uint32_t dst = role(&w, c->dst), src1 = role(&w, c->src1);
        if (fl & F_MOVE) { /* renamed away: the destination names the source's producer */
            s->reg[dst] = s->reg[src1];
            continue;
        }
        if (nent == GAS_ENT_MAX) { /* the ROB may fill: the ticks run */
            replay(s, in, n);
            return n;
        }
        uint32_t latency = c->latency + (load_latency & c->load);
        if (fl & F_BRANCH) latency = (uint32_t)branch_latency(s, at); /* a terminator: once a block */
        uint64_t r1 = s->reg[src1], r2 = s->reg[role(&w, c->src2)];
        uint32_t i = nent++, ready = (slots >> 3) + 1, a1 = (uint32_t)r1, a2 = (uint32_t)r2;
        uint32_t begin = ready > a1 ? ready : a1;
        begin = begin > a2 ? begin : a2;
        uint32_t done = begin + latency;
        latest = done > latest ? done : latest;
        demand += c->wide;
        s->ent_ready[i] = ready;
        s->ent_begin[i] = begin;
        s->ent_dep[i] = (uint32_t)((r1 | r2) >> 32);
        s->ent_lat[i] = (uint8_t)latency;
        s->ent_wide[i] = c->wide;
        s->reg[dst] = done | producer;
        producer <<= 1;
        if (fl & F_END) {
            s->nent = nent;
            s->latest = latest;
            s->demand = demand;
            finish_block(s);
            return (size_t)(at - in) + 1;
        }
    }
    return n;
}

void gas_sim_feed(struct gas_sim *s, const struct dec_insn *in)
{
    if (s->direct) {
        feed_ticks(s, in);
        return;
    }
    s->buf[s->nbuf++] = *in;
    if (s->costs[in->op].flags & F_END) {
        record(s, s->buf, s->nbuf);
    } else if (s->nbuf == GAS_PENDING_MAX) {
        replay(s, s->buf, s->nbuf); /* long: the ticks run, from the block's first instruction */
    }
}

void gas_sim_feed_all(struct gas_sim *s, const struct dec_insn *in, size_t n)
{
    if (s->direct || s->nbuf) { /* tracing, or part of the block came one by one */
        for (size_t k = 0; k < n && !s->finished; k++) gas_sim_feed(s, &in[k]);
        return;
    }
    /* the block from its start: no copy kept, `in` is at hand */
    if (n > GAS_ENT_MAX) { /* long: if it has more entries than the ROB holds, straight to the ticks */
        size_t moves = 0;
        for (size_t k = 0; k < n; k++) moves += in[k].op == OP_move_reg;
        if (n - moves > GAS_ENT_MAX) {
            replay(s, in, n);
            return;
        }
    }
    size_t k = record(s, in, n);
    if (s->finished || s->direct) {
        for (; k < n && !s->finished; k++) feed_ticks(s, &in[k]); /* (only past a terminator: never) */
        return;
    }
    /* no terminator yet (never from the block iterator): one by one from here */
    for (size_t j = 0; j < n; j++) gas_sim_feed(s, &in[j]);
}

uint32_t gas_full_block_cost(const struct cpvm_program *p, uint32_t start, int8_t load_latency,
                             gas_trace_fn *trace, void *trace_ctx, uint32_t *cycles)
{
    struct gas_sim s;
    gas_sim_init(&s, p, load_latency);
    if (trace) {
        s.trace = trace;
        s.trace_ctx = trace_ctx;
        reset(&s);
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
