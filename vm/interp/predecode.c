/* Guest code -> ops, one basic block at a time, on first entry (the reference
 * compiles lazily too). Each block is a gas op carrying the block's cost from
 * the cost model, then one op per instruction; control-flow validity that
 * never changes (isa.md §10.3-10.4) is decided here, once. */
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include "../common/bits.h"
#include "../common/limits.h"
#include "../isa/isa.h"
#include "interp.h"

static cpvm_status reserve(struct cpvm_instance *in, uint32_t more)
{
    if (in->nops + more <= in->cap) return CPVM_OK;
    uint64_t cap = in->cap ? in->cap : 64;
    while (cap < (uint64_t)in->nops + more) cap *= 2;
    /* Each op comes from at least one code byte plus a block head and an
     * implicit trap, so the stream is bounded by 3 x code size + slack. */
    if (cap > 3ull * LIMIT_CODE_SIZE + 64) return CPVM_E_LIMIT;
    struct iop *ops = realloc(in->ops, cap * sizeof *ops);
    if (!ops) return CPVM_E_NO_MEMORY;
    in->ops = ops;
    in->cap = (uint32_t)cap;
    return CPVM_OK;
}

static struct iop *emit(struct cpvm_instance *in, uint8_t kind, uint32_t pc)
{
    struct iop *op = &in->ops[in->nops++];
    *op = (struct iop){.kind = kind, .pc = pc, .t = IOP_UNRESOLVED, .f = IOP_UNRESOLVED};
    return op;
}

/* Whether control may go to `t`: PolkaVM's valid(t) (isa.md §10.2) or, under
 * CPVM_COMPAT_GP, the Graypaper's basic-block set. */
bool interp_target_ok(const struct cpvm_instance *in, uint32_t t)
{
    const struct cpvm_program *p = in->mod->prog;
    return in->mod->cfg.compat == CPVM_COMPAT_GP ? dec_gp_block_start(p, t) : dec_valid_target(p, t);
}

/* Translates one decoded instruction into its op. Returns true for a GP branch
 * whose target is outside the block set: taken, it traps at its own pc. */
static bool translate(struct cpvm_instance *in, const struct dec_insn *d)
{
    const struct cpvm_program *p = in->mod->prog;
    bool gp_trap_taken = false;
    bool is64 = in->mod->is64;
    enum op opc = (enum op)d->op;
    uint8_t kind = (uint8_t)opc;

    if (!is64) {
        switch (opc) {
        case OP_mul_upper_signed_signed: kind = IOP_mul_upper_ss_32; break;
        case OP_mul_upper_unsigned_unsigned: kind = IOP_mul_upper_uu_32; break;
        case OP_mul_upper_signed_unsigned: kind = IOP_mul_upper_su_32; break;
        case OP_reverse_byte: kind = IOP_reverse_byte_32; break;
        default: break;
        }
    }
    if (isa_flags(opc) & BRANCH) {
        /* isa.md §10.4: an invalid target or fall-through makes the branch trap
         * whatever its condition; the GP checks the target only when taken. */
        if (in->mod->cfg.compat == CPVM_COMPAT_GP) gp_trap_taken = !dec_gp_block_start(p, d->target);
        else if (!dec_valid_target(p, d->target) || !dec_valid_target(p, d->pc + d->len)) kind = IOP_trap_at;
    } else if (opc == OP_jump || opc == OP_load_imm_and_jump) {
        if (!interp_target_ok(in, d->target)) kind = opc == OP_jump ? IOP_trap_at : IOP_load_imm_trap;
    } else if (opc == OP_fallthrough && d->pc + d->len >= p->code_len &&
               in->mod->cfg.compat == CPVM_COMPAT_POLKAVM_035) {
        /* isa.md §10.6: 0.35 traps at the fallthrough itself, charging nothing more;
         * the GP v0.4 reading enters the implicit trap's block at the end. */
        kind = IOP_trap_at;
    }

    struct iop *op = emit(in, kind, d->pc);
    op->a = d->a;
    op->b = d->b;
    op->d = d->d;
    if (in->mod->cfg.gas_metering && in->mod->cfg.gas_async && (isa_flags(opc) & TERM) && opc != OP_fallthrough &&
        kind != IOP_trap_at) {
        /* async metering checks before backward and dynamic transfers only */
        bool dynamic = opc == OP_jump_indirect || opc == OP_load_imm_and_jump_indirect;
        op->d = dynamic || d->target <= d->pc;
    }
    op->tpc = d->target;
    op->x = d->pc + d->len; /* fall-through pc, replaced below where x means more */
    switch ((enum isa_class)isa_rows[opc].cls) {
    case CLS_R_I64:
        op->imm = d->imm64;
        break;
    case CLS_R_I_I:
    case CLS_I_I:
    case CLS_RR_I_I:
        op->imm = sext32((uint32_t)d->i1);
        op->x = (uint32_t)d->i2;
        break;
    default:
        op->imm = sext32((uint32_t)d->i1);
        break;
    }
    return gp_trap_taken;
}

/* fuse.def as rows: the kinds to match (IOP_COUNT: none), the fused kind and
 * up to three register conditions, 16 bits each (fwd_match decodes them). */
enum { FLD_a = 1, FLD_b = 2, FLD_d = 3 };
#define COND(ne, i, f, j, g) ((uint64_t)(1u << 9 | (ne) << 8 | (i) << 6 | FLD_##f << 4 | (j) << 2 | FLD_##g))
#define EQ(i, f, j, g) COND(0u, i, f, j, g)
#define NE(i, f, j, g) COND(1u, i, f, j, g)
#define ALL(c1, c2) ((c1) | (c2) << 16)
#define ALL3(c1, c2, c3) ((c1) | (c2) << 16 | (c3) << 32)
#define NO_FWD 0
#define FWD(reader, writer) EQ(1, reader, 0, writer)
#define FWD3(reader, writer, middle) ALL(EQ(2, reader, 0, writer), NE(1, middle, 0, writer))
struct fuse_row {
    uint8_t kind[3], fused;
    uint64_t conds;
};
static const struct fuse_row fuse_rows[] = {
#define FUSE(x, y, fwd) {{IOP_##x, IOP_##y, IOP_COUNT}, IOP_F_##x##__##y, fwd},
#define FUSE3(x, y, z, fwd) {{IOP_##x, IOP_##y, IOP_##z}, IOP_F_##x##__##y##__##z, fwd},
#include "fuse.def"
#undef FUSE
#undef FUSE3
};
#undef COND
#undef EQ
#undef NE
#undef ALL
#undef ALL3
#undef NO_FWD
#undef FWD
#undef FWD3
_Static_assert(IOP_COUNT <= UINT8_MAX, "op kinds fit a byte");


static uint8_t field(const struct iop *op, unsigned f) { return f == FLD_a ? op->a : f == FLD_b ? op->b : op->d; }

static bool commutative(uint8_t kind)
{
    switch (kind) {
    case IOP_add_32: case IOP_add_64: case IOP_and: case IOP_xor: case IOP_or: case IOP_mul_32: case IOP_mul_64:
        return true;
    default:
        return false;
    }
}

static bool conds_hold(const struct iop *seq, uint64_t conds)
{
    for (; conds; conds >>= 16) {
        unsigned c = conds & 0xffff;
        bool eq = field(&seq[c >> 6 & 3], c >> 4 & 3) == field(&seq[c >> 2 & 3], c & 3);
        if (eq == ((c >> 8 & 1) != 0)) return false;
    }
    return true;
}

/* Whether the `m` ops at `seq` meet a row's conditions (fuse.def): which
 * operand reads which result, which register a later one must not overwrite.
 * A commutative last instruction may get its sources swapped to meet them. */
static bool fwd_match(struct iop *seq, uint32_t m, uint64_t conds)
{
    if (conds_hold(seq, conds)) return true;
    struct iop *q = &seq[m - 1];
    if (!commutative(q->kind)) return false;
    uint8_t t = q->a;
    q->a = q->b;
    q->b = t;
    if (conds_hold(seq, conds)) return true;
    q->b = q->a;
    q->a = t;
    return false;
}

/* Per kind, computed once: the rows it starts (a bitmask of fuse_rows, in
 * their order), the register an instruction of that kind leaves in `acc` and
 * which of its fields are pure sources (acc_init). Blocks are compiled on
 * every fuzz input, so the walks below look kinds up instead of scanning. */
static uint64_t rows_of[IOP_COUNT];
static uint8_t acc_dest[IOP_COUNT]; /* 0, FLD_a or FLD_d */
static uint8_t acc_src[IOP_COUNT];  /* bit FLD_a / FLD_b: a pure source */
static once_flag tables_once = ONCE_FLAG_INIT;
_Static_assert(sizeof fuse_rows / sizeof fuse_rows[0] <= 64, "rows_of holds a bit per row");

static void tables_init(void);

/* Marks the fused sequences among a block's `n` instruction ops, left to right,
 * none overlapping. Only the first op's kind changes (see fuse.def). */
static void fuse_block(struct iop *ops, uint32_t n)
{
    uint32_t i = 0;
    while (i + 1 < n) {
        uint32_t len = 1;
        for (uint64_t rows = rows_of[ops[i].kind]; rows; rows &= rows - 1) {
            const struct fuse_row *f = &fuse_rows[__builtin_ctzll(rows)];
            uint32_t m = f->kind[2] == IOP_COUNT ? 2 : 3;
            if (i + m <= n && ops[i + 1].kind == f->kind[1] && (m == 2 || ops[i + 2].kind == f->kind[2]) &&
                fwd_match(&ops[i], m, f->conds)) {
                ops[i].kind = f->fused;
                len = m;
                break;
            }
        }
        i += len;
    }
}

/* ---- result forwarding (accfwd.def) --------------------------------------- */

/* A fused kind's length and first instruction (0 / unused for other kinds). */
static const uint8_t fused_len[IOP_COUNT] = {
#define FUSE(x, y, fwd) [IOP_F_##x##__##y] = 2,
#define FUSE3(x, y, z, fwd) [IOP_F_##x##__##y##__##z] = 3,
#include "fuse.def"
#undef FUSE
#undef FUSE3
};
static const uint8_t fused_first[IOP_COUNT] = {
#define FUSE(x, y, fwd) [IOP_F_##x##__##y] = IOP_##x,
#define FUSE3(x, y, z, fwd) [IOP_F_##x##__##y##__##z] = IOP_##x,
#include "fuse.def"
#undef FUSE
#undef FUSE3
};
/* The forwarding copy of a kind for its a / b field (0: none). */
static const uint8_t acc_copy[IOP_COUNT][2] = {
#define ACC(op, field, first) [IOP_##op][FLD_##field - 1] = IOP_ACC_##field##_##op,
#include "accfwd.def"
#undef ACC
};
const uint8_t interp_acc_field[IOP_COUNT] = {
#define ACC(op, field, first) [IOP_ACC_##field##_##op] = FLD_##field,
#include "accfwd.def"
#undef ACC
};

/* The register an instruction op's handler leaves in `acc` (it writes its
 * result there too: ops.inc, fused.inc, LOAD_DO), or -1. */
static int acc_result(uint8_t kind, const struct iop *op)
{
    return acc_dest[kind] ? field(op, acc_dest[kind]) : -1;
}

static uint8_t dest_field(uint8_t kind)
{
    switch (kind) {
    case IOP_mul_upper_ss_32: case IOP_mul_upper_uu_32: case IOP_mul_upper_su_32:
        return FLD_d;
    case IOP_reverse_byte_32:
        return FLD_a;
    case IOP_cmov_if_zero_imm: case IOP_cmov_if_not_zero_imm: case IOP_cmov_if_zero: case IOP_cmov_if_not_zero:
        return 0; /* may leave the register as it was */
    default:
        break;
    }
    if (kind >= OP_COUNT || (isa_flags((enum op)kind) & (STORE | BRANCH | TERM))) return 0;
    switch ((enum isa_class)isa_rows[kind].cls) {
    case CLS_RRR: return FLD_d;
    case CLS_R_I: case CLS_RR_I: case CLS_RR: case CLS_R_I64: return FLD_a;
    default: return 0;
    }
}

/* Whether `field` of instruction kind `kind` is read and not written. */
static bool pure_source(uint8_t kind, unsigned field)
{
    if (kind >= OP_COUNT) return false;
    unsigned fl = isa_flags((enum op)kind);
    enum isa_class c = (enum isa_class)isa_rows[kind].cls;
    if (field == FLD_a)
        return c == CLS_RRR || c == CLS_RR_O || (fl & BRANCH) != 0 || ((fl & STORE) && (c == CLS_R_I || c == CLS_RR_I));
    return c == CLS_RRR || c == CLS_RR_O || c == CLS_RR_I || c == CLS_RR;
}

static void tables_init(void)
{
    for (size_t i = 0; i < sizeof fuse_rows / sizeof fuse_rows[0]; i++) rows_of[fuse_rows[i].kind[0]] |= 1ull << i;
    for (unsigned k = 0; k < IOP_COUNT; k++) {
        acc_dest[k] = dest_field((uint8_t)k);
        acc_src[k] = (uint8_t)(pure_source((uint8_t)k, FLD_a) << FLD_a | pure_source((uint8_t)k, FLD_b) << FLD_b);
    }
}

/* Gives an op of a block's `n` instruction ops (fused) its forwarding copy
 * where its first instruction reads, through a row's field, the register the
 * op before it ended writing. Control enters a block only at its head and
 * runs it in order, so that register's value is in `acc` there. */
static void acc_pass(struct iop *ops, uint32_t n)
{
    int acc_reg = -1;
    for (uint32_t i = 0; i < n;) {
        struct iop *o = &ops[i];
        uint8_t kind = o->kind;
        uint32_t len = fused_len[kind] ? fused_len[kind] : 1;
        uint8_t first = fused_len[kind] ? fused_first[kind] : kind;
        if (i + len > n) break; /* never: fuse_block fuses whole sequences */
        if (acc_reg >= 0)
            for (unsigned f = FLD_a; f <= FLD_b; f++)
                if (acc_copy[kind][f - 1] && field(o, f) == acc_reg && (acc_src[first] >> f & 1)) {
                    o->kind = acc_copy[kind][f - 1];
                    break;
                }
        const struct iop *last = &ops[i + len - 1];
        acc_reg = acc_result(len == 1 ? kind : last->kind, last);
        i += len;
    }
}

cpvm_status interp_block(struct cpvm_instance *in, uint32_t start, uint32_t *idx)
{
    const struct cpvm_program *p = in->mod->prog;
    const struct gas_model *gm = &in->mod->gas;
    if (start <= p->code_len && in->block_of[start]) {
        *idx = in->block_of[start] - 1;
        return CPVM_OK;
    }
    cpvm_status s = reserve(in, 1);
    if (s) return s;
    uint32_t head = in->nops;
    emit(in, in->mod->cfg.gas_async ? IOP_gas_async : IOP_gas, start);
    struct gas_block gb;
    gas_block_prepare(gm, p, &gb);
    uint32_t count = 0;
    struct dec_block_iter it = dec_block_begin(p, start);
    it.gp = in->mod->cfg.compat == CPVM_COMPAT_GP;
    struct dec_insn d;
    bool trap_taken = false;
    while (dec_block_next(&it, &d)) {
        if ((s = reserve(in, 1u + 2u * it.gp))) return s; /* GP: room for a taken-branch trap */
        if (d.op == OP_invalid) emit(in, IOP_invalid, d.pc);
        else trap_taken = translate(in, &d);
        gas_block_add(gm, &gb, &d);
        count++;
    }
    call_once(&tables_once, tables_init);
    fuse_block(in->ops + head + 1, in->nops - head - 1);
    acc_pass(in->ops + head + 1, in->nops - head - 1);
    const struct cpvm_module_config *cfg = &in->mod->cfg;
    if (trap_taken) {
        /* after the block, outside its count: the branch's taken target, a
         * head of nothing (every jump lands on a head) and the trap */
        in->ops[in->nops - 1].t = in->nops;
        struct iop *h = emit(in, cfg->gas_async ? IOP_gas_async : IOP_gas, d.pc);
        h->imm = 0;
        h->x = 0;
        h->need = INT64_MIN;
        emit(in, IOP_trap_at, d.pc);
    }
    struct iop *g = &in->ops[head];
    int64_t cost = (int64_t)gas_block_end(gm, p, &gb, start);
    /* What a jump into the block does (loop.inc ENTER_BLOCK): with sync
     * metering check and charge; with async metering charge unchecked; without
     * metering only count (an async head charges all the same, as it did). */
    bool check = cfg->gas_metering && !cfg->gas_async;
    g->imm = (uint64_t)(cfg->gas_metering || cfg->gas_async ? cost : 0);
    g->need = check ? cost : INT64_MIN;
    g->x = count;
    if (start <= p->code_len) in->block_of[start] = head + 1;
    *idx = head;
    return CPVM_OK;
}
