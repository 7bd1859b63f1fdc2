/* Invariants of the full gas cost model (gas.md §5), checked on a generated
 * program by the targets that run it with that model. */
#ifndef CPVM_FUZZ_GAS_CHECK_H
#define CPVM_FUZZ_GAS_CHECK_H

#include "exec.h"

/* For every block of su->prog (exec_fail on a violation):
 *  - the cost is at least 1;
 *  - computing it twice gives the same cost (deterministic), and so does the
 *    model ticking every cycle (the fast paths change nothing), and so does the
 *    plain model of gas_ref.h (the reference's simulator, state by state);
 *  - the interpreter's and the compiler's costs (both computed per block as it
 *    first runs, or on request) are the model's (`compiled` may be NULL);
 *  - the same code copied to another buffer behind `shift` trap bytes costs the
 *    same at the shifted offset (independent of where the code sits). */
/* CPVM_FUZZ_COST_MODEL=naive|full|full:l1|full:l2|full:l3|FILE (a serialized
 * opcode table): the cost model exec_module_config() gives every module, over
 * whatever a target's framing chooses; NULL when unset. A bad value aborts. */
const struct cpvm_cost_model *exec_cost_model_override(void);

void gas_check_full_model(const struct exec_setup *su, const cpvm_module *interp, const cpvm_module *compiled,
                          cpvm_cache_model cache, unsigned shift);

/* Identical whether computed eagerly or lazily: `lazy` is what a fresh instance
 * of `compiled` (the full model with `cache`, costs computed as blocks first
 * run) did; the same program is run again on the same backend charged from a
 * table of every block's cost computed up front, and must do the same (stops,
 * pcs, gas, registers, memory). Call it before anything asks `compiled` for
 * block costs (that computes them). */
void gas_check_lazy_eager(const struct exec_setup *su, const cpvm_module *compiled, const struct exec_outcome *lazy,
                          cpvm_cache_model cache);

#endif
