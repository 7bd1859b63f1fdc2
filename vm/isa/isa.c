#include "isa.h"

#include <string.h>

const struct isa_row isa_rows[OP_COUNT + 1] = {
#define ISA(name, cls, jam, l64, l32, rv, tmpl, flags) \
    [OP_##name] = {#name, tmpl, CLS_##cls, (flags), {(rv), (l32), (l64), (jam)}},
#include "isa.def"
#undef ISA
    [OP_invalid] = {"invalid", "invalid", CLS_N, TERM | NOFT, {NA, NA, NA, NA}},
};

const char *const isa_class_operands[CLS_COUNT] = {
#define CLASS(code, refname, operands) [CLS_##code] = operands,
#include "classes.def"
#undef CLASS
};

void isa_build_decode_map(cpvm_isa isa, uint8_t map[256])
{
    memset(map, OP_invalid, 256);
    for (unsigned op = 0; op < OP_COUNT; op++) {
        int b = isa_rows[op].opcode[isa];
        if (b >= 0) map[b] = (uint8_t)op;
    }
}

static const char *const isa_names[CPVM_ISA_COUNT] = {"revive_v1", "latest32", "latest64", "jam_v1"};

const char *cpvm_isa_name(cpvm_isa isa)
{
    return (unsigned)isa < CPVM_ISA_COUNT ? isa_names[isa] : "unknown";
}

bool cpvm_isa_from_name(const char *name, cpvm_isa *out)
{
    for (unsigned i = 0; i < CPVM_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) { *out = (cpvm_isa)i; return true; }
    if (strcmp(name, "jamv1") == 0) { *out = CPVM_ISA_JAM_V1; return true; }
    if (strcmp(name, "revivev1") == 0) { *out = CPVM_ISA_REVIVE_V1; return true; }
    return false;
}

static const char *const reg_names[CPVM_REG_COUNT] = {"ra", "sp", "t0", "t1", "t2", "s0", "s1",
                                                      "a0", "a1", "a2", "a3", "a4", "a5"};

const char *cpvm_reg_name(unsigned reg) { return reg < CPVM_REG_COUNT ? reg_names[reg] : "?"; }

int cpvm_reg_from_name(const char *name)
{
    for (int i = 0; i < CPVM_REG_COUNT; i++)
        if (strcmp(name, reg_names[i]) == 0) return i;
    if (name[0] == 'r' && name[1] >= '0' && name[1] <= '9') {
        int v = name[1] - '0';
        if (name[2] == 0) return v;
        if (v == 1 && name[2] >= '0' && name[2] <= '2' && name[3] == 0) return 10 + (name[2] - '0');
    }
    return -1;
}
