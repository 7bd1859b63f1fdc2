/* The seccomp allowlist of a worker, as data (printed by `cpvm audit`, probed
 * by the live audit) and as the BPF program libseccomp builds from it.
 *
 * Default action: kill the process. Foreign architectures (i386 `int 0x80`)
 * and x32 numbers: kill the process. Every argument compare is 64-bit. */
#define _GNU_SOURCE
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/futex.h>

#include "sandbox.h"

#define CTRL_STATE (SBX_WINDOW - SBX_CTRL_OFFSET) /* the futex word, first in the control block */

const struct sbx_rule sbx_rules[] = {
    {"futex", SCMP_SYS(futex), 3,
     {{0, SBX_EQ, CTRL_STATE, 0}, {1, SBX_EQ, FUTEX_WAIT, 0}, {3, SBX_EQ, 0, 0}},
     "uaddr = the control block's state word, op = FUTEX_WAIT (shared), no timeout",
     "the idle worker sleeps until the host posts a command"},
    {"futex", SCMP_SYS(futex), 2,
     {{0, SBX_EQ, CTRL_STATE, 0}, {1, SBX_EQ, FUTEX_WAKE, 0}},
     "uaddr = the control block's state word, op = FUTEX_WAKE (shared)",
     "the worker wakes the host when a command is done"},
    {"mprotect", SCMP_SYS(mprotect), 3,
     {{0, SBX_MASKED_EQ, SBX_WINDOW, ~0xffffffffull}, {1, SBX_LE, 1ull << 32, 0}, {2, SBX_EQ, PROT_NONE, 0}},
     "addr inside the guest window, len <= 4 GiB, prot = PROT_NONE",
     "guest page permissions (the hardware check compiled code relies on)"},
    {"mprotect", SCMP_SYS(mprotect), 3,
     {{0, SBX_MASKED_EQ, SBX_WINDOW, ~0xffffffffull}, {1, SBX_LE, 1ull << 32, 0}, {2, SBX_EQ, PROT_READ, 0}},
     "addr inside the guest window, len <= 4 GiB, prot = PROT_READ", "read-only guest pages"},
    {"mprotect", SCMP_SYS(mprotect), 3,
     {{0, SBX_MASKED_EQ, SBX_WINDOW, ~0xffffffffull},
      {1, SBX_LE, 1ull << 32, 0},
      {2, SBX_EQ, PROT_READ | PROT_WRITE, 0}},
     "addr inside the guest window, len <= 4 GiB, prot = PROT_READ|PROT_WRITE", "writable guest pages"},
    {"rt_sigreturn", SCMP_SYS(rt_sigreturn), 0, {{0}}, "any",
     "returning from the fault handler into the JIT's exit path"},
    {"exit_group", SCMP_SYS(exit_group), 0, {{0}}, "any",
     "the zygote's own failure path (a fault outside generated code)"},
};
const size_t sbx_nrules = sizeof sbx_rules / sizeof *sbx_rules;

cpvm_status sbx_policy_build(struct sbx_filter_insn *out, uint32_t max, uint32_t *len, char *why, size_t why_len)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (!ctx) {
        snprintf(why, why_len, "seccomp_init failed");
        return CPVM_E_UNSUPPORTED;
    }
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* The zygote sets no_new_privs itself; the exported program must not care. */
    if (!rc) rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    for (size_t i = 0; i < sbx_nrules && !rc; i++) {
        const struct sbx_rule *r = &sbx_rules[i];
        struct scmp_arg_cmp cmp[3];
        for (unsigned k = 0; k < r->nchecks; k++) {
            const struct sbx_check *c = &r->checks[k];
            cmp[k] = (struct scmp_arg_cmp){
                .arg = c->arg,
                .op = c->op == SBX_EQ ? SCMP_CMP_EQ : c->op == SBX_LE ? SCMP_CMP_LE : SCMP_CMP_MASKED_EQ,
                .datum_a = c->op == SBX_MASKED_EQ ? c->mask : c->value,
                .datum_b = c->op == SBX_MASKED_EQ ? c->value : 0,
            };
        }
        rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, r->nr, r->nchecks, cmp);
    }
    /* libseccomp exports to a descriptor: a memfd keeps it in memory. */
    int fd = rc ? -1 : memfd_create("cpvm-seccomp", MFD_CLOEXEC);
    if (!rc && fd < 0) rc = -1;
    if (!rc) rc = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    if (rc) {
        if (fd >= 0) close(fd);
        snprintf(why, why_len, "building the seccomp filter failed (%d)", rc);
        return CPVM_E_UNSUPPORTED;
    }
    off_t size = lseek(fd, 0, SEEK_END);
    if (size <= 0 || size % 8 || (uint64_t)size / 8 > max || pread(fd, out, (size_t)size, 0) != size) {
        close(fd);
        snprintf(why, why_len, "seccomp filter too large or unreadable (%lld bytes)", (long long)size);
        return CPVM_E_UNSUPPORTED;
    }
    close(fd);
    *len = (uint32_t)(size / 8);
    return CPVM_OK;
}
