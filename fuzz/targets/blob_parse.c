/* Fuzz target blob_parse: untrusted bytes into both program parsers, the
 * decoder, the disassembler and module creation.
 *
 * Input framing:
 *   byte 0   mode
 *     bits 0-1  ISA for the raw-program parser (revive_v1 latest32 latest64 jam_v1)
 *     bits 2-3  module page size: 4K 4K 16K 64K
 *     bit 4     module memory model: standard (0) or dynamic (1)
 *     bit 5     module compat: polkavm 0.35 (0) or GP v0.4 (1)
 *     bit 6     parse with CPVM_PARSE_BORROW
 *     bit 7     also run each module briefly (gas 2000, at most 8 run() calls)
 *   bytes 1.. the program: parsed as a `.polkavm` container AND as a raw
 *            program (section-6 payload) of the ISA above
 *
 * Invariants, checked on every program that parses (abort on violation):
 *   - the accessors agree with the input (sizes, bitmask length, ISA);
 *   - at every instruction start the decoder's length is 1 + skip as isa.md
 *     §2 defines it (an independent reimplementation here), and every known
 *     instruction re-encodes (dec_encode) to at most 25 bytes that decode back
 *     to the same operands;
 *   - dec_valid_target() and dec_block_start() agree with a reimplementation
 *     of isa.md §10.2 / §10.7 at every offset (small programs);
 *   - every jump-table entry dec_valid_target() accepts is an instruction start;
 *   - text_format_insn() and text_disassemble() succeed and terminate their text;
 *   - module creation succeeds or fails with a real error code, never crashes;
 *     a created module runs without a host error and gas never grows;
 *   - where it succeeds, a NULL configuration (the defaults) gives the same
 *     memory map as the default configuration, and the same configuration with
 *     one field broken (backend, memory model, sandbox, page size, cost model,
 *     cache, block or opcode table) is refused with the error that field
 *     calls for, and no module.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpvm.h"
#include "describe.h"
#include "common/limits.h"
#include "decode/decode.h"
#include "isa/isa.h"
#include "program/program.h"
#include "text/text.h"

#define FAIL(...)                                              \
    do {                                                       \
        fprintf(stderr, "blob_parse invariant violated: ");    \
        fprintf(stderr, __VA_ARGS__);                          \
        fputc('\n', stderr);                                   \
        abort();                                               \
    } while (0)

/* Checks below that are quadratic-ish stay on small programs. */
#define EXHAUSTIVE_CODE_MAX 8192u

static bool bit(const struct cpvm_program *p, uint64_t k)
{
    return k < p->code_len && ((p->bitmask[k >> 3] >> (k & 7)) & 1);
}

/* isa.md §2: 1 + min(24, n - pc - 1, zeros after pc). */
static unsigned spec_len(const struct cpvm_program *p, uint32_t pc)
{
    unsigned z = 0;
    while (z < 24 && pc + 1 + z < p->code_len && !bit(p, (uint64_t)pc + 1 + z)) z++;
    if (pc + 1 + z >= p->code_len) z = 24; /* zeros continue past the end */
    uint32_t left = p->code_len - pc - 1;
    unsigned skip = z < 24 ? z : 24;
    if (skip > left) skip = left;
    return 1 + skip;
}

/* Previous start within the look-back window min(25, 24 + t mod 8). */
static bool spec_prev(const struct cpvm_program *p, uint32_t t, uint32_t *prev)
{
    unsigned w = 24 + (t & 7);
    if (w > 25) w = 25;
    for (unsigned k = 1; k <= w && k <= t; k++)
        if (bit(p, t - k)) {
            *prev = t - k;
            return true;
        }
    return false;
}

/* isa.md §10.2. */
static bool spec_valid(const struct cpvm_program *p, uint32_t t)
{
    if (!bit(p, t)) return false;
    if (t == 0) return true;
    uint32_t prev;
    if (!spec_prev(p, t, &prev)) return false;
    enum op op = (enum op)p->decode_map[p->code[prev]];
    return op != OP_invalid && (isa_rows[op].flags & TERM);
}

/* isa.md §10.7. */
static bool spec_block_start(const struct cpvm_program *p, uint32_t pc, uint32_t *start)
{
    if (!bit(p, pc)) return false;
    while (pc != 0) {
        uint32_t prev;
        if (!spec_prev(p, pc, &prev)) return false;
        enum op op = (enum op)p->decode_map[p->code[prev]];
        if (op == OP_invalid || (isa_rows[op].flags & TERM)) break;
        pc = prev;
    }
    *start = pc;
    return true;
}

static void check_reencode(const struct cpvm_program *p, const struct dec_insn *in)
{
    if (in->op == OP_invalid) return;
    if (!isa_has(p->isa, (enum op)in->op)) FAIL("decoded %s, which %s lacks", isa_rows[in->op].name, cpvm_isa_name(p->isa));
    uint8_t enc[LIMIT_INSN_MAX_LEN + 8];
    memset(enc, 0xaa, sizeof enc);
    unsigned n = dec_encode(p->isa, in, in->pc, enc);
    if (n == 0 || n > LIMIT_INSN_MAX_LEN)
        FAIL("%s at %u re-encodes to %u bytes", isa_rows[in->op].name, in->pc, n);
    /* A one-instruction program holding exactly the encoding. */
    struct cpvm_program q;
    memset(&q, 0, sizeof q);
    uint8_t bm[4] = {1, 0, 0, 0};
    q.isa = p->isa;
    q.code = enc;
    q.code_len = n;
    q.bitmask = bm;
    memcpy(q.decode_map, p->decode_map, sizeof q.decode_map);
    struct dec_insn re;
    dec_decode(&q, 0, &re);
    /* Offsets are relative: compare them, not the absolute targets. */
    uint32_t off = in->target, re_off = re.target;
    switch ((enum isa_class)isa_rows[in->op].cls) {
    case CLS_R_I_O: case CLS_R_I_I: case CLS_RR_I: case CLS_RR_O: case CLS_O: off -= in->pc; break;
    default: break;
    }
    if (re.op != in->op || re.len != n || re.a != in->a || re.b != in->b || re.d != in->d || re.i1 != in->i1 ||
        re.i2 != in->i2 || re.imm64 != in->imm64 || re_off != off)
        FAIL("%s at %u: re-encoding (%u bytes) decodes to %s a=%u b=%u d=%u i1=%d i2=%d imm64=%llx off=%u, "
             "original a=%u b=%u d=%u i1=%d i2=%d imm64=%llx off=%u",
             isa_rows[in->op].name, in->pc, n, isa_rows[re.op].name, re.a, re.b, re.d, re.i1, re.i2,
             (unsigned long long)re.imm64, re_off, in->a, in->b, in->d, in->i1, in->i2,
             (unsigned long long)in->imm64, off);
}

static void check_run(const cpvm_module *m, const struct cpvm_program *p)
{
    cpvm_instance *inst;
    struct cpvm_error err;
    cpvm_status s = cpvm_instance_new(m, &inst, &err);
    if (s == CPVM_E_NO_MEMORY) return;
    if (s) FAIL("instance creation failed: %s", cpvm_status_message(s));
    uint32_t entry = 0;
    if (!cpvm_program_find_export(p, "main", &entry)) {
        struct cpvm_symbol sym;
        if (cpvm_program_export(p, 0, &sym)) entry = sym.pc;
    }
    cpvm_instance_prepare_call(inst, entry);
    cpvm_instance_set_gas(inst, 2000);
    for (int i = 0; i < 8; i++) {
        int64_t before = cpvm_instance_gas(inst);
        struct cpvm_interrupt intr;
        s = cpvm_instance_run(inst, &intr);
        if (s == CPVM_E_NO_MEMORY) break;
        if (s) FAIL("run failed with host error %s", cpvm_status_message(s));
        int64_t after = cpvm_instance_gas(inst);
        if (after > before || after < 0) FAIL("gas went from %lld to %lld", (long long)before, (long long)after);
        if (intr.exit == CPVM_EXIT_PAGE_FAULT && (intr.fault_address < VM_FAULT_TRAP_BELOW ||
                                                  intr.fault_address % cpvm_module_memory_map(m)->page_size))
            FAIL("bad page fault address 0x%x", intr.fault_address);
        if (intr.exit != CPVM_EXIT_ECALLI) break;
    }
    cpvm_instance_free(inst);
}

/* `cfg` (which created a module for `prog`) with one field broken at a time:
 * each must be refused with its own error, leaving no module. */
static void check_refused_configs(const cpvm_program *prog, const struct cpvm_module_config *cfg)
{
    static const uint8_t short_table[CPVM_COST_TABLE_SIZE - 4];
    static uint8_t version_3[CPVM_COST_TABLE_SIZE];
    version_3[0] = 3;
    static const struct cpvm_block_cost one_block = {0, 1};
    for (unsigned k = 0; k < 10; k++) {
        struct cpvm_module_config c = *cfg;
        cpvm_status want = CPVM_E_INVALID_ARGUMENT;
        switch (k) {
        case 0: c.backend = (cpvm_backend)7; want = CPVM_E_UNSUPPORTED; break;
        case 1: c.memory_model = (cpvm_memory_model)7; break;
        case 2: c.sandbox = (cpvm_sandbox)7; break;
        case 3: c.page_size = 0x3000; want = CPVM_E_BAD_MEMORY_MAP; break;
        case 4: c.cost_model = (struct cpvm_cost_model){.kind = (cpvm_cost_model_kind)7}; break;
        case 5: c.cost_model = (struct cpvm_cost_model){.kind = CPVM_COST_FULL, .cache = (cpvm_cache_model)7}; break;
        case 6: c.cost_model = (struct cpvm_cost_model){.kind = CPVM_COST_BLOCK_TABLE, .count = 1}; break;
        case 7:
            c.cost_model = (struct cpvm_cost_model){.kind = CPVM_COST_BLOCK_TABLE, .blocks = &one_block, .count = SIZE_MAX};
            want = CPVM_E_LIMIT;
            break;
        case 8:
            c.cost_model = (struct cpvm_cost_model){.kind = CPVM_COST_TABLE, .table = short_table,
                                                    .table_len = sizeof short_table};
            break;
        default:
            c.cost_model = (struct cpvm_cost_model){.kind = CPVM_COST_TABLE, .table = version_3,
                                                    .table_len = sizeof version_3};
            break;
        }
        cpvm_module *m = NULL;
        struct cpvm_error err;
        memset(&err, 0, sizeof err);
        cpvm_status s = cpvm_module_new(prog, &c, &m, &err);
        if (s == CPVM_E_NO_MEMORY) continue;
        if (s != want || m || err.code != s)
            FAIL("broken configuration %u: status %s (error code %d), want %s%s", k, cpvm_status_message(s), err.code,
                 cpvm_status_message(want), m ? ", and a module" : "");
    }
}

/* A NULL configuration means the defaults. */
static void check_null_config(const cpvm_program *prog)
{
    cpvm_module *a = NULL, *b = NULL;
    struct cpvm_module_config def;
    cpvm_module_config_default(&def);
    cpvm_status sa = cpvm_module_new(prog, NULL, &a, NULL), sb = cpvm_module_new(prog, &def, &b, NULL);
    if (sa == CPVM_OK && sb == CPVM_OK &&
        memcmp(cpvm_module_memory_map(a), cpvm_module_memory_map(b), sizeof(struct cpvm_memory_map)) != 0)
        FAIL("a NULL module configuration is not the default one");
    if (sa != sb && sa != CPVM_E_NO_MEMORY && sb != CPVM_E_NO_MEMORY)
        FAIL("module creation: NULL configuration %s, default configuration %s", cpvm_status_message(sa),
             cpvm_status_message(sb));
    cpvm_module_free(a);
    cpvm_module_free(b);
}

static void check_program(const cpvm_program *prog, const uint8_t *input, size_t len, bool raw, cpvm_isa isa,
                          uint8_t mode)
{
    const struct cpvm_program *p = prog;
    struct cpvm_program_info info;
    cpvm_program_get_info(prog, &info);
    if (raw && info.isa != isa) FAIL("raw program has ISA %d, asked for %d", info.isa, isa);
    if (!raw && info.isa != (cpvm_isa)input[4]) FAIL("container ISA %d, version byte %u", info.isa, input[4]);
    if (info.container_size != (raw ? 0 : len)) FAIL("container size %zu for %zu input bytes", info.container_size, len);
    if (info.code.len != p->code_len || info.bitmask.len != (p->code_len + 7u) / 8u) FAIL("code/bitmask lengths");
    if (info.code.len > LIMIT_CODE_SIZE) FAIL("code of %zu bytes passed the limit", info.code.len);
    if (info.ro_data.len > info.ro_data_size || info.rw_data.len > info.rw_data_size) FAIL("data exceeds its size");
    if (raw && (info.code_section.ptr == NULL || info.code_section.len != len)) FAIL("raw code section is not the input");

    /* Instructions. */
    char text[256];
    for (uint32_t pc = 0; pc < p->code_len; pc++) {
        if (!dec_bit(p, pc)) continue;
        struct dec_insn in;
        dec_decode(p, pc, &in);
        if (in.pc != pc || in.len < 1 || in.len > LIMIT_INSN_MAX_LEN || (uint64_t)pc + in.len > p->code_len)
            FAIL("instruction at %u has length %u (code %u)", pc, in.len, p->code_len);
        if (in.len != spec_len(p, pc)) FAIL("instruction at %u: length %u, isa.md §2 says %u", pc, in.len, spec_len(p, pc));
        if (in.a > 12 || in.b > 12 || in.d > 12) FAIL("register field out of range at %u", pc);
        check_reencode(p, &in);
        size_t n = text_format_insn(p->isa, &in, text, sizeof text);
        if (n >= sizeof text || text[n] != 0 || strlen(text) != n) FAIL("text_format_insn at %u", pc);
    }
    if (p->code_len <= EXHAUSTIVE_CODE_MAX) {
        for (uint32_t t = 0; t <= p->code_len + 1; t++) {
            if (dec_valid_target(p, t) != spec_valid(p, t))
                FAIL("dec_valid_target(%u) = %d, isa.md §10.2 says %d", t, dec_valid_target(p, t), spec_valid(p, t));
            uint32_t s1 = 0, s2 = 0;
            bool b1 = dec_block_start(p, t, &s1), b2 = spec_block_start(p, t, &s2);
            if (b1 != b2 || (b1 && s1 != s2))
                FAIL("dec_block_start(%u) = %d/%u, isa.md §10.7 says %d/%u", t, b1, s1, b2, s2);
        }
    }

    /* Jump table. */
    uint32_t jt = info.jump_table_count;
    if (jt > LIMIT_JUMP_TABLE) FAIL("jump table of %u entries", jt);
    for (uint32_t i = 0; i < jt && i < 65536; i++) {
        uint32_t t;
        if (!cpvm_program_jump_table_entry(prog, i, &t)) FAIL("jump table entry %u of %u missing", i, jt);
        if (dec_valid_target(p, t) && !(t < p->code_len && dec_bit(p, t)))
            FAIL("jump table entry %u = %u is valid but not an instruction start", i, t);
    }
    uint32_t dummy;
    if (cpvm_program_jump_table_entry(prog, jt, &dummy)) FAIL("jump table entry past the end");

    /* Symbols: every accessor stays inside the program. */
    for (uint32_t i = 0; i < info.export_count; i++) {
        struct cpvm_symbol sym;
        if (!cpvm_program_export(prog, i, &sym)) FAIL("export %u of %u missing", i, info.export_count);
    }
    for (uint32_t i = 0; i < info.import_count; i++) {
        struct cpvm_symbol sym;
        if (!cpvm_program_import(prog, i, &sym)) FAIL("import %u of %u missing", i, info.import_count);
        if (sym.name_len && !sym.name) FAIL("import %u has a length but no name", i);
    }

    /* Disassembly. */
    if (p->code_len <= (1u << 16)) {
        char *out = NULL;
        struct cpvm_error err;
        struct text_disasm_options opt = {.show_offsets = (mode & 1) != 0, .non_abi_regs = (mode & 2) != 0};
        cpvm_status s = text_disassemble(p, &opt, &out, &err);
        if (s != CPVM_OK && s != CPVM_E_NO_MEMORY) FAIL("text_disassemble failed: %s", cpvm_status_message(s));
        if (s == CPVM_OK && (!out || strlen(out) == 0)) FAIL("text_disassemble returned no text");
        free(out);
    }

    /* Module creation. */
    static const uint32_t pages[4] = {0x1000, 0x1000, 0x4000, 0x10000};
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.page_size = pages[(mode >> 2) & 3];
    cfg.memory_model = (mode & 0x10) ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD;
    cfg.compat = (mode & 0x20) ? CPVM_COMPAT_GP_V04 : CPVM_COMPAT_POLKAVM_035;
    cfg.gas_metering = true;
    cpvm_module *m = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = cpvm_module_new(prog, &cfg, &m, &err);
    if (s == CPVM_OK) {
        if (!m) FAIL("module creation succeeded without a module");
        if (info.isa == CPVM_ISA_JAM_V1 && dec_validate_jam(p, NULL) != CPVM_OK) FAIL("JamV1 module skipped validation");
        if (mode & 0x80) check_run(m, p);
        cpvm_module_free(m);
        check_refused_configs(prog, &cfg);
        check_null_config(prog);
    } else {
        if (m) FAIL("module creation failed but returned a module");
        if ((unsigned)s >= CPVM_E_COUNT || err.code != s) FAIL("module creation: status %d, error code %d", s, err.code);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    const uint8_t *bytes = data + 1;
    size_t len = size - 1;
    unsigned flags = (mode & 0x40) ? CPVM_PARSE_BORROW : 0;
    cpvm_isa isa = (cpvm_isa)(mode & 3);

    for (int raw = 0; raw < 2; raw++) {
        cpvm_program *prog = NULL;
        struct cpvm_error err;
        memset(&err, 0, sizeof err);
        cpvm_status s = raw ? cpvm_program_parse_raw(bytes, len, isa, flags, &prog, &err)
                            : cpvm_program_parse(bytes, len, flags, &prog, &err);
        if (s == CPVM_OK) {
            if (!prog) FAIL("parse succeeded without a program");
            check_program(prog, bytes, len, raw, isa, mode);
            cpvm_program_free(prog);
        } else {
            if (prog) FAIL("parse failed but returned a program");
            if ((unsigned)s >= CPVM_E_COUNT || err.code != s) FAIL("parse: status %d, error code %d", s, err.code);
            if (err.offset > len) FAIL("parse error offset %llu past the input (%zu)", (unsigned long long)err.offset, len);
            if (memchr(err.detail, 0, sizeof err.detail) == NULL) FAIL("error detail not terminated");
        }
    }
    return 0;
}

static const char *const page_names[4] = {"4K", "4K", "16K", "64K"};

void fuzz_describe(const uint8_t *data, size_t size, const struct describe_opts *o)
{
    if (describe_too_short(size, 1, o)) return;
    uint8_t m = data[0];
    cpvm_isa isa = (cpvm_isa)(m & 3);
    fprintf(o->out, "input: mode 0x%02x: raw ISA %s, page %s, %s memory, compat %s%s%s; %zu program bytes\n", m,
            cpvm_isa_name(isa), page_names[(m >> 2) & 3], (m & 16) ? "dynamic" : "standard",
            (m & 32) ? "gp-v0.4" : "polkavm-0.35", (m & 64) ? ", borrowed" : "", (m & 128) ? ", runs each module" : "",
            size - 1);
    struct describe_opts quiet = *o;
    quiet.program_out = NULL; /* the same bytes twice: written once, as the container */
    describe_parsed("as a .polkavm container", data + 1, size - 1, false, isa, o);
    describe_parsed("as a raw program", data + 1, size - 1, true, isa, &quiet);
}
