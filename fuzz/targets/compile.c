/* Fuzz target compile: untrusted bytes through the parser into the x86-64
 * compiler (recompiler issue: "raw bytes -> parse -> compile; never crashes,
 * output bounded, compile time linear").
 *
 * Input framing:
 *   byte 0   mode
 *     bits 0-1  ISA for the raw-program parser (revive_v1 latest32 latest64 jam_v1)
 *     bit 2     parse as a `.polkavm` container instead of a raw program
 *     bit 3     gas metering
 *     bit 4     asynchronous gas metering (with bit 3)
 *     bit 5     step tracing
 *     bit 6     compat GP v0.4
 *     bit 7     dynamic memory
 *   bytes 1.. the program
 *
 * Invariants (abort on violation):
 *   - module creation succeeds or fails with a real error code, never crashes;
 *   - the native code is at most MAX_NATIVE_PER_BYTE bytes per guest code byte
 *     plus the stubs and 4 bytes per jump table entry (the linear bound);
 *   - the pc <-> native tables are sorted by both keys, inside the code, and
 *     every block head is an instruction start the decoder agrees on;
 *   - every jump table entry points inside the code;
 *   - with gas metering or step tracing, the module runs briefly without a host
 *     error and leaves everything outside its window untouched.
 * Compile time is linear by construction (one pass, bounded work per
 * instruction); libFuzzer's -timeout catches any input that is not.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpvm.h"
#include "describe.h"
#include "decode/decode.h"
#include "jit/jit.h"

#define FAIL(...)                                           \
    do {                                                    \
        fprintf(stderr, "compile invariant violated: ");    \
        fprintf(stderr, __VA_ARGS__);                       \
        fputc('\n', stderr);                                \
        abort();                                            \
    } while (0)

#define MAX_NATIVE_PER_BYTE 320u /* compile.c: MAX_NATIVE_PER_INSN + a cold stub */

static void check_tables(const struct cpvm_program *p, const struct jit_code *jc)
{
    for (size_t i = 0; i < jc->ninsns; i++) {
        const struct jit_pcmap *m = &jc->insns[i];
        if (m->native >= jc->cold_off) FAIL("instruction %zu native 0x%x past the blocks", i, m->native);
        if (m->pc >= p->code_len || !dec_bit(p, m->pc)) FAIL("instruction %zu at pc %u is not a start", i, m->pc);
        /* pcs strictly increase; natives may repeat (unlikely emits nothing) */
        if (i && (m->pc <= jc->insns[i - 1].pc || m->native < jc->insns[i - 1].native))
            FAIL("instruction table not sorted at %zu: pc %u after %u, native 0x%x after 0x%x", i, m->pc,
                 jc->insns[i - 1].pc, m->native, jc->insns[i - 1].native);
    }
    for (size_t i = 0; i < jc->nblocks; i++) {
        const struct jit_block *b = &jc->blocks[i];
        if (b->native >= jc->cold_off) FAIL("block %zu native past the blocks", i);
        if (!dec_bit(p, b->pc)) FAIL("block at pc %u is not an instruction start", b->pc);
        if (i && (b->pc <= jc->blocks[i - 1].pc || b->native < jc->blocks[i - 1].native))
            FAIL("block table not sorted at %zu", i);
    }
    uint32_t jt_len = program_jump_table_len(p);
    if ((size_t)jc->table_off + (size_t)jt_len * 4 != jc->len) FAIL("jump table does not end the code");
    for (uint32_t i = 0; i < jt_len; i++) {
        int32_t off;
        memcpy(&off, jc->code + jc->table_off + 4 * (size_t)i, 4);
        int64_t t = (int64_t)jc->table_off + off;
        if (t < 0 || t >= (int64_t)jc->cold_off) FAIL("jump table entry %u points outside the code (%lld)", i, (long long)t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t mode = data[0];
    cpvm_program *p = NULL;
    struct cpvm_error err;
    cpvm_status s = (mode & 4) ? cpvm_program_parse(data + 1, size - 1, CPVM_PARSE_BORROW, &p, &err)
                               : cpvm_program_parse_raw(data + 1, size - 1, (cpvm_isa)(mode & 3), CPVM_PARSE_BORROW,
                                                        &p, &err);
    if (s) return 0;
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.backend = CPVM_BACKEND_COMPILER;
    cfg.sandbox = CPVM_SANDBOX_NONE; /* compiles only: no worker needed */
    cfg.gas_metering = (mode & 8) != 0;
    cfg.gas_async = (mode & 16) != 0;
    cfg.step_tracing = (mode & 32) != 0;
    cfg.compat = (mode & 64) ? CPVM_COMPAT_GP_V04 : CPVM_COMPAT_POLKAVM_035;
    cfg.memory_model = (mode & 128) ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD;
    cpvm_module *m = NULL;
    s = cpvm_module_new(p, &cfg, &m, &err);
    if (s) {
        if (s >= CPVM_E_COUNT || err.code != s) FAIL("module creation failed with a bad status %d", (int)s);
        cpvm_program_free(p);
        return 0;
    }
    if (cpvm_module_backend(m, NULL) == CPVM_BACKEND_COMPILER) {
        const struct jit_code *jc = m->jit;
        uint64_t bound = 4096 + (uint64_t)p->code_len * MAX_NATIVE_PER_BYTE + (uint64_t)program_jump_table_len(p) * 4;
        if (jc->len > bound) FAIL("%zu native bytes for %u code bytes (bound %llu)", jc->len, p->code_len,
                                  (unsigned long long)bound);
        check_tables(p, jc);
    }
    /* a short run (only when gas or steps bound it): never a host error, and
     * nothing outside the window touched */
    cpvm_instance *in = NULL;
    if ((cfg.gas_metering || cfg.step_tracing) && cpvm_instance_new(m, &in, &err) == CPVM_OK) {
        struct cpvm_interrupt out;
        cpvm_instance_prepare_call(in, 0);
        cpvm_instance_set_gas(in, 2000);
        if (cfg.step_tracing) cpvm_instance_set_step_limit(in, 500);
        for (int i = 0; i < 8; i++) {
            s = cpvm_instance_run(in, &out);
            if (s == CPVM_E_NO_PC) break;
            if (s) FAIL("run: host error %s", cpvm_status_message(s));
            if (!cpvm_instance_integrity_ok(in)) FAIL("integrity check failed after a run");
            if (out.exit == CPVM_EXIT_HALT || out.exit == CPVM_EXIT_PANIC) break;
            if (out.exit == CPVM_EXIT_OUT_OF_GAS && cpvm_instance_gas(in) < 0) break;
            if (out.exit == CPVM_EXIT_STEP) cpvm_instance_set_step_limit(in, 500);
            if (out.exit == CPVM_EXIT_PAGE_FAULT) break;
        }
        cpvm_instance_free(in);
    }
    cpvm_module_free(m);
    cpvm_program_free(p);
    return 0;
}

void fuzz_describe(const uint8_t *data, size_t size, const struct describe_opts *o)
{
    if (describe_too_short(size, 1, o)) return;
    uint8_t m = data[0];
    cpvm_isa isa = (cpvm_isa)(m & 3);
    fprintf(o->out, "input: mode 0x%02x: %s%s%s%s%s, compat %s, %s memory; %zu program bytes\n", m,
            (m & 4) ? "a .polkavm container" : "a raw program, ISA ", (m & 4) ? "" : cpvm_isa_name(isa),
            (m & 8) ? ", gas metering" : ", no gas metering", (m & 24) == 24 ? " (asynchronous)" : "",
            (m & 32) ? ", step tracing" : "", (m & 64) ? "gp-v0.4" : "polkavm-0.35", (m & 128) ? "dynamic" : "standard",
            size - 1);
    describe_parsed((m & 4) ? "container" : "raw program", data + 1, size - 1, !(m & 4), isa, o);
}
