/* Guest code -> x86-64, in one pass over the code in pc order (recompiler.md §1).
 *
 * Layout: [entry + exit stubs][blocks in pc order][cold stubs][jump table].
 * A block is [step check]? [gas stub]? instructions (dec_block_step, the walk the
 * interpreter uses, so both charge the same blocks the same cost: decoded whole
 * first when the stub needs the block's cost, else emitted as it is walked and
 * decoded in a case per opcode, emit_walk_shaped). Registers live
 * in host registers (jit_host_reg); rcx is scratch, r15 the window base. */
#include <cpuid.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../common/bits.h"
#include "../common/limits.h"
#include "jit.h"
#include "pages.h"

const enum x64_reg jit_host_reg[CPVM_REG_COUNT] = {
    /* ra   sp   t0   t1   t2   s0  s1  a0   a1   a2   a3   a4   a5 */
    RBX, RSI, R13, RBP, R12, R8, R9, RDI, RAX, RDX, R14, R10, R11,
};

/* Worst case native bytes for one guest instruction (div/rem with its branches,
 * step check and dec included); also the hard cap per guest byte. */
#define MAX_NATIVE_PER_INSN 256u

#define CTX(field) x64_mem_bd(R15, (int32_t)offsetof(struct jit_ctx, field) - JIT_CTX_OFFSET)
#define CTX_REG(i) x64_mem_bd(R15, (int32_t)(offsetof(struct jit_ctx, regs) + 8 * (i)) - JIT_CTX_OFFSET)
#define GUEST_MEM x64_mem_bis(R15, RCX, 1, 0)

enum cold_kind {
    COLD_OOG,          /* block cost > gas: restore, stop, resume at the head */
    COLD_STEP,         /* step limit reached */
    COLD_ASYNC_OOG,    /* async metering found gas < 0: stop for good */
    COLD_LAZY_OOG,     /* COLD_OOG of a lazily costed block: rcx holds what was charged */
};
struct cold {
    uint8_t kind;
    uint32_t label, pc, resume;
    uint64_t cost;
};

/* Where an instruction of the current block is and what it is; defer: the next
 * one rewrites its low32_dest register, so its sign extension can be left out. */
struct shape {
    uint32_t pc;
    uint8_t len, op;
    bool defer;
};

struct cc {
    struct x64_asm a;
    const struct cpvm_module *m;
    const struct cpvm_program *p;
    bool is64, metered, stepping, async;
    bool lazy;           /* block costs from the table at costs_label (jit.h) */
    uint32_t costs_label;
    /* Branches to block heads: a label per reference, bound once every block is
     * placed (no pc-indexed table to allocate and fault in). */
    struct head_ref { uint32_t label, pc; } *refs;
    size_t nrefs, ref_cap;
    uint32_t exit_label[JIT_EXIT_BUG + 1];
    struct cold *cold;
    size_t ncold, cold_cap;
    struct jit_pcmap *insns;
    size_t ninsns, insn_cap;
    struct jit_block *blocks;
    size_t nblocks, block_cap;
    /* the current block (emit_walk_costed), decoded once, and its shape (reused) */
    struct dec_insn *blk;
    struct shape *shp;
    /* The instruction being emitted may leave its 32-bit result zero-extended:
     * the next one overwrites the same register from its low half (low32_dest). */
    bool defer_sext;
    size_t blk_cap, shp_cap;
    bool oom;
};

/* For the small helpers of the walk's per-opcode cases: their constant operands fold
 * and no call is made. */
#define ALWAYS_INLINE static inline __attribute__((always_inline))

#define O x64_cur(&c->a)
#define E(expr) x64_advance(&c->a, (expr))
#define HR(r) jit_host_reg[(r)]

/* Appends to an array of pages_grow (cap in elements; the first growth prefaults). */
static bool vec_reserve(void **v, size_t *cap, size_t need, size_t elem, size_t prefault)
{
    if (need <= *cap) return true;
    size_t bytes = *cap * elem;
    if (!pages_grow(v, &bytes, need * elem, prefault * elem)) return false;
    *cap = bytes / elem;
    return true;
}

ALWAYS_INLINE void *push_vec(void **v, size_t *n, size_t *cap, size_t elem, bool *oom)
{
    if (*n == *cap && !vec_reserve(v, cap, *n + 1, elem, 0)) {
        *oom = true;
        return NULL;
    }
    return (char *)*v + (*n)++ * elem;
}

ALWAYS_INLINE uint32_t head_label(struct cc *c, uint32_t pc)
{
    uint32_t label = x64_label_new(&c->a);
    struct head_ref *r = push_vec((void **)&c->refs, &c->nrefs, &c->ref_cap, sizeof *r, &c->oom);
    if (r) *r = (struct head_ref){.label = label, .pc = pc};
    return label;
}

/* Binds every head_label to its block (c->blocks is in pc order); a pc with no
 * block stays unbound and fails x64_asm_finish. The block index of a pc is its
 * rank among the block starts: a bit per code byte plus a count per 64 bits. */
/* POPCNT: jit_compile runs only where jit_cpu_supported (the generated code needs it too). */
#define WITH_POPCNT __attribute__((target("popcnt")))

static WITH_POPCNT void bind_heads(struct cc *c)
{
    size_t words = ((size_t)c->p->code_len + 64) / 64;
    uint64_t *bits = calloc(words, sizeof *bits);
    uint32_t *before = malloc(words * sizeof *before);
    if (!bits || !before) {
        c->oom = true;
    } else {
        for (size_t i = 0; i < c->nblocks; i++) bits[c->blocks[i].pc >> 6] |= 1ull << (c->blocks[i].pc & 63);
        uint32_t n = 0;
        for (size_t w = 0; w < words; w++) {
            before[w] = n;
            n += (uint32_t)__builtin_popcountll(bits[w]);
        }
        for (size_t i = 0; i < c->nrefs; i++) {
            uint32_t pc = c->refs[i].pc;
            if (pc > c->p->code_len || !((bits[pc >> 6] >> (pc & 63)) & 1)) continue;
            uint32_t k = before[pc >> 6] + (uint32_t)__builtin_popcountll(bits[pc >> 6] & ((1ull << (pc & 63)) - 1));
            x64_label_bind_at(&c->a, c->refs[i].label, c->blocks[k].native);
        }
    }
    free(bits);
    free(before);
}

/* --- small emitters -------------------------------------------------------- */

static void mov64(struct cc *c, enum x64_reg dst, enum x64_reg src)
{
    if (dst != src) E(x64_mov_rr(O, 8, dst, src));
}

static void load_imm(struct cc *c, enum x64_reg r, uint64_t v)
{
    if (v == 0) E(x64_alu_rr(O, X64_XOR, 4, r, r));
    else E(x64_mov_ri(O, 8, r, (int64_t)v));
}

static void set_pc(struct cc *c, uint32_t pc) { E(x64_store_imm(O, 4, CTX(pc), (int32_t)pc)); }

static void trap(struct cc *c, uint32_t pc)
{
    set_pc(c, pc);
    x64_jmp_label(&c->a, c->exit_label[JIT_EXIT_PANIC]);
}

/* Leaves native code for the host, which resumes right after this sequence. */
static void exit_resumable(struct cc *c, enum jit_exit why, uint32_t pc, bool with_arg, uint32_t arg)
{
    set_pc(c, pc);
    if (with_arg) E(x64_store_imm(O, 4, CTX(arg), (int32_t)arg));
    uint32_t resume = x64_label_new(&c->a);
    x64_lea_label(&c->a, RCX, resume);
    x64_jmp_label(&c->a, c->exit_label[why]);
    x64_label_bind(&c->a, resume);
}

/* ecx = lo32(base + X(off)), or lo32(X(off)) without a base: the only way a
 * guest address is formed. SECURITY: 32-bit results, so [r15 + rcx] stays in the window. */
static void guest_addr(struct cc *c, int base, int32_t off)
{
    if (base < 0) {
        E(x64_mov_ri(O, 4, RCX, (uint32_t)off));
    } else if (off == 0) {
        E(x64_mov_rr(O, 4, RCX, HR(base)));
    } else {
        /* one case per register: its REX, ModRM and SIB bytes fold to constants */
        switch (base) {
#define LEA(g) case g: E(x64_lea(O, 4, RCX, x64_mem_bd(HR(g), off))); break;
            LEA(0) LEA(1) LEA(2) LEA(3) LEA(4) LEA(5) LEA(6) LEA(7) LEA(8) LEA(9) LEA(10) LEA(11)
            default: E(x64_lea(O, 4, RCX, x64_mem_bd(HR(12), off))); break;
#undef LEA
        }
    }
}

static void cold(struct cc *c, enum cold_kind kind, uint32_t label, uint32_t pc, uint32_t resume, uint64_t cost)
{
    struct cold *k = push_vec((void **)&c->cold, &c->ncold, &c->cold_cap, sizeof *k, &c->oom);
    if (k) *k = (struct cold){.kind = (uint8_t)kind, .label = label, .pc = pc, .resume = resume, .cost = cost};
}

static void step_check(struct cc *c, uint32_t pc)
{
    uint32_t check = x64_label_new(&c->a), out = x64_label_new(&c->a);
    x64_label_bind(&c->a, check);
    E(x64_alu_mi(O, X64_CMP, 8, CTX(steps), 0));
    x64_jcc_label(&c->a, X64_E, out);
    cold(c, COLD_STEP, out, pc, check, 0);
}

static void step_count(struct cc *c) { E(x64_alu_mi(O, X64_SUB, 8, CTX(steps), 1)); }

/* Async metering (cpvm.h gas_async): stop for good if gas went negative. */
static void async_check(struct cc *c, uint32_t pc)
{
    uint32_t out = x64_label_new(&c->a);
    E(x64_alu_mi(O, X64_CMP, 8, CTX(gas), 0));
    x64_jcc_label(&c->a, X64_L, out);
    cold(c, COLD_ASYNC_OOG, out, pc, 0, 0);
}

/* Whether a static transfer from `pc` to `target` checks gas first (async only). */
static bool checks_async(const struct cc *c, uint32_t pc, uint32_t target)
{
    return c->metered && c->async && target <= pc;
}

/* gas -= cost (u32, in imm32 pieces); the caller branches on the sign. */
static void gas_sub(struct cc *c, enum x64_alu op, uint64_t cost)
{
    while (cost > INT32_MAX) {
        E(x64_alu_mi(O, op, 8, CTX(gas), INT32_MAX));
        cost -= INT32_MAX;
    }
    if (cost || op == X64_SUB) E(x64_alu_mi(O, op, 8, CTX(gas), (int32_t)cost));
}

/* The synchronous gas stub charging the block's entry `slot` of the lazy cost
 * table (jit.h); an unknown cost (JIT_COST_UNKNOWN) always takes the
 * out-of-gas path. Out of line: block_head stays as small as it was. */
static __attribute__((noinline)) void lazy_charge(struct cc *c, uint32_t pc, uint32_t head, uint32_t slot)
{
    E(x64_load(O, 8, RCX, x64_mem_rip(0)));
    /* rip-relative: entry - (end of the load) = costs_label - base, as a table
     * fixup; base > 0 as every block's code is longer than its 8-byte entry */
    uint32_t end = (uint32_t)c->a.len;
    x64_fixup_table(&c->a, end - 4, c->costs_label, end - slot * 8);
    E(x64_alu_mr(O, X64_SUB, 8, CTX(gas), RCX));
    uint32_t oog = x64_label_new(&c->a);
    x64_jcc_label(&c->a, X64_S, oog);
    cold(c, COLD_LAZY_OOG, oog, pc, head, 0);
}

/* A block head: [step check] [gas stub]. `head` is bound here. `slot`: the
 * block's entry in the lazy cost table, or UINT32_MAX to charge `cost`. */
static void block_head(struct cc *c, uint32_t pc, uint32_t head, uint32_t cost, uint32_t slot)
{
    x64_label_bind(&c->a, head);
    if (c->stepping) step_check(c, pc);
    if (c->metered && slot != UINT32_MAX) {
        lazy_charge(c, pc, head, slot);
    } else if (c->metered && c->async) {
        gas_sub(c, X64_SUB, cost);
    } else if (c->metered) {
        /* gas.md §2: the whole block before its first instruction; gas - cost < 0 stops
         * with the gas restored (the cold stub) and resumes here to charge again. */
        gas_sub(c, X64_SUB, cost);
        uint32_t oog = x64_label_new(&c->a);
        x64_jcc_label(&c->a, X64_S, oog);
        cold(c, COLD_OOG, oog, pc, head, cost);
    }
}

/* The lone implicit trap entered at `pc` (a gap, or the end in GP v0.4 mode). */
static void invalid_block(struct cc *c, uint32_t pc)
{
    const struct gas_model *gm = &c->m->gas;
    block_head(c, pc, x64_label_new(&c->a), gas_block_cost(gm, c->p, pc, gas_insn_cost(gm, OP_invalid)), UINT32_MAX);
    trap(c, pc);
}

/* --- instruction selection ------------------------------------------------------ */

enum binop { BIN_ADD, BIN_SUB, BIN_AND, BIN_OR, BIN_XOR, BIN_MUL };

ALWAYS_INLINE void binop_rr(struct cc *c, enum binop op, x64_width w, enum x64_reg dst, enum x64_reg src)
{
    static const enum x64_alu alu[] = {X64_ADD, X64_SUB, X64_AND, X64_OR, X64_XOR};
    if (op == BIN_MUL) E(x64_imul_rr(O, w, dst, src));
    else E(x64_alu_rr(O, alu[op], w, dst, src));
}

/* D = A op B, 64-bit. */
ALWAYS_INLINE void rrr64(struct cc *c, enum binop op, enum x64_reg d, enum x64_reg a, enum x64_reg b)
{
    bool commutes = op != BIN_SUB;
    if (d == a) {
        binop_rr(c, op, 8, d, b);
    } else if (d != b) {
        mov64(c, d, a);
        binop_rr(c, op, 8, d, b);
    } else if (commutes) {
        binop_rr(c, op, 8, d, a);
    } else {
        mov64(c, RCX, a);
        binop_rr(c, op, 8, RCX, b);
        mov64(c, d, RCX);
    }
}

/* Sign-extends the 32-bit result in d, unless the next instruction redoes it. */
static void sext_result(struct cc *c, enum x64_reg d)
{
    if (!c->defer_sext) E(x64_movsx(O, 4, d, d));
}

/* D = sx32(A op B): in place when D is an operand (32-bit ops read only the low
 * halves), a lea for an add into a third register, else through rcx. */
ALWAYS_INLINE void rrr32(struct cc *c, enum binop op, enum x64_reg d, enum x64_reg a, enum x64_reg b)
{
    if (d == a) {
        binop_rr(c, op, 4, d, b);
    } else if (d == b && op != BIN_SUB) {
        binop_rr(c, op, 4, d, a);
    } else if (op == BIN_ADD) {
        E(x64_lea(O, 4, d, x64_mem_bis(a, b, 1, 0)));
    } else {
        E(x64_mov_rr(O, 4, RCX, a));
        binop_rr(c, op, 4, RCX, b);
        E(x64_movsx(O, 4, d, RCX));
        return;
    }
    sext_result(c, d);
}

/* D = A shift B (count masked by the hardware as the ISA requires). */
static void shift_rr(struct cc *c, enum x64_shift op, x64_width w, enum x64_reg d, enum x64_reg a, enum x64_reg b)
{
    mov64(c, RCX, b);
    if (w == 8) {
        mov64(c, d, a);
        E(x64_shift_cl(O, op, 8, d));
    } else {
        if (d != a) E(x64_mov_rr(O, 4, d, a)); /* a 32-bit shift reads only the low half */
        E(x64_shift_cl(O, op, 4, d));
        sext_result(c, d);
    }
}

/* D = imm shift B (the *_alt forms). */
static void shift_alt(struct cc *c, enum x64_shift op, x64_width w, enum x64_reg d, uint64_t imm, enum x64_reg b)
{
    mov64(c, RCX, b);
    load_imm(c, d, imm);
    E(x64_shift_cl(O, op, w, d));
    if (w == 4) E(x64_movsx(O, 4, d, d));
}

ALWAYS_INLINE void shift_ri(struct cc *c, enum x64_shift op, x64_width w, enum x64_reg d, enum x64_reg a,
                            uint64_t count)
{
    if (w == 8) {
        mov64(c, d, a);
        E(x64_shift_i(O, op, 8, d, (uint8_t)(count & 63)));
    } else {
        if (d != a) E(x64_mov_rr(O, 4, d, a));
        E(x64_shift_i(O, op, 4, d, (uint8_t)(count & 31)));
        sext_result(c, d);
    }
}

static void set_cc(struct cc *c, enum x64_cc cc, enum x64_reg d)
{
    E(x64_setcc(O, cc, RCX));
    E(x64_movzx(O, 1, d, RCX));
}

static void cmp_set_rr(struct cc *c, enum x64_cc cc, enum x64_reg d, enum x64_reg a, enum x64_reg b)
{
    E(x64_alu_rr(O, X64_CMP, 8, a, b));
    set_cc(c, cc, d);
}

static void cmp_set_ri(struct cc *c, enum x64_cc cc, enum x64_reg d, enum x64_reg a, int32_t imm)
{
    E(x64_alu_ri(O, X64_CMP, 8, a, imm));
    set_cc(c, cc, d);
}

static void minmax(struct cc *c, enum x64_cc take_b, enum x64_reg d, enum x64_reg a, enum x64_reg b)
{
    mov64(c, RCX, a);
    E(x64_alu_rr(O, X64_CMP, 8, RCX, b));
    E(x64_cmov(O, take_b, 8, RCX, b));
    mov64(c, d, RCX);
}

/* D = A / B or A % B with the ISA's edge cases (isa.md §7.1), never faulting. */
static void divrem(struct cc *c, bool is_signed, bool rem, x64_width w, enum x64_reg d, enum x64_reg a,
                   enum x64_reg b)
{
    uint32_t zero = x64_label_new(&c->a), done = x64_label_new(&c->a);
    uint32_t minus1 = is_signed ? x64_label_new(&c->a) : 0;
    mov64(c, RCX, b);
    E(x64_test_rr(O, w, RCX, RCX));
    x64_jcc_label(&c->a, X64_E, zero);
    if (is_signed) {
        E(x64_alu_ri(O, X64_CMP, w, RCX, -1));
        x64_jcc_label(&c->a, X64_E, minus1);
    }
    E(x64_push(O, RAX));
    E(x64_push(O, RDX));
    E(x64_mov_rr(O, w, RAX, a)); /* a is intact: only pushed so far */
    if (is_signed) E(x64_cqo(O, w));
    else E(x64_alu_rr(O, X64_XOR, 4, RDX, RDX));
    E(x64_unary(O, is_signed ? X64_IDIV : X64_DIV, w, RCX));
    E(x64_mov_rr(O, 8, RCX, rem ? RDX : RAX));
    E(x64_pop(O, RDX));
    E(x64_pop(O, RAX));
    if (w == 4) E(x64_movsx(O, 4, d, RCX));
    else mov64(c, d, RCX);
    x64_jmp_label(&c->a, done);
    /* by zero: quotient all ones, remainder the dividend */
    x64_label_bind(&c->a, zero);
    if (!rem) load_imm(c, d, UINT64_MAX);
    else if (w == 4) E(x64_movsx(O, 4, d, a));
    else mov64(c, d, a);
    if (is_signed) {
        /* by -1: quotient -A (wrapping, so MIN / -1 = MIN), remainder 0 */
        x64_jmp_label(&c->a, done);
        x64_label_bind(&c->a, minus1);
        if (rem) {
            load_imm(c, d, 0);
        } else {
            E(x64_mov_rr(O, w, RCX, a));
            E(x64_unary(O, X64_NEG, w, RCX));
            if (w == 4) E(x64_movsx(O, 4, d, RCX));
            else mov64(c, d, RCX);
        }
    }
    x64_label_bind(&c->a, done);
}

/* D = high 64 bits of A * B (64-bit programs). */
static void mulh64(struct cc *c, enum op op, enum x64_reg d, enum x64_reg a, enum x64_reg b)
{
    mov64(c, RCX, b);
    E(x64_push(O, RAX));
    E(x64_push(O, RDX));
    mov64(c, RAX, a);
    E(x64_unary(O, op == OP_mul_upper_signed_signed ? X64_IMUL1 : X64_MUL, 8, RCX));
    if (op == OP_mul_upper_signed_unsigned) {
        /* unsigned product high half, minus B when A is negative */
        if (a == RAX) E(x64_load(O, 8, RAX, x64_mem_bd(RSP, 8)));
        else if (a == RDX) E(x64_load(O, 8, RAX, x64_mem_bd(RSP, 0)));
        else mov64(c, RAX, a);
        E(x64_shift_i(O, X64_SAR, 8, RAX, 63));
        E(x64_alu_rr(O, X64_AND, 8, RAX, RCX));
        E(x64_alu_rr(O, X64_SUB, 8, RDX, RAX));
    }
    mov64(c, RCX, RDX);
    E(x64_pop(O, RDX));
    E(x64_pop(O, RAX));
    mov64(c, d, RCX);
}

/* Latest32 (isa.md §8): the high half of the 64-bit product of 32-bit operands. */
static void mulh32(struct cc *c, enum op op, enum x64_reg d, enum x64_reg a, enum x64_reg b)
{
    bool a_signed = op != OP_mul_upper_unsigned_unsigned, b_signed = op == OP_mul_upper_signed_signed;
    if (a_signed) E(x64_movsx(O, 4, RCX, a));
    else E(x64_mov_rr(O, 4, RCX, a));
    E(x64_push(O, RAX));
    if (b_signed) E(x64_movsx(O, 4, RAX, b));
    else E(x64_mov_rr(O, 4, RAX, b));
    E(x64_imul_rr(O, 8, RCX, RAX));
    E(x64_pop(O, RAX));
    E(x64_shift_i(O, a_signed ? X64_SAR : X64_SHR, 8, RCX, 32));
    E(x64_movsx(O, 4, d, RCX));
}

/* Inline: a constant op (the walk's per-opcode cases) folds the switch. */
ALWAYS_INLINE void load(struct cc *c, enum op op, enum x64_reg d)
{
    struct x64_mem m = GUEST_MEM;
    switch (op) {
    case OP_load_u8: case OP_load_indirect_u8: E(x64_movzx_m(O, 1, d, m)); break;
    case OP_load_i8: case OP_load_indirect_i8: E(x64_movsx_m(O, 1, d, m)); break;
    case OP_load_u16: case OP_load_indirect_u16: E(x64_movzx_m(O, 2, d, m)); break;
    case OP_load_i16: case OP_load_indirect_i16: E(x64_movsx_m(O, 2, d, m)); break;
    case OP_load_u32: case OP_load_indirect_u32: E(x64_load(O, 4, d, m)); break;
    case OP_load_i32: case OP_load_indirect_i32: E(x64_movsx_m(O, 4, d, m)); break;
    default: E(x64_load(O, 8, d, m)); break;
    }
}

/* Conditional branch: both successors must be valid block starts (isa.md §10.4). */
static void branch(struct cc *c, const struct dec_insn *in, enum x64_cc cc, bool with_imm)
{
    const struct cpvm_program *p = c->p;
    if (!dec_valid_target(p, in->target) || !dec_valid_after_terminator(p, in->pc, in->len)) {
        trap(c, in->pc);
        return;
    }
    if (with_imm) E(x64_alu_ri(O, X64_CMP, 8, HR(in->a), in->i1));
    else E(x64_alu_rr(O, X64_CMP, 8, HR(in->a), HR(in->b)));
    if (checks_async(c, in->pc, in->target)) {
        /* taken: check gas inline (x86 conditions negate by their low bit) */
        uint32_t skip = x64_label_new(&c->a), oog = x64_label_new(&c->a);
        x64_jcc_label(&c->a, (enum x64_cc)(cc ^ 1), skip);
        E(x64_alu_mi(O, X64_CMP, 8, CTX(gas), 0));
        x64_jcc_label(&c->a, X64_L, oog);
        x64_jmp_label(&c->a, head_label(c, in->target));
        x64_label_bind(&c->a, skip);
        cold(c, COLD_ASYNC_OOG, oog, in->pc, 0, 0);
        return;
    }
    x64_jcc_label(&c->a, cc, head_label(c, in->target));
    /* The fall-through block is emitted next: nothing more to do. */
}

/* Dynamic jump through the jump table (isa.md §10.5); ecx holds the address. */
static void dynamic_jump(struct cc *c, uint32_t table, uint32_t pc)
{
    uint32_t len = program_jump_table_len(c->p);
    if (c->metered && c->async) async_check(c, pc);
    E(x64_alu_ri(O, X64_CMP, 4, RCX, (int32_t)VM_ADDR_RETURN_TO_HOST));
    x64_jcc_label(&c->a, X64_E, c->exit_label[JIT_EXIT_HALT]);
    /* index = address / 2 - 1; rotating puts an odd address's low bit on top, and
     * 0 wraps to 0xffffffff, so one unsigned compare rejects all three cases. */
    E(x64_shift_i(O, X64_ROR, 4, RCX, 1));
    E(x64_alu_ri(O, X64_SUB, 4, RCX, 1));
    E(x64_alu_ri(O, X64_CMP, 4, RCX, (int32_t)len));
    x64_jcc_label(&c->a, X64_AE, c->exit_label[JIT_EXIT_PANIC]);
    /* SECURITY: targets come from the compiler-written table only. */
    E(x64_push(O, RAX));
    x64_lea_label(&c->a, RAX, table);
    E(x64_movsx_m(O, 4, RCX, x64_mem_bis(RAX, RCX, 4, 0)));
    E(x64_alu_rr(O, X64_ADD, 8, RCX, RAX));
    E(x64_pop(O, RAX));
    E(x64_jmp_r(O, RCX));
}

/* `op` is in->op; a constant one folds the switch to its case (emit_shaped). */
static inline __attribute__((always_inline)) void emit_insn(struct cc *c, const struct dec_insn *in, uint32_t table,
                                                            enum op op)
{
    enum x64_reg A = HR(in->a), B = HR(in->b), D = HR(in->d);
    uint64_t X = sext32((uint32_t)in->i1);
    const struct cpvm_program *p = c->p;
    switch (op) {
    case OP_trap:
    case OP_invalid:
        trap(c, in->pc);
        break;
    case OP_fallthrough: {
        uint32_t f = in->pc + in->len;
        if (f >= p->code_len && c->m->cfg.compat == CPVM_COMPAT_POLKAVM_035) trap(c, in->pc); /* isa.md §10.6 */
        else if (f >= p->code_len || !dec_bit(p, f)) invalid_block(c, f);
        /* else the block at f is emitted next */
        break;
    }
    case OP_unlikely:
        break;
    case OP_memset:
        exit_resumable(c, JIT_EXIT_MEMSET, in->pc, false, 0);
        break;
    case OP_ecalli:
        exit_resumable(c, JIT_EXIT_ECALLI, in->pc, true, (uint32_t)in->i1);
        break;
    case OP_sbrk:
        exit_resumable(c, JIT_EXIT_SBRK, in->pc, true, (uint32_t)in->a | (uint32_t)in->b << 8);
        break;
    case OP_load_imm64:
        load_imm(c, A, in->imm64);
        break;
    case OP_load_imm:
        load_imm(c, A, X);
        break;
    case OP_move_reg:
        mov64(c, A, B);
        break;

    case OP_store_imm_u8: case OP_store_imm_u16: case OP_store_imm_u32: case OP_store_imm_u64:
        guest_addr(c, -1, in->i1);
        E(x64_store_imm(O, isa_access_width(op), GUEST_MEM, in->i2));
        break;
    case OP_store_u8: case OP_store_u16: case OP_store_u32: case OP_store_u64:
        guest_addr(c, -1, in->i1);
        E(x64_store(O, isa_access_width(op), GUEST_MEM, A));
        break;
    case OP_store_imm_indirect_u8: case OP_store_imm_indirect_u16:
    case OP_store_imm_indirect_u32: case OP_store_imm_indirect_u64:
        guest_addr(c, in->a, in->i1);
        E(x64_store_imm(O, isa_access_width(op), GUEST_MEM, in->i2));
        break;
    case OP_store_indirect_u8: case OP_store_indirect_u16: case OP_store_indirect_u32: case OP_store_indirect_u64:
        guest_addr(c, in->b, in->i1);
        E(x64_store(O, isa_access_width(op), GUEST_MEM, A));
        break;
    case OP_load_u8: case OP_load_i8: case OP_load_u16: case OP_load_i16:
    case OP_load_u32: case OP_load_i32: case OP_load_u64:
        guest_addr(c, -1, in->i1);
        load(c, op, A);
        break;
    case OP_load_indirect_u8: case OP_load_indirect_i8: case OP_load_indirect_u16: case OP_load_indirect_i16:
    case OP_load_indirect_u32: case OP_load_indirect_i32: case OP_load_indirect_u64:
        guest_addr(c, in->b, in->i1);
        load(c, op, A);
        break;

    case OP_jump:
    case OP_load_imm_and_jump:
        if (op == OP_load_imm_and_jump) load_imm(c, A, X);
        if (!dec_valid_target(p, in->target)) {
            trap(c, in->pc);
            break;
        }
        if (checks_async(c, in->pc, in->target)) async_check(c, in->pc);
        x64_jmp_label(&c->a, head_label(c, in->target));
        break;
    case OP_jump_indirect:
        set_pc(c, in->pc);
        guest_addr(c, in->a, in->i1);
        dynamic_jump(c, table, in->pc);
        break;
    case OP_load_imm_and_jump_indirect:
        set_pc(c, in->pc);
        guest_addr(c, in->b, in->i2); /* the base before the write (isa.md §7.1) */
        load_imm(c, A, X);
        dynamic_jump(c, table, in->pc);
        break;

    case OP_branch_eq_imm: branch(c, in, X64_E, true); break;
    case OP_branch_not_eq_imm: branch(c, in, X64_NE, true); break;
    case OP_branch_less_unsigned_imm: branch(c, in, X64_B, true); break;
    case OP_branch_less_or_equal_unsigned_imm: branch(c, in, X64_BE, true); break;
    case OP_branch_greater_or_equal_unsigned_imm: branch(c, in, X64_AE, true); break;
    case OP_branch_greater_unsigned_imm: branch(c, in, X64_A, true); break;
    case OP_branch_less_signed_imm: branch(c, in, X64_L, true); break;
    case OP_branch_less_or_equal_signed_imm: branch(c, in, X64_LE, true); break;
    case OP_branch_greater_or_equal_signed_imm: branch(c, in, X64_GE, true); break;
    case OP_branch_greater_signed_imm: branch(c, in, X64_G, true); break;
    case OP_branch_eq: branch(c, in, X64_E, false); break;
    case OP_branch_not_eq: branch(c, in, X64_NE, false); break;
    case OP_branch_less_unsigned: branch(c, in, X64_B, false); break;
    case OP_branch_less_signed: branch(c, in, X64_L, false); break;
    case OP_branch_greater_or_equal_unsigned: branch(c, in, X64_AE, false); break;
    case OP_branch_greater_or_equal_signed: branch(c, in, X64_GE, false); break;

    case OP_count_set_bits_64: E(x64_bitcount(O, X64_POPCNT, 8, A, B)); break;
    case OP_count_set_bits_32: E(x64_bitcount(O, X64_POPCNT, 4, A, B)); break;
    case OP_count_leading_zero_bits_64: E(x64_bitcount(O, X64_LZCNT, 8, A, B)); break;
    case OP_count_leading_zero_bits_32: E(x64_bitcount(O, X64_LZCNT, 4, A, B)); break;
    case OP_count_trailing_zero_bits_64: E(x64_bitcount(O, X64_TZCNT, 8, A, B)); break;
    case OP_count_trailing_zero_bits_32: E(x64_bitcount(O, X64_TZCNT, 4, A, B)); break;
    case OP_sign_extend_8: E(x64_movsx(O, 1, A, B)); break;
    case OP_sign_extend_16: E(x64_movsx(O, 2, A, B)); break;
    case OP_zero_extend_16: E(x64_movzx(O, 2, A, B)); break;
    case OP_reverse_byte:
        if (c->is64) {
            mov64(c, A, B);
            E(x64_bswap(O, 8, A));
        } else {
            E(x64_mov_rr(O, 4, A, B));
            E(x64_bswap(O, 4, A));
            E(x64_movsx(O, 4, A, A));
        }
        break;

    case OP_add_imm_32:
        E(x64_lea(O, 4, A, x64_mem_bd(B, in->i1)));
        sext_result(c, A);
        break;
    case OP_add_imm_64:
        if (A == B) E(x64_alu_ri(O, X64_ADD, 8, A, in->i1));
        else E(x64_lea(O, 8, A, x64_mem_bd(B, in->i1)));
        break;
    case OP_and_imm: mov64(c, A, B); E(x64_alu_ri(O, X64_AND, 8, A, in->i1)); break;
    case OP_xor_imm: mov64(c, A, B); E(x64_alu_ri(O, X64_XOR, 8, A, in->i1)); break;
    case OP_or_imm: mov64(c, A, B); E(x64_alu_ri(O, X64_OR, 8, A, in->i1)); break;
    case OP_mul_imm_32:
        E(x64_imul_rri(O, 4, A, B, in->i1));
        sext_result(c, A);
        break;
    case OP_mul_imm_64: E(x64_imul_rri(O, 8, A, B, in->i1)); break;
    case OP_set_less_than_unsigned_imm: cmp_set_ri(c, X64_B, A, B, in->i1); break;
    case OP_set_less_than_signed_imm: cmp_set_ri(c, X64_L, A, B, in->i1); break;
    case OP_set_greater_than_unsigned_imm: cmp_set_ri(c, X64_A, A, B, in->i1); break;
    case OP_set_greater_than_signed_imm: cmp_set_ri(c, X64_G, A, B, in->i1); break;
    case OP_shift_logical_left_imm_32: shift_ri(c, X64_SHL, 4, A, B, X); break;
    case OP_shift_logical_right_imm_32: shift_ri(c, X64_SHR, 4, A, B, X); break;
    case OP_shift_arithmetic_right_imm_32: shift_ri(c, X64_SAR, 4, A, B, X); break;
    case OP_rotate_right_imm_32: shift_ri(c, X64_ROR, 4, A, B, X); break;
    case OP_shift_logical_left_imm_64: shift_ri(c, X64_SHL, 8, A, B, X); break;
    case OP_shift_logical_right_imm_64: shift_ri(c, X64_SHR, 8, A, B, X); break;
    case OP_shift_arithmetic_right_imm_64: shift_ri(c, X64_SAR, 8, A, B, X); break;
    case OP_rotate_right_imm_64: shift_ri(c, X64_ROR, 8, A, B, X); break;
    case OP_shift_logical_left_imm_alt_32: shift_alt(c, X64_SHL, 4, A, X, B); break;
    case OP_shift_logical_right_imm_alt_32: shift_alt(c, X64_SHR, 4, A, X, B); break;
    case OP_shift_arithmetic_right_imm_alt_32: shift_alt(c, X64_SAR, 4, A, X, B); break;
    case OP_rotate_right_imm_alt_32: shift_alt(c, X64_ROR, 4, A, X, B); break;
    case OP_shift_logical_left_imm_alt_64: shift_alt(c, X64_SHL, 8, A, X, B); break;
    case OP_shift_logical_right_imm_alt_64: shift_alt(c, X64_SHR, 8, A, X, B); break;
    case OP_shift_arithmetic_right_imm_alt_64: shift_alt(c, X64_SAR, 8, A, X, B); break;
    case OP_rotate_right_imm_alt_64: shift_alt(c, X64_ROR, 8, A, X, B); break;
    case OP_negate_and_add_imm_32:
        E(x64_mov_ri(O, 4, RCX, (uint32_t)in->i1));
        E(x64_alu_rr(O, X64_SUB, 4, RCX, B));
        E(x64_movsx(O, 4, A, RCX));
        break;
    case OP_negate_and_add_imm_64:
        load_imm(c, RCX, X);
        E(x64_alu_rr(O, X64_SUB, 8, RCX, B));
        mov64(c, A, RCX);
        break;
    case OP_cmov_if_zero_imm:
    case OP_cmov_if_not_zero_imm:
        load_imm(c, RCX, X);
        E(x64_test_rr(O, 8, B, B));
        E(x64_cmov(O, op == OP_cmov_if_zero_imm ? X64_E : X64_NE, 8, A, RCX));
        break;

    case OP_add_32: rrr32(c, BIN_ADD, D, A, B); break;
    case OP_sub_32: rrr32(c, BIN_SUB, D, A, B); break;
    case OP_mul_32: rrr32(c, BIN_MUL, D, A, B); break;
    case OP_add_64: rrr64(c, BIN_ADD, D, A, B); break;
    case OP_sub_64: rrr64(c, BIN_SUB, D, A, B); break;
    case OP_mul_64: rrr64(c, BIN_MUL, D, A, B); break;
    case OP_and: rrr64(c, BIN_AND, D, A, B); break;
    case OP_xor: rrr64(c, BIN_XOR, D, A, B); break;
    case OP_or: rrr64(c, BIN_OR, D, A, B); break;
    case OP_div_unsigned_32: divrem(c, false, false, 4, D, A, B); break;
    case OP_div_signed_32: divrem(c, true, false, 4, D, A, B); break;
    case OP_rem_unsigned_32: divrem(c, false, true, 4, D, A, B); break;
    case OP_rem_signed_32: divrem(c, true, true, 4, D, A, B); break;
    case OP_div_unsigned_64: divrem(c, false, false, 8, D, A, B); break;
    case OP_div_signed_64: divrem(c, true, false, 8, D, A, B); break;
    case OP_rem_unsigned_64: divrem(c, false, true, 8, D, A, B); break;
    case OP_rem_signed_64: divrem(c, true, true, 8, D, A, B); break;
    case OP_shift_logical_left_32: shift_rr(c, X64_SHL, 4, D, A, B); break;
    case OP_shift_logical_right_32: shift_rr(c, X64_SHR, 4, D, A, B); break;
    case OP_shift_arithmetic_right_32: shift_rr(c, X64_SAR, 4, D, A, B); break;
    case OP_rotate_left_32: shift_rr(c, X64_ROL, 4, D, A, B); break;
    case OP_rotate_right_32: shift_rr(c, X64_ROR, 4, D, A, B); break;
    case OP_shift_logical_left_64: shift_rr(c, X64_SHL, 8, D, A, B); break;
    case OP_shift_logical_right_64: shift_rr(c, X64_SHR, 8, D, A, B); break;
    case OP_shift_arithmetic_right_64: shift_rr(c, X64_SAR, 8, D, A, B); break;
    case OP_rotate_left_64: shift_rr(c, X64_ROL, 8, D, A, B); break;
    case OP_rotate_right_64: shift_rr(c, X64_ROR, 8, D, A, B); break;
    case OP_mul_upper_signed_signed:
    case OP_mul_upper_unsigned_unsigned:
    case OP_mul_upper_signed_unsigned:
        if (c->is64) mulh64(c, op, D, A, B);
        else mulh32(c, op, D, A, B);
        break;
    case OP_set_less_than_unsigned: cmp_set_rr(c, X64_B, D, A, B); break;
    case OP_set_less_than_signed: cmp_set_rr(c, X64_L, D, A, B); break;
    case OP_cmov_if_zero: E(x64_test_rr(O, 8, B, B)); E(x64_cmov(O, X64_E, 8, D, A)); break;
    case OP_cmov_if_not_zero: E(x64_test_rr(O, 8, B, B)); E(x64_cmov(O, X64_NE, 8, D, A)); break;
    case OP_and_inverted:
    case OP_or_inverted:
        mov64(c, RCX, B);
        E(x64_unary(O, X64_NOT, 8, RCX));
        E(x64_alu_rr(O, op == OP_and_inverted ? X64_AND : X64_OR, 8, RCX, A));
        mov64(c, D, RCX);
        break;
    case OP_xnor:
        mov64(c, RCX, A);
        E(x64_alu_rr(O, X64_XOR, 8, RCX, B));
        E(x64_unary(O, X64_NOT, 8, RCX));
        mov64(c, D, RCX);
        break;
    case OP_maximum: minmax(c, X64_L, D, A, B); break;
    case OP_maximum_unsigned: minmax(c, X64_B, D, A, B); break;
    case OP_minimum: minmax(c, X64_G, D, A, B); break;
    case OP_minimum_unsigned: minmax(c, X64_A, D, A, B); break;
    }
}

/* --- the whole program ------------------------------------------------------------ */

static void emit_stubs(struct cc *c, uint32_t *entry, uint32_t *restore)
{
    static const enum x64_reg saved[] = {RBX, RBP, R12, R13, R14, R15};
    *entry = (uint32_t)c->a.len;
    for (unsigned i = 0; i < 6; i++) E(x64_push(O, saved[i]));
    E(x64_mov_rr(O, 8, R15, RDI));
    E(x64_store(O, 8, CTX(host_rsp), RSP));
    E(x64_mov_rr(O, 8, RCX, RSI));
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++) E(x64_load(O, 8, HR(i), CTX_REG(i)));
    E(x64_jmp_r(O, RCX));

    uint32_t common = x64_label_new(&c->a);
    for (unsigned why = JIT_EXIT_HALT; why <= JIT_EXIT_SBRK; why++) {
        c->exit_label[why] = x64_label_new(&c->a);
        x64_label_bind(&c->a, c->exit_label[why]);
        E(x64_store_imm(O, 4, CTX(exit), (int32_t)why));
        x64_jmp_label(&c->a, common);
    }
    x64_label_bind(&c->a, common);
    E(x64_store(O, 8, CTX(resume), RCX));
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++) E(x64_store(O, 8, CTX_REG(i), HR(i)));
    *restore = (uint32_t)c->a.len;
    E(x64_load(O, 8, RSP, CTX(host_rsp)));
    for (unsigned i = 6; i-- > 0;) E(x64_pop(O, saved[i]));
    E(x64_ret(O));
}

static void emit_cold(struct cc *c)
{
    for (size_t i = 0; i < c->ncold && !c->a.failed; i++) {
        const struct cold *k = &c->cold[i];
        x64_asm_reserve(&c->a, 64);
        x64_label_bind(&c->a, k->label);
        switch ((enum cold_kind)k->kind) {
        case COLD_OOG:
        case COLD_LAZY_OOG:
        case COLD_STEP:
            if (k->kind == COLD_OOG) gas_sub(c, X64_ADD, k->cost);
            if (k->kind == COLD_LAZY_OOG) E(x64_alu_mr(O, X64_ADD, 8, CTX(gas), RCX));
            set_pc(c, k->pc);
            x64_lea_label(&c->a, RCX, k->resume);
            x64_jmp_label(&c->a, c->exit_label[k->kind == COLD_STEP ? JIT_EXIT_STEP : JIT_EXIT_OOG]);
            break;
        case COLD_ASYNC_OOG:
            set_pc(c, k->pc);
            x64_jmp_label(&c->a, c->exit_label[JIT_EXIT_OOG]); /* final: the host never resumes it */
            break;
        }
    }
}

/* The guest register an instruction writes from the low 32 bits of its inputs
 * alone, with a 32-bit operation ending in a sign extension (so a zero-extended
 * value left in it by the previous instruction is harmless): as the byte of the
 * instruction holding it, A in byte 1 (RR_I) or D in byte 2 (RRR); 0 for none. */
static inline unsigned low32_dest_byte(enum op op)
{
    switch (op) {
    case OP_add_imm_32: case OP_mul_imm_32:
    case OP_shift_logical_left_imm_32: case OP_shift_logical_right_imm_32:
    case OP_shift_arithmetic_right_imm_32: case OP_rotate_right_imm_32:
        return 1;
    case OP_add_32: case OP_sub_32: case OP_mul_32:
    case OP_shift_logical_left_32: case OP_shift_logical_right_32: case OP_shift_arithmetic_right_32:
    case OP_rotate_left_32: case OP_rotate_right_32:
        return 2;
    default:
        return 0;
    }
}

/* That register of a decoded instruction; -1 for none. */
static int low32_dest(const struct dec_insn *in)
{
    unsigned k = low32_dest_byte((enum op)in->op);
    return k == 1 ? in->a : k == 2 ? in->d : -1;
}

/* The same for the instruction at `pc` (an instruction start) from its opcode and
 * that one byte, without decoding the rest (past the code it reads as zero, as in
 * dec_decode). */
static inline int low32_dest_at(const struct cpvm_program *p, uint32_t pc, enum op op)
{
    unsigned k = low32_dest_byte(op);
    if (!k) return -1;
    return dec_reg(pc + k < p->code_len ? p->code[pc + k] : 0);
}

/* Next instruction start after `pc` (code_len if none). */
static uint32_t next_start(const struct cpvm_program *p, uint32_t pc)
{
    uint32_t k = pc + 1, bytes = (p->code_len + 7) / 8;
    /* 57+ bits per 8-byte read; bits past the code are zero (blob.c checks it) */
    while (k < p->code_len && (k >> 3) + 8 <= bytes) {
        uint64_t w = rd_le64(p->bitmask + (k >> 3)) >> (k & 7);
        if (w) return k + (uint32_t)__builtin_ctzll(w);
        k += 64 - (k & 7);
    }
    for (; k < p->code_len; k++)
        if (dec_bit(p, k)) return k;
    return p->code_len;
}

/* Decodes and emits one instruction of a shape-only walk: away from the code's end,
 * a case per opcode, so the operand layout and the instruction selection are both
 * known at compile time (one dispatch per instruction instead of three). */
static inline __attribute__((always_inline)) void emit_shaped(struct cc *c, const struct shape *s, uint32_t table)
{
    const struct cpvm_program *p = c->p;
    struct dec_insn d;
    if (s->op == OP_invalid) {
        d = (struct dec_insn){.pc = s->pc, .op = OP_invalid, .len = s->len};
        emit_insn(c, &d, table, OP_invalid);
    } else if (__builtin_expect(p->code_len - s->pc > 64, 1)) {
        const uint8_t *b = p->code + s->pc;
        unsigned skip = s->len - 1u;
        switch ((enum op)s->op) {
#define ISA(name, cls, jam, l64, l32, rv, tmpl, flags)                                                               \
    case OP_##name: { /* a struct per case: one whose address escapes keeps no other in memory */                \
        struct dec_insn o;                                                                                           \
        dec_operands_cls(b, s->pc, skip, OP_##name, CLS_##cls, &o);                                                 \
        emit_insn(c, &o, table, OP_##name);                                                                          \
        break;                                                                                                       \
    }
#include "../isa/isa.def"
#undef ISA
        case OP_invalid:
            break;
        }
    } else {
        dec_decode(p, s->pc, &d);
        emit_insn(c, &d, table, (enum op)d.op);
    }
}

/* The walk when each block's cost is charged as computed here: the block is
 * decoded whole (the cost needs the operands) before its stub and code. */
static void emit_walk_costed(struct cc *c, uint32_t table)
{
    const struct cpvm_program *p = c->p;
    const struct gas_model *gm = &c->m->gas;
    uint32_t forced = UINT32_MAX; /* the block after a fallthrough runs even off the look-back rule */
    struct gas_block gb;
    gas_block_prepare(gm, p, &gb);
    uint32_t pc = dec_bit(p, 0) ? 0 : next_start(p, 0);
    unsigned term_len = 0; /* the length of the known terminator ending at pc, if one does */
    while (pc < p->code_len && !c->a.failed && !c->oom) {
        bool start = term_len ? dec_valid_after_terminator(p, pc - term_len, term_len) : dec_is_block_start(p, pc);
        term_len = 0;
        if (!start && pc != forced) {
            pc = next_start(p, pc); /* unreachable: no entry and no jump can land here */
            continue;
        }
        /* walk once, cost first: the stub is emitted before the instructions it pays for */
        size_t n = 0;
        int prev_dest = -1;
        struct dec_block_iter it = dec_block_begin(p, pc);
        for (;;) {
            if (n == c->shp_cap || n == c->blk_cap) {
                size_t nc = c->shp_cap ? c->shp_cap * 2 : 256;
                struct shape *ns = realloc(c->shp, nc * sizeof *ns);
                if (ns) c->shp = ns;
                struct dec_insn *nb = ns ? realloc(c->blk, nc * sizeof *nb) : NULL;
                if (nb) c->blk = nb;
                if (!ns || !nb) {
                    c->oom = true;
                    return;
                }
                c->shp_cap = nc;
                c->blk_cap = nc;
            }
            struct dec_insn *in = &c->blk[n];
            if (!dec_block_next(&it, in)) break;
            int dest = low32_dest(in);
            if (n) c->shp[n - 1].defer = dest >= 0 && dest == prev_dest;
            c->shp[n++] = (struct shape){.pc = in->pc, .len = in->len, .op = in->op};
            prev_dest = dest;
        }
        gas_block_begin(gm, &gb);
        gas_block_add_all(gm, &gb, c->blk, n);
        uint32_t cost = gas_block_end(gm, p, &gb, pc);
        struct jit_block *b = push_vec((void **)&c->blocks, &c->nblocks, &c->block_cap, sizeof *b, &c->oom);
        /* room for the head and every instruction at once: each fits in MAX_NATIVE_PER_INSN */
        size_t room = MAX_NATIVE_PER_INSN * (n + 1), block_start = c->a.len;
        if (!b || !x64_asm_reserve(&c->a, room)) break;
        *b = (struct jit_block){.pc = pc, .native = (uint32_t)c->a.len, .cost = cost};
        block_head(c, pc, x64_label_new(&c->a), cost, c->lazy ? (uint32_t)(c->nblocks - 1) : UINT32_MAX);
        uint32_t last = pc;
        /* locals, not c's fields: they stay in registers across emit_insn */
        const bool stepping = c->stepping;
        struct jit_pcmap *map = c->insns + c->ninsns, *map_end = c->insns + c->insn_cap;
        const struct shape *s = c->shp, *end = c->shp + n;
        for (size_t i = 0; s < end; s++, i++) {
            uint32_t before = (uint32_t)c->a.len;
            if (s->op != OP_invalid || dec_bit(p, s->pc)) {
                /* one entry per instruction start (in pc order), sized by count_starts */
                if (map == map_end) CPVM_BUG("more instruction starts than counted");
                *map++ = (struct jit_pcmap){.pc = s->pc, .native = before};
                last = s->pc;
            }
            if (stepping) {
                if (s != c->shp) step_check(c, s->pc);
                step_count(c);
            }
            /* Nothing runs between two instructions of a block (no exit, no step
             * point when not stepping), so the sign extension can be left to the next. */
            c->defer_sext = !stepping && s->defer;
            emit_insn(c, &c->blk[i], table, (enum op)c->blk[i].op);
            if (s->op == OP_fallthrough) forced = s->pc + s->len;
        }
        /* SECURITY: the writes stayed inside what was reserved (checked per block:
         * that is what keeps them in the buffer; every case is far below the bound) */
        if (c->a.len - block_start > room) CPVM_BUG("native code for a block longer than reserved");
        c->ninsns = (size_t)(map - c->insns);
        pc = next_start(p, last);
        const struct shape *t = end - 1;
        if (t->op != OP_invalid && isa_is_terminator((enum op)t->op) && t->pc + t->len == pc) term_len = t->len;
    }
}

/* The walk when no block cost is needed before the block (unmetered, or costed
 * lazily): one pass, each instruction emitted as the next is found (the one
 * instruction of look-ahead the deferred sign extension needs), with room
 * reserved per instruction. The same blocks and code as emit_walk. */
static void emit_walk_shaped(struct cc *c, uint32_t table)
{
    const struct cpvm_program *p = c->p;
    uint32_t forced = UINT32_MAX; /* the block after a fallthrough runs even off the look-back rule */
    uint32_t pc = dec_bit(p, 0) ? 0 : next_start(p, 0);
    unsigned term_len = 0; /* the length of the known terminator ending at pc, if one does */
    const bool stepping = c->stepping;
    while (pc < p->code_len && !c->a.failed && !c->oom) {
        bool start = term_len ? dec_valid_after_terminator(p, pc - term_len, term_len) : dec_is_block_start(p, pc);
        term_len = 0;
        if (!start && pc != forced) {
            pc = next_start(p, pc); /* unreachable: no entry and no jump can land here */
            continue;
        }
        struct jit_block *b = push_vec((void **)&c->blocks, &c->nblocks, &c->block_cap, sizeof *b, &c->oom);
        if (!b || !x64_asm_reserve(&c->a, MAX_NATIVE_PER_INSN)) break;
        *b = (struct jit_block){.pc = pc, .native = (uint32_t)c->a.len};
        block_head(c, pc, x64_label_new(&c->a), 0, c->lazy ? (uint32_t)(c->nblocks - 1) : UINT32_MAX);
        uint32_t last = pc;
        struct jit_pcmap *map = c->insns + c->ninsns, *map_end = c->insns + c->insn_cap;
        struct dec_block_iter it = dec_block_begin(p, pc);
        struct dec_insn d;
        dec_block_step(&it, &d, false); /* a block has at least one instruction */
        struct shape s = {.pc = d.pc, .len = d.len, .op = d.op};
        int dest = low32_dest_at(p, s.pc, (enum op)s.op);
        for (bool first = true;; first = false) {
            bool more = dec_block_step(&it, &d, false);
            int dest_next = more ? low32_dest_at(p, d.pc, (enum op)d.op) : -1;
            /* room for this instruction: it fits in MAX_NATIVE_PER_INSN */
            if (!x64_asm_reserve(&c->a, MAX_NATIVE_PER_INSN)) break;
            uint32_t before = (uint32_t)c->a.len;
            if (s.op != OP_invalid || dec_bit(p, s.pc)) {
                /* one entry per instruction start (in pc order), sized by count_starts */
                if (map == map_end) CPVM_BUG("more instruction starts than counted");
                *map++ = (struct jit_pcmap){.pc = s.pc, .native = before};
                last = s.pc;
            }
            if (stepping) {
                if (!first) step_check(c, s.pc);
                step_count(c);
            }
            /* Nothing runs between two instructions of a block (no exit, no step
             * point when not stepping), so the sign extension can be left to the next. */
            c->defer_sext = !stepping && dest >= 0 && dest_next == dest;
            emit_shaped(c, &s, table);
            /* SECURITY: the writes stayed inside what was reserved */
            if (c->a.len - before > MAX_NATIVE_PER_INSN) CPVM_BUG("native code for one instruction too long");
            if (s.op == OP_fallthrough) forced = s.pc + s.len;
            if (!more) break;
            s = (struct shape){.pc = d.pc, .len = d.len, .op = d.op};
            dest = dest_next;
        }
        c->ninsns = (size_t)(map - c->insns);
        pc = next_start(p, last);
        if (s.op != OP_invalid && isa_is_terminator((enum op)s.op) && s.pc + s.len == pc) term_len = s.len;
    }
}

static void emit_program(struct cc *c, uint32_t table)
{
    /* Only an eagerly charged cost needs the operands before the block is emitted;
     * otherwise the walk finds the instructions and emit_shaped decodes each once. */
    if (c->metered && !c->lazy) emit_walk_costed(c, table);
    else emit_walk_shaped(c, table);
}

/* Instruction starts: set bits of the bitmask (bits past the code are zero). */
static WITH_POPCNT size_t count_starts(const struct cpvm_program *p)
{
    size_t n = 0, bytes = ((size_t)p->code_len + 7) / 8, i = 0;
    for (; i + 8 <= bytes; i += 8) n += (size_t)__builtin_popcountll(rd_le64(p->bitmask + i));
    for (; i < bytes; i++) n += (size_t)__builtin_popcount(p->bitmask[i]);
    return n;
}

static const char *cpu_missing;

static void cpu_probe(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_POPCNT)) cpu_missing = "POPCNT";
    else if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(b & bit_BMI)) cpu_missing = "BMI1 (TZCNT)";
    else if (!__get_cpuid(0x80000001, &a, &b, &c, &d) || !(c & bit_LZCNT)) cpu_missing = "LZCNT";
}

/* Probed once: cpuid traps to the hypervisor on virtual machines. */
bool jit_cpu_supported(const char **missing)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, cpu_probe);
    *missing = cpu_missing;
    return cpu_missing == NULL;
}

cpvm_status jit_compile(const struct cpvm_module *m, struct jit_code **out, struct cpvm_error *err)
{
    *out = NULL;
    const struct cpvm_program *p = m->prog;
    struct cc c = {.m = m, .p = p, .is64 = m->is64, .metered = m->cfg.gas_metering, .async = m->cfg.gas_async,
                   .stepping = m->cfg.step_tracing};
    /* Only the full model is worth deferring; asynchronous gas has no stop
     * to compute it at, so it is charged as computed here. */
    c.lazy = c.metered && !c.async && m->gas.kind == CPVM_COST_FULL;
    uint32_t jt_len = program_jump_table_len(p);
    /* Hard cap: stubs, then at most MAX_NATIVE_PER_INSN per guest byte (every
     * instruction is at least one byte) and 4 per jump table entry. */
    size_t limit = 4096 + (size_t)p->code_len * (MAX_NATIVE_PER_INSN + 64) + (size_t)jt_len * 4 + 64;
    if (c.lazy) limit += 4096 + ((size_t)p->code_len + 1) * 8; /* the cost table: at most one entry per byte */
    x64_asm_init(&c.a, limit);
    struct jit_code *jc = calloc(1, sizeof *jc);
    cpvm_status s = CPVM_OK;
    /* Everything sized up front from the instruction count (doom: ~8 native bytes,
     * ~0.45 labels, ~0.3 fixups and branch references, ~0.2 blocks per instruction),
     * so that nothing is copied as it grows and the code's pages come in one go. */
    size_t n = count_starts(p), guess = 4096 + n * 9 + (size_t)jt_len * 4;
    if (!jc || !vec_reserve((void **)&c.insns, &c.insn_cap, n + 1, sizeof *c.insns, n + 1) ||
        !vec_reserve((void **)&c.blocks, &c.block_cap, n / 4 + 64, sizeof *c.blocks, n / 4 + 64) ||
        !vec_reserve((void **)&c.refs, &c.ref_cap, n / 3 + 64, sizeof *c.refs, n / 3 + 64) ||
        !x64_asm_presize(&c.a, guess < limit ? guess : limit, n * 3 / 5 + 256, n * 2 / 5 + jt_len + 256)) {
        s = cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory compiling");
        goto done;
    }
    emit_stubs(&c, &jc->entry_off, &jc->restore_off);
    uint32_t table = x64_label_new(&c.a);
    if (c.lazy) c.costs_label = x64_label_new(&c.a);
    emit_program(&c, table);
    jc->cold_off = (uint32_t)c.a.len;
    emit_cold(&c);
    /* the jump table: int32 offsets from its start to each entry's block head */
    x64_asm_reserve(&c.a, 8 + (size_t)jt_len * 4);
    while (c.a.len % 4) x64_advance(&c.a, x64_int3(x64_cur(&c.a)));
    x64_label_bind(&c.a, table);
    uint32_t table_off = jc->table_off = (uint32_t)c.a.len;
    for (uint32_t i = 0; i < jt_len && !c.a.failed; i++) {
        uint32_t t = 0;
        cpvm_program_jump_table_entry(p, i, &t);
        uint32_t label = dec_valid_target(p, t) ? head_label(&c, t) : c.exit_label[JIT_EXIT_PANIC];
        x64_fixup_table(&c.a, (uint32_t)c.a.len, label, table_off);
        x64_advance(&c.a, 4);
    }
    if (c.lazy) { /* the cost table, on pages of its own: all unknown */
        x64_asm_reserve(&c.a, 4096 + c.nblocks * 8);
        while (c.a.len % 4096) x64_advance(&c.a, x64_int3(x64_cur(&c.a)));
        x64_label_bind(&c.a, c.costs_label);
        jc->costs_off = (uint32_t)c.a.len;
        jc->ncosts = c.nblocks;
        for (size_t i = 0; i < c.nblocks && !c.a.failed; i++) {
            uint64_t unknown = JIT_COST_UNKNOWN;
            memcpy(x64_cur(&c.a), &unknown, 8);
            x64_advance(&c.a, 8);
        }
    }
    bind_heads(&c);
    if (c.oom || !x64_asm_finish(&c.a)) {
        s = cpvm_fail(err, c.a.len + 4096 > limit ? CPVM_E_LIMIT : CPVM_E_NO_MEMORY, 0,
                      "native code generation failed (%zu bytes emitted)", c.a.len);
        goto done;
    }
    jc->len = c.a.len;
    /* SECURITY: W^X — the code is never writable and executable at once; code
     * for sandbox workers is never executable in this process at all. */
    jc->exec = !m->sandboxed;
    uint8_t *code = jit_code_map(c.a.buf, c.a.len, jc->exec, &jc->map_size);
    if (!code) {
        s = cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot map %zu bytes of native code", c.a.len);
        goto done;
    }
    jc->code = code;
    jc->costs_deferred = !c.metered;
    if (c.lazy) {
        if (!jit_code_open_data(code, jc->costs_off, jc->map_size)) {
            s = cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot make the block cost table writable");
            goto done;
        }
        jc->costs = (uint64_t *)(void *)(code + jc->costs_off);
    }
    jc->insns = c.insns;
    jc->ninsns = c.ninsns;
    jc->insns_map = c.insn_cap * sizeof *c.insns;
    jc->blocks = c.blocks;
    jc->nblocks = c.nblocks;
    jc->blocks_map = c.block_cap * sizeof *c.blocks;
    c.insns = NULL;
    c.blocks = NULL;
    *out = jc;
    jc = NULL;
done:
    jit_code_free(jc);
    x64_asm_free(&c.a);
    pages_free(c.refs, c.ref_cap * sizeof *c.refs);
    pages_free(c.cold, c.cold_cap * sizeof *c.cold);
    free(c.blk);
    free(c.shp);
    pages_free(c.insns, c.insn_cap * sizeof *c.insns);
    pages_free(c.blocks, c.block_cap * sizeof *c.blocks);
    return s;
}

void jit_code_free(struct jit_code *jc)
{
    if (!jc) return;
    if (jc->costs && !jit_code_close_data(jc->code, jc->costs_off, jc->map_size, jc->exec)) jc->code = NULL;
    jit_code_unmap(jc->code, jc->map_size, jc->exec);
    pages_free(jc->insns, jc->insns_map);
    pages_free(jc->blocks, jc->blocks_map);
    free(jc);
}

_Static_assert(offsetof(struct jit_ctx, regs) == 0, "context layout");
_Static_assert(sizeof(struct jit_ctx) <= JIT_CTX_OFFSET, "context fits below the window");
