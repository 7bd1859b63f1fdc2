/* The interpreter: the pre-decoded op stream its dispatch loop runs, on the
 * machine state of vm/machine/. */
#ifndef CPVM_INTERP_H
#define CPVM_INTERP_H

#include <stdbool.h>
#include <stdint.h>

#include "../decode/decode.h"
#include "../gas/gas.h"
#include "../machine/machine.h"

/* Op kinds: one per instruction (same order as enum op), pseudo ops, then the
 * fused sequences of fuse.def, then the forwarding copies of accfwd.def. */
enum iop_kind {
#define ISA(name, cls, jam, l64, l32, rv, tmpl, flags) IOP_##name,
#include "../isa/isa.def"
#undef ISA
    IOP_invalid,           /* trap at this pc: unknown opcode, implicit trap */
    IOP_gas,               /* block head: charge imm, count x instructions */
    IOP_gas_async,         /* the same without the check (gas_async) */
    IOP_trap_at,           /* jump/branch whose target is invalid: trap at pc */
    IOP_load_imm_trap,     /* load_imm_and_jump to an invalid target */
    IOP_mul_upper_ss_32,   /* Latest32 variants (isa.md §8) */
    IOP_mul_upper_uu_32,
    IOP_mul_upper_su_32,
    IOP_reverse_byte_32,
#define FUSE(x, y, fwd) IOP_F_##x##__##y,
#define FUSE3(x, y, z, fwd) IOP_F_##x##__##y##__##z,
#include "fuse.def"
#undef FUSE
#undef FUSE3
#define ACC(op, field, first) IOP_ACC_##field##_##op,
#include "accfwd.def"
#undef ACC
    IOP_COUNT
};
_Static_assert((int)IOP_invalid == (int)OP_invalid, "op kinds mirror enum op");

#define IOP_UNRESOLVED UINT32_MAX

/* One pre-decoded instruction. Targets are op indices resolved on first use
 * (blocks are compiled lazily), so `t`/`f` start as IOP_UNRESOLVED and the
 * guest pcs stay in `tpc`/`fpc`. */
struct iop {
    uint8_t kind;
    uint8_t a, b, d;       /* jumps use d as "check gas first" (async metering) */
    uint32_t pc;
    uint64_t imm;      /* X(i) / X(i1) / imm64 / gas cost / store address */
    union {
        struct {
            uint32_t t, f; /* target / fall-through op index */
        };
        int64_t need; /* a block head: the least gas a jump may enter with */
    };
    uint32_t tpc;      /* target pc */
    uint32_t x;        /* second immediate (i2) / fall-through pc / block insn count */
};
_Static_assert(sizeof(struct iop) == 32, "ops stay two per cache line");

/* predecode.c */
/* For each op kind, the source field an accfwd.def copy takes from `acc`: 0
 * none, 1 a, 2 b. */
extern const uint8_t interp_acc_field[IOP_COUNT];
bool interp_target_ok(const struct cpvm_instance *in, uint32_t t);
/* Op index of the block starting at `pc` (compiling it if needed). */
cpvm_status interp_block(struct cpvm_instance *in, uint32_t pc, uint32_t *idx);

/* interp.c */
cpvm_status interp_run(struct cpvm_instance *in, struct cpvm_interrupt *out);
/* The interpreter as a backend (machine.h). */
extern const struct vm_backend interp_backend;

#endif
