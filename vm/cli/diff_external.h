/* Shared by the two halves of `cpvm diff-external`: generated programs
 * (cmd_diff_external.c) and JAM PVM v0.4 vectors (diff_external_vectors.c). */
#ifndef CPVM_CLI_DIFF_EXTERNAL_H
#define CPVM_CLI_DIFF_EXTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "findings.h"
#include "target.h"

struct opts {
    const char *target, *target_cmd, *findings, *out_dir;
    uint64_t seeds, seed_start;
    double time_s;
    int semantics;
    uint32_t batch;
    int64_t max_gas;
    int deadline_ms;
    bool minimize, verbose;
    const char **vectors;
    int nvectors;
};

struct diff {
    struct opts *o;
    struct xp_target t;
    struct xp_findings known;
    const char *profile;
    struct xp_result *tres, *lres;
    uint8_t *mem;
    uint64_t agreed, diverged, errors, unknown;
    char **new_sigs;
    size_t nnew;
};

/* Runs the --vectors paths through the target and cpvm's GP profile. */
int diff_external_vectors(struct diff *d);

#endif
