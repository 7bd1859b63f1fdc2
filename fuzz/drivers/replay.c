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
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/* Reads a whole file with as few system calls as possible (open, one read
 * into a buffer kept across files, close): the replay rate of a fast target
 * is otherwise the driver's. A read shorter than asked for is the end of a
 * regular file. */
static uint8_t *read_all(const char *path, size_t *len_out)
{
    static uint8_t *buf;
    static size_t cap;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    size_t len = 0;
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1u << 20;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) break;
            buf = nb;
            cap = ncap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            len = SIZE_MAX;
            break;
        }
        len += (size_t)n;
        if (len < cap) break;
    }
    close(fd);
    if (len == SIZE_MAX || len == cap) return NULL;
    *len_out = len;
    return buf;
}

static void run_file(const char *path)
{
    size_t len = 0;
    uint8_t *buf = read_all(path, &len);
    if (!buf) {
        fprintf(stderr, "replay: %s: %s\n", path, errno ? strerror(errno) : "read error");
        n_errors++;
        return;
    }
    /* An exact-size copy, so ASan sees reads one past the end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        n_errors++;
        return;
    }
    memcpy(exact, buf, len);
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

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); } /* name first */

static void run_path(const char *path, unsigned char type)
{
    if (type == DT_REG) { /* known from the directory entry: no stat */
        run_file(path);
        return;
    }
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
    struct entry {
        char *name;
        unsigned char type;
    } *names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (skipped_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct entry *nn = realloc(names, cap * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        names[n].name = strdup(e->d_name);
        names[n].type = e->d_type;
        if (names[n].name) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n; i++) {
        size_t plen = strlen(path) + strlen(names[i].name) + 2;
        char *full = malloc(plen);
        if (full) {
            snprintf(full, plen, "%s/%s", path, names[i].name);
            run_path(full, names[i].type);
            free(full);
        }
        free(names[i].name);
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
    uint8_t *data = read_all(file, &len);
    if (!data) {
        fprintf(stderr, "replay: %s: %s\n", file, errno ? strerror(errno) : "read error");
        return 1;
    }
    fuzz_describe(data, len, &o);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--describe") == 0) return describe_main(argc, argv);
#ifdef __GLIBC__
    /* Keep freed memory, as the fuzzing engines' allocators do: glibc would
     * otherwise give a target's per-input buffers back and fault them in again. */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
#endif
    /* every check on every input, also those the engines sample (exec.h) */
    setenv("CPVM_FUZZ_CHECKS", "all", 0);
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
        if (argv[i][0] != '-') run_path(argv[i], DT_UNKNOWN);
    printf("replay: %lu input(s) passed, %lu unreadable path(s)\n", n_inputs, n_errors);
    return n_errors ? 1 : 0;
}
