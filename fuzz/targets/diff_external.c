/* Fuzz target diff_external: a generated program runs on cpvm in-process and
 * on an external PVM behind the protocol of fuzz/external/PROTOCOL.md, and
 * the full final state must match or be a recorded finding
 * (corpus/external/findings.json). Coverage comes from cpvm's side; the
 * target process is started once and kept (restarted when it fails).
 *
 * Environment:
 *   CPVM_EXTERNAL_TARGET    the target's command (e.g. 'node .../anan-as.mjs');
 *                           unset: this process forked into `cpvm serve`
 *   CPVM_EXTERNAL_FINDINGS  findings file (default the source tree's)
 *
 * Input framing:
 *   byte 0   bit 0: PolkaVM 0.35 profile instead of GP (when the target has it)
 *   bytes 1.. generator input (GEN_CONFIG_DIFF_EXTERNAL_*)
 *
 * Aborts (after printing the signature and both states) on a divergence no
 * finding matches, and on a target that dies, hangs or answers garbage.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "diff.h"
#include "findings.h"
#include "local.h"
#include "target.h"

#ifndef CPVM_SOURCE_DIR
#define CPVM_SOURCE_DIR "."
#endif
#define MAX_GAS 20000

static struct xp_target g_target;
static struct xp_findings g_known;
static struct xp_result *g_tres, *g_lres;
static uint8_t *g_mem;
static bool g_ready;

static void setup(void)
{
    const char *cmd = getenv("CPVM_EXTERNAL_TARGET");
    const char *fpath = getenv("CPVM_EXTERNAL_FINDINGS");
    if (cmd && !*cmd) cmd = NULL;
    if (!xp_findings_load(fpath ? fpath : CPVM_SOURCE_DIR "/corpus/external/findings.json", &g_known)) abort();
    g_tres = malloc(sizeof *g_tres);
    g_lres = malloc(sizeof *g_lres);
    g_mem = malloc(XP_MAX_MAPPED);
    if (!g_tres || !g_lres || !g_mem) abort();
    /* 60 s: a node target starting on a loaded machine (HELLO shares the deadline) */
    if (!xp_target_start(&g_target, cmd, 60000)) {
        fprintf(stderr, "diff_external: cannot start target '%s': %s\n", cmd ? cmd : "(cpvm serve)", g_target.err);
        abort();
    }
    g_ready = true;
}

static void print_result(const char *who, const struct xp_result *r)
{
    fprintf(stderr, "  %-6s %s pc %u gas %" PRId64 " arg 0x%x dumps %u regs", who, xp_status_name(r->status), r->pc, r->gas,
            r->exit_arg, r->ndumps);
    for (unsigned i = 0; i < XP_NREGS; i++) fprintf(stderr, " %" PRIx64, r->regs[i]);
    fputc('\n', stderr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_ready) setup();
    if (size < 1) return 0;
    int semantics = (data[0] & 1) && (g_target.hello.features & XP_F_SEM_POLKAVM) ? XP_SEM_POLKAVM : XP_SEM_GP;
    struct xp_gen x;
    char err[256], sig[160], detail[512];
    if (!xp_gen_case(data + 1, size - 1, semantics, MAX_GAS, &x, err, sizeof err)) return 0; /* host OOM */
    xp_buf_reset(&g_target.out);
    xp_encode_batch(&g_target.out, XP_RUN, 1);
    xp_encode_case(&g_target.out, &x.c);
    const struct xp_case *one = &x.c;
    if (!xp_target_run(&g_target, &one, 1, g_tres)) {
        fprintf(stderr, "diff_external: target %s failed: %s\n", g_target.hello.name, g_target.err);
        abort();
    }
    if (!xp_local_run(&x.c, g_lres, g_mem, err, sizeof err)) {
        fprintf(stderr, "diff_external: cpvm: %s\n", err);
        abort();
    }
    const char *profile = semantics == XP_SEM_GP ? "gp" : "polkavm";
    if (!xp_compare(&x.c, x.code, x.code_len, g_lres, g_tres, sig, sizeof sig, detail, sizeof detail) &&
        !xp_findings_match(&g_known, g_target.hello.name, profile, sig)) {
        fprintf(stderr, "diff_external: unrecorded divergence with %s (%s profile): %s\n  %s\n", g_target.hello.name,
                profile, sig, detail);
        print_result("cpvm", g_lres);
        print_result(g_target.hello.name, g_tres);
        abort();
    }
    xp_gen_free(&x);
    return 0;
}

void fuzz_describe(const uint8_t *data, size_t size, const struct describe_opts *o)
{
    if (describe_too_short(size, 1, o)) return;
    bool polkavm = data[0] & 1;
    fprintf(o->out, "input: byte 0 = 0x%02x: %s profile%s\n", data[0], polkavm ? "PolkaVM 0.35" : "Gray Paper",
            polkavm ? " (GP when the target lacks PolkaVM semantics)" : "; memset/unlikely run as trap, sbrk as move_reg");
    struct gen_config gp = GEN_CONFIG_DIFF_EXTERNAL_GP, pvm = GEN_CONFIG_DIFF_EXTERNAL_POLKAVM;
    describe_generated(data + 1, size - 1, polkavm ? &pvm : &gp, o);
}
