/* cpvm gen SEED [-o FILE] [--isa NAME] [--max-insns N] — writes the program the
 * fuzzing generator (fuzz/gen/gen.h) makes from SEED, deterministically, so
 * that `cpvm disasm` and `cpvm run` can replay any generated case. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gen.h"
#include "util.h"

static const char *const CMD = "gen";

static void usage(FILE *out)
{
    fputs("usage: cpvm gen SEED [-o FILE] [--isa latest64|latest32|jamv1|revive_v1] [--max-insns N]\n"
          "  Writes the program the fuzzing generator makes from SEED (decimal or 0x hex)\n"
          "  to FILE (default gen-SEED.polkavm; '-' is stdout). The same seed and ISA\n"
          "  always give the same program. --isa defaults to latest64; --max-insns caps\n"
          "  the generated instructions (default 1024). The layout is the one `cpvm run`\n"
          "  uses (page size 4096, no aux data); the summary line gives the entry pc and\n"
          "  the suggested gas (`cpvm run FILE --gas N`).\n",
          out);
}

int cmd_gen(int argc, char **argv)
{
    const char *seed_arg = NULL, *out_path = NULL, *isa_name = NULL, *max_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (cli_option(argc, argv, &i, "-o", &v, &missing, CMD)) {
            out_path = v;
        } else if (cli_option(argc, argv, &i, "--isa", &v, &missing, CMD)) {
            isa_name = v;
        } else if (cli_option(argc, argv, &i, "--max-insns", &v, &missing, CMD)) {
            max_arg = v;
        } else if (missing) {
            return 2;
        } else if (!cli_positional(CMD, argv[i], &seed_arg, "seed")) {
            usage(stderr);
            return 2;
        }
    }
    if (!seed_arg) {
        usage(stderr);
        return 2;
    }
    uint64_t seed;
    if (!cli_parse_u64(seed_arg, &seed)) {
        fprintf(stderr, "cpvm gen: bad seed '%s' (decimal or 0x hex)\n", seed_arg);
        return 2;
    }
    cpvm_isa isa = CPVM_ISA_LATEST64;
    if (isa_name && !cli_parse_isa(CMD, isa_name, &isa)) return 2;
    struct gen_config cfg = {.isa = (int)isa, .max_insns = 0, .layout_from_input = false};
    if (max_arg && (!cli_parse_u32(max_arg, &cfg.max_insns) || cfg.max_insns == 0)) {
        fprintf(stderr, "cpvm gen: --max-insns: expected a count of at least 1, got '%s'\n", max_arg);
        return 2;
    }

    struct gen_program g;
    cpvm_status s = gen_from_seed(seed, isa, &cfg, &g);
    if (s != CPVM_OK) {
        fprintf(stderr, "cpvm gen: %s\n", cpvm_status_message(s));
        return 2;
    }
    char def_path[64];
    if (!out_path) {
        snprintf(def_path, sizeof def_path, "gen-%" PRIu64 ".polkavm", seed);
        out_path = def_path;
    }
    bool to_stdout = strcmp(out_path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(out_path, "wb");
    if (!f) {
        perror(out_path);
        gen_program_free(&g);
        return 2;
    }
    bool ok = fwrite(g.blob, 1, g.blob_len, f) == g.blob_len;
    ok = (to_stdout ? fflush(f) == 0 : fclose(f) == 0) && ok;
    if (!ok) {
        fprintf(stderr, "cpvm gen: %s: write error\n", out_path);
        gen_program_free(&g);
        return 2;
    }
    fprintf(to_stdout ? stderr : stdout,
            "%s: %s, %" PRIu32 " instructions, %" PRIu32 " code bytes, %" PRIu32
            " jump table entries, entry pc %" PRIu32 " (export main), suggested gas %" PRId64 "\n",
            to_stdout ? "<stdout>" : out_path, cpvm_isa_name(g.isa), g.insn_count, g.code_len, g.jump_table_count,
            g.entry_pc, g.gas);
    gen_program_free(&g);
    return 0;
}
