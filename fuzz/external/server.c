/* The protocol server loop behind `cpvm serve`. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>

#include "local.h"

static int reply(int fd, struct xp_buf *out)
{
    return xp_write_frame(fd, out) == XP_IO_OK ? 0 : 1;
}

static int reply_error(int fd, struct xp_buf *out, const char *msg)
{
    xp_buf_reset(out);
    xp_encode_error(out, msg);
    return reply(fd, out);
}

/* Decodes and runs every case of a RUN, encoding the results as it goes. */
static int serve_run(int fd, struct xp_rd *rd, struct xp_buf *out, struct xp_case *c, struct xp_result *res, uint8_t *mem)
{
    uint32_t n;
    char err[256];
    if (!xp_get_u32(rd, "count", &n)) return reply_error(fd, out, rd->err);
    if (n == 0 || n > XP_MAX_BATCH) {
        snprintf(err, sizeof err, "RUN: count %u outside [1, %u]", n, XP_MAX_BATCH);
        return reply_error(fd, out, err);
    }
    xp_buf_reset(out);
    xp_encode_batch(out, XP_RESULTS, n);
    for (uint32_t i = 0; i < n; i++) {
        if (!xp_decode_case(rd, c)) {
            snprintf(err, sizeof err, "RUN: case %u: %s", i, rd->err);
            return reply_error(fd, out, err);
        }
        if (!xp_local_run(c, res, mem, err, sizeof err)) {
            char msg[300];
            snprintf(msg, sizeof msg, "RUN: case %u: %s", i, err);
            return reply_error(fd, out, msg);
        }
        xp_encode_result(out, res);
    }
    if (!xp_rd_end(rd)) return reply_error(fd, out, rd->err);
    if (out->oom) return reply_error(fd, out, "RUN: results larger than a frame");
    return reply(fd, out);
}

int xp_serve(int in_fd, int out_fd)
{
    struct xp_buf in = {0}, out = {0};
    struct xp_case *c = malloc(sizeof *c);
    struct xp_result *res = malloc(sizeof *res);
    uint8_t *mem = malloc(XP_MAX_MAPPED);
    int rc = 1;
    if (!c || !res || !mem) {
        fputs("cpvm serve: out of memory\n", stderr);
        goto done;
    }
    for (;;) {
        enum xp_io io = xp_read_frame(in_fd, &in, -1);
        if (io == XP_IO_EOF) {
            rc = 0;
            break;
        }
        if (io != XP_IO_OK) {
            fprintf(stderr, "cpvm serve: input: %s\n", xp_io_name(io));
            if (io == XP_IO_TOO_BIG) reply_error(out_fd, &out, "frame larger than the limit");
            break;
        }
        struct xp_rd rd;
        uint8_t type;
        xp_rd_init(&rd, in.p, in.len);
        if (!xp_get_u8(&rd, "type", &type)) {
            if (reply_error(out_fd, &out, "empty message")) break;
            continue;
        }
        int wr = 0;
        if (type == XP_HELLO) {
            uint32_t version;
            if (!xp_get_u32(&rd, "version", &version) || !xp_rd_end(&rd)) {
                wr = reply_error(out_fd, &out, rd.err);
            } else if (version != XP_VERSION) {
                wr = reply_error(out_fd, &out, "HELLO: unsupported protocol version");
            } else {
                struct xp_hello h;
                xp_local_hello(&h);
                xp_buf_reset(&out);
                xp_encode_hello_ok(&out, &h);
                wr = reply(out_fd, &out);
            }
        } else if (type == XP_RUN) {
            wr = serve_run(out_fd, &rd, &out, c, res, mem);
        } else if (type == XP_BYE) {
            rc = 0;
            break;
        } else {
            char msg[64];
            snprintf(msg, sizeof msg, "unknown message type 0x%02x", type);
            wr = reply_error(out_fd, &out, msg);
        }
        if (wr) {
            fputs("cpvm serve: output: write failed\n", stderr);
            break;
        }
    }
done:
    xp_buf_free(&in);
    xp_buf_free(&out);
    free(c);
    free(res);
    free(mem);
    return rc;
}
