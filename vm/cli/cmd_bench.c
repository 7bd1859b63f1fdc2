/* cpvm bench PROGRAM [options] — times a program's execution.
 * cpvm bench --sandbox-costs [options] — what the zygote sandbox costs: instance
 * start from a cold and a warm worker pool, host call round trips, and memory.
 * cpvm bench --compile PROGRAM [options] — module creation with the compiler. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "text/text.h"
#include "util.h"

static const char *const CMD = "bench";

#define DEFAULT_GAS 1000000000LL

static void usage(FILE *out)
{
    fputs("usage: cpvm bench PROGRAM [options]\n"
          "       cpvm bench --sandbox-costs [--instances N] [--hostcalls N] [--workers K]\n"
          "       cpvm bench --compile PROGRAM [--iterations N] [--gas-metering none|sync|async]\n"
          "                            [--cost-model naive|full[:l1|l2|l3]|FILE]\n"
          "  --raw                 PROGRAM is a raw Graypaper program (dynamic memory)\n"
          "  --isa NAME            with --raw: latest64 (default), jamv1, latest32, revive_v1\n"
          "  --entry NAME|PC       export name or pc (default: first export, else 0)\n"
          "  --gas N               starting gas (default 1000000000)\n"
          CLI_COST_MODEL_USAGE
          "  --reg NAME=VALUE      set a register before running (repeatable)\n"
          "  --iterations N        runs (default 1); the best time is reported\n"
          "  --backend NAME        interpreter (default) or compiler (x86-64 native code)\n"
          CLI_SANDBOX_USAGE
          "Runs like 'cpvm run' with its defaults (host calls continue with a0 unchanged).\n"
          "Only run() calls are timed, not making the instance (see --sandbox-costs).\n"
          "\n"
          "--sandbox-costs measures the zygote sandbox with built-in programs, next to the\n"
          "compiler unsandboxed in this process (--sandbox none) and the interpreter:\n"
          "  instance start: cpvm_instance_new, the first run() and cpvm_instance_free of a\n"
          "    small program, median and p90 over N instances (--instances, default 200),\n"
          "    from a cold pool (size 0: a worker spawned for every instance) and from a\n"
          "    warm one (K workers prewarmed);\n"
          "  host calls: a guest loop of N ecalli (--hostcalls, default 100000), each a\n"
          "    return to the host and a run() back: run() calls per second, mean round trip;\n"
          "  memory (cpvm_sandbox_stats): per idle worker with K prewarmed (--workers,\n"
          "    default 4), and per busy instance (stopped at a host call).\n"
          "\n"
          "--compile times module creation with the compiler: cpvm_program_parse and\n"
          "cpvm_module_new (no instance), best and median of N iterations (default 10).\n",
          out);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- --sandbox-costs ------------------------------------------------------ */

#define COSTS_GAS 1000000000000000LL

/* Stops at once. */
static const char SRC_SMALL[] = "%isa = latest64\n"
                                "pub @main:\n"
                                "    a0 = 1\n"
                                "    ret\n";
/* a1 host calls (a1 >= 1, set by the host), then halts. */
static const char SRC_HOSTCALLS[] = "%isa = latest64\n"
                                    "pub @main:\n"
                                    "    ecalli 0\n"
                                    "    a1 = a1 - 1\n"
                                    "    jump @main if a1 != 0\n"
                                    "    ret\n";
/* Writes one byte into each of a1 pages from a0 (set by the host), then stops
 * at a host call. */
static const char SRC_TOUCH[] = "%isa = latest64\n"
                                "%rw_data_size = 1048576\n"
                                "pub @main:\n"
                                "    u8 [a0] = a1\n"
                                "    a0 = a0 + 4096\n"
                                "    a1 = a1 - 1\n"
                                "    jump @main if a1 != 0\n"
                                "    ecalli 1\n"
                                "    ret\n";
#define TOUCH_PAGES 256u

static double now_us(void)
{
    return now_seconds() * 1e6;
}

static cpvm_program *costs_program(const char *name, const char *src)
{
    uint8_t *blob = NULL;
    size_t len = 0;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_program *p = NULL;
    cpvm_status s = text_assemble(src, strlen(src), CPVM_ISA_LATEST64, false, &blob, &len, &err);
    if (s == CPVM_OK) {
        memset(&err, 0, sizeof err);
        s = cpvm_program_parse(blob, len, 0, &p, &err);
    }
    free(blob);
    if (s != CPVM_OK || !p) {
        if (!err.code) err.code = s ? s : CPVM_E_INVALID_ARGUMENT;
        cli_print_error(CMD, name, &err);
        return NULL;
    }
    return p;
}

/* The three ways to run compiled code or not. */
enum costs_kind { K_ZYGOTE, K_NONE, K_INTERP, K_COUNT };
static const char *const kind_name[K_COUNT] = {
    "compiler, zygote sandbox",
    "compiler, unsandboxed (none)",
    "interpreter",
};

/* The module for `kind`, or NULL with *why set when this machine cannot have it
 * (a fallback is not measured under the wrong name). */
static cpvm_module *costs_module(const cpvm_program *p, enum costs_kind kind, const char **why)
{
    struct cpvm_module_config cfg;
    cli_module_config(&cfg, kind == K_INTERP ? CPVM_BACKEND_INTERPRETER : CPVM_BACKEND_COMPILER,
                      kind == K_NONE ? CPVM_SANDBOX_NONE : CPVM_SANDBOX_ZYGOTE, CPVM_MEMORY_STANDARD,
                      CPVM_COMPAT_POLKAVM_035, false);
    cpvm_module *m = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    if (cpvm_module_new(p, &cfg, &m, &err) != CPVM_OK || !m) {
        *why = cpvm_status_message(err.code);
        return NULL;
    }
    const char *note = NULL;
    bool native = cpvm_module_backend(m, &note) == CPVM_BACKEND_COMPILER;
    bool zygote = cpvm_module_sandbox(m) == CPVM_SANDBOX_ZYGOTE;
    if ((kind != K_INTERP && !native) || zygote != (kind == K_ZYGOTE)) {
        *why = note ? note : "not available here";
        cpvm_module_free(m);
        return NULL;
    }
    return m;
}

static bool costs_new(const cpvm_module *m, cpvm_instance **out)
{
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    if (cpvm_instance_new(m, out, &err) != CPVM_OK || !*out) {
        *out = NULL;
        cli_print_error(CMD, "instance", &err);
        return false;
    }
    return true;
}

/* Runs, continuing after host calls, until the guest stops with `want` (counting
 * run() calls in *calls); false (said) on a host error or any other stop. */
static bool costs_run(cpvm_instance *in, cpvm_exit want, uint64_t *calls)
{
    struct cpvm_interrupt intr;
    for (;;) {
        memset(&intr, 0, sizeof intr);
        cpvm_status st = cpvm_instance_run(in, &intr);
        if (calls) ++*calls;
        if (st != CPVM_OK) {
            fprintf(stderr, "cpvm bench: run failed: %s\n", cpvm_status_message(st));
            return false;
        }
        if (intr.exit == want) return true;
        if (intr.exit != CPVM_EXIT_ECALLI || want == CPVM_EXIT_ECALLI) {
            fprintf(stderr, "cpvm bench: unexpected stop: %s at pc %" PRIu32 "\n", cpvm_exit_name(intr.exit), intr.pc);
            return false;
        }
    }
}

#define COSTS_ROUNDS 10u

/* Runs the host call loop (set up for `total` calls) to its halt, in `rounds`
 * rounds of about total/rounds run() calls: the mean us per call of each round
 * (first to last), the whole time (us) and the run() calls made. */
static bool costs_hostcalls(cpvm_instance *in, uint64_t total, unsigned rounds, double *round_us, double *dt,
                            uint64_t *calls)
{
    uint64_t per = total / rounds, done = 0, start_calls = 0;
    unsigned r = 0;
    struct cpvm_interrupt intr;
    double t0 = now_us(), start = t0;
    for (;;) {
        memset(&intr, 0, sizeof intr);
        cpvm_status st = cpvm_instance_run(in, &intr);
        done++;
        if (st != CPVM_OK) {
            fprintf(stderr, "cpvm bench: run failed: %s\n", cpvm_status_message(st));
            return false;
        }
        bool last = intr.exit != CPVM_EXIT_ECALLI;
        if (last || (r + 1 < rounds && done - start_calls == per)) {
            double now = now_us();
            round_us[r++] = (now - start) / (double)(done - start_calls);
            start = now;
            start_calls = done;
        }
        if (last) break;
    }
    if (intr.exit != CPVM_EXIT_HALT || r != rounds) {
        fprintf(stderr, "cpvm bench: unexpected stop: %s at pc %" PRIu32 "\n", cpvm_exit_name(intr.exit), intr.pc);
        return false;
    }
    *dt = start - t0;
    *calls = done;
    return true;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v; median and nearest-rank p90. */
static void med_p90(double *v, size_t n, double *med, double *p90)
{
    qsort(v, n, sizeof *v, cmp_double);
    *med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    size_t k = (n * 9 + 9) / 10; /* ceil(0.9 n) */
    *p90 = v[k ? k - 1 : 0];
}

/* n instances of `m` made, run to halt and freed, each phase timed (us). */
static bool costs_lifecycle(const cpvm_module *m, uint32_t pc, size_t n, double *t_new, double *t_run,
                            double *t_free)
{
    for (size_t i = 0; i < n; i++) {
        cpvm_instance *in;
        double t0 = now_us();
        if (!costs_new(m, &in)) return false;
        double t1 = now_us();
        cpvm_instance_prepare_call(in, pc);
        cpvm_instance_set_gas(in, COSTS_GAS);
        bool ok = costs_run(in, CPVM_EXIT_HALT, NULL);
        double t2 = now_us();
        cpvm_instance_free(in);
        double t3 = now_us();
        if (!ok) return false;
        t_new[i] = t1 - t0;
        t_run[i] = t2 - t1;
        t_free[i] = t3 - t2;
    }
    return true;
}

static void print_lifecycle_row(const char *label, double *t_new, double *t_run, double *t_free, size_t n)
{
    double a, b, c, d, e, f;
    med_p90(t_new, n, &a, &b);
    med_p90(t_run, n, &c, &d);
    med_p90(t_free, n, &e, &f);
    printf("  %-38s %9.1f %9.1f  %9.1f %9.1f  %9.1f %9.1f\n", label, a, b, c, d, e, f);
}

static void print_kib(uint64_t bytes, uint32_t workers)
{
    if (workers)
        printf(" %13.0f", (double)bytes / workers / 1024.0);
    else
        printf(" %13s", "n/a");
}

static void print_memory_row(const char *label, uint32_t workers, uint64_t shared, uint64_t priv)
{
    printf("  %-46s %7" PRIu32, label, workers);
    print_kib(shared, workers);
    print_kib(priv, workers);
    putchar('\n');
}

/* One memory row: a sandboxed instance of `mod` run from `pc` (a0, a1 set) to its
 * host call, then the pool's busy figures. */
static bool busy_row(const cpvm_module *mod, uint32_t pc, uint64_t a0, uint64_t a1, const char *label)
{
    cpvm_instance *busy = NULL;
    if (!costs_new(mod, &busy)) return false;
    cpvm_instance_prepare_call(busy, pc);
    if (a0) cpvm_instance_set_reg(busy, CPVM_REG_A0, a0);
    cpvm_instance_set_reg(busy, CPVM_REG_A1, a1);
    cpvm_instance_set_gas(busy, COSTS_GAS);
    bool ok = costs_run(busy, CPVM_EXIT_ECALLI, NULL);
    if (ok) {
        struct cpvm_sandbox_stats st;
        cpvm_sandbox_stats(&st);
        print_memory_row(label, st.workers_busy, st.busy_shared_bytes, st.busy_private_bytes);
    }
    cpvm_instance_free(busy);
    return ok;
}

static int sandbox_costs(int argc, char **argv)
{
    uint64_t instances = 200, hostcalls = 100000, workers = 4;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *a = argv[i];
        bool missing = false;
#define OPT(name) cli_option(argc, argv, &i, name, &v, &missing, CMD)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--sandbox-costs") == 0) {
        } else if (OPT("--instances")) {
            if (!cli_parse_u64(v, &instances) || instances == 0 || instances > 1000000) {
                fprintf(stderr, "cpvm bench: --instances: expected 1..1000000, got '%s'\n", v);
                return 2;
            }
        } else if (OPT("--hostcalls")) {
            if (!cli_parse_u64(v, &hostcalls) || hostcalls == 0 || hostcalls > UINT32_MAX) {
                fprintf(stderr, "cpvm bench: --hostcalls: expected 1..4294967295, got '%s'\n", v);
                return 2;
            }
        } else if (OPT("--workers")) {
            if (!cli_parse_u64(v, &workers) || workers == 0 || workers > 64) {
                fprintf(stderr, "cpvm bench: --workers: expected 1..64, got '%s'\n", v);
                return 2;
            }
        } else if (missing) {
            return 2;
        } else {
            fprintf(stderr, "cpvm bench: --sandbox-costs: unexpected argument '%s' (it takes --instances, "
                            "--hostcalls and --workers only)\n", a);
            usage(stderr);
            return 2;
        }
#undef OPT
    }

    int rc = 2;
    size_t n = (size_t)instances;
    cpvm_program *small = NULL, *loop = NULL, *touch = NULL;
    cpvm_module *mods[K_COUNT] = {NULL, NULL, NULL};
    const char *why[K_COUNT] = {NULL, NULL, NULL};
    cpvm_module *loop_mod = NULL, *touch_mod = NULL;
    cpvm_instance *busy = NULL;
    double *t = malloc(3 * n * sizeof *t);
    if (!t) {
        fprintf(stderr, "cpvm bench: out of memory\n");
        return 2;
    }
    double *t_new = t, *t_run = t + n, *t_free = t + 2 * n;
    small = costs_program("small program", SRC_SMALL);
    loop = costs_program("host call loop", SRC_HOSTCALLS);
    touch = costs_program("memory toucher", SRC_TOUCH);
    if (!small || !loop || !touch) goto out;
    uint32_t pc_small, pc_loop, pc_touch;
    if (!cli_resolve_entry(CMD, small, NULL, &pc_small) || !cli_resolve_entry(CMD, loop, NULL, &pc_loop) ||
        !cli_resolve_entry(CMD, touch, NULL, &pc_touch))
        goto out;

    const char *no_sandbox = NULL;
    bool have_zygote = cpvm_sandbox_available(&no_sandbox);
    printf("cpvm bench --sandbox-costs: %" PRIu64 " instances, %" PRIu64 " host calls, %" PRIu64 " workers\n",
           instances, hostcalls, workers);
    if (!have_zygote)
        printf("the zygote sandbox is unavailable here (%s): its rows are left out\n",
               no_sandbox ? no_sandbox : "unknown reason");
    for (int k = 0; k < K_COUNT; k++) mods[k] = costs_module(small, (enum costs_kind)k, &why[k]);

    /* ---- instance start ---- */
    printf("\ninstance start, small program, in us over %zu instances\n", n);
    printf("  %-38s %19s  %19s  %19s\n", "", "cpvm_instance_new", "first run()", "cpvm_instance_free");
    printf("  %-38s %9s %9s  %9s %9s  %9s %9s\n", "", "median", "p90", "median", "p90", "median", "p90");
    struct cpvm_sandbox_stats st0, st1;
    if (mods[K_ZYGOTE]) {
        char label[64];
        cpvm_sandbox_set_pool_size(0);
        cpvm_sandbox_stats(&st0);
        if (!costs_lifecycle(mods[K_ZYGOTE], pc_small, n, t_new, t_run, t_free)) goto out;
        cpvm_sandbox_stats(&st1);
        print_lifecycle_row("zygote, cold pool (size 0)", t_new, t_run, t_free, n);
        uint64_t cold_spawned = st1.spawned - st0.spawned;

        cpvm_sandbox_set_pool_size((unsigned)workers);
        struct cpvm_error err;
        memset(&err, 0, sizeof err);
        double p0 = now_us();
        if (cpvm_sandbox_prewarm((unsigned)workers, &err) != CPVM_OK) {
            cli_print_error(CMD, "prewarm", &err);
            goto out;
        }
        double prewarm_us = now_us() - p0;
        /* Idle memory now, before any instance leaves code in a worker. */
        cpvm_sandbox_stats(&st0);
        struct cpvm_sandbox_stats idle = st0;
        if (!costs_lifecycle(mods[K_ZYGOTE], pc_small, n, t_new, t_run, t_free)) goto out;
        cpvm_sandbox_stats(&st1);
        snprintf(label, sizeof label, "zygote, warm pool (size %" PRIu64 ", %" PRIu32 " idle)", workers,
                 idle.workers_idle);
        print_lifecycle_row(label, t_new, t_run, t_free, n);
        uint64_t warm_reused = st1.reused - st0.reused, warm_spawned = st1.spawned - st0.spawned;
        for (int k = K_NONE; k < K_COUNT; k++) {
            if (!mods[k]) continue;
            if (!costs_lifecycle(mods[k], pc_small, n, t_new, t_run, t_free)) goto out;
            print_lifecycle_row(kind_name[k], t_new, t_run, t_free, n);
        }
        printf("  (cold: %" PRIu64 " workers spawned; warm: %" PRIu64 " reused, %" PRIu64
               " spawned; cpvm_sandbox_prewarm(%" PRIu64 ") took %.1f ms)\n",
               cold_spawned, warm_reused, warm_spawned, workers, prewarm_us / 1000.0);
        if (idle.workers_idle != workers)
            printf("  warning: cpvm_sandbox_prewarm(%" PRIu64 ") with pool size %" PRIu64 " left %" PRIu32
                   " idle workers\n",
                   workers, workers, idle.workers_idle);

        /* ---- memory ---- */
        printf("\nmemory held by sandbox workers (cpvm_sandbox_stats), in KiB per worker\n");
        printf("  %-46s %7s %13s %13s\n", "", "workers", "shared", "private");
        print_memory_row("idle, prewarmed", idle.workers_idle, idle.idle_shared_bytes, idle.idle_private_bytes);
        loop_mod = costs_module(loop, K_ZYGOTE, &why[K_ZYGOTE]);
        touch_mod = costs_module(touch, K_ZYGOTE, &why[K_ZYGOTE]);
        if (!loop_mod || !touch_mod) {
            fprintf(stderr, "cpvm bench: zygote module: %s\n", why[K_ZYGOTE]);
            goto out;
        }
        if (!busy_row(loop_mod, pc_loop, 0, 2, "busy: small program, at a host call") ||
            !busy_row(touch_mod, pc_touch, cpvm_module_memory_map(touch_mod)->rw_data_address, TOUCH_PAGES,
                      "busy: 1 MiB of guest memory written"))
            goto out;
    } else {
        for (int k = K_NONE; k < K_COUNT; k++) {
            if (!mods[k]) continue;
            if (!costs_lifecycle(mods[k], pc_small, n, t_new, t_run, t_free)) goto out;
            print_lifecycle_row(kind_name[k], t_new, t_run, t_free, n);
        }
    }

    /* ---- host calls ---- */
    unsigned rounds = hostcalls < COSTS_ROUNDS ? (unsigned)hostcalls : COSTS_ROUNDS;
    printf("\nhost call round trip: a guest loop of %" PRIu64 " ecalli, one run() each, in %u rounds\n", hostcalls,
           rounds);
    printf("  %-40s %13s %10s  %23s\n", "", "", "us per", "a round's us per call");
    printf("  %-40s %13s %10s  %7s %7s %7s\n", "", "run() calls/s", "call", "median", "best", "worst");
    for (int k = 0; k < K_COUNT; k++) {
        const char *w = NULL;
        cpvm_module *m = costs_module(loop, (enum costs_kind)k, &w);
        if (!m) {
            printf("  %-40s not available here (%s)\n", kind_name[k], w ? w : "unknown reason");
            continue;
        }
        cpvm_instance *in;
        if (!costs_new(m, &in)) {
            cpvm_module_free(m);
            goto out;
        }
        cpvm_instance_prepare_call(in, pc_loop);
        cpvm_instance_set_reg(in, CPVM_REG_A1, hostcalls);
        cpvm_instance_set_gas(in, COSTS_GAS);
        double round_us[COSTS_ROUNDS], dt = 0;
        uint64_t calls = 0;
        bool ok = costs_hostcalls(in, hostcalls, rounds, round_us, &dt, &calls);
        cpvm_instance_free(in);
        cpvm_module_free(m);
        if (!ok) goto out;
        double med, p90;
        med_p90(round_us, rounds, &med, &p90);
        if (dt > 0)
            printf("  %-40s %13.0f %10.3f  %7.3f %7.3f %7.3f\n", kind_name[k], (double)calls / (dt / 1e6),
                   dt / (double)calls, med, round_us[0], round_us[rounds - 1]);
        else
            printf("  %-40s %13s\n", kind_name[k], "n/a");
    }
    for (int k = 0; k < K_COUNT; k++)
        if (!mods[k] && (k != K_ZYGOTE || have_zygote))
            printf("(%s: %s)\n", kind_name[k], why[k] ? why[k] : "not available here");
    rc = fflush(stdout) == 0 ? 0 : 2;
out:
    if (busy) cpvm_instance_free(busy);
    if (loop_mod) cpvm_module_free(loop_mod);
    if (touch_mod) cpvm_module_free(touch_mod);
    for (int k = 0; k < K_COUNT; k++)
        if (mods[k]) cpvm_module_free(mods[k]);
    if (small) cpvm_program_free(small);
    if (loop) cpvm_program_free(loop);
    if (touch) cpvm_program_free(touch);
    free(t);
    return rc;
}

/* ---- --compile -------------------------------------------------------------- */

/* One parse + compile of `bytes`; false (error printed) on failure. */
static bool compile_once(const char *path, const uint8_t *bytes, size_t len, const struct cpvm_module_config *cfg,
                         double *seconds)
{
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_program *p = NULL;
    cpvm_module *m = NULL;
    double t0 = now_seconds();
    cpvm_status s = cpvm_program_parse(bytes, len, CPVM_PARSE_BORROW, &p, &err);
    if (s == CPVM_OK) s = cpvm_module_new(p, cfg, &m, &err);
    *seconds = now_seconds() - t0;
    bool native = m && cpvm_module_backend(m, NULL) == CPVM_BACKEND_COMPILER;
    cpvm_module_free(m);
    cpvm_program_free(p);
    if (s != CPVM_OK) cli_print_error(CMD, path, &err);
    else if (!native) fprintf(stderr, "cpvm bench: %s: the compiler is not available on this machine\n", path);
    return s == CPVM_OK && native;
}

static int compile_bench(int argc, char **argv)
{
    const char *path = NULL;
    uint64_t iterations = 10;
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.backend = CPVM_BACKEND_COMPILER;
    cfg.sandbox = CPVM_SANDBOX_NONE; /* the same code either way; no sandbox probe */
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *a = argv[i];
        bool missing = false;
        if (strcmp(a, "--compile") == 0) continue;
        if (cli_option(argc, argv, &i, "--iterations", &v, &missing, CMD)) {
            if (!cli_parse_u64(v, &iterations) || iterations == 0) {
                fprintf(stderr, "cpvm bench: --iterations: expected a count of at least 1, got '%s'\n", v);
                return 2;
            }
        } else if (cli_option(argc, argv, &i, "--gas-metering", &v, &missing, CMD)) {
            cfg.gas_metering = strcmp(v, "none") != 0;
            cfg.gas_async = strcmp(v, "async") == 0;
            if (strcmp(v, "none") && strcmp(v, "sync") && strcmp(v, "async")) {
                fprintf(stderr, "cpvm bench: --gas-metering: expected none, sync or async, got '%s'\n", v);
                return 2;
            }
        } else if (cli_option(argc, argv, &i, "--cost-model", &v, &missing, CMD)) {
            if (!cli_parse_cost_model(CMD, v, &cfg.cost_model)) return 2;
        } else if (missing || !cli_positional(CMD, a, &path, "program")) {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "cpvm bench: --compile: no program given\n");
        return 2;
    }
    size_t len = 0;
    uint8_t *bytes = cli_read_file(CMD, path, &len);
    double *t = bytes ? malloc(iterations * sizeof *t) : NULL;
    int rc = 2;
    if (!t) goto out;
    for (uint64_t i = 0; i < iterations; i++)
        if (!compile_once(path, bytes, len, &cfg, &t[i])) goto out;
    qsort(t, iterations, sizeof *t, cmp_double);
    printf("program:       %s (%zu bytes)\n", path, len);
    printf("iterations:    %" PRIu64 "\n", iterations);
    printf("median time:   %.6f s\n", t[iterations / 2]);
    printf("best time:     %.6f s\n", t[0]);
    rc = fflush(stdout) == 0 ? 0 : 2;
out:
    free(t);
    free(bytes);
    return rc;
}

int cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--sandbox-costs") == 0) return sandbox_costs(argc, argv);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--compile") == 0) return compile_bench(argc, argv);
    const char *path = NULL, *isa_name = NULL, *entry = NULL;
    bool raw = false;
    cpvm_backend backend = CPVM_BACKEND_INTERPRETER;
    cpvm_sandbox sandbox = CPVM_SANDBOX_DEFAULT;
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
        } else if (OPT("--cost-model")) {
            if (!cli_parse_cost_model(CMD, v, &cli_cost_model)) goto out;
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
        } else if (OPT("--sandbox")) {
            if (!cli_parse_sandbox(CMD, v, &sandbox)) goto out;
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
    mod = cli_make_module(CMD, path, prog, backend, sandbox, raw ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD,
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

    const char *why = NULL;
    bool native = cpvm_module_backend(mod, &why) == CPVM_BACKEND_COMPILER;
    printf("program:       %s\n", path);
    printf("backend:       %s\n", !native                                           ? "interpreter"
                                   : cpvm_module_sandbox(mod) == CPVM_SANDBOX_ZYGOTE ? "compiler (zygote sandbox)"
                                                                                     : "compiler (unsandboxed)");
    printf("status:        %s (pc %" PRIu32 ")\n", cpvm_exit_name(intr.exit), intr.pc);
    if (native && insns == 0)
        printf("instructions:  n/a (compiled code does not count them)\n");
    else
        printf("instructions:  %" PRIu64 "\n", insns);
    printf("host calls:    %" PRIu64 "\n", hostcalls);
    printf("gas left:      %" PRId64 "\n", gas_left);
    printf("iterations:    %" PRIu64 "\n", iterations);
    printf("best time:     %.9f s\n", best);
    printf("mean time:     %.9f s\n", total / (double)iterations);
    if (native && insns == 0)
        printf("instructions/s: n/a (compiled code does not count instructions)\n");
    else if (best > 0)
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
