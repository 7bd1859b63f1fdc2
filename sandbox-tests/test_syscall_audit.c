/* The syscall audit, run inside real workers through the test-only hook:
 * every x86-64 number (only the allowlist survives), every x32 number and
 * every i386 `int 0x80` number (all die: sandbox.md F3), every argument-checked
 * rule with its allowed form and perturbed forms (64-bit compares), and the
 * worker's process state. After each section a plain program must still run:
 * the host and the pool survive hundreds of killed workers. */
#include <stdio.h>

#include "audit.h"
#include "testutil.h"

static void host_still_healthy(void)
{
    struct cpvm_sandbox_stats st;
    cpvm_sandbox_stats(&st);
    assert_int_equal(st.workers_busy, 0);
    struct audit_outcome o;
    static const uint8_t mov_eax_42[] = {0xb8, 42, 0, 0, 0};
    audit_run_body(mov_eax_42, sizeof mov_eax_42, &o);
    assert_int_equal(o.kind, AUDIT_RETURNED);
    assert_int_equal(o.ret, 42);
}

/* Runs one audit section: nothing unexpected, at least `min_checks` checks
 * (exactly that many if `exact`). */
static void section(unsigned (*run)(FILE *, unsigned *), unsigned min_checks, bool exact)
{
    unsigned checks = 0;
    assert_int_equal(run(stdout, &checks), 0);
    if (exact) assert_int_equal(checks, min_checks);
    else assert_true(checks >= min_checks);
    host_still_healthy();
}

static void test_worker_state(void **state)
{
    (void)state;
    section(audit_process_state, 30, false);
}

static void test_argument_checks(void **state)
{
    (void)state;
    section(audit_arguments, 50, false);
}

static void test_syscall_sweep(void **state)
{
    (void)state;
    section(audit_syscall_sweep, 2 * AUDIT_MAX_NR + AUDIT_MAX_I386_NR, true);
}

int main(void)
{
    const char *why;
    if (!cpvm_sandbox_available(&why)) {
        fprintf(stderr, "the zygote sandbox is not available here: %s\n", why);
        return 1; /* not a skip: the audit is the point */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_state),
        cmocka_unit_test(test_argument_checks),
        cmocka_unit_test(test_syscall_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
