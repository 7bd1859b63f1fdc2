/* The full cost model (gas.md §5): a cycle-level model of a small out-of-order
 * core, run from an empty state over one basic block. Its cost is the cycle
 * count less GAS_COST_SLACK, at least 1. Bit-exact with the reference's
 * simulator; pure and deterministic (the code bytes are read only for the
 * branch rule, by offset, so where the code sits in memory does not matter). */
#ifndef CPVM_GAS_FULL_H
#define CPVM_GAS_FULL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../decode/decode.h"

#define GAS_ROB_SIZE 32
#define GAS_ENT_MAX (GAS_ROB_SIZE - 1) /* entries scheduled without the ROB */
#define GAS_PENDING_MAX 64            /* instructions, moves included */

/* Load latency of each cache model (gas.md §5). */
enum gas_cache { GAS_CACHE_L1 = 4, GAS_CACHE_L2 = 25, GAS_CACHE_L3 = 37 };

/* What an instruction does in a cycle, as the reference's timeline letters. */
enum gas_event {
    GAS_EV_DECODE = 'D',
    GAS_EV_WAITING = '=',    /* waiting for its inputs or for resources */
    GAS_EV_EXECUTING = 'e',
    GAS_EV_EXECUTED = 'E',
    GAS_EV_RETIRE_WAIT = '-', /* done, an older entry has not retired yet */
    GAS_EV_RETIRED = 'R',
};

/* Called once per (cycle, instruction) event; `insn` counts from 0 in the block. */
typedef void gas_trace_fn(void *ctx, uint32_t cycle, uint32_t insn, enum gas_event ev);

/* Which ROB slots' (or schedule()'s entries') results come at each of 128 cycles. */
struct gas_calendar {
    uint64_t busy[2];
    uint32_t at[128];
};

struct op_cost;
struct gas_sim {
    /* the program, for the branch rule and the opcode bytes of trap/unlikely */
    const uint8_t *code;
    uint32_t code_len;
    int trap_byte, unlikely_byte;
    uint8_t load_latency;
    bool is64;
    gas_trace_fn *trace; /* set: one tick per cycle (no skipping), events reported */
    void *trace_ctx;

    uint32_t cycles, insns;
    bool finished;
    uint32_t decode_left; /* decode slots left this cycle */
    uint64_t held;        /* resources held, a byte each (full.c: WIDE) */
    uint32_t in_flight, head, tail;
    /* ROB entry states as bit masks over slots; a slot in none of them is free */
    uint32_t decoding, waiting, executing, executed;
    uint32_t blocked;  /* slots with a nonzero `deps` */
    uint32_t no_alu;   /* slots whose entry needs no ALU */
    uint32_t finished_now; /* executing slots whose result came this cycle; executed next */
    struct {
        /* the latency until it starts, then the cycle its result comes: the
         * reference counts cycles left down, and cycles left + cycle count stays
         * constant while an entry executes */
        uint32_t until[GAS_ROB_SIZE];
        uint64_t needs[GAS_ROB_SIZE];    /* resources held while executing, a byte each */
        uint32_t deps[GAS_ROB_SIZE];     /* slots whose results it still waits for */
        uint32_t users[GAS_ROB_SIZE];    /* slots waiting for its result */
        uint32_t writes[GAS_ROB_SIZE];   /* registers it is the latest producer of */
        uint32_t slot_insn[GAS_ROB_SIZE]; /* for trace events */
    } rob;
    struct gas_calendar cal;             /* executing slots by the cycle their results come */
    uint32_t producer[18];               /* register -> bit of the slot producing it, 0 if ready */
    /* the block so far, until it ends (scheduled without ticks) or outgrows the
     * ROB (then the ticks run, from its first instruction) */
    bool direct; /* the ticks run instead */
    const struct op_cost *costs; /* the table for the program's width */
    uint32_t nbuf, nent;
    uint32_t latest;        /* the latest result if no resource or start limit binds */
    uint64_t demand;        /* all entries' resources and starts, a byte each */
    /* register -> when it is ready if no limit binds (low half), and the bit of
     * the entry producing it (high half); cycles count from the block's first */
    uint64_t reg[18];
    /* per entry: when it is decoded + 1, when it starts if no limit binds, its
     * producers, latency and resources (widened, one start) */
    uint32_t ent_ready[GAS_ENT_MAX], ent_begin[GAS_ENT_MAX], ent_dep[GAS_ENT_MAX];
    uint8_t ent_lat[GAS_ENT_MAX];
    uint64_t ent_wide[GAS_ENT_MAX];
    /* the instructions fed one by one so far, recorded at the terminator */
    struct dec_insn buf[GAS_PENDING_MAX];
};

/* An empty model for blocks of `p` with the given load latency (enum gas_cache). */
void gas_sim_init(struct gas_sim *s, const struct cpvm_program *p, int8_t load_latency);
/* Empties the ticking model (gas_sim_restart's part for tracing). */
void gas_sim_start_ticks(struct gas_sim *s);
/* Empties the model for the next block (same program and latency). */
static inline void gas_sim_restart(struct gas_sim *s)
{
    s->finished = false;
    s->cycles = s->in_flight = 0;
    s->nbuf = s->nent = 0;
    s->direct = s->trace != NULL;
    if (s->direct) gas_sim_start_ticks(s); /* tracing: the ticks run from the start */
}
/* Feeds the next instruction of the block (OP_invalid = the implicit trap). */
void gas_sim_feed(struct gas_sim *s, const struct dec_insn *in);
/* Feeds the next `n` instructions (the same as one by one, faster). */
void gas_sim_feed_all(struct gas_sim *s, const struct dec_insn *in, size_t n);
/* Whether every instruction has its costs (a self-check for the tests). */
bool gas_full_table_complete(void);
/* After the block's terminator: its cost. */
#define GAS_COST_SLACK 3
static inline uint32_t gas_sim_cost(const struct gas_sim *s)
{
    return s->cycles > GAS_COST_SLACK + 1 ? s->cycles - GAS_COST_SLACK : 1;
}
static inline bool gas_sim_done(const struct gas_sim *s) { return s->finished && s->in_flight == 0; }

/* The cost of the basic block starting at `start` (the block iterator's view),
 * optionally traced; `cycles` (may be NULL) gets the total before the slack. */
uint32_t gas_full_block_cost(const struct cpvm_program *p, uint32_t start, int8_t load_latency,
                             gas_trace_fn *trace, void *trace_ctx, uint32_t *cycles);

#endif
