/* make_seeds: writes the committed seed corpus (corpus/<target>/) from the
 * conformance vectors' programs, the generator's seeds and hand-made edge
 * cases. CI does not run it; rerun it after a framing change and commit the
 * result.
 *
 *   make_seeds CONFORMANCE_DIR CORPUS_DIR
 *
 * Per conformance program (jam-pvm-v0.4 read as Latest64, polkavm-0.35 as
 * JamV1, blob-format.md §9):
 *   blob_parse/conf-<set>-<name>       mode (ISA, run) + the raw program;
 *                                      every fourth also as a container (.pvm)
 *   asm_roundtrip/conf-<set>-<name>    raw mode + the raw program
 *   interp_exec/conf-<set>-<name>      run config + host seed + generator input
 *                                      resembling the program (gen.h inverse)
 *   asm_text/conf-<set>-<name>         every fourth: raw-program mode + its
 *                                      disassembly (text); asm_text/edge-*: each
 *                                      directive and each assembler error
 *   diff_interp_jit/edge-pairs-<op>-<k> every two-source instruction with all
 *                                      16 x 16 edge-value pairs (gen.h) in its
 *                                      sources, over a few programs
 *   diff_interp_jit/edge-pairs32-<op>-0 the same on Latest32 for the
 *                                      instructions it gives a 32-bit meaning
 *   diff_interp_jit/edge-odd-<n>       non-canonical encodings of every class
 *                                      and skip length (ID_ODD_ENC records)
 *   interp_exec/edge-*-step            the first of each, stepped beside the
 *                                      fast loop
 *   blob_parse, compile/edge-code-gap  120 code bytes without an instruction start
 *   diff_interp_jit/edge-access-<op>   every load and store inside a page, across
 *                                      one, past its region (interp_exec: -step)
 *   diff_interp_jit/edge-backedge-*    every branch looping back until out of gas
 *   diff_interp_jit/edge-fused-*       the interpreter's fused pairs
 *                                      (vm/interp/fuse.def, where it exists)
 * plus gen-seed-<n> (splitmix64 generator input, as `cpvm gen n`; asm_text:
 * the generated container's disassembly) and edge-* files (see the functions
 * below).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cpvm.h"
#include "common/limits.h"
#include "gen.h"
#include "isa/isa.h"
#include "program/writer.h"
#include "text/text.h"

static const char *corpus;
static unsigned written;

static void write_seed(const char *target, const char *name, const uint8_t *head, size_t head_len,
                       const uint8_t *body, size_t body_len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s", corpus, target, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    if ((head_len && fwrite(head, 1, head_len, f) != head_len) || (body_len && fwrite(body, 1, body_len, f) != body_len) ||
        fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    written++;
}

static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* asm_text: mode byte (ISA, bit 2 raw) + the program's disassembly. */
static void text_seed(const char *name, const cpvm_program *p, bool raw)
{
    struct text_disasm_options opt = {.show_offsets = false, .non_abi_regs = false};
    char *text = NULL;
    if (text_disassemble(p, &opt, &text, NULL) != CPVM_OK) return;
    uint8_t mode = (uint8_t)(cpvm_program_isa(p) | (raw ? 4 : 0));
    write_seed("asm_text", name, &mode, 1, (const uint8_t *)text, strlen(text));
    free(text);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A container holding the raw program, exported "main" at `entry`. */
static uint8_t *container_of(const cpvm_program *p, uint32_t entry, size_t *len)
{
    struct cpvm_program_info info;
    cpvm_program_get_info(p, &info);
    uint32_t *jt = calloc(info.jump_table_count + 1, sizeof *jt);
    for (uint32_t i = 0; i < info.jump_table_count; i++) cpvm_program_jump_table_entry(p, i, &jt[i]);
    static const uint8_t main_name[] = "main";
    struct writer_symbol exp = {main_name, 4, entry};
    struct writer_parts parts = {
        .isa = info.isa,
        .ro_data_size = 0x1000,
        .rw_data_size = 0x1000,
        .stack_size = 0x1000,
        .exports = &exp,
        .export_count = 1,
        .jump_table = jt,
        .jump_table_count = info.jump_table_count,
        .jump_table_entry_size = info.jump_table_entry_size,
        .code = info.code.ptr,
        .code_len = info.code.len,
        .bitmask = info.bitmask.ptr,
    };
    uint8_t *out = NULL;
    if (writer_build(&parts, false, &out, len, NULL)) out = NULL;
    free(jt);
    return out;
}

static void conformance_set(const char *dir, const char *set, cpvm_isa isa)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        exit(1);
    }
    char **names = NULL;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    static const uint8_t run_cfgs[4] = {0x00, 0x01, 0x08, 0xc0};
    for (size_t i = 0; i < n; i++) {
        char path[4096], name[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        size_t len;
        uint8_t *text = read_file(path, &len);
        cJSON *j = text ? cJSON_Parse((const char *)text) : NULL;
        const cJSON *prog = j ? cJSON_GetObjectItemCaseSensitive(j, "program") : NULL;
        const cJSON *pc_item = j ? cJSON_GetObjectItemCaseSensitive(j, "initial-pc") : NULL;
        if (!cJSON_IsArray(prog)) {
            fprintf(stderr, "make_seeds: %s: no program\n", path);
            exit(1);
        }
        size_t plen = (size_t)cJSON_GetArraySize(prog);
        uint8_t *raw = malloc(plen + 1);
        size_t k = 0;
        const cJSON *b;
        cJSON_ArrayForEach(b, prog) raw[k++] = (uint8_t)b->valueint;
        uint32_t entry = cJSON_IsNumber(pc_item) ? (uint32_t)pc_item->valuedouble : 0;
        names[i][strlen(names[i]) - 5] = 0;
        snprintf(name, sizeof name, "conf-%s-%s", set, names[i]);

        uint8_t mode = (uint8_t)(isa | 0x80); /* raw ISA + run */
        write_seed("blob_parse", name, &mode, 1, raw, plen);
        uint8_t am = (uint8_t)(1 | isa << 1);
        write_seed("asm_roundtrip", name, &am, 1, raw, plen);

        cpvm_program *p = NULL;
        if (cpvm_program_parse_raw(raw, plen, isa, 0, &p, NULL) == CPVM_OK) {
            if (i % 4 == 0) {
                text_seed(name, p, true);
                size_t clen;
                uint8_t *c = container_of(p, entry, &clen);
                if (c) {
                    char cname[600];
                    snprintf(cname, sizeof cname, "%s.pvm", name);
                    write_seed("blob_parse", cname, &mode, 1, c, clen);
                    uint8_t cm = 0x05;
                    write_seed("asm_roundtrip", cname, &cm, 1, c, clen);
                    free(c);
                }
            }
            size_t glen;
            uint8_t *gin = gen_input_from_program(p, &glen);
            if (gin) {
                uint8_t head[2] = {run_cfgs[i % 4], (uint8_t)i};
                write_seed("interp_exec", name, head, 2, gin, glen);
                free(gin);
            }
            cpvm_program_free(p);
        }
        free(raw);
        cJSON_Delete(j);
        free(text);
        free(names[i]);
    }
    free(names);
}

static void generated(void)
{
    uint8_t buf[1024];
    for (unsigned s = 0; s < 24; s++) {
        char name[64];
        size_t n = gen_seed_bytes(s, buf, sizeof buf);
        snprintf(name, sizeof name, "gen-seed-%u", s);
        uint8_t am = (uint8_t)((s & 1) ? 0x20 : 0x00) | (uint8_t)((s & 2) ? 0x18 : 0);
        write_seed("asm_roundtrip", name, &am, 1, buf, n);
        /* run configurations: standard, dynamic, step differential, refill + re-entry, unmetered */
        static const uint8_t cfgs[6] = {0x00, 0x01, 0x08, 0x38, 0xc1, 0x04};
        uint8_t head[2] = {cfgs[s % 6], (uint8_t)(s * 37)};
        write_seed("interp_exec", name, head, 2, buf, n);
        struct gen_config cfg = GEN_CONFIG_ASM_ROUNDTRIP;
        struct gen_program g;
        cpvm_program *p = NULL;
        if (gen_from_bytes(buf, n, &cfg, &g) == CPVM_OK) {
            if (cpvm_program_parse(g.blob, g.blob_len, 0, &p, NULL) == CPVM_OK) {
                text_seed(name, p, false);
                cpvm_program_free(p);
            }
            gen_program_free(&g);
        }
    }
}

/* ---- hand-made edge cases ------------------------------------------------ */

static uint8_t selector(const char *name)
{
    for (unsigned s = 0; s < 256; s++)
        if (strcmp(gen_selector_name((uint8_t)s), name) == 0) return (uint8_t)s;
    fprintf(stderr, "make_seeds: no selector %s\n", name);
    exit(1);
}

/* A raw program from its parts (code, one start bit per listed offset). */
static size_t raw_program(uint8_t *out, const uint8_t *jt, uint8_t jt_count, uint8_t entry_size, const uint8_t *code,
                          uint8_t code_len, const uint8_t *starts, size_t n_starts)
{
    size_t k = 0;
    out[k++] = jt_count;
    out[k++] = entry_size;
    out[k++] = code_len;
    memcpy(out + k, jt, (size_t)jt_count * entry_size);
    k += (size_t)jt_count * entry_size;
    memcpy(out + k, code, code_len);
    k += code_len;
    uint8_t bm[32] = {0};
    for (size_t i = 0; i < n_starts; i++) bm[starts[i] >> 3] |= (uint8_t)(1u << (starts[i] & 7));
    memcpy(out + k, bm, (code_len + 7u) / 8u);
    return k + (code_len + 7u) / 8u;
}

static void edge_blob_parse(void)
{
    uint8_t out[512], code[128];
    size_t n;
    /* every byte as a one-byte instruction, per ISA: unknown opcodes, truncated arguments */
    for (unsigned isa = 0; isa < CPVM_ISA_COUNT; isa++) {
        for (unsigned half = 0; half < 2; half++) {
            uint8_t starts[128];
            for (unsigned i = 0; i < 128; i++) {
                code[i] = (uint8_t)(half * 128 + i);
                starts[i] = (uint8_t)i;
            }
            n = raw_program(out, NULL, 0, 0, code, 128, starts, 128);
            char name[64];
            snprintf(name, sizeof name, "edge-all-opcodes-%s-%u", cpvm_isa_name((cpvm_isa)isa), half);
            uint8_t mode = (uint8_t)(0x80 | isa);
            write_seed("blob_parse", name, &mode, 1, out, n);
        }
    }
    /* isa.md §2 slow-scanner quirk: add_64 at 7, next start at 32, code 38 and 40 bytes */
    for (unsigned len = 38; len <= 40; len += 2) {
        memset(code, 0, sizeof code);
        code[0] = 1; /* fallthrough ... */
        code[7] = 200;
        code[8] = 0x87;
        code[9] = 9;
        code[32] = 0;
        uint8_t starts[3] = {0, 7, 32};
        n = raw_program(out, NULL, 0, 0, code, (uint8_t)len, starts, 3);
        char name[64];
        snprintf(name, sizeof name, "edge-slow-scanner-%u", len);
        uint8_t mode = 0x82;
        write_seed("blob_parse", name, &mode, 1, out, n);
    }
    /* isa.md §10.2 look-back quirk: a jump target at 32 whose predecessor is 25 bytes back */
    memset(code, 0, sizeof code);
    code[7] = 40; /* jump */
    code[8] = 25;
    code[32] = 0; /* trap */
    {
        uint8_t starts[3] = {0, 7, 32}, jt[2] = {32, 7};
        n = raw_program(out, jt, 2, 1, code, 40, starts, 3);
        uint8_t mode = 0x82;
        write_seed("blob_parse", "edge-lookback-window", &mode, 1, out, n);
    }
    /* a jump table of entry size 0 with many entries; entries of 4 bytes */
    {
        uint8_t raw[] = {0xbf, 0xff, 0x00, 0x01, 0x00, 0x01};
        uint8_t mode = 0x83;
        write_seed("blob_parse", "edge-jump-table-size0", &mode, 1, raw, sizeof raw);
        uint8_t jt[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
        code[0] = 0;
        uint8_t starts[1] = {0};
        n = raw_program(out, jt, 2, 4, code, 1, starts, 1);
        write_seed("blob_parse", "edge-jump-table-size4", &mode, 1, out, n);
    }
    /* non-zero bitmask padding; a 5-byte varint code length; empty code */
    {
        uint8_t pad[] = {0x00, 0x00, 0x01, 0x00, 0x03};
        uint8_t v5[] = {0x00, 0x00, 0xf0, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01};
        uint8_t empty[] = {0x00, 0x00, 0x00};
        uint8_t mode = 0x82;
        write_seed("blob_parse", "edge-bitmask-padding", &mode, 1, pad, sizeof pad);
        write_seed("blob_parse", "edge-varint-5-bytes", &mode, 1, v5, sizeof v5);
        write_seed("blob_parse", "edge-empty-code", &mode, 1, empty, sizeof empty);
    }
    /* register nibbles 13-15, first-immediate length field 7, short load_imm64 */
    {
        uint8_t c[] = {190, 0xff, 0xfe, 70, 0x77, 1, 2, 20, 0x07, 1, 2, 0};
        uint8_t starts[4] = {0, 3, 7, 11};
        n = raw_program(out, NULL, 0, 0, c, sizeof c, starts, 4);
        uint8_t mode = 0x82;
        write_seed("blob_parse", "edge-odd-fields", &mode, 1, out, n);
    }
    /* 120 bytes of code between two instructions with no instruction start
     * (more than a 64-bit word of the bitmask), parsed, compiled and run */
    {
        memset(code, 0, sizeof code);
        code[0] = 40; /* jump to 124 */
        code[1] = 124;
        code[124] = 0;
        uint8_t starts[2] = {0, 124};
        n = raw_program(out, NULL, 0, 0, code, 125, starts, 2);
        uint8_t mode = 0x82;
        write_seed("blob_parse", "edge-code-gap", &mode, 1, out, n);
        mode = 0x0a; /* compile: raw Latest64, gas metering (a short run) */
        write_seed("compile", "edge-code-gap", &mode, 1, out, n);
    }
    /* JamV1 code that ends falling through (load-time validation fails) */
    {
        uint8_t c[] = {200, 0x87, 9};
        uint8_t starts[1] = {0};
        n = raw_program(out, NULL, 0, 0, c, sizeof c, starts, 1);
        uint8_t mode = 0x83;
        write_seed("blob_parse", "edge-jam-falls-off-the-end", &mode, 1, out, n);
    }
}

/* A container (blob-format.md): magic, version, length, then sections given
 * as (id, payload length, payload) triples; returns its length. */
static size_t container(uint8_t *out, cpvm_isa isa, const uint8_t *sections, size_t sections_len)
{
    memcpy(out, "PVM", 4);
    out[4] = (uint8_t)isa;
    size_t n = 13;
    memcpy(out + n, sections, sections_len);
    n += sections_len;
    out[n++] = 0; /* end */
    for (unsigned i = 0; i < 8; i++) out[5 + i] = (uint8_t)((uint64_t)n >> (8 * i));
    return n;
}

/* Appends section `id` with `len` payload bytes. */
static size_t section(uint8_t *out, size_t at, uint8_t id, const uint8_t *payload, uint32_t len)
{
    out[at++] = id;
    at += writer_varint(len, out + at);
    memcpy(out + at, payload, len);
    return at + len;
}

/* Containers with the sections and errors generated programs never have. */
static void edge_containers(void)
{
    uint8_t code_sec[64], secs[256], out[512];
    const uint8_t trap[1] = {0}, starts[1] = {0};
    size_t code_len = raw_program(code_sec, NULL, 0, 0, trap, 1, starts, 1);
    const uint8_t mode = 0x83; /* JamV1; each module run */
    size_t n;
    /* debug sections (skipped) and a custom one after the code */
    n = section(secs, 0, 6, code_sec, (uint32_t)code_len);
    n = section(secs, n, 128, (const uint8_t *)"str", 3);
    n = section(secs, n, 129, (const uint8_t *)"\x01\x02", 2);
    n = section(secs, n, 130, (const uint8_t *)"", 0);
    n = section(secs, n, 0x85, (const uint8_t *)"custom", 6);
    write_seed("blob_parse", "edge-container-debug-sections", &mode, 1, out, container(out, CPVM_ISA_JAM_V1, secs, n));
    /* rw data longer than its declared size */
    const uint8_t memcfg[3] = {0, 1, 0}, rw[2] = {1, 2};
    n = section(secs, 0, 1, memcfg, 3);
    n = section(secs, n, 3, rw, 2);
    n = section(secs, n, 6, code_sec, (uint32_t)code_len);
    write_seed("blob_parse", "edge-container-rw-too-large", &mode, 1, out, container(out, CPVM_ISA_JAM_V1, secs, n));
    /* sizes that parse but do not fit the address space: module creation refuses them */
    uint8_t huge[16];
    unsigned hk = writer_varint(3000000000u, huge);
    hk += writer_varint(2000000000u, huge + hk);
    huge[hk++] = 0;
    n = section(secs, 0, 1, huge, hk);
    n = section(secs, n, 6, code_sec, (uint32_t)code_len);
    write_seed("blob_parse", "edge-container-memory-too-large", &mode, 1, out, container(out, CPVM_ISA_JAM_V1, secs, n));
    /* an import count over the limit; one whose offsets do not fit */
    uint8_t imports[8];
    unsigned k = writer_varint(LIMIT_IMPORTS + 1, imports);
    n = section(secs, 0, 4, imports, k);
    n = section(secs, n, 6, code_sec, (uint32_t)code_len);
    write_seed("blob_parse", "edge-container-imports-over-limit", &mode, 1, out, container(out, CPVM_ISA_JAM_V1, secs, n));
    const uint8_t short_imports[5] = {3, 0, 0, 0, 0};
    n = section(secs, 0, 4, short_imports, 5);
    n = section(secs, n, 6, code_sec, (uint32_t)code_len);
    write_seed("blob_parse", "edge-container-imports-short", &mode, 1, out, container(out, CPVM_ISA_JAM_V1, secs, n));
}

static uint8_t selector_of(const char *idiom)
{
    for (unsigned s = 0; s < 256; s++)
        if (strcmp(gen_selector_name((uint8_t)s), idiom) == 0) return (uint8_t)s;
    fprintf(stderr, "make_seeds: no selector for %s\n", idiom);
    exit(1);
}

/* interp_exec/<name>-step: the same program stepped one instruction at a
 * time beside the fast loop (run config bit 3, step 1; gas class 0 keeps it
 * under the target's step-differential gas cap). */
static void step_twin(const char *name, uint8_t *buf, size_t n)
{
    uint8_t cfg = buf[0], gas = buf[2 + 4];
    buf[0] = 0x08;
    buf[2 + 4] = 0;
    char twin[128];
    snprintf(twin, sizeof twin, "%s-step", name);
    write_seed("interp_exec", twin, buf, 2, buf + 2, n - 2);
    buf[0] = cfg;
    buf[2 + 4] = gas;
}

/* ID_EDGE_PAIR records covering the 256 pairs of each two-source instruction,
 * as many per program as the generator's cap on instructions (256, of which a
 * pair record takes up to 3) allows. */
static void edge_pair_seeds(void)
{
    uint8_t sel = selector_of("idiom_edge_pair");
    static uint8_t buf[2 + 6 + 4 * 256];
    /* Latest32 gives these a 32-bit meaning of their own (the high half of a
     * 32 x 32 product), which Latest64's seeds never reach: one seed each. */
    static const enum op own32[] = {OP_mul_upper_signed_signed, OP_mul_upper_unsigned_unsigned,
                                    OP_mul_upper_signed_unsigned};
    for (unsigned row = 0; row < OP_COUNT + sizeof own32 / sizeof own32[0]; row++) {
        bool as32 = row >= OP_COUNT;
        unsigned op = as32 ? (unsigned)own32[row - OP_COUNT] : row;
        if (!gen_two_sources(op)) continue;
        cpvm_isa isa = isa_has(CPVM_ISA_LATEST64, (enum op)op) && !as32 ? CPVM_ISA_LATEST64 : CPVM_ISA_LATEST32;
        if (!isa_has(isa, (enum op)op)) continue;
        unsigned index = 0; /* its place among the ISA's two-source instructions */
        for (unsigned o = 0; o < op; o++) index += isa_has(isa, (enum op)o) && gen_two_sources(o);
        const unsigned per = 80;
        for (unsigned first = 0, k = 0; first < (as32 ? per : 256); first += per, k++) {
            size_t n = 0;
            buf[n++] = 0x00; /* run config: standard memory, metered */
            buf[n++] = 0x00; /* host seed */
            const uint8_t hdr[6] = {(uint8_t)isa, 0, 0, 0, 7 /* gas 100000 */, 0};
            memcpy(buf + n, hdr, 6);
            n += 6;
            for (unsigned p = first; p < first + per && p < 256; p++) {
                buf[n++] = sel;
                buf[n++] = (uint8_t)((p * 37) & 0x7f); /* registers; results never overwrite a source */
                buf[n++] = (uint8_t)index;
                buf[n++] = (uint8_t)p;
            }
            char name[96];
            snprintf(name, sizeof name, "edge-pairs%s-%s-%u", as32 ? "32" : "", isa_rows[op].name, k);
            write_seed("diff_interp_jit", name, buf, 2, buf + 2, n - 2);
            if (k == 0) step_twin(name, buf, n);
        }
    }
}

/* ID_ODD_ENC records: every variant byte over a few programs, with length
 * bytes walking every immediate extension and padding, on instructions of
 * every class (the selector byte walks isa.def). */
static void odd_encoding_seeds(void)
{
    uint8_t sel = selector_of("idiom_odd_enc");
    static uint8_t buf[2 + 6 + 12 * 64];
    unsigned rec = 0;
    for (unsigned k = 0; k < 16; k++) {
        size_t n = 0;
        buf[n++] = 0x00;
        buf[n++] = (uint8_t)k;
        const uint8_t hdr[6] = {(uint8_t)(k & 1 ? CPVM_ISA_JAM_V1 : CPVM_ISA_LATEST64), 0, 0, 0, 7, 0};
        memcpy(buf + n, hdr, 6);
        n += 6;
        for (unsigned i = 0; i < 64; i++, rec++) {
            buf[n++] = sel;
            buf[n++] = (uint8_t)(rec * 7);                   /* variant */
            buf[n++] = (uint8_t)(3 | (rec % 23) << 2 | (rec & 1) << 7); /* widest immediates, padding 0-22 */
            buf[n++] = (uint8_t)((rec * 13) % OP_COUNT);     /* instruction */
            for (unsigned j = 0; j < 8; j++) buf[n++] = (uint8_t)(0x11 * j + rec); /* its operands */
        }
        char name[64];
        snprintf(name, sizeof name, "edge-odd-%u", k);
        write_seed("diff_interp_jit", name, buf, 2, buf + 2, n - 2);
        step_twin(name, buf, n);
    }
}

/* ---- the interpreter's and the compiler's per-instruction paths ---------------
 * Generator records (gen.h) written to reach, instruction by instruction, what
 * the dispatch loops do around an instruction: memory accesses inside a page,
 * across a page, past their region (faulting); branches taken backwards until
 * the gas runs out; the interpreter's fused pairs. */

/* Positions (gen.c pos_addr) of an access in rw data: its start, a page's end,
 * across the page boundary, the region's end, past it and before it. */
static const uint8_t access_positions[] = {0x00, 0x05, 0x04, 0x07, 0x15, 0xf8, 0xf9, 0xfa, 0xfb, 0x05, 0x25};

/* One record of `op`, variant v: destination t0/t1/t2 (v % 3), which the next
 * record reads as a source (register 2 + v % 3); accesses through rw data's
 * base register or address at access_positions[v]; branches to the next
 * block, variant 7 to its own (a loop until the condition fails or the gas
 * runs out: its target resolved, and the gas checks of a backward jump).
 * Returns its length. */
static size_t op_record(uint8_t *out, enum op op, unsigned v)
{
    unsigned d = v % 3, src = 2 + d;
    uint8_t sel = selector(isa_rows[op].name), pos = access_positions[v % sizeof access_positions];
    uint8_t target = v == 7 ? 0x07 : 0x08; /* gen.c target(): block delta 0 or +1 */
    unsigned fl = isa_flags(op);
    size_t n = 0;
    out[n++] = sel;
    switch ((enum isa_class)isa_rows[op].cls) {
    case CLS_R_I: /* rw data region (nibble 3) for an absolute access */
        out[n++] = (uint8_t)((fl & (LOAD | STORE) ? 0x30 : 0) | d);
        out[n++] = fl & (LOAD | STORE) ? pos : (uint8_t)(v * 5 % 0x40);
        break;
    case CLS_RR_I: /* base register nibble 0: rw data */
        out[n++] = (uint8_t)(fl & (LOAD | STORE) ? d : (src << 4 | d));
        out[n++] = fl & (LOAD | STORE) ? pos : (uint8_t)(v * 7 % 0x40);
        break;
    case CLS_I_I:
        out[n++] = 0x30;
        out[n++] = pos;
        out[n++] = (uint8_t)v;
        break;
    case CLS_R_I_I:
        out[n++] = 0x00;
        out[n++] = pos;
        out[n++] = (uint8_t)v;
        break;
    case CLS_RRR:
        out[n++] = (uint8_t)(src << 4 | src);
        out[n++] = (uint8_t)d;
        break;
    case CLS_RR:
        out[n++] = (uint8_t)(src << 4 | d);
        break;
    case CLS_RR_O:
        out[n++] = (uint8_t)((2 + (v + 1) % 3) << 4 | src);
        out[n++] = target;
        break;
    case CLS_R_I_O:
        out[n++] = (uint8_t)src;
        out[n++] = (uint8_t)(v * 3 % 0x40);
        out[n++] = target;
        break;
    case CLS_O:
        out[n++] = target;
        break;
    default: /* N and the rest take no operand bytes here */
        break;
    }
    return n;
}

/* A diff_interp_jit (and interp_exec) input: run config, host seed, header
 * (Latest64; ro 0x100, rw 0x2000 bytes; gas class `gas`), then `body`. */
static size_t exec_input(uint8_t *out, uint8_t cfg, uint8_t gas, const uint8_t *body, size_t n)
{
    const uint8_t head[8] = {cfg, 0x00, CPVM_ISA_LATEST64, 0x30, 0x00, 0x00, gas, 0x00};
    memcpy(out, head, sizeof head);
    memcpy(out + sizeof head, body, n);
    return sizeof head + n;
}

/* Every load and store at every position of access_positions, with dynamic
 * memory (faults are answered and the access retried), in the fast loop and
 * compiled (diff_interp_jit) and stepped (interp_exec). */
static void access_seeds(void)
{
    uint8_t body[256], buf[300];
    for (unsigned op = 0; op < OP_COUNT; op++) {
        if (!(isa_flags((enum op)op) & (LOAD | STORE)) || !isa_has(CPVM_ISA_LATEST64, (enum op)op)) continue;
        size_t n = 0;
        for (unsigned v = 0; v < sizeof access_positions; v++) n += op_record(body + n, (enum op)op, v * 3);
        char name[96];
        snprintf(name, sizeof name, "edge-access-%s", isa_rows[op].name);
        write_seed("diff_interp_jit", name, buf, exec_input(buf, 0x01, 7, body, n), NULL, 0);
        snprintf(name, sizeof name, "edge-access-%s-step", isa_rows[op].name);
        write_seed("interp_exec", name, buf, exec_input(buf, 0x09, 0, body, n), NULL, 0);
    }
}

/* Every conditional branch taken backwards to its own block (t0 counting up
 * against t1 or an immediate) until the gas runs out, metered synchronously
 * and asynchronously. */
static void backedge_seeds(void)
{
    uint8_t body[16], buf[32];
    for (unsigned op = 0; op < OP_COUNT; op++) {
        if (!(isa_flags((enum op)op) & BRANCH) || !isa_has(CPVM_ISA_LATEST64, (enum op)op)) continue;
        bool imm = isa_rows[op].cls == CLS_R_I_O;
        for (unsigned k = 0; k < 4; k++) {
            size_t n = 0;
            body[n++] = selector("fallthrough");
            body[n++] = selector("add_imm_32"); /* t0 = t0 + 1 */
            body[n++] = 0x20;
            body[n++] = 0x01;
            body[n++] = selector(isa_rows[op].name);
            if (imm) {
                body[n++] = 2;                           /* t0 */
                body[n++] = (uint8_t)(k & 1 ? 0x3f : 0); /* an immediate from the table */
            } else {
                body[n++] = k & 1 ? 0x23 : 0x32; /* t0 and t1, either way round */
            }
            body[n++] = 0x07; /* its own block */
            char name[96];
            snprintf(name, sizeof name, "edge-backedge-%s-%s-%u", isa_rows[op].name, k & 2 ? "async" : "sync", k & 1);
            write_seed("diff_interp_jit", name, buf, exec_input(buf, k & 2 ? 0x08 : 0x00, 0, body, n), NULL, 0);
        }
    }
}

/* The interpreter's fused pairs (vm/interp/fuse.def, where the interpreter has
 * them): each eight times in a row, its instructions chained through t0-t2,
 * with dynamic memory, asynchronous gas, and standard memory. */
#if defined(__has_include)
#if __has_include("interp/fuse.def")
#define HAVE_FUSE_DEF 1
#endif
#endif
static void fused_seeds(void)
{
#ifdef HAVE_FUSE_DEF
    static const enum op fused[][3] = {
#define FUSE(first, second, fwd) {OP_##first, OP_##second, OP_COUNT},
#define FUSE3(first, second, third, fwd) {OP_##first, OP_##second, OP_##third},
#include "interp/fuse.def"
#undef FUSE
#undef FUSE3
    };
    static const struct { const char *name; uint8_t cfg; } runs[] = {{"dyn", 0x01}, {"async", 0x09}, {"std", 0x00}};
    uint8_t body[512], buf[560];
    for (size_t i = 0; i < sizeof fused / sizeof fused[0]; i++) {
        size_t n = 0;
        char name[160];
        int at = snprintf(name, sizeof name, "edge-fused");
        for (unsigned k = 0; k < 3 && fused[i][k] != OP_COUNT; k++)
            at += snprintf(name + at, sizeof name - (size_t)at, "-%s", isa_rows[fused[i][k]].name);
        for (unsigned v = 0; v < 8; v++)
            for (unsigned k = 0; k < 3 && fused[i][k] != OP_COUNT; k++) n += op_record(body + n, fused[i][k], v);
        for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
            snprintf(name + at, sizeof name - (size_t)at, "-%s", runs[r].name);
            write_seed("diff_interp_jit", name, buf, exec_input(buf, runs[r].cfg, 7, body, n), NULL, 0);
        }
    }
#endif
}

/* Text the assembler must take or refuse with a clear error: every directive,
 * alias and error message of vm/text/asm.c at least once. */
static void edge_asm_text(void)
{
    static const char *const texts[] = {
        ("%isa = jam_v1\n%ro_data_size = 4096\n%rw_data_size = 8192\n%stack_size = 4096\n%ro_data = 01 02 03\n"
         "%rw_data = aabb\n%ro_data += cc\n%rw_data += dd ee\npub @main:\na0 = 5\nret\n"),
        "%import \"gen_host\"\n%import \"log\\x41\"\n%export \"main\" = 0\ntrap\n",
        "@a:\njump @b\n@b: %no_fallthrough\na0 = @a\ntmp = a1, a0 = 4, jump [tmp + 8]\na0 = 4, jump [a1 + 8]\n",
        "a0 = 4, jump [a0 + 8]\n", /* the destination is also the base */
        "%raw 00 01 02\n%raw_cont 03 04\n%raw\n",
        "%jump_table = 0, 1\n%jump_table += 2\n%jump_table_entry_size = 4\n%jump_table_count = 3\ntrap\n",
        "%jump_table_entry_size = 9\n", "%jump_table_count = 5\n@x:\na0 = @x\n", "%jump_table = 0 1\n",
        "%isa = latest32\ni32 a0 = a1 + a2\na0 = a1 + a2\n", "trap\n%isa = jam_v1\n", "%isa = nonsense\n",
        "%bogus = 1\n", "%ro_data_size += 1\n", "%ro_data_size\n", "%ro_data_size = x\n", "%ro_data_size = 1 2\n",
        "%ro_data_size = 99999999999\n", "%ro_data = abc\n", "%ro_data = zz\n", "%ro_data_size = 1\n%ro_data = 0102\n",
        "%rw_data_size = 1\n%rw_data = 0102\n", "%import \"unterminated\n", "%import \"a\\xq\"\n",
        "%import \"a\" trailing\n", "%export \"m\" 5\n", "%export \"m\" = 5 6\n", "@:\n", "@lbl x\n", "@lbl: junk\n",
        "jump @nowhere\n", "a0 = 0x1ffffffff\n", "a0 = 99999999999999999999\n", "a0 = -0x80000001\n",
        "a0 = i64 0xffffffffffffffff\na1 = 0x100000000\n", "a0 = a1 - 5\na0 = -a1\na0 = 5 + a1\na0 = a1 >u a2\n",
        "jump 10 if a0 >=u 5\njump 10 if 5 <s a0\njump 10\na0 = 1, jump 10\n",
        "u32 [a0 + 4] = 5\nu8 [a0 - 4] = a1\na1 = u16 [a0]\n[a0..a0 + a2] = u8 a1\n",
        "a0 = a1 if a2 != 0\na0 = a1 if a2 == 0\nnop\nret\njump [a0]\n",
        "pre: gas = 10\npost: a0 = 1\nstep: 1\n// a comment\na0 = 1 // trailing\n", "r13 = 1\n", "a0 = = 1\n",
        "\t a0\t=\t0b101\n", "a0 = 0b2\n", "a0 = 0x\n", "a0 = -\n", "ecalli 4294967295\necalli 4294967296\n",
        "a0 = 5\n@x:\na1 = 6\n@y: %no_fallthrough\nret\n", "@x:\ntrap\n@x:\ntrap\n", "%import \"a\\q\"\n",
        "%jump_table_count = 2\ntrap\n", "%jump_table_entry_size = 0\n%jump_table = 0\ntrap\n",
        "%jump_table_entry_size = 1\n%jump_table = 300\ntrap\n", "%ro_data_size = 1\n%ro_data = 010203\ntrap\n",
        "pub @zeta:\ntrap\npub @alpha:\ntrap\npub @al:\ntrap\npub @beta:\nret\n",
        "u8 [a0 + 0x100000000] = 1\n", "jump 0x100000000\n", "a0 = u8 [a1 + 99999999999]\n",
        ("@l0:\n@l1:\n@l2:\n@l3:\n@l4:\n@l5:\n@l6:\n@l7:\n@l8:\n@l9:\n@la:\n@lb:\n@lc:\n@ld:\n@le:\n@lf:\n"
         "@lg:\n@lh:\n@li:\n@lj:\n@lk:\n@ll:\n@lm:\n@ln:\n@lo:\n@lp:\n@lq:\n@lr:\n@ls:\n@lt:\n@lu:\n@lv:\n"
         "@lw:\n@lx:\n@ly:\n@lz:\njump @l0\njump @lz\n"),
        /* The index picks the mode (below): these sit where each needs it. */
        "%jump_table_count = 4294967295\ntrap\n",                  /* 59 raw */
        "%isa = jam_v1\n%jump_table_count = 3\ntrap\n",            /* 60 container: count spliced in */
        "%ro_data_size = 1\n%ro_data = 0102\ntrap\n",              /* 61 container */
        "%import \"q\\\"b\\\\\"\ntrap\n",                        /* 62 */
        "%rw_data_size = 1\n%rw_data = 0102\ntrap\n",              /* 63 container */
        "a0 = i64 -0x8000000000000001\n",                          /* 64 */
        "a0 = a1 - 0x80000001\n",                                  /* 65 */
        "a0 = a1 + 0x80000000\n",                                  /* 66 */
        "%ro_data_size = 268435456\ntrap\n",                       /* 67 container: a 5-byte varint */
        "a0 = a1 - 0x80000001\n",                                  /* 68 64-bit: -n out of range */
        "%import \"q\\\"b\\\\\"\ntrap\n",                        /* 69 container: quoted back */
        "pub @b:\npub @a:\ntrap\n",                                /* 70 container: two exports at one pc */
        "a1 = u8 [a0 - 0x8000000000000000]\n",                     /* 71 */
        "%ro_data_size = 4096\n%jump_table_count = 3\ntrap\n",      /* 72 container: a section before the code */
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "edge-text-%02zu", i);
        uint8_t mode = (uint8_t)(i % 4 | (i % 3 == 2 ? 4 : 0)); /* ISA; some as raw programs */
        write_seed("asm_text", name, &mode, 1, (const uint8_t *)texts[i], strlen(texts[i]));
    }
    /* a line past LIMIT_ASM_LINE characters (the spaces inside it: trailing
     * ones are trimmed before the length is checked) */
    static char long_line[LIMIT_ASM_LINE + 16];
    memset(long_line, ' ', sizeof long_line - 2);
    memcpy(long_line, "a0 = ", 5);
    long_line[sizeof long_line - 3] = '1';
    long_line[sizeof long_line - 2] = '\n';
    uint8_t mode = 0;
    write_seed("asm_text", "edge-text-long-line", &mode, 1, (const uint8_t *)long_line, sizeof long_line - 1);
    /* one import more than a program may have: the writer refuses it */
    static const char import_line[] = "%import \"\"\n";
    static char imports[(LIMIT_IMPORTS + 1) * (sizeof import_line - 1) + 8];
    size_t k = 0;
    for (unsigned i = 0; i <= LIMIT_IMPORTS; i++, k += sizeof import_line - 1)
        memcpy(imports + k, import_line, sizeof import_line - 1);
    memcpy(imports + k, "trap\n", 5);
    write_seed("asm_text", "edge-text-imports-over-limit", &mode, 1, (const uint8_t *)imports, k + 5);
}

static void edge_generator(void)
{
    uint8_t b[64];
    size_t n;
    /* header: ISA latest64, sizes from class 0 */
    const uint8_t hdr[6] = {2, 0, 0, 2, 0, 0};
#define SEED(name, cfg, ...)                                                  \
    do {                                                                      \
        const uint8_t body_[] = {__VA_ARGS__};                                \
        n = 0;                                                                \
        b[n++] = (cfg);                                                       \
        b[n++] = 0x5a;                                                        \
        memcpy(b + n, hdr, sizeof hdr);                                       \
        n += sizeof hdr;                                                      \
        memcpy(b + n, body_, sizeof body_);                                   \
        n += sizeof body_;                                                    \
        write_seed("interp_exec", name, NULL, 0, b, n);                       \
    } while (0)
    uint8_t ms = selector("idiom_memset"), sb = selector("idiom_sbrk"), ec = selector("idiom_ecalli");
    uint8_t lp = selector("idiom_loop"), sl = selector("idiom_store_load"), call = selector("idiom_call");
    uint8_t ret = selector("idiom_ret"), dj = selector("idiom_dyn_jump");
    SEED("edge-memset-2gib", 0x00, ms, 0x3f, 0x00, 0x01);
    SEED("edge-memset-dynamic-faults", 0x01, ms, 0x3c, 0x00, 0x01);
    SEED("edge-sbrk-huge-then-store", 0x00, sb, 0x1b, sl, 0x03, 0x07);
    SEED("edge-ecalli-reenter", 0x80, ec, 0x00, ec, 0x0f, ec, 0x0e);
    SEED("edge-loop-step-diff-1", 0x08, lp, 0x07, lp, 0x87);
    SEED("edge-loop-step-diff-17", 0x38, lp, 0x05, sl, 0x40, 0x10);
    SEED("edge-call-ret", 0x00, call, 0x09, ret, 0x00, dj, 0x00, 0x00);
    SEED("edge-unmetered", 0x04, lp, 0x07, ec, 0x01);
    SEED("edge-out-of-gas-refill", 0x40, lp, 0xff, lp, 0xff);
#undef SEED
    /* Dynamic memory, 12 pages 1 MiB apart touched (stored, loaded) through a
     * register (load_imm with a raw 4-byte immediate; the indirect access's
     * nibble 15 with position byte 0x81 takes that register + 2): more
     * disjoint page runs than the VM tracks one by one, so it merges them.
     * Then a u32 load at 0xfffffffe, which would touch the address space's
     * last byte. */
    uint8_t li = selector("load_imm"), st8 = selector("store_indirect_u8"), ld8 = selector("load_indirect_u8");
    uint8_t ld32 = selector("load_u32");
    n = 0;
    b[n++] = 0x01; /* dynamic memory */
    b[n++] = 0x00;
    memcpy(b + n, hdr, sizeof hdr);
    n += sizeof hdr;
    static uint8_t scattered[2 + 6 + 12 * 10 + 3];
    memcpy(scattered, b, n);
    for (unsigned i = 0; i < 12; i++) {
        uint32_t a = 0x40000000u + i * 0x100000u;
        const uint8_t rec[10] = {li, 0x00, 0xc3, (uint8_t)a, (uint8_t)(a >> 8), (uint8_t)(a >> 16), (uint8_t)(a >> 24),
                                 i % 2 ? ld8 : st8, 0xf1, 0x81};
        memcpy(scattered + n, rec, sizeof rec);
        n += sizeof rec;
    }
    const uint8_t last[3] = {ld32, 0xe7, 14 /* weird address 14: 0xfffffffe */};
    memcpy(scattered + n, last, sizeof last);
    n += sizeof last;
    write_seed("interp_exec", "edge-dynamic-scattered-pages", scattered, n, NULL, 0);
    write_seed("diff_interp_jit", "edge-dynamic-scattered-pages", scattered, n, NULL, 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_seeds CONFORMANCE_DIR CORPUS_DIR\n");
        return 2;
    }
    corpus = argv[2];
    char dir[4096];
    static const char *const targets[] = {"blob_parse", "asm_roundtrip", "interp_exec", "asm_text", "diff_interp_jit", "compile"};
    for (unsigned i = 0; i < sizeof targets / sizeof targets[0]; i++) {
        snprintf(dir, sizeof dir, "%s/%s", corpus, targets[i]);
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            perror(dir);
            return 1;
        }
    }
    snprintf(dir, sizeof dir, "%s/jam-pvm-v0.4/programs", argv[1]);
    conformance_set(dir, "v04", CPVM_ISA_LATEST64);
    snprintf(dir, sizeof dir, "%s/polkavm-0.35", argv[1]);
    conformance_set(dir, "pvm035", CPVM_ISA_JAM_V1);
    generated();
    edge_blob_parse();
    edge_containers();
    edge_generator();
    edge_pair_seeds();
    edge_asm_text();
    odd_encoding_seeds();
    access_seeds();
    backedge_seeds();
    fused_seeds();
    printf("make_seeds: %u files written under %s\n", written, corpus);
    return 0;
}
