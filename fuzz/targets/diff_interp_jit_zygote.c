/* Fuzz target diff_interp_jit_zygote: diff_interp_jit with the compiled side in
 * the zygote sandbox. Workers come from the pool, so each input reuses one
 * (scrubbed between instances); besides every check of diff_interp_jit, the
 * sandboxed instance must stay healthy (cpvm_instance_integrity_ok is false
 * once its worker died or lied) and the run must never fail with a sandbox
 * error. Same input framing and seeds as diff_interp_jit. */
#define DIFF_SANDBOX CPVM_SANDBOX_ZYGOTE
#include "diff_interp_jit.c"
