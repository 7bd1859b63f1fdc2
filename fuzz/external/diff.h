/* Differential cases: a generated program as a protocol case under a profile,
 * and the comparison of two results (PROFILES.md, PROTOCOL.md). */
#ifndef CPVM_FUZZ_EXTERNAL_DIFF_H
#define CPVM_FUZZ_EXTERNAL_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "cpvm.h"
#include "gen.h"
#include "proto.h"

/* The generator configuration of diff-external inputs (replay must match). */
#define GEN_CONFIG_DIFF_EXTERNAL_GP {.isa = CPVM_ISA_LATEST64, .max_insns = 256, .layout_from_input = false}
#define GEN_CONFIG_DIFF_EXTERNAL_POLKAVM {.isa = GEN_ISA_FROM_INPUT, .max_insns = 256, .layout_from_input = false}
/* Host calls a generated case answers before one stops it (PROTOCOL.md v2). */
#define XP_GEN_REPLIES 3u

/* A generated program and the case that runs it. */
struct xp_gen {
    struct gen_program g;
    cpvm_program *prog;
    uint8_t *raw;            /* GP: the patched raw program the case carries */
    size_t raw_len;
    const uint8_t *code;     /* the code bytes of the program the case carries */
    size_t code_len;
    struct xp_case c;
};

/* Builds the case for generator input `in` under `semantics` (XP_SEM_*), gas
 * capped at max_gas. GP: the program's code section with memset/unlikely
 * (no GP opcodes) turned into trap, the ro/rw/stack regions as pages. */
bool xp_gen_case(const uint8_t *in, size_t len, int semantics, int64_t max_gas, struct xp_gen *x, char *err,
                 size_t errcap);
void xp_gen_free(struct xp_gen *x);

/* Name of the instruction at `pc` of `code` (GP/Latest64 opcode numbering), or
 * "end-of-code" / "invalid". */
const char *xp_insn_name(const uint8_t *code, size_t code_len, uint32_t pc);

/* True when `a` (cpvm) and `b` (target) agree. Otherwise `sig` gets the
 * divergence's signature "FIELD:STATUS_A/STATUS_B:INSN[+len8|+odd][+xpage]"
 * (the first differing field or a recognised class, both statuses, the instruction at
 * cpvm's final pc, "+len8" / "+odd" when cpvm ran an
 * instruction with an immediate-length field of 8-11 / another non-canonical
 * encoding, "+xpage" when cpvm ran a load/store spanning two pages on the way)
 * and `detail` a human-readable description. */
bool xp_compare(const struct xp_case *c, const uint8_t *code, size_t code_len, const struct xp_result *a,
                const struct xp_result *b, char *sig, size_t sigcap, char *detail, size_t detailcap);

#endif
