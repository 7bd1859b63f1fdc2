/* Replay driver: runs a fuzz target's LLVMFuzzerTestOneInput over files and
 * directories (recursively, in name order) and prints one line per input and
 * a summary. A crashing input aborts the process, so "exit 0" means every
 * input passed. Arguments starting with '-' are ignored (libFuzzer flags), so
 * a replay binary accepts a fuzzer's command line. Files named README* and
 * dotfiles are skipped: corpus directories carry their notes there.
 *
 *   replay_<target> [-q] PATH...      exit 0: all ran; 1: a path is unreadable
 *   replay_<target> --describe [--full] [--program-out OUT] FILE
 *       prints the input in words (the target's fuzz_describe(): framing
 *       fields, the program disassembled) without running it; OUT gets the
 *       program it frames, for `cpvm run` / `cpvm disasm`.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "describe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

static unsigned long n_inputs, n_errors;
static int quiet;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int skipped_name(const char *name)
{
    return name[0] == '.' || strncmp(name, "README", 6) == 0;
}

/* The whole file in an exact-size buffer (so ASan sees reads one past the
 * end), or NULL after a message. */
static uint8_t *read_whole(const char *path, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "replay: %s: out of memory\n", path);
            fclose(f);
            return NULL;
        }
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) break;
        cap *= 2;
        uint8_t *nb = realloc(buf, cap);
        if (!nb) free(buf);
        buf = nb;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(buf);
        return NULL;
    }
    uint8_t *exact = malloc(len ? len : 1);
    if (exact) memcpy(exact, buf, len);
    free(buf);
    *out_len = len;
    return exact;
}

static void run_file(const char *path)
{
    size_t len = 0;
    uint8_t *exact = read_whole(path, &len);
    if (!exact) {
        n_errors++;
        return;
    }
    if (!quiet) {
        fprintf(stderr, "replay: %s (%zu bytes) ...", path, len);
        fflush(stderr);
    }
    double t0 = now_ms();
    LLVMFuzzerTestOneInput(exact, len);
    double dt = now_ms() - t0;
    if (!quiet) fprintf(stderr, " ok %.1f ms\n", dt);
    free(exact);
    n_inputs++;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void run_path(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        n_errors++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(path);
        return;
    }
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        n_errors++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (skipped_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(path) + strlen(names[i]) + 2;
        char *full = malloc(plen);
        if (full) {
            snprintf(full, plen, "%s/%s", path, names[i]);
            run_path(full);
            free(full);
        }
        free(names[i]);
    }
    free(names);
}

static int describe_main(int argc, char **argv)
{
    struct describe_opts o = {.out = stdout, .full = false, .program_out = NULL};
    const char *file = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0) o.full = true;
        else if (strcmp(argv[i], "--program-out") == 0 && i + 1 < argc) o.program_out = argv[++i];
        else if (argv[i][0] != '-' && !file) file = argv[i];
        else {
            file = NULL; /* an unknown flag or a second file */
            break;
        }
    }
    if (!file) {
        fprintf(stderr, "usage: %s --describe [--full] [--program-out OUT] FILE\n", argv[0]);
        return 2;
    }
    size_t len = 0;
    uint8_t *data = read_whole(file, &len);
    if (!data) return 1;
    fuzz_describe(data, len, &o);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--describe") == 0) return describe_main(argc, argv);
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int paths = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-q") == 0) quiet = 1;
        else if (argv[i][0] != '-') paths++;
    }
    if (paths == 0) {
        fprintf(stderr, "usage: %s [-q] FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (argv[i][0] != '-') run_path(argv[i]);
    printf("replay: %lu input(s) passed, %lu unreadable path(s)\n", n_inputs, n_errors);
    return n_errors ? 1 : 0;
}
