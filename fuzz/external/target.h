/* An external target process: started with /bin/sh -c CMD, spoken to over
 * its stdin/stdout (PROTOCOL.md), killed and restarted when it dies, hangs
 * past the deadline or answers garbage. */
#ifndef CPVM_FUZZ_EXTERNAL_TARGET_H
#define CPVM_FUZZ_EXTERNAL_TARGET_H

#include <sys/types.h>

#include "proto.h"

struct xp_target {
    char *cmd;
    pid_t pid;
    int to_fd, from_fd;          /* its stdin, its stdout */
    struct xp_hello hello;
    struct xp_buf in, out;       /* the last reply; the request being built */
    int hello_timeout_ms, timeout_ms;
    char err[512];               /* why the last call failed */
    unsigned restarts;
};

/* Starts the process and shakes hands; false with t->err on failure. A NULL
 * `cmd` forks this process into `cpvm serve`'s loop (xp_serve) instead: the
 * cpvm adapter without an executable path (fuzz targets). */
bool xp_target_start(struct xp_target *t, const char *cmd, int timeout_ms);
/* Kills (if running) and starts it again. */
bool xp_target_restart(struct xp_target *t);
/* Sends BYE, closes the pipes, waits a moment, then kills what is left. */
void xp_target_stop(struct xp_target *t);

/* Sends the RUN in t->out (built with xp_encode_run + cases) and decodes the
 * n results into res[0..n-1] (dumps point into t->in until the next call).
 * False with t->err (the target is then stopped) when the target dies, hangs,
 * replies ERROR or garbage. */
bool xp_target_run(struct xp_target *t, const struct xp_case *const *cases, uint32_t n, struct xp_result *res);

/* xp_target_run in two halves, so the caller can work while the target runs:
 * send t->out, then receive the reply (same failure handling). */
bool xp_target_send(struct xp_target *t);
bool xp_target_recv(struct xp_target *t, const struct xp_case *const *cases, uint32_t n, struct xp_result *res);

#endif
