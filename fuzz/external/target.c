/* Target processes (PROTOCOL.md "Failures"). */
#define _GNU_SOURCE
#include "target.h"

#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void reap(struct xp_target *t, bool kill_first)
{
    if (t->to_fd >= 0) close(t->to_fd);
    if (t->from_fd >= 0) close(t->from_fd);
    t->to_fd = t->from_fd = -1;
    if (t->pid <= 0) return;
    if (!kill_first) {
        /* A well-behaved target exits on BYE or end of input: give it 200 ms. */
        for (int i = 0; i < 20; i++) {
            if (waitpid(t->pid, NULL, WNOHANG) == t->pid) {
                t->pid = 0;
                return;
            }
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    kill(t->pid, SIGKILL);
    waitpid(t->pid, NULL, 0);
    t->pid = 0;
}

/* Describes how the child ended, if it has; `grace_ms` lets one that just
 * closed its output finish exiting. */
static void child_state(struct xp_target *t, char *buf, size_t cap, int grace_ms)
{
    int status;
    buf[0] = 0;
    if (t->pid <= 0) return;
    pid_t w = waitpid(t->pid, &status, WNOHANG);
    for (int i = 0; w == 0 && i < grace_ms; i += 5) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
        w = waitpid(t->pid, &status, WNOHANG);
    }
    if (w != t->pid) return;
    if (WIFEXITED(status)) snprintf(buf, cap, " (target exited with status %d)", WEXITSTATUS(status));
    else if (WIFSIGNALED(status)) snprintf(buf, cap, " (target killed by signal %d)", WTERMSIG(status));
    t->pid = 0;
}

static bool fail_io(struct xp_target *t, const char *what, enum xp_io io)
{
    char state[64];
    child_state(t, state, sizeof state, io == XP_IO_EOF || io == XP_IO_ERROR ? 200 : 0);
    snprintf(t->err, sizeof t->err, "%s: %s%s", what, io == XP_IO_TIMEOUT ? "hang (deadline passed)" : xp_io_name(io), state);
    reap(t, true);
    return false;
}

static bool spawn(struct xp_target *t)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) {
        snprintf(t->err, sizeof t->err, "pipe: %s", strerror(errno));
        return false;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(t->err, sizeof t->err, "fork: %s", strerror(errno));
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        return false;
    }
    if (pid == 0) {
        if (!t->cmd) {
            close(in[1]);
            close(out[0]);
            _exit(xp_serve(in[0], out[1]));
        }
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl("/bin/sh", "sh", "-c", t->cmd, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    t->pid = pid;
    t->to_fd = in[1];
    t->from_fd = out[0];
    return true;
}

static bool handshake(struct xp_target *t)
{
    struct xp_buf hello = {0}; /* t->out may hold the request to send next */
    xp_encode_hello(&hello);
    enum xp_io wio = xp_write_frame(t->to_fd, &hello);
    xp_buf_free(&hello);
    /* Read even when the write failed: a target may answer before reading
     * HELLO and exit, and what it sent says more than the broken pipe. The
     * read is bounded by the same deadline. */
    enum xp_io io = xp_read_frame(t->from_fd, &t->in, t->hello_timeout_ms);
    if (io != XP_IO_OK) return fail_io(t, wio != XP_IO_OK ? "HELLO" : "HELLO reply", wio != XP_IO_OK ? wio : io);
    struct xp_rd rd;
    xp_rd_init(&rd, t->in.p, t->in.len);
    if (!xp_decode_hello_ok(&rd, &t->hello)) {
        snprintf(t->err, sizeof t->err, "HELLO reply: %s", rd.err);
        reap(t, true);
        return false;
    }
    return true;
}

bool xp_target_start(struct xp_target *t, const char *cmd, int timeout_ms)
{
    memset(t, 0, sizeof *t);
    t->to_fd = t->from_fd = -1;
    t->timeout_ms = timeout_ms;
    t->hello_timeout_ms = timeout_ms;
    t->cmd = cmd ? strdup(cmd) : NULL;
    signal(SIGPIPE, SIG_IGN);
    if (cmd && !t->cmd) {
        snprintf(t->err, sizeof t->err, "out of memory");
        return false;
    }
    return spawn(t) && handshake(t);
}

bool xp_target_restart(struct xp_target *t)
{
    reap(t, true);
    t->restarts++;
    return spawn(t) && handshake(t);
}

void xp_target_stop(struct xp_target *t)
{
    if (t->to_fd >= 0) {
        struct xp_buf bye = {0};
        xp_put_u8(&bye, XP_BYE);
        xp_write_frame(t->to_fd, &bye);
        xp_buf_free(&bye);
    }
    reap(t, false);
    xp_buf_free(&t->in);
    xp_buf_free(&t->out);
    free(t->cmd);
    t->cmd = NULL;
}

bool xp_target_run(struct xp_target *t, const struct xp_case *const *cases, uint32_t n, struct xp_result *res)
{
    return xp_target_send(t) && xp_target_recv(t, cases, n, res);
}

bool xp_target_send(struct xp_target *t)
{
    if (t->pid <= 0 && !xp_target_restart(t)) return false;
    enum xp_io io = xp_write_frame(t->to_fd, &t->out);
    return io == XP_IO_OK || fail_io(t, "RUN", io);
}

bool xp_target_recv(struct xp_target *t, const struct xp_case *const *cases, uint32_t n, struct xp_result *res)
{
    enum xp_io io = xp_read_frame(t->from_fd, &t->in, t->timeout_ms);
    if (io != XP_IO_OK) return fail_io(t, "RUN reply", io);
    struct xp_rd rd;
    uint8_t type;
    uint32_t count;
    xp_rd_init(&rd, t->in.p, t->in.len);
    if (!xp_get_u8(&rd, "type", &type)) goto garbage;
    if (type == XP_ERROR) {
        char msg[256];
        if (!xp_get_str(&rd, "message", msg, sizeof msg)) goto garbage;
        snprintf(t->err, sizeof t->err, "target replied ERROR: %s", msg);
        reap(t, true);
        return false;
    }
    if (type != XP_RESULTS) {
        xp_rd_fail(&rd, "expected RESULTS (0x82), got 0x%02x", type);
        goto garbage;
    }
    if (!xp_get_u32(&rd, "count", &count)) goto garbage;
    if (count != n) {
        xp_rd_fail(&rd, "%u results for %u cases", count, n);
        goto garbage;
    }
    for (uint32_t i = 0; i < n; i++)
        if (!xp_decode_result(&rd, cases[i], &res[i])) goto garbage;
    if (!xp_rd_end(&rd)) goto garbage;
    return true;
garbage:
    snprintf(t->err, sizeof t->err, "garbage reply: %s", rd.err);
    reap(t, true);
    return false;
}
