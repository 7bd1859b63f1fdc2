/* Escape tests: what a compromised worker (native code execution inside it)
 * tries, what a worker that lies to the host does, and the lifecycle promises
 * (deadline, worker death, host death, reuse hygiene). Every test also checks
 * that the host is unharmed and the pool still serves a plain program.
 * Guest-level attacks (ordinary program blobs) are the .case files in sandbox-tests/guest,
 * run on every backend by vm/tests/test_cases. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "interp/interp.h"
#include "jit/jit.h"
#include "sandbox/sandbox.h"
#include "testutil.h"
#include "text/text.h"

/* --- helpers ------------------------------------------------------------------------ */

struct vm {
    uint8_t *blob;
    cpvm_program *p;
    cpvm_module *m;
    cpvm_instance *in;
};

static void vm_open_aux(struct vm *v, const char *src, bool gas, uint32_t aux)
{
    size_t len;
    struct cpvm_error e;
    if (text_assemble(src, strlen(src), CPVM_ISA_LATEST64, false, &v->blob, &len, &e))
        fail_msg("assembly line %llu: %s", (unsigned long long)e.offset, e.detail);
    assert_int_equal(cpvm_program_parse(v->blob, len, CPVM_PARSE_BORROW, &v->p, &e), CPVM_OK);
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.backend = CPVM_BACKEND_COMPILER;
    cfg.sandbox = CPVM_SANDBOX_ZYGOTE;
    cfg.gas_metering = gas;
    cfg.aux_data_size = aux;
    assert_int_equal(cpvm_module_new(v->p, &cfg, &v->m, &e), CPVM_OK);
    assert_int_equal(cpvm_module_backend(v->m, NULL), CPVM_BACKEND_COMPILER);
    assert_int_equal(cpvm_module_sandbox(v->m), CPVM_SANDBOX_ZYGOTE);
    assert_int_equal(cpvm_instance_new(v->m, &v->in, &e), CPVM_OK);
    cpvm_instance_set_gas(v->in, 1000000);
    cpvm_instance_prepare_call(v->in, 0);
}

static void vm_open(struct vm *v, const char *src, bool gas)
{
    vm_open_aux(v, src, gas, 0);
}

static void vm_close(struct vm *v)
{
    cpvm_instance_free(v->in);
    cpvm_module_free(v->m);
    cpvm_program_free(v->p);
    free(v->blob);
}

static const char *const halt_src = "pub @main:\n    a0 = 42\n    ret\n";

/* The host survived and the pool still works: a plain program runs. */
static void pool_still_works(void)
{
    struct vm v;
    vm_open(&v, halt_src, true);
    struct cpvm_interrupt out;
    assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
    assert_int_equal(out.exit, CPVM_EXIT_HALT);
    assert_int_equal(cpvm_instance_reg(v.in, CPVM_REG_A0), 42);
    assert_true(cpvm_instance_integrity_ok(v.in));
    vm_close(&v);
}

static void expect_sigsys(uint64_t nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, const char *what)
{
    struct audit_call c = {.abi = ABI_X86_64, .nr = nr, .args = {a0, a1, a2, a3, 0, 0}};
    struct audit_outcome o;
    audit_syscall(&c, &o);
    char d[64];
    audit_describe(&o, d, sizeof d);
    if (!(o.kind == AUDIT_KILLED && o.status == SIGSYS)) fail_msg("%s: %s, expected death by SIGSYS", what, d);
}

/* --- post-compromise: native code in the worker ------------------------------------ */

static void test_files_network_proc(void **state)
{
    (void)state;
    expect_sigsys(257, (uint64_t)-100, SBX_WINDOW + 0x10000, 0, 0, "openat a file");
    expect_sigsys(2, SBX_WINDOW + 0x10000, 0, 0, 0, "open");
    expect_sigsys(85, SBX_WINDOW + 0x10000, 0644, 0, 0, "creat");
    expect_sigsys(0, 0, SBX_WINDOW + 0x10000, 16, 0, "read stdin");
    expect_sigsys(1, 2, SBX_WINDOW + 0x10000, 16, 0, "write stderr");
    expect_sigsys(41, 2 /* AF_INET */, 1, 0, 0, "socket");
    expect_sigsys(42, 3, SBX_WINDOW + 0x10000, 16, 0, "connect");
    expect_sigsys(89, SBX_WINDOW + 0x10000, SBX_WINDOW + 0x20000, 64, 0, "readlink /proc/self/exe");
    expect_sigsys(78, 3, SBX_WINDOW + 0x10000, 4096, 0, "getdents");
    pool_still_works();
}

static void test_processes(void **state)
{
    (void)state;
    expect_sigsys(62, 1, SIGKILL, 0, 0, "kill(1)");
    expect_sigsys(62, (uint64_t)-1, SIGKILL, 0, 0, "kill(-1)");
    expect_sigsys(234, 1, 1, SIGKILL, 0, "tgkill");
    expect_sigsys(424, 3, SIGKILL, 0, 0, "pidfd_send_signal");
    expect_sigsys(101, 16 /* PTRACE_ATTACH */, 1, 0, 0, "ptrace attach");
    expect_sigsys(311, 1, SBX_WINDOW, 1, SBX_WINDOW, "process_vm_writev");
    expect_sigsys(57, 0, 0, 0, 0, "fork");
    expect_sigsys(58, 0, 0, 0, 0, "vfork");
    expect_sigsys(56, 0x11 /* SIGCHLD */, 0, 0, 0, "clone");
    expect_sigsys(435, SBX_WINDOW + 0x10000, 88, 0, 0, "clone3");
    expect_sigsys(59, SBX_WINDOW + 0x10000, 0, 0, 0, "execve");
    expect_sigsys(322, 3, SBX_WINDOW + 0x10000, 0, 0, "execveat");
    pool_still_works();
}

static void test_memory(void **state)
{
    (void)state;
    expect_sigsys(9, 0, 0x1000, 7, 0x22, "mmap rwx anonymous");
    expect_sigsys(9, SBX_WINDOW + 0x10000, 0x1000, 3, 0x11, "mmap over the window");
    expect_sigsys(10, SBX_CODE, 0x1000, 3, 0, "mprotect the code writable");
    expect_sigsys(10, SBX_CODE, 0x1000, 1, 0, "mprotect the code readable");
    expect_sigsys(10, SBX_WINDOW + 0x10000, 0x1000, 7, 0, "mprotect a guest page rwx");
    expect_sigsys(10, SBX_WINDOW + 0x10000, 0x1000, 5, 0, "mprotect a guest page r-x");
    expect_sigsys(10, SBX_WINDOW - 0x1000, 0x1000, 3, 0, "mprotect the context page");
    expect_sigsys(10, SBX_WINDOW + 0x10000, 0x200000000ull, 3, 0, "mprotect past the window's reach");
    expect_sigsys(11, SBX_CODE, 0x1000, 0, 0, "munmap the code");
    expect_sigsys(25, SBX_CODE, 0x1000, 0x2000, 3, "mremap the code");
    expect_sigsys(28, SBX_CODE, 0x1000, 4, 0, "madvise");
    expect_sigsys(12, 0, 0, 0, 0, "brk");
    expect_sigsys(319, SBX_WINDOW, 0, 0, 0, "memfd_create");
    expect_sigsys(323, 0, 0, 0, 0, "userfaultfd");

    /* Writing the native code directly: the mapping is exec-only. */
    struct x64_asm a;
    x64_asm_init(&a, 4096);
    x64_asm_reserve(&a, 64);
    x64_advance(&a, x64_movabs(x64_cur(&a), RCX, SBX_CODE));
    x64_advance(&a, x64_store_imm(x64_cur(&a), 1, x64_mem_bd(RCX, 0), 0x90));
    x64_advance(&a, x64_mov_ri(x64_cur(&a), 8, RAX, 1));
    assert_true(x64_asm_finish(&a));
    struct audit_outcome o;
    audit_run_body(a.buf, a.len, &o);
    x64_asm_free(&a);
    assert_int_equal(o.kind, AUDIT_FAULTED);
    assert_int_equal(o.status, SIGSEGV);
    pool_still_works();
}

static void test_namespaces_and_privileges(void **state)
{
    (void)state;
    expect_sigsys(308, 3, 0, 0, 0, "setns");
    expect_sigsys(272, 0x10000000 /* CLONE_NEWUSER */, 0, 0, 0, "unshare");
    expect_sigsys(161, SBX_WINDOW + 0x10000, 0, 0, 0, "chroot");
    expect_sigsys(165, 0, SBX_WINDOW + 0x10000, 0, 0, "mount");
    expect_sigsys(155, SBX_WINDOW + 0x10000, SBX_WINDOW + 0x10000, 0, 0, "pivot_root");
    expect_sigsys(157, 38 /* PR_SET_NO_NEW_PRIVS */, 0, 0, 0, "prctl");
    expect_sigsys(317, 1, 0, 0, 0, "seccomp");
    expect_sigsys(126, SBX_WINDOW + 0x10000, 0, 0, 0, "capset");
    expect_sigsys(105, 0, 0, 0, 0, "setuid");
    expect_sigsys(321, 0, 0, 0, 0, "bpf");
    expect_sigsys(298, 0, 0, (uint64_t)-1, 0, "perf_event_open");
    expect_sigsys(425, 8, 0, 0, 0, "io_uring_setup");
    expect_sigsys(250, 0, 0, 0, 0, "keyctl");
    expect_sigsys(158, 0x1002 /* ARCH_SET_FS */, 0, 0, 0, "arch_prctl");
    expect_sigsys(154, 1, 0, 0, 0, "modify_ldt");
    expect_sigsys(135, 0x0008 /* READ_IMPLIES_EXEC */, 0, 0, 0, "personality");
    pool_still_works();
}

/* --- a worker that lies to the host ------------------------------------------------- */

/* Replaces the instance's code with a payload at its entry that writes `value`
 * into context field `off` (and exit = `why`), then returns to the zygote. */
static void tamper(struct vm *v, uint32_t why, uint32_t off, uint64_t value, unsigned width)
{
    const struct jit_code *jc = v->m->jit;
    uint8_t *code = malloc(jc->len);
    memset(code, 0xcc, jc->len);
    struct x64_asm a;
    x64_asm_init(&a, 4096);
    x64_asm_reserve(&a, 128);
    uint64_t ctx = SBX_WINDOW - JIT_CTX_OFFSET;
    x64_advance(&a, x64_movabs(x64_cur(&a), RAX, ctx + offsetof(struct jit_ctx, exit)));
    x64_advance(&a, x64_store_imm(x64_cur(&a), 4, x64_mem_bd(RAX, 0), (int32_t)why));
    x64_advance(&a, x64_movabs(x64_cur(&a), RAX, ctx + off));
    x64_advance(&a, x64_movabs(x64_cur(&a), RCX, value));
    x64_advance(&a, x64_store(x64_cur(&a), (x64_width)width, x64_mem_bd(RAX, 0), RCX));
    x64_advance(&a, x64_ret(x64_cur(&a)));
    assert_true(x64_asm_finish(&a));
    assert_true(jc->entry_off + a.len <= jc->len);
    memcpy(code + jc->entry_off, a.buf, a.len);
    x64_asm_free(&a);
    struct sbx_worker *w = v->in->worker;
    assert_int_equal(sbx_worker_load_code(w, w->code_owner, code, jc->len), CPVM_OK);
    free(code);
}

static void test_lying_worker(void **state)
{
    (void)state;
    static const struct {
        const char *what;
        uint32_t exit, off;
        uint64_t value;
        unsigned width;
    } lies[] = {
        {"gas raised", JIT_EXIT_HALT, offsetof(struct jit_ctx, gas), INT64_MAX, 8},
        {"unknown exit", 77, offsetof(struct jit_ctx, pc), 0, 4},
        {"sbrk into a register past the file", JIT_EXIT_SBRK, offsetof(struct jit_ctx, arg), 0xff0d, 4},
        {"host call at a pc past the code", JIT_EXIT_ECALLI, offsetof(struct jit_ctx, pc), 0xffffffff, 4},
        {"resume outside the code", JIT_EXIT_ECALLI, offsetof(struct jit_ctx, resume), SBX_CODE + 0x7fffffff, 8},
        {"canary overwritten", JIT_EXIT_HALT, offsetof(struct jit_ctx, canary), 0, 8},
        {"halt at a pc past the code", JIT_EXIT_HALT, offsetof(struct jit_ctx, pc), 0x7fffffff, 4},
    };
    for (size_t i = 0; i < sizeof lies / sizeof *lies; i++) {
        struct vm v;
        vm_open(&v, "pub @main:\n    a0 = 1\n    ecalli 7\n    ret\n", true);
        tamper(&v, lies[i].exit, lies[i].off, lies[i].value, lies[i].width);
        struct cpvm_interrupt out;
        cpvm_status s = cpvm_instance_run(v.in, &out);
        if (s != CPVM_E_SANDBOX) fail_msg("%s: run() returned %s, expected a sandbox error", lies[i].what,
                                          cpvm_status_message(s));
        assert_false(cpvm_instance_integrity_ok(v.in));
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_E_SANDBOX); /* stays dead */
        vm_close(&v);
        pool_still_works();
    }
}

/* --- lifecycle ------------------------------------------------------------------------ */

static void test_deadline_ends_an_infinite_loop(void **state)
{
    (void)state;
    struct vm v;
    vm_open(&v, "pub @main:\n@loop:\n    a0 = a0 + 1\n    jump @loop\n", false);
    assert_int_equal(cpvm_instance_set_deadline(v.in, 200000000), CPVM_OK); /* 200 ms */
    struct cpvm_interrupt out;
    assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_E_DEADLINE);
    assert_false(cpvm_instance_integrity_ok(v.in));
    vm_close(&v);
    pool_still_works();
}

struct runner {
    cpvm_instance *in;
    cpvm_status s;
};

static void *run_thread(void *arg)
{
    struct runner *r = arg;
    struct cpvm_interrupt out;
    r->s = cpvm_instance_run(r->in, &out);
    return NULL;
}

static void test_worker_death_during_a_run(void **state)
{
    (void)state;
    struct vm v;
    vm_open(&v, "pub @main:\n@loop:\n    jump @loop\n", false); /* no deadline at all */
    struct runner r = {.in = v.in, .s = CPVM_OK};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, run_thread, &r), 0);
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    assert_int_equal(kill(v.in->worker->pid, SIGKILL), 0);
    assert_int_equal(pthread_join(t, NULL), 0); /* F5: returns, does not hang */
    assert_int_equal(r.s, CPVM_E_SANDBOX);
    vm_close(&v);
    pool_still_works();
}

static void test_guest_exit_kills_only_its_worker(void **state)
{
    (void)state;
    /* A payload that calls exit_group (allowed: it only ends the worker). */
    struct audit_call c = {.abi = ABI_X86_64, .nr = 231, .args = {3}};
    struct audit_outcome o;
    audit_syscall(&c, &o);
    assert_int_equal(o.kind, AUDIT_EXITED);
    assert_int_equal(o.status, 3);
    pool_still_works();
}

/* F4: a reused worker shows the next instance nothing of the previous one. */
static void test_reuse_leaves_no_trace(void **state)
{
    (void)state;
    cpvm_sandbox_set_pool_size(1);
    struct vm a;
    vm_open_aux(&a,
            "%rw_data_size = 4096\n%stack_size = 4096\n"
            "pub @main:\n    a0 = 0x5345435245542121\n    a1 = 0x20000\n    u64 [a1] = a0\n"
            "    u64 [sp - 8] = a0\n    a2 = 4096\n    a3 = sbrk a2\n    a4 = 0x21000\n    u64 [a4] = a0\n    ret\n",
            true, 4096);
    const struct cpvm_memory_map *map = cpvm_module_memory_map(a.m);
    uint64_t secret = 0x5345435245542121ull;
    assert_int_equal(cpvm_instance_write_memory(a.in, map->aux_data_address, &secret, 8), CPVM_OK);
    struct cpvm_interrupt out;
    assert_int_equal(cpvm_instance_run(a.in, &out), CPVM_OK);
    assert_int_equal(out.exit, CPVM_EXIT_HALT);
    pid_t pid = a.in->worker->pid;
    size_t code_a = a.m->jit->len;
    uint32_t stack_top = map->stack_address_high, aux = map->aux_data_address;
    vm_close(&a);

    struct cpvm_sandbox_stats before, after;
    cpvm_sandbox_stats(&before);
    assert_int_equal(before.workers_idle, 1);
    struct vm b; /* a different module with the same layout */
    vm_open_aux(&b,
            "%rw_data_size = 4096\n%stack_size = 4096\n"
            "pub @main:\n    a1 = 0x20000\n    a0 = u64 [a1]\n    a2 = u64 [sp - 8]\n    a4 = 0x30000\n"
            "    a3 = u64 [a4]\n    ret\n",
            true, 4096);
    cpvm_sandbox_stats(&after);
    assert_int_equal(after.reused, before.reused + 1);
    assert_int_equal(b.in->worker->pid, pid); /* the same process */
    uint64_t x = 1;
    assert_int_equal(cpvm_instance_read_memory(b.in, aux, &x, 8), CPVM_OK);
    assert_int_equal(x, 0);
    assert_int_equal(cpvm_instance_read_memory(b.in, stack_top - 8, &x, 8), CPVM_OK);
    assert_int_equal(x, 0);
    /* The previous module's code is gone from the worker's code memfd. */
    const uint8_t *code = b.in->worker->code_view;
    size_t code_b = b.m->jit->len;
    assert_memory_equal(code, b.m->jit->code, code_b);
    for (size_t i = code_b; i < code_a; i++) assert_int_equal(code[i], 0xcc);
    assert_int_equal(cpvm_instance_run(b.in, &out), CPVM_OK);
    assert_int_equal(out.exit, CPVM_EXIT_PANIC); /* the heap page of a is not mapped for b */
    assert_int_equal(cpvm_instance_reg(b.in, CPVM_REG_A0), 0);
    assert_int_equal(cpvm_instance_reg(b.in, CPVM_REG_A2), 0);
    vm_close(&b);
    cpvm_sandbox_set_pool_size(4);
    pool_still_works();
}

static void test_accounting(void **state)
{
    (void)state;
    cpvm_sandbox_set_pool_size(4);
    assert_int_equal(cpvm_sandbox_prewarm(2, NULL), CPVM_OK);
    struct vm v;
    vm_open(&v, halt_src, true);
    struct cpvm_sandbox_stats st;
    cpvm_sandbox_stats(&st);
    assert_true(st.workers_idle >= 1);
    assert_int_equal(st.workers_busy, 1);
    assert_true(st.idle_private_bytes > 0 && st.busy_private_bytes > 0);
    assert_true(st.busy_shared_bytes > 0);
    /* The baseline goal: at most 128 KiB per worker beyond guest pages. */
    assert_true(st.idle_private_bytes / st.workers_idle <= 128 * 1024);
    vm_close(&v);
}

/* The worker dies with its host: a child process creates one, is killed, and
 * the worker must be gone. */
static void test_host_death_kills_the_worker(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        cpvm_sandbox_set_pool_size(0);
        struct vm v;
        vm_open(&v, halt_src, true);
        pid_t w = v.in->worker->pid;
        if (write(fds[1], &w, sizeof w) != (ssize_t)sizeof w) _exit(2);
        for (;;) pause();
    }
    close(fds[1]);
    pid_t w = 0;
    assert_int_equal(read(fds[0], &w, sizeof w), (ssize_t)sizeof w);
    close(fds[0]);
    assert_true(w > 0);
    assert_int_equal(kill(w, 0), 0);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    bool gone = false;
    for (int i = 0; i < 200 && !gone; i++) {
        char path[64], buf[512] = "";
        snprintf(path, sizeof path, "/proc/%d/status", (int)w);
        FILE *f = fopen(path, "re");
        if (!f) {
            gone = true;
            break;
        }
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        gone = strstr(buf, "State:\tZ") != NULL || strstr(buf, "State:\tX") != NULL;
        struct timespec ts = {0, 10000000};
        if (!gone) nanosleep(&ts, NULL);
    }
    assert_true(gone);
    pool_still_works();
}

int main(void)
{
    const char *why;
    if (!cpvm_sandbox_available(&why)) {
        fprintf(stderr, "the zygote sandbox is not available here: %s\n", why);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_network_proc),
        cmocka_unit_test(test_processes),
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_namespaces_and_privileges),
        cmocka_unit_test(test_lying_worker),
        cmocka_unit_test(test_deadline_ends_an_infinite_loop),
        cmocka_unit_test(test_worker_death_during_a_run),
        cmocka_unit_test(test_guest_exit_kills_only_its_worker),
        cmocka_unit_test(test_reuse_leaves_no_trace),
        cmocka_unit_test(test_accounting),
        cmocka_unit_test(test_host_death_kills_the_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
