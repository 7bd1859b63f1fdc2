/* Runs one protocol case on cpvm itself, under the case's semantic profile
 * (PROFILES.md): the in-process side of `cpvm diff-external` and the engine
 * behind `cpvm serve`. */
#ifndef CPVM_FUZZ_EXTERNAL_LOCAL_H
#define CPVM_FUZZ_EXTERNAL_LOCAL_H

#include <stddef.h>

#include "proto.h"

/* The largest initial gas a GP case may carry: per-instruction gas is charged
 * by stepping one instruction per run(), so gas bounds the work. */
#define XP_LOCAL_MAX_GP_GAS 10000000

/* GP: indices below this always panic. */
#define XP_GP_RESERVED 0x10000u

/* Fills `res`; its dumps point into `mem` (XP_MAX_MAPPED bytes, caller-owned).
 * Returns false with `err` on a host-side failure (out of memory, a case the
 * profile cannot express); a program cpvm refuses is a result
 * (XP_INVALID_PROGRAM), not a failure. */
bool xp_local_run(const struct xp_case *c, struct xp_result *res, uint8_t *mem, char *err, size_t errcap);

/* The HELLO_OK cpvm answers with. */
void xp_local_hello(struct xp_hello *h);

#endif
