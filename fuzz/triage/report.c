/* Reading a verdict and its dedup name from a child's output (triage.h). */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "triage.h"

#define MAX_FRAMES TRIAGE_MAX_FRAMES
#define HASH_FRAMES TRIAGE_HASH_FRAMES

void triage_copy(char *dst, size_t cap, const char *src, size_t n)
{
    if (cap == 0) return;
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}
#define copy_str triage_copy

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
static void parse_frames(const char *out, struct triage_verdict *v)
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
                struct triage_frame *f = &v->frames[v->nframes++];
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

void triage_classify(const struct triage_child *r, unsigned timeout_s, struct triage_verdict *v)
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
