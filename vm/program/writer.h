/* Building `.polkavm` containers and raw programs (blob-format.md §7). Unlike the
 * reference builder, the jump table entry size is the minimal byte count that
 * holds every entry, so no entry is ever dropped or truncated. */
#ifndef CPVM_PROGRAM_WRITER_H
#define CPVM_PROGRAM_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "cpvm.h"

struct writer_symbol {
    const uint8_t *name;
    size_t name_len;
    uint32_t pc; /* exports */
};

struct writer_parts {
    cpvm_isa isa;
    uint32_t ro_data_size, rw_data_size, stack_size;
    const uint8_t *ro_data, *rw_data;
    size_t ro_data_len, rw_data_len;
    const struct writer_symbol *imports, *exports;
    size_t import_count, export_count;
    const uint32_t *jump_table;
    size_t jump_table_count;
    unsigned jump_table_entry_size; /* 0 = minimal; 1..4 forces that size */
    const uint8_t *code;
    size_t code_len;
    const uint8_t *bitmask;         /* ceil(code_len / 8) bytes, padding bits zero */
};

/* Writes a container (raw = false) or just the section-6 payload (raw = true)
 * into a malloc'd buffer the caller frees. */
cpvm_status writer_build(const struct writer_parts *parts, bool raw, uint8_t **out, size_t *out_len,
                         struct cpvm_error *err);

/* Canonical varint (blob-format.md §2.3) into out[5]; returns its length. */
unsigned writer_varint(uint32_t value, uint8_t out[5]);

#endif
