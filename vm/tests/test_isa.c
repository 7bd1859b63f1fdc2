/* The instruction table itself: opcode maps per variant and template sanity. */
#include <stdio.h>
#include <string.h>

#include "isa/isa.h"
#include "testutil.h"

static void test_no_byte_claimed_twice(void **state)
{
    (void)state;
    for (int isa = 0; isa < CPVM_ISA_COUNT; isa++) {
        int owner[256];
        memset(owner, -1, sizeof owner);
        for (int op = 0; op < OP_COUNT; op++) {
            int b = isa_rows[op].opcode[isa];
            if (b < 0) continue;
            assert_in_range(b, 0, 255);
            if (owner[b] >= 0) fail_msg("isa %d byte %d claimed by %s and %s", isa, b, isa_rows[owner[b]].name,
                                        isa_rows[op].name);
            owner[b] = op;
        }
    }
}

static int count_ops(cpvm_isa isa)
{
    int n = 0;
    for (int op = 0; op < OP_COUNT; op++) n += isa_has(isa, (enum op)op);
    return n;
}

static void test_variant_sizes_and_collisions(void **state)
{
    (void)state;
    assert_int_equal(count_ops(CPVM_ISA_LATEST64), 141);
    assert_int_equal(count_ops(CPVM_ISA_JAM_V1), 139); /* no memset, no sbrk */
    assert_int_equal(count_ops(CPVM_ISA_REVIVE_V1), 138); /* no memset, unlikely, sbrk */
    assert_int_equal(count_ops(CPVM_ISA_LATEST32), 106); /* no 64-bit-only instruction (35) */
    uint8_t jam[256], l64[256], l32[256];
    isa_build_decode_map(CPVM_ISA_JAM_V1, jam);
    isa_build_decode_map(CPVM_ISA_LATEST64, l64);
    isa_build_decode_map(CPVM_ISA_LATEST32, l32);
    /* isa.md §6: the bytes that mean different things per variant. */
    assert_int_equal(jam[2], OP_unlikely);
    assert_int_equal(l64[2], OP_memset);
    assert_int_equal(l64[3], OP_unlikely);
    assert_int_equal(jam[101], OP_count_set_bits_64);
    assert_int_equal(l64[101], OP_sbrk);
    assert_int_equal(l64[102], OP_count_set_bits_64);
    assert_int_equal(jam[110], OP_reverse_byte);
    assert_int_equal(l64[111], OP_reverse_byte);
    assert_int_equal(l64[200], OP_add_64);
    assert_int_equal(l32[200], OP_invalid); /* 64-bit only */
    assert_int_equal(l32[56], OP_invalid);  /* load_u32 */
    assert_int_equal(jam[255], OP_invalid);
}

static void test_flags_consistent(void **state)
{
    (void)state;
    int terminators = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        unsigned f = isa_rows[op].flags;
        if (f & (NOFT | BRANCH)) assert_true(f & TERM);
        if (f & (LOAD | STORE)) assert_int_not_equal(isa_access_width((enum op)op), 0);
        terminators += (f & TERM) != 0;
    }
    /* isa.md §10.1: trap, fallthrough, jump, jump_indirect, load_imm_and_jump(_indirect) + 16 branches */
    assert_int_equal(terminators, 22);
    assert_true(isa_is_terminator(OP_invalid));
    assert_false(isa_can_fall_through(OP_invalid));
    assert_true(isa_can_fall_through(OP_fallthrough));
    assert_true(isa_can_fall_through(OP_branch_eq));
    assert_false(isa_can_fall_through(OP_jump_indirect));
}

/* Every placeholder a template uses is one of its class's operands, and each
 * class operand is used, so the assembler can recover every field. */
static void test_templates_match_classes(void **state)
{
    (void)state;
    for (int op = 0; op < OP_COUNT; op++) {
        const char *t = isa_rows[op].tmpl;
        const char *ops = isa_class_operands[isa_rows[op].cls];
        char used[64] = " ";
        for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
            const char *e = strchr(p, '}');
            assert_non_null(e);
            char name[8] = {0};
            memcpy(name, p + 1, (size_t)(e - p - 1));
            char padded[12];
            snprintf(padded, sizeof padded, " %s ", name);
            char classops[32];
            snprintf(classops, sizeof classops, " %s ", ops);
            if (!strstr(classops, padded)) fail_msg("%s uses {%s} outside class operands '%s'", isa_rows[op].name, name, ops);
            strncat(used, padded + 1, sizeof used - strlen(used) - 1);
        }
        if (op == OP_memset) continue; /* fixed registers */
        char classops[32];
        snprintf(classops, sizeof classops, "%s", ops);
        for (char *tok = strtok(classops, " "); tok; tok = strtok(NULL, " ")) {
            char padded[12];
            snprintf(padded, sizeof padded, " %s ", tok);
            if (!strstr(used, padded)) fail_msg("%s does not use operand %s", isa_rows[op].name, tok);
        }
    }
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(cpvm_reg_from_name("a0"), 7);
    assert_int_equal(cpvm_reg_from_name("r12"), 12);
    assert_int_equal(cpvm_reg_from_name("r13"), -1);
    assert_int_equal(cpvm_reg_from_name("ra"), 0);
    assert_string_equal(cpvm_reg_name(12), "a5");
    cpvm_isa isa;
    assert_true(cpvm_isa_from_name("jamv1", &isa));
    assert_int_equal(isa, CPVM_ISA_JAM_V1);
    assert_false(cpvm_isa_from_name("latest", &isa));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_byte_claimed_twice),
        cmocka_unit_test(test_variant_sizes_and_collisions),
        cmocka_unit_test(test_flags_consistent),
        cmocka_unit_test(test_templates_match_classes),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
