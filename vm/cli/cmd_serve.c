/* cpvm serve: cpvm as an external-fuzzing target, speaking the protocol of
 * fuzz/external/PROTOCOL.md on stdin/stdout. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "server.h"

int cmd_serve(int argc, char **argv)
{
    if (argc > 1) {
        bool help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        fputs("usage: cpvm serve\n"
              "  Serves the external-target protocol v1 (fuzz/external/PROTOCOL.md) on\n"
              "  stdin/stdout until BYE or end of input: cases run on the interpreter\n"
              "  under the GP or PolkaVM 0.35 profile they name.\n",
              help ? stdout : stderr);
        return help ? 0 : 2;
    }
    return xp_serve(0, 1);
}
