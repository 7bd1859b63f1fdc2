/* The full gas cost model (gas.md §5) the plain way, for checking vm/gas/full.c:
 * the reference's simulator ported state by state (a state per ROB slot, a tick
 * per cycle but for the reference's own fast-forward, no shortcut), with its own
 * per-instruction cost table written from the reference's dispatch functions. Slow on purpose; test
 * and fuzz-harness code only, never linked into the library. */
#ifndef CPVM_FUZZ_GAS_REF_H
#define CPVM_FUZZ_GAS_REF_H

#include <stdint.h>

struct cpvm_program;

/* The cost of the block at `start` (a block start of `p`) with the given load
 * latency (4, 25, 37); `cycles` (may be NULL) gets the count before the slack. */
uint32_t gas_ref_block_cost(const struct cpvm_program *p, uint32_t start, int load_latency, uint32_t *cycles);

#endif
