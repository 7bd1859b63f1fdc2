/* cpvm asm FILE -o OUT [--raw] [--isa NAME] — assembles text (isa.md §11, the
 * syntax documented atop vm/text/asm.c) into a `.polkavm` container or, with
 * --raw, a raw program. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "text/text.h"
#include "util.h"

static const char *const CMD = "asm";

static void usage(FILE *out)
{
    fputs("usage: cpvm asm FILE -o OUT [--raw] [--isa latest64|jamv1|latest32|revive_v1]\n"
          "  Assembles FILE into a .polkavm container at OUT, or with --raw into a raw\n"
          "  Graypaper program (code, bitmask and jump table only). --isa sets the\n"
          "  instruction set until a `%isa = ...` line (default latest64).\n",
          out);
}

/* Prints line `line` (1-based) of src, for context. */
static void print_line(const char *src, size_t len, uint64_t line)
{
    const char *p = src, *end = src + len;
    for (uint64_t k = 1; k < line && p < end; k++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    if (n && p[n - 1] == '\r') n--;
    if (n > 200) n = 200;
    fprintf(stderr, "    %.*s\n", (int)n, p);
}

int cmd_asm(int argc, char **argv)
{
    const char *path = NULL, *out_path = NULL, *isa_name = NULL;
    bool raw = false;
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--raw") == 0) {
            raw = true;
        } else if (cli_option(argc, argv, &i, "-o", &v, &missing, CMD)) {
            out_path = v;
        } else if (cli_option(argc, argv, &i, "--isa", &v, &missing, CMD)) {
            isa_name = v;
        } else if (missing) {
            return 2;
        } else if (!cli_positional(CMD, argv[i], &path, "input file")) {
            usage(stderr);
            return 2;
        }
    }
    if (!path || !out_path) {
        usage(stderr);
        return 2;
    }
    cpvm_isa isa = CPVM_ISA_LATEST64;
    if (isa_name && !cli_parse_isa(CMD, isa_name, &isa)) return 2;

    size_t len;
    uint8_t *src = cli_read_file(CMD, path, &len);
    if (!src) return 2;
    uint8_t *blob = NULL;
    size_t blob_len = 0;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = text_assemble((const char *)src, len, isa, raw, &blob, &blob_len, &err);
    if (s != CPVM_OK) {
        size_t n = strnlen(err.detail, sizeof err.detail);
        if (err.offset && s != CPVM_E_NO_MEMORY && s != CPVM_E_INVALID_ARGUMENT) {
            fprintf(stderr, "cpvm asm: %s:%" PRIu64 ": %s: %.*s\n", path, err.offset, cpvm_status_message(s), (int)n,
                    err.detail);
            print_line((const char *)src, len, err.offset);
        } else {
            fprintf(stderr, "cpvm asm: %s: %s: %.*s\n", path, cpvm_status_message(s), (int)n, err.detail);
        }
        free(src);
        return 2;
    }
    free(src);

    FILE *f = fopen(out_path, "wb");
    if (!f) {
        fprintf(stderr, "cpvm asm: %s: %s\n", out_path, strerror(errno));
        free(blob);
        return 2;
    }
    bool ok = fwrite(blob, 1, blob_len, f) == blob_len;
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    free(blob);
    if (!ok) {
        fprintf(stderr, "cpvm asm: %s: write failed: %s\n", out_path, strerror(saved));
        return 2;
    }
    return 0;
}
