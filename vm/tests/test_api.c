/* The host API around runs, on every backend: what may be resumed and what not,
 * host memory access rules, and the guard regions around the guest window. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "text/text.h"

static const cpvm_backend backends[] = {CPVM_BACKEND_INTERPRETER, CPVM_BACKEND_COMPILER};

struct vm {
    uint8_t *blob;
    cpvm_program *p;
    cpvm_module *m;
    cpvm_instance *in;
};

static void vm_open(struct vm *v, const char *src, cpvm_backend backend, const struct cpvm_module_config *base)
{
    size_t len;
    struct cpvm_error e;
    if (text_assemble(src, strlen(src), CPVM_ISA_LATEST64, false, &v->blob, &len, &e))
        fail_msg("assembly line %llu: %s", (unsigned long long)e.offset, e.detail);
    assert_int_equal(cpvm_program_parse(v->blob, len, CPVM_PARSE_BORROW, &v->p, &e), CPVM_OK);
    struct cpvm_module_config cfg;
    if (base) cfg = *base;
    else cpvm_module_config_default(&cfg);
    cfg.backend = backend;
    assert_int_equal(cpvm_module_new(v->p, &cfg, &v->m, &e), CPVM_OK);
    assert_int_equal(cpvm_module_backend(v->m, NULL), backend);
    assert_int_equal(cpvm_instance_new(v->m, &v->in, &e), CPVM_OK);
}

static void vm_close(struct vm *v)
{
    assert_true(cpvm_instance_integrity_ok(v->in));
    cpvm_instance_free(v->in);
    cpvm_module_free(v->m);
    cpvm_program_free(v->p);
    free(v->blob);
}

static void test_resumption(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) {
        struct vm v;
        struct cpvm_module_config cfg;
        cpvm_module_config_default(&cfg);
        cfg.gas_metering = true;
        vm_open(&v, "pub @main:\n a0 = 1\n ecalli 3\n a0 = a0 + a0\n ret\n", backends[b], &cfg);
        struct cpvm_interrupt out;
        uint32_t pc;
        assert_false(cpvm_instance_next_pc(v.in, &pc));
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_E_NO_PC);
        cpvm_instance_prepare_call(v.in, 0);
        cpvm_instance_set_gas(v.in, 3); /* the block costs 4 */
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
        assert_int_equal(out.exit, CPVM_EXIT_OUT_OF_GAS);
        assert_int_equal(cpvm_instance_gas(v.in), 3);
        assert_true(cpvm_instance_next_pc(v.in, &pc));
        assert_int_equal(pc, 0);
        cpvm_instance_set_gas(v.in, 10);
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK); /* retries the charge */
        assert_int_equal(out.exit, CPVM_EXIT_ECALLI);
        assert_int_equal(out.hostcall, 3);
        assert_int_equal(out.pc, 3);
        assert_int_equal(cpvm_instance_gas(v.in), 6);
        assert_true(cpvm_instance_next_pc(v.in, &pc));
        assert_int_equal(pc, 5); /* the instruction after the ecalli (execution.md §4.1) */
        cpvm_instance_set_reg(v.in, CPVM_REG_A0, 21);
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
        assert_int_equal(out.exit, CPVM_EXIT_HALT);
        assert_int_equal(cpvm_instance_reg(v.in, CPVM_REG_A0), 42);
        assert_int_equal(cpvm_instance_gas(v.in), 6); /* no second charge after the host call */
        assert_false(cpvm_instance_next_pc(v.in, &pc));
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_E_NO_PC);
        /* negative gas refuses to start */
        cpvm_instance_prepare_call(v.in, 0);
        cpvm_instance_set_gas(v.in, -1);
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
        assert_int_equal(out.exit, CPVM_EXIT_OUT_OF_GAS);
        assert_int_equal(cpvm_instance_gas(v.in), -1);
        vm_close(&v);
    }
}

/* F2: after async out of gas there is nothing to resume, even with more gas. */
static void test_async_out_of_gas_is_final(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) {
        struct vm v;
        struct cpvm_module_config cfg;
        cpvm_module_config_default(&cfg);
        cfg.gas_metering = true;
        cfg.gas_async = true;
        vm_open(&v, "pub @main:\n a0 = 0\n@l:\n a0 = a0 + 1\n jump @l\n", backends[b], &cfg);
        struct cpvm_interrupt out;
        cpvm_instance_prepare_call(v.in, 0);
        cpvm_instance_set_gas(v.in, 1000);
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
        assert_int_equal(out.exit, CPVM_EXIT_OUT_OF_GAS);
        assert_true(cpvm_instance_gas(v.in) < 0);
        uint32_t pc;
        assert_false(cpvm_instance_next_pc(v.in, &pc));
        cpvm_instance_set_gas(v.in, 1000000);
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_E_NO_PC);
        vm_close(&v);
    }
}

static void test_host_memory(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) {
        struct vm v;
        struct cpvm_module_config cfg;
        cpvm_module_config_default(&cfg);
        cfg.memory_model = CPVM_MEMORY_DYNAMIC;
        vm_open(&v, "pub @main:\n a1 = u8 [0x20000]\n u8 [0x20001] = a1\n ret\n", backends[b], &cfg);
        /* the lowest and highest 64 KiB are never guest memory */
        assert_int_equal(cpvm_instance_map_pages(v.in, 0xf000, 0x1000, true), CPVM_E_BAD_ADDRESS);
        assert_int_equal(cpvm_instance_map_pages(v.in, 0xffff0000u, 0x1000, true), CPVM_E_BAD_ADDRESS);
        assert_int_equal(cpvm_instance_map_pages(v.in, 0xfffe0000u, 0x10000, true), CPVM_OK);
        assert_int_equal(cpvm_instance_map_pages(v.in, 0x20000, 1, false), CPVM_OK);
        /* the host writes read-only pages; the guest cannot */
        uint8_t x = 0x5a, y = 0;
        assert_int_equal(cpvm_instance_write_memory(v.in, 0x20000, &x, 1), CPVM_OK);
        assert_int_equal(cpvm_instance_write_memory(v.in, 0x1ffff, &x, 2), CPVM_E_BAD_ADDRESS);
        struct cpvm_interrupt out;
        cpvm_instance_prepare_call(v.in, 0);
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
        assert_int_equal(out.exit, CPVM_EXIT_PAGE_FAULT);
        assert_int_equal(out.fault_address, 0x20000);
        assert_int_equal(out.pc, 5);
        assert_int_equal(cpvm_instance_reg(v.in, CPVM_REG_A1), 0x5a); /* the load ran */
        /* make it writable and resume: the store is retried */
        assert_int_equal(cpvm_instance_protect_pages(v.in, 0x20000, 0x1000, true), CPVM_OK);
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
        assert_int_equal(out.exit, CPVM_EXIT_HALT);
        assert_int_equal(cpvm_instance_read_memory(v.in, 0x20001, &y, 1), CPVM_OK);
        assert_int_equal(y, 0x5a);
        /* unmapping drops the contents */
        assert_int_equal(cpvm_instance_unmap_pages(v.in, 0x20000, 0x1000), CPVM_OK);
        assert_int_equal(cpvm_instance_read_memory(v.in, 0x20001, &y, 1), CPVM_E_BAD_ADDRESS);
        assert_int_equal(cpvm_instance_map_pages(v.in, 0x20000, 0x1000, true), CPVM_OK);
        assert_int_equal(cpvm_instance_read_memory(v.in, 0x20001, &y, 1), CPVM_OK);
        assert_int_equal(y, 0);
        vm_close(&v);
    }
}

static void test_reset_memory(void **state)
{
    (void)state;
    for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) {
        struct vm v;
        vm_open(&v,
                "%ro_data_size = 1\n%ro_data = 7f\n%rw_data_size = 4\n%rw_data = 01\n"
                "pub @main:\n a0 = 9\n u8 [0x30000] = a0\n a1 = 0x1000\n a1 = sbrk a1\n ret\n",
                backends[b], NULL);
        struct cpvm_interrupt out;
        cpvm_instance_prepare_call(v.in, 0);
        assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
        assert_int_equal(out.exit, CPVM_EXIT_HALT);
        assert_int_equal(cpvm_instance_heap_size(v.in), 0x1000);
        uint8_t byte;
        assert_int_equal(cpvm_instance_read_memory(v.in, 0x30000, &byte, 1), CPVM_OK);
        assert_int_equal(byte, 9);
        assert_int_equal(cpvm_instance_reset_memory(v.in), CPVM_OK);
        assert_int_equal(cpvm_instance_heap_size(v.in), 0);
        assert_int_equal(cpvm_instance_read_memory(v.in, 0x30000, &byte, 1), CPVM_OK);
        assert_int_equal(byte, 1);
        assert_int_equal(cpvm_instance_read_memory(v.in, 0x10000, &byte, 1), CPVM_OK);
        assert_int_equal(byte, 0x7f);
        assert_int_equal(cpvm_instance_read_memory(v.in, 0x31000, &byte, 1), CPVM_E_BAD_ADDRESS);
        vm_close(&v);
    }
}

/* Heap pages sbrk opened and the guest never touched are still closed in the
 * compiler's hardware: the host reads them as zero, its writes there read
 * back, and a reset wipes them. */
static void test_untouched_heap(void **state)
{
    (void)state;
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    for (size_t k = 0; k < 2 * sizeof backends / sizeof *backends; k++) {
        struct vm v;
        cfg.sandbox = k & 1 ? CPVM_SANDBOX_NONE : CPVM_SANDBOX_ZYGOTE; /* the compiler in this process too */
        vm_open(&v, "%ro_data_size = 1\n%rw_data_size = 4\npub @main:\n a0 = 0x2000\n a1 = sbrk a0\n ret\n",
                backends[k / 2], &cfg);
        for (int round = 0; round < 2; round++) {
            struct cpvm_interrupt out;
            if (round) assert_int_equal(cpvm_instance_reset(v.in), CPVM_OK);
            cpvm_instance_prepare_call(v.in, 0);
            assert_int_equal(cpvm_instance_run(v.in, &out), CPVM_OK);
            assert_int_equal(out.exit, CPVM_EXIT_HALT);
            static uint8_t heap[0x2000], zero[0x2000];
            memset(heap, 0xee, sizeof heap);
            assert_int_equal(cpvm_instance_read_memory(v.in, 0x31000, heap, sizeof heap), CPVM_OK);
            assert_memory_equal(heap, zero, sizeof heap);
            uint8_t byte = 0xab;
            assert_int_equal(cpvm_instance_write_memory(v.in, 0x31800, &byte, 1), CPVM_OK);
            assert_int_equal(cpvm_instance_read_memory(v.in, 0x317ff, heap, 3), CPVM_OK);
            assert_int_equal(heap[0], 0);
            assert_int_equal(heap[1], 0xab);
            assert_int_equal(heap[2], 0);
        }
        vm_close(&v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resumption),
        cmocka_unit_test(test_async_out_of_gas_is_final),
        cmocka_unit_test(test_host_memory),
        cmocka_unit_test(test_reset_memory),
        cmocka_unit_test(test_untouched_heap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
