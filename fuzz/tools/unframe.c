/* unframe: turns a generator-based fuzz input back into the program it means,
 * for `cpvm disasm` / `cpvm run`, and prints the harness metadata.
 *
 *   unframe interp_exec|asm_roundtrip INPUT [-o OUT.polkavm]
 *
 * interp_exec inputs: byte 0 run config, byte 1 host seed, then generator
 * input with the layout from the input (page size / aux may differ from what
 * `cpvm run` uses: they are printed). asm_roundtrip: byte 0 mode, then
 * generator input with the fixed layout. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: unframe interp_exec|asm_roundtrip INPUT [-o OUT.polkavm]\n");
        return 2;
    }
    const char *out_path = argc >= 5 && strcmp(argv[3], "-o") == 0 ? argv[4] : "unframed.polkavm";
    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    struct gen_config cfg = GEN_CONFIG_INTERP_EXEC, asm_cfg = GEN_CONFIG_ASM_ROUNDTRIP;
    size_t skip = 2;
    if (strcmp(argv[1], "asm_roundtrip") == 0) {
        cfg = asm_cfg;
        skip = 1;
    } else if (strcmp(argv[1], "interp_exec") != 0) {
        fprintf(stderr, "unframe: unknown target '%s'\n", argv[1]);
        return 2;
    }
    if (n < skip) skip = n;
    struct gen_program g;
    if (gen_from_bytes(buf + skip, n - skip, &cfg, &g)) {
        fprintf(stderr, "unframe: generator failed\n");
        return 1;
    }
    f = fopen(out_path, "wb");
    if (!f || fwrite(g.blob, 1, g.blob_len, f) != g.blob_len || fclose(f)) {
        perror(out_path);
        return 1;
    }
    if (skip == 2)
        printf("run config 0x%02x: %s memory, compat %s, metering %s, step diff %s (limit bits %u), refill %s, "
               "re-enter %s; host seed 0x%02x\n",
               buf[0], (buf[0] & 1) ? "dynamic" : "standard", (buf[0] & 2) ? "gp04" : "polkavm",
               (buf[0] & 4) && !g.has_memset ? "off" : "on", (buf[0] & 8) ? "on" : "off", (buf[0] >> 4) & 3,
               (buf[0] & 0x40) ? "on" : "off", (buf[0] & 0x80) ? "on" : "off", buf[1]);
    printf("%s: %s, %" PRIu32 " instructions, code %" PRIu32 " bytes, entry pc %" PRIu32 ", gas %" PRId64
           ", step limit %" PRIu64 ", page size 0x%x, aux 0x%x\n",
           out_path, cpvm_isa_name(g.isa), g.insn_count, g.code_len, g.entry_pc, g.gas, g.step_limit, g.page_size,
           g.aux_size);
    gen_program_free(&g);
    return 0;
}
