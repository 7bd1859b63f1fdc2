/* Helpers for the targets' fuzz_describe() (describe.h). */
#include "describe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "text/text.h"

void describe_disassembly(const cpvm_program *prog, const struct describe_opts *o)
{
    struct text_disasm_options opt = {.show_offsets = true, .non_abi_regs = false};
    char *text = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = text_disassemble(prog, &opt, &text, &err);
    if (s != CPVM_OK) {
        fprintf(o->out, "  (disassembly failed: %s: %s)\n", cpvm_status_message(s), err.detail);
        return;
    }
    unsigned lines = 0;
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!o->full && lines == DESCRIBE_MAX_LINES) {
            unsigned rest = 0;
            for (const char *q = p; *q; q++) rest += *q == '\n';
            fprintf(o->out, "  ... %u more lines (--full shows them)\n", rest);
            break;
        }
        fprintf(o->out, "  %.*s\n", (int)n, p);
        lines++;
        p = e ? e + 1 : p + n;
    }
    free(text);
}

static void write_program(const uint8_t *blob, size_t len, const struct describe_opts *o)
{
    if (!o->program_out) return;
    FILE *f = fopen(o->program_out, "wb");
    bool ok = f && fwrite(blob, 1, len, f) == len;
    if (f) ok = fclose(f) == 0 && ok;
    if (ok) fprintf(o->out, "wrote the program to %s (%zu bytes)\n", o->program_out, len);
    else fprintf(o->out, "could not write %s: %s\n", o->program_out, strerror(errno));
}

void describe_generated(const uint8_t *gin, size_t glen, const struct gen_config *cfg, const struct describe_opts *o)
{
    struct gen_program g;
    cpvm_status s = gen_from_bytes(gin, glen, cfg, &g);
    if (s != CPVM_OK) {
        fprintf(o->out, "generator: %s\n", cpvm_status_message(s));
        return;
    }
    fprintf(o->out,
            "generated: %s, %" PRIu32 " instructions, %" PRIu32 " code bytes, %" PRIu32
            " jump table entries, entry pc %" PRIu32 ", gas %" PRId64 ", step limit %" PRIu64 ", page size %" PRIu32
            ", aux %" PRIu32 " bytes, %zu of %zu input bytes used\n",
            cpvm_isa_name(g.isa), g.insn_count, g.code_len, g.jump_table_count, g.entry_pc, g.gas, g.step_limit,
            g.page_size, g.aux_size, g.consumed, glen);
    write_program(g.blob, g.blob_len, o);
    cpvm_program *prog = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    s = cpvm_program_parse(g.blob, g.blob_len, 0, &prog, &err);
    if (s != CPVM_OK) {
        fprintf(o->out, "the generated program does not parse: %s at offset %" PRIu64 ": %s\n",
                cpvm_status_message(s), err.offset, err.detail);
    } else {
        fprintf(o->out, "program:\n");
        describe_disassembly(prog, o);
        cpvm_program_free(prog);
    }
    gen_program_free(&g);
}

void describe_parsed(const char *what, const uint8_t *bytes, size_t len, bool raw, cpvm_isa isa,
                     const struct describe_opts *o)
{
    cpvm_program *prog = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = raw ? cpvm_program_parse_raw(bytes, len, isa, 0, &prog, &err)
                        : cpvm_program_parse(bytes, len, 0, &prog, &err);
    if (s != CPVM_OK) {
        fprintf(o->out, "%s: does not parse: %s at offset %" PRIu64 ": %s\n", what, cpvm_status_message(s),
                err.offset, err.detail);
        return;
    }
    struct cpvm_program_info info;
    cpvm_program_get_info(prog, &info);
    fprintf(o->out, "%s: parses (%s, %zu code bytes)\n", what, cpvm_isa_name(info.isa), info.code.len);
    write_program(bytes, len, o);
    describe_disassembly(prog, o);
    cpvm_program_free(prog);
}

void describe_exec_framing(const uint8_t *data, size_t size, const char *bits345, const struct describe_opts *o)
{
    uint8_t c = size > 0 ? data[0] : 0, seed = size > 1 ? data[1] : 0;
    fprintf(o->out, "input: run config 0x%02x: %s memory, compat %s, %s%s%s%s; host seed 0x%02x\n", c,
            (c & 1) ? "dynamic" : "standard", (c & 2) ? "gp-v0.4" : "polkavm-0.35",
            (c & 4) ? "unmetered unless memset" : "metered", bits345, (c & 64) ? ", one gas refill" : "",
            (c & 128) ? ", host re-enters" : "", seed);
}

bool describe_too_short(size_t size, size_t min, const struct describe_opts *o)
{
    if (size >= min) return false;
    fprintf(o->out, "input: %zu bytes, shorter than the %zu the framing needs (the target ignores it)\n", size, min);
    return true;
}
