/* Fuzz target diff_interp_jit_zygote: diff_interp_jit with the compiled side in
 * the zygote sandbox. Workers come from the pool, so each input reuses one
 * (scrubbed between instances); besides every check of diff_interp_jit, the
 * sandboxed instance must stay healthy (cpvm_instance_integrity_ok is false
 * once its worker died or lied) and the run must never fail with a sandbox
 * error. Same input framing and seeds as diff_interp_jit.
 *
 * Then, for one input in eight (picked by a hash of the input, so the
 * differential run itself is unchanged), a drill of the sandbox's error
 * handling through the public API, on a fresh instance of the same program:
 * kill and pool on one drill in sixteen each (they start new workers, a few
 * milliseconds each: at one in sixteen inputs they took two thirds of the
 * replay's time, and what they check hardly depends on the program),
 * deadline and lie on seven in sixteen each:
 *   kill      every worker of this process is SIGKILLed after the instance
 *             took its worker: run() must fail with CPVM_E_SANDBOX (unless
 *             the host stops before entering the worker), again on a second
 *             call, and the pool must hand out a working worker next;
 *   deadline  a wall-clock deadline of 1-4096 ns: run() returns CPVM_OK or
 *             CPVM_E_DEADLINE, and after CPVM_E_DEADLINE never CPVM_OK again;
 *   pool      pool size 0-2, three instances at once, prewarm 0-4: the stats
 *             stay consistent (idle <= max, busy back to 0), then size 4;
 *   lie       what a subverted worker could write into the memory it shares
 *             with the host, forged by the host itself (a test-only hook of
 *             this target, below; nothing in libcpvm offers it): a context
 *             block that fails its check (its canary: compiled code never
 *             writes it, so the forgery is what the host reads after the
 *             run) makes run() fail with CPVM_E_SANDBOX (unless the host
 *             stops before entering the worker), again on a second call,
 *             integrity false, and the next instance gets a working
 *             worker; a scribbled canary page beside the window makes
 *             cpvm_instance_integrity_ok false. */
#define DIFF_SANDBOX CPVM_SANDBOX_ZYGOTE
#define LLVMFuzzerTestOneInput diff_test_one_input
#include "diff_interp_jit.c"
#undef LLVMFuzzerTestOneInput

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include "machine/machine.h" /* the lie drill only: the instance's window and context block */

static void drill_fail(const char *what, cpvm_status s)
{
    fprintf(stderr, "diff_interp_jit_zygote invariant violated: sandbox drill: %s (%s)\n", what,
            cpvm_status_message(s));
    abort();
}

/* A killed process is gone once it is a zombie (or reaped). */
static bool dead(long pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *paren = strrchr(buf, ')');
    return !paren || paren[1] == 0 || paren[2] == 'Z' || paren[2] == 'X';
}

/* A pool worker: the zygote names itself (PR_SET_NAME). Other children, such
 * as the sanitizer's llvm-symbolizer that libFuzzer talks to through a pipe,
 * must live: killing that one ended the fuzzer with SIGPIPE at its next
 * symbolized message. */
static bool is_worker(long pid)
{
    char path[64], comm[32] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    bool ok = fgets(comm, sizeof comm, f) != NULL && strncmp(comm, "cpvm-worker", 11) == 0;
    fclose(f);
    return ok;
}

/* SIGKILLs every pool worker of this process, idle and busy, and waits until
 * they are dead. */
static void kill_children(void)
{
    long pids[256];
    unsigned n = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[300];
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        long pid;
        while (n < 256 && fscanf(f, "%ld", &pid) == 1)
            if (pid > 0 && is_worker(pid) && kill((pid_t)pid, SIGKILL) == 0) pids[n++] = pid;
        fclose(f);
    }
    closedir(d);
    for (unsigned i = 0; i < n; i++)
        for (unsigned tries = 0; tries < 10000 && !dead(pids[i]); tries++) usleep(100);
}

/* The test-only hook of the lie drill: the host's view of the worker's memory
 * is the memfd the worker writes, so the host can write what a lying worker
 * would. */
static void forge_context(cpvm_instance *in)
{
    struct jit_ctx *ctx = (struct jit_ctx *)(in->mem - JIT_CTX_OFFSET);
    ctx->canary ^= 1;
}

static void forge_canary_page(cpvm_instance *in, uint32_t at)
{
    in->mem[(ptrdiff_t)(at % 0x1000u) - (ptrdiff_t)MEM_CANARY_BELOW] ^= 0x40;
}

/* After a kill or a lie, run() fails with CPVM_E_SANDBOX, or returns CPVM_OK
 * where the host stops before entering the worker: an entry pc outside every
 * block (panic) or gas short of the entry block (out of gas). */
static bool entered_or_stopped_before(cpvm_status s, const struct cpvm_interrupt *intr)
{
    if (s == CPVM_OK) return intr->exit == CPVM_EXIT_PANIC || intr->exit == CPVM_EXIT_OUT_OF_GAS;
    return s == CPVM_E_SANDBOX;
}

static void check_pool_stats(const struct cpvm_sandbox_stats *st, const char *when)
{
    char what[128];
    snprintf(what, sizeof what, "pool stats %s: %u idle (max %u), %u busy, %llu spawned, %llu destroyed", when,
             st->workers_idle, st->max_idle, st->workers_busy, (unsigned long long)st->spawned,
             (unsigned long long)st->destroyed);
    if (st->workers_idle > st->max_idle || st->spawned - st->destroyed != (uint64_t)st->workers_idle + st->workers_busy ||
        (st->workers_busy && !st->busy_shared_bytes) || (st->workers_idle && !st->idle_shared_bytes))
        drill_fail(what, CPVM_OK);
}

static cpvm_instance *drill_instance(const cpvm_module *mod, const struct exec_setup *su)
{
    cpvm_instance *inst = NULL;
    if (cpvm_instance_new(mod, &inst, NULL) != CPVM_OK) return NULL;
    cpvm_instance_set_gas(inst, su->g.gas);
    /* the differential run's budget: an unmetered loop must end too */
    if (su->step_limit) cpvm_instance_set_step_limit(inst, su->step_limit);
    cpvm_instance_prepare_call(inst, su->g.entry_pc);
    return inst;
}

static void sandbox_drill(const uint8_t *data, size_t size)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 16777619u;
    if ((h & 7) != 0) return;
    struct exec_setup su;
    if (!exec_setup_init(&su, "diff_interp_jit_zygote", data, size)) return;
    struct cpvm_module_config mc;
    exec_module_config(&su, CPVM_BACKEND_COMPILER, &mc);
    mc.sandbox = CPVM_SANDBOX_ZYGOTE;
    cpvm_module *mod = NULL;
    if (su.dynamic || cpvm_module_new(su.prog, &mc, &mod, NULL) != CPVM_OK) goto out;
    /* Where no sandbox can be had (cpvm_sandbox_available) the compiler runs
     * in-process: nothing to drill. */
    const char *why = NULL;
    bool zygote = cpvm_module_sandbox(mod) == CPVM_SANDBOX_ZYGOTE, available = cpvm_sandbox_available(&why);
    if ((zygote && !available) || (!available && !why))
        drill_fail("a sandboxed module where no sandbox is available (or no reason why not)", CPVM_OK);
    if (!zygote && available && cpvm_module_backend(mod, NULL) == CPVM_BACKEND_COMPILER)
        drill_fail("compiled code outside the sandbox although it is available", CPVM_OK);
    if (!zygote) {
        cpvm_module_free(mod);
        goto out;
    }
    struct cpvm_interrupt intr;
    cpvm_status s;
    cpvm_instance *inst = NULL;
    unsigned kind = (h >> 3) & 15;
    switch (kind == 0 ? 0 : kind == 1 ? 2 : kind < 9 ? 1 : 3) {
    case 0: /* kill */
        if (!(inst = drill_instance(mod, &su))) break;
        kill_children();
        s = cpvm_instance_run(inst, &intr);
        if (!entered_or_stopped_before(s, &intr)) drill_fail("run() after the worker was killed", s);
        if (s == CPVM_E_SANDBOX && (s = cpvm_instance_run(inst, &intr)) == CPVM_OK)
            drill_fail("a second run() after the kill", s);
        cpvm_instance_free(inst);
        /* The pool drops the dead idle workers and starts a new one. */
        if (!(inst = drill_instance(mod, &su))) drill_fail("no instance after the kill", CPVM_E_SANDBOX);
        s = cpvm_instance_run(inst, &intr);
        if (s != CPVM_OK) drill_fail("run() on a fresh worker after the kill", s);
        if (!cpvm_instance_integrity_ok(inst)) drill_fail("integrity after the kill", s);
        break;
    case 1: /* deadline */
        if (!(inst = drill_instance(mod, &su))) break;
        if ((s = cpvm_instance_set_deadline(inst, 1 + (h >> 8) % 4096)) != CPVM_OK) drill_fail("set_deadline", s);
        s = cpvm_instance_run(inst, &intr);
        if (s != CPVM_OK && s != CPVM_E_DEADLINE) drill_fail("run() under a deadline", s);
        if (s == CPVM_E_DEADLINE && cpvm_instance_run(inst, &intr) == CPVM_OK)
            drill_fail("run() after the deadline passed", CPVM_OK);
        break;
    case 3: /* lie */
        if (!(inst = drill_instance(mod, &su))) break;
        if ((h >> 8) & 1) {
            forge_context(inst);
            s = cpvm_instance_run(inst, &intr);
            if (!entered_or_stopped_before(s, &intr)) drill_fail("run() of a lying worker", s);
            if (s == CPVM_E_SANDBOX && (s = cpvm_instance_run(inst, &intr)) == CPVM_OK)
                drill_fail("a second run() after the lie", s);
            if (cpvm_instance_integrity_ok(inst)) drill_fail("integrity after the lie", s);
            cpvm_instance_free(inst);
            if (!(inst = drill_instance(mod, &su))) drill_fail("no instance after the lie", CPVM_E_SANDBOX);
            if ((s = cpvm_instance_run(inst, &intr)) != CPVM_OK) drill_fail("run() on a fresh worker after the lie", s);
            if (!cpvm_instance_integrity_ok(inst)) drill_fail("integrity of the fresh worker after the lie", s);
        } else {
            if ((s = cpvm_instance_run(inst, &intr)) != CPVM_OK) drill_fail("run() before the canary drill", s);
            if (!cpvm_instance_integrity_ok(inst)) drill_fail("integrity of an honest worker", s);
            forge_canary_page(inst, h >> 9);
            if (cpvm_instance_integrity_ok(inst)) drill_fail("integrity with a scribbled canary page", CPVM_OK);
        }
        break;
    default: { /* pool: every worker spawned and not destroyed is idle or busy,
                * with three instances and after them; at size 4, a prewarm of
                * one or two workers more than are idle must start them */
        cpvm_sandbox_set_pool_size((h >> 8) % 3);
        cpvm_instance *many[3] = {NULL, NULL, NULL};
        for (unsigned i = 0; i < 3; i++) many[i] = drill_instance(mod, &su);
        for (unsigned i = 0; i < 3; i++)
            if (many[i] && (s = cpvm_instance_run(many[i], &intr)) != CPVM_OK) drill_fail("run() with a small pool", s);
        struct cpvm_sandbox_stats st;
        cpvm_sandbox_stats(&st);
        check_pool_stats(&st, "with three instances");
        for (unsigned i = 0; i < 3; i++) cpvm_instance_free(many[i]);
        cpvm_sandbox_stats(&st);
        check_pool_stats(&st, "after them");
        if (st.workers_busy) drill_fail("busy workers without instances", CPVM_OK);
        cpvm_sandbox_set_pool_size(4);
        unsigned want = st.workers_idle + 1 + (h >> 12) % 2;
        want = want > 4 ? 4 : want;
        if ((s = cpvm_sandbox_prewarm(want, NULL)) != CPVM_OK) drill_fail("prewarm", s);
        cpvm_sandbox_stats(&st);
        check_pool_stats(&st, "after a prewarm");
        if (st.workers_idle < want) drill_fail("prewarm started too few workers", CPVM_OK);
        break;
    }
    }
    cpvm_instance_free(inst);
    cpvm_module_free(mod);
out:
    exec_setup_free(&su);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    diff_test_one_input(data, size);
    sandbox_drill(data, size);
    return 0;
}
