/* Protocol tests against `cpvm serve` (argv[1]): every malformed request gets
 * an ERROR reply and the server keeps serving; an oversized frame ends it;
 * well-formed cases round-trip through the codec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h"
#include "target.h"

static int failures;

#define CHECK(cond, ...)                                  \
    do {                                                  \
        if (!(cond)) {                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                 \
            fputc('\n', stderr);                          \
            failures++;                                   \
        }                                                 \
    } while (0)

/* Sends `msg` raw and returns the reply's type (0 on I/O failure). */
static uint8_t exchange(struct xp_target *t, const struct xp_buf *msg, char *text, size_t cap)
{
    text[0] = 0;
    if (xp_write_frame(t->to_fd, msg) != XP_IO_OK) return 0;
    if (xp_read_frame(t->from_fd, &t->in, 5000) != XP_IO_OK || !t->in.len) return 0;
    struct xp_rd rd;
    xp_rd_init(&rd, t->in.p + 1, t->in.len - 1);
    if (t->in.p[0] == XP_ERROR) xp_get_str(&rd, "message", text, cap);
    return t->in.p[0];
}

static void good_case(struct xp_case *c, const uint8_t *prog, uint32_t len)
{
    memset(c, 0, sizeof *c);
    c->semantics = XP_SEM_GP;
    c->format = XP_FMT_GP_RAW;
    c->gas = 100;
    c->regs[7] = 5;
    c->program = prog;
    c->program_len = len;
    c->npages = 1;
    c->pages[0] = (struct xp_page){0x20000, XP_PAGE, XP_WRITE, (const uint8_t *)"abc", 3};
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: test_protocol CPVM\n", stderr);
        return 2;
    }
    char cmd[1024], text[256];
    snprintf(cmd, sizeof cmd, "'%s' serve", argv[1]);
    struct xp_target t;
    if (!xp_target_start(&t, cmd, 5000)) {
        fprintf(stderr, "cannot start %s: %s\n", cmd, t.err);
        return 1;
    }
    CHECK(!strcmp(t.hello.name, "cpvm") && (t.hello.features & XP_F_SEM_GP), "hello: %s 0x%x", t.hello.name, t.hello.features);

    /* add_64 a2 = a0 + a1 (0xbe 0x87 0x09 per the v0.4 vectors), then the implicit trap. */
    static const uint8_t prog[] = {0, 0, 3, 190, 135, 9, 1};
    struct xp_case c;
    good_case(&c, prog, sizeof prog);
    struct xp_buf m = {0};

    /* A good case: panic at pc 3 (implicit trap), a2 = 5, gas 98, the page dumped. */
    xp_encode_batch(&m, XP_RUN, 1);
    xp_encode_case(&m, &c);
    const struct xp_case *one = &c;
    struct xp_result *res = malloc(sizeof *res);
    xp_buf_reset(&t.out);
    xp_encode_batch(&t.out, XP_RUN, 1);
    xp_encode_case(&t.out, &c);
    CHECK(xp_target_run(&t, &one, 1, res), "good case: %s", t.err);
    CHECK(res->status == XP_PANIC && res->pc == 3 && res->gas == 98 && res->regs[9] == 5 && res->ndumps == 1 &&
              res->dumps[0].address == 0x20000 && !memcmp(res->dumps[0].data, "abc", 3),
          "good case result: status %u pc %u gas %lld a2 %llu dumps %u", res->status, res->pc, (long long)res->gas,
          (unsigned long long)res->regs[9], res->ndumps);

    /* v2 host calls: ecalli 0, then a2 = a0 + a1 and the implicit trap. With no
     * reply the ecalli stops; with one, the registers are set and it resumes. */
    static const uint8_t eprog[] = {0, 0, 5, 10, 0, 190, 135, 9, 5};
    struct xp_case e;
    good_case(&e, eprog, sizeof eprog);
    const struct xp_case *ep = &e;
    for (uint32_t n = 0; n < 2; n++) {
        e.nreplies = n;
        e.replies[0][7] = 40;
        e.replies[0][8] = 2;
        xp_buf_reset(&t.out);
        xp_encode_batch(&t.out, XP_RUN, 1);
        xp_encode_case(&t.out, &e);
        CHECK(xp_target_run(&t, &ep, 1, res), "ecalli case: %s", t.err);
        if (n == 0)
            CHECK(res->status == XP_HOST && res->pc == 0 && res->gas == 99 && res->exit_arg == 0 && res->regs[7] == 5,
                  "ecalli, no reply: status %u pc %u gas %lld", res->status, res->pc, (long long)res->gas);
        else
            CHECK(res->status == XP_PANIC && res->pc == 5 && res->gas == 97 && res->regs[9] == 42 && res->regs[7] == 40,
                  "ecalli, one reply: status %u pc %u gas %lld a2 %llu", res->status, res->pc, (long long)res->gas,
                  (unsigned long long)res->regs[9]);
    }

    /* Malformed requests: each gets ERROR, and the server still answers after. */
    struct {
        const char *what;
        void (*mutate)(struct xp_case *);
        size_t cut; /* bytes cut off the end of the encoded RUN */
        int special;
    } bad[] = {
        {"truncated case", NULL, 5, 0},
        {"unknown type", NULL, 0, 1},
        {"count 0", NULL, 0, 2},
        {"empty message", NULL, 0, 3},
        {"trailing bytes", NULL, 0, 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        xp_buf_reset(&m);
        if (bad[i].special == 1) {
            xp_put_u8(&m, 0x7e);
        } else if (bad[i].special == 2) {
            xp_encode_batch(&m, XP_RUN, 0);
        } else if (bad[i].special == 3) {
            /* zero-length payload */
        } else {
            xp_encode_batch(&m, XP_RUN, 1);
            xp_encode_case(&m, &c);
            if (bad[i].special == 4) xp_put_u8(&m, 0);
            m.len -= bad[i].cut;
        }
        CHECK(exchange(&t, &m, text, sizeof text) == XP_ERROR, "%s: no ERROR reply", bad[i].what);
    }
    /* Field-level errors. */
    const char *field_errs[] = {"semantics", "unaligned page", "overlap", "access", "data longer", "replies"};
    for (int k = 0; k < 6; k++) {
        struct xp_case b;
        good_case(&b, prog, sizeof prog);
        if (k == 0) b.semantics = 9;
        if (k == 1) b.pages[0].address = 0x20001;
        if (k == 2) {
            b.npages = 2;
            b.pages[1] = (struct xp_page){0x20000, XP_PAGE, XP_READ, NULL, 0};
        }
        if (k == 3) b.pages[0].access = 3;
        if (k == 4) b.pages[0].data_len = XP_PAGE + 1;
        xp_buf_reset(&m);
        xp_encode_batch(&m, XP_RUN, 1);
        if (k >= 4) {
            /* encode by hand: the encoder would read past `data` / `replies` */
            b.pages[0].data_len = 0;
            xp_encode_case(&m, &b);
            m.len -= 8;
            xp_put_u32(&m, k == 4 ? XP_PAGE + 1 : 0);
            xp_put_u32(&m, k == 4 ? 0 : XP_MAX_REPLIES + 1);
        } else {
            xp_encode_case(&m, &b);
        }
        CHECK(exchange(&t, &m, text, sizeof text) == XP_ERROR, "%s: no ERROR reply", field_errs[k]);
    }
    xp_buf_reset(&m);
    xp_encode_hello(&m);
    CHECK(exchange(&t, &m, text, sizeof text) == XP_HELLO_OK, "server stopped answering after bad messages");

    /* An oversized frame header ends the stream (no allocation, no hang). */
    uint8_t huge[4] = {0xff, 0xff, 0xff, 0x7f};
    CHECK(write(t.to_fd, huge, 4) == 4, "write");
    enum xp_io io = xp_read_frame(t.from_fd, &t.in, 5000);
    CHECK(io == XP_IO_OK && t.in.len && t.in.p[0] == XP_ERROR, "oversized frame: %s", xp_io_name(io));
    io = xp_read_frame(t.from_fd, &t.in, 5000);
    CHECK(io == XP_IO_EOF, "server did not exit after an oversized frame: %s", xp_io_name(io));

    free(res);
    xp_buf_free(&m);
    xp_target_stop(&t);

    /* Targets that misbehave are reported, never waited on forever. */
    struct {
        const char *cmd, *want;
    } broken[] = {
        {"sleep 5", "hang"},
        {"exit 3", "exited with status 3"},
        {"printf 'garbage!'", "frame too large"},
        {"printf '\\001\\000\\000\\000\\177'", "expected HELLO_OK"},
    };
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        struct xp_target b;
        bool started = xp_target_start(&b, broken[i].cmd, 500);
        CHECK(!started && strstr(b.err, broken[i].want), "target '%s': started %d, error '%s' (want '%s')", broken[i].cmd,
              started, b.err, broken[i].want);
        xp_target_stop(&b);
    }
    if (!failures) puts("protocol tests passed");
    return failures ? 1 : 0;
}
