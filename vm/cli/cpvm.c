/* cpvm — command-line front end: `cpvm <command> [arguments...]`. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"info", cmd_info, "show a program's sections, memory map, exports and imports"},
    {"run", cmd_run, "run a program and print the outcome as one JSON line"},
    {"asm", cmd_asm, "assemble text into a program"},
    {"disasm", cmd_disasm, "disassemble a program into text"},
    {"test-vectors", cmd_test_vectors, "check JAM / PolkaVM JSON test vectors"},
    {"bench", cmd_bench, "time a program's execution"},
    {"audit", cmd_audit, "print the sandbox policy and run the live sandbox audit"},
    {"gen", cmd_gen, "write the fuzzing generator's program for a seed"},
    {"repro", cmd_repro, "rerun a fuzz crash file and report what it was"},
    {"serve", cmd_serve, "serve the external-target protocol on stdin/stdout"},
    {"diff-external", cmd_diff_external, "compare cpvm with an external PVM on generated programs"},
};

static void usage(FILE *out)
{
    fputs("usage: cpvm <command> [arguments...]\n\ncommands:\n", out);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-13s %s\n", commands[i].name, commands[i].summary);
    fputs("\n'cpvm <command> --help' describes a command's arguments.\n", out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        if (argc > 2) {
            /* `cpvm help <command>` = `cpvm <command> --help`. */
            for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *sub[] = {argv[2], (char *)"--help", NULL};
                    return commands[i].fn(2, sub);
                }
            }
            fprintf(stderr, "cpvm: unknown command '%s'\n", argv[2]);
            usage(stderr);
            return 2;
        }
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(name, commands[i].name) == 0) return commands[i].fn(argc - 1, argv + 1);
    /* Accept the underscore spelling of test-vectors too. */
    if (strcmp(name, "test_vectors") == 0) return cmd_test_vectors(argc - 1, argv + 1);
    fprintf(stderr, "cpvm: unknown command '%s'\n", name);
    usage(stderr);
    return 2;
}
