/* Helpers shared by the cpvm tool's subcommands. Written against cpvm.h only. */
#ifndef CPVM_CLI_UTIL_H
#define CPVM_CLI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cpvm.h"

/* Largest file the tool reads (1 GiB). */
#define CLI_MAX_FILE_SIZE (1ull << 30)

/* Reads a whole file into a malloc'd buffer with a NUL appended (not counted
 * in *len). Refuses files larger than CLI_MAX_FILE_SIZE. On failure prints
 * "cpvm <cmd>: <path>: <reason>" on stderr and returns NULL. */
uint8_t *cli_read_file(const char *cmd, const char *path, size_t *len);

/* Strict number parsing: decimal, or hexadecimal after "0x"/"0X"; no sign, no
 * whitespace, no trailing characters, no overflow. */
bool cli_parse_u64(const char *s, uint64_t *out);
bool cli_parse_u32(const char *s, uint32_t *out);
/* As cli_parse_u64, with an optional leading '-' (decimal or hex magnitude). */
bool cli_parse_i64(const char *s, int64_t *out);

/* Hex digits (optionally prefixed by "0x") to bytes; an even number of digits.
 * *out is malloc'd (non-NULL even when *len is 0). False on bad input. */
bool cli_hex_to_bytes(const char *s, uint8_t **out, size_t *len);
/* Bytes to lowercase hex; malloc'd, NUL-terminated; NULL when out of memory. */
char *cli_bytes_to_hex(const uint8_t *bytes, size_t len);

/* Register by ABI name (ra, sp, t0..t2, s0, s1, a0..a5) or r0..r12; -1 if none. */
int cli_parse_reg(const char *name);

/* Parses "NAME=VALUE" for --reg. False (and a message on stderr) when malformed. */
bool cli_parse_reg_assignment(const char *cmd, const char *arg, unsigned *reg, uint64_t *value);

/* Loads a program file: a `.polkavm` container, or with `raw` a raw Graypaper
 * program of instruction set `isa`. On failure prints the error and returns NULL. */
cpvm_program *cli_load_program(const char *cmd, const char *path, bool raw, cpvm_isa isa);

/* Parses --isa's value; prints an error and returns false when unknown. */
bool cli_parse_isa(const char *cmd, const char *name, cpvm_isa *isa);

/* Resolves --entry: an export name, else a pc (decimal or 0x-hex); NULL means
 * the first export, else pc 0. Prints an error and returns false when neither. */
bool cli_resolve_entry(const char *cmd, const cpvm_program *program, const char *entry, uint32_t *pc);

/* The module configuration `run` and `bench` use: naive gas metering, page size
 * 4096, the given backend and (compiler only) sandbox. */
/* The cost model cli_module_config() uses (naive unless a command sets it). */
extern struct cpvm_cost_model cli_cost_model;
/* --cost-model naive|full[:l1|l2|l3]|FILE (a serialized opcode table, gas.md §4). */
bool cli_parse_cost_model(const char *cmd, const char *arg, struct cpvm_cost_model *out);
#define CLI_COST_MODEL_USAGE \
    "  --cost-model M        gas cost model: naive (default), full (= full:l2), full:l1|l2|l3\n" \
    "                        (the reference's pipeline model, loads hitting that cache), or a\n" \
    "                        FILE holding a serialized per-opcode table (version 2)\n"

void cli_module_config(struct cpvm_module_config *cfg, cpvm_backend backend, cpvm_sandbox sandbox,
                       cpvm_memory_model memory, cpvm_compat compat, bool step_tracing);

/* Makes that module. Prints the error and returns NULL on failure; says on
 * stderr when the module differs from what was asked (cli_note_backend). */
cpvm_module *cli_make_module(const char *cmd, const char *path, const cpvm_program *program,
                             cpvm_backend backend, cpvm_sandbox sandbox, cpvm_memory_model memory,
                             cpvm_compat compat, bool step_tracing);

/* Says on stderr (each thing once per process) when the module fell back from
 * the backend asked for, and why (a missing CPU feature, or the zygote sandbox
 * being unavailable here), and when compiled code runs unsandboxed in this
 * process (--sandbox none, or, never expected, a zygote asked for but not had). */
void cli_note_backend(const char *cmd, const cpvm_module *m, cpvm_backend requested, cpvm_sandbox sandbox);

/* "interpreter" or "compiler" (also "jit"); prints the error itself. */
bool cli_parse_backend(const char *cmd, const char *name, cpvm_backend *out);

/* --sandbox: "zygote" or "none"; prints the error itself. */
bool cli_parse_sandbox(const char *cmd, const char *name, cpvm_sandbox *out);

/* The --sandbox lines of every subcommand's usage text. */
#define CLI_SANDBOX_USAGE                                                                       \
    "  --sandbox zygote|none where compiled code runs (only with --backend compiler):\n"         \
    "                        zygote (default): a locked-down worker process (SECURITY.md);\n"    \
    "                        none: unsandboxed, native code in this process \u2014 fuzzing speed only\n"

/* Prints "cpvm <cmd>: <what>: <code message> at offset N: <detail>" on stderr. */
void cli_print_error(const char *cmd, const char *what, const struct cpvm_error *err);

/* Copies `len` arbitrary bytes into `buf` (capacity `cap`, always terminated):
 * printable ASCII as is, backslash and double quote escaped, the rest \xNN.
 * Truncated output ends with "...". */
void cli_escape_bytes(const uint8_t *bytes, size_t len, char *buf, size_t cap);

/* Matches option `name` at argv[*i], given as "NAME VALUE" or "NAME=VALUE".
 * Returns true with *value set (advancing *i past a separate value). When the
 * value is missing, prints an error, sets *missing and returns false. */
/* The last branch of an option loop, for an argument that is no known option: an
 * unknown option or a second positional argument is a usage error (said on stderr,
 * returns false); otherwise *slot takes it. `what` names the positional ("program"). */
bool cli_positional(const char *cmd, const char *arg, const char **slot, const char *what);

bool cli_option(int argc, char **argv, int *i, const char *name, const char **value, bool *missing,
                const char *cmd);

/* ---- exact JSON numbers ------------------------------------------------- */

/* Parses JSON text (NUL-terminated, `len` bytes before the NUL) with cJSON and
 * stores each number's original token in its valuestring (freed by
 * cJSON_Delete), so that integers are read exactly even above 2^53. On failure
 * returns NULL and describes the problem in errbuf. */
cJSON *cli_json_parse_exact(const char *text, size_t len, char *errbuf, size_t errcap);

/* Exact integer readers for items from cli_json_parse_exact(). False when the
 * item is not a number, not an integer, or out of range. */
bool cli_json_u64(const cJSON *item, uint64_t *out);
bool cli_json_i64(const cJSON *item, int64_t *out);
bool cli_json_u32(const cJSON *item, uint32_t *out);

/* A raw JSON number item for exact integer output (never through a double). */
cJSON *cli_json_raw_u64(uint64_t v);
cJSON *cli_json_raw_i64(int64_t v);

#endif
