/* The assembly text syntax (isa.md §11): the disassembler writes it, the
 * assembler reads it, both driven by the template column of isa.def. */
#ifndef CPVM_TEXT_H
#define CPVM_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "../decode/decode.h"

/* Formats one decoded instruction in `isa`'s syntax (no offset, no newline).
 * Returns the length written (truncated to cap - 1, always NUL-terminated). */
size_t text_format_insn(cpvm_isa isa, const struct dec_insn *insn, char *buf, size_t cap);

struct text_disasm_options {
    bool show_offsets;  /* "// @0x0010" style comments with pc and raw bytes */
    bool non_abi_regs;  /* r0..r12 instead of ra..a5 */
};

/* Disassembles a whole program into text that text_assemble() turns back into
 * the same code bytes, bitmask and jump table. *out is malloc'd, NUL-terminated. */
cpvm_status text_disassemble(const struct cpvm_program *p, const struct text_disasm_options *opt, char **out,
                             struct cpvm_error *err);

/* Assembles source text into a `.polkavm` container (or, with raw, the raw
 * program). `default_isa` applies until a `%isa = ...` directive. On error,
 * err->offset is the 1-based line number. *out is malloc'd. */
cpvm_status text_assemble(const char *src, size_t len, cpvm_isa default_isa, bool raw, uint8_t **out,
                          size_t *out_len, struct cpvm_error *err);

#endif
