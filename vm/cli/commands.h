/* The cpvm tool's subcommands. Each gets its own argument vector: argv[0] is
 * the subcommand's name, argv[1..argc-1] its arguments. Returns the exit code. */
#ifndef CPVM_CLI_COMMANDS_H
#define CPVM_CLI_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_asm(int argc, char **argv);
int cmd_disasm(int argc, char **argv);
int cmd_test_vectors(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_gen(int argc, char **argv);
int cmd_repro(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_diff_external(int argc, char **argv);

#endif
