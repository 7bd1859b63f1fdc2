/* cpvm info's gas views (info_gas.c). */
#ifndef CPVM_CLI_INFO_GAS_H
#define CPVM_CLI_INFO_GAS_H

#include <stdint.h>

#include "cpvm.h"

/* Prints every block's cost under `model`; returns an exit code. */
int info_gas_costs(const char *cmd, const cpvm_program *p, const struct cpvm_cost_model *model);
/* Prints the full model's schedule of the block at `pc` (loads of `latency` cycles). */
int info_gas_trace(const char *cmd, const cpvm_program *p, int8_t latency, uint32_t pc);

#endif
