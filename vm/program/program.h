/* struct cpvm_program: a parsed program, every section a slice of one buffer. */
#ifndef CPVM_PROGRAM_H
#define CPVM_PROGRAM_H

#include "cpvm.h"
#include "reader.h"

struct cpvm_program {
    cpvm_isa isa;
    uint8_t *owned;          /* the copy all slices point into, unless borrowed */
    size_t container_size;   /* 0 for raw programs */

    uint32_t ro_data_size, rw_data_size, stack_size;
    const uint8_t *ro_data, *rw_data;
    uint32_t ro_data_len, rw_data_len;

    const uint8_t *import_offsets, *import_symbols;
    uint32_t import_count, import_symbols_len;

    const uint8_t *exports;  /* section 5 payload, decoded on demand */
    uint32_t exports_len, export_count;

    const uint8_t *code_section; /* section 6 payload */
    uint32_t code_section_len;
    const uint8_t *jump_table;
    uint32_t jump_table_count;   /* as declared */
    uint8_t jump_table_entry_size;
    const uint8_t *code, *bitmask;
    uint32_t code_len;

    uint8_t decode_map[256];     /* opcode byte -> enum op for this ISA */
};

/* Parses a section-6 payload / raw program into `p` (shared by both parsers). */
cpvm_status program_parse_code_section(struct cpvm_program *p, struct reader *r);

/* Number of usable jump table entries (0 when the entry size is 0). */
static inline uint32_t program_jump_table_len(const struct cpvm_program *p)
{
    return p->jump_table_entry_size ? p->jump_table_count : 0;
}

#endif
