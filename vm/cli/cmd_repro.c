/* cpvm repro FILE [--target NAME] [--build DIR] ... — reruns a fuzzer's crash
 * file in a child process with the target's replay binary and prints what it
 * was: the target, the verdict parsed from the sanitizer report or the signal,
 * the program the input frames (disassembled), and the commands that rerun it.
 *
 * The input framings below mirror the comments atop fuzz/targets/<t>.c and
 * fuzz/harness/exec.h (STYLE.md §9: framed inputs are documented there and
 * decoded here); the generator configs are the targets' own (GEN_CONFIG_* in
 * gen.h), so the disassembly is the program that crashed.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "gen.h"
#include "text/text.h"
#include "util.h"

static const char *const CMD = "repro";

#define MAX_TARGETS 32
#define MAX_FRAMES 64
#define HASH_FRAMES 3           /* dedup key: this many top project frames */
#define OUTPUT_CAP (4u << 20)   /* child output kept; the rest is drained */
#define DEFAULT_TIMEOUT 30u     /* seconds */
#define DEFAULT_MAX_LINES 400u  /* disassembly lines printed without --full */

static void usage(FILE *out)
{
    fputs("usage: cpvm repro FILE [--target NAME] [--build DIR] [--binary PATH] [--timeout SEC]\n"
          "                  [--brief] [--verbose] [--full] [--program-out FILE]\n"
          "  Reruns a fuzz input in a child process with the target's replay binary\n"
          "  (DIR/fuzz/replay_<target>; DIR defaults to the build directory holding this\n"
          "  cpvm) and reports the target, the verdict (sanitizer report, invariant,\n"
          "  signal or \"no crash\"), the program the input frames, disassembled, and the\n"
          "  commands that rerun it. When the replay binary is not sanitized and\n"
          "  DIR/fuzz/fuzz_<target> (the libFuzzer build) exists, that one runs too for a\n"
          "  stack. The target comes from --target, else from a path component naming\n"
          "  one (corpus/regressions/<target>/...), else from which replay binary crashes.\n"
          "  --brief prints one line, \"TARGET NAME VERDICT\" (NAME is the regression file\n"
          "  name <kind>-<function>-<hash8>; inputs with the same NAME are the same bug),\n"
          "  or \"TARGET - no crash\". --verbose adds the child's whole output, --full the\n"
          "  whole disassembly (else the first 400 lines); --program-out writes the\n"
          "  generated .polkavm (generator-based targets) for `cpvm run`/`cpvm disasm`.\n"
          "  Exit 0: a crash reproduced; 1: no crash; 2: usage error or nothing to run.\n",
          out);
}

/* ---- small string helpers ------------------------------------------------ */

static void copy_str(char *dst, size_t cap, const char *src, size_t n)
{
    if (cap == 0) return;
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static uint32_t fnv1a(uint32_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 16777619u;
    }
    return h;
}

/* Numbers (decimal, 0x hex) become '#', so one bug at different pcs or
 * addresses keeps one dedup key. */
static void normalize_numbers(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 1 < cap;) {
        char prev = i ? in[i - 1] : ' ';
        bool ident = (prev >= 'a' && prev <= 'z') || (prev >= 'A' && prev <= 'Z') || (prev >= '0' && prev <= '9') ||
                     prev == '_'; /* "add_64" stays */
        if (in[i] >= '0' && in[i] <= '9' && !ident) {
            if (in[i] == '0' && (in[i + 1] == 'x' || in[i + 1] == 'X')) i += 2;
            while ((in[i] >= '0' && in[i] <= '9') || (in[i] >= 'a' && in[i] <= 'f') || (in[i] >= 'A' && in[i] <= 'F'))
                i++;
            out[o++] = '#';
        } else {
            out[o++] = in[i++];
        }
    }
    out[o] = 0;
}

/* A file-name-safe slug of up to `words` words of `in`, skipping numbers and
 * quoted type names: "signed integer overflow: 1 + 2" -> "signed-integer-overflow".
 * With `whole`, colons separate words instead of ending the text. */
static void slugify(const char *in, unsigned words, bool whole, char *out, size_t cap)
{
    size_t o = 0;
    unsigned w = 0;
    const char *p = in;
    while (*p && (whole || *p != ':') && w < words && o + 2 < cap) {
        while (*p == ' ' || *p == '\t' || (whole && *p == ':')) p++;
        const char *start = p;
        while (*p && *p != ' ' && *p != '\t' && *p != ':') p++;
        size_t n = (size_t)(p - start);
        if (n == 0) continue;
        bool keep = start[0] != '\'' && start[0] != '(' && !(start[0] >= '0' && start[0] <= '9') && start[0] != '-';
        if (!keep) continue;
        if (o > 0) out[o++] = '-';
        for (size_t k = 0; k < n && o + 1 < cap; k++) {
            char c = start[k];
            if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
            if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') out[o++] = c;
            else if (o > 0 && out[o - 1] != '-' && o + 1 < cap) out[o++] = '-';
        }
        while (o > 0 && out[o - 1] == '-') o--;
        w++;
    }
    out[o] = 0;
    if (o == 0) copy_str(out, cap, "unknown", 7);
}

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

/* ---- running the child ----------------------------------------------------- */

struct child_result {
    char *out; /* stdout + stderr, NUL-terminated */
    size_t len;
    int status;
    bool timed_out;
    double ms;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs argv[0] with stdout and stderr captured, killing its process group
 * after `timeout_s` seconds. False when it could not be started. */
static bool run_child(char *const argv[], unsigned timeout_s, struct child_result *r)
{
    memset(r, 0, sizeof *r);
    size_t cap = 65536;
    r->out = malloc(cap);
    if (!r->out) return false;
    int fds[2];
    if (pipe(fds) != 0) {
        free(r->out);
        return false;
    }
    fflush(NULL);
    double t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        free(r->out);
        return false;
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own group, so a timeout kills whatever it started */
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        fprintf(stderr, "cpvm repro: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(fds[1]);
    double deadline = t0 + (double)timeout_s * 1e3;
    bool eof = false;
    while (!eof) {
        double left = deadline - now_ms();
        if (left <= 0) {
            r->timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int n = poll(&pfd, 1, left > 1000 ? 1000 : (int)left + 1);
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) continue;
        char chunk[16384];
        ssize_t got = read(fds[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            eof = true;
            break;
        }
        size_t g = (size_t)got;
        if (r->len + g + 1 > cap && cap < OUTPUT_CAP) {
            size_t ncap = cap;
            while (ncap < r->len + g + 1 && ncap < OUTPUT_CAP) ncap *= 2;
            char *nb = realloc(r->out, ncap);
            if (nb) {
                r->out = nb;
                cap = ncap;
            }
        }
        if (r->len + 1 < cap) {
            size_t take = cap - 1 - r->len < g ? cap - 1 - r->len : g;
            memcpy(r->out + r->len, chunk, take);
            r->len += take;
        }
    }
    close(fds[0]);
    /* The output may close before the process ends (or never end): wait with the deadline. */
    for (;;) {
        pid_t w = waitpid(pid, &r->status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) break;
        if (r->timed_out || now_ms() > deadline) {
            r->timed_out = true;
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &r->status, 0);
            break;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    r->ms = now_ms() - t0;
    r->out[r->len] = 0;
    return true;
}

/* ---- reading the verdict ---------------------------------------------------- */

struct frame {
    char func[96];
    char where[160]; /* file:line relative to the source tree, or the module */
};

struct verdict {
    bool crashed;
    bool error;           /* the binary could not run the input at all */
    char text[480];       /* "AddressSanitizer: heap-buffer-overflow", "SIGABRT: invariant: ..." */
    char detail[480];     /* a second line: the access, the UB site, ... */
    char kind[48];        /* file-name slug of the kind */
    char msg_key[480];    /* invariant/assertion message with numbers normalized */
    struct frame frames[MAX_FRAMES]; /* project frames of the first stack */
    unsigned nframes;
    unsigned all_frames;  /* frames of any kind in the first stack */
    bool aborted;         /* abort() on the stack or SIGABRT */
    char name[200];       /* <kind>-<func>-<hash8> */
};

static const char *signal_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGKILL: return "SIGKILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    case SIGTERM: return "SIGTERM";
    case SIGXCPU: return "SIGXCPU";
    default: return NULL;
    }
}

/* The rest of the line starting at p, without the newline. */
static void line_from(const char *p, char *out, size_t cap)
{
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ')) n--;
    copy_str(out, cap, p, n);
}

/* The source location with everything before the tree's top folders dropped:
 * "/work/main/vm/decode/decode.c:12:3" -> "vm/decode/decode.c:12:3". */
static const char *tree_relative(const char *loc)
{
    static const char *const tops[] = {"/vm/", "/fuzz/"};
    const char *best = NULL;
    for (size_t i = 0; i < sizeof tops / sizeof tops[0]; i++) {
        const char *p = strstr(loc, tops[i]);
        if (p && (!best || p < best)) best = p;
    }
    return best ? best + 1 : loc;
}

/* A frame of cpvm's own code (library, targets, generator), not the sanitizer
 * runtime, libc, libFuzzer or the replay/AFL driver. */
static bool project_frame(const char *loc)
{
    if (strstr(loc, "compiler-rt") || strstr(loc, "/fuzz/drivers/")) return false;
    return strstr(loc, "/vm/") || strstr(loc, "/fuzz/targets/") || strstr(loc, "/fuzz/gen/") ||
           strncmp(loc, "vm/", 3) == 0 || strncmp(loc, "fuzz/targets/", 13) == 0 || strncmp(loc, "fuzz/gen/", 9) == 0;
}

/* Sanitizer frames look like "    #3 0x55d1c2 in dec_decode /src/vm/decode/decode.c:120:7".
 * Collects the first contiguous stack in the output. */
static void parse_frames(const char *out, struct verdict *v)
{
    bool in_stack = false;
    for (const char *line = out; line && *line;) {
        const char *next = strchr(line, '\n');
        next = next ? next + 1 : NULL;
        const char *p = line;
        while (*p == ' ' || *p == '\t') p++;
        bool is_frame = p[0] == '#' && p[1] >= '0' && p[1] <= '9';
        if (!is_frame) {
            if (in_stack) return;
            line = next;
            continue;
        }
        if (!in_stack && strncmp(p, "#0 ", 3) != 0) {
            line = next;
            continue;
        }
        in_stack = true;
        v->all_frames++;
        char buf[512];
        line_from(p, buf, sizeof buf);
        char *in = strstr(buf, " in ");
        if (in) {
            char *func = in + 4;
            char *sp = strchr(func, ' ');
            const char *loc = sp ? sp + 1 : "";
            if (sp) *sp = 0;
            if (strcmp(func, "abort") == 0 || strstr(func, "raise") || strstr(func, "pthread_kill")) v->aborted = true;
            if (project_frame(loc) && v->nframes < MAX_FRAMES) {
                struct frame *f = &v->frames[v->nframes++];
                copy_str(f->func, sizeof f->func, func, strlen(func));
                const char *rel = tree_relative(loc);
                copy_str(f->where, sizeof f->where, rel, strlen(rel));
            }
        }
        line = next;
    }
}

/* Finds `marker` in the output; returns the text after it on that line, or NULL. */
static const char *find_after(const char *out, const char *marker)
{
    const char *p = strstr(out, marker);
    return p ? p + strlen(marker) : NULL;
}

static void classify(const struct child_result *r, unsigned timeout_s, struct verdict *v)
{
    memset(v, 0, sizeof *v);
    const char *out = r->out;
    parse_frames(out, v);
    const char *p;
    char line[384];
    bool signaled = WIFSIGNALED(r->status);
    int sig = signaled ? WTERMSIG(r->status) : 0;
    if (sig == SIGABRT) v->aborted = true;

    if ((p = find_after(out, "ERROR: LeakSanitizer: ")) != NULL) {
        line_from(p, line, sizeof line);
        snprintf(v->text, sizeof v->text, "LeakSanitizer: %s", line);
        copy_str(v->kind, sizeof v->kind, "leak", 4);
        if ((p = find_after(out, "SUMMARY: AddressSanitizer: ")) != NULL ||
            (p = find_after(out, "SUMMARY: LeakSanitizer: ")) != NULL)
            line_from(p, v->detail, sizeof v->detail);
    } else if ((p = find_after(out, "ERROR: AddressSanitizer: ")) != NULL) {
        /* "heap-buffer-overflow on address ...": the bug type is the first word;
         * SUMMARY names it even when the ERROR line is prose. */
        char type[64];
        const char *s = find_after(out, "SUMMARY: AddressSanitizer: ");
        const char *t = s ? s : p;
        size_t n = strcspn(t, " \n");
        copy_str(type, sizeof type, t, n);
        snprintf(v->text, sizeof v->text, "AddressSanitizer: %s", type);
        slugify(type, 1, false, v->kind, sizeof v->kind);
        line_from(p, v->detail, sizeof v->detail);
        const char *acc = strstr(p, "\nREAD of size ");
        if (!acc) acc = strstr(p, "\nWRITE of size ");
        if (acc) {
            size_t dl = strlen(v->detail);
            snprintf(v->detail + dl, sizeof v->detail - dl, "; ");
            line_from(acc + 1, line, sizeof line);
            dl = strlen(v->detail);
            copy_str(v->detail + dl, sizeof v->detail - dl, line, strlen(line));
        }
    } else if ((p = find_after(out, "runtime error: ")) != NULL) {
        line_from(p, line, sizeof line);
        snprintf(v->text, sizeof v->text, "UndefinedBehaviorSanitizer: %s", line);
        char slug[40];
        slugify(line, 4, false, slug, sizeof slug);
        snprintf(v->kind, sizeof v->kind, "ub-%s", slug);
        /* The site: the start of that line ("vm/x.c:1:2: runtime error: ..."). */
        const char *ls = p;
        while (ls > out && ls[-1] != '\n') ls--;
        line_from(ls, line, sizeof line);
        char *re = strstr(line, ": runtime error");
        if (re) *re = 0;
        const char *rel = tree_relative(line);
        snprintf(v->detail, sizeof v->detail, "at %s", rel);
    } else if ((p = find_after(out, " invariant violated: ")) != NULL) {
        line_from(p, line, sizeof line);
        snprintf(v->text, sizeof v->text, "SIGABRT: invariant: %s", line);
        copy_str(v->kind, sizeof v->kind, "invariant", 9);
        normalize_numbers(line, v->msg_key, sizeof v->msg_key);
    } else if ((p = find_after(out, "cpvm internal error at ")) != NULL) {
        line_from(p, line, sizeof line);
        /* "vm/x/y.c:12: message": keep the message for the key, the file for the name. */
        const char *msg = strstr(line, ": ");
        snprintf(v->text, sizeof v->text, "SIGABRT: internal error: %s", msg ? msg + 2 : line);
        snprintf(v->detail, sizeof v->detail, "at %s", tree_relative(line));
        char *colon = strstr(v->detail, ": ");
        if (colon) *colon = 0;
        copy_str(v->kind, sizeof v->kind, "bug", 3);
        normalize_numbers(msg ? msg + 2 : line, v->msg_key, sizeof v->msg_key);
    } else if ((p = find_after(out, "Assertion `")) != NULL) {
        line_from(p, line, sizeof line);
        char *q = strstr(line, "' failed");
        if (q) *q = 0;
        snprintf(v->text, sizeof v->text, "SIGABRT: assertion: %s", line);
        copy_str(v->kind, sizeof v->kind, "assert", 6);
        normalize_numbers(line, v->msg_key, sizeof v->msg_key);
    } else if ((p = find_after(out, "ERROR: libFuzzer: timeout")) != NULL || r->timed_out) {
        if (r->timed_out) snprintf(v->text, sizeof v->text, "timeout: still running after %u s (killed)", timeout_s);
        else snprintf(v->text, sizeof v->text, "libFuzzer: timeout");
        copy_str(v->kind, sizeof v->kind, "timeout", 7);
    } else if ((p = find_after(out, "ERROR: libFuzzer: out-of-memory")) != NULL) {
        line_from(p, line, sizeof line);
        snprintf(v->text, sizeof v->text, "libFuzzer: out-of-memory%s", line);
        copy_str(v->kind, sizeof v->kind, "oom", 3);
    } else if ((p = find_after(out, "ERROR: libFuzzer: ")) != NULL) {
        line_from(p, line, sizeof line);
        if (v->aborted) snprintf(v->text, sizeof v->text, "SIGABRT (libFuzzer: %s)", line);
        else snprintf(v->text, sizeof v->text, "libFuzzer: %s", line);
        if (v->aborted) copy_str(v->kind, sizeof v->kind, "sigabrt", 7);
        else slugify(line, 2, false, v->kind, sizeof v->kind);
    } else if (signaled) {
        const char *sn = signal_name(sig);
        if (sn) snprintf(v->text, sizeof v->text, "%s", sn);
        else snprintf(v->text, sizeof v->text, "signal %d", sig);
        slugify(v->text, 2, false, v->kind, sizeof v->kind);
    } else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) == 127 && strstr(out, "cannot run")) {
        v->error = true;
        snprintf(v->text, sizeof v->text, "the binary could not be started");
        return;
    } else if (WIFEXITED(r->status) && WEXITSTATUS(r->status) != 0) {
        if (strstr(out, "replay: ") && strstr(out, "unreadable path")) {
            v->error = true;
            snprintf(v->text, sizeof v->text, "the replay binary could not read the input");
            return;
        }
        snprintf(v->text, sizeof v->text, "exit status %d", WEXITSTATUS(r->status));
        copy_str(v->kind, sizeof v->kind, "exit", 4);
    } else {
        snprintf(v->text, sizeof v->text, "no crash");
        return;
    }
    v->crashed = true;

    /* Plain aborts carry their message on the line before: "gen: x does not encode". */
    if (!v->detail[0] && v->aborted && !v->msg_key[0] && strcmp(v->kind, "timeout") != 0) {
        static const char *const noise[] = {"INFO:", "replay:", "Running:", "MS:", "NOTE:", "base unit:", "0x",
                                            "artifact_prefix", "Test unit", "Executed", "stat::", "\\x", "#"};
        const char *last = NULL;
        for (const char *l = out; l && *l;) {
            const char *q = l;
            while (*q == ' ') q++;
            if (strncmp(q, "==", 2) == 0) break; /* the sanitizer's or libFuzzer's report starts */
            bool skip = *q == 0 || *q == '\n';
            for (size_t i = 0; !skip && i < sizeof noise / sizeof noise[0]; i++)
                skip = strncmp(q, noise[i], strlen(noise[i])) == 0;
            if (!skip && strstr(q, ": Running ") == NULL) last = q; /* libFuzzer's "x: Running 1 inputs" */
            const char *e = strchr(l, '\n');
            l = e ? e + 1 : NULL;
        }
        if (last) {
            /* "SIGABRT: gen: add_64 does not encode in latest64", from any build. */
            line_from(last, line, sizeof line);
            snprintf(v->text, sizeof v->text, "SIGABRT: %s", line);
            copy_str(v->kind, sizeof v->kind, "sigabrt", 7);
            normalize_numbers(line, v->msg_key, sizeof v->msg_key);
        }
    }

    /* The name: <kind>-<func>-<hash8>, hashed over the kind and either the
     * message (invariants, assertions, internal errors) or the top frames. */
    uint32_t h = fnv1a(2166136261u, v->kind);
    char func[96] = "";
    if (v->msg_key[0]) {
        h = fnv1a(fnv1a(h, "|"), v->msg_key);
        if (strcmp(v->kind, "bug") == 0) {
            /* The file stem of "at vm/interp/interp.c:12". */
            const char *slash = strrchr(v->detail, '/');
            const char *stem = slash ? slash + 1 : v->detail;
            size_t n = strcspn(stem, ".:");
            copy_str(func, sizeof func, stem, n);
        } else {
            slugify(v->msg_key, 3, true, func, sizeof func);
        }
    } else {
        for (unsigned i = 0; i < v->nframes && i < HASH_FRAMES; i++) h = fnv1a(fnv1a(h, "|"), v->frames[i].func);
        if (v->nframes > 0) copy_str(func, sizeof func, v->frames[0].func, strlen(v->frames[0].func));
        else copy_str(func, sizeof func, "nostack", 7);
    }
    char safe[96];
    size_t o = 0;
    for (const char *s = func; *s && o + 1 < sizeof safe; s++)
        safe[o++] = ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
                     *s == '-')
                        ? *s
                        : '_';
    safe[o] = 0;
    snprintf(v->name, sizeof v->name, "%s-%s-%08" PRIx32, v->kind, safe[0] ? safe : "unknown", h);
}

/* ---- describing and disassembling the framed program ------------------------ */

static const char *const page_names[4] = {"4K", "4K", "16K", "64K"};

static void print_disassembly(const cpvm_program *prog, bool full)
{
    struct text_disasm_options opt = {.show_offsets = true, .non_abi_regs = false};
    char *text = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = text_disassemble(prog, &opt, &text, &err);
    if (s != CPVM_OK) {
        printf("  (disassembly failed: %s: %s)\n", cpvm_status_message(s), err.detail);
        return;
    }
    unsigned lines = 0;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (!full && lines == DEFAULT_MAX_LINES) {
            unsigned rest = 0;
            for (const char *q = p; *q; q++) rest += *q == '\n';
            printf("  ... %u more lines (--full shows them)\n", rest);
            break;
        }
        printf("  %.*s\n", (int)n, p);
        lines++;
        p = e ? e + 1 : p + n;
    }
    free(text);
}

static bool write_program(const char *path, const uint8_t *blob, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "cpvm repro: %s: %s\n", path, strerror(errno));
        return false;
    }
    bool ok = fwrite(blob, 1, len, f) == len;
    ok = fclose(f) == 0 && ok;
    if (!ok) fprintf(stderr, "cpvm repro: %s: write error\n", path);
    return ok;
}

/* Runs the generator as the target does and shows its program. */
static void show_generated(const uint8_t *gin, size_t glen, const struct gen_config *cfg, bool full,
                           const char *program_out)
{
    struct gen_program g;
    cpvm_status s = gen_from_bytes(gin, glen, cfg, &g);
    if (s != CPVM_OK) {
        printf("generator: %s\n", cpvm_status_message(s));
        return;
    }
    printf("generated: %s, %" PRIu32 " instructions, %" PRIu32 " code bytes, %" PRIu32
           " jump table entries, entry pc %" PRIu32 ", gas %" PRId64 ", step limit %" PRIu64
           ", page size %" PRIu32 ", aux %" PRIu32 " bytes, %zu of %zu input bytes used\n",
           cpvm_isa_name(g.isa), g.insn_count, g.code_len, g.jump_table_count, g.entry_pc, g.gas, g.step_limit,
           g.page_size, g.aux_size, g.consumed, glen);
    if (program_out && write_program(program_out, g.blob, g.blob_len))
        printf("wrote the program to %s (%zu bytes)\n", program_out, g.blob_len);
    cpvm_program *prog = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    s = cpvm_program_parse(g.blob, g.blob_len, 0, &prog, &err);
    if (s != CPVM_OK) {
        printf("the generated program does not parse: %s at offset %" PRIu64 ": %s\n", cpvm_status_message(s),
               err.offset, err.detail);
    } else {
        printf("program:\n");
        print_disassembly(prog, full);
        cpvm_program_free(prog);
    }
    gen_program_free(&g);
}

static void show_parsed(const char *what, const uint8_t *bytes, size_t len, bool raw, cpvm_isa isa, bool full)
{
    cpvm_program *prog = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status s = raw ? cpvm_program_parse_raw(bytes, len, isa, 0, &prog, &err)
                        : cpvm_program_parse(bytes, len, 0, &prog, &err);
    if (s != CPVM_OK) {
        printf("%s: does not parse: %s at offset %" PRIu64 ": %s\n", what, cpvm_status_message(s), err.offset,
               err.detail);
        return;
    }
    struct cpvm_program_info info;
    cpvm_program_get_info(prog, &info);
    printf("%s: parses (%s, %zu code bytes)\n", what, cpvm_isa_name(info.isa), info.code.len);
    print_disassembly(prog, full);
    cpvm_program_free(prog);
}

static void show_blob_parse(const uint8_t *d, size_t n, bool full)
{
    if (n < 1) {
        printf("input: empty (the target ignores it)\n");
        return;
    }
    uint8_t m = d[0];
    cpvm_isa isa = (cpvm_isa)(m & 3);
    printf("input: mode 0x%02x: raw ISA %s, page %s, %s memory, compat %s%s%s; %zu program bytes\n", m,
           cpvm_isa_name(isa), page_names[(m >> 2) & 3], (m & 16) ? "dynamic" : "standard",
           (m & 32) ? "gp-v0.4" : "polkavm-0.35", (m & 64) ? ", borrowed" : "", (m & 128) ? ", runs each module" : "",
           n - 1);
    show_parsed("as a .polkavm container", d + 1, n - 1, false, isa, full);
    show_parsed("as a raw program", d + 1, n - 1, true, isa, full);
}

static void show_asm_roundtrip(const uint8_t *d, size_t n, bool full, const char *program_out)
{
    if (n < 1) {
        printf("input: empty (the target ignores it)\n");
        return;
    }
    uint8_t m = d[0];
    printf("input: mode 0x%02x: %s%s%s%s\n", m, (m & 1) ? "raw program, ISA " : "generated program",
           (m & 1) ? cpvm_isa_name((cpvm_isa)((m >> 1) & 3)) : "", (m & 8) ? ", offsets" : "",
           (m & 16) ? ", r0..r12 names" : "");
    if (m & 1) {
        show_parsed("raw program", d + 1, n - 1, true, (cpvm_isa)((m >> 1) & 3), full);
        return;
    }
    if (m & 32) printf("       (also re-assembled as a raw program)\n");
    struct gen_config cfg = GEN_CONFIG_ASM_ROUNDTRIP;
    show_generated(d + 1, n - 1, &cfg, full, program_out);
}

/* interp_exec and diff_interp_jit share bytes 0-1 (fuzz/harness/exec.h) but
 * give bits 3-5 of byte 0 their own meanings. */
static void show_exec(const char *target, const uint8_t *d, size_t n, bool full, const char *program_out)
{
    uint8_t c = n > 0 ? d[0] : 0, seed = n > 1 ? d[1] : 0;
    printf("input: run config 0x%02x: %s memory, compat %s, %s", c, (c & 1) ? "dynamic" : "standard",
           (c & 2) ? "gp-v0.4" : "polkavm-0.35", (c & 4) ? "unmetered unless memset" : "metered");
    if (strcmp(target, "interp_exec") == 0) {
        static const unsigned step_limits[4] = {1, 2, 3, 17};
        if (c & 8) printf(", differential stepping every %u", step_limits[(c >> 4) & 3]);
    } else {
        static const char *const models[4] = {"naive", "dense table", "sparse table", "extreme table"};
        printf("%s, cost model %s", (c & 8) ? ", asynchronous gas" : "", models[(c >> 4) & 3]);
    }
    printf("%s%s; host seed 0x%02x\n", (c & 64) ? ", one gas refill" : "", (c & 128) ? ", host re-enters" : "", seed);
    struct gen_config cfg = GEN_CONFIG_INTERP_EXEC;
    show_generated(n > 2 ? d + 2 : NULL, n > 2 ? n - 2 : 0, &cfg, full, program_out);
}

static void show_compile(const uint8_t *d, size_t n, bool full)
{
    if (n < 1) {
        printf("input: empty (the target ignores it)\n");
        return;
    }
    uint8_t m = d[0];
    cpvm_isa isa = (cpvm_isa)(m & 3);
    printf("input: mode 0x%02x: %s%s%s%s%s, compat %s, %s memory; %zu program bytes\n", m,
           (m & 4) ? "a .polkavm container" : "a raw program, ISA ", (m & 4) ? "" : cpvm_isa_name(isa),
           (m & 8) ? ", gas metering" : ", no gas metering", (m & 24) == 24 ? " (asynchronous)" : "",
           (m & 32) ? ", step tracing" : "", (m & 64) ? "gp-v0.4" : "polkavm-0.35", (m & 128) ? "dynamic" : "standard",
           n - 1);
    if (m & 4) show_parsed("container", d + 1, n - 1, false, isa, full);
    else show_parsed("raw program", d + 1, n - 1, true, isa, full);
}

/* In a child: the generator and the disassembler may be what crashed. */
static void show_program(const char *target, const uint8_t *d, size_t n, bool full, const char *program_out)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        printf("program: not shown (fork failed: %s)\n", strerror(errno));
        return;
    }
    if (pid == 0) {
        if (strcmp(target, "blob_parse") == 0) show_blob_parse(d, n, full);
        else if (strcmp(target, "asm_roundtrip") == 0) show_asm_roundtrip(d, n, full, program_out);
        else if (strcmp(target, "interp_exec") == 0 || strcmp(target, "diff_interp_jit") == 0)
            show_exec(target, d, n, full, program_out);
        else if (strcmp(target, "compile") == 0) show_compile(d, n, full);
        else printf("program: cpvm repro does not know %s's input framing\n", target);
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status))
        printf("  (showing the program crashed with signal %d: the generator or disassembler is what fails)\n",
               WTERMSIG(status));
}

/* ---- binaries and targets ------------------------------------------------- */

struct setup {
    char build[PATH_MAX];
    char targets[MAX_TARGETS][64];
    unsigned ntargets;
    bool sanitized_replay; /* the build's CMakeCache says CPVM_SANITIZE=ON */
};

static int cmp_str(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static void find_targets(struct setup *s)
{
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/fuzz", s->build);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && s->ntargets < MAX_TARGETS) {
        if (strncmp(e->d_name, "replay_", 7) != 0 || strlen(e->d_name + 7) >= sizeof s->targets[0]) continue;
        char path[PATH_MAX + 8 + 264];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (!is_executable(path)) continue;
        copy_str(s->targets[s->ntargets++], sizeof s->targets[0], e->d_name + 7, strlen(e->d_name + 7));
    }
    closedir(d);
    qsort(s->targets, s->ntargets, sizeof s->targets[0], cmp_str);
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
    struct child_result r;
    struct verdict v;
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
    if (!run_child(argv, timeout_s + (libfuzzer ? 10 : 0), &a->r)) {
        a->v.error = true;
        snprintf(a->v.text, sizeof a->v.text, "could not start %s: %s", binary, strerror(errno));
        return;
    }
    a->ran = true;
    classify(&a->r, timeout_s, &a->v);
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

static void print_frames(const struct verdict *v, unsigned max)
{
    for (unsigned i = 0; i < v->nframes && i < max; i++)
        printf("%s  #%u %s %s\n", i == 0 ? "stack:  " : "        ", i, v->frames[i].func, v->frames[i].where);
}

int cmd_repro(int argc, char **argv)
{
    const char *file = NULL, *target = NULL, *build = NULL, *binary = NULL, *timeout_arg = NULL,
               *program_out = NULL;
    bool brief = false, verbose = false, full = false;
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--brief") == 0) {
            brief = true;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(argv[i], "--full") == 0) {
            full = true;
        } else if (cli_option(argc, argv, &i, "--target", &v, &missing, CMD)) {
            target = v;
        } else if (cli_option(argc, argv, &i, "--build", &v, &missing, CMD)) {
            build = v;
        } else if (cli_option(argc, argv, &i, "--binary", &v, &missing, CMD)) {
            binary = v;
        } else if (cli_option(argc, argv, &i, "--timeout", &v, &missing, CMD)) {
            timeout_arg = v;
        } else if (cli_option(argc, argv, &i, "--program-out", &v, &missing, CMD)) {
            program_out = v;
        } else if (missing) {
            return 2;
        } else if (!cli_positional(CMD, argv[i], &file, "input")) {
            usage(stderr);
            return 2;
        }
    }
    if (!file) {
        usage(stderr);
        return 2;
    }
    uint32_t timeout_s = DEFAULT_TIMEOUT;
    if (timeout_arg && (!cli_parse_u32(timeout_arg, &timeout_s) || timeout_s == 0 || timeout_s > 86400)) {
        fprintf(stderr, "cpvm repro: --timeout: expected 1..86400 seconds, got '%s'\n", timeout_arg);
        return 2;
    }
    if (binary && !target) {
        fprintf(stderr, "cpvm repro: --binary needs --target (it decides the input framing)\n");
        return 2;
    }
    char file_abs[PATH_MAX];
    if (!realpath(file, file_abs)) {
        fprintf(stderr, "cpvm repro: %s: %s\n", file, strerror(errno));
        return 2;
    }
    size_t len = 0;
    uint8_t *data = cli_read_file(CMD, file_abs, &len);
    if (!data) return 2;

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

    if (brief) {
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
    if (verbose)
        for (unsigned i = 0; i < nruns; i++) {
            if (!runs[i].ran) continue;
            printf("---- output of %s ----\n%s", runs[i].binary, runs[i].r.out);
            if (runs[i].r.len && runs[i].r.out[runs[i].r.len - 1] != '\n') putchar('\n');
            printf("---- end ----\n");
        }
    if (target) show_program(target, data, len, full, program_out);
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
    free(data);
    return rc;
}
