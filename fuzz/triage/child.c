/* Running a target's binary on an input in a child (triage.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "triage.h"

#define OUTPUT_CAP (4u << 20) /* child output kept; the rest is drained */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs argv[0] with stdout and stderr captured, killing its process group
 * after `timeout_s` seconds. False when it could not be started. */
bool triage_run_child(char *const argv[], unsigned timeout_s, struct triage_child *r)
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
        fprintf(stderr, "triage: cannot run %s: %s\n", argv[0], strerror(errno));
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
