/* cpvm disasm PROGRAM [--raw [--isa NAME]] [--offsets] [--non-abi] — prints a
 * program as text that `cpvm asm` turns back into the same program.
 * With --native: the x86-64 code the compiler generates for it, under each guest
 * instruction (decoded with Zydis). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "commands.h"
#include "decode/decode.h"
#include "interp/interp.h"
#include "jit/jit.h"
#include "text/text.h"
#include "util.h"

static const char *const CMD = "disasm";

static void usage(FILE *out)
{
    fputs("usage: cpvm disasm PROGRAM [--raw [--isa latest64|jamv1|latest32|revive_v1]] [--offsets] [--non-abi]\n"
          "       cpvm disasm --native PROGRAM [--raw [--isa NAME]] [--steps]\n"
          "  Prints the program as assembly text that `cpvm asm` reassembles into the\n"
          "  same code, bitmask, jump table, data and exports. --raw reads a raw\n"
          "  Graypaper program (default ISA latest64) instead of a .polkavm container.\n"
          "  --offsets adds each instruction's code offset and bytes as a comment;\n"
          "  --non-abi names registers r0..r12 instead of ra..a5.\n"
          "  --native compiles the program as `cpvm run --backend compiler` does (naive\n"
          "  gas metering; --steps adds step tracing) and prints each guest instruction\n"
          "  followed by its x86-64 code (native offset, bytes, Intel syntax), with the\n"
          "  shared stubs, block heads, cold stubs and jump table labelled.\n",
          out);
}

/* ---- --native ----------------------------------------------------------------- */

struct native_out {
    const struct jit_code *jc;
    size_t first, cold, table; /* the first block or instruction, the cold stubs, the jump table */
    ZydisDecoder dec;
    ZydisFormatter fmt;
};

static bool decode_at(const struct native_out *o, size_t at, size_t end, ZydisDecodedInstruction *in,
                      ZydisDecodedOperand *ops)
{
    return ZYAN_SUCCESS(ZydisDecoderDecodeFull(&o->dec, o->jc->code + at, end - at, in, ops));
}

/* The first block head / guest instruction at native offset >= t (both sorted). */
static size_t first_block_at(const struct jit_code *jc, uint64_t t)
{
    size_t lo = 0, hi = jc->nblocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (jc->blocks[mid].native < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static size_t first_insn_at(const struct jit_code *jc, uint64_t t)
{
    size_t lo = 0, hi = jc->ninsns;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (jc->insns[mid].native < t) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static const char *const EXIT_NAMES[] = {
    [JIT_EXIT_HALT] = "halt", [JIT_EXIT_PANIC] = "panic", [JIT_EXIT_ECALLI] = "ecalli",
    [JIT_EXIT_OOG] = "out of gas", [JIT_EXIT_STEP] = "step", [JIT_EXIT_MEMSET] = "memset",
    [JIT_EXIT_SBRK] = "sbrk",
};

#define CTX_DISP(field) ((int64_t)offsetof(struct jit_ctx, field) - JIT_CTX_OFFSET)

/* The context field at [r15 + disp], or NULL. */
static const char *ctx_field(int64_t disp, char *buf, size_t cap)
{
    static const struct {
        int64_t disp;
        const char *name;
    } fields[] = {
        {CTX_DISP(gas), "gas"}, {CTX_DISP(steps), "steps"}, {CTX_DISP(host_rsp), "host_rsp"},
        {CTX_DISP(resume), "resume"}, {CTX_DISP(exit), "exit"}, {CTX_DISP(pc), "pc"}, {CTX_DISP(arg), "arg"},
        {CTX_DISP(fault_signal), "fault_signal"}, {CTX_DISP(fault_rip), "fault_rip"},
        {CTX_DISP(fault_addr), "fault_addr"}, {CTX_DISP(canary), "canary"},
    };
    int64_t regs = CTX_DISP(regs);
    if (disp >= regs && disp < regs + 8 * CPVM_REG_COUNT && (disp - regs) % 8 == 0) {
        snprintf(buf, cap, "regs[%s]", cpvm_reg_name((unsigned)((disp - regs) / 8)));
        return buf;
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if (fields[i].disp == disp) return fields[i].name;
    return NULL;
}

/* What native offset `t` is: a block head, a guest instruction, an exit stub, the jump table. */
static bool describe_target(const struct native_out *o, uint64_t t, char *buf, size_t cap)
{
    const struct jit_code *jc = o->jc;
    size_t b = first_block_at(jc, t), i = first_insn_at(jc, t);
    if (b < jc->nblocks && jc->blocks[b].native == t) {
        snprintf(buf, cap, "block @%" PRIu32, jc->blocks[b].pc);
        return true;
    }
    if (i < jc->ninsns && jc->insns[i].native == t) {
        snprintf(buf, cap, "@%" PRIu32, jc->insns[i].pc);
        return true;
    }
    if (t == o->table) {
        snprintf(buf, cap, "jump table");
        return true;
    }
    if (t >= o->cold && t < o->table) {
        snprintf(buf, cap, "cold stub");
        return true;
    }
    /* an exit stub: mov dword [r15 + exit], why */
    ZydisDecodedInstruction in;
    ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
    if (t < o->first && decode_at(o, (size_t)t, o->first, &in, ops) && in.mnemonic == ZYDIS_MNEMONIC_MOV &&
        ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY && ops[0].mem.base == ZYDIS_REGISTER_R15 &&
        ops[0].mem.disp.value == CTX_DISP(exit) && ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE &&
        ops[1].imm.value.u < sizeof EXIT_NAMES / sizeof EXIT_NAMES[0] && EXIT_NAMES[ops[1].imm.value.u]) {
        snprintf(buf, cap, "exit: %s", EXIT_NAMES[ops[1].imm.value.u]);
        return true;
    }
    return false;
}

/* Prints the instructions of [from, to): offset, bytes, Intel syntax, and what a
 * branch, rip-relative address or context field refers to. Bytes that do not
 * decode are printed as such. */
static void print_range(const struct native_out *o, size_t from, size_t to)
{
    size_t at = from;
    while (at < to) {
        ZydisDecodedInstruction in;
        ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
        char text[160] = "(does not decode)", bytes[64], note[64] = "";
        unsigned len = 1;
        if (decode_at(o, at, to, &in, ops)) {
            len = in.length;
            ZydisFormatterFormatInstruction(&o->fmt, &in, ops, in.operand_count_visible, text, sizeof text, at, NULL);
            for (unsigned i = 0; i < in.operand_count_visible && !note[0]; i++) {
                const ZydisDecodedOperand *op = &ops[i];
                uint64_t t;
                bool rel = (op->type == ZYDIS_OPERAND_TYPE_IMMEDIATE && op->imm.is_relative) ||
                           (op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.base == ZYDIS_REGISTER_RIP);
                if (rel && ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&in, op, at, &t))) {
                    char what[48];
                    if (describe_target(o, t, what, sizeof what)) snprintf(note, sizeof note, "  // -> %s", what);
                } else if (op->type == ZYDIS_OPERAND_TYPE_MEMORY && op->mem.base == ZYDIS_REGISTER_R15 &&
                           op->mem.index == ZYDIS_REGISTER_NONE) {
                    char buf[32];
                    const char *f = ctx_field(op->mem.disp.value, buf, sizeof buf);
                    if (f) snprintf(note, sizeof note, "  // ctx.%s", f);
                }
            }
        }
        size_t b = 0;
        bytes[0] = 0;
        for (unsigned i = 0; i < len && b + 4 < sizeof bytes; i++)
            b += (size_t)snprintf(bytes + b, sizeof bytes - b, i ? " %02x" : "%02x", o->jc->code[at + i]);
        printf("    %06zx  %-32s %s%s\n", at, bytes, text, note);
        at += len;
    }
}

static int disasm_native(const char *path, const cpvm_program *p, bool raw, bool steps)
{
    /* The module `cpvm run --backend compiler` makes: naive gas metering. Its code
     * is only read here, never run, and is the same whichever sandbox would run it:
     * no zygote worker is needed (nor has to be available). */
    struct cpvm_module_config cfg;
    cli_module_config(&cfg, CPVM_BACKEND_COMPILER, CPVM_SANDBOX_NONE, raw ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD,
                      CPVM_COMPAT_POLKAVM_035, steps);
    cpvm_module *m = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    if (cpvm_module_new(p, &cfg, &m, &err) != CPVM_OK || !m) {
        if (!err.code) err.code = CPVM_E_INVALID_ARGUMENT;
        cli_print_error(CMD, path, &err);
        return 2;
    }
    const char *why = NULL;
    if (cpvm_module_backend(m, &why) != CPVM_BACKEND_COMPILER || !m->jit) {
        fprintf(stderr, "cpvm disasm: %s: the compiler is not available here%s%s\n", path, why ? ": " : "",
                why ? why : "");
        cpvm_module_free(m);
        return 2;
    }
    struct native_out o = {.jc = m->jit};
    if (!ZYAN_SUCCESS(ZydisDecoderInit(&o.dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64)) ||
        !ZYAN_SUCCESS(ZydisFormatterInit(&o.fmt, ZYDIS_FORMATTER_STYLE_INTEL)) ||
        !ZYAN_SUCCESS(ZydisFormatterSetProperty(&o.fmt, ZYDIS_FORMATTER_PROP_ADDR_PADDING_ABSOLUTE,
                                                ZYDIS_PADDING_DISABLED)) ||
        !ZYAN_SUCCESS(ZydisFormatterSetProperty(&o.fmt, ZYDIS_FORMATTER_PROP_HEX_UPPERCASE, false))) {
        fprintf(stderr, "cpvm disasm: cannot set up the x86-64 disassembler\n");
        cpvm_module_free(m);
        return 2;
    }
    const struct jit_code *jc = m->jit;
    cpvm_isa isa = cpvm_program_isa(p);
    uint32_t jt_len = program_jump_table_len(p);
    size_t table = jc->table_off, cold = jc->cold_off;
    size_t first = jc->ninsns ? jc->insns[0].native : cold;
    if (jc->nblocks && jc->blocks[0].native < first) first = jc->blocks[0].native;
    o.first = first;
    o.table = table;
    o.cold = cold;

    printf("// %s, %zu bytes of x86-64: %zu guest instructions in %zu blocks, gas metering%s\n", cpvm_isa_name(isa),
           jc->len, jc->ninsns, jc->nblocks, steps ? ", step tracing" : "");
    printf("// registers:");
    for (unsigned r = 0; r < CPVM_REG_COUNT; r++)
        printf(" %s=%s", cpvm_reg_name(r),
               ZydisRegisterGetString(ZydisRegisterEncode(ZYDIS_REGCLASS_GPR64, (ZyanU8)jit_host_reg[r])));
    printf("; rcx scratch, r15 = guest memory base, context at [r15 - 0x%x]\n", JIT_CTX_OFFSET);
    /* [entry][exit stubs][save registers][restore: from restore_off] (compile.c) */
    size_t restore = jc->restore_off < first ? jc->restore_off : first;
    printf("\n// shared stubs: entry (at %06" PRIx32 "), exits, saving the guest registers\n", jc->entry_off);
    print_range(&o, 0, restore);
    printf("// shared stubs: back to the host\n");
    print_range(&o, restore, first);

    size_t bi = 0, ii = 0, at = first;
    while (bi < jc->nblocks || ii < jc->ninsns) {
        /* at the same offset (an instruction without code) the lower pc comes first */
        bool block = bi < jc->nblocks &&
                     (ii >= jc->ninsns || jc->blocks[bi].native < jc->insns[ii].native ||
                      (jc->blocks[bi].native == jc->insns[ii].native && jc->blocks[bi].pc <= jc->insns[ii].pc));
        size_t start = block ? jc->blocks[bi].native : jc->insns[ii].native;
        if (block) {
            printf("\n// block @%" PRIu32 " (cost %" PRIu32 ")\n", jc->blocks[bi].pc, jit_block_cost(m, bi));
            bi++;
        } else {
            struct dec_insn in;
            char text[256];
            dec_decode(p, jc->insns[ii].pc, &in);
            text_format_insn(isa, &in, text, sizeof text);
            printf("@%" PRIu32 ": %s\n", jc->insns[ii].pc, text);
            ii++;
        }
        size_t next = cold;
        if (bi < jc->nblocks && jc->blocks[bi].native < next) next = jc->blocks[bi].native;
        if (ii < jc->ninsns && jc->insns[ii].native < next) next = jc->insns[ii].native;
        if (start > next) next = start;
        print_range(&o, start, next);
        at = next;
    }
    if (at < cold) print_range(&o, at, cold);
    if (cold < table) {
        printf("\n// cold stubs: out of gas and step limit exits, then padding\n");
        print_range(&o, cold, table);
    }
    printf("\n// jump table at %06zx: %" PRIu32 " entries, int32 offsets from its start\n", table, jt_len);
    for (uint32_t i = 0; i < jt_len; i++) {
        int32_t off;
        memcpy(&off, jc->code + table + 4 * (size_t)i, 4);
        int64_t t = (int64_t)table + off;
        printf("    %06zx  [%" PRIu32 "] -> %06" PRIx64, table + 4 * (size_t)i, i, (uint64_t)t);
        char what[48];
        if (t >= 0 && describe_target(&o, (uint64_t)t, what, sizeof what)) printf("  // %s", what);
        putchar('\n');
    }
    cpvm_module_free(m);
    return 0;
}

int cmd_disasm(int argc, char **argv)
{
    const char *path = NULL, *isa_name = NULL;
    bool raw = false, native = false, steps = false;
    struct text_disasm_options opt;
    memset(&opt, 0, sizeof opt);
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--raw") == 0) {
            raw = true;
        } else if (strcmp(argv[i], "--native") == 0) {
            native = true;
        } else if (strcmp(argv[i], "--steps") == 0) {
            steps = true;
        } else if (strcmp(argv[i], "--offsets") == 0) {
            opt.show_offsets = true;
        } else if (strcmp(argv[i], "--non-abi") == 0) {
            opt.non_abi_regs = true;
        } else if (cli_option(argc, argv, &i, "--isa", &v, &missing, CMD)) {
            isa_name = v;
        } else if (missing) {
            return 2;
        } else if (!cli_positional(CMD, argv[i], &path, "program")) {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    if (native && (opt.show_offsets || opt.non_abi_regs)) {
        fprintf(stderr, "cpvm disasm: --native does not take --offsets or --non-abi\n");
        return 2;
    }
    if (steps && !native) {
        fprintf(stderr, "cpvm disasm: --steps needs --native\n");
        return 2;
    }
    cpvm_isa isa = CPVM_ISA_LATEST64;
    if (isa_name) {
        if (!raw) {
            fprintf(stderr, "cpvm disasm: --isa needs --raw (a container names its own ISA)\n");
            return 2;
        }
        if (!cli_parse_isa(CMD, isa_name, &isa)) return 2;
    }
    cpvm_program *p = cli_load_program(CMD, path, raw, isa);
    if (!p) return 2;
    if (native) {
        int rc = disasm_native(path, p, raw, steps);
        bool ok = fflush(stdout) == 0 && !ferror(stdout);
        cpvm_program_free(p);
        if (!ok) {
            fprintf(stderr, "cpvm disasm: error writing the output\n");
            return 2;
        }
        return rc;
    }
    char *text = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = text_disassemble(p, &opt, &text, &err);
    cpvm_program_free(p);
    if (s != CPVM_OK) {
        cli_print_error(CMD, path, &err);
        return 2;
    }
    bool ok = fputs(text, stdout) >= 0 && fflush(stdout) == 0;
    free(text);
    if (!ok) {
        fprintf(stderr, "cpvm disasm: error writing the output\n");
        return 2;
    }
    return 0;
}
