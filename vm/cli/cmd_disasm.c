/* cpvm disasm PROGRAM [--raw [--isa NAME]] [--offsets] [--non-abi] — prints a
 * program as text that `cpvm asm` turns back into the same program. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "text/text.h"
#include "util.h"

static const char *const CMD = "disasm";

static void usage(FILE *out)
{
    fputs("usage: cpvm disasm PROGRAM [--raw [--isa latest64|jamv1|latest32|revive_v1]] [--offsets] [--non-abi]\n"
          "  Prints the program as assembly text that `cpvm asm` reassembles into the\n"
          "  same code, bitmask, jump table, data and exports. --raw reads a raw\n"
          "  Graypaper program (default ISA latest64) instead of a .polkavm container.\n"
          "  --offsets adds each instruction's code offset and bytes as a comment;\n"
          "  --non-abi names registers r0..r12 instead of ra..a5.\n",
          out);
}

int cmd_disasm(int argc, char **argv)
{
    const char *path = NULL, *isa_name = NULL;
    bool raw = false;
    struct text_disasm_options opt;
    memset(&opt, 0, sizeof opt);
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--raw") == 0) {
            raw = true;
        } else if (strcmp(argv[i], "--offsets") == 0) {
            opt.show_offsets = true;
        } else if (strcmp(argv[i], "--non-abi") == 0) {
            opt.non_abi_regs = true;
        } else if (cli_option(argc, argv, &i, "--isa", &v, &missing, CMD)) {
            isa_name = v;
        } else if (missing) {
            return 2;
        } else if (argv[i][0] == '-' && argv[i][1] != 0) {
            fprintf(stderr, "cpvm disasm: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "cpvm disasm: more than one program given\n");
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    cpvm_isa isa = CPVM_ISA_LATEST64;
    if (isa_name) {
        if (!raw) {
            fprintf(stderr, "cpvm disasm: --isa needs --raw (a container names its own ISA)\n");
            return 2;
        }
        if (!cli_parse_isa(CMD, isa_name, &isa)) return 2;
    }
    cpvm_program *p = cli_load_program(CMD, path, raw, isa);
    if (!p) return 2;
    char *text = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = text_disassemble(p, &opt, &text, &err);
    cpvm_program_free(p);
    if (s != CPVM_OK) {
        cli_print_error(CMD, path, &err);
        return 2;
    }
    bool ok = fputs(text, stdout) >= 0 && fflush(stdout) == 0;
    free(text);
    if (!ok) {
        fprintf(stderr, "cpvm disasm: error writing the output\n");
        return 2;
    }
    return 0;
}
