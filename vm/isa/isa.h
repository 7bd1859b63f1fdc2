/* The instruction set, expanded from isa.def and classes.def. */
#ifndef CPVM_ISA_H
#define CPVM_ISA_H

#include <stdbool.h>
#include <stdint.h>

#include "cpvm.h"

#define NA (-1)

enum isa_flag {
    TERM = 1u << 0,   /* ends a basic block */
    NOFT = 1u << 1,   /* can not fall through */
    BRANCH = 1u << 2, /* conditional branch */
    LOAD = 1u << 3,
    STORE = 1u << 4,
    W1 = 1u << 5, W2 = 1u << 6, W4 = 1u << 7, W8 = 1u << 8,
};

enum isa_class {
#define CLASS(code, refname, operands) CLS_##code,
#include "classes.def"
#undef CLASS
    CLS_COUNT
};

enum op {
#define ISA(name, cls, jam, l64, l32, rv, tmpl, flags) OP_##name,
#include "isa.def"
#undef ISA
    OP_COUNT,
    OP_invalid = OP_COUNT, /* unknown opcode byte or implicit trap */
};

struct isa_row {
    const char *name;
    const char *tmpl;
    uint8_t cls;
    uint16_t flags;
    int16_t opcode[CPVM_ISA_COUNT]; /* indexed by cpvm_isa; NA = absent */
};

extern const struct isa_row isa_rows[OP_COUNT + 1]; /* [OP_invalid] = "invalid" */
extern const char *const isa_class_operands[CLS_COUNT];

/* byte -> op (OP_invalid for bytes the ISA lacks). */
void isa_build_decode_map(cpvm_isa isa, uint8_t map[256]);

static inline bool isa_has(cpvm_isa isa, enum op op) { return op < OP_COUNT && isa_rows[op].opcode[isa] >= 0; }
static inline unsigned isa_flags(enum op op) { return isa_rows[op].flags; }
/* isa.md §10.1: invalid also ends a block and never falls through. */
static inline bool isa_is_terminator(enum op op) { return op == OP_invalid || (isa_rows[op].flags & TERM); }
static inline bool isa_can_fall_through(enum op op) { return op != OP_invalid && !(isa_rows[op].flags & NOFT); }
static inline unsigned isa_access_width(enum op op)
{
    unsigned f = isa_rows[op].flags;
    return (f & W1) ? 1 : (f & W2) ? 2 : (f & W4) ? 4 : (f & W8) ? 8 : 0;
}

#endif
