/* The live sandbox audit (see audit.h). Payloads are assembled with the
 * project's own x86-64 encoder; each runs as the only code of a real worker,
 * entered exactly as compiled guest code is. */
#define _GNU_SOURCE
#include "audit.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jit/jit.h"
#include "sandbox/sandbox.h"

#define CTX_ADDR (SBX_WINDOW - JIT_CTX_OFFSET)
#define OP(a) x64_cur(a)
#define EM(a, expr) x64_advance(a, (expr))

static const enum x64_reg saved[] = {RBX, RBP, R12, R13, R14, R15};

static void raw(struct x64_asm *a, const uint8_t *bytes, unsigned n)
{
    x64_asm_reserve(a, n);
    memcpy(x64_cur(a), bytes, n);
    x64_advance(a, n);
}

/* Runs assembled code in a pooled worker; `restore` is where a fault continues. */
static void run_code(const uint8_t *code, size_t len, uint32_t restore, struct audit_outcome *out)
{
    memset(out, 0, sizeof *out);
    struct sbx_worker *w;
    char why[200];
    uint64_t owner = sbx_new_owner_id();
    if (sbx_acquire(owner, &w, why, sizeof why) || sbx_worker_load_code(w, owner, code, len)) {
        out->kind = AUDIT_ERROR;
        return;
    }
    struct jit_ctx *ctx = (struct jit_ctx *)(sbx_window(w) - JIT_CTX_OFFSET);
    memset(ctx, 0, sizeof *ctx);
    volatile struct sbx_ctrl *c = w->ctrl;
    c->nprot = 0;
    c->code_len = len;
    c->entry = 0;
    c->restore = restore;
    c->target = 0;
    c->code_gen = w->code_gen;
    enum sbx_wait r = sbx_worker_call(w, SBX_CMD_RUN, sbx_now_ns() + 5000000000ull);
    switch (r) {
    case SBX_DONE:
        out->kind = ctx->exit == JIT_EXIT_FAULT ? AUDIT_FAULTED : AUDIT_RETURNED;
        out->status = (int)ctx->fault_signal;
        out->ret = (int64_t)ctx->regs[0];
        break;
    case SBX_DIED:
        out->kind = w->exit_code == CLD_EXITED ? AUDIT_EXITED : AUDIT_KILLED;
        out->status = w->exit_status;
        break;
    case SBX_TIMEOUT: out->kind = AUDIT_TIMEOUT; break;
    case SBX_REFUSED: out->kind = AUDIT_ERROR; break;
    }
    sbx_release(w);
}

void audit_run_body(const uint8_t *body, size_t len, struct audit_outcome *out)
{
    struct x64_asm a;
    x64_asm_init(&a, 1u << 20);
    x64_asm_reserve(&a, 64);
    for (unsigned i = 0; i < 6; i++) EM(&a, x64_push(OP(&a), saved[i]));
    EM(&a, x64_movabs(OP(&a), RAX, CTX_ADDR + offsetof(struct jit_ctx, host_rsp)));
    EM(&a, x64_store(OP(&a), 8, x64_mem_bd(RAX, 0), RSP));
    raw(&a, body, (unsigned)len);
    x64_asm_reserve(&a, 64);
    EM(&a, x64_movabs(OP(&a), RCX, CTX_ADDR + offsetof(struct jit_ctx, regs)));
    EM(&a, x64_store(OP(&a), 8, x64_mem_bd(RCX, 0), RAX));
    uint32_t restore = (uint32_t)a.len;
    EM(&a, x64_movabs(OP(&a), RAX, CTX_ADDR + offsetof(struct jit_ctx, host_rsp)));
    EM(&a, x64_load(OP(&a), 8, RSP, x64_mem_bd(RAX, 0)));
    for (unsigned i = 6; i-- > 0;) EM(&a, x64_pop(OP(&a), saved[i]));
    EM(&a, x64_ret(OP(&a)));
    if (!x64_asm_finish(&a)) {
        memset(out, 0, sizeof *out);
        out->kind = AUDIT_ERROR;
    } else {
        run_code(a.buf, a.len, restore, out);
    }
    x64_asm_free(&a);
}

void audit_syscall(const struct audit_call *call, struct audit_outcome *out)
{
    struct x64_asm a;
    x64_asm_init(&a, 4096);
    x64_asm_reserve(&a, 128);
    static const enum x64_reg sysv[6] = {RDI, RSI, RDX, R10, R8, R9};
    static const enum x64_reg i386[6] = {RBX, RCX, RDX, RSI, RDI, RBP};
    bool compat = call->abi == ABI_I386;
    for (unsigned i = 0; i < 6; i++)
        EM(&a, x64_movabs(OP(&a), compat ? i386[i] : sysv[i], compat ? (uint32_t)call->args[i] : call->args[i]));
    uint64_t nr = call->abi == ABI_X32 ? call->nr | 0x40000000u : call->nr;
    EM(&a, x64_movabs(OP(&a), RAX, nr));
    static const uint8_t syscall_insn[] = {0x0f, 0x05}, int80[] = {0xcd, 0x80};
    raw(&a, compat ? int80 : syscall_insn, 2);
    x64_asm_finish(&a);
    audit_run_body(a.buf, a.len, out);
    x64_asm_free(&a);
}

void audit_describe(const struct audit_outcome *o, char *buf, size_t len)
{
    switch (o->kind) {
    case AUDIT_RETURNED: snprintf(buf, len, "returned %lld", (long long)o->ret); break;
    case AUDIT_FAULTED: snprintf(buf, len, "faulted (signal %d)", o->status); break;
    case AUDIT_KILLED: snprintf(buf, len, "killed by %s", sigabbrev_np(o->status) ? sigabbrev_np(o->status) : "?"); break;
    case AUDIT_EXITED: snprintf(buf, len, "exited %d", o->status); break;
    case AUDIT_TIMEOUT: snprintf(buf, len, "timed out"); break;
    case AUDIT_ERROR: snprintf(buf, len, "no worker"); break;
    }
}

static bool killed_by_sigsys(const struct audit_outcome *o)
{
    return o->kind == AUDIT_KILLED && o->status == SIGSYS;
}

/* --- the policy, evaluated here the way the filter must ------------------------ */

static bool check_holds(const struct sbx_check *c, const uint64_t *args)
{
    uint64_t v = args[c->arg];
    switch (c->op) {
    case SBX_EQ: return v == c->value;
    case SBX_LE: return v <= c->value;
    case SBX_MASKED_EQ: return (v & c->mask) == c->value;
    }
    return false;
}

static bool policy_allows(uint64_t nr, const uint64_t *args)
{
    for (size_t i = 0; i < sbx_nrules; i++) {
        const struct sbx_rule *r = &sbx_rules[i];
        if ((uint64_t)r->nr != nr) continue;
        bool ok = true;
        for (unsigned k = 0; k < r->nchecks; k++) ok = ok && check_holds(&r->checks[k], args);
        if (ok) return true;
    }
    return false;
}

static void base_args(const struct sbx_rule *r, uint64_t *args)
{
    memset(args, 0, 6 * sizeof *args);
    for (unsigned k = 0; k < r->nchecks; k++) {
        const struct sbx_check *c = &r->checks[k];
        args[c->arg] = c->op == SBX_EQ ? c->value : c->op == SBX_LE ? 0x1000 : c->value + 0x10000;
    }
}

static const struct sbx_rule *first_rule(uint64_t nr)
{
    for (size_t i = 0; i < sbx_nrules; i++)
        if ((uint64_t)sbx_rules[i].nr == nr) return &sbx_rules[i];
    return NULL;
}

/* Whether the outcome is what the policy says for these arguments. */
static bool as_expected(uint64_t nr, const uint64_t *args, const struct audit_outcome *o)
{
    return policy_allows(nr, args) ? !killed_by_sigsys(o) && o->kind != AUDIT_ERROR && o->kind != AUDIT_TIMEOUT
                                   : killed_by_sigsys(o);
}

static unsigned report(FILE *log, bool ok, const char *what, const struct audit_outcome *o, unsigned *checks)
{
    (*checks)++;
    if (ok) return 0;
    char d[64];
    audit_describe(o, d, sizeof d);
    if (log) fprintf(log, "FAIL %s: %s\n", what, d);
    return 1;
}

/* System calls the kernel lets past every seccomp filter (x86-64): they only
 * serve the kernel's own uprobe trampolines and fail when called from anywhere
 * else, with SIGILL (uretprobe) or ENXIO (uprobe). */
static const struct {
    uint64_t nr;
    const char *name;
} exempt[] = {{335, "uretprobe"}, {336, "uprobe"}};

static const char *exempt_name(uint64_t nr)
{
    for (size_t i = 0; i < sizeof exempt / sizeof *exempt; i++)
        if (exempt[i].nr == nr) return exempt[i].name;
    return NULL;
}

unsigned audit_syscall_sweep(FILE *log, unsigned *checks)
{
    unsigned failed = 0, n0 = *checks;
    char what[96];
    for (uint64_t nr = 0; nr < AUDIT_MAX_NR; nr++) {
        struct audit_call call = {.abi = ABI_X86_64, .nr = nr};
        const struct sbx_rule *r = first_rule(nr);
        if (r) base_args(r, call.args);
        struct audit_outcome o;
        audit_syscall(&call, &o);
        snprintf(what, sizeof what, "x86-64 syscall %llu%s%s", (unsigned long long)nr, r ? " " : "", r ? r->name : "");
        const char *ex = exempt_name(nr);
        if (ex) { /* not filtered; it must fail without effect (or die) */
            bool ok = killed_by_sigsys(&o) || (o.kind == AUDIT_FAULTED && o.status == SIGILL) ||
                      (o.kind == AUDIT_RETURNED && o.ret < 0 && o.ret > -4096);
            snprintf(what, sizeof what, "x86-64 syscall %llu (%s, exempt from seccomp by the kernel)",
                     (unsigned long long)nr, ex);
            failed += report(log, ok, what, &o, checks);
            if (log && !killed_by_sigsys(&o)) {
                char d[64];
                audit_describe(&o, d, sizeof d);
                fprintf(log, "note: syscall %llu (%s) bypasses seccomp in this kernel and failed: %s\n",
                        (unsigned long long)nr, ex, d);
            }
            continue;
        }
        failed += report(log, as_expected(nr, call.args, &o), what, &o, checks);
    }
    for (uint64_t nr = 0; nr < AUDIT_MAX_NR; nr++) {
        struct audit_call call = {.abi = ABI_X32, .nr = nr};
        const struct sbx_rule *r = first_rule(nr);
        if (r) base_args(r, call.args); /* even arguments that pass as x86-64 */
        struct audit_outcome o;
        audit_syscall(&call, &o);
        snprintf(what, sizeof what, "x32 syscall %llu", (unsigned long long)nr);
        failed += report(log, killed_by_sigsys(&o), what, &o, checks);
    }
    for (uint64_t nr = 0; nr < AUDIT_MAX_I386_NR; nr++) {
        struct audit_call call = {.abi = ABI_I386, .nr = nr};
        struct audit_outcome o;
        audit_syscall(&call, &o);
        snprintf(what, sizeof what, "i386 int 0x80 syscall %llu", (unsigned long long)nr);
        failed += report(log, killed_by_sigsys(&o), what, &o, checks);
    }
    if (log)
        fprintf(log, "syscall sweep: %u calls (x86-64 0-%u, x32 0-%u, i386 0-%u), %u unexpected\n", *checks - n0,
                AUDIT_MAX_NR - 1, AUDIT_MAX_NR - 1, AUDIT_MAX_I386_NR - 1, failed);
    return failed;
}

unsigned audit_arguments(FILE *log, unsigned *checks)
{
    unsigned failed = 0, n0 = *checks, killed = 0;
    char what[160];
    for (size_t i = 0; i < sbx_nrules; i++) {
        const struct sbx_rule *r = &sbx_rules[i];
        struct audit_call call = {.abi = ABI_X86_64, .nr = (uint64_t)r->nr};
        base_args(r, call.args);
        struct audit_outcome o;
        if (r->nchecks) { /* the allowed form; rules without checks are covered by the sweep */
            audit_syscall(&call, &o);
            bool ok = o.kind == AUDIT_RETURNED && o.ret >= -11; /* 0, 1, or EAGAIN from a futex wait */
            snprintf(what, sizeof what, "%s (%s) allowed form", r->name, r->constraint);
            failed += report(log, ok, what, &o, checks);
        }
        for (unsigned k = 0; k < r->nchecks; k++) {
            const struct sbx_check *c = &r->checks[k];
            uint64_t v = call.args[c->arg];
            uint64_t variants[] = {v ^ 1,        v ^ 4,          v ^ 0x80,  v | 1ull << 32, v + 0x1000,
                                   v - 0x1000,   v ^ 1ull << 63, v << 1,    UINT64_MAX,      SBX_CODE,
                                   v + (1ull << 32) + 1};
            for (size_t j = 0; j < sizeof variants / sizeof *variants; j++) {
                struct audit_call p = call;
                p.args[c->arg] = variants[j];
                audit_syscall(&p, &o);
                bool allowed = policy_allows(p.nr, p.args);
                killed += !allowed;
                snprintf(what, sizeof what, "%s arg %u = %#llx (%s)", r->name, c->arg,
                         (unsigned long long)variants[j], allowed ? "allowed by another rule" : "must die");
                failed += report(log, as_expected(p.nr, p.args, &o), what, &o, checks);
            }
        }
    }
    if (log)
        fprintf(log, "argument checks: %u calls (%u perturbations that must die), %u unexpected\n", *checks - n0,
                killed, failed);
    return failed;
}

/* --- process state of a live worker ------------------------------------------------ */

static bool read_text(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "re");
    if (!f) return false;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = 0;
    fclose(f);
    return true;
}

static const char *field(const char *text, const char *name)
{
    const char *p = strstr(text, name);
    return p ? p + strlen(name) : "";
}

static unsigned state_check(FILE *log, bool ok, const char *what, const char *detail, unsigned *checks)
{
    (*checks)++;
    if (!ok && log) fprintf(log, "FAIL worker state: %s (%s)\n", what, detail);
    return !ok;
}

unsigned audit_process_state(FILE *log, unsigned *checks)
{
    struct sbx_worker *w;
    char why[200], path[96], buf[8192], d[128];
    unsigned failed = 0, n0 = *checks;
    if (sbx_acquire(sbx_new_owner_id(), &w, why, sizeof why)) {
        if (log) fprintf(log, "FAIL worker state: no worker (%s)\n", why);
        (*checks)++;
        return 1;
    }
    int pid = (int)w->pid;
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    if (read_text(path, buf, sizeof buf)) {
        static const char *const zero[] = {"CapInh:\t", "CapPrm:\t", "CapEff:\t", "CapBnd:\t", "CapAmb:\t"};
        for (size_t i = 0; i < 5; i++) {
            const char *v = field(buf, zero[i]);
            failed += state_check(log, strspn(v, "0") == 16, zero[i], v, checks);
        }
        failed += state_check(log, *field(buf, "NoNewPrivs:\t") == '1', "NoNewPrivs = 1", "", checks);
        failed += state_check(log, *field(buf, "Seccomp:\t") == '2', "Seccomp = 2 (filter)", "", checks);
        failed += state_check(log, strstr(field(buf, "NSpid:\t"), "\t1\n") != NULL,
                              "pid 1 in its own pid namespace", "", checks);
        failed += state_check(log, strncmp(field(buf, "Name:\t"), "cpvm-worker", 11) == 0, "named cpvm-worker", "",
                              checks);
    } else {
        failed += state_check(log, false, "read status", path, checks);
    }
    static const char *const ns[] = {"user", "mnt", "pid", "net", "ipc", "uts", "cgroup", "time"};
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++) {
        struct stat a, b;
        char mine[64];
        snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, ns[i]);
        snprintf(mine, sizeof mine, "/proc/self/ns/%s", ns[i]);
        bool ok = stat(path, &a) == 0 && stat(mine, &b) == 0 && a.st_ino != b.st_ino;
        snprintf(d, sizeof d, "%s namespace differs from the host's", ns[i]);
        failed += state_check(log, ok, d, path, checks);
    }
    snprintf(path, sizeof path, "/proc/%d/fd", pid);
    DIR *dir = opendir(path);
    int fds = 0;
    for (struct dirent *e; dir && (e = readdir(dir));) fds += e->d_name[0] != '.';
    if (dir) closedir(dir);
    snprintf(d, sizeof d, "%d open", fds);
    failed += state_check(log, dir && fds == 0, "no file descriptors", d, checks);

    snprintf(path, sizeof path, "/proc/%d/mountinfo", pid);
    bool ok = read_text(path, buf, sizeof buf);
    int lines = 0;
    for (char *p = buf; ok && *p; p++) lines += *p == '\n';
    failed += state_check(log, ok && lines == 1 && strstr(buf, " / / ro,") && strstr(buf, "tmpfs"),
                          "one mount: / = read-only tmpfs", buf, checks);
    snprintf(path, sizeof path, "/proc/%d/root", pid);
    dir = opendir(path);
    int entries = 0;
    for (struct dirent *e; dir && (e = readdir(dir));) entries += e->d_name[0] != '.';
    if (dir) closedir(dir);
    failed += state_check(log, dir && entries == 0, "root directory empty", path, checks);

    snprintf(path, sizeof path, "/proc/%d/net/dev", pid);
    ok = read_text(path, buf, sizeof buf);
    int ifaces = 0;
    for (char *p = buf; ok && (p = strchr(p, ':')); p++) ifaces++;
    failed += state_check(log, ok && ifaces == 1 && strstr(buf, "lo:"), "network: only lo", buf, checks);

    snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
    char want[64];
    snprintf(want, sizeof want, "0 %u 1", (unsigned)geteuid());
    ok = read_text(path, buf, sizeof buf);
    char *squeezed = buf, *q = buf;
    for (char *p = buf; ok && *p; p++)
        if (*p != ' ' || (q > squeezed && q[-1] != ' ')) *q++ = *p;
    *q = 0;
    failed += state_check(log, ok && strncmp(squeezed, want, strlen(want)) == 0, "uid map = 0 <host uid> 1", buf,
                          checks);
    snprintf(path, sizeof path, "/proc/%d/setgroups", pid);
    failed += state_check(log, read_text(path, buf, sizeof buf) && strncmp(buf, "deny", 4) == 0, "setgroups deny",
                          buf, checks);

    snprintf(path, sizeof path, "/proc/%d/limits", pid);
    ok = read_text(path, buf, sizeof buf);
    static const char *const limits[] = {"Max file size", "Max processes", "Max open files", "Max locked memory",
                                         "Max core file size", "Max msgqueue size", "Max file locks"};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) {
        const char *l = ok ? strstr(buf, limits[i]) : NULL;
        unsigned long long soft = 1, hard = 1;
        bool parsed = l && sscanf(l + 26, "%llu %llu", &soft, &hard) == 2;
        snprintf(d, sizeof d, "rlimit %s = 0", limits[i]);
        failed += state_check(log, parsed && soft == 0 && hard == 0, d, l ? l : "missing", checks);
    }

    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    ok = read_text(path, buf, sizeof buf);
    bool maps_ok = ok;
    for (char *line = buf; ok && *line;) {
        unsigned long long lo, hi;
        char perms[8] = "";
        if (sscanf(line, "%llx-%llx %7s", &lo, &hi, perms) != 3) { maps_ok = false; break; }
        bool image = lo >= SBX_ZYGOTE_BASE && hi <= SBX_ZYGOTE_BASE + 0x1000000;
        bool mem = lo >= SBX_MEM_MAP && hi <= SBX_MEM_MAP + SBX_MEM_SIZE;
        bool code = lo >= SBX_CODE && hi <= SBX_CODE + SBX_CODE_CAP && strcmp(perms, "--xs") == 0;
        bool vsyscall = lo >= 0xffffffffff600000ull && perms[0] != 'r';
        if (!image && !mem && !code && !vsyscall) {
            maps_ok = false;
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            snprintf(d, sizeof d, "%.*s", (int)sizeof d - 1, line); /* the first mapping, cut to fit */
            break;
        }
        line = strchr(line, '\n');
        if (!line) break;
        line++;
    }
    failed += state_check(log, maps_ok, "mappings: zygote image, memory view, exec-only code only", d, checks);
    sbx_release(w);
    if (log) fprintf(log, "worker state: %u checks, %u failed\n", *checks - n0, failed);
    return failed;
}

unsigned audit_all(FILE *log, unsigned *checks)
{
    *checks = 0;
    unsigned failed = audit_process_state(log, checks);
    failed += audit_arguments(log, checks);
    failed += audit_syscall_sweep(log, checks);
    return failed;
}
