/* cpvm bench PROGRAM [options] — times a program's execution. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "util.h"

static const char *const CMD = "bench";

#define DEFAULT_GAS 1000000000LL

static void usage(FILE *out)
{
    fputs("usage: cpvm bench PROGRAM [options]\n"
          "  --raw                 PROGRAM is a raw Graypaper program (dynamic memory)\n"
          "  --isa NAME            with --raw: latest64 (default), jamv1, latest32, revive_v1\n"
          "  --entry NAME|PC       export name or pc (default: first export, else 0)\n"
          "  --gas N               starting gas (default 1000000000; naive cost model)\n"
          "  --reg NAME=VALUE      set a register before running (repeatable)\n"
          "  --iterations N        runs (default 1); the best time is reported\n"
          "Runs like 'cpvm run' with its defaults (host calls continue with a0 unchanged).\n",
          out);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cmd_bench(int argc, char **argv)
{
    const char *path = NULL, *isa_name = NULL, *entry = NULL;
    bool raw = false;
    cpvm_backend backend = CPVM_BACKEND_INTERPRETER;
    int64_t gas = DEFAULT_GAS;
    uint64_t iterations = 1;
    unsigned *reg_idx = calloc((size_t)argc, sizeof *reg_idx);
    uint64_t *reg_val = calloc((size_t)argc, sizeof *reg_val);
    size_t nregs = 0;
    int rc = 2;
    cpvm_program *prog = NULL;
    cpvm_module *mod = NULL;
    cpvm_instance *inst = NULL;
    if (!reg_idx || !reg_val) {
        fprintf(stderr, "cpvm bench: out of memory\n");
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *a = argv[i];
        bool missing = false;
#define OPT(name) cli_option(argc, argv, &i, name, &v, &missing, CMD)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--raw") == 0) {
            raw = true;
        } else if (OPT("--isa")) {
            isa_name = v;
        } else if (OPT("--entry")) {
            entry = v;
        } else if (OPT("--gas")) {
            if (!cli_parse_i64(v, &gas)) {
                fprintf(stderr, "cpvm bench: --gas: bad value '%s'\n", v);
                goto out;
            }
        } else if (OPT("--reg")) {
            if (!cli_parse_reg_assignment(CMD, v, &reg_idx[nregs], &reg_val[nregs])) goto out;
            nregs++;
        } else if (OPT("--iterations")) {
            if (!cli_parse_u64(v, &iterations) || iterations == 0) {
                fprintf(stderr, "cpvm bench: --iterations: expected a count of at least 1, got '%s'\n", v);
                goto out;
            }
        } else if (OPT("--backend")) {
            if (!cli_parse_backend(CMD, v, &backend)) goto out;
        } else if (missing) {
            goto out;
        } else if (!cli_positional(CMD, a, &path, "program")) {
            usage(stderr);
            goto out;
        }
#undef OPT
    }
    if (!path) {
        fprintf(stderr, "cpvm bench: no program given\n");
        usage(stderr);
        goto out;
    }
    cpvm_isa isa = CPVM_ISA_LATEST64;
    if (isa_name && !raw) {
        fprintf(stderr, "cpvm bench: --isa needs --raw (a container names its own ISA)\n");
        goto out;
    }
    if (isa_name && !cli_parse_isa(CMD, isa_name, &isa)) goto out;
    prog = cli_load_program(CMD, path, raw, isa);
    if (!prog) goto out;
    mod = cli_make_module(CMD, path, prog, backend, raw ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD,
                          CPVM_COMPAT_POLKAVM_035, false);
    if (!mod) goto out;
    uint32_t pc;
    if (!cli_resolve_entry(CMD, prog, entry, &pc)) goto out;

    double best = -1.0, total = 0.0;
    uint64_t insns = 0, hostcalls = 0;
    struct cpvm_interrupt intr;
    memset(&intr, 0, sizeof intr);
    int64_t gas_left = 0;
    for (uint64_t it = 0; it < iterations; it++) {
        struct cpvm_error err;
        memset(&err, 0, sizeof err);
        if (cpvm_instance_new(mod, &inst, &err) != CPVM_OK || !inst) {
            inst = NULL;
            cli_print_error(CMD, path, &err);
            goto out;
        }
        cpvm_instance_prepare_call(inst, pc);
        for (size_t r = 0; r < nregs; r++) cpvm_instance_set_reg(inst, reg_idx[r], reg_val[r]);
        cpvm_instance_set_gas(inst, gas);
        hostcalls = 0;
        double t0 = now_seconds();
        for (;;) {
            cpvm_status st = cpvm_instance_run(inst, &intr);
            if (st != CPVM_OK) {
                fprintf(stderr, "cpvm bench: %s: run failed: %s\n", path, cpvm_status_message(st));
                goto out;
            }
            if (intr.exit != CPVM_EXIT_ECALLI) break;
            hostcalls++;
        }
        double dt = now_seconds() - t0;
        total += dt;
        if (best < 0 || dt < best) best = dt;
        insns = cpvm_instance_insn_count(inst);
        gas_left = cpvm_instance_gas(inst);
        cpvm_instance_free(inst);
        inst = NULL;
    }

    printf("program:       %s\n", path);
    printf("status:        %s (pc %" PRIu32 ")\n", cpvm_exit_name(intr.exit), intr.pc);
    printf("instructions:  %" PRIu64 "\n", insns);
    printf("host calls:    %" PRIu64 "\n", hostcalls);
    printf("gas left:      %" PRId64 "\n", gas_left);
    printf("iterations:    %" PRIu64 "\n", iterations);
    printf("best time:     %.9f s\n", best);
    printf("mean time:     %.9f s\n", total / (double)iterations);
    if (best > 0)
        printf("instructions/s: %.0f\n", (double)insns / best);
    else
        printf("instructions/s: n/a (time below clock resolution)\n");
    rc = 0;
out:
    if (inst) cpvm_instance_free(inst);
    if (mod) cpvm_module_free(mod);
    if (prog) cpvm_program_free(prog);
    free(reg_idx);
    free(reg_val);
    return rc;
}
