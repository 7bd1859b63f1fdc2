/* describe(): a fuzz input in words. Every fuzz/targets/<t>.c defines
 * fuzz_describe() beside its LLVMFuzzerTestOneInput, from the same framing;
 * `replay_<t> --describe FILE` (fuzz/drivers/replay.c) calls it and `cpvm
 * repro` shows its output. The helpers print what several targets frame the
 * same way: a generated program, a parsed one, the execution harness's bytes
 * 0-1. */
#ifndef CPVM_FUZZ_HARNESS_DESCRIBE_H
#define CPVM_FUZZ_HARNESS_DESCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cpvm.h"
#include "gen.h"

struct describe_opts {
    FILE *out;
    bool full;               /* the whole disassembly, not the first DESCRIBE_MAX_LINES lines */
    const char *program_out; /* write the framed program (.polkavm or raw bytes) there, or NULL */
};
#define DESCRIBE_MAX_LINES 400u

/* The target's own: framing fields, then the program (disassembled). */
void fuzz_describe(const uint8_t *data, size_t size, const struct describe_opts *o);

/* Runs the generator as a target does and prints its program. */
void describe_generated(const uint8_t *gin, size_t glen, const struct gen_config *cfg, const struct describe_opts *o);
/* Parses bytes as a container (raw false) or a raw program of `isa` and prints it. */
void describe_parsed(const char *what, const uint8_t *bytes, size_t len, bool raw, cpvm_isa isa,
                     const struct describe_opts *o);
/* The disassembly of a parsed program, indented. */
void describe_disassembly(const cpvm_program *prog, const struct describe_opts *o);
/* Bytes 0-1 of the execution harness's framing (exec.h), with the target's
 * meaning of byte 0 bits 3-5 given as `bits345` (already worded, may be ""). */
void describe_exec_framing(const uint8_t *data, size_t size, const char *bits345, const struct describe_opts *o);
/* "empty input" when size < min: true if it printed that. */
bool describe_too_short(size_t size, size_t min, const struct describe_opts *o);

#endif
