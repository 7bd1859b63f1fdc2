/* cpvm repro FILE [--target NAME] [--build DIR] ... — the command line of the
 * fuzzers' crash triage (fuzz/triage/: running the replay binary, reading the
 * sanitizer report, the dedup name, the target's description of the input). */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "triage.h"
#include "util.h"

static const char *const CMD = "repro";

static void usage(FILE *out)
{
    fputs("usage: cpvm repro FILE [--target NAME] [--build DIR] [--binary PATH] [--timeout SEC]\n"
          "                  [--brief] [--verbose] [--full] [--program-out FILE]\n"
          "  Reruns a fuzz input in a child process with the target's replay binary\n"
          "  (DIR/fuzz/replay_<target>; DIR defaults to the build directory holding this\n"
          "  cpvm) and reports the target, the verdict (sanitizer report, invariant,\n"
          "  signal or \"no crash\"), the input in the target's words (its fuzz_describe(),\n"
          "  through replay_<target> --describe: framing and the program, disassembled)\n"
          "  and the commands that rerun it. When the replay binary is not sanitized and\n"
          "  DIR/fuzz/fuzz_<target> (the libFuzzer build) exists, that one runs too for a\n"
          "  stack. The target comes from --target, else from a path component naming\n"
          "  one (corpus/regressions/<target>/...), else from which replay binary crashes.\n"
          "  --brief prints one line, \"TARGET NAME VERDICT\" (NAME is the regression file\n"
          "  name <kind>-<function>-<hash8>; inputs with the same NAME are the same bug),\n"
          "  or \"TARGET - no crash\". --verbose adds the child's whole output, --full the\n"
          "  whole disassembly (else the first 400 lines); --program-out writes the\n"
          "  generated .polkavm (generator-based targets) for `cpvm run`/`cpvm disasm`.\n"
          "  Exit 0: a crash reproduced; 1: no crash; 2: usage error or nothing to run.\n",
          out);
}

int cmd_repro(int argc, char **argv)
{
    const char *file = NULL, *target = NULL, *build = NULL, *binary = NULL, *timeout_arg = NULL,
               *program_out = NULL;
    bool brief = false, verbose = false, full = false;
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--brief") == 0) {
            brief = true;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(argv[i], "--full") == 0) {
            full = true;
        } else if (cli_option(argc, argv, &i, "--target", &v, &missing, CMD)) {
            target = v;
        } else if (cli_option(argc, argv, &i, "--build", &v, &missing, CMD)) {
            build = v;
        } else if (cli_option(argc, argv, &i, "--binary", &v, &missing, CMD)) {
            binary = v;
        } else if (cli_option(argc, argv, &i, "--timeout", &v, &missing, CMD)) {
            timeout_arg = v;
        } else if (cli_option(argc, argv, &i, "--program-out", &v, &missing, CMD)) {
            program_out = v;
        } else if (missing) {
            return 2;
        } else if (!cli_positional(CMD, argv[i], &file, "input")) {
            usage(stderr);
            return 2;
        }
    }
    if (!file) {
        usage(stderr);
        return 2;
    }
    uint32_t timeout_s = 30;
    if (timeout_arg && (!cli_parse_u32(timeout_arg, &timeout_s) || timeout_s == 0 || timeout_s > 86400)) {
        fprintf(stderr, "cpvm repro: --timeout: expected 1..86400 seconds, got '%s'\n", timeout_arg);
        return 2;
    }
    if (binary && !target) {
        fprintf(stderr, "cpvm repro: --binary needs --target (it decides the input framing)\n");
        return 2;
    }
    struct triage_repro_opts o = {.file = file, .target = target, .build = build, .binary = binary,
                                  .program_out = program_out, .timeout_s = timeout_s, .brief = brief,
                                  .verbose = verbose, .full = full};
    return triage_repro(&o);
}
