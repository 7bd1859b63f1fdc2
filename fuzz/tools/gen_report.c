/* gen_report: what the generator made over a corpus of inputs in the
 * execution harness's framing (interp_exec, diff_interp_jit,
 * diff_interp_jit_zygote; fuzz/harness/exec.h decodes it), so its blind
 * spots are visible:
 *   - instructions: how many programs' worth of each isa.def instruction
 *     (never generated ones are listed);
 *   - edge-value pairs: per two-source instruction, how many of the 16 x 16
 *     pairs of edge values (gen.h) met in its two source operands;
 *   - unusual encodings: each class of gen_enc_class, and the skip lengths
 *     0-24 of non-canonical instructions;
 *   - exit kinds: how the programs' runs stopped on the interpreter (every
 *     stop of every run(), host calls and page faults answered as the targets
 *     answer them).
 *
 *   gen_report [--json] FILE_OR_DIR...        exit 0; 2 on usage errors
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cpvm.h"
#include "exec.h"
#include "gen.h"
#include "isa/isa.h"

static struct gen_stats stats;
static uint64_t exits[CPVM_EXIT_STEP + 2], files, skipped;

static void on_stop(struct exec_run *r, void *arg)
{
    (void)arg;
    unsigned e = (unsigned)r->last.intr.exit;
    exits[e <= CPVM_EXIT_STEP ? e : CPVM_EXIT_STEP + 1]++;
}

static void run_input(const uint8_t *data, size_t size)
{
    struct exec_setup su;
    if (!exec_setup_init(&su, "gen_report", data, size)) {
        skipped++;
        return;
    }
    struct cpvm_module_config mc;
    exec_module_config(&su, CPVM_BACKEND_INTERPRETER, &mc);
    cpvm_module *mod = NULL;
    if (cpvm_module_new(su.prog, &mc, &mod, NULL) == CPVM_OK) {
        struct exec_run r = {.hook = on_stop}; /* exec_begin keeps hook, reuse and keep */
        struct exec_outcome o;
        /* Statistics only while generating: the harness generates nothing else. */
        if (exec_begin(&r, &su, mod, su.step_limit, false, &o)) {
            while (exec_step(&r) == EXEC_CONTINUE) {
            }
            exec_end(&r);
            exec_outcome_free(&o);
        }
        cpvm_module_free(mod);
    }
    exec_setup_free(&su);
    files++;
}

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return;
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0) continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            run_path(sub);
        }
        closedir(d);
        return;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return;
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (buf) run_input(buf, n);
    free(buf);
}

static const char *const enc_names[GEN_ENC_COUNT] = {
    "reg field a = 13", "reg field a = 14", "reg field a = 15", "reg field b = 13", "reg field b = 14",
    "reg field b = 15", "reg field d = 13", "reg field d = 14", "reg field d = 15", "ignored bits set",
    "length field 5-7", "longer than canonical"};

int main(int argc, char **argv)
{
    bool json = false, require_all = false;
    int paths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = true;
        else if (strcmp(argv[i], "--require-all") == 0) require_all = true;
        else paths++;
    }
    if (!paths) {
        fprintf(stderr, "usage: gen_report [--json] [--require-all] FILE_OR_DIR...\n");
        return 2;
    }
    gen_stats_attach(&stats);
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-') run_path(argv[i]);
    gen_stats_attach(NULL);

    /* Per instruction: how many edge pairs met. */
    unsigned two_src = 0, full = 0, never = 0, pairs_total = 0, pairs_met = 0;
    unsigned char met[OP_COUNT];
    for (unsigned op = 0; op < OP_COUNT; op++) {
        met[op] = 0;
        if (!stats.insns[op]) never++;
        if (!gen_two_sources(op)) continue;
        two_src++;
        unsigned m = 0;
        for (unsigned a = 0; a < GEN_EDGE_COUNT; a++)
            for (unsigned b = 0; b < GEN_EDGE_COUNT; b++) m += stats.pairs[op][a][b] != 0;
        pairs_total += GEN_EDGE_COUNT * GEN_EDGE_COUNT;
        pairs_met += m;
        full += m == GEN_EDGE_COUNT * GEN_EDGE_COUNT;
        met[op] = m == 256 ? 255 : (unsigned char)m;
    }
    unsigned enc_reached = 0, skips_reached = 0;
    for (unsigned c = 0; c < GEN_ENC_COUNT; c++) enc_reached += stats.enc[c] != 0;
    for (unsigned k = 1; k < 25; k++) skips_reached += stats.odd_skips[k] != 0 || stats.skips[k] != 0;
    /* --require-all: the corpus must reach every instruction, edge pair, odd encoding and skip length. */
    int rc = require_all && (never || full < two_src || enc_reached < GEN_ENC_COUNT || skips_reached < 24);

    if (json) {
        printf("{\"files\": %llu, \"skipped\": %llu, \"programs\": %llu,\n \"instructions\": {", (unsigned long long)files,
               (unsigned long long)skipped, (unsigned long long)stats.programs);
        for (unsigned op = 0; op < OP_COUNT; op++)
            printf("%s\"%s\": %llu", op ? ", " : "", isa_rows[op].name, (unsigned long long)stats.insns[op]);
        printf("},\n \"edge_pairs_met\": {");
        bool first = true;
        for (unsigned op = 0; op < OP_COUNT; op++) {
            if (!gen_two_sources(op)) continue;
            unsigned m = 0;
            for (unsigned a = 0; a < GEN_EDGE_COUNT; a++)
                for (unsigned b = 0; b < GEN_EDGE_COUNT; b++) m += stats.pairs[op][a][b] != 0;
            printf("%s\"%s\": %u", first ? "" : ", ", isa_rows[op].name, m);
            first = false;
        }
        printf("},\n \"encodings\": {");
        for (unsigned c = 0; c < GEN_ENC_COUNT; c++)
            printf("%s\"%s\": %llu", c ? ", " : "", enc_names[c], (unsigned long long)stats.enc[c]);
        printf("},\n \"skip_lengths\": [");
        for (unsigned k = 0; k < 25; k++) printf("%s%llu", k ? ", " : "", (unsigned long long)stats.skips[k]);
        printf("],\n \"exits\": {");
        for (unsigned e = 0; e <= CPVM_EXIT_STEP; e++)
            printf("%s\"%s\": %llu", e ? ", " : "", cpvm_exit_name((cpvm_exit)e), (unsigned long long)exits[e]);
        printf("}}\n");
        return rc;
    }
    printf("gen_report: %llu inputs (%llu skipped), %llu programs\n", (unsigned long long)files,
           (unsigned long long)skipped, (unsigned long long)stats.programs);
    printf("instructions: %u of %u isa.def instructions generated", OP_COUNT - never, OP_COUNT);
    if (never) {
        printf("; never:");
        for (unsigned op = 0; op < OP_COUNT; op++)
            if (!stats.insns[op]) printf(" %s", isa_rows[op].name);
    }
    printf("\nedge pairs: %u of %u two-source instructions met all %u pairs; %u of %u (instruction, pair) "
           "combinations (%.1f%%)\n",
           full, two_src, GEN_EDGE_COUNT * GEN_EDGE_COUNT, pairs_met, pairs_total,
           pairs_total ? 100.0 * pairs_met / pairs_total : 0.0);
    if (full < two_src) {
        printf("  fewest pairs:");
        unsigned shown = 0;
        for (unsigned want = 0; want < 256 && shown < 12; want++)
            for (unsigned op = 0; op < OP_COUNT && shown < 12; op++)
                if (gen_two_sources(op) && met[op] == want) {
                    printf(" %s(%u)", isa_rows[op].name, want);
                    shown++;
                }
        putchar('\n');
    }
    printf("unusual encodings: %u of %u classes reached\n", enc_reached, GEN_ENC_COUNT);
    for (unsigned c = 0; c < GEN_ENC_COUNT; c++)
        printf("  %-24s %llu\n", enc_names[c], (unsigned long long)stats.enc[c]);
    printf("skip lengths 1-24 reached: %u of 24 (non-canonical instructions by skip:", skips_reached);
    for (unsigned k = 1; k < 25; k++) printf(" %llu", (unsigned long long)stats.odd_skips[k]);
    printf(")\nexit kinds (every stop):");
    for (unsigned e = 0; e <= CPVM_EXIT_STEP; e++)
        printf(" %s %llu", cpvm_exit_name((cpvm_exit)e), (unsigned long long)exits[e]);
    putchar('\n');
    if (rc) fprintf(stderr, "gen_report: --require-all: the corpus misses part of the generator's space\n");
    return rc;
}
