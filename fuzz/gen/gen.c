/* The program generator (gen.h has the input framing). Two passes: records
 * become a list of instructions whose targets are symbolic (block k, the
 * middle of instruction k, the end of the code, an absolute pc); layout then
 * fixes every pc, re-encoding until the branch offsets' lengths settle. */
#include "gen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "decode/decode.h"
#include "isa/isa.h"
#include "program/writer.h"

/* ---- constants ----------------------------------------------------------- */

#define DEFAULT_MAX_INSNS 1024u
#define SEED_MAX_BYTES 512u

/* Registers by role. The prologue points the base registers into the memory
 * map; generated destinations mostly avoid them so they stay useful. */
enum { R_RA = 0, R_SP = 1, R_T0 = 2, R_T1 = 3, R_T2 = 4, R_S0 = 5, R_S1 = 6, R_A0 = 7, R_A1 = 8, R_A2 = 9,
       R_A3 = 10, R_A4 = 11, R_A5 = 12 };
static const uint8_t general_regs[7] = {R_T0, R_T1, R_T2, R_A0, R_A1, R_A2, R_A3};
static const uint8_t special_regs[6] = {R_RA, R_SP, R_S1, R_A4, R_S0, R_A5};
#define LOOP_REG R_A4

enum region { RG_RO, RG_RW, RG_STACK, RG_HEAP, RG_AUX, RG_COUNT, RG_WEIRD = RG_COUNT };

/* Base register k points into region base_region[k] (at base_value()). */
static const uint8_t base_regs[4] = {R_S0, R_S1, R_SP, R_A5};
static const uint8_t base_region[4] = {RG_RW, RG_RO, RG_STACK, RG_HEAP};

/* Region nibble of an absolute address pick: mostly rw and stack. */
static const uint8_t abs_region[16] = {RG_RO,    RG_RO,    RG_RO,    RG_RW,    RG_RW, RG_RW, RG_RW,    RG_RW,
                                       RG_STACK, RG_STACK, RG_STACK, RG_STACK, RG_HEAP, RG_AUX, RG_WEIRD, RG_RW};

static const uint32_t weird_addrs[16] = {0,          1,          0x3fff,     0x4000,     0x8000,     0xffff,
                                         0x10000,    0x7fffffff, 0x80000000, 0xfffefff8, 0xfffeffff, 0xffff0000,
                                         0xfffffff8, 0xfffffffc, 0xfffffffe, 0xffffffff};

/* Interesting 32-bit immediates: widths' limits, shift amounts, page and
 * region boundaries. */
static const int32_t imm_table[64] = {
    0,          1,          -1,         2,          -2,         3,          4,          7,
    8,          15,         16,         31,         32,         33,         63,         64,
    65,         127,        128,        -128,       -129,       255,        256,        0x7fff,
    0x8000,     -0x8000,    -0x8001,    0xffff,     0x10000,    0x7fffff,   0x800000,   -0x800000,
    0xffffff,   0x1000000,  0x7fffffff, INT32_MIN,  INT32_MIN + 1, 0x7ffffffe, -65536,  -65537,
    0x4000,     0x3fff,     0x1000,     0xfff,      0x1001,     0x10001,    0x55555555, (int32_t)0xaaaaaaaa,
    0x12345678, -4096,      5,          6,          9,          24,         48,         100,
    1000,       -1000,      0x20000,    0x30000,    -0x10000,   0x01010101, (int32_t)0x80808080, -32,
};

static const uint64_t imm64_table[32] = {
    0,
    1,
    UINT64_MAX,
    0x8000000000000000ull,
    0x7fffffffffffffffull,
    0x80000000ull,
    0xffffffffull,
    0x100000000ull,
    0x7fffffffull,
    0xffffffff80000000ull,
    0xffff0000ull,
    0xffffffffffff0000ull,
    0x8000000000000001ull,
    0x0123456789abcdefull,
    0xfedcba9876543210ull,
    0x00000000ffffffffull << 32,
    0x100000001ull,
    0xffffffff00000001ull,
    0x5555555555555555ull,
    0xaaaaaaaaaaaaaaaaull,
    0x8000000080000000ull,
    0x000000007fffffffull << 1,
    0xfffffffffffff000ull,
    0x10000ull,
    0xffffffffffffff80ull,
    0x80ull,
    0x3full,
    0x40ull,
    0x41ull,
    0x1f,
    0x20,
    0x21,
};

static const uint32_t ro_sizes[16] = {0x100, 0,      1,      0x1000, 0xfff,  0x1001, 0x2000, 0x10000,
                                      0x10001, 0x3000, 7,     0x4000, 0x20000, 0x800, 0x1800, 0x8000};
static const uint32_t rw_sizes[16] = {0x1000, 0,      1,      0x2000, 0xfff,   0x1001, 0x10000, 0x10001,
                                      0x3000, 0x100,  0x4000, 0x20000, 0x800,  0x1801, 0x8000,  0xffff};
static const uint32_t stack_sizes[16] = {0x1000, 0,     0x2000, 0x4000, 0x10000, 1,     0xfff,   0x1001,
                                         0x8000, 0x3000, 0x100, 0x20000, 0x800,  0x1801, 0x40000, 0x10001};
static const uint32_t data_lens[4] = {0, 16, 100, 1000};
static const int64_t gas_classes[8] = {10000, 2000, 1000, 50, 7, 1, 0, 100000};
static const uint64_t step_classes[8] = {0, 0, 0, 0, 1, 3, 17, 1000};
static const uint32_t page_sizes[4] = {0x1000, 0x1000, 0x4000, 0x10000};

/* memset lengths; the last five are relative to the region's size. */
static const uint32_t memset_counts[11] = {0, 1, 2, 3, 7, 8, 16, 100, 0xff, 0x100, 0x200};
static const int32_t sbrk_sizes[16] = {0,          1,      0x10,    0xfff,   0x1000,  0x1001,     0x2000,    0x10000,
                                       0x10001,    0x100000, -1,    0x7fffffff, INT32_MIN, -65536, 0x1000000, 7};
static const int32_t hostcalls[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 100, 0xff, 0x100, 0xffff, 0x7fffffff, -128, -1};
static const uint32_t abs_targets[4] = {0, 1, 0x7fffffff, 0xffffffffu};
static const uint32_t dyn_specials[16] = {VM_ADDR_RETURN_TO_HOST, 0, 1, 3, 0xfffffffe, 0xffff0001, 0x80000000u,
                                          0xfffefffe, 0xffff0002, 0xfffffffc, 0x7ffffffe, 5, 0x10000, 0x1fffe,
                                          VM_ADDR_RETURN_TO_HOST, 0x200};

/* Edge values for the two source operands of one instruction (ID_EDGE_PAIR):
 * each width's extremes, -1/0/1, shift amounts at and past 32 and 64, and
 * pairs differing only in bit 31 (0x7fffffff/0xffffffff, 0/0x80000000), bit 32
 * (0/0x100000000) or bit 63 (0/0x8000000000000000, INT64_MAX/-1). A register
 * gets gen_edge_values[i]; an immediate operand gen_edge_imms[i]. */
const uint64_t gen_edge_values[GEN_EDGE_COUNT] = {
    0, 1, UINT64_MAX, 0x80, 0xff, 0x8000, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull,
    0x7fffffffffffffffull, 0x8000000000000000ull, 31, 32, 63, 64};
const int32_t gen_edge_imms[GEN_EDGE_COUNT] = {0,  1,  -1, 0x80, 0xff, 0x8000, 0xffff, 0x7fffffff, INT32_MIN,
                                               -2, 0x7f, -0x80, 31, 32, 63, 64};

/* Where the generator reports what it made (gen_stats_attach), or NULL. */
static struct gen_stats *stats_sink;
void gen_stats_attach(struct gen_stats *s) { stats_sink = s; }

/* Idioms: selector values from OP_COUNT upwards, by weight. */
enum idiom {
    ID_SET_BASE, ID_CALL, ID_RET, ID_DYN_JUMP, ID_MEMSET, ID_SBRK, ID_ECALLI, ID_LOOP,
    ID_LOAD_WIDE, ID_STORE_LOAD, ID_SPLIT, ID_UNKNOWN, ID_SET_REG, ID_EDGE_PAIR, ID_ODD_ENC, ID_COUNT
};
static const uint8_t idiom_weight[ID_COUNT] = {
    [ID_SET_BASE] = 16, [ID_CALL] = 9,      [ID_RET] = 7,        [ID_DYN_JUMP] = 10, [ID_MEMSET] = 8,
    [ID_SBRK] = 7,      [ID_ECALLI] = 8,    [ID_LOOP] = 8,       [ID_LOAD_WIDE] = 9, [ID_STORE_LOAD] = 12,
    [ID_SPLIT] = 8,     [ID_UNKNOWN] = 1,   [ID_SET_REG] = 3,    [ID_EDGE_PAIR] = 6, [ID_ODD_ENC] = 3,
};
/* ID_EDGE_PAIR and ID_ODD_ENC took the top of ID_SET_REG's range, so every
 * other selector (and the inputs committed before them) keeps its meaning. */
_Static_assert(OP_COUNT + 16 + 9 + 7 + 10 + 8 + 7 + 8 + 8 + 9 + 12 + 8 + 1 + 3 + 6 + 3 == 256,
               "every selector byte maps to an instruction or an idiom");

/* ---- state ----------------------------------------------------------------- */

enum tgt_kind { T_NONE, T_BLOCK, T_MID, T_END, T_ABS };

struct tgt {
    uint8_t kind;
    int64_t v; /* T_BLOCK: block number (mod count); T_MID: insn index (mod count); T_ABS: pc */
};

struct ginsn {
    struct dec_insn in; /* in.op == OP_invalid: raw bytes (an unknown opcode) */
    struct tgt t;
    uint16_t odd;       /* ID_ODD_ENC: variant byte | length byte << 8 (0: canonical) */
    uint8_t raw[4], raw_len;
    uint8_t len;
    uint32_t pc;
};

struct gen {
    const uint8_t *data;
    size_t len, pos;
    cpvm_isa isa;
    bool is64;
    uint8_t decode_map[256];
    uint8_t ops[OP_COUNT];
    unsigned n_ops;
    uint8_t pair_ops[OP_COUNT]; /* instructions with two source operands (ID_EDGE_PAIR) */
    unsigned n_pair_ops;
    struct cpvm_memory_map map;
    uint32_t rs[RG_COUNT], re[RG_COUNT];

    struct ginsn *v;
    size_t n, cap;
    uint32_t *block_first; /* insn index of each block's first instruction */
    size_t nblocks, bcap;
    bool after_term;
    struct tgt *jt;
    size_t njt, jtcap;

    bool oom, has_memset;
};

static uint8_t take(struct gen *g) { return g->pos < g->len ? g->data[g->pos++] : 0; }
static bool more(const struct gen *g) { return g->pos < g->len; }

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need) c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np) return false;
    *p = np;
    *cap = c;
    return true;
}

static int64_t cur_block(const struct gen *g) { return g->after_term ? (int64_t)g->nblocks : (int64_t)g->nblocks - 1; }

static void emit(struct gen *g, const struct ginsn *x)
{
    if (g->oom) return;
    if (g->after_term) {
        if (!grow((void **)&g->block_first, &g->bcap, g->nblocks + 1, sizeof *g->block_first)) {
            g->oom = true;
            return;
        }
        g->block_first[g->nblocks++] = (uint32_t)g->n;
    }
    if (!grow((void **)&g->v, &g->cap, g->n + 1, sizeof *g->v)) {
        g->oom = true;
        return;
    }
    g->v[g->n++] = *x;
    if (x->in.op == OP_memset) g->has_memset = true;
    g->after_term = isa_is_terminator((enum op)x->in.op);
}

static uint32_t add_jt(struct gen *g, struct tgt t)
{
    if (!grow((void **)&g->jt, &g->jtcap, g->njt + 1, sizeof *g->jt)) {
        g->oom = true;
        return 0;
    }
    g->jt[g->njt] = t;
    return (uint32_t)g->njt++;
}

static uint32_t jt_address(uint32_t index) { return 2 * (index + 1); }

/* ---- operand pickers (each has an inverse in gen_input_from_program) --------- */

static uint8_t dest_reg(const struct gen *g, unsigned nib)
{
    nib &= 15;
    if (nib < 14) return general_regs[nib % 7];
    if (nib == 14) return (g->n & 1) ? R_S0 : R_A5;
    return special_regs[g->n % 6];
}

static uint8_t src_reg(unsigned nib)
{
    nib &= 15;
    return nib < 13 ? (uint8_t)nib : general_regs[nib - 13];
}

static uint32_t base_value(const struct gen *g, unsigned k)
{
    return base_region[k] == RG_STACK ? g->re[RG_STACK] : g->rs[base_region[k]];
}

/* An address in region `r` for an access of width `w`. Position byte `ab`:
 * below 0xf8 it lies inside the region (near its ends, its middle or a page
 * boundary, some straddling two pages of the region); from 0xf8 on (1 in 32)
 * it crosses or misses the region's boundaries. */
static uint32_t pos_addr(const struct gen *g, unsigned r, uint8_t ab, unsigned w)
{
    unsigned pos = ab & 15, k = ab >> 4;
    if (r == RG_WEIRD) return weird_addrs[pos];
    uint32_t s = g->rs[r], e = g->re[r], size = e - s, page = g->map.page_size;
    if (k == 15 && pos >= 8) {
        switch (pos) {
        case 8: return e - w + 1; /* straddles the end (w > 1) or just past it */
        case 9: return e;
        case 10: return s - 1;
        case 11: return s - w; /* ends right before the region */
        case 12: return e + page - w;
        case 13: return s - page;
        case 14: return e + VM_PAGE_MAX;
        default: return s + size / 2 - VM_PAGE_MAX;
        }
    }
    int64_t off;
    switch (pos) {
    case 0: off = 0; break;
    case 1: off = 1; break;
    case 2: off = 8 * k; break;
    case 3: off = 0x100 * k; break;
    case 4: off = page - w; break;
    case 5: off = page - 1; break; /* straddles the first page boundary when w > 1 */
    case 6: off = page; break;
    case 7: off = (int64_t)size - w; break;
    case 8: off = (int64_t)size - w - 8 * k; break;
    case 9: off = (int64_t)size - 8; break;
    case 10: off = (size / 2) & ~7u; break;
    case 11: off = (int64_t)page * (k + 1) - 1; break;
    case 12: off = (int64_t)page * k; break;
    case 13: off = (int64_t)size - page - 1; break;
    case 14: off = 16 * k; break;
    default: off = (int64_t)(((uint64_t)size * k / 16) & ~(uint64_t)(w - 1)); break;
    }
    if (size < w) return s + (uint32_t)off; /* nothing fits: out of bounds anyway */
    int64_t span = (int64_t)size - w + 1;
    return s + (uint32_t)(((off % span) + span) % span);
}

/* Region nibble -> region of an absolute pick; stores avoid the read-only
 * regions except for nibble 0. */
static unsigned abs_pick_region(unsigned region_nib, bool store)
{
    unsigned r = abs_region[region_nib & 15];
    if (store && (r == RG_RO || r == RG_AUX) && (region_nib & 15) != 0) r = RG_RW;
    return r;
}

static uint32_t addr_abs(const struct gen *g, unsigned region_nib, uint8_t ab, unsigned w, bool store)
{
    return pos_addr(g, abs_pick_region(region_nib, store), ab, w);
}

static int32_t imm(struct gen *g)
{
    uint8_t b = take(g);
    if (b < 0x40) return imm_table[b];
    if (b < 0x80) return (int32_t)b - 0x50; /* -16..47 */
    if (b < 0xc0) {
        uint8_t ab = take(g);
        return (int32_t)addr_abs(g, b & 15, ab, 1u << ((b >> 4) & 3), false);
    }
    unsigned L = 1 + (b & 3);
    uint32_t v = 0;
    for (unsigned i = 0; i < L; i++) v |= (uint32_t)take(g) << (8 * i);
    unsigned shift = 32 - 8 * L;
    return (int32_t)(v << shift) >> shift;
}

static uint64_t imm64(struct gen *g)
{
    uint8_t b = take(g);
    if (b < 0x20) return imm64_table[b];
    if (b < 0x60) return (uint64_t)(int64_t)imm_table[b - 0x20];
    if (b < 0xa0) return (uint32_t)imm_table[b - 0x60];
    if (b < 0xc0) {
        uint8_t ab = take(g);
        return addr_abs(g, b & 15, ab, 1u << ((b >> 4) & 1), false);
    }
    unsigned L = 1 + (b & 7);
    uint64_t v = 0;
    for (unsigned i = 0; i < L; i++) v |= (uint64_t)take(g) << (8 * i);
    unsigned shift = 64 - 8 * L;
    return shift ? (uint64_t)((int64_t)(v << shift) >> shift) : v;
}

static struct tgt target(struct gen *g)
{
    uint8_t b = take(g);
    if (b < 0xf0) {
        int64_t delta = (int64_t)(b & 15) - 7;
        if ((b >> 4) >= 10) delta *= 5;
        return (struct tgt){T_BLOCK, cur_block(g) + delta};
    }
    /* 1 in 16: an invalid target */
    if (b < 0xf8) return (struct tgt){T_MID, (int64_t)g->n + (int64_t)(b & 7) - 4};
    if (b < 0xfc) return (struct tgt){T_END, 0};
    return (struct tgt){T_ABS, abs_targets[b & 3]};
}

/* A dynamic jump address: mostly a jump-table entry for a nearby block (a new
 * one, or one already there), 1 in 16 a special address (return-to-host, 0,
 * odd, out of range). */
static uint32_t dyn_addr(struct gen *g)
{
    uint8_t b = take(g);
    if (b >= 0xf0) return dyn_specials[b & 15];
    if (g->njt == 0 || b >= 0x80) return jt_address(add_jt(g, (struct tgt){T_BLOCK, cur_block(g) + (b & 15) - 7}));
    return jt_address((uint32_t)(b % g->njt));
}

/* Base register and offset of an indirect access of width `w`: mostly one of
 * the base registers with an offset into its region (1 store in 32 uses the
 * read-only one), 1 access in 32 a general register with a small offset. */
static void mem_base(struct gen *g, unsigned nib, unsigned w, bool store, uint8_t *base, int32_t *off)
{
    uint8_t ab = take(g);
    nib &= 15;
    if (nib < 15 || !(ab & 0x80)) {
        unsigned k = nib & 3;
        if (store && base_region[k] == RG_RO && !(nib == 9 && (ab & 1))) k = 0;
        *base = base_regs[k];
        *off = (int32_t)(pos_addr(g, base_region[k], ab, w) - base_value(g, k));
    } else {
        *base = general_regs[ab % 3];
        *off = (int8_t)(ab << 1);
    }
}

/* ---- records -------------------------------------------------------------- */

static struct ginsn mk(enum op op)
{
    struct ginsn x;
    memset(&x, 0, sizeof x);
    x.in.op = (uint8_t)op;
    return x;
}

static void emit_load_imm(struct gen *g, uint8_t reg, int32_t v)
{
    struct ginsn x = mk(OP_load_imm);
    x.in.a = reg;
    x.in.i1 = v;
    emit(g, &x);
}

static void gen_op(struct gen *g, enum op op)
{
    struct ginsn x = mk(op);
    unsigned fl = isa_flags(op), w = isa_access_width(op);
    uint8_t rb;
    switch ((enum isa_class)isa_rows[op].cls) {
    case CLS_N:
        break;
    case CLS_I:
        x.in.i1 = imm(g);
        break;
    case CLS_R_I:
        rb = take(g);
        if (op == OP_jump_indirect) {
            x.in.a = src_reg(rb);
            x.in.i1 = (int32_t)dyn_addr(g);
        } else if (fl & (LOAD | STORE)) {
            x.in.a = (fl & LOAD) ? dest_reg(g, rb) : src_reg(rb);
            x.in.i1 = (int32_t)addr_abs(g, rb >> 4, take(g), w, fl & STORE);
        } else {
            x.in.a = dest_reg(g, rb);
            x.in.i1 = imm(g);
        }
        break;
    case CLS_R_I_O:
        rb = take(g);
        x.in.a = op == OP_load_imm_and_jump ? dest_reg(g, rb) : src_reg(rb);
        x.in.i1 = imm(g);
        x.t = target(g);
        break;
    case CLS_R_I_I:
        rb = take(g);
        mem_base(g, rb, w, true, &x.in.a, &x.in.i1);
        x.in.i2 = imm(g);
        break;
    case CLS_RR_I:
        rb = take(g);
        if (fl & (LOAD | STORE)) {
            x.in.a = (fl & LOAD) ? dest_reg(g, rb) : src_reg(rb);
            mem_base(g, rb >> 4, w, fl & STORE, &x.in.b, &x.in.i1);
        } else {
            x.in.a = dest_reg(g, rb);
            x.in.b = src_reg(rb >> 4);
            x.in.i1 = imm(g);
        }
        break;
    case CLS_RR_O:
        rb = take(g);
        x.in.a = src_reg(rb);
        x.in.b = src_reg(rb >> 4);
        x.t = target(g);
        break;
    case CLS_RRR:
        rb = take(g);
        x.in.a = src_reg(rb);
        x.in.b = src_reg(rb >> 4);
        x.in.d = dest_reg(g, take(g));
        break;
    case CLS_O:
        x.t = target(g);
        break;
    case CLS_I_I:
        rb = take(g);
        x.in.i1 = (int32_t)addr_abs(g, rb >> 4, take(g), w, true);
        x.in.i2 = imm(g);
        break;
    case CLS_RR:
        rb = take(g);
        x.in.a = dest_reg(g, rb);
        x.in.b = src_reg(rb >> 4);
        break;
    case CLS_RR_I_I:
        rb = take(g);
        x.in.a = dest_reg(g, rb);
        x.in.b = src_reg(rb >> 4);
        x.in.i1 = imm(g);
        x.in.i2 = (int32_t)dyn_addr(g);
        break;
    case CLS_R_I64:
        rb = take(g);
        x.in.a = dest_reg(g, rb);
        x.in.imm64 = imm64(g);
        break;
    case CLS_COUNT:
        abort();
    }
    emit(g, &x);
}

static enum op pick(const struct gen *g, enum op want, enum op fallback)
{
    return isa_has(g->isa, want) ? want : fallback;
}

/* A register holds `v` (load_imm when the sign-extended i32 gives it, else
 * load_imm64; 32-bit ISAs keep the low half). */
static void set_value(struct gen *g, uint8_t reg, uint64_t v)
{
    if (!g->is64 || (uint64_t)(int64_t)(int32_t)v == v) {
        emit_load_imm(g, reg, (int32_t)v);
        return;
    }
    struct ginsn x = mk(OP_load_imm64);
    x.in.a = reg;
    x.in.imm64 = v;
    emit(g, &x);
}

/* ID_EDGE_PAIR: record bytes op, pair (low nibble: the first source's edge
 * value, high nibble: the second's). Loads the edge values into two general
 * registers and runs one two-source instruction on them (a branch goes to the
 * next block); with rb bit 7 the result overwrites the first source, so the
 * next pair record's instruction may see it as a neighbour's output. */
static bool edge_pair(struct gen *g, uint8_t rb)
{
    if (g->n_pair_ops == 0) return false;
    enum op op = (enum op)g->pair_ops[take(g) % g->n_pair_ops];
    uint8_t pb = take(g);
    unsigned ea = pb & 15, eb = pb >> 4;
    uint8_t r1 = general_regs[rb % 7], r2 = general_regs[(rb % 7 + 1 + (rb >> 3) % 6) % 7];
    uint8_t d = (rb & 0x80) ? r1 : dest_reg(g, rb >> 4);
    set_value(g, r1, gen_edge_values[ea]);
    struct ginsn x = mk(op);
    switch ((enum isa_class)isa_rows[op].cls) {
    case CLS_RRR:
        set_value(g, r2, gen_edge_values[eb]);
        x.in.a = r1;
        x.in.b = r2;
        x.in.d = d;
        break;
    case CLS_RR_I:
        x.in.a = d;
        x.in.b = r1;
        x.in.i1 = gen_edge_imms[eb];
        break;
    case CLS_RR_O:
        set_value(g, r2, gen_edge_values[eb]);
        x.in.a = r1;
        x.in.b = r2;
        x.t = (struct tgt){T_BLOCK, cur_block(g) + 1};
        break;
    default: /* CLS_R_I_O: a branch against an immediate */
        x.in.a = r1;
        x.in.i1 = gen_edge_imms[eb];
        x.t = (struct tgt){T_BLOCK, cur_block(g) + 1};
        break;
    }
    emit(g, &x);
    if (stats_sink && !g->oom) stats_sink->pairs[op][ea][eb]++;
    return true;
}

/* ID_ODD_ENC: a valid but non-canonical encoding of the next record's
 * instruction (record bytes: length byte, then an instruction selector and its
 * operands as usual). Variant byte rb:
 *   bits 0-1, 2-3, 4-5  register field a, b, d written as 13, 14 or 15 (the
 *                       decoder reads them as 12, so the field holds a5)
 *   bit 6               the bits the decoder ignores set (high nibbles, bit 7
 *                       of a length nibble)
 *   bit 7               a first-immediate length of 4 written as 5-7
 * Length byte (instructions without a branch target only): bits 0-1 bytes
 * added to each immediate (sign-extended, up to 4), bits 2-6 padding bytes
 * after the last field (the last immediate is then 4 bytes long, so the
 * padding is skipped, not read), bit 7 the pattern of the padding. */
static void odd_record(struct gen *g, uint8_t rb)
{
    uint8_t lb = take(g), s = take(g);
    enum op op = s < OP_COUNT && isa_has(g->isa, (enum op)s) ? (enum op)s : (enum op)g->ops[s % g->n_ops];
    size_t before = g->n;
    gen_op(g, op);
    if (g->oom || g->n == before) return;
    struct ginsn *x = &g->v[g->n - 1];
    static const uint8_t has_a[CLS_COUNT] = {[CLS_R_I] = 1, [CLS_R_I_O] = 1, [CLS_R_I_I] = 1, [CLS_RR_I] = 1,
                                             [CLS_RR_O] = 1, [CLS_RRR] = 1, [CLS_RR] = 1, [CLS_RR_I_I] = 1,
                                             [CLS_R_I64] = 1};
    unsigned cls = isa_rows[op].cls;
    bool has_b = cls == CLS_RR_I || cls == CLS_RR_O || cls == CLS_RRR || cls == CLS_RR || cls == CLS_RR_I_I;
    if (!has_a[cls]) rb &= (uint8_t)~0x3f;
    if (!has_b) rb &= (uint8_t)~0x0c;
    if (cls != CLS_RRR) rb &= (uint8_t)~0x30;
    if (rb & 3) x->in.a = 12;
    if (rb & 0x0c) x->in.b = 12;
    if (rb & 0x30) x->in.d = 12;
    x->odd = (uint16_t)(rb | (x->t.kind == T_NONE ? lb : 0) << 8);
    if (!x->odd) x->odd = 0x40; /* at least the ignored bits */
}

static void gen_idiom(struct gen *g, enum idiom id)
{
    struct ginsn x;
    uint8_t rb = take(g);
    switch (id) {
    case ID_SET_BASE: {
        unsigned k = rb & 3;
        emit_load_imm(g, base_regs[k], (int32_t)pos_addr(g, (rb & 4) ? abs_region[rb >> 4] : base_region[k], take(g), 1));
        return;
    }
    case ID_CALL: {
        x = mk(OP_load_imm_and_jump);
        x.in.a = (rb & 0x80) ? dest_reg(g, rb) : R_RA;
        x.t = target(g);
        /* The return site is the block after the call. */
        x.in.i1 = (int32_t)jt_address(add_jt(g, (struct tgt){T_BLOCK, cur_block(g) + 1}));
        emit(g, &x);
        return;
    }
    case ID_RET:
        x = mk(OP_jump_indirect);
        x.in.a = (rb & 0xf0) == 0xf0 ? src_reg(rb) : R_RA;
        emit(g, &x);
        return;
    case ID_DYN_JUMP: {
        uint8_t reg = general_regs[rb % 7];
        uint32_t addr = dyn_addr(g);
        switch ((rb >> 4) & 3) {
        case 0:
            emit_load_imm(g, reg, (int32_t)addr);
            x = mk(OP_jump_indirect);
            x.in.a = reg;
            break;
        case 1:
            emit_load_imm(g, reg, (int32_t)(addr - 8));
            x = mk(OP_jump_indirect);
            x.in.a = reg;
            x.in.i1 = 8;
            break;
        case 2: /* an indirect call: ra = return site, jump [reg] */
            emit_load_imm(g, reg, (int32_t)addr);
            x = mk(OP_load_imm_and_jump_indirect);
            x.in.a = R_RA;
            x.in.b = reg;
            x.in.i1 = (int32_t)jt_address(add_jt(g, (struct tgt){T_BLOCK, cur_block(g) + 1}));
            break;
        default: /* same register: the base is read before the write */
            emit_load_imm(g, reg, (int32_t)addr);
            x = mk(OP_load_imm_and_jump_indirect);
            x.in.a = reg;
            x.in.b = reg;
            x.in.i1 = imm(g);
            break;
        }
        emit(g, &x);
        return;
    }
    case ID_MEMSET: {
        if (!isa_has(g->isa, OP_memset)) break;
        unsigned k = rb & 15, r = abs_pick_region(rb >> 4, true);
        uint32_t size = r == RG_WEIRD ? 0x1000 : g->re[r] - g->rs[r];
        uint32_t count = k < 11 ? memset_counts[k] : k == 11 ? size / 2 : k == 12 ? size - 1 : k == 13 ? size
                         : k == 14 ? size + 1 : 0x80000000u;
        /* The whole range fits the region unless the position or length say otherwise. */
        emit_load_imm(g, R_A0, (int32_t)pos_addr(g, r, take(g), count));
        emit_load_imm(g, R_A1, imm(g));
        emit_load_imm(g, R_A2, (int32_t)count);
        x = mk(OP_memset);
        emit(g, &x);
        return;
    }
    case ID_SBRK: {
        if (!isa_has(g->isa, OP_sbrk)) break;
        uint8_t size_reg = general_regs[(rb >> 5) % 7];
        emit_load_imm(g, size_reg, sbrk_sizes[rb & 15]);
        x = mk(OP_sbrk);
        x.in.a = (rb & 0x10) ? R_A5 : general_regs[(rb >> 5) % 7];
        x.in.b = size_reg;
        emit(g, &x);
        return;
    }
    case ID_ECALLI:
        x = mk(OP_ecalli);
        x.in.i1 = hostcalls[rb & 15];
        emit(g, &x);
        return;
    case ID_LOOP:
        /* a4 only ever grows, so every loop ends. */
        x = mk(g->is64 ? OP_add_imm_64 : OP_add_imm_32);
        x.in.a = x.in.b = LOOP_REG;
        x.in.i1 = 1;
        emit(g, &x);
        x = mk(OP_branch_less_unsigned_imm);
        x.in.a = LOOP_REG;
        x.in.i1 = 2 + (rb & 7) * (1 + (rb >> 7));
        x.t = (struct tgt){T_BLOCK, cur_block(g)};
        emit(g, &x);
        return;
    case ID_LOAD_WIDE:
        if (g->is64) {
            x = mk(OP_load_imm64);
            x.in.a = dest_reg(g, rb);
            x.in.imm64 = imm64(g);
            emit(g, &x);
        } else {
            emit_load_imm(g, dest_reg(g, rb), imm(g));
        }
        return;
    case ID_STORE_LOAD: {
        static const enum op stores[4] = {OP_store_indirect_u8, OP_store_indirect_u16, OP_store_indirect_u32,
                                          OP_store_indirect_u64};
        static const enum op loads[8] = {OP_load_indirect_u8,  OP_load_indirect_i8,  OP_load_indirect_u16,
                                         OP_load_indirect_i16, OP_load_indirect_u32, OP_load_indirect_i32,
                                         OP_load_indirect_u64, OP_load_indirect_u64};
        unsigned wi = (rb >> 6) & 3;
        if (!g->is64 && wi == 3) wi = 2;
        uint8_t base;
        int32_t off;
        mem_base(g, rb, 1u << wi, true, &base, &off);
        x = mk(stores[wi]);
        x.in.a = general_regs[(rb >> 4) & 3];
        x.in.b = base;
        x.in.i1 = off;
        emit(g, &x);
        enum op ld = loads[wi * 2 + ((rb >> 5) & 1)];
        x = mk(pick(g, ld, OP_load_indirect_i32));
        x.in.a = dest_reg(g, rb >> 2);
        x.in.b = base;
        x.in.i1 = off;
        emit(g, &x);
        return;
    }
    case ID_SPLIT:
        if (rb & 1) {
            x = mk(OP_fallthrough);
        } else {
            x = mk(OP_jump);
            x.t = (struct tgt){T_BLOCK, cur_block(g) + 1};
        }
        emit(g, &x);
        return;
    case ID_UNKNOWN: {
        if (g->isa == CPVM_ISA_JAM_V1) break; /* JamV1 rejects unknown opcodes at load time */
        unsigned b = rb;
        while (g->decode_map[b & 255] != OP_invalid) b++;
        x = mk(OP_invalid);
        x.raw[0] = (uint8_t)b;
        x.raw_len = (uint8_t)(1 + ((rb >> 6) & 3));
        for (unsigned i = 1; i < x.raw_len; i++) x.raw[i] = take(g);
        emit(g, &x);
        return;
    }
    case ID_SET_REG:
        emit_load_imm(g, dest_reg(g, rb), imm(g));
        return;
    case ID_EDGE_PAIR:
        if (edge_pair(g, rb)) return;
        break;
    case ID_ODD_ENC:
        odd_record(g, rb);
        return;
    case ID_COUNT:
        abort();
    }
    /* The ISA lacks what the idiom needs: load an interesting value instead. */
    emit_load_imm(g, dest_reg(g, rb), imm(g));
}

static uint8_t idiom_selector(enum idiom id)
{
    unsigned s = OP_COUNT;
    for (unsigned k = 0; k < (unsigned)id; k++) s += idiom_weight[k];
    return (uint8_t)s;
}

static void gen_record(struct gen *g)
{
    uint8_t s = take(g);
    if (s < OP_COUNT) {
        enum op op = (enum op)s;
        if (!isa_has(g->isa, op)) op = (enum op)g->ops[s % g->n_ops];
        gen_op(g, op);
        return;
    }
    unsigned k = s - OP_COUNT;
    for (unsigned id = 0; id < ID_COUNT; id++) {
        if (k < idiom_weight[id]) {
            gen_idiom(g, (enum idiom)id);
            return;
        }
        k -= idiom_weight[id];
    }
    abort();
}

bool gen_two_sources(unsigned op)
{
    if (op >= OP_COUNT) return false;
    switch ((enum isa_class)isa_rows[op].cls) {
    case CLS_RRR:
    case CLS_RR_O: return true;
    case CLS_RR_I: return !(isa_flags((enum op)op) & (LOAD | STORE));
    case CLS_R_I_O: return op != OP_load_imm_and_jump;
    default: return false;
    }
}

/* What the finished program holds, for gen_stats_attach's sink: instructions,
 * skip lengths and the unusual encodings, read back from the code bytes. */
static void record_stats(const struct gen *g, const uint8_t *code)
{
    struct gen_stats *st = stats_sink;
    st->programs++;
    for (size_t i = 0; i < g->n; i++) {
        const struct ginsn *x = &g->v[i];
        if (x->in.op != OP_invalid) st->insns[x->in.op]++;
        st->skips[x->len - 1]++;
        if (!x->odd) continue;
        const uint8_t *b = code + x->pc;
        unsigned v = x->odd & 0xff, cls = isa_rows[x->in.op].cls;
        for (unsigned f = 0; f < 3; f++)
            if ((v >> (2 * f)) & 3) st->enc[GEN_ENC_REG_A13 + 3 * f + ((v >> (2 * f)) & 3) - 1]++;
        if (v & 0x40) st->enc[GEN_ENC_IGNORED_BITS]++;
        unsigned l1 = cls == CLS_R_I_I || cls == CLS_R_I_O ? (b[1] >> 4) & 7 : cls == CLS_I_I ? b[1] & 7
                      : cls == CLS_RR_I_I ? b[2] & 7 : 0;
        if (l1 > 4) st->enc[GEN_ENC_L1_WIDE]++;
        if (x->t.kind != T_NONE) continue;
        uint8_t canon[LIMIT_INSN_MAX_LEN];
        unsigned n = dec_encode(g->isa, &x->in, x->pc, canon);
        if (x->len > n) st->enc[GEN_ENC_LONGER]++;
        if (x->len > n) st->odd_skips[x->len - 1]++;
    }
}

const char *gen_selector_name(uint8_t s)
{
    static const char *const names[ID_COUNT] = {
        [ID_SET_BASE] = "idiom_set_base", [ID_CALL] = "idiom_call",       [ID_RET] = "idiom_ret",
        [ID_DYN_JUMP] = "idiom_dyn_jump", [ID_MEMSET] = "idiom_memset",   [ID_SBRK] = "idiom_sbrk",
        [ID_ECALLI] = "idiom_ecalli",     [ID_LOOP] = "idiom_loop",       [ID_LOAD_WIDE] = "idiom_load_wide",
        [ID_STORE_LOAD] = "idiom_store_load", [ID_SPLIT] = "idiom_split", [ID_UNKNOWN] = "idiom_unknown",
        [ID_SET_REG] = "idiom_set_reg",   [ID_EDGE_PAIR] = "idiom_edge_pair", [ID_ODD_ENC] = "idiom_odd_enc",
    };
    if (s < OP_COUNT) return isa_rows[s].name;
    unsigned k = s - OP_COUNT;
    for (unsigned id = 0; id < ID_COUNT; id++) {
        if (k < idiom_weight[id]) return names[id];
        k -= idiom_weight[id];
    }
    return "?";
}

/* ---- layout and encoding ---------------------------------------------------- */

static unsigned imm_len(int32_t v)
{
    if (v == 0) return 0;
    if (v >= -128 && v <= 127) return 1;
    if (v >= -32768 && v <= 32767) return 2;
    if (v >= -(1 << 23) && v <= (1 << 23) - 1) return 3;
    return 4;
}

static uint32_t resolve(const struct gen *g, const struct tgt *t, uint32_t code_len)
{
    switch (t->kind) {
    case T_BLOCK: {
        int64_t n = (int64_t)g->nblocks, k = ((t->v % n) + n) % n;
        return g->v[g->block_first[k]].pc;
    }
    case T_MID: {
        int64_t n = (int64_t)g->n, k = ((t->v % n) + n) % n;
        return g->v[k].pc + 1;
    }
    case T_END: return code_len;
    case T_ABS: return (uint32_t)t->v;
    default: return 0;
    }
}

/* Little-endian low `len` bytes of v at out[at]; returns at + len. */
static unsigned put_bytes(uint8_t *out, unsigned at, int64_t v, unsigned len)
{
    for (unsigned i = 0; i < len; i++) out[at + i] = (uint8_t)((uint64_t)v >> (8 * i));
    return at + len;
}

/* ID_ODD_ENC's encodings (see odd_record). Instructions with a branch target
 * keep the canonical layout (their offset's length is the layout's) and only
 * get the register and ignored-bit variants; the others are rebuilt field by
 * field with longer immediates and padding. The decoder must read the same
 * instruction back. */
static unsigned odd_encode(cpvm_isa isa, const struct ginsn *x, uint8_t out[LIMIT_INSN_MAX_LEN], unsigned n)
{
    const struct dec_insn *in = &x->in;
    unsigned v = x->odd & 0xff, lb = x->odd >> 8, cls = isa_rows[in->op].cls;
    unsigned ra = (v & 3) ? 12 + (v & 3) : in->a, rb = (v >> 2 & 3) ? 12 + (v >> 2 & 3) : in->b;
    unsigned rd = (v >> 4 & 3) ? 12 + (v >> 4 & 3) : in->d;
    bool hi = v & 0x40, l1_wide = v & 0x80;
    if (x->t.kind != T_NONE) {
        switch (cls) {
        case CLS_R_I_O: out[1] = (uint8_t)((out[1] & 0x70) | ra | (hi ? 0x80 : 0)); break;
        case CLS_RR_O: out[1] = (uint8_t)(ra | rb << 4); break;
        default: break;
        }
        return n;
    }
    unsigned ext = lb & 3, pad = (lb >> 2) & 31;
    uint8_t fill = (lb & 0x80) ? 0xff : 0x5a;
    /* An immediate's encoded length: its minimal one plus `ext`, at most 4;
     * 4 when it is the last field and padding follows. */
#define IMM_LEN(val, last) ((pad && (last)) ? 4u : (imm_len(val) + ext > 4 ? 4u : imm_len(val) + ext))
    unsigned k, L1, L2;
    memset(out + 1, 0, LIMIT_INSN_MAX_LEN - 1);
    switch ((enum isa_class)cls) {
    case CLS_N: k = 1; break;
    case CLS_R_I:
        out[1] = (uint8_t)(ra | (hi ? 0xf0 : 0));
        k = put_bytes(out, 2, in->i1, IMM_LEN(in->i1, true));
        break;
    case CLS_R_I_I:
    case CLS_I_I:
    case CLS_RR_I_I: {
        L1 = IMM_LEN(in->i1, false);
        L2 = IMM_LEN(in->i2, true);
        unsigned l1_field = L1 == 4 && l1_wide ? 5 + (lb >> 7) + (ext & 1) : L1;
        if (cls == CLS_R_I_I) {
            out[1] = (uint8_t)(ra | l1_field << 4 | (hi ? 0x80 : 0));
            k = 2;
        } else if (cls == CLS_I_I) {
            out[1] = (uint8_t)(l1_field | (hi ? 0xf8 : 0));
            k = 2;
        } else {
            out[1] = (uint8_t)(ra | rb << 4);
            out[2] = (uint8_t)(l1_field | (hi ? 0xf8 : 0));
            k = 3;
        }
        k = put_bytes(out, k, in->i1, L1);
        k = put_bytes(out, k, in->i2, L2);
        break;
    }
    case CLS_RR_I:
        out[1] = (uint8_t)(ra | rb << 4);
        k = put_bytes(out, 2, in->i1, IMM_LEN(in->i1, true));
        break;
    case CLS_RRR:
        out[1] = (uint8_t)(ra | rb << 4);
        out[2] = (uint8_t)(rd | (hi ? 0xf0 : 0));
        k = 3;
        break;
    case CLS_I: k = put_bytes(out, 1, in->i1, IMM_LEN(in->i1, true)); break;
    case CLS_RR:
        out[1] = (uint8_t)(ra | rb << 4);
        k = 2;
        break;
    case CLS_R_I64:
        out[1] = (uint8_t)(ra | (hi ? 0xf0 : 0));
        k = put_bytes(out, 2, (int64_t)in->imm64, 8);
        break;
    default: return n; /* branch classes always have a target */
    }
#undef IMM_LEN
    /* JamV1: a 25-byte instruction at pc = 7 mod 8 in the last 32 bytes does
     * not fall through there (the reference's scanner quirk, decode.c), so
     * load validation would refuse the program: 24 bytes at most. */
    unsigned max = isa == CPVM_ISA_JAM_V1 ? LIMIT_INSN_MAX_LEN - 1 : LIMIT_INSN_MAX_LEN;
    if (k + pad > max) pad = max - k;
    for (unsigned i = 0; i < pad; i++) out[k + i] = fill;
    return k + pad;
}

/* Encodes x at `pc`; when `want` exceeds the minimal length (lengths only grow
 * after the first passes, so they settle), the branch offset, always the last
 * field, is written with more bytes. */
static unsigned encode(const struct gen *g, const struct ginsn *x, uint32_t pc, uint32_t target, unsigned want,
                       uint8_t out[LIMIT_INSN_MAX_LEN])
{
    if (x->in.op == OP_invalid) {
        memset(out, 0, LIMIT_INSN_MAX_LEN);
        memcpy(out, x->raw, x->raw_len);
        return x->raw_len;
    }
    struct dec_insn in = x->in;
    in.target = target;
    unsigned n = dec_encode(g->isa, &in, pc, out);
    if (n == 0) {
        fprintf(stderr, "gen: %s does not encode in %s\n", isa_rows[in.op].name, cpvm_isa_name(g->isa));
        abort();
    }
    if (x->odd && x->t.kind == T_NONE) return odd_encode(g->isa, x, out, n); /* its length never changes */
    if (want > n) {
        if (x->t.kind == T_NONE) abort(); /* only targets change length */
        int32_t off = (int32_t)(target - pc);
        unsigned prefix = n - imm_len(off), L = want - prefix;
        if (L > 4) abort();
        for (unsigned i = 0; i < L; i++) out[prefix + i] = (uint8_t)((uint32_t)off >> (8 * i));
        n = want;
    }
    return x->odd ? odd_encode(g->isa, x, out, n) : n;
}

static uint32_t assign_pcs(struct gen *g)
{
    uint32_t pc = 0;
    for (size_t i = 0; i < g->n; i++) {
        g->v[i].pc = pc;
        pc += g->v[i].len;
    }
    return pc;
}

static uint32_t layout(struct gen *g)
{
    uint8_t buf[LIMIT_INSN_MAX_LEN];
    for (size_t i = 0; i < g->n; i++) g->v[i].len = (uint8_t)encode(g, &g->v[i], 0, 0, 0, buf);
    for (unsigned pass = 0;; pass++) {
        uint32_t code_len = assign_pcs(g);
        bool changed = false, only_grow = pass >= 8;
        for (size_t i = 0; i < g->n; i++) {
            struct ginsn *x = &g->v[i];
            if (x->t.kind == T_NONE) continue;
            unsigned n = encode(g, x, x->pc, resolve(g, &x->t, code_len), only_grow ? x->len : 0, buf);
            if (n != x->len) {
                x->len = (uint8_t)n;
                changed = true;
            }
        }
        if (!changed) return code_len;
        /* Growing passes: each grows some instruction, at most 4 times each. */
        if (pass > 8 + 4 * g->n + 8) abort();
    }
}

/* ---- header ------------------------------------------------------------------- */

static void fill_data(uint8_t *p, uint32_t n, unsigned pattern, uint64_t salt)
{
    uint64_t s = salt;
    for (uint32_t i = 0; i < n; i++) {
        switch (pattern & 3) {
        case 0: p[i] = (uint8_t)(i * 7 + 1); break;
        case 1: p[i] = 0xff; break;
        case 2: {
            /* splitmix64 seeded from one header byte, never from the whole input */
            uint64_t z = (s += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            p[i] = (uint8_t)(z ^ (z >> 31));
            break;
        }
        default: p[i] = (uint8_t)"cpvm"[i & 3]; break;
        }
    }
}

/* Region bounds from the memory map. The heap region is what is accessible
 * after the prologue's sbrk of `heap` bytes (ISAs with sbrk), else the last
 * page of rw data. */
static void set_regions(struct gen *g, uint32_t heap)
{
    const struct cpvm_memory_map *m = &g->map;
    uint32_t page = m->page_size;
    g->rs[RG_RO] = m->ro_data_address;
    g->re[RG_RO] = m->ro_data_address + m->ro_data_size;
    g->rs[RG_RW] = m->rw_data_address;
    g->re[RG_RW] = m->rw_data_address + m->rw_data_size;
    g->rs[RG_STACK] = m->stack_address_low;
    g->re[RG_STACK] = m->stack_address_high;
    uint64_t top = (uint64_t)m->heap_base + heap, end = (top + page - 1) / page * page;
    if (end < g->re[RG_RW]) end = g->re[RG_RW];
    if (end > m->heap_base) {
        g->rs[RG_HEAP] = m->heap_base;
        g->re[RG_HEAP] = (uint32_t)end;
    } else {
        g->re[RG_HEAP] = g->re[RG_RW];
        g->rs[RG_HEAP] = g->re[RG_RW] - (m->rw_data_size < page ? m->rw_data_size : page);
    }
    g->rs[RG_AUX] = m->aux_data_address;
    g->re[RG_AUX] = m->aux_data_address + m->aux_data_size;
}

#define PROLOGUE_HEAP 0x2000u

cpvm_status gen_from_bytes(const uint8_t *data, size_t len, const struct gen_config *cfg, struct gen_program *out)
{
    memset(out, 0, sizeof *out);
    if (!cfg || (cfg->isa != GEN_ISA_FROM_INPUT && (cfg->isa < 0 || cfg->isa >= CPVM_ISA_COUNT)))
        return CPVM_E_INVALID_ARGUMENT;
    struct gen g;
    memset(&g, 0, sizeof g);
    g.data = data;
    g.len = data ? len : 0;
    g.after_term = true;

    uint8_t h0 = take(&g), h1 = take(&g), h2 = take(&g), h3 = take(&g), h4 = take(&g), h5 = take(&g);
    g.isa = cfg->isa == GEN_ISA_FROM_INPUT ? (cpvm_isa)(h0 & 3) : (cpvm_isa)cfg->isa;
    g.is64 = g.isa != CPVM_ISA_LATEST32;
    isa_build_decode_map(g.isa, g.decode_map);
    for (unsigned op = 0; op < OP_COUNT; op++) {
        if (!isa_has(g.isa, (enum op)op)) continue;
        g.ops[g.n_ops++] = (uint8_t)op;
        if (gen_two_sources(op)) g.pair_ops[g.n_pair_ops++] = (uint8_t)op;
    }

    uint32_t page = 0x1000, aux = 0;
    if (cfg->layout_from_input) {
        page = page_sizes[(h0 >> 4) & 3];
        aux = (h0 & 0x80) ? 0x1001 : 0;
    }
    uint32_t ro_size = ro_sizes[h1 & 15], rw_size = rw_sizes[h1 >> 4], stack_size = stack_sizes[h2 & 15];
    if (cpvm_memory_map_build(page, ro_size, rw_size, stack_size, aux, &g.map, NULL) != CPVM_OK) abort();
    bool heap = isa_has(g.isa, OP_sbrk);
    set_regions(&g, heap ? PROLOGUE_HEAP : 0);

    uint32_t ro_len = data_lens[(h2 >> 4) & 3], rw_len = ro_len;
    if (ro_len > ro_size) ro_len = ro_size;
    if (rw_len > rw_size) rw_len = rw_size;
    uint8_t *ro = malloc(ro_len + 1), *rw = malloc(rw_len + 1);
    if (!ro || !rw) g.oom = true;
    else {
        fill_data(ro, ro_len, h2 >> 6, h2);
        fill_data(rw, rw_len, h2 >> 6, (uint64_t)h2 << 8);
    }

    /* Jump table header entries: block i, a few of them invalid. */
    unsigned n_hdr = h3 & 15, bad = h3 >> 4;
    for (unsigned i = 0; i < n_hdr; i++) {
        struct tgt t = {T_BLOCK, i};
        if (bad && ((i + bad) & 7) == 0) {
            switch ((i + bad) >> 3 & 3) {
            case 0: t = (struct tgt){T_MID, i}; break;
            case 1: t = (struct tgt){T_END, 0}; break;
            case 2: t = (struct tgt){T_ABS, 0xffffff}; break;
            default: t = (struct tgt){T_ABS, 0x10000000}; break;
            }
        }
        add_jt(&g, t);
    }

    /* Prologue: a heap, and the base registers (sp is already the stack top). */
    if (heap) {
        emit_load_imm(&g, R_T0, PROLOGUE_HEAP);
        struct ginsn x = mk(OP_sbrk);
        x.in.a = x.in.b = R_T0;
        emit(&g, &x);
    }
    emit_load_imm(&g, R_S0, (int32_t)g.rs[RG_RW]);
    emit_load_imm(&g, R_S1, (int32_t)g.rs[RG_RO]);
    emit_load_imm(&g, R_A5, (int32_t)g.rs[RG_HEAP]);

    uint32_t max = cfg->max_insns ? cfg->max_insns : DEFAULT_MAX_INSNS;
    while (more(&g) && g.n < max && !g.oom) gen_record(&g);

    bool open_end = (h0 & 4) && g.isa != CPVM_ISA_JAM_V1;
    if (!open_end || g.n == 0) {
        struct ginsn x;
        if ((h4 >> 6) != 3) {
            x = mk(OP_jump_indirect); /* ret */
            x.in.a = R_RA;
        } else if (h5 & 1) {
            x = mk(OP_trap);
        } else {
            x = mk(OP_jump);
            x.t = (struct tgt){T_BLOCK, 0};
        }
        emit(&g, &x);
    }
    if (g.oom) {
        free(g.v);
        free(g.block_first);
        free(g.jt);
        free(ro);
        free(rw);
        return CPVM_E_NO_MEMORY;
    }

    uint32_t code_len = layout(&g);
    cpvm_status st = CPVM_OK;
    uint8_t *code = calloc((size_t)code_len + LIMIT_INSN_MAX_LEN, 1);
    uint8_t *bitmask = calloc(((size_t)code_len + 7) / 8 + 1, 1);
    uint32_t *jt = calloc(g.njt + 1, sizeof *jt);
    if (!code || !bitmask || !jt) {
        st = CPVM_E_NO_MEMORY;
        goto done;
    }
    for (size_t i = 0; i < g.n; i++) {
        const struct ginsn *x = &g.v[i];
        uint8_t buf[LIMIT_INSN_MAX_LEN];
        unsigned n = encode(&g, x, x->pc, resolve(&g, &x->t, code_len), x->len, buf);
        if (n != x->len) abort(); /* layout settled, so every length must hold */
        memcpy(code + x->pc, buf, n);
        bitmask[x->pc >> 3] |= (uint8_t)(1u << (x->pc & 7));
    }
    for (size_t i = 0; i < g.njt; i++) jt[i] = resolve(&g, &g.jt[i], code_len);

    uint32_t entry = 0;
    if ((h0 & 8) && (h5 & 0xc0) == 0xc0) entry = g.v[h5 % g.n].pc;
    static const uint8_t main_name[] = "main";
    struct writer_symbol export = {.name = main_name, .name_len = 4, .pc = entry};
    static const uint8_t n0[] = "gen_host", n1[] = "log", n2[] = "";
    struct writer_symbol imports[3] = {{n0, 8, 0}, {n1, 3, 0}, {n2, 0, 0}};
    struct writer_parts parts = {
        .isa = g.isa,
        .ro_data_size = ro_size,
        .rw_data_size = rw_size,
        .stack_size = stack_size,
        .ro_data = ro,
        .rw_data = rw,
        .ro_data_len = ro_len,
        .rw_data_len = rw_len,
        .imports = imports,
        .import_count = (h0 & 0x40) ? 3 : 0,
        .exports = &export,
        .export_count = 1,
        .jump_table = jt,
        .jump_table_count = g.njt,
        .jump_table_entry_size = 0,
        .code = code,
        .code_len = code_len,
        .bitmask = bitmask,
    };
    st = writer_build(&parts, false, &out->blob, &out->blob_len, NULL);
    if (st) goto done;
    out->isa = g.isa;
    out->entry_pc = entry;
    out->gas = gas_classes[h4 & 7];
    out->step_limit = step_classes[(h4 >> 3) & 7];
    out->page_size = page;
    out->aux_size = aux;
    out->map = g.map;
    out->code_len = code_len;
    out->insn_count = (uint32_t)g.n;
    out->jump_table_count = (uint32_t)g.njt;
    out->has_memset = g.has_memset;
    out->consumed = g.pos;
    if (stats_sink) record_stats(&g, code);
done:
    free(code);
    free(bitmask);
    free(jt);
    free(g.v);
    free(g.block_first);
    free(g.jt);
    free(ro);
    free(rw);
    return st;
}

void gen_program_free(struct gen_program *p)
{
    if (!p) return;
    free(p->blob);
    p->blob = NULL;
    p->blob_len = 0;
}

/* ---- seeds ----------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

size_t gen_seed_bytes(uint64_t seed, uint8_t *buf, size_t cap)
{
    uint64_t s = seed;
    size_t n = 8 + (size_t)(splitmix64(&s) % (SEED_MAX_BYTES - 8));
    if (n > cap) n = cap;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t z = splitmix64(&s);
        for (size_t k = 0; k < 8 && i + k < n; k++) buf[i + k] = (uint8_t)(z >> (8 * k));
    }
    return n;
}

cpvm_status gen_from_seed(uint64_t seed, cpvm_isa isa, const struct gen_config *cfg, struct gen_program *out)
{
    uint8_t buf[SEED_MAX_BYTES];
    size_t n = gen_seed_bytes(seed, buf, sizeof buf);
    struct gen_config c = {.isa = (int)isa, .max_insns = 0, .layout_from_input = false};
    if (cfg) {
        c = *cfg;
        c.isa = (int)isa;
    }
    return gen_from_bytes(buf, n, &c, out);
}

/* ---- the inverse (approximate): programs -> generator input ---------------- */

struct obuf {
    uint8_t *p;
    size_t n, cap;
    bool oom;
};

static void put(struct obuf *o, uint8_t b)
{
    if (o->oom) return;
    if (!grow((void **)&o->p, &o->cap, o->n + 1, 1)) {
        o->oom = true;
        return;
    }
    o->p[o->n++] = b;
}

static unsigned inv_dest(const struct gen *g, uint8_t r)
{
    for (unsigned n = 0; n < 16; n++)
        if (dest_reg(g, n) == r) return n;
    return 0;
}

static void inv_imm(struct obuf *o, int32_t v)
{
    for (unsigned i = 0; i < 64; i++)
        if (imm_table[i] == v) {
            put(o, (uint8_t)i);
            return;
        }
    if (v >= -16 && v <= 47) {
        put(o, (uint8_t)(v + 0x50));
        return;
    }
    put(o, 0xc3);
    for (unsigned i = 0; i < 4; i++) put(o, (uint8_t)((uint32_t)v >> (8 * i)));
}

static void inv_imm64(struct obuf *o, uint64_t v)
{
    for (unsigned i = 0; i < 32; i++)
        if (imm64_table[i] == v) {
            put(o, (uint8_t)i);
            return;
        }
    put(o, 0xc7);
    for (unsigned i = 0; i < 8; i++) put(o, (uint8_t)(v >> (8 * i)));
}

/* Region nibble and position byte whose absolute pick is `addr`, else the
 * nearest rw position. */
static void inv_addr(const struct gen *g, struct obuf *o, bool with_region_nibble, unsigned low_nibble, uint32_t addr,
                     unsigned w)
{
    for (unsigned rn = 0; rn < 16; rn++)
        for (unsigned ab = 0; ab < 256; ab++)
            if (addr_abs(g, rn, (uint8_t)ab, w, false) == addr) {
                if (with_region_nibble) put(o, (uint8_t)(low_nibble | rn << 4));
                put(o, (uint8_t)ab);
                return;
            }
    if (with_region_nibble) put(o, (uint8_t)(low_nibble | 2u << 4));
    put(o, 0);
}

static void inv_base(const struct gen *g, struct obuf *o, uint8_t base, int32_t off, unsigned w)
{
    for (unsigned k = 0; k < 4; k++) {
        if (base_regs[k] != base) continue;
        for (unsigned ab = 0; ab < 256; ab++)
            if ((int32_t)(pos_addr(g, base_region[k], (uint8_t)ab, w) - base_value(g, k)) == off) {
                put(o, (uint8_t)ab);
                return;
            }
    }
    put(o, (uint8_t)off);
}

/* A jump-table address as an index below 0x80 (the generator takes it modulo
 * the table size), anything else as return-to-host or a trap. */
static uint8_t inv_dyn(int32_t addr)
{
    if ((uint32_t)addr == VM_ADDR_RETURN_TO_HOST) return 0xf0;
    if (addr >= 2 && !(addr & 1) && addr / 2 - 1 < 0x80) return (uint8_t)(addr / 2 - 1);
    return 0xf1;
}

static unsigned inv_base_nib(uint8_t base)
{
    for (unsigned k = 0; k < 4; k++)
        if (base_regs[k] == base) return k;
    return 15;
}

uint8_t *gen_input_from_program(const cpvm_program *prog, size_t *len)
{
    struct cpvm_program_info info;
    cpvm_program_get_info(prog, &info);
    const struct cpvm_program *p = prog;
    struct obuf o = {0};
    struct gen g;
    memset(&g, 0, sizeof g);
    g.isa = info.isa;
    g.is64 = g.isa != CPVM_ISA_LATEST32;
    /* The same layout the generator will pick from this header. */
    uint8_t h[6] = {(uint8_t)(info.isa | 4), 0, 0, (uint8_t)(info.jump_table_count < 16 ? info.jump_table_count : 15),
                    0, 0};
    for (unsigned i = 0; i < 6; i++) put(&o, h[i]);
    if (cpvm_memory_map_build(0x1000, ro_sizes[0], rw_sizes[0], stack_sizes[0], 0, &g.map, NULL)) abort();
    set_regions(&g, isa_has(g.isa, OP_sbrk) ? PROLOGUE_HEAP : 0);
    g.njt = h[3] & 15;

    /* Block numbering as the generator will see it: the prologue joins block 0. */
    uint32_t *block_of = calloc((size_t)info.code.len + 1, sizeof *block_of);
    if (!block_of) return NULL;
    uint32_t blocks = 0;
    bool after = true;
    for (uint32_t pc = 0; pc < info.code.len; pc++) {
        if (!dec_bit(p, pc)) continue;
        struct dec_insn in;
        dec_decode(p, pc, &in);
        if (after) blocks++;
        block_of[pc] = blocks; /* 1-based; 0 = not an instruction start */
        after = isa_is_terminator((enum op)in.op);
    }
    after = true;
    uint32_t cur = 0;
    for (uint32_t pc = 0; pc < info.code.len; pc++) {
        if (!dec_bit(p, pc)) continue;
        struct dec_insn in;
        dec_decode(p, pc, &in);
        if (after) cur++;
        after = isa_is_terminator((enum op)in.op);
        g.n = 3 + (size_t)(cur ? cur : 1); /* dest_reg() depends on the instruction index: close enough */
        enum op op = (enum op)in.op;
        if (op == OP_invalid) {
            put(&o, idiom_selector(ID_UNKNOWN));
            put(&o, p->code[pc]);
            continue;
        }
        put(&o, (uint8_t)op);
        unsigned fl = isa_flags(op), w = isa_access_width(op);
        int64_t delta = 0;
        bool has_t = false;
        switch ((enum isa_class)isa_rows[op].cls) {
        case CLS_R_I_O:
        case CLS_RR_O:
        case CLS_O:
            has_t = true;
            if (in.target < info.code.len && block_of[in.target] && dec_valid_target(p, in.target))
                delta = (int64_t)block_of[in.target] - (int64_t)cur;
            else
                delta = 1000; /* an invalid target: end of the code */
            break;
        default: break;
        }
        switch ((enum isa_class)isa_rows[op].cls) {
        case CLS_N: break;
        case CLS_I: inv_imm(&o, in.i1); break;
        case CLS_R_I:
            if (op == OP_jump_indirect) {
                put(&o, in.a);
                put(&o, inv_dyn(in.i1));
            } else if (fl & (LOAD | STORE)) {
                inv_addr(&g, &o, true, (fl & LOAD) ? inv_dest(&g, in.a) : in.a, (uint32_t)in.i1, w);
            } else {
                put(&o, (uint8_t)inv_dest(&g, in.a));
                inv_imm(&o, in.i1);
            }
            break;
        case CLS_R_I_O:
            put(&o, (uint8_t)(op == OP_load_imm_and_jump ? inv_dest(&g, in.a) : in.a));
            inv_imm(&o, in.i1);
            break;
        case CLS_R_I_I:
            put(&o, (uint8_t)inv_base_nib(in.a));
            inv_base(&g, &o, in.a, in.i1, w);
            inv_imm(&o, in.i2);
            break;
        case CLS_RR_I:
            if (fl & (LOAD | STORE)) {
                put(&o, (uint8_t)(((fl & LOAD) ? inv_dest(&g, in.a) : in.a) | inv_base_nib(in.b) << 4));
                inv_base(&g, &o, in.b, in.i1, w);
            } else {
                put(&o, (uint8_t)(inv_dest(&g, in.a) | (unsigned)in.b << 4));
                inv_imm(&o, in.i1);
            }
            break;
        case CLS_RR_O:
            put(&o, (uint8_t)(in.a | in.b << 4));
            break;
        case CLS_RRR:
            put(&o, (uint8_t)(in.a | in.b << 4));
            put(&o, (uint8_t)inv_dest(&g, in.d));
            break;
        case CLS_O: break;
        case CLS_I_I:
            inv_addr(&g, &o, true, 0, (uint32_t)in.i1, w);
            inv_imm(&o, in.i2);
            break;
        case CLS_RR:
            put(&o, (uint8_t)(inv_dest(&g, in.a) | (unsigned)in.b << 4));
            break;
        case CLS_RR_I_I:
            put(&o, (uint8_t)(inv_dest(&g, in.a) | (unsigned)in.b << 4));
            inv_imm(&o, in.i1);
            put(&o, inv_dyn(in.i2));
            break;
        case CLS_R_I64:
            put(&o, (uint8_t)inv_dest(&g, in.a));
            inv_imm64(&o, in.imm64);
            break;
        case CLS_COUNT: abort();
        }
        if (has_t) {
            if (delta >= -7 && delta <= 8) put(&o, (uint8_t)(delta + 7));
            else if (delta % 5 == 0 && delta / 5 >= -7 && delta / 5 <= 8) put(&o, (uint8_t)(0xa0 + delta / 5 + 7));
            else put(&o, 0xf0);
        }
    }
    free(block_of);
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.n;
    return o.p;
}
