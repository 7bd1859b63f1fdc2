/* Crash triage for the fuzz targets, in one place: running a target's binary
 * on an input in a child (with a timeout), reading the verdict from its
 * output (sanitizer report, harness invariant, internal error, assertion,
 * signal, timeout), and the dedup name the way ClusterFuzz groups crashes: the
 * crash type plus the top symbolized frames of cpvm's own code (or the
 * normalized message for invariants and assertions), as
 * <kind>-<function>-<hash8>. `cpvm repro` is triage_repro(); fuzz/triage/triage.sh
 * deduplicates with `cpvm repro --brief` and minimises with the engines' own
 * minimisers. */
#ifndef CPVM_FUZZ_TRIAGE_H
#define CPVM_FUZZ_TRIAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TRIAGE_MAX_FRAMES 64
#define TRIAGE_HASH_FRAMES 3 /* dedup key: this many top project frames */

/* What a child printed and how it ended. */
struct triage_child {
    char *out; /* stdout + stderr, NUL-terminated; free() it */
    size_t len;
    int status;
    bool timed_out;
    double ms;
};

/* Runs argv[0] with stdout and stderr captured, killing its process group
 * after `timeout_s` seconds. False when it could not be started. */
bool triage_run_child(char *const argv[], unsigned timeout_s, struct triage_child *r);

struct triage_frame {
    char func[96];
    char where[160]; /* file:line relative to the source tree, or the module */
};

struct triage_verdict {
    bool crashed;
    bool error;        /* the binary could not run the input at all */
    char text[480];    /* "AddressSanitizer: heap-buffer-overflow", "SIGABRT: invariant: ..." */
    char detail[480];  /* a second line: the access, the UB site, ... */
    char kind[48];     /* file-name slug of the kind */
    char msg_key[480]; /* invariant/assertion message with numbers normalized */
    struct triage_frame frames[TRIAGE_MAX_FRAMES]; /* project frames of the first stack */
    unsigned nframes;
    unsigned all_frames; /* frames of any kind in the first stack */
    bool aborted;        /* abort() on the stack or SIGABRT */
    char name[200];      /* <kind>-<func>-<hash8>: dedup key and regression file name */
};

/* Reads the verdict from a finished child's output and status. */
void triage_classify(const struct triage_child *r, unsigned timeout_s, struct triage_verdict *v);

/* Copies n bytes of src (at most cap - 1) and terminates dst. */
void triage_copy(char *dst, size_t cap, const char *src, size_t n);

/* The registered targets (fuzz/targets.def), in its order. */
extern const char *const triage_targets[];
extern const unsigned triage_ntargets;

/* `cpvm repro` (vm/cli/cmd_repro.c documents the options). */
struct triage_repro_opts {
    const char *file, *target, *build, *binary, *program_out;
    unsigned timeout_s;
    bool brief, verbose, full;
};
/* 0: a crash reproduced; 1: no crash; 2: nothing to run. */
int triage_repro(const struct triage_repro_opts *o);

#endif
