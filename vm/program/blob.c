/* The `.polkavm` container (blob-format.md §3-§5) and the raw Graypaper
 * program (§9), parsed in one forward pass over untrusted bytes. */
#include <stdlib.h>
#include <string.h>

#include "../common/bits.h"
#include "../common/limits.h"
#include "../isa/isa.h"
#include "program.h"

enum {
    SECTION_END = 0,
    SECTION_MEMORY_CONFIG = 1,
    SECTION_RO_DATA = 2,
    SECTION_RW_DATA = 3,
    SECTION_IMPORTS = 4,
    SECTION_EXPORTS = 5,
    SECTION_CODE = 6,
    SECTION_DEBUG_STRINGS = 128,
    SECTION_DEBUG_LINES = 129,
    SECTION_DEBUG_RANGES = 130,
};

static const uint8_t blob_magic[4] = {'P', 'V', 'M', 0};

cpvm_status reader_varint(struct reader *r, const char *what, uint32_t *out)
{
    *out = 0;
    size_t at = reader_offset(r);
    uint8_t b0;
    cpvm_status s = reader_u8(r, what, &b0);
    if (s) return s;
    unsigned extra = 0; /* leading one bits = bytes that follow */
    while (extra < 8 && (b0 & (0x80u >> extra))) extra++;
    if (extra > 4)
        return cpvm_fail(r->err, CPVM_E_BAD_VARINT, at, "malformed varint in %s: first byte 0x%02x", what, b0);
    const uint8_t *rest;
    s = reader_bytes(r, what, extra, &rest);
    if (s) return s;
    uint32_t low = 0;
    for (unsigned i = 0; i < extra; i++) low |= (uint32_t)rest[i] << (8 * i);
    uint32_t high = b0 & (0xffu >> extra);
    /* A 5-byte form ORs the top bits in unshifted (blob-format.md §2.2 quirk). */
    *out = extra < 4 ? (high << (8 * extra)) | low : high | low;
    return CPVM_OK;
}

/* --- section 6 / raw program -------------------------------------------- */

cpvm_status program_parse_code_section(struct cpvm_program *p, struct reader *r)
{
    size_t start = reader_offset(r);
    if (reader_left(r) == 0) return cpvm_fail(r->err, CPVM_E_BAD_CODE, start, "no code found");
    p->code_section = r->data + r->pos;
    p->code_section_len = (uint32_t)reader_left(r);

    uint32_t count, code_len;
    uint8_t entry_size;
    cpvm_status s = reader_varint(r, "jump table entry count", &count);
    if (s) return s;
    if (count > LIMIT_JUMP_TABLE)
        return cpvm_fail(r->err, CPVM_E_LIMIT, start, "jump table has %u entries, limit is %u", count,
                         LIMIT_JUMP_TABLE);
    size_t at = reader_offset(r);
    if ((s = reader_u8(r, "jump table entry size", &entry_size))) return s;
    size_t code_len_at = reader_offset(r);
    if ((s = reader_varint(r, "code length", &code_len))) return s;
    if (code_len > LIMIT_CODE_SIZE)
        return cpvm_fail(r->err, CPVM_E_LIMIT, code_len_at, "code is %u bytes, limit is %u", code_len,
                         LIMIT_CODE_SIZE);
    if (entry_size > 4)
        return cpvm_fail(r->err, CPVM_E_BAD_CODE, at, "jump table entry size %u is not in 0..4", entry_size);
    /* count <= 16 Mi and size <= 4, so the product fits comfortably in 64 bits. */
    uint64_t jt_bytes = (uint64_t)count * entry_size;
    if (jt_bytes > reader_left(r))
        return cpvm_fail(r->err, CPVM_E_TRUNCATED, reader_offset(r),
                         "jump table of %u x %u bytes runs past the end of the section", count, entry_size);
    if ((s = reader_bytes(r, "jump table", (size_t)jt_bytes, &p->jump_table))) return s;
    if (code_len > reader_left(r))
        return cpvm_fail(r->err, CPVM_E_TRUNCATED, reader_offset(r),
                         "code of %u bytes runs past the end of the section (%zu left)", code_len,
                         reader_left(r));
    if ((s = reader_bytes(r, "code", code_len, &p->code))) return s;
    size_t bitmask_at = reader_offset(r);
    size_t bitmask_len = reader_left(r);
    size_t want = ((size_t)code_len + 7) / 8;
    if (bitmask_len != want)
        return cpvm_fail(r->err, CPVM_E_BAD_CODE, bitmask_at,
                         "the bitmask length (%zu) doesn't match the code length (%u needs %zu)", bitmask_len,
                         code_len, want);
    (void)reader_bytes(r, "bitmask", bitmask_len, &p->bitmask);
    if (code_len % 8) {
        uint8_t last = p->bitmask[bitmask_len - 1];
        if (last >> (code_len % 8))
            return cpvm_fail(r->err, CPVM_E_BAD_CODE, bitmask_at + bitmask_len - 1,
                             "the bitmask is padded with non-zero bits (0x%02x)", last);
    }
    p->jump_table_count = count;
    p->jump_table_entry_size = entry_size;
    p->code_len = code_len;
    return CPVM_OK;
}

/* --- container ----------------------------------------------------------- */

static cpvm_status parse_memory_config(struct cpvm_program *p, struct reader *sec)
{
    cpvm_status s;
    if ((s = reader_varint(sec, "ro data size", &p->ro_data_size))) return s;
    if ((s = reader_varint(sec, "rw data size", &p->rw_data_size))) return s;
    if ((s = reader_varint(sec, "stack size", &p->stack_size))) return s;
    if (reader_left(sec))
        return cpvm_fail(sec->err, CPVM_E_BAD_MEMORY_CONFIG, reader_offset(sec),
                         "the memory config section contains %zu more byte(s) than expected", reader_left(sec));
    return CPVM_OK;
}

static cpvm_status parse_imports(struct cpvm_program *p, struct reader *sec)
{
    size_t at = reader_offset(sec);
    uint32_t count;
    cpvm_status s = reader_varint(sec, "import count", &count);
    if (s) return s;
    if (count > LIMIT_IMPORTS)
        return cpvm_fail(sec->err, CPVM_E_LIMIT, at, "%u imports, limit is %u", count, LIMIT_IMPORTS);
    if ((size_t)count * 4 > reader_left(sec))
        return cpvm_fail(sec->err, CPVM_E_BAD_IMPORTS, reader_offset(sec),
                         "the imports section is invalid: %u offsets need %u bytes, %zu left", count, count * 4,
                         reader_left(sec));
    (void)reader_bytes(sec, "import offsets", (size_t)count * 4, &p->import_offsets);
    p->import_count = count;
    p->import_symbols_len = (uint32_t)reader_left(sec);
    (void)reader_bytes(sec, "import symbols", reader_left(sec), &p->import_symbols);
    return CPVM_OK;
}

/* Decodes export `index`'s fields starting at *pos; false if malformed. */
static bool export_at(const struct cpvm_program *p, size_t *pos, struct cpvm_symbol *out)
{
    struct reader r = {.data = p->exports, .len = p->exports_len, .pos = *pos, .origin = 0, .err = NULL};
    uint32_t pc = 0, name_len = 0;
    const uint8_t *name = NULL;
    if (reader_varint(&r, "export pc", &pc) || reader_varint(&r, "export name length", &name_len) ||
        reader_bytes(&r, "export name", name_len, &name))
        return false;
    *pos = r.pos;
    if (out) *out = (struct cpvm_symbol){.name = name, .name_len = name_len, .pc = pc};
    return true;
}

static void count_exports(struct cpvm_program *p)
{
    struct reader r = {.data = p->exports, .len = p->exports_len, .pos = 0, .origin = 0, .err = NULL};
    uint32_t declared;
    p->export_count = 0;
    if (!p->exports_len || reader_varint(&r, "export count", &declared)) return;
    size_t pos = r.pos;
    /* The reference iterator stops silently at the first malformed entry. */
    while (p->export_count < declared && export_at(p, &pos, NULL)) p->export_count++;
}

static cpvm_status parse_container(struct cpvm_program *p, const uint8_t *bytes, size_t len,
                                   struct cpvm_error *err)
{
    struct reader r = {.data = bytes, .len = len, .pos = 0, .origin = 0, .err = err};
    const uint8_t *magic;
    cpvm_status s;
    if (len < 4 || memcmp(bytes, blob_magic, 4) != 0)
        return cpvm_fail(err, CPVM_E_BAD_MAGIC, 0, "blob doesn't start with the expected magic bytes \"PVM\\0\"");
    (void)reader_bytes(&r, "magic", 4, &magic);
    uint8_t version;
    if ((s = reader_u8(&r, "version", &version))) return s;
    if (version >= CPVM_ISA_COUNT)
        return cpvm_fail(err, CPVM_E_BAD_VERSION, 4, "unsupported version %u (known: 0..3)", version);
    p->isa = (cpvm_isa)version;
    const uint8_t *lenp;
    if ((s = reader_bytes(&r, "blob length", 8, &lenp))) return s;
    uint64_t declared = rd_le64(lenp);
    if (declared != len)
        return cpvm_fail(err, CPVM_E_BAD_LENGTH, 5, "blob length field says %llu bytes, input has %zu",
                         (unsigned long long)declared, len);
    p->container_size = len;

    size_t sec_at = reader_offset(&r);
    uint8_t id;
    if ((s = reader_u8(&r, "section id", &id))) return s;
    struct reader sec;
    uint32_t sec_len;

#define NEXT_SECTION()                                                    \
    do {                                                                  \
        sec_at = reader_offset(&r);                                       \
        if ((s = reader_u8(&r, "section id", &id))) return s;             \
    } while (0)
#define TAKE_PAYLOAD(what)                                                \
    do {                                                                  \
        if ((s = reader_varint(&r, what " length", &sec_len))) return s;  \
        if ((s = reader_slice(&r, what, sec_len, &sec))) return s;        \
    } while (0)

    if (id == SECTION_MEMORY_CONFIG) {
        TAKE_PAYLOAD("memory config section");
        if ((s = parse_memory_config(p, &sec))) return s;
        NEXT_SECTION();
    }
    if (id == SECTION_RO_DATA) {
        TAKE_PAYLOAD("ro data section");
        p->ro_data = sec.data;
        p->ro_data_len = sec_len;
        NEXT_SECTION();
    }
    if (id == SECTION_RW_DATA) {
        TAKE_PAYLOAD("rw data section");
        p->rw_data = sec.data;
        p->rw_data_len = sec_len;
        NEXT_SECTION();
    }
    if (id == SECTION_IMPORTS) {
        TAKE_PAYLOAD("imports section");
        if ((s = parse_imports(p, &sec))) return s;
        NEXT_SECTION();
    }
    if (id == SECTION_EXPORTS) {
        TAKE_PAYLOAD("exports section");
        p->exports = sec.data;
        p->exports_len = sec_len;
        count_exports(p);
        NEXT_SECTION();
    }
    bool have_code = false;
    if (id == SECTION_CODE) {
        TAKE_PAYLOAD("code section");
        if ((s = program_parse_code_section(p, &sec))) return s;
        have_code = true;
        NEXT_SECTION();
    }
    static const uint8_t debug_ids[] = {SECTION_DEBUG_STRINGS, SECTION_DEBUG_LINES, SECTION_DEBUG_RANGES};
    for (unsigned i = 0; i < sizeof debug_ids; i++) {
        if (id == debug_ids[i]) {
            TAKE_PAYLOAD("debug section"); /* never needed for execution */
            NEXT_SECTION();
        }
    }
    while (id & 0x80) {
        TAKE_PAYLOAD("custom section");
        NEXT_SECTION();
    }
#undef NEXT_SECTION
#undef TAKE_PAYLOAD
    if (id != SECTION_END)
        return cpvm_fail(err, CPVM_E_BAD_SECTION, sec_at, "found unexpected section %u", id);
    /* Bytes after the terminator are not checked, as in the reference. */
    if (!have_code) return cpvm_fail(err, CPVM_E_BAD_CODE, sec_at, "no code found (section 6 missing)");
    if (p->ro_data_len > p->ro_data_size)
        return cpvm_fail(err, CPVM_E_DATA_TOO_LARGE, 0, "ro data is %u bytes but its declared size is %u",
                         p->ro_data_len, p->ro_data_size);
    if (p->rw_data_len > p->rw_data_size)
        return cpvm_fail(err, CPVM_E_DATA_TOO_LARGE, 0, "rw data is %u bytes but its declared size is %u",
                         p->rw_data_len, p->rw_data_size);
    return CPVM_OK;
}

/* --- public -------------------------------------------------------------- */

static cpvm_status parse_common(const uint8_t *bytes, size_t len, unsigned flags, bool raw, cpvm_isa isa,
                                cpvm_program **out, struct cpvm_error *err)
{
    *out = NULL;
    if (!bytes && len) return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "NULL input");
    if ((uint64_t)len >= LIMIT_BLOB_SIZE)
        return cpvm_fail(err, CPVM_E_LIMIT, 0, "input of %zu bytes is larger than 4 GiB", len);
    struct cpvm_program *p = calloc(1, sizeof *p);
    if (!p) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
    const uint8_t *src = bytes;
    if (!(flags & CPVM_PARSE_BORROW) && len) {
        p->owned = malloc(len);
        if (!p->owned) {
            free(p);
            return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory copying %zu bytes", len);
        }
        memcpy(p->owned, bytes, len);
        src = p->owned;
    }
    cpvm_status s;
    if (raw) {
        if ((unsigned)isa >= CPVM_ISA_COUNT) {
            s = cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "unknown instruction set %d", (int)isa);
        } else {
            p->isa = isa;
            struct reader r = {.data = src, .len = len, .pos = 0, .origin = 0, .err = err};
            s = program_parse_code_section(p, &r);
        }
    } else {
        s = parse_container(p, src, len, err);
    }
    if (s) {
        cpvm_program_free(p);
        return s;
    }
    isa_build_decode_map(p->isa, p->decode_map);
    *out = p;
    return CPVM_OK;
}

cpvm_status cpvm_program_parse(const uint8_t *bytes, size_t len, unsigned flags, cpvm_program **out,
                               struct cpvm_error *err)
{
    return parse_common(bytes, len, flags, false, CPVM_ISA_LATEST64, out, err);
}

cpvm_status cpvm_program_parse_raw(const uint8_t *bytes, size_t len, cpvm_isa isa, unsigned flags,
                                   cpvm_program **out, struct cpvm_error *err)
{
    return parse_common(bytes, len, flags, true, isa, out, err);
}

void cpvm_program_free(cpvm_program *p)
{
    if (!p) return;
    free(p->owned);
    free(p);
}

cpvm_isa cpvm_program_isa(const cpvm_program *p) { return p->isa; }
bool cpvm_program_is_64_bit(const cpvm_program *p) { return p->isa != CPVM_ISA_LATEST32; }

void cpvm_program_get_info(const cpvm_program *p, struct cpvm_program_info *info)
{
    *info = (struct cpvm_program_info){
        .isa = p->isa,
        .ro_data_size = p->ro_data_size,
        .rw_data_size = p->rw_data_size,
        .stack_size = p->stack_size,
        .ro_data = {p->ro_data, p->ro_data_len},
        .rw_data = {p->rw_data, p->rw_data_len},
        .code = {p->code, p->code_len},
        .bitmask = {p->bitmask, (p->code_len + 7u) / 8u},
        .jump_table_count = program_jump_table_len(p),
        .jump_table_entry_size = p->jump_table_entry_size,
        .export_count = p->export_count,
        .import_count = p->import_count,
        .container_size = p->container_size,
        .code_section = {p->code_section, p->code_section_len},
    };
}

bool cpvm_program_jump_table_entry(const cpvm_program *p, uint32_t index, uint32_t *pc)
{
    if (index >= program_jump_table_len(p)) return false;
    const uint8_t *e = p->jump_table + (size_t)index * p->jump_table_entry_size;
    uint32_t v = 0;
    for (unsigned i = 0; i < p->jump_table_entry_size; i++) v |= (uint32_t)e[i] << (8 * i);
    *pc = v;
    return true;
}

bool cpvm_program_export(const cpvm_program *p, uint32_t index, struct cpvm_symbol *out)
{
    if (index >= p->export_count) return false;
    struct reader r = {.data = p->exports, .len = p->exports_len, .pos = 0, .origin = 0, .err = NULL};
    uint32_t declared;
    if (reader_varint(&r, "export count", &declared)) return false;
    size_t pos = r.pos;
    for (uint32_t i = 0; i <= index; i++)
        if (!export_at(p, &pos, i == index ? out : NULL)) return false;
    return true;
}

bool cpvm_program_find_export(const cpvm_program *p, const char *name, uint32_t *pc)
{
    size_t n = strlen(name);
    struct cpvm_symbol sym;
    for (uint32_t i = 0; cpvm_program_export(p, i, &sym); i++) {
        if (sym.name_len == n && memcmp(sym.name, name, n) == 0) {
            *pc = sym.pc;
            return true;
        }
    }
    return false;
}

bool cpvm_program_import(const cpvm_program *p, uint32_t index, struct cpvm_symbol *out)
{
    if (index >= p->import_count) return false;
    uint32_t start = rd_le32(p->import_offsets + (size_t)index * 4);
    uint32_t end = index + 1 < p->import_count ? rd_le32(p->import_offsets + (size_t)(index + 1) * 4)
                                               : p->import_symbols_len;
    *out = (struct cpvm_symbol){0};
    if (start <= end && end <= p->import_symbols_len) {
        out->name = p->import_symbols + start;
        out->name_len = end - start;
    }
    return true;
}
