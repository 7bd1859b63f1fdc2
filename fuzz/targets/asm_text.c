/* Fuzz target asm_text: raw text into the assembler (vm/text/asm.c), the one
 * parser of cpvm that reads text; asm_roundtrip only ever feeds it what the
 * disassembler wrote.
 *
 * Input framing:
 *   byte 0   mode
 *     bits 0-1  default ISA until a `%isa = ...` line (revive_v1 latest32
 *               latest64 jam_v1)
 *     bit 2     assemble a raw program instead of a `.polkavm` container
 *   bytes 1.. the source text (any bytes: NULs, long lines, no final newline)
 *
 * Invariants (abort on violation):
 *   - text_assemble returns CPVM_OK or a real error code; on error the line
 *     number it reports is at most the text's line count + 1 and the detail is
 *     a terminated string;
 *   - what it assembles parses (as a container or a raw program of its ISA);
 *   - that program disassembles, and the disassembly assembles back to the
 *     same code bytes (assembling is a fixed point after one round).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpvm.h"
#include "describe.h"
#include "text/text.h"

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "asm_text invariant violated: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    abort();
}

static cpvm_status parse(const uint8_t *blob, size_t len, bool raw, cpvm_isa isa, cpvm_program **prog)
{
    return raw ? cpvm_program_parse_raw(blob, len, isa, 0, prog, NULL) : cpvm_program_parse(blob, len, 0, prog, NULL);
}

/* The program's disassembly assembles to the same code bytes. */
static void check_fixed_point(const cpvm_program *prog, bool raw)
{
    struct text_disasm_options opt = {.show_offsets = false, .non_abi_regs = false};
    char *text = NULL;
    cpvm_status s = text_disassemble(prog, &opt, &text, NULL);
    if (s == CPVM_E_NO_MEMORY) return;
    if (s) fail("an assembled program does not disassemble", cpvm_status_message(s));
    uint8_t *blob = NULL;
    size_t len = 0;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    s = text_assemble(text, strlen(text), cpvm_program_isa(prog), raw, &blob, &len, &err);
    if (s == CPVM_E_NO_MEMORY) {
        free(text);
        return;
    }
    if (s) {
        fprintf(stderr, "---- disassembly ----\n%s---- end ----\n", text);
        fail("the disassembly of an assembled program does not assemble", err.detail);
    }
    cpvm_program *back = NULL;
    if (parse(blob, len, raw, cpvm_program_isa(prog), &back)) fail("the re-assembled program does not parse", NULL);
    struct cpvm_program_info a, b;
    cpvm_program_get_info(prog, &a);
    cpvm_program_get_info(back, &b);
    if (a.code.len != b.code.len || (a.code.len && memcmp(a.code.ptr, b.code.ptr, a.code.len) != 0) ||
        a.bitmask.len != b.bitmask.len || (a.bitmask.len && memcmp(a.bitmask.ptr, b.bitmask.ptr, a.bitmask.len) != 0)) {
        fprintf(stderr, "---- disassembly ----\n%s---- end ----\n", text);
        fail("re-assembling the disassembly changes the code", NULL);
    }
    cpvm_program_free(back);
    free(blob);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    cpvm_isa isa = (cpvm_isa)(data[0] & 3);
    bool raw = (data[0] & 4) != 0;
    const char *src = (const char *)data + 1;
    size_t len = size - 1;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = text_assemble(src, len, isa, raw, &blob, &blob_len, &err);
    if (s != CPVM_OK) {
        if ((unsigned)s >= CPVM_E_COUNT) fail("text_assemble returned an unknown status", NULL);
        uint64_t lines = 1;
        for (size_t i = 0; i < len; i++) lines += src[i] == '\n';
        if (err.offset > lines + 1) fail("the error's line number is past the end of the text", err.detail);
        if (memchr(err.detail, 0, sizeof err.detail) == NULL) fail("the error detail is not terminated", NULL);
        return 0;
    }
    cpvm_program *prog = NULL;
    /* A raw program carries no ISA: the last %isa line decided it, which the
     * disassembler writes back; the default is all we know here. */
    if (!raw && parse(blob, blob_len, false, isa, &prog)) fail("an assembled container does not parse", NULL);
    if (raw && parse(blob, blob_len, true, isa, &prog)) prog = NULL; /* %isa changed it: checked as a container */
    if (prog) {
        check_fixed_point(prog, raw);
        cpvm_program_free(prog);
    }
    free(blob);
    return 0;
}

void fuzz_describe(const uint8_t *data, size_t size, const struct describe_opts *o)
{
    if (describe_too_short(size, 1, o)) return;
    cpvm_isa isa = (cpvm_isa)(data[0] & 3);
    bool raw = (data[0] & 4) != 0;
    fprintf(o->out, "input: mode 0x%02x: default ISA %s, assembles %s; %zu bytes of text:\n", data[0],
            cpvm_isa_name(isa), raw ? "a raw program" : "a .polkavm container", size - 1);
    unsigned lines = 0;
    for (size_t i = 1; i < size;) {
        if (!o->full && lines == DESCRIBE_MAX_LINES) {
            fprintf(o->out, "  ... (--full shows the rest)\n");
            break;
        }
        size_t e = i;
        while (e < size && data[e] != '\n') e++;
        fputs("  | ", o->out);
        for (size_t k = i; k < e; k++) {
            uint8_t c = data[k];
            if (c >= 0x20 && c < 0x7f) fputc(c, o->out);
            else fprintf(o->out, "\\x%02x", c);
        }
        fputc('\n', o->out);
        lines++;
        i = e + 1;
    }
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = text_assemble((const char *)data + 1, size - 1, isa, raw, &blob, &blob_len, &err);
    if (s != CPVM_OK) {
        fprintf(o->out, "assembles: no: %s at line %llu: %s\n", cpvm_status_message(s), (unsigned long long)err.offset,
                err.detail);
        return;
    }
    fprintf(o->out, "assembles: yes, %zu bytes\n", blob_len);
    describe_parsed(raw ? "raw program" : "container", blob, blob_len, raw, isa, o);
    free(blob);
}
