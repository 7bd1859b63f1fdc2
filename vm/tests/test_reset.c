/* cpvm_instance_reset: after a run that wrote every writable byte, grew the
 * heap with sbrk, called the host (which wrote read-only data and set
 * registers), faulted (a trap, or a page fault the host answered) or ran out
 * of gas, a reset instance is indistinguishable from a fresh one, and runs
 * the same program to the same outcome again. On every backend: interpreter,
 * compiler in the zygote sandbox, compiler in-process. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "text/text.h"

/* The host sets: a0/a2 = rw data address/size, a3/a4 = stack low/size,
 * s0 = heap base, s1 = heap growth (0: none), t0 = an address to store to
 * (unmapped with dynamic memory: a page fault), t1 = how to end (0: spin
 * until out of gas, else store to address 1: a trap). */
static const char program[] = "%ro_data_size = 4096\n"
                              "%ro_data = 11223344\n"
                              "%rw_data_size = 8192\n"
                              "%rw_data = aabbccdd\n"
                              "%stack_size = 8192\n"
                              "pub @main:\n"
                              "    ecalli 1\n"
                              "    a1 = 0x5a\n"
                              "    [a0..a0 + a2] = u8 a1\n"
                              "    a0 = a3\n"
                              "    a2 = a4\n"
                              "    [a0..a0 + a2] = u8 a1\n"
                              "    a0 = s1\n"
                              "    a5 = sbrk a0\n"
                              "    a0 = s0\n"
                              "    a2 = s1\n"
                              "    [a0..a0 + a2] = u8 a1\n"
                              "    u64 [t0] = a1\n"
                              "    ecalli 2\n"
                              "    jump @spin if t1 == 0\n"
                              "    u8 [0x1] = a1\n"
                              "    trap\n"
                              "@spin:\n"
                              "    a1 = a1 + 1\n"
                              "    jump @spin\n";

enum { R_T0 = 2, R_T1 = 3, R_S0 = 5, R_S1 = 6, R_A3 = 10, R_A4 = 11, R_A5 = 12 }; /* isa.md register numbers */

#define HEAP_GROWTH 0x30000u
#define FAULT_ADDR 0x60000u
#define GAS 2000000

struct variant {
    const char *name;
    cpvm_backend backend;
    cpvm_sandbox sandbox;
};

static const struct variant variants[] = {
    {"interpreter", CPVM_BACKEND_INTERPRETER, CPVM_SANDBOX_DEFAULT},
    {"compiler (zygote)", CPVM_BACKEND_COMPILER, CPVM_SANDBOX_ZYGOTE},
    {"compiler (in-process)", CPVM_BACKEND_COMPILER, CPVM_SANDBOX_NONE},
};

/* Everything a host can observe of an instance. */
struct state {
    uint64_t regs[CPVM_REG_COUNT];
    int64_t gas;
    bool has_next;
    uint32_t next_pc, heap;
    uint8_t *mem;     /* every page of `ranges`, 0 where unreadable */
    uint8_t *mapped;  /* one flag per page */
    size_t pages;
    uint64_t exits[64]; /* the interrupt sequence */
    unsigned nexits;
};

struct range {
    uint32_t addr, len;
};

/* The pages a run can touch: every region, the heap's growth, the fault page. */
static size_t ranges_of(const struct cpvm_memory_map *m, struct range *r)
{
    size_t n = 0;
    r[n++] = (struct range){m->ro_data_address, m->ro_data_size};
    r[n++] = (struct range){m->rw_data_address, m->rw_data_size + HEAP_GROWTH + 0x10000};
    r[n++] = (struct range){m->stack_address_low, m->stack_size};
    r[n++] = (struct range){FAULT_ADDR, 0x1000};
    return n;
}

static void capture(const cpvm_instance *in, const struct cpvm_memory_map *m, struct state *s)
{
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++) s->regs[i] = cpvm_instance_reg(in, i);
    s->gas = cpvm_instance_gas(in);
    s->has_next = cpvm_instance_next_pc(in, &s->next_pc);
    if (!s->has_next) s->next_pc = 0;
    s->heap = cpvm_instance_heap_size(in);
    struct range r[8];
    size_t n = ranges_of(m, r), pages = 0;
    for (size_t i = 0; i < n; i++) pages += (r[i].len + 0xfff) / 0x1000;
    s->pages = pages;
    s->mem = calloc(pages, 0x1000);
    s->mapped = calloc(pages, 1);
    assert_non_null(s->mem);
    assert_non_null(s->mapped);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t a = r[i].addr; a < r[i].addr + r[i].len; a += 0x1000, k++)
            s->mapped[k] = cpvm_instance_read_memory(in, a, s->mem + k * 0x1000, 0x1000) == CPVM_OK;
    assert_true(cpvm_instance_integrity_ok(in));
}

static void release(struct state *s)
{
    free(s->mem);
    free(s->mapped);
    memset(s, 0, sizeof *s);
}

static void expect_same(const struct state *a, const struct state *b, const char *what, const char *variant)
{
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++)
        if (a->regs[i] != b->regs[i]) fail_msg("%s, %s: register %u differs", variant, what, i);
    if (a->gas != b->gas) fail_msg("%s, %s: gas %lld vs %lld", variant, what, (long long)a->gas, (long long)b->gas);
    if (a->has_next != b->has_next || a->next_pc != b->next_pc) fail_msg("%s, %s: next pc differs", variant, what);
    if (a->heap != b->heap) fail_msg("%s, %s: heap %u vs %u", variant, what, a->heap, b->heap);
    if (a->nexits != b->nexits || memcmp(a->exits, b->exits, a->nexits * sizeof *a->exits) != 0)
        fail_msg("%s, %s: interrupt sequences differ", variant, what);
    assert_int_equal(a->pages, b->pages);
    for (size_t p = 0; p < a->pages; p++) {
        if (a->mapped[p] != b->mapped[p]) fail_msg("%s, %s: page %zu mapped %d vs %d", variant, what, p, a->mapped[p], b->mapped[p]);
        if (memcmp(a->mem + p * 0x1000, b->mem + p * 0x1000, 0x1000) != 0)
            fail_msg("%s, %s: contents of page %zu differ", variant, what, p);
    }
}

/* A fresh instance holds the program's initial memory and nothing else,
 * whatever the instances before it (of any module) left in the window pool. */
static void expect_initial(const struct state *s, const struct cpvm_memory_map *m, const cpvm_program *p, bool dynamic,
                           const char *variant)
{
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    struct range r[8];
    size_t n = ranges_of(m, r), k = 0;
    for (size_t i = 0; i < n; i++)
        for (uint32_t a = r[i].addr; a < r[i].addr + r[i].len; a += 0x1000, k++) {
            bool in_ro = a >= m->ro_data_address && a < m->ro_data_address + m->ro_data_size;
            bool in_rw = a >= m->rw_data_address && a < m->rw_data_address + m->rw_data_size;
            bool in_stack = a >= m->stack_address_low && a < m->stack_address_high;
            bool want = !dynamic && (in_ro || in_rw || in_stack);
            if (s->mapped[k] != want) fail_msg("%s: fresh page 0x%x mapped %d", variant, a, s->mapped[k]);
            uint8_t expect[0x1000] = {0};
            if (want && in_ro && a == m->ro_data_address) memcpy(expect, info.ro_data.ptr, info.ro_data.len);
            if (want && in_rw && a == m->rw_data_address) memcpy(expect, info.rw_data.ptr, info.rw_data.len);
            if (memcmp(expect, s->mem + k * 0x1000, 0x1000) != 0) fail_msg("%s: fresh page 0x%x not initial", variant, a);
        }
}

/* Dynamic memory: the host maps the regions as the standard layout has them. */
static void map_regions(cpvm_instance *in, const struct cpvm_memory_map *m, const cpvm_program *p)
{
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    assert_int_equal(cpvm_instance_map_pages(in, m->ro_data_address, m->ro_data_size, true), CPVM_OK);
    assert_int_equal(cpvm_instance_write_memory(in, m->ro_data_address, info.ro_data.ptr, info.ro_data.len), CPVM_OK);
    assert_int_equal(cpvm_instance_protect_pages(in, m->ro_data_address, m->ro_data_size, false), CPVM_OK);
    assert_int_equal(cpvm_instance_map_pages(in, m->rw_data_address, m->rw_data_size, true), CPVM_OK);
    assert_int_equal(cpvm_instance_write_memory(in, m->rw_data_address, info.rw_data.ptr, info.rw_data.len), CPVM_OK);
    assert_int_equal(cpvm_instance_map_pages(in, m->stack_address_low, m->stack_size, true), CPVM_OK);
}

/* One call from the entry to the end, the host answering as it goes. */
static void drive(cpvm_instance *in, const struct cpvm_memory_map *m, const cpvm_program *p, bool dynamic, bool trap,
                  struct state *out)
{
    if (dynamic) map_regions(in, m, p);
    cpvm_instance_prepare_call(in, 0);
    cpvm_instance_set_gas(in, GAS);
    cpvm_instance_set_reg(in, CPVM_REG_A0, m->rw_data_address);
    cpvm_instance_set_reg(in, CPVM_REG_A2, m->rw_data_size);
    cpvm_instance_set_reg(in, R_A3, m->stack_address_low);
    cpvm_instance_set_reg(in, R_A4, m->stack_size);
    cpvm_instance_set_reg(in, R_S0, m->heap_base);
    cpvm_instance_set_reg(in, R_S1, dynamic ? 0 : HEAP_GROWTH);
    cpvm_instance_set_reg(in, R_T0, dynamic ? FAULT_ADDR : m->rw_data_address + 8);
    cpvm_instance_set_reg(in, R_T1, trap);
    unsigned n = 0;
    for (;;) {
        struct cpvm_interrupt it;
        assert_int_equal(cpvm_instance_run(in, &it), CPVM_OK);
        assert_true(n < 64);
        out->exits[n++] = (uint64_t)it.exit << 48 ^ (uint64_t)it.pc << 16 ^ it.hostcall ^ it.fault_address;
        if (it.exit == CPVM_EXIT_ECALLI) {
            uint64_t v = 0x0102030405060708ull * it.hostcall; /* the host writes read-only data */
            assert_int_equal(cpvm_instance_write_memory(in, m->ro_data_address + 16, &v, sizeof v), CPVM_OK);
            cpvm_instance_set_reg(in, R_A5, v);
            continue;
        }
        if (it.exit == CPVM_EXIT_PAGE_FAULT) {
            assert_int_equal(cpvm_instance_map_pages(in, it.fault_address, 0x1000, true), CPVM_OK);
            continue;
        }
        break;
    }
    out->nexits = n;
    capture(in, m, out);
}

/* A module of `src` on `backend`/`sandbox`, gas metered. */
struct mod {
    uint8_t *blob;
    cpvm_program *p;
    cpvm_module *m;
};

static void mod_open(struct mod *x, const char *src, cpvm_backend backend, cpvm_sandbox sandbox, bool dynamic)
{
    size_t len;
    struct cpvm_error e;
    if (text_assemble(src, strlen(src), CPVM_ISA_LATEST64, false, &x->blob, &len, &e))
        fail_msg("assembly line %llu: %s", (unsigned long long)e.offset, e.detail);
    assert_int_equal(cpvm_program_parse(x->blob, len, CPVM_PARSE_BORROW, &x->p, &e), CPVM_OK);
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.backend = backend;
    cfg.sandbox = sandbox;
    cfg.gas_metering = true;
    cfg.memory_model = dynamic ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD;
    assert_int_equal(cpvm_module_new(x->p, &cfg, &x->m, &e), CPVM_OK);
}

static void mod_close(struct mod *x)
{
    cpvm_module_free(x->m);
    cpvm_program_free(x->p);
    free(x->blob);
}

static void check(const struct variant *v, bool dynamic, bool trap)
{
    char label[96];
    snprintf(label, sizeof label, "%s, %s memory, ends %s", v->name, dynamic ? "dynamic" : "standard",
             trap ? "in a trap" : "out of gas");
    struct mod x;
    mod_open(&x, program, v->backend, v->sandbox, dynamic);
    cpvm_module *mod = x.m;
    const cpvm_program *p = x.p;
    struct cpvm_error e;
    const char *why = NULL;
    if (cpvm_module_backend(mod, &why) != v->backend) {
        fprintf(stderr, "%s: skipped (%s)\n", label, why ? why : "backend unavailable");
        mod_close(&x);
        return;
    }
    const struct cpvm_memory_map *m = cpvm_module_memory_map(mod);
    cpvm_instance *in;
    assert_int_equal(cpvm_instance_new(mod, &in, &e), CPVM_OK);
    struct state fresh = {0}, first = {0}, after = {0}, second = {0};
    capture(in, m, &fresh);
    expect_initial(&fresh, m, p, dynamic, label);
    drive(in, m, p, dynamic, trap, &first);
    /* the run reached everything it should have */
    assert_int_equal(first.exits[first.nexits - 1] >> 48, trap ? CPVM_EXIT_PANIC : CPVM_EXIT_OUT_OF_GAS);
    if (!dynamic) assert_int_equal(first.heap, HEAP_GROWTH);
    if (dynamic) assert_int_equal(first.exits[1] >> 48, CPVM_EXIT_PAGE_FAULT);

    for (int round = 0; round < 2; round++) {
        assert_int_equal(cpvm_instance_reset(in), CPVM_OK);
        capture(in, m, &after);
        expect_same(&fresh, &after, "reset vs fresh", label);
        release(&after);
        drive(in, m, p, dynamic, trap, &second);
        expect_same(&first, &second, "run after reset vs first run", label);
        release(&second);
    }
    cpvm_instance_free(in);
    /* a new instance (its window may be the pooled one just freed) is fresh too */
    assert_int_equal(cpvm_instance_new(mod, &in, &e), CPVM_OK);
    capture(in, m, &after);
    expect_same(&fresh, &after, "new instance after a freed one vs fresh", label);
    release(&after);
    drive(in, m, p, dynamic, trap, &second);
    expect_same(&first, &second, "run on a new instance vs first run", label);
    release(&second);
    cpvm_instance_free(in);

    release(&fresh);
    release(&first);
    mod_close(&x);
}

static void test_reset_like_fresh(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++)
        for (int dynamic = 0; dynamic < 2; dynamic++)
            for (int trap = 0; trap < 2; trap++) check(&variants[v], dynamic, trap);
}

/* An instance whose worker was killed stays dead: reset says why. */
static void test_reset_dead_instance(void **state)
{
    (void)state;
    struct mod x;
    mod_open(&x, "pub @main:\n    ecalli 1\n    ret\n", CPVM_BACKEND_COMPILER, CPVM_SANDBOX_ZYGOTE, false);
    cpvm_module *mod = x.m;
    struct cpvm_error e;
    if (cpvm_module_sandbox(mod) == CPVM_SANDBOX_ZYGOTE) {
        cpvm_instance *in;
        assert_int_equal(cpvm_instance_new(mod, &in, &e), CPVM_OK);
        /* a deadline that has passed kills the worker: the instance is dead for good */
        assert_int_equal(cpvm_instance_set_deadline(in, 1), CPVM_OK);
        cpvm_instance_prepare_call(in, 0);
        struct cpvm_interrupt it;
        cpvm_status s = cpvm_instance_run(in, &it);
        if (s != CPVM_OK) assert_int_equal(cpvm_instance_reset(in), s);
        cpvm_instance_free(in);
    }
    mod_close(&x);
}

/* The host's writes into read-only pages of an in-process window go through
 * a descriptor of this process's memory: after a fork, the child's writes
 * land in the child, never in its parent. */
static void test_host_write_after_fork(void **state)
{
    (void)state;
    struct mod x;
    mod_open(&x, "%ro_data_size = 4096\n%ro_data = 11223344\npub @main:\n    ret\n", CPVM_BACKEND_COMPILER,
             CPVM_SANDBOX_NONE, false);
    cpvm_module *mod = x.m;
    struct cpvm_error e;
    if (cpvm_module_backend(mod, NULL) == CPVM_BACKEND_COMPILER) {
        uint32_t ro = cpvm_module_memory_map(mod)->ro_data_address;
        cpvm_instance *in;
        assert_int_equal(cpvm_instance_new(mod, &in, &e), CPVM_OK);
        uint8_t v = 0x55, got = 0;
        assert_int_equal(cpvm_instance_write_memory(in, ro + 1, &v, 1), CPVM_OK); /* the parent's first write */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            uint8_t w = 0x77, r = 0;
            bool ok = cpvm_instance_write_memory(in, ro, &w, 1) == CPVM_OK &&
                      cpvm_instance_read_memory(in, ro, &r, 1) == CPVM_OK && r == 0x77;
            _exit(ok ? 0 : 1);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(cpvm_instance_read_memory(in, ro, &got, 1), CPVM_OK);
        assert_int_equal(got, 0x11); /* the parent's page is as it was */
        assert_int_equal(cpvm_instance_read_memory(in, ro + 1, &got, 1), CPVM_OK);
        assert_int_equal(got, 0x55);
        cpvm_instance_free(in);
    }
    mod_close(&x);
}

/* A new instance of `mod` loads a byte from `page` (mapped first if `map`)
 * and is freed after an optional reset; returns how the load ended. */
static cpvm_exit load_once(const cpvm_module *mod, uint32_t page, bool map, bool reset)
{
    cpvm_instance *in;
    struct cpvm_error e;
    struct cpvm_interrupt it;
    assert_int_equal(cpvm_instance_new(mod, &in, &e), CPVM_OK);
    if (map) assert_int_equal(cpvm_instance_map_pages(in, page, 0x1000, true), CPVM_OK);
    cpvm_instance_prepare_call(in, 0);
    cpvm_instance_set_reg(in, CPVM_REG_A1, page);
    cpvm_instance_set_gas(in, 100);
    assert_int_equal(cpvm_instance_run(in, &it), CPVM_OK);
    if (it.exit == CPVM_EXIT_PAGE_FAULT) assert_int_equal(it.fault_address, page);
    if (reset) assert_int_equal(cpvm_instance_reset(in), CPVM_OK);
    cpvm_instance_free(in);
    return it.exit;
}

/* An in-process window goes back to the pool with the hardware protections
 * its last user left, and the next user closes what it does not map. That
 * includes pages a reset closed in the table only, when no run synced the
 * hardware before the instance was freed: else the next instance of any
 * module could read them where the table (and the interpreter) says they
 * are unmapped (found by libFuzzer as a page fault vs a load that passed). */
static void test_pooled_window_after_reset(void **state)
{
    (void)state;
    struct mod x;
    mod_open(&x, "pub @main:\n    a2 = u8 [a1]\n    trap\n", CPVM_BACKEND_COMPILER, CPVM_SANDBOX_NONE, true);
    const uint32_t page = 0x70000;
    if (cpvm_module_backend(x.m, NULL) == CPVM_BACKEND_COMPILER) {
        /* the hardware opens the page, a reset closes it in the table only, the window is pooled */
        for (unsigned n = 0; n < 8; n++) assert_int_equal(load_once(x.m, page, true, true), CPVM_EXIT_PANIC);
        for (unsigned n = 0; n < 8; n++) assert_int_equal(load_once(x.m, page, false, false), CPVM_EXIT_PAGE_FAULT);
    }
    mod_close(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reset_like_fresh),
        cmocka_unit_test(test_reset_dead_instance),
        cmocka_unit_test(test_host_write_after_fork),
        cmocka_unit_test(test_pooled_window_after_reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
