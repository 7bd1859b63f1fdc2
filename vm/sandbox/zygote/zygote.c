/* The zygote: the only program a sandbox worker ever runs. Freestanding (no
 * libc, no dynamic linker), static, position-dependent at SBX_ZYGOTE_BASE; the
 * host embeds it and executes it from a sealed memfd inside fresh namespaces.
 *
 * Start-up maps the two memfds the host passed (guest memory with the control
 * block, native code exec-only), closes every descriptor, unmaps everything
 * else (kernel stack, vdso, vvar), replaces the root with an empty read-only
 * tmpfs, drops every capability (bounding set included), locks securebits, sets
 * rlimits, installs the host-built seccomp filter and then serves commands.
 * Nothing here trusts the guest; everything here trusts the host. */
#include <stddef.h>
#include <stdint.h>

#include "../layout.h"
#include "../raw_syscall.h"

enum {
    NR_read = 0, NR_close = 3, NR_mmap = 9, NR_mprotect = 10, NR_munmap = 11, NR_rt_sigaction = 13,
    NR_rt_sigprocmask = 14, NR_sigaltstack = 131, NR_chdir = 80, NR_capset = 126, NR_pivot_root = 155,
    NR_prctl = 157, NR_setrlimit = 160, NR_mount = 165, NR_umount2 = 166, NR_sethostname = 170,
    NR_setdomainname = 171, NR_futex = 202, NR_exit_group = 231, NR_openat = 257, NR_seccomp = 317,
    NR_close_range = 436,
};

#define SYS(n, ...) sys_args(n, __VA_ARGS__, 0, 0, 0, 0, 0, 0)
#define sys_args(n, a, b, c, d, e, f, ...) raw_syscall6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

/* The compiler may emit calls to these even in freestanding code. */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n)
{
    volatile uint8_t *p = d;
    while (n--) *p++ = (uint8_t)c;
    return d;
}
void *memcpy(void *d, const void *s, size_t n)
{
    volatile uint8_t *p = d;
    const uint8_t *q = s;
    while (n--) *p++ = *q++;
    return d;
}

#define CTRL ((volatile struct sbx_ctrl *)(SBX_WINDOW - SBX_CTRL_OFFSET))
#define CTX ((volatile struct jit_ctx *)(SBX_WINDOW - JIT_CTX_OFFSET))

extern char __executable_start[], _end[];

uint8_t zygote_stack[65536] __attribute__((aligned(64)));
static uint8_t signal_stack[32768] __attribute__((aligned(64)));
static char maps_buf[32768];

/* Copied from the control block when a run starts: the handler must not
 * depend on anything the host may be rewriting. */
static uint64_t run_code_len, run_restore;
/* Guest address up to which the heap sbrk grew in this run is open in
 * hardware; the pages from there to CTRL->rw_end open at the guest's first
 * touch (a fault retried in place) or when the run ends, so a loop of small
 * sbrk calls costs one mprotect, not one per page. */
static uint64_t heap_open_end;
static uint8_t regmap[16];

__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  lea zygote_stack+65536(%rip), %rsp\n"
        "  xor %ebp, %ebp\n"
        "  call zygote_main\n"
        "  ud2\n"
        "sigreturn_stub:\n"
        "  mov $15, %eax\n"
        "  syscall\n"
        "  ud2\n");
extern void sigreturn_stub(void);

static void wake(volatile uint32_t *w)
{
    SYS(NR_futex, w, 1 /* FUTEX_WAKE */, 1, 0, 0, 0);
}

static void reply(uint32_t result)
{
    CTRL->result = result;
    uint32_t old = __atomic_fetch_and(&CTRL->state, ~(uint32_t)SBX_BUSY, __ATOMIC_ACQ_REL);
    if (old & SBX_HOST_ASLEEP) wake(&CTRL->state);
}

static size_t str_len(const char *s)
{
    size_t n = 0;
    while (s[n]) n++;
    return n;
}

/* Set-up failed: say which step and why, then leave. */
static __attribute__((noreturn)) void fail(const char *what, long err)
{
    volatile char *m = CTRL->message;
    size_t n = str_len(what), i = 0;
    for (; i < n && i < 200; i++) m[i] = what[i];
    const char *sep = ": errno ";
    for (size_t k = 0; sep[k]; k++) m[i++] = sep[k];
    unsigned long e = (unsigned long)-err;
    char digits[24];
    int nd = 0;
    do digits[nd++] = (char)('0' + e % 10); while ((e /= 10) && nd < 20);
    while (nd) m[i++] = digits[--nd];
    m[i] = 0;
    reply(SBX_R_FAILED);
    SYS(NR_exit_group, 1);
    __builtin_unreachable();
}

#define CHECK(call, what)                                                                                 \
    do {                                                                                                  \
        long r_ = (call);                                                                                 \
        if (r_ < 0 && r_ > -4096) fail(what, r_);                                                          \
    } while (0)

static uint64_t hex(const char **p)
{
    uint64_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
        if (d == 16) return v;
        v = v << 4 | d;
    }
}

static int keep(uint64_t lo, uint64_t hi)
{
    uint64_t img_lo = (uint64_t)__executable_start & ~0xfffull, img_hi = ((uint64_t)_end + 0xfff) & ~0xfffull;
    if (lo >= img_lo && hi <= img_hi) return 1;
    if (lo >= SBX_MEM_MAP && hi <= SBX_MEM_MAP + SBX_MEM_SIZE) return 1;
    if (lo >= SBX_CODE && hi <= SBX_CODE + SBX_CODE_CAP) return 1;
    return 0;
}

/* Unmaps every mapping that is not the image, the memory view or the code:
 * the kernel's stack (argv, environment, auxv), vdso and vvar. [vsyscall]
 * cannot be unmapped; the kernel maps it execute-only or not at all. */
static void unmap_the_rest(void)
{
    long fd = SYS(NR_openat, -100 /* AT_FDCWD */, "/proc/self/maps", 0 /* O_RDONLY */, 0);
    CHECK(fd, "open /proc/self/maps");
    size_t len = 0;
    for (;;) {
        long n = SYS(NR_read, fd, maps_buf + len, sizeof maps_buf - 1 - len);
        CHECK(n, "read /proc/self/maps");
        if (n == 0) break;
        len += (size_t)n;
        if (len == sizeof maps_buf - 1) fail("/proc/self/maps too long", -7);
    }
    maps_buf[len] = 0;
    SYS(NR_close, fd);
    for (const char *p = maps_buf; *p;) {
        uint64_t lo = hex(&p);
        p++;
        uint64_t hi = hex(&p);
        if (!keep(lo, hi) && lo < 0xffffffffff600000ull) CHECK(SYS(NR_munmap, lo, hi - lo), "munmap");
        while (*p && *p != '\n') p++;
        if (*p) p++;
    }
}

/* The root becomes an empty read-only tmpfs; the old one is detached. */
static void empty_root(void)
{
    CHECK(SYS(NR_mount, 0, "/", 0, 0x4000 /* MS_REC */ | 0x40000 /* MS_PRIVATE */, 0), "make mounts private");
    static const char *const points[] = {"/tmp", "/dev", "/proc", "/mnt", "/run"};
    long r = -2;
    const char *at = 0;
    for (size_t i = 0; i < sizeof points / sizeof *points && r < 0; i++) {
        r = SYS(NR_mount, "none", points[i], "tmpfs", 1 /* RDONLY */ | 2 /* NOSUID */ | 4 /* NODEV */ | 8 /* NOEXEC */,
                "size=0,nr_inodes=1,mode=0500");
        at = points[i];
    }
    CHECK(r, "mount an empty tmpfs");
    CHECK(SYS(NR_chdir, at), "chdir to the new root");
    CHECK(SYS(NR_pivot_root, ".", "."), "pivot_root");
    CHECK(SYS(NR_umount2, ".", 2 /* MNT_DETACH */), "detach the old root");
    CHECK(SYS(NR_chdir, "/"), "chdir /");
}

static void drop_privileges(void)
{
    CHECK(SYS(NR_prctl, 15 /* PR_SET_NAME */, "cpvm-worker"), "PR_SET_NAME");
    CHECK(SYS(NR_prctl, 4 /* PR_SET_DUMPABLE */, 0), "PR_SET_DUMPABLE");
    CHECK(SYS(NR_prctl, 38 /* PR_SET_NO_NEW_PRIVS */, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS");
    for (long cap = 0; cap < 64; cap++) {
        long r = SYS(NR_prctl, 24 /* PR_CAPBSET_DROP */, cap);
        if (r < 0 && r != -22 /* EINVAL: beyond the last capability */) fail("PR_CAPBSET_DROP", r);
    }
    CHECK(SYS(NR_prctl, 47 /* PR_CAP_AMBIENT */, 4 /* CLEAR_ALL */, 0, 0, 0), "PR_CAP_AMBIENT_CLEAR_ALL");
    /* NOROOT, NO_SETUID_FIXUP, NO_CAP_AMBIENT_RAISE, each locked; KEEP_CAPS locked off. */
    CHECK(SYS(NR_prctl, 28 /* PR_SET_SECUREBITS */, 0xef), "PR_SET_SECUREBITS");
    struct { uint32_t version; int pid; } hdr = {0x20080522 /* v3 */, 0};
    struct { uint32_t eff, perm, inh; } data[2] = {{0, 0, 0}, {0, 0, 0}};
    CHECK(SYS(NR_capset, &hdr, data), "capset");

    struct { uint64_t cur, max; } zero = {0, 0};
    static const int limits[] = {1 /* FSIZE */, 2 /* DATA */, 3 /* STACK */, 4 /* CORE */, 6 /* NPROC */,
                                 7 /* NOFILE */, 8 /* MEMLOCK */, 10 /* LOCKS */, 12 /* MSGQUEUE */,
                                 13 /* NICE */, 14 /* RTPRIO */, 15 /* RTTIME */};
    for (size_t i = 0; i < sizeof limits / sizeof *limits; i++) CHECK(SYS(NR_setrlimit, limits[i], &zero), "setrlimit");
    uint64_t image = (uint64_t)_end - (uint64_t)__executable_start;
    struct { uint64_t cur, max; } as = {SBX_MEM_SIZE + SBX_CODE_CAP + image + 0x100000, 0};
    as.max = as.cur;
    CHECK(SYS(NR_setrlimit, 9 /* AS */, &as), "setrlimit AS");
}

/* Kernel struct sigaction layout. */
struct ksigaction {
    void (*handler)(int, void *, void *);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

/* x86 register number -> index in the kernel's sigcontext (r8..r15, rdi, rsi,
 * rbp, rbx, rdx, rax, rcx, rsp, rip). */
static const uint8_t greg_index[16] = {13, 14, 12, 11, 15, 10, 9, 8, 0, 1, 2, 3, 4, 5, 6, 7};

/* A fault inside generated code becomes a guest exit (the host classifies it);
 * anything else is a zygote bug or an attack, and the worker dies. */
static void open_heap(void)
{
    uint64_t end = CTRL->rw_end;
    if (end <= heap_open_end) return;
    CHECK(SYS(NR_mprotect, SBX_WINDOW + heap_open_end, end - heap_open_end, 3 /* PROT_READ | PROT_WRITE */), "sbrk");
    heap_open_end = end;
}

static void on_signal(int sig, void *si, void *ucv)
{
    uint64_t *g = (uint64_t *)((uint8_t *)ucv + 40); /* uc_flags, uc_link, uc_stack, then sigcontext */
    uint64_t rip = g[16];
    if (rip >= SBX_CODE && rip < SBX_CODE + run_code_len) {
        uint64_t addr = *(uint64_t *)((uint8_t *)si + 16);
        if (sig == 11 && addr >= SBX_WINDOW + heap_open_end && addr < SBX_WINDOW + CTRL->rw_end) {
            open_heap(); /* a page sbrk gave: returning retries the access */
            return;
        }
        for (unsigned i = 0; i < JIT_REGS; i++) CTX->regs[i] = g[greg_index[regmap[i] & 15]];
        CTX->exit = JIT_EXIT_FAULT;
        CTX->fault_signal = (uint32_t)sig;
        CTX->fault_rip = rip - SBX_CODE;
        CTX->fault_addr = *(uint64_t *)((uint8_t *)si + 16);
        g[16] = SBX_CODE + run_restore;
        return;
    }
    SYS(NR_exit_group, 128 + sig);
}

static void install_signals(void)
{
    struct { void *sp; int flags; size_t size; } ss = {signal_stack, 0, sizeof signal_stack};
    CHECK(SYS(NR_sigaltstack, &ss, 0), "sigaltstack");
    static const int sigs[] = {4 /* ILL */, 5 /* TRAP */, 7 /* BUS */, 8 /* FPE */, 11 /* SEGV */};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct ksigaction sa = {on_signal, 4 /* SIGINFO */ | 0x08000000 /* ONSTACK */ | 0x40000000 /* NODEFER */ |
                                               0x04000000 /* RESTORER */,
                                sigreturn_stub, 0};
        CHECK(SYS(NR_rt_sigaction, sigs[i], &sa, 0, 8), "rt_sigaction");
    }
    uint64_t none = 0;
    CHECK(SYS(NR_rt_sigprocmask, 2 /* SIG_SETMASK */, &none, 0, 8), "rt_sigprocmask");
}

static void apply_prot(void)
{
    uint32_t n = CTRL->nprot;
    if (n > SBX_MAX_PROT) fail("too many protection changes", -22);
    for (uint32_t i = 0; i < n; i++) {
        volatile struct sbx_prot *p = &CTRL->prot[i];
        CHECK(SYS(NR_mprotect, p->addr, p->len, p->prot), "mprotect of guest pages");
    }
    CTRL->nprot = 0;
}

/* Spin while it pays (layout.h), then sleep until the host posts. */
static uint32_t spin_budget;

static void wait_for_command(void)
{
    volatile uint32_t *state = &CTRL->state;
    for (uint32_t i = 0; i < spin_budget; i++) {
        if (__atomic_load_n(state, __ATOMIC_ACQUIRE) & SBX_BUSY) {
            if (spin_budget < SBX_SPIN_MAX) spin_budget *= 2;
            return;
        }
        __builtin_ia32_pause();
    }
    if (spin_budget > SBX_SPIN_MIN) spin_budget /= 2;
    for (;;) {
        uint32_t v = __atomic_load_n(state, __ATOMIC_ACQUIRE);
        if (v & SBX_BUSY) break;
        if (!(v & SBX_WORKER_ASLEEP)) {
            if (!__atomic_compare_exchange_n(state, &v, v | SBX_WORKER_ASLEEP, 0, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
                continue;
            v |= SBX_WORKER_ASLEEP;
        }
        SYS(NR_futex, state, 0 /* FUTEX_WAIT */, v, 0, 0, 0);
    }
    __atomic_fetch_and(state, ~(uint32_t)SBX_WORKER_ASLEEP, __ATOMIC_ACQ_REL);
}

/* Clears what a previous instance could have left in the zygote's own memory:
 * the signal frames (guest registers at a fault) and the stack below us. */
static __attribute__((noinline)) void scrub(void)
{
    memset(signal_stack, 0, sizeof signal_stack);
    uint8_t here;
    uint8_t *sp = &here;
    if (sp > zygote_stack + 512) memset(zygote_stack, 0, (size_t)(sp - zygote_stack) - 512);
}

typedef void (*entry_fn)(uint64_t window, uint64_t target);

/* The code asked for sbrk (ctx.arg = destination | source << 8): done here
 * as the host's mem_sbrk does it, the new heap pages opened by open_heap. Returns
 * whether the code may continue at ctx.resume (else the host handles it). */
static int worker_sbrk(void)
{
    uint32_t arg = CTX->arg, dst = arg & 0xff, src = (arg >> 8) & 0xff;
    if (!CTRL->sbrk_on || dst >= JIT_REGS || src >= JIT_REGS) return 0;
    uint64_t request = CTX->regs[src];
    uint64_t size = CTRL->sbrk_is64 ? (request > 0xffffffffull ? 0 : request) : (uint32_t)request;
    uint64_t heap = (uint64_t)CTRL->heap_size + size, result = 0;
    if (heap <= 0xffffffffull && heap <= CTRL->heap_max) {
        uint64_t top = (uint64_t)CTRL->heap_base + heap, end = CTRL->rw_end, psz = CTRL->page_size;
        if (top > end) {
            uint64_t new_end = (top + psz - 1) / psz * psz;
            CTRL->rw_end = new_end; /* opened lazily (heap_open_end) */
        }
        CTRL->heap_size = (uint32_t)heap;
        result = (uint64_t)(int64_t)(int32_t)(uint32_t)top;
    }
    CTX->regs[dst] = result;
    CTX->exit = JIT_EXIT_NONE;
    return 1;
}

void zygote_main(void);
void zygote_main(void)
{
    CHECK(SYS(NR_mmap, SBX_MEM_MAP, SBX_MEM_SIZE, 0, 0x01 /* SHARED */ | 0x10 /* FIXED */ | 0x4000 /* NORESERVE */,
              SBX_FD_MEM, 0) == (long)SBX_MEM_MAP ? 0 : -1,
          "map guest memory"); /* no control block yet: fail() would fault, the host sees the exit */
    CHECK(SYS(NR_mprotect, SBX_WINDOW - SBX_CTRL_OFFSET, SBX_CTRL_SIZE, 3), "control block");
    CHECK(SYS(NR_mprotect, SBX_WINDOW - MEM_CANARY_BELOW, MEM_CANARY_BELOW, 3), "context and canary");
    CHECK(SYS(NR_mprotect, SBX_WINDOW + MEM_WINDOW + MEM_CANARY_ABOVE, 0x1000, 3), "upper canary");
    long code = SYS(NR_mmap, SBX_CODE, SBX_CODE_CAP, 4 /* PROT_EXEC */, 0x01 | 0x10, SBX_FD_CODE, 0);
    if (code != (long)SBX_CODE) fail("map native code", code);
    for (unsigned i = 0; i < 16; i++) regmap[i] = CTRL->regmap[i];
    spin_budget = CTRL->spin;
    if (spin_budget && (spin_budget < SBX_SPIN_MIN || spin_budget > SBX_SPIN_MAX)) spin_budget = SBX_SPIN_MIN;

    unmap_the_rest();
    CHECK(SYS(NR_close_range, 0, ~0u, 0), "close_range");
    CHECK(SYS(NR_sethostname, "cpvm", 4), "sethostname");
    CHECK(SYS(NR_setdomainname, "cpvm", 4), "setdomainname");
    empty_root();
    install_signals();
    drop_privileges();

    uint32_t flen = CTRL->filter_len;
    if (flen == 0 || flen > SBX_MAX_FILTER) fail("bad seccomp filter length", -22);
    static struct sbx_filter_insn filter[SBX_MAX_FILTER];
    for (uint32_t i = 0; i < flen; i++) filter[i] = *(const struct sbx_filter_insn *)&CTRL->filter[i];
    struct { unsigned short len; struct sbx_filter_insn *insns; } prog = {(unsigned short)flen, filter};
    CHECK(SYS(NR_seccomp, 1 /* SECCOMP_SET_MODE_FILTER */, 0, &prog), "seccomp");
    reply(SBX_R_OK);

    uint64_t seen_gen = 0;
    for (;;) {
        wait_for_command();
        uint32_t cmd = CTRL->cmd;
        if (cmd == SBX_CMD_SCRUB) scrub();
        apply_prot();
        if (cmd == SBX_CMD_RUN) {
            run_code_len = CTRL->code_len;
            run_restore = CTRL->restore;
            uint64_t gen = CTRL->code_gen;
            if (gen != seen_gen) { /* the host rewrote the code: serialize before running it */
                unsigned a = 0, b, c = 0, d;
                __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d)::"memory");
                seen_gen = gen;
            }
            entry_fn entry = (entry_fn)(SBX_CODE + CTRL->entry);
            heap_open_end = CTRL->rw_end;
            entry(SBX_WINDOW, CTRL->target);
            while (CTX->exit == JIT_EXIT_SBRK && worker_sbrk()) entry(SBX_WINDOW, CTX->resume);
            run_code_len = 0;
            open_heap(); /* the host takes the pages up to rw_end as open */
        }
        reply(SBX_R_OK);
    }
}
