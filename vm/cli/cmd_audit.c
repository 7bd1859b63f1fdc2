/* cpvm audit: the sandbox's policy as a table, the isolation applied to every
 * worker, and the live audit run on this machine, ending in one summary line. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "audit.h"
#include "commands.h"
#include "sandbox/sandbox.h"

static void usage(void)
{
    fprintf(stderr, "usage: cpvm audit [--policy-only]\n"
                    "  prints the zygote sandbox's seccomp policy, namespaces and limits, then runs the\n"
                    "  live audit (every syscall number on three ABIs, argument perturbation, worker state)\n"
                    "  --policy-only  print the policy and limits, skip the live audit\n");
}

static void print_policy(void)
{
    struct sbx_filter_insn filter[SBX_MAX_FILTER];
    uint32_t len = 0;
    char why[200] = "";
    bool built = sbx_policy_build(filter, SBX_MAX_FILTER, &len, why, sizeof why) == CPVM_OK;
    printf("seccomp policy (built with libseccomp on the host, installed by the zygote before any guest code)\n");
    printf("  default action:        kill the process (SECCOMP_RET_KILL_PROCESS)\n");
    printf("  architecture check:    only AUDIT_ARCH_X86_64; i386 (int 0x80) kills the process\n");
    printf("  x32 numbers (>= 2^30): kill the process\n");
    printf("  argument compares:     64-bit\n");
    if (built) printf("  BPF program:           %u instructions\n", len);
    else printf("  BPF program:           cannot be built here: %s\n", why);
    unsigned syscalls = 0;
    for (size_t i = 0; i < sbx_nrules; i++) {
        bool first = true;
        for (size_t k = 0; k < i; k++) first = first && sbx_rules[k].nr != sbx_rules[i].nr;
        syscalls += first;
    }
    printf("  allowlist:             %u system calls in %zu rules\n\n", syscalls, sbx_nrules);
    printf("  %-13s %-4s %-72s %s\n", "syscall", "nr", "argument constraint", "why the worker needs it");
    for (size_t i = 0; i < sbx_nrules; i++)
        printf("  %-13s %-4d %-72s %s\n", sbx_rules[i].name, sbx_rules[i].nr, sbx_rules[i].constraint, sbx_rules[i].why);
}

static void print_isolation(void)
{
    printf("\nworker isolation (every worker, before it runs guest code)\n"
           "  namespaces:    new user, mount, pid, net, ipc, uts, cgroup and time (clone3)\n"
           "  identity:      uid/gid 0 inside, mapped to the host's; setgroups deny\n"
           "  filesystem:    root = empty read-only tmpfs (pivot_root; old root detached)\n"
           "  descriptors:   none (the memfds are mapped, then every descriptor is closed)\n"
           "  address space: zygote image, one view of the memory memfd (window + control block),\n"
           "                 native code exec-only from a memfd sealed against writable mappings;\n"
           "                 kernel stack, vdso and vvar unmapped\n"
           "  privileges:    no_new_privs; all capability sets cleared, bounding set included;\n"
           "                 securebits NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE (locked);\n"
           "                 not dumpable; SIGKILL when the host dies (PR_SET_PDEATHSIG)\n"
           "  rlimits:       NOFILE, NPROC, FSIZE, CORE, MEMLOCK, LOCKS, MSGQUEUE, DATA, STACK,\n"
           "                 NICE, RTPRIO, RTTIME = 0; AS = the mapped layout + 1 MiB\n"
           "  host side:     every context field read back is checked; a lying, dead or\n"
           "                 overrunning worker is killed and reported (CPVM_E_SANDBOX / _DEADLINE)\n");
}

int cmd_audit(int argc, char **argv)
{
    bool policy_only = false;
    int i = 1;
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "--policy-only")) policy_only = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else {
            usage();
            return 2;
        }
    }
    print_policy();
    print_isolation();
    if (policy_only) return 0;

    struct utsname u;
    uname(&u);
    printf("\nlive audit on this machine (%s %s %s)\n", u.sysname, u.release, u.machine);
    fflush(stdout);
    const char *why;
    if (!cpvm_sandbox_available(&why)) {
        printf("audit: FAIL: no sandbox worker can be created here: %s\n", why);
        return 1;
    }
    unsigned checks = 0, failed = audit_all(stdout, &checks);
    printf("audit: %s: %u checks, %u failed; allowlist %zu rules, default kill, arch check x86-64 only\n",
           failed ? "FAIL" : "PASS", checks, failed, sbx_nrules);
    return failed ? 1 : 0;
}
