/* The container and raw-program parsers: worked examples, varints, every
 * rejection with its code and offset, and truncation at every byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bits.h"
#include "program/program.h"
#include "program/writer.h"
#include "testutil.h"

/* blob-format.md §10: the 65-byte JamV1 example. */
static const char *const example_jam =
    "50 56 4d 00 03 41 00 00 00 00 00 00 00 01 04 04 00 90 00 02 01 2a 04 08"
    "01 00 00 00 00 6c 6f 67 05 07 01 00 04 6d 61 69 6e 06 15 01 01 0f 0d 33"
    "07 00 00 01 7c 78 0a 33 09 02 32 09 32 00 a1 29 00";
static const char *const example_l64 =
    "50 56 4d 00 02 21 00 00 00 00 00 00 00 05 07 01 00 04 6d 61 69 6e 06 08 00 00 04 c8 87 09 00 09 00";

static cpvm_status parse_hex(const char *hex, cpvm_program **p, struct cpvm_error *e)
{
    uint8_t buf[512];
    size_t n = tu_hex(hex, buf, sizeof buf);
    return cpvm_program_parse(buf, n, 0, p, e);
}

static void test_worked_example_jam(void **state)
{
    (void)state;
    cpvm_program *p;
    struct cpvm_error e;
    assert_int_equal(parse_hex(example_jam, &p, &e), CPVM_OK);
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    assert_int_equal(info.isa, CPVM_ISA_JAM_V1);
    assert_int_equal(info.ro_data_size, 4);
    assert_int_equal(info.rw_data_size, 0);
    assert_int_equal(info.stack_size, 4096);
    assert_int_equal(info.ro_data.len, 1);
    assert_int_equal(info.ro_data.ptr[0], 0x2a);
    assert_int_equal(info.code.len, 15);
    assert_int_equal(info.jump_table_count, 1);
    uint32_t pc;
    assert_true(cpvm_program_jump_table_entry(p, 0, &pc));
    assert_int_equal(pc, 13);
    assert_false(cpvm_program_jump_table_entry(p, 1, &pc));
    struct cpvm_symbol sym;
    assert_int_equal(info.import_count, 1);
    assert_true(cpvm_program_import(p, 0, &sym));
    assert_int_equal(sym.name_len, 3);
    assert_memory_equal(sym.name, "log", 3);
    assert_int_equal(info.export_count, 1);
    assert_true(cpvm_program_export(p, 0, &sym));
    assert_int_equal(sym.pc, 0);
    assert_memory_equal(sym.name, "main", 4);
    assert_true(cpvm_program_find_export(p, "main", &pc));
    assert_false(cpvm_program_find_export(p, "mai", &pc));
    assert_int_equal(info.code_section.len, 0x15);
    cpvm_program_free(p);

    assert_int_equal(parse_hex(example_l64, &p, &e), CPVM_OK);
    assert_int_equal(cpvm_program_isa(p), CPVM_ISA_LATEST64);
    assert_int_equal(p->code_len, 4);
    assert_int_equal(p->bitmask[0], 0x09);
    cpvm_program_free(p);
}

static void test_varints(void **state)
{
    (void)state;
    static const struct { uint32_t v; const char *hex; } table[] = {
        {0, "00"}, {1, "01"}, {0x7f, "7f"}, {0x80, "80 80"}, {300, "81 2c"}, {0x1000, "90 00"},
        {0x3fff, "bf ff"}, {0x4000, "c0 00 40"}, {0x12345, "c1 45 23"}, {0x1fffff, "df ff ff"},
        {0x200000, "e0 00 00 20"}, {0x0fffffff, "ef ff ff ff"}, {0x10000000, "f0 00 00 00 10"},
        {0xffffffff, "f0 ff ff ff ff"},
    };
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        uint8_t want[8], got[5];
        size_t n = tu_hex(table[i].hex, want, sizeof want);
        assert_int_equal(writer_varint(table[i].v, got), n);
        assert_memory_equal(got, want, n);
        struct reader r = {.data = want, .len = n};
        uint32_t v;
        assert_int_equal(reader_varint(&r, "x", &v), CPVM_OK);
        assert_int_equal(v, table[i].v);
        assert_int_equal(r.pos, n);
    }
    /* Quirks (blob-format.md §2.2): non-canonical accepted, 5-byte form ORs low bits. */
    static const struct { const char *hex; uint32_t v; } quirks[] = {{"80 05", 5}, {"f1 00 00 00 00", 1}};
    for (size_t i = 0; i < 2; i++) {
        uint8_t b[8];
        size_t n = tu_hex(quirks[i].hex, b, sizeof b);
        struct reader r = {.data = b, .len = n};
        uint32_t v;
        assert_int_equal(reader_varint(&r, "x", &v), CPVM_OK);
        assert_int_equal(v, quirks[i].v);
    }
    uint8_t bad[] = {0xf8, 0, 0, 0, 0, 0};
    struct reader r = {.data = bad, .len = sizeof bad};
    uint32_t v;
    assert_int_equal(reader_varint(&r, "x", &v), CPVM_E_BAD_VARINT);
    uint8_t shortv[] = {0xc0, 0};
    r = (struct reader){.data = shortv, .len = sizeof shortv};
    assert_int_equal(reader_varint(&r, "x", &v), CPVM_E_TRUNCATED);
}

/* A container from parts: header, then `body` (sections + terminator). */
static size_t container(uint8_t *out, int version, const char *body_hex)
{
    static const uint8_t magic[4] = {'P', 'V', 'M', 0};
    memcpy(out, magic, 4);
    out[4] = (uint8_t)version;
    size_t n = 13 + tu_hex(body_hex, out + 13, 1024);
    wr_le64(out + 5, n);
    return n;
}

static void expect_reject(int version, const char *body, cpvm_status code, uint64_t offset)
{
    uint8_t buf[1100];
    size_t n = container(buf, version, body);
    cpvm_program *p = (cpvm_program *)1;
    struct cpvm_error e = {0};
    cpvm_status s = cpvm_program_parse(buf, n, 0, &p, &e);
    if (s != code || e.offset != offset)
        fail_msg("body '%s': got %s at %llu (%s), want %s at %llu", body, cpvm_status_message(s),
                 (unsigned long long)e.offset, e.detail, cpvm_status_message(code), (unsigned long long)offset);
    assert_null(p);
    assert_int_not_equal(e.detail[0], 0);
}

static void test_rejections(void **state)
{
    (void)state;
    uint8_t buf[64];
    cpvm_program *p;
    struct cpvm_error e;
    /* header */
    size_t n = container(buf, 2, "06 05 00 00 01 00 01 00");
    buf[0] = 'X';
    assert_int_equal(cpvm_program_parse(buf, n, 0, &p, &e), CPVM_E_BAD_MAGIC);
    assert_int_equal(e.offset, 0);
    n = container(buf, 4, "06 05 00 00 01 00 01 00");
    assert_int_equal(cpvm_program_parse(buf, n, 0, &p, &e), CPVM_E_BAD_VERSION);
    assert_int_equal(e.offset, 4);
    n = container(buf, 2, "06 05 00 00 01 00 01 00");
    assert_int_equal(cpvm_program_parse(buf, n - 1, 0, &p, &e), CPVM_E_BAD_LENGTH);
    assert_int_equal(e.offset, 5);
    assert_int_equal(cpvm_program_parse(buf, 3, 0, &p, &e), CPVM_E_BAD_MAGIC);

    /* a minimal valid body, then broken variants (offsets are absolute) */
    uint8_t ok[64];
    n = container(ok, 2, "06 05 00 00 01 00 01 00");
    assert_int_equal(cpvm_program_parse(ok, n, 0, &p, &e), CPVM_OK);
    cpvm_program_free(p);
    expect_reject(2, "06 05 00 00 01 00 01", CPVM_E_TRUNCATED, 20);          /* no terminator */
    expect_reject(2, "06 00 00", CPVM_E_BAD_CODE, 15);                        /* empty code section */
    expect_reject(2, "00", CPVM_E_BAD_CODE, 13);                              /* no code at all */
    expect_reject(2, "07 00 00", CPVM_E_BAD_SECTION, 13);                     /* unknown id < 128 */
    expect_reject(2, "06 05 00 00 01 00 01 02 00 00", CPVM_E_BAD_SECTION, 20); /* ro data after code */
    expect_reject(2, "80 00 06 05 00 00 01 00 01 00", CPVM_E_BAD_SECTION, 15); /* debug before code */
    expect_reject(2, "01 04 00 00 00 00 06 05 00 00 01 00 01 00", CPVM_E_BAD_MEMORY_CONFIG, 18);
    expect_reject(2, "01 02 00 00", CPVM_E_TRUNCATED, 17);                    /* config too short */
    expect_reject(2, "02 01 2a 06 05 00 00 01 00 01 00", CPVM_E_DATA_TOO_LARGE, 0); /* ro > declared 0 */
    expect_reject(2, "04 03 c0 01 04 06 05 00 00 01 00 01 00", CPVM_E_LIMIT, 15); /* 1025 imports */
    expect_reject(2, "04 03 02 00 00 06 05 00 00 01 00 01 00", CPVM_E_BAD_IMPORTS, 16);
    expect_reject(2, "06 06 00 00 01 00 01 01 00", CPVM_E_BAD_CODE, 19);       /* bitmask too long */
    expect_reject(2, "06 05 00 00 01 00 03 00", CPVM_E_BAD_CODE, 19);          /* padding bit set */
    expect_reject(2, "06 05 00 05 01 00 01 00", CPVM_E_BAD_CODE, 16);          /* entry size 5 */
    expect_reject(2, "06 06 01 04 01 00 00 00 00", CPVM_E_TRUNCATED, 18);      /* jt past section */
    expect_reject(2, "06 06 00 00 e2 01 00 00 00", CPVM_E_LIMIT, 17);          /* 32 MiB + 1 */
    expect_reject(2, "06 07 e1 01 00 00 00 00 00 00", CPVM_E_LIMIT, 15);       /* 16 Mi + 1 entries */
    expect_reject(2, "06 03 00 00 02 00", CPVM_E_TRUNCATED, 18);               /* code past section */
    expect_reject(2, "06 05 00 00 01 00 01 80 f8", CPVM_E_BAD_VARINT, 21);     /* bad section length */

    /* accepted oddities: bytes after the terminator, custom sections after code,
     * empty optional sections, an out-of-order debug section */
    n = container(buf, 2, "06 05 00 00 01 00 01 00 6a 75 6e 6b");
    assert_int_equal(cpvm_program_parse(buf, n, 0, &p, &e), CPVM_OK);
    cpvm_program_free(p);
    n = container(buf, 2, "02 00 06 05 00 00 01 00 01 82 00 80 01 ff 99 00 00");
    assert_int_equal(cpvm_program_parse(buf, n, 0, &p, &e), CPVM_OK);
    cpvm_program_free(p);
}

static void test_truncation_everywhere(void **state)
{
    (void)state;
    uint8_t full[128], buf[128];
    size_t n = tu_hex(example_jam, full, sizeof full);
    for (size_t len = 0; len < n; len++) {
        memcpy(buf, full, len);
        if (len >= 13) wr_le64(buf + 5, len); /* get past the length check */
        cpvm_program *p = NULL;
        struct cpvm_error e = {0};
        cpvm_status s = cpvm_program_parse(buf, len, 0, &p, &e);
        /* Cutting inside the exports section leaves a silently shorter list; everything
         * else must fail with a code and an offset inside the input. */
        if (s == CPVM_OK) {
            cpvm_program_free(p);
            fail_msg("prefix of %zu bytes accepted", len);
        }
        assert_true(e.offset <= len);
    }
}

static void test_raw_program(void **state)
{
    (void)state;
    /* isa.md Appendix A.3: jump table [10], code 20 bytes. */
    static const uint8_t raw[] = {1, 1, 20, 10, 51, 7, 2, 149, 119, 156, 50, 7, 100, 0,
                                  20, 8, 239, 190, 173, 222, 0, 0, 0, 0, 73, 6, 0};
    cpvm_program *p;
    struct cpvm_error e;
    assert_int_equal(cpvm_program_parse_raw(raw, sizeof raw, CPVM_ISA_LATEST64, CPVM_PARSE_BORROW, &p, &e), CPVM_OK);
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    assert_int_equal(info.code.len, 20);
    assert_ptr_equal(info.code.ptr, raw + 4); /* borrowed: zero copy */
    assert_int_equal(info.container_size, 0);
    uint32_t pc;
    assert_true(cpvm_program_jump_table_entry(p, 0, &pc));
    assert_int_equal(pc, 10);
    cpvm_program_free(p);
    assert_int_equal(cpvm_program_parse_raw(raw, sizeof raw - 1, CPVM_ISA_LATEST64, 0, &p, &e), CPVM_E_BAD_CODE);
    assert_int_equal(e.offset, 24);
    assert_int_equal(cpvm_program_parse_raw(raw, 0, CPVM_ISA_LATEST64, 0, &p, &e), CPVM_E_BAD_CODE);
    /* entry size 0: the table reads as empty whatever the count says */
    static const uint8_t empty_jt[] = {5, 0, 1, 0, 1};
    assert_int_equal(cpvm_program_parse_raw(empty_jt, sizeof empty_jt, CPVM_ISA_JAM_V1, 0, &p, &e), CPVM_OK);
    cpvm_program_get_info(p, &info);
    assert_int_equal(info.jump_table_count, 0);
    cpvm_program_free(p);
}

static void test_writer_round_trip(void **state)
{
    (void)state;
    static const uint8_t code[] = {0x33, 0x07, 0x01, 0x32, 0x00}; /* a0 = 1; ret */
    static const uint8_t bitmask[] = {0x09};
    static const uint8_t ro[] = {1, 2, 3};
    uint32_t jt[] = {3, 0x10000, 0};
    struct writer_symbol exports[] = {{(const uint8_t *)"main", 4, 0}, {(const uint8_t *)"x\0y", 3, 3}};
    struct writer_symbol imports[] = {{(const uint8_t *)"log", 3, 0}, {(const uint8_t *)"", 0, 0}};
    struct writer_parts w = {.isa = CPVM_ISA_LATEST32, .ro_data_size = 8, .rw_data_size = 0x5000,
                             .stack_size = 0x1000, .ro_data = ro, .ro_data_len = 3, .imports = imports,
                             .import_count = 2, .exports = exports, .export_count = 2, .jump_table = jt,
                             .jump_table_count = 3, .code = code, .code_len = 5, .bitmask = bitmask};
    uint8_t *blob;
    size_t len;
    assert_int_equal(writer_build(&w, false, &blob, &len, NULL), CPVM_OK);
    cpvm_program *p;
    struct cpvm_error e;
    assert_int_equal(cpvm_program_parse(blob, len, 0, &p, &e), CPVM_OK);
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    assert_int_equal(info.isa, CPVM_ISA_LATEST32);
    assert_false(cpvm_program_is_64_bit(p));
    assert_int_equal(info.rw_data_size, 0x5000);
    assert_int_equal(info.jump_table_entry_size, 3); /* minimal, never truncating */
    for (uint32_t i = 0; i < 3; i++) {
        uint32_t pc;
        assert_true(cpvm_program_jump_table_entry(p, i, &pc));
        assert_int_equal(pc, jt[i]);
    }
    struct cpvm_symbol s;
    assert_true(cpvm_program_export(p, 1, &s));
    assert_int_equal(s.pc, 3);
    assert_memory_equal(s.name, "x\0y", 3);
    assert_true(cpvm_program_import(p, 1, &s));
    assert_int_equal(s.name_len, 0);
    assert_memory_equal(info.code.ptr, code, 5);
    cpvm_program_free(p);
    free(blob);
    /* a table of only pc 0 keeps its entry (reference-divergences.md: the reference drops it) */
    uint32_t zero[] = {0};
    w.jump_table = zero;
    w.jump_table_count = 1;
    assert_int_equal(writer_build(&w, true, &blob, &len, NULL), CPVM_OK);
    assert_int_equal(cpvm_program_parse_raw(blob, len, CPVM_ISA_LATEST32, 0, &p, &e), CPVM_OK);
    cpvm_program_get_info(p, &info);
    assert_int_equal(info.jump_table_count, 1);
    cpvm_program_free(p);
    free(blob);
}

static void test_memory_map(void **state)
{
    (void)state;
    struct cpvm_memory_map m;
    struct cpvm_error e;
    /* execution.md §3.1 example */
    assert_int_equal(cpvm_memory_map_build(0x4000, 1, 1, 1, 0, &m, &e), CPVM_OK);
    assert_int_equal(m.ro_data_address, 0x10000);
    assert_int_equal(m.ro_data_size, 0x4000);
    assert_int_equal(m.rw_data_address, 0x30000);
    assert_int_equal(m.rw_data_size, 0x4000);
    assert_int_equal(m.heap_base, 0x30001);
    assert_int_equal(m.stack_address_low, 0xfffdc000);
    assert_int_equal(m.stack_address_high, 0xfffe0000);
    assert_int_equal(m.max_heap_size, 0xfff8ffff);
    assert_int_equal(cpvm_memory_map_build(0x1000, 0, 0, 0, 1u << 24, &m, &e), CPVM_OK);
    assert_int_equal(m.stack_address_high, 0xfefe0000);
    assert_int_equal(cpvm_memory_map_build(0x1000, 0xffffffff, 0, 0, 0, &m, &e), CPVM_E_BAD_MEMORY_MAP);
    assert_int_equal(cpvm_memory_map_build(0x1000, 0x80000000, 0x80000000, 0, 0, &m, &e), CPVM_E_BAD_MEMORY_MAP);
    assert_int_equal(cpvm_memory_map_build(0x1000, 0, 0, 0xffffffff, 0xffffffff, &m, &e), CPVM_E_BAD_MEMORY_MAP);
    assert_int_equal(cpvm_memory_map_build(0x3000, 0, 0, 0, 0, &m, &e), CPVM_E_BAD_MEMORY_MAP);
    assert_int_equal(cpvm_memory_map_build(0x20000, 0, 0, 0, 0, &m, &e), CPVM_E_BAD_MEMORY_MAP);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worked_example_jam), cmocka_unit_test(test_varints),
        cmocka_unit_test(test_rejections),         cmocka_unit_test(test_truncation_everywhere),
        cmocka_unit_test(test_raw_program),        cmocka_unit_test(test_writer_round_trip),
        cmocka_unit_test(test_memory_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
