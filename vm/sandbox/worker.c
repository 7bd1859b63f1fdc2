/* Worker processes: creating one (clone3 into fresh namespaces, exec of the
 * embedded zygote from a sealed memfd), talking to it (a futex word in shared
 * memory, always with a liveness check and an optional deadline), and killing it.
 *
 * Between clone3 and exec the child is a copy of a possibly multi-threaded host,
 * so it only makes raw system calls (no libc, no allocation, no locks). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../jit/jit.h"
#include "raw_syscall.h"
#include "sandbox.h"

extern const unsigned char cpvm_zygote_image[];
extern const size_t cpvm_zygote_image_len;

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010u
#endif
#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif

uint64_t sbx_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- process-wide state: the zygote executable, the filter, our own pidfd ----- */

static struct {
    pthread_once_t once;
    int exe_fd;   /* sealed memfd holding the zygote */
    int self_fd;  /* pidfd of this process: the child checks it after PDEATHSIG */
    pid_t self_pid;
    struct sbx_filter_insn filter[SBX_MAX_FILTER];
    uint32_t filter_len;
    char error[160];
    bool probed, available;
    char why[200];
    pthread_mutex_t probe_lock, self_lock;
} g = {.once = PTHREAD_ONCE_INIT,
       .exe_fd = -1,
       .self_fd = -1,
       .probe_lock = PTHREAD_MUTEX_INITIALIZER,
       .self_lock = PTHREAD_MUTEX_INITIALIZER};

static void global_init(void)
{
    if (sbx_policy_build(g.filter, SBX_MAX_FILTER, &g.filter_len, g.error, sizeof g.error)) return;
    int fd = memfd_create("cpvm-zygote", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
    if (fd < 0 && errno == EINVAL) fd = memfd_create("cpvm-zygote", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || write(fd, cpvm_zygote_image, cpvm_zygote_image_len) != (ssize_t)cpvm_zygote_image_len ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0) {
        snprintf(g.error, sizeof g.error, "cannot create the zygote memfd: %s", strerror(errno));
        if (fd >= 0) close(fd);
        return;
    }
    int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (self < 0) {
        snprintf(g.error, sizeof g.error, "pidfd_open: %s (Linux >= 5.3 needed)", strerror(errno));
        close(fd);
        return;
    }
    fcntl(self, F_SETFD, FD_CLOEXEC);
    g.exe_fd = fd;
    g.self_fd = self;
    g.self_pid = getpid();
}

/* --- the child, between clone3 and exec --------------------------------------- */

#define RAW(n, a, b, c, d, e, f) raw_syscall6(n, (long)(a), (long)(b), (long)(c), (long)(d), (long)(e), (long)(f))

struct child_args {
    int memfd, codefd, exe_fd, self_fd;
    char uid_map[32], gid_map[32];
    volatile struct sbx_ctrl *ctrl;
};

static void child_write(const char *path, const char *text)
{
    long fd = RAW(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CLOEXEC, 0, 0, 0);
    size_t n = 0;
    while (text[n]) n++;
    if (fd < 0 || RAW(SYS_write, fd, text, n, 0, 0, 0) != (long)n) RAW(SYS_exit_group, 120, 0, 0, 0, 0, 0);
    RAW(SYS_close, fd, 0, 0, 0, 0, 0);
}

#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize_address, noreturn))
#endif
static void child_main(const struct child_args *a)
{
    /* Die with the host; if it already died before this line, notice now. */
    RAW(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0, 0);
    struct { int fd; short events, revents; } p = {a->self_fd, 1 /* POLLIN */, 0};
    struct timespec zero = {0, 0};
    if (RAW(SYS_ppoll, &p, 1, &zero, 0, 0, 0) != 0) RAW(SYS_exit_group, 121, 0, 0, 0, 0, 0);

    child_write("/proc/self/setgroups", "deny");
    child_write("/proc/self/gid_map", a->gid_map);
    child_write("/proc/self/uid_map", a->uid_map);

    /* Move what the zygote needs above every fixed number, then into place. */
    long mem = RAW(SYS_fcntl, a->memfd, F_DUPFD_CLOEXEC, 64, 0, 0, 0);
    long code = RAW(SYS_fcntl, a->codefd, F_DUPFD_CLOEXEC, 64, 0, 0, 0);
    long exe = RAW(SYS_fcntl, a->exe_fd, F_DUPFD_CLOEXEC, 64, 0, 0, 0);
    if (mem < 0 || code < 0 || exe < 0 || RAW(SYS_dup3, mem, SBX_FD_MEM, 0, 0, 0, 0) < 0 ||
        RAW(SYS_dup3, code, SBX_FD_CODE, 0, 0, 0, 0) < 0 || RAW(SYS_dup3, exe, SBX_FD_EXE, O_CLOEXEC, 0, 0, 0) < 0)
        RAW(SYS_exit_group, 122, 0, 0, 0, 0, 0);
    RAW(SYS_close_range, 0, 2, 0, 0, 0, 0);
    RAW(SYS_close_range, SBX_FD_EXE + 1, ~0u, 0, 0, 0, 0);
    RAW(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0);

    static const char *const argv[] = {"cpvm-zygote", NULL};
    static const char *const envp[] = {NULL};
    long r = RAW(SYS_execveat, SBX_FD_EXE, "", argv, envp, AT_EMPTY_PATH, 0);
    const char *msg = "execveat of the zygote failed";
    volatile char *m = a->ctrl->message;
    for (unsigned i = 0; msg[i]; i++) m[i] = msg[i];
    RAW(SYS_exit_group, r == -ENOENT ? 123 : 124, 0, 0, 0, 0, 0);
    __builtin_unreachable();
}

/* --- host side ------------------------------------------------------------------ */

static void *map_memfd(const char *name, uint64_t size, int seals, int *fd_out)
{
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return NULL;
    void *p = MAP_FAILED;
    if (ftruncate(fd, (off_t)size) == 0)
        p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
    /* Sealed after our mapping exists: FUTURE_WRITE refuses the worker any new
     * writable mapping of the code while ours stays writable. */
    if (p == MAP_FAILED || fcntl(fd, F_ADD_SEALS, seals) != 0) {
        if (p != MAP_FAILED) munmap(p, size);
        close(fd);
        return NULL;
    }
    *fd_out = fd;
    return p;
}

static void record_exit(struct sbx_worker *w, const siginfo_t *si)
{
    w->dead = true;
    w->exit_code = si->si_code;
    w->exit_status = si->si_status;
}

static void kill_and_reap(struct sbx_worker *w)
{
    if (w->dead || w->pidfd < 0) return;
    syscall(SYS_pidfd_send_signal, w->pidfd, SIGKILL, NULL, 0);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    while (waitid(P_PIDFD, (id_t)w->pidfd, &si, WEXITED | __WALL) != 0 && errno == EINTR) {}
    record_exit(w, &si);
}

void sbx_worker_kill(struct sbx_worker *w)
{
    kill_and_reap(w);
}

void sbx_worker_destroy(struct sbx_worker *w)
{
    if (!w) return;
    if (w->pidfd >= 0) {
        kill_and_reap(w);
        close(w->pidfd);
    }
    if (w->perm_table) munmap(w->perm_table, MEM_PAGES);
    if (w->hw_table) munmap(w->hw_table, MEM_PAGES);
    if (w->mem_view) munmap(w->mem_view, SBX_MEM_SIZE);
    if (w->code_view) munmap(w->code_view, SBX_CODE_CAP);
    if (w->memfd >= 0) close(w->memfd);
    if (w->codefd >= 0) close(w->codefd);
    free(w);
}

/* Whether the worker still runs; records how it ended otherwise. */
bool sbx_worker_alive(struct sbx_worker *w)
{
    if (w->dead) return false;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    if (waitid(P_PIDFD, (id_t)w->pidfd, &si, WEXITED | WNOHANG | __WALL) == 0 && si.si_pid == 0) return true;
    record_exit(w, &si);
    return false;
}

void sbx_worker_death(const struct sbx_worker *w, char *buf, size_t len)
{
    if (!w->dead) snprintf(buf, len, "alive");
    else if (w->exit_code == CLD_EXITED) snprintf(buf, len, "exited with status %d", w->exit_status);
    else snprintf(buf, len, "killed by signal %d (%s)", w->exit_status, strsignal(w->exit_status));
}

static void futex_wake(volatile uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Whether this process may run on one CPU only (then spinning never helps). */
static bool one_cpu(void)
{
    cpu_set_t set;
    return sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1;
}

/* Waits for the worker to answer the command in ctrl (the spawn's INIT too):
 * spins while that pays (layout.h), then sleeps in slices with liveness
 * checks and the deadline. */
static enum sbx_wait wait_answer(struct sbx_worker *w, uint64_t deadline_ns)
{
    volatile struct sbx_ctrl *c = w->ctrl;
    volatile uint32_t *state = &c->state;
    for (uint32_t i = 0; i < w->spin; i++) {
        if (!(__atomic_load_n(state, __ATOMIC_ACQUIRE) & SBX_BUSY)) {
            if (w->spin < SBX_SPIN_MAX) w->spin *= 2;
            goto answered;
        }
        __builtin_ia32_pause();
    }
    if (w->spin > SBX_SPIN_MIN) w->spin /= 2;
    for (unsigned round = 0;; round++) {
        uint32_t v = __atomic_load_n(state, __ATOMIC_ACQUIRE);
        if (!(v & SBX_BUSY)) break;
        if (round == 0) {
            /* Cores shared with the worker (or with others): give it the
             * rest of this time slice first; a short command is often done
             * by then, without a futex sleep and wake-up on either side. */
            sched_yield();
            continue;
        }
        if (!(v & SBX_HOST_ASLEEP)) {
            if (!__atomic_compare_exchange_n(state, &v, v | SBX_HOST_ASLEEP, false, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE))
                continue;
            v |= SBX_HOST_ASLEEP;
        }
        /* Liveness checks every 1 ms at first (a killed worker is noticed at
         * once), every 10 ms once the guest has run for a while. */
        uint64_t slice = round < 100 ? 1000000 : 10000000;
        if (deadline_ns) {
            uint64_t now = sbx_now_ns();
            if (now >= deadline_ns) {
                kill_and_reap(w);
                return SBX_TIMEOUT;
            }
            if (deadline_ns - now < slice) slice = deadline_ns - now;
        }
        struct timespec ts = {(time_t)(slice / 1000000000u), (long)(slice % 1000000000u)};
        if (syscall(SYS_futex, state, FUTEX_WAIT, v, &ts, NULL, 0) != 0 && errno == ETIMEDOUT &&
            !sbx_worker_alive(w)) {
            __atomic_fetch_and(state, ~(uint32_t)SBX_HOST_ASLEEP, __ATOMIC_ACQ_REL);
            return SBX_DIED;
        }
    }
    __atomic_fetch_and(state, ~(uint32_t)SBX_HOST_ASLEEP, __ATOMIC_ACQ_REL);
answered:
    /* SECURITY: the answer is the worker's word; a dead worker's is worth nothing. */
    if (c->result == SBX_R_OK) return SBX_DONE;
    if (!sbx_worker_alive(w)) return SBX_DIED;
    return SBX_REFUSED;
}

enum sbx_wait sbx_worker_call(struct sbx_worker *w, enum sbx_cmd cmd, uint64_t deadline_ns)
{
    volatile struct sbx_ctrl *c = w->ctrl;
    /* A worker that died while idle is noticed by the wait's first liveness
     * check, so a command costs no system call up front. */
    if (w->dead) return SBX_DIED;
    c->cmd = cmd;
    c->result = SBX_R_NONE;
    uint32_t old = __atomic_fetch_or(&c->state, SBX_BUSY, __ATOMIC_ACQ_REL);
    if (old & SBX_WORKER_ASLEEP) futex_wake(&c->state);
    return wait_answer(w, deadline_ns);
}

cpvm_status sbx_worker_spawn(struct sbx_worker **out, char *why, size_t why_len)
{
    *out = NULL;
    pthread_once(&g.once, global_init);
    if (g.exe_fd < 0) {
        snprintf(why, why_len, "%s", g.error[0] ? g.error : "sandbox initialisation failed");
        return CPVM_E_UNSUPPORTED;
    }
    /* After a fork the pidfd names the parent: the child needs its own. */
    pthread_mutex_lock(&g.self_lock);
    if (g.self_pid != getpid()) {
        int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (self >= 0) {
            fcntl(self, F_SETFD, FD_CLOEXEC);
            close(g.self_fd);
            g.self_fd = self;
            g.self_pid = getpid();
        }
    }
    int self_fd = g.self_fd;
    pthread_mutex_unlock(&g.self_lock);
    struct sbx_worker *w = calloc(1, sizeof *w);
    if (!w) return CPVM_E_NO_MEMORY;
    w->pidfd = w->memfd = w->codefd = -1;
    w->mem_view = map_memfd("cpvm-memory", SBX_MEM_SIZE, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW, &w->memfd);
    if (w->mem_view)
        w->code_view = map_memfd("cpvm-code", SBX_CODE_CAP,
                                 F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_FUTURE_WRITE, &w->codefd);
    if (!w->mem_view || !w->code_view) {
        snprintf(why, why_len, "cannot create the worker's memfds: %s", strerror(errno));
        sbx_worker_destroy(w);
        return CPVM_E_NO_MEMORY;
    }
    w->ctrl = (volatile struct sbx_ctrl *)(sbx_window(w) - SBX_CTRL_OFFSET);
    volatile struct sbx_ctrl *c = w->ctrl;
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++) c->regmap[i] = (uint8_t)jit_host_reg[i];
    memcpy((void *)c->filter, g.filter, g.filter_len * sizeof *g.filter);
    c->filter_len = g.filter_len;
    /* One CPU: the other side cannot answer while this one spins (0: never). */
    w->spin = one_cpu() ? 0 : SBX_SPIN_MAX;
    c->spin = w->spin;
    c->cmd = SBX_CMD_INIT;
    c->state = SBX_BUSY;

    struct child_args a = {.memfd = w->memfd, .codefd = w->codefd, .exe_fd = g.exe_fd, .self_fd = self_fd,
                           .ctrl = c};
    snprintf(a.uid_map, sizeof a.uid_map, "0 %u 1\n", (unsigned)geteuid());
    snprintf(a.gid_map, sizeof a.gid_map, "0 %u 1\n", (unsigned)getegid());

    struct clone_args ca;
    memset(&ca, 0, sizeof ca);
    int pidfd = -1;
    ca.flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
               CLONE_NEWCGROUP | CLONE_NEWTIME | CLONE_PIDFD | CLONE_CLEAR_SIGHAND;
    ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
    ca.exit_signal = 0; /* no SIGCHLD: we wait on the pidfd */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    long pid = syscall(SYS_clone3, &ca, sizeof ca);
    if (pid == 0) child_main(&a);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        snprintf(why, why_len, "clone3 into new namespaces failed: %s%s", strerror(saved),
                 saved == EPERM || saved == ENOSPC ? " (user namespaces disabled? see SECURITY.md)" : "");
        sbx_worker_destroy(w);
        return CPVM_E_UNSUPPORTED;
    }
    w->pid = (pid_t)pid;
    w->pidfd = pidfd;
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);

    /* The zygote locks itself down and answers the INIT posted above. */
    if (wait_answer(w, sbx_now_ns() + 10000000000ull) != SBX_DONE) {
        char msg[200], death[80];
        size_t n = 0;
        for (; n < sizeof msg - 1 && c->message[n]; n++) msg[n] = c->message[n];
        msg[n] = 0;
        sbx_worker_death(w, death, sizeof death);
        snprintf(why, why_len, "worker start failed: %s (%s)", n ? msg : "no message", death);
        sbx_worker_destroy(w);
        return CPVM_E_UNSUPPORTED;
    }
    memset((void *)c->filter, 0, sizeof c->filter);
    *out = w;
    return CPVM_OK;
}

cpvm_status sbx_worker_load_code(struct sbx_worker *w, uint64_t owner, const uint8_t *code, size_t len)
{
    if (len > SBX_CODE_CAP) return CPVM_E_LIMIT;
    /* SECURITY (F4): nothing of the previous module's code survives; int3 beyond the new code. */
    if (w->code_used > len) memset(w->code_view + len, 0xcc, w->code_used - len);
    memcpy(w->code_view, code, len);
    w->code_used = len;
    w->code_owner = owner;
    w->code_gen++;
    return CPVM_OK;
}

static uint64_t committed(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_blocks * 512u : 0;
}

void sbx_worker_memory(const struct sbx_worker *w, uint64_t *shared, uint64_t *private_bytes)
{
    *shared = committed(w->memfd) + committed(w->codefd);
    *private_bytes = 0;
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)w->pid);
    FILE *f = fopen(path, "re");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        /* Anonymous pages only: memfd pages are already counted as shared. */
        if (sscanf(line, "Anonymous: %llu kB", &kb) == 1) *private_bytes += kb * 1024u;
    }
    fclose(f);
}

bool sbx_available(const char **why)
{
    pthread_mutex_lock(&g.probe_lock);
    if (!g.probed) {
        struct sbx_worker *w;
        g.available = sbx_acquire(0, &w, g.why, sizeof g.why) == CPVM_OK;
        if (g.available) sbx_release(w);
        g.probed = true;
    }
    pthread_mutex_unlock(&g.probe_lock);
    if (why) *why = g.available ? NULL : g.why;
    return g.available;
}
