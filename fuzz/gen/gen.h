/* The structure-aware program generator: fuzz bytes in, a valid `.polkavm`
 * program out (STYLE.md §9). Every instruction comes from isa.def through
 * isa.h; nothing here keeps its own instruction list.
 *
 * Input framing (bytes are consumed left to right; reading past the end gives
 * 0, so a short input is a small program and the empty input is the prologue
 * plus `ret`):
 *
 *   H0  bits 0-1 ISA (only with GEN_ISA_FROM_INPUT; else ignored)
 *       bit 2    non-JamV1: leave the last instruction falling through into
 *                the implicit trap instead of appending a terminator
 *       bit 3    with H5 bits 6-7 set: enter in the middle of the code (entry
 *                pc picked by H5)
 *       bits 4-5 page size class (only with layout_from_input): 4K 4K 16K 64K
 *       bit 6    add an import section
 *       bit 7    aux data region (only with layout_from_input)
 *   H1  ro size class (low nibble), rw size class (high nibble)
 *   H2  stack size class (low nibble), data length class (bits 4-5), data
 *       fill pattern (bits 6-7)
 *   H3  jump table: header entries (low nibble), invalid-entry pattern (high)
 *   H4  suggested gas class (bits 0-2), step limit class (bits 3-5), final
 *       terminator (bits 6-7: ret, ret, ret, then H5 bit 0: trap or jump to
 *       block 0)
 *   H5  entry instruction index (used when H0 bit 3 and H5 bits 6-7 are set)
 *   then one record per generated instruction or short idiom:
 *       selector byte S: S < OP_COUNT is instruction S of isa.def (an
 *       instruction the ISA lacks maps onto one it has), larger values are
 *       idioms (set a base register, call, ret, dynamic jump, memset, sbrk,
 *       bounded loop, store-then-load, block split, unknown opcode, ...);
 *       followed by that record's operand bytes (registers as nibbles,
 *       immediates as a table index or raw little-endian bytes, addresses as
 *       a region + position byte, targets as a block delta).
 *
 * One record maps to one instruction (or one idiom), so a mutated byte gives
 * a nearby program. No PRNG is ever seeded from the whole input.
 *
 * Memory accesses mostly go through base registers the prologue loads with
 * addresses inside the ro/rw/stack/heap regions of the program's memory map
 * (cpvm_memory_map_build), with offsets near region and page boundaries; a
 * minority cross or miss the boundaries. Branch, jump and jump-table targets
 * are block starts most of the time, mid-instruction or out-of-range offsets
 * some of the time. JamV1 programs pass JamV1 load validation.
 */
#ifndef CPVM_FUZZ_GEN_H
#define CPVM_FUZZ_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpvm.h"

#define GEN_ISA_FROM_INPUT (-1)

struct gen_config {
    int isa;                /* a cpvm_isa, or GEN_ISA_FROM_INPUT (H0 picks it) */
    uint32_t max_insns;     /* cap on generated records (0 = 1024) */
    /* false: page size 4096 and no aux region, as `cpvm run` uses them;
     * true: H0 picks both (the harness must then configure its module with
     * the returned page_size and aux_size). */
    bool layout_from_input;
};

/* The fuzz targets' configurations (their fuzz_describe() decodes with the
 * same ones). */
#define GEN_CONFIG_ASM_ROUNDTRIP {.isa = GEN_ISA_FROM_INPUT, .max_insns = 512, .layout_from_input = false}
#define GEN_CONFIG_INTERP_EXEC {.isa = GEN_ISA_FROM_INPUT, .max_insns = 256, .layout_from_input = true}

/* Everything a harness needs to run the program. */
struct gen_program {
    cpvm_isa isa;
    uint8_t *blob;          /* the `.polkavm` container, malloc'd */
    size_t blob_len;
    uint32_t entry_pc;      /* also exported as "main" */
    int64_t gas;            /* suggested starting gas */
    uint64_t step_limit;    /* suggested step limit per run (0 = none) */
    uint32_t page_size;     /* module page size the addresses assume */
    uint32_t aux_size;      /* module aux data size the addresses assume */
    struct cpvm_memory_map map;
    uint32_t code_len;
    uint32_t insn_count;
    uint32_t jump_table_count;
    bool has_memset;        /* unbounded work without gas metering */
    size_t consumed;        /* input bytes used */
};

/* Builds a program from fuzz bytes. Fails only on host allocation failure
 * (CPVM_E_NO_MEMORY) or a bad config (CPVM_E_INVALID_ARGUMENT). A generator
 * bug (an instruction that does not encode) aborts. */
cpvm_status gen_from_bytes(const uint8_t *data, size_t len, const struct gen_config *cfg, struct gen_program *out);

/* Deterministic per seed: fills `buf` with splitmix64 output and returns how
 * many bytes the seed asks for (at most `cap`). */
size_t gen_seed_bytes(uint64_t seed, uint8_t *buf, size_t cap);

/* gen_seed_bytes() followed by gen_from_bytes() for a fixed ISA. `cfg` may be
 * NULL (fixed layout, default cap); its isa field is ignored. */
cpvm_status gen_from_seed(uint64_t seed, cpvm_isa isa, const struct gen_config *cfg, struct gen_program *out);

void gen_program_free(struct gen_program *p);

/* ---- edge values, unusual encodings, and what the generator made --------------
 * ID_EDGE_PAIR records load two registers with edge values and run one
 * two-source instruction on them; ID_ODD_ENC records encode one instruction
 * non-canonically (register fields 13-15, ignored bits set, first-immediate
 * length fields 5-7, longer immediates, padding up to the 24-byte skip). */
#define GEN_EDGE_COUNT 16
extern const uint64_t gen_edge_values[GEN_EDGE_COUNT]; /* register operands */
extern const int32_t gen_edge_imms[GEN_EDGE_COUNT];    /* immediate operands */

/* True for the instructions ID_EDGE_PAIR uses: two registers (RRR, branches),
 * or a register and an immediate (ALU immediates, branches on an immediate). */
bool gen_two_sources(unsigned op);

enum gen_enc_class {
    GEN_ENC_REG_A13, GEN_ENC_REG_A14, GEN_ENC_REG_A15, /* register field a written as 13/14/15 */
    GEN_ENC_REG_B13, GEN_ENC_REG_B14, GEN_ENC_REG_B15,
    GEN_ENC_REG_D13, GEN_ENC_REG_D14, GEN_ENC_REG_D15,
    GEN_ENC_IGNORED_BITS, /* bits the decoder ignores, set */
    GEN_ENC_L1_WIDE,      /* a first-immediate length field of 5-7 (read as 4) */
    GEN_ENC_LONGER,       /* longer than canonical: wider immediates and/or padding */
    GEN_ENC_COUNT
};

/* Counts over every program generated while attached (fuzz/tools/gen_report). */
struct gen_stats {
    uint64_t programs;
    uint64_t insns[256];                                  /* per isa.def instruction */
    uint32_t pairs[256][GEN_EDGE_COUNT][GEN_EDGE_COUNT];  /* ID_EDGE_PAIR: instruction x edge x edge */
    uint64_t enc[GEN_ENC_COUNT];
    uint64_t skips[25];                                   /* instructions by skip length (length - 1) */
    uint64_t odd_skips[25];                               /* non-canonical ones by skip length */
};
/* Every later gen_from_bytes() adds to *s (NULL detaches). Not thread-safe;
 * for tools, not for fuzz targets. */
void gen_stats_attach(struct gen_stats *s);

/* What selector byte `s` generates: an isa.def name ("add_64"; the ISA may
 * map it onto another instruction) or an idiom ("idiom_call"). */
const char *gen_selector_name(uint8_t s);

/* The inverse, approximately: generator input bytes whose program resembles
 * `prog` (same instructions with the same immediates, registers and targets
 * as far as the generator's operand mapping can express them). Used to turn
 * conformance programs into seeds. Returns a malloc'd buffer, NULL on OOM. */
uint8_t *gen_input_from_program(const cpvm_program *prog, size_t *len);

#endif
