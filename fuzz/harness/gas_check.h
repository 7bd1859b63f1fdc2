/* Invariants of the full gas cost model (gas.md §5), checked on a generated
 * program by the targets that run it with that model. */
#ifndef CPVM_FUZZ_GAS_CHECK_H
#define CPVM_FUZZ_GAS_CHECK_H

#include "exec.h"

/* For every block of su->prog (exec_fail on a violation):
 *  - the cost is at least 1;
 *  - computing it twice gives the same cost (deterministic);
 *  - the interpreter's (lazy, per block) and the compiler's (eager, at compile
 *    time) costs are the model's (`compiled` may be NULL);
 *  - the same code copied to another buffer behind `shift` trap bytes costs the
 *    same at the shifted offset (independent of where the code sits). */
void gas_check_full_model(const struct exec_setup *su, const cpvm_module *interp, const cpvm_module *compiled,
                          cpvm_cache_model cache, unsigned shift);

#endif
