/* cpvm info PROGRAM [--raw [--isa NAME]] [--gas] [--gas-trace PC] [--cost-model M]
 * — a human-readable summary. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "info_gas.h"
#include "util.h"

static const char *const CMD = "info";

static void usage(FILE *out)
{
    fputs("usage: cpvm info PROGRAM [--raw [--isa latest64|jamv1|latest32|revive_v1]]\n"
          "  Prints the program's instruction set, sections, memory map (page size\n"
          "  4096), exports and imports. --raw reads a raw Graypaper program\n"
          "  (default ISA latest64) instead of a .polkavm container.\n"
          "  --gas                 also every basic block's gas cost (pc: cost)\n"
          "  --gas-trace PC        the full model's cycle-by-cycle schedule of the block at PC\n"
          "  --cost-model M        for --gas: naive, full[:l1|l2|l3] (default full:l2) or a\n"
          "                        table FILE; for --gas-trace: full[:l1|l2|l3]\n",
          out);
}

static void print_region(const char *name, uint32_t address, uint32_t size)
{
    if (size)
        printf("  %-9s 0x%08" PRIx32 "..0x%08" PRIx64 "  size 0x%" PRIx32 " (%" PRIu32 ")\n", name, address,
               (uint64_t)address + size, size, size);
    else
        printf("  %-9s 0x%08" PRIx32 "  size 0\n", name, address);
}

int cmd_info(int argc, char **argv)
{
    const char *path = NULL, *isa_name = NULL;
    bool raw = false, gas = false, trace = false;
    uint32_t trace_pc = 0;
    struct cpvm_cost_model model;
    memset(&model, 0, sizeof model);
    model.kind = CPVM_COST_FULL;
    model.cache = CPVM_CACHE_L2;
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--raw") == 0) {
            raw = true;
        } else if (cli_option(argc, argv, &i, "--isa", &v, &missing, CMD)) {
            isa_name = v;
        } else if (strcmp(argv[i], "--gas") == 0) {
            gas = true;
        } else if (cli_option(argc, argv, &i, "--gas-trace", &v, &missing, CMD)) {
            if (!cli_parse_u32(v, &trace_pc)) {
                fprintf(stderr, "cpvm info: --gas-trace: bad pc '%s'\n", v);
                return 2;
            }
            trace = true;
        } else if (cli_option(argc, argv, &i, "--cost-model", &v, &missing, CMD)) {
            if (!cli_parse_cost_model(CMD, v, &model)) return 2;
        } else if (missing) {
            return 2;
        } else if (!cli_positional(CMD, argv[i], &path, "program")) {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    cpvm_isa isa = CPVM_ISA_LATEST64;
    if (isa_name) {
        if (!raw) {
            fprintf(stderr, "cpvm info: --isa needs --raw (a container names its own ISA)\n");
            return 2;
        }
        if (!cpvm_isa_from_name(isa_name, &isa)) {
            fprintf(stderr, "cpvm info: unknown ISA '%s' (latest64, jamv1, latest32, revive_v1)\n", isa_name);
            return 2;
        }
    }
    cpvm_program *p = cli_load_program(CMD, path, raw, isa);
    if (!p) return 2;

    struct cpvm_program_info in;
    memset(&in, 0, sizeof in);
    cpvm_program_get_info(p, &in);

    printf("program:     %s\n", path);
    if (raw)
        printf("format:      raw program\n");
    else
        printf("format:      container, %zu bytes\n", in.container_size);
    printf("variant:     %s, %s\n", cpvm_isa_name(cpvm_program_isa(p)),
           cpvm_program_is_64_bit(p) ? "64-bit" : "32-bit");

    printf("sections:\n");
    printf("  ro_data    %zu bytes, declared size %" PRIu32 "\n", in.ro_data.len, in.ro_data_size);
    printf("  rw_data    %zu bytes, declared size %" PRIu32 "\n", in.rw_data.len, in.rw_data_size);
    printf("  stack      declared size %" PRIu32 "\n", in.stack_size);
    printf("  code       %zu bytes\n", in.code.len);
    printf("  jump table %" PRIu32 " entries, entry size %u\n", in.jump_table_count,
           (unsigned)in.jump_table_entry_size);
    printf("  bitmask    %zu bytes\n", in.bitmask.len);
    printf("  code section (raw program) %zu bytes\n", in.code_section.len);

    struct cpvm_memory_map map;
    struct cpvm_error err;
    memset(&map, 0, sizeof map);
    memset(&err, 0, sizeof err);
    printf("memory map (page size 4096, aux 0):\n");
    if (cpvm_memory_map_build(4096, in.ro_data_size, in.rw_data_size, in.stack_size, 0, &map, &err) == CPVM_OK) {
        print_region("ro_data", map.ro_data_address, map.ro_data_size);
        print_region("rw_data", map.rw_data_address, map.rw_data_size);
        printf("  heap      base 0x%08" PRIx32 ", max size 0x%" PRIx32 " (%" PRIu32 ")\n", map.heap_base,
               map.max_heap_size, map.max_heap_size);
        print_region("stack", map.stack_address_low, map.stack_size);
        printf("  stack top 0x%08" PRIx32 "\n", map.stack_address_high);
        print_region("aux_data", map.aux_data_address, map.aux_data_size);
    } else {
        size_t n = strnlen(err.detail, sizeof err.detail);
        printf("  error: %s%s%.*s\n", cpvm_status_message(err.code), n ? ": " : "", (int)n, err.detail);
    }

    char name[512];
    printf("exports (%" PRIu32 "):\n", in.export_count);
    for (uint32_t i = 0; i < in.export_count; i++) {
        struct cpvm_symbol sym;
        memset(&sym, 0, sizeof sym);
        if (!cpvm_program_export(p, i, &sym)) break;
        cli_escape_bytes(sym.name, sym.name ? sym.name_len : 0, name, sizeof name);
        printf("  %" PRIu32 ": pc %" PRIu32 " \"%s\"\n", i, sym.pc, name);
    }
    printf("imports (%" PRIu32 "):\n", in.import_count);
    for (uint32_t i = 0; i < in.import_count; i++) {
        struct cpvm_symbol sym;
        memset(&sym, 0, sizeof sym);
        if (!cpvm_program_import(p, i, &sym)) break;
        if (!sym.name)
            printf("  %" PRIu32 ": (invalid symbol)\n", i);
        else {
            cli_escape_bytes(sym.name, sym.name_len, name, sizeof name);
            printf("  %" PRIu32 ": \"%s\"\n", i, name);
        }
    }
    int rc = 0;
    if (gas) rc = info_gas_costs(CMD, p, &model);
    if (trace && !rc) {
        if (model.kind != CPVM_COST_FULL) {
            fprintf(stderr, "cpvm info: --gas-trace needs a full cost model\n");
            rc = 2;
        } else {
            static const int8_t latency[] = {[CPVM_CACHE_L1] = 4, [CPVM_CACHE_L2] = 25, [CPVM_CACHE_L3] = 37};
            rc = info_gas_trace(CMD, p, latency[model.cache], trace_pc);
        }
    }
    cpvm_program_free(p);
    return rc;
}
