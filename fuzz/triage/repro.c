/* `cpvm repro`: reruns a fuzz input in a child process with its target's
 * replay binary and prints the target, the verdict (report.c), the input in
 * words (`replay_<target> --describe`, the target's own fuzz_describe()) and
 * the commands that rerun it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "triage.h"

#define copy_str triage_copy
#define MAX_TARGETS 32

#define FUZZ_TARGET(name, needs, engines) #name,
const char *const triage_targets[] = {
#include "targets.def"
};
#undef FUZZ_TARGET
const unsigned triage_ntargets = sizeof triage_targets / sizeof triage_targets[0];

/* Prints `s` so a POSIX shell reads it back as one word. */
static void print_shell_word(FILE *out, const char *s)
{
    bool plain = *s != 0;
    for (const char *p = s; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:,=+@%-", *p)) plain = false;
    if (plain) {
        fputs(s, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = s; *p; p++) {
        if (*p == '\'') fputs("'\\''", out);
        else fputc(*p, out);
    }
    fputc('\'', out);
}

static bool is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* ---- binaries and targets ------------------------------------------------- */

struct setup {
    char build[PATH_MAX];
    char targets[MAX_TARGETS][64];
    unsigned ntargets;
    bool sanitized_replay; /* the build's CMakeCache says CPVM_SANITIZE=ON */
};

/* The registered targets whose replay binary the build has. */
static void find_targets(struct setup *s)
{
    for (unsigned i = 0; i < triage_ntargets && s->ntargets < MAX_TARGETS; i++) {
        char path[PATH_MAX + 96];
        snprintf(path, sizeof path, "%s/fuzz/replay_%s", s->build, triage_targets[i]);
        if (is_executable(path)) copy_str(s->targets[s->ntargets++], sizeof s->targets[0], triage_targets[i],
                                          strlen(triage_targets[i]));
    }
}

static bool cache_says_sanitized(const char *build)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/CMakeCache.txt", build);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[1024];
    bool yes = false;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "CPVM_SANITIZE:", 14) == 0) {
            const char *v = strchr(line, '=');
            yes = v && (strncmp(v + 1, "ON", 2) == 0 || strncmp(v + 1, "1", 1) == 0 || strncmp(v + 1, "TRUE", 4) == 0);
        }
    fclose(f);
    return yes;
}

/* A path component that names a target: corpus/regressions/<t>/x, out/<t>/crashes/x. */
static const char *target_from_path(const struct setup *s, const char *path)
{
    char buf[PATH_MAX];
    copy_str(buf, sizeof buf, path, strlen(path));
    const char *found = NULL;
    for (char *tok = strtok(buf, "/"); tok; tok = strtok(NULL, "/"))
        for (unsigned i = 0; i < s->ntargets; i++)
            if (strcmp(tok, s->targets[i]) == 0) found = s->targets[i]; /* the innermost wins */
    return found;
}

struct attempt {
    char binary[PATH_MAX + 96];
    struct triage_child r;
    struct triage_verdict v;
    bool ran;
    bool libfuzzer; /* fuzz_<t>, not replay_<t> */
};

/* How a binary takes its arguments: replay_<t> (skips '-' flags, -q quiets
 * it), fuzz_<t> (libFuzzer flags), or anything given with --binary (only the
 * file: the AFL++ driver would read a flag as a file name). */
enum binary_kind { BIN_REPLAY, BIN_LIBFUZZER, BIN_OTHER };

static void attempt_run(const char *binary, const char *file, enum binary_kind kind, unsigned timeout_s,
                        struct attempt *a)
{
    memset(a, 0, sizeof *a);
    copy_str(a->binary, sizeof a->binary, binary, strlen(binary));
    bool libfuzzer = kind == BIN_LIBFUZZER;
    a->libfuzzer = libfuzzer;
    char tflag[32];
    snprintf(tflag, sizeof tflag, "-timeout=%u", timeout_s);
    char *argv[5];
    int k = 0;
    argv[k++] = a->binary;
    /* replay ignores '-' arguments; libFuzzer takes its own -timeout (and
     * reports it) a little before our kill. */
    if (kind == BIN_LIBFUZZER) argv[k++] = tflag;
    else if (kind == BIN_REPLAY) argv[k++] = (char *)"-q";
    argv[k++] = (char *)file;
    argv[k] = NULL;
    if (!triage_run_child(argv, timeout_s + (libfuzzer ? 10 : 0), &a->r)) {
        a->v.error = true;
        snprintf(a->v.text, sizeof a->v.text, "could not start %s: %s", binary, strerror(errno));
        return;
    }
    a->ran = true;
    triage_classify(&a->r, timeout_s, &a->v);
}

static void attempt_free(struct attempt *a)
{
    free(a->r.out);
    a->r.out = NULL;
}

/* Child processes inherit these: symbolized stacks for UBSan and ASan. */
static void sanitizer_env(void)
{
    if (!getenv("UBSAN_OPTIONS")) setenv("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1", 1);
    if (!getenv("ASAN_OPTIONS")) setenv("ASAN_OPTIONS", "symbolize=1:detect_leaks=1", 1);
    if (!getenv("ASAN_SYMBOLIZER_PATH")) {
        static const char *const candidates[] = {"/usr/lib/llvm-19/bin/llvm-symbolizer", "/usr/bin/llvm-symbolizer-19"};
        bool on_path = false;
        const char *path = getenv("PATH");
        if (path) {
            char buf[4096];
            copy_str(buf, sizeof buf, path, strlen(path));
            for (char *dir = strtok(buf, ":"); dir && !on_path; dir = strtok(NULL, ":")) {
                char full[4200];
                snprintf(full, sizeof full, "%s/llvm-symbolizer", dir);
                on_path = is_executable(full);
            }
        }
        for (size_t i = 0; !on_path && i < sizeof candidates / sizeof candidates[0]; i++)
            if (is_executable(candidates[i])) {
                setenv("ASAN_SYMBOLIZER_PATH", candidates[i], 1);
                break;
            }
    }
}

static void print_frames(const struct triage_verdict *v, unsigned max)
{
    for (unsigned i = 0; i < v->nframes && i < max; i++)
        printf("%s  #%u %s %s\n", i == 0 ? "stack:  " : "        ", i, v->frames[i].func, v->frames[i].where);
}

/* The target's description of the input, from its replay binary (in a child:
 * the generator or the disassembler may be what crashed). */
static void show_description(const struct setup *s, const char *target, const char *file,
                             const struct triage_repro_opts *o)
{
    char path[PATH_MAX + 96];
    snprintf(path, sizeof path, "%s/fuzz/replay_%s", s->build, target);
    if (!is_executable(path)) {
        printf("input in words: no %s to describe it\n", path);
        return;
    }
    char *argv[8];
    int k = 0;
    argv[k++] = path;
    argv[k++] = (char *)"--describe";
    if (o->full) argv[k++] = (char *)"--full";
    if (o->program_out) {
        argv[k++] = (char *)"--program-out";
        argv[k++] = (char *)o->program_out;
    }
    argv[k++] = (char *)file;
    argv[k] = NULL;
    struct triage_child r;
    if (!triage_run_child(argv, o->timeout_s, &r)) {
        printf("input in words: could not run %s\n", path);
        return;
    }
    fputs(r.out, stdout);
    if (r.len && r.out[r.len - 1] != '\n') putchar('\n');
    if (r.timed_out || WIFSIGNALED(r.status) || !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0)
        printf("  (describing the input failed: the generator or disassembler is what fails)\n");
    free(r.out);
}

int triage_repro(const struct triage_repro_opts *o)
{
    const char *file = o->file, *target = o->target, *build = o->build, *binary = o->binary;
    unsigned timeout_s = o->timeout_s;
    char file_abs[PATH_MAX];
    if (!realpath(file, file_abs)) {
        fprintf(stderr, "cpvm repro: %s: %s\n", file, strerror(errno));
        return 2;
    }
    struct stat st;
    if (stat(file_abs, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "cpvm repro: %s: not a regular file\n", file);
        return 2;
    }
    size_t len = (size_t)st.st_size;

    struct setup *s = calloc(1, sizeof *s);
    struct attempt *runs = calloc(MAX_TARGETS * 2 + 1, sizeof *runs);
    int rc = 2;
    if (!s || !runs) {
        fprintf(stderr, "cpvm repro: out of memory\n");
        goto out;
    }
    if (build) {
        if (!realpath(build, s->build)) {
            fprintf(stderr, "cpvm repro: --build %s: %s\n", build, strerror(errno));
            goto out;
        }
    } else {
        /* The build directory is where this cpvm lives (<build>/cpvm). */
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            fprintf(stderr, "cpvm repro: cannot find this program's directory; pass --build DIR\n");
            goto out;
        }
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) *slash = 0;
        copy_str(s->build, sizeof s->build, self, strlen(self));
    }
    find_targets(s);
    s->sanitized_replay = cache_says_sanitized(s->build);
    sanitizer_env();

    const char *how = "--target";
    if (!target) {
        target = target_from_path(s, file_abs);
        if (!target) target = target_from_path(s, file);
        how = "from the path";
    } else if (!binary) {
        bool known = false;
        for (unsigned i = 0; i < s->ntargets; i++) known |= strcmp(s->targets[i], target) == 0;
        if (!known) {
            fprintf(stderr, "cpvm repro: no replay binary for target '%s' in %s/fuzz", target, s->build);
            if (s->ntargets) {
                fputs(" (targets:", stderr);
                for (unsigned i = 0; i < s->ntargets; i++) fprintf(stderr, " %s", s->targets[i]);
                fputc(')', stderr);
            }
            fputc('\n', stderr);
            goto out;
        }
    }
    if (!binary && s->ntargets == 0) {
        fprintf(stderr, "cpvm repro: no replay_<target> binaries in %s/fuzz (build the project, or pass --build DIR)\n",
                s->build);
        goto out;
    }

    /* Which binary crashes on it: the named or path target's, else each in turn. */
    struct attempt *chosen = NULL;
    unsigned nruns = 0;
    char crashing[512] = "";
    if (target) {
        char path[PATH_MAX + 96];
        if (binary) copy_str(path, sizeof path, binary, strlen(binary));
        else snprintf(path, sizeof path, "%s/fuzz/replay_%s", s->build, target);
        attempt_run(path, file_abs, binary ? BIN_OTHER : BIN_REPLAY, timeout_s, &runs[nruns]);
        chosen = &runs[nruns++];
    } else {
        how = "detected: its replay binary crashes";
        for (unsigned i = 0; i < s->ntargets; i++) {
            char path[PATH_MAX + 96];
            snprintf(path, sizeof path, "%s/fuzz/replay_%s", s->build, s->targets[i]);
            struct attempt *a = &runs[nruns++];
            attempt_run(path, file_abs, BIN_REPLAY, timeout_s, a);
            if (!a->v.crashed && !s->sanitized_replay) {
                /* What only ASan sees (an overread by a byte) needs the libFuzzer build. */
                snprintf(path, sizeof path, "%s/fuzz/fuzz_%s", s->build, s->targets[i]);
                if (is_executable(path) && nruns < MAX_TARGETS * 2) {
                    a = &runs[nruns++];
                    attempt_run(path, file_abs, BIN_LIBFUZZER, timeout_s, a);
                }
            }
            if (a->v.crashed) {
                size_t cl = strlen(crashing);
                snprintf(crashing + cl, sizeof crashing - cl, "%s%s", cl ? ", " : "", s->targets[i]);
                if (!chosen) {
                    chosen = a;
                    target = s->targets[i];
                }
            }
        }
        if (!chosen) how = "unknown: no replay binary crashes on it";
    }

    /* An unsanitized replay gives no stack: the libFuzzer build of the same
     * target (same build dir, ASan + UBSan) usually does. */
    struct attempt *lf = NULL;
    if (chosen && chosen->libfuzzer) {
        lf = chosen; /* detection already ran the libFuzzer build */
    } else if (target && !binary && !s->sanitized_replay && (!chosen || !chosen->v.crashed || chosen->v.nframes == 0)) {
        char path[PATH_MAX + 96];
        snprintf(path, sizeof path, "%s/fuzz/fuzz_%s", s->build, target);
        if (is_executable(path)) {
            lf = &runs[nruns++];
            attempt_run(path, file_abs, BIN_LIBFUZZER, timeout_s, lf);
        }
    }
    /* The verdict: the replay binary's, unless only the libFuzzer build crashed
     * or it adds the stack the replay could not give. */
    struct attempt *best = chosen;
    if (lf && lf->ran && lf->v.crashed && (!best || !best->v.crashed || best->v.nframes == 0)) best = lf;
    struct attempt *debug_with = (chosen && chosen->v.crashed) ? chosen : best;

    if (best && best->v.error) {
        fprintf(stderr, "cpvm repro: %s: %s\n", best->binary, best->v.text);
        if (best->r.out && best->r.len) fprintf(stderr, "%s", best->r.out);
        goto out;
    }
    bool crashed = best && best->v.crashed;
    rc = crashed ? 0 : 1;

    if (o->brief) {
        if (crashed) printf("%s %s %s\n", target, best->v.name, best->v.text);
        else printf("%s - no crash\n", target ? target : "-");
        goto out;
    }

    printf("input:   %s (%zu bytes)\n", file_abs, len);
    printf("target:  %s (%s)\n", target ? target : "-", how);
    if (crashing[0] && strchr(crashing, ',')) printf("         crashes the replay binaries of: %s\n", crashing);
    for (unsigned i = 0; i < nruns; i++) {
        const struct attempt *a = &runs[i];
        if (!a->ran) continue;
        printf("ran:     %s -> %s (%.0f ms)\n", a->binary, a->v.text, a->r.ms);
    }
    if (!crashed) {
        printf("verdict: no crash\n");
        if (chosen && !s->sanitized_replay && !lf)
            printf("         (the replay binary is not sanitized: try --build with an asan or fuzz build)\n");
    } else {
        printf("verdict: %s\n", best->v.text);
        if (best->v.detail[0]) printf("         %s\n", best->v.detail);
        print_frames(&best->v, 8);
        if (best->v.nframes == 0 && best->v.all_frames == 0 && !s->sanitized_replay)
            printf("stack:   none (unsanitized replay binary; the debugger command below gives one)\n");
        printf("name:    %s (as corpus/regressions/%s/%s)\n", best->v.name, target, best->v.name);
    }
    if (o->verbose)
        for (unsigned i = 0; i < nruns; i++) {
            if (!runs[i].ran) continue;
            printf("---- output of %s ----\n%s", runs[i].binary, runs[i].r.out);
            if (runs[i].r.len && runs[i].r.out[runs[i].r.len - 1] != '\n') putchar('\n');
            printf("---- end ----\n");
        }
    if (target) show_description(s, target, file_abs, o);
    if (debug_with) {
        printf("rerun:   ");
        print_shell_word(stdout, debug_with->binary);
        putchar(' ');
        print_shell_word(stdout, file_abs);
        printf("\ndebug:   gdb --args ");
        print_shell_word(stdout, debug_with->binary);
        putchar(' ');
        print_shell_word(stdout, file_abs);
        putchar('\n');
    }

out:
    if (runs)
        for (unsigned i = 0; i <= MAX_TARGETS * 2; i++) attempt_free(&runs[i]);
    free(runs);
    free(s);
    return rc;
}
