/* Fuzz target asm_roundtrip: program -> text_disassemble -> text_assemble ->
 * program must give back the same code bytes, bitmask and jump table (text.h's
 * promise), and for generated programs the same container byte for byte.
 *
 * Input framing:
 *   byte 0   mode
 *     bit 0     0: generated program (bytes 1.. are generator input, gen.h;
 *               ISA from the input); 1: bytes 1.. are any program bytes, so
 *               non-canonical encodings, unknown opcodes, bitmask gaps, odd
 *               symbols and jump tables go through the %raw/%export/... paths:
 *     bit 2       with bit 0: a `.polkavm` container; else a raw program of
 *                 the ISA in bits 1-2
 *     bit 3     disassemble with offsets ("// @0x..." comments)
 *     bit 4     disassemble with r0..r12 register names
 *     bit 5     generated mode: assemble as a raw program too and compare it
 *               with the container's code section
 *   bytes 1.. as above
 *
 * Invariants (abort on violation): disassembly succeeds; its text assembles;
 * the result parses; code, bitmask, jump table (entry size, count, entries),
 * memory sizes, data, imports and exports are equal; a generated container is
 * reproduced byte for byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpvm.h"
#include "gen.h"
#include "describe.h"
#include "program/program.h"
#include "text/text.h"

static void fail_with_text(const char *what, const char *text)
{
    fprintf(stderr, "asm_roundtrip invariant violated: %s\n", what);
    if (text) fprintf(stderr, "---- disassembly ----\n%s---- end ----\n", text);
    abort();
}

static bool same_bytes(struct cpvm_bytes a, struct cpvm_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static void compare(const cpvm_program *a, const cpvm_program *b, const char *text)
{
    struct cpvm_program_info x, y;
    cpvm_program_get_info(a, &x);
    cpvm_program_get_info(b, &y);
    char why[256];
    if (x.isa != y.isa) fail_with_text("ISA differs", text);
    if (!same_bytes(x.code, y.code)) {
        size_t i = 0;
        while (i < x.code.len && i < y.code.len && x.code.ptr[i] == y.code.ptr[i]) i++;
        snprintf(why, sizeof why, "code differs at byte %zu (lengths %zu, %zu)", i, x.code.len, y.code.len);
        fail_with_text(why, text);
    }
    if (!same_bytes(x.bitmask, y.bitmask)) fail_with_text("bitmask differs", text);
    if (x.jump_table_entry_size != y.jump_table_entry_size) fail_with_text("jump table entry size differs", text);
    if (a->jump_table_count != b->jump_table_count) fail_with_text("jump table count differs", text);
    for (uint32_t i = 0; i < x.jump_table_count; i++) {
        uint32_t ea = 0, eb = 0;
        if (!cpvm_program_jump_table_entry(a, i, &ea) || !cpvm_program_jump_table_entry(b, i, &eb) || ea != eb) {
            snprintf(why, sizeof why, "jump table entry %u differs (%u, %u)", i, ea, eb);
            fail_with_text(why, text);
        }
    }
    if (x.container_size == 0 || y.container_size == 0) return; /* raw programs carry nothing else */
    if (x.ro_data_size != y.ro_data_size || x.rw_data_size != y.rw_data_size || x.stack_size != y.stack_size)
        fail_with_text("memory sizes differ", text);
    if (!same_bytes(x.ro_data, y.ro_data) || !same_bytes(x.rw_data, y.rw_data)) fail_with_text("data differs", text);
    if (x.import_count != y.import_count) fail_with_text("import count differs", text);
    for (uint32_t i = 0; i < x.import_count; i++) {
        struct cpvm_symbol s, t;
        cpvm_program_import(a, i, &s);
        cpvm_program_import(b, i, &t);
        if (s.name_len != t.name_len || (s.name_len && memcmp(s.name, t.name, s.name_len)))
            fail_with_text("an import differs", text);
    }
    if (x.export_count != y.export_count) fail_with_text("export count differs", text);
}

static void roundtrip(const cpvm_program *prog, uint8_t mode, const uint8_t *orig, size_t orig_len, bool raw)
{
    struct text_disasm_options opt = {.show_offsets = (mode & 8) != 0, .non_abi_regs = (mode & 16) != 0};
    char *text = NULL;
    struct cpvm_error err;
    cpvm_status s = text_disassemble(prog, &opt, &text, &err);
    if (s == CPVM_E_NO_MEMORY) return;
    if (s) fail_with_text("text_disassemble failed", NULL);

    uint8_t *blob = NULL;
    size_t blob_len = 0;
    memset(&err, 0, sizeof err);
    s = text_assemble(text, strlen(text), cpvm_program_isa(prog), raw, &blob, &blob_len, &err);
    if (s == CPVM_E_NO_MEMORY) {
        free(text);
        return;
    }
    if (s) {
        char why[300];
        snprintf(why, sizeof why, "text_assemble failed: %s at line %llu: %s", cpvm_status_message(s),
                 (unsigned long long)err.offset, err.detail);
        fail_with_text(why, text);
    }
    cpvm_program *back = NULL;
    s = raw ? cpvm_program_parse_raw(blob, blob_len, cpvm_program_isa(prog), 0, &back, &err)
            : cpvm_program_parse(blob, blob_len, 0, &back, &err);
    if (s) fail_with_text("the assembled program does not parse", text);
    compare(prog, back, text);
    if (orig && (blob_len != orig_len || memcmp(blob, orig, orig_len) != 0))
        fail_with_text(raw ? "the raw program is not byte-identical" : "the container is not byte-identical", text);
    cpvm_program_free(back);
    free(blob);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    cpvm_program *prog = NULL;
    if (mode & 1) {
        bool raw = !(mode & 4);
        if (raw ? cpvm_program_parse_raw(data + 1, size - 1, (cpvm_isa)((mode >> 1) & 3), 0, &prog, NULL)
                : cpvm_program_parse(data + 1, size - 1, 0, &prog, NULL))
            return 0;
        roundtrip(prog, mode, NULL, 0, raw);
        cpvm_program_free(prog);
        return 0;
    }
    struct gen_config cfg = GEN_CONFIG_ASM_ROUNDTRIP;
    struct gen_program g;
    if (gen_from_bytes(data + 1, size - 1, &cfg, &g)) return 0;
    struct cpvm_error err;
    if (cpvm_program_parse(g.blob, g.blob_len, 0, &prog, &err)) {
        fprintf(stderr, "asm_roundtrip: generated program does not parse: %s\n", err.detail);
        abort();
    }
    roundtrip(prog, mode, g.blob, g.blob_len, false);
    if (mode & 32) {
        struct cpvm_program_info info;
        cpvm_program_get_info(prog, &info);
        roundtrip(prog, mode, info.code_section.ptr, info.code_section.len, true);
    }
    cpvm_program_free(prog);
    gen_program_free(&g);
    return 0;
}

void fuzz_describe(const uint8_t *data, size_t size, const struct describe_opts *o)
{
    if (describe_too_short(size, 1, o)) return;
    uint8_t m = data[0];
    bool raw = (m & 1) && !(m & 4);
    fprintf(o->out, "input: mode 0x%02x: %s%s%s%s%s\n", m,
            !(m & 1) ? "generated program" : raw ? "raw program, ISA " : "a .polkavm container",
            raw ? cpvm_isa_name((cpvm_isa)((m >> 1) & 3)) : "", (m & 8) ? ", offsets" : "",
            (m & 16) ? ", r0..r12 names" : "", !(m & 1) && (m & 32) ? ", also re-assembled as a raw program" : "");
    if (m & 1) {
        describe_parsed(raw ? "raw program" : "container", data + 1, size - 1, raw, (cpvm_isa)((m >> 1) & 3), o);
        return;
    }
    struct gen_config cfg = GEN_CONFIG_ASM_ROUNDTRIP;
    describe_generated(data + 1, size - 1, &cfg, o);
}
