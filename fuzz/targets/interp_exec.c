/* Fuzz target interp_exec: a generated valid program runs on the interpreter
 * under gas and step limits, with host calls and page faults answered
 * deterministically from the input; the run's invariants are checked, and a
 * second fresh instance must reproduce it exactly. The setup, the host and
 * the run loop are the shared harness (fuzz/harness/exec.h).
 *
 * Input framing:
 *   byte 0   run configuration
 *     bit 0     dynamic memory: the host maps the program's ro/rw/stack/aux
 *               regions itself and answers page faults by mapping pages
 *     bit 1     compat GP v0.4 instead of PolkaVM 0.35
 *     bit 2     no gas metering (only when the program has no memset; a step
 *               budget then bounds the run)
 *     bit 3     differential: also run a step-tracing instance stopping every
 *               1, 2, 3 or 17 instructions (bits 4-5) and require the same
 *               outcome once the step stops are filtered out (metered runs)
 *     bit 6     the host refills the gas once after out-of-gas
 *     bit 7     after every other host call the host sets the next pc itself
 *               (a mid-block re-entry, charged again)
 *   byte 1   host seed: host call answers (a0, a1; writes into rw data,
 *            into read-only data with standard memory; unmapping a page with
 *            dynamic memory) and the page fault policy (map read-write or
 *            read-only first)
 *   bytes 2.. generator input (gen.h), ISA and memory layout from the input
 *
 * Invariants (abort on violation):
 *   - module and instance creation succeed (generated JamV1 code validates);
 *   - every run() returns CPVM_OK (CPVM_E_NO_MEMORY ends the case quietly);
 *   - the exit kind is one the configuration allows; its pc is <= code length;
 *     halt/panic leave no next pc, ecalli a later one, page fault / out of gas
 *     / step the same pc;
 *   - with metering, gas never grows across run() and never goes negative;
 *     without it, gas never changes;
 *   - page faults only with dynamic memory, page-aligned, >= 0x4000, and on a
 *     page the host has not mapped writable;
 *   - standard memory: ro data keeps its initial contents (plus the host's
 *     writes), aux stays zero, the heap stays within max_heap_size, and the
 *     bytes around the rw/heap and stack ends are unmapped;
 *   - reset_memory restores the initial memory (standard) or unmaps every
 *     page (dynamic) and empties the heap;
 *   - determinism: the same instance after cpvm_instance_reset gives the same interrupt sequence,
 *     registers, gas, next pc, heap size and memory (every mapped page);
 *   - differential (bit 3): the stepping instance agrees once step stops are
 *     filtered out.
 */
#include <stdint.h>
#include <string.h>

#include "cpvm.h"
#include "exec.h"
#include "describe.h"

#define STEP_DIFF_MAX_GAS 20000 /* keeps the one-step-per-run() instance cheap */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct exec_setup su;
    if (!exec_setup_init(&su, "interp_exec", data, size)) return 0;
    const struct gen_program *g = &su.g;
    struct cpvm_module_config mc;
    exec_module_config(&su, CPVM_BACKEND_INTERPRETER, &mc);
    struct cpvm_error err;
    cpvm_module *mod = NULL;
    cpvm_status s = cpvm_module_new(su.prog, &mc, &mod, &err);
    if (s == CPVM_E_NO_MEMORY) goto out;
    if (s) exec_fail(&su, "module creation failed for a generated %s program: %s", cpvm_isa_name(g->isa), err.detail);
    if (cpvm_module_program(mod) != su.prog) exec_fail(&su, "the module does not name its program");
    const struct cpvm_memory_map *mm = cpvm_module_memory_map(mod);
    if (memcmp(mm, &g->map, sizeof *mm) != 0) exec_fail(&su, "module memory map differs from the generator's");

    /* The second run is on the first's instance after cpvm_instance_reset:
     * nothing of the first may show (exec.h). */
    struct exec_outcome a, b;
    cpvm_instance *inst = NULL;
    exec_run_reused(&su, mod, &inst, su.step_limit, true, &a);
    if (inst) exec_run_reused(&su, mod, &inst, su.step_limit, false, &b);
    else exec_run_instance(&su, mod, su.step_limit, false, &b);
    cpvm_instance_free(inst);
    exec_compare(&su, &a, &b, false, "determinism (fresh vs reset instance)");

    if ((su.cfg & 8) && su.metered && g->gas * (su.refill ? 2 : 1) <= STEP_DIFF_MAX_GAS && a.complete) {
        static const uint64_t limits[4] = {1, 2, 3, 17};
        struct cpvm_module_config sc = mc;
        sc.step_tracing = true;
        cpvm_module *smod = NULL;
        if (cpvm_module_new(su.prog, &sc, &smod, &err) == CPVM_OK) {
            struct exec_outcome c;
            exec_run_instance(&su, smod, limits[(su.cfg >> 4) & 3], false, &c);
            if (c.complete) exec_compare(&su, &a, &c, true, "stepping vs fast loop");
            exec_outcome_free(&c);
            cpvm_module_free(smod);
        }
    }
    exec_outcome_free(&a);
    exec_outcome_free(&b);
    cpvm_module_free(mod);
out:
    exec_setup_free(&su);
    return 0;
}

void fuzz_describe(const uint8_t *data, size_t size, const struct describe_opts *o)
{
    static const unsigned step_limits[4] = {1, 2, 3, 17};
    char bits[64] = "";
    if (size > 0 && (data[0] & 8))
        snprintf(bits, sizeof bits, ", differential stepping every %u", step_limits[(data[0] >> 4) & 3]);
    describe_exec_framing(data, size, bits, o);
    struct gen_config cfg = GEN_CONFIG_INTERP_EXEC;
    describe_generated(size > 2 ? data + 2 : NULL, size > 2 ? size - 2 : 0, &cfg, o);
}
