/* The external-target protocol's codec and framing (PROTOCOL.md). */
#include "proto.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- output buffer ---------------------------------------------------------- */

void xp_buf_reset(struct xp_buf *b)
{
    b->len = 0;
    b->oom = false;
}

void xp_buf_free(struct xp_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

static bool reserve(struct xp_buf *b, size_t n)
{
    if (b->oom) return false;
    if (n > XP_MAX_FRAME + 8u || b->len > XP_MAX_FRAME + 8u - n) {
        b->oom = true;
        return false;
    }
    if (b->len + n <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void xp_put_bytes(struct xp_buf *b, const void *p, size_t n)
{
    if (!n || !reserve(b, n)) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void xp_put_u8(struct xp_buf *b, uint8_t v) { xp_put_bytes(b, &v, 1); }

void xp_put_u32(struct xp_buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    xp_put_bytes(b, x, 4);
}

void xp_put_u64(struct xp_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    xp_put_bytes(b, x, 8);
}

void xp_put_str(struct xp_buf *b, const char *s)
{
    size_t n = 0;
    while (n < XP_MAX_STRING && s[n]) n++;
    xp_put_u32(b, (uint32_t)n);
    xp_put_bytes(b, s, n);
}

/* ---- input cursor ---------------------------------------------------------- */

void xp_rd_init(struct xp_rd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err[0] = 0;
}

bool xp_rd_fail(struct xp_rd *r, const char *fmt, ...)
{
    if (r->err[0]) return false;
    char msg[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(r->err, sizeof r->err, "at byte %zu: %s", r->off, msg);
    return false;
}

static bool take(struct xp_rd *r, const char *what, size_t n, const uint8_t **out)
{
    if (r->err[0]) return false;
    if (n > r->len - r->off) return xp_rd_fail(r, "%s: truncated (%zu bytes needed, %zu left)", what, n, r->len - r->off);
    *out = r->p + r->off;
    r->off += n;
    return true;
}

bool xp_get_u8(struct xp_rd *r, const char *what, uint8_t *v)
{
    const uint8_t *p = NULL;
    if (!take(r, what, 1, &p)) return false;
    *v = p[0];
    return true;
}

bool xp_get_u32(struct xp_rd *r, const char *what, uint32_t *v)
{
    const uint8_t *p = NULL;
    if (!take(r, what, 4, &p)) return false;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return true;
}

bool xp_get_u64(struct xp_rd *r, const char *what, uint64_t *v)
{
    const uint8_t *p = NULL;
    if (!take(r, what, 8, &p)) return false;
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) x = x << 8 | p[i];
    *v = x;
    return true;
}

bool xp_get_str(struct xp_rd *r, const char *what, char *out, size_t cap)
{
    uint32_t n;
    const uint8_t *p = NULL;
    if (!xp_get_u32(r, what, &n)) return false;
    if (n > XP_MAX_STRING) return xp_rd_fail(r, "%s: %u bytes long (limit %u)", what, n, XP_MAX_STRING);
    if (!take(r, what, n, &p)) return false;
    size_t k = n < cap - 1 ? n : cap - 1;
    for (size_t i = 0; i < k; i++) out[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? (char)p[i] : '?';
    out[k] = 0;
    return true;
}

bool xp_rd_end(struct xp_rd *r)
{
    if (r->err[0]) return false;
    if (r->off != r->len) return xp_rd_fail(r, "%zu trailing bytes", r->len - r->off);
    return true;
}

/* ---- messages -------------------------------------------------------------- */

void xp_encode_hello(struct xp_buf *b)
{
    xp_put_u8(b, XP_HELLO);
    xp_put_u32(b, XP_VERSION);
}

void xp_encode_hello_ok(struct xp_buf *b, const struct xp_hello *h)
{
    xp_put_u8(b, XP_HELLO_OK);
    xp_put_u32(b, h->version);
    xp_put_str(b, h->name);
    xp_put_str(b, h->impl_version);
    xp_put_u32(b, h->features);
    xp_put_u64(b, h->max_gas);
}

bool xp_decode_hello_ok(struct xp_rd *r, struct xp_hello *h)
{
    uint8_t type;
    memset(h, 0, sizeof *h);
    if (!xp_get_u8(r, "type", &type)) return false;
    if (type != XP_HELLO_OK) return xp_rd_fail(r, "expected HELLO_OK (0x81), got 0x%02x", type);
    if (!xp_get_u32(r, "version", &h->version) || !xp_get_str(r, "name", h->name, sizeof h->name) ||
        !xp_get_str(r, "impl_version", h->impl_version, sizeof h->impl_version) ||
        !xp_get_u32(r, "features", &h->features) || !xp_get_u64(r, "max_gas", &h->max_gas))
        return false;
    if (h->version != XP_VERSION) return xp_rd_fail(r, "protocol version %u, expected %u", h->version, XP_VERSION);
    return xp_rd_end(r);
}

void xp_encode_error(struct xp_buf *b, const char *msg)
{
    xp_put_u8(b, XP_ERROR);
    xp_put_str(b, msg);
}

void xp_encode_batch(struct xp_buf *b, uint8_t type, uint32_t count)
{
    xp_put_u8(b, type);
    xp_put_u32(b, count);
}

/* pc, gas and registers: the machine state both a case and a result carry. */
static void put_state(struct xp_buf *b, uint32_t pc, int64_t gas, const uint64_t *regs)
{
    xp_put_u32(b, pc);
    xp_put_u64(b, (uint64_t)gas);
    for (unsigned i = 0; i < XP_NREGS; i++) xp_put_u64(b, regs[i]);
}

void xp_encode_case(struct xp_buf *b, const struct xp_case *c)
{
    xp_put_u8(b, c->semantics);
    xp_put_u8(b, c->format);
    put_state(b, c->pc, c->gas, c->regs);
    xp_put_u32(b, c->program_len);
    xp_put_bytes(b, c->program, c->program_len);
    xp_put_u32(b, c->npages);
    for (uint32_t i = 0; i < c->npages; i++) {
        const struct xp_page *p = &c->pages[i];
        xp_put_u32(b, p->address);
        xp_put_u32(b, p->length);
        xp_put_u8(b, p->access);
        xp_put_u32(b, p->data_len);
        xp_put_bytes(b, p->data, p->data_len);
    }
    xp_put_u32(b, c->nreplies);
    for (uint32_t k = 0; k < c->nreplies; k++)
        for (unsigned i = 0; i < XP_NREGS; i++) xp_put_u64(b, c->replies[k][i]);
}

bool xp_decode_case(struct xp_rd *r, struct xp_case *c)
{
    uint64_t gas;
    const uint8_t *p = NULL;
    memset(c, 0, sizeof *c);
    if (!xp_get_u8(r, "semantics", &c->semantics) || !xp_get_u8(r, "format", &c->format) ||
        !xp_get_u32(r, "pc", &c->pc) || !xp_get_u64(r, "gas", &gas))
        return false;
    c->gas = (int64_t)gas;
    if (c->semantics > XP_SEM_POLKAVM) return xp_rd_fail(r, "semantics %u unknown", c->semantics);
    if (c->format > XP_FMT_POLKAVM) return xp_rd_fail(r, "format %u unknown", c->format);
    for (unsigned i = 0; i < XP_NREGS; i++)
        if (!xp_get_u64(r, "regs", &c->regs[i])) return false;
    if (!xp_get_u32(r, "program_len", &c->program_len)) return false;
    if (c->program_len > XP_MAX_PROGRAM)
        return xp_rd_fail(r, "program_len %u over the limit %u", c->program_len, XP_MAX_PROGRAM);
    if (!take(r, "program", c->program_len, &p)) return false;
    c->program = p;
    if (!xp_get_u32(r, "npages", &c->npages)) return false;
    if (c->npages > XP_MAX_PAGES) return xp_rd_fail(r, "npages %u over the limit %u", c->npages, XP_MAX_PAGES);
    uint64_t mapped = 0;
    for (uint32_t i = 0; i < c->npages; i++) {
        struct xp_page *pg = &c->pages[i];
        if (!xp_get_u32(r, "page.address", &pg->address) || !xp_get_u32(r, "page.length", &pg->length) ||
            !xp_get_u8(r, "page.access", &pg->access) || !xp_get_u32(r, "page.data_len", &pg->data_len))
            return false;
        if (pg->address % XP_PAGE || pg->length % XP_PAGE || !pg->length)
            return xp_rd_fail(r, "page %u: 0x%x+0x%x not whole pages", i, pg->address, pg->length);
        if ((uint64_t)pg->address + pg->length > (1ull << 32))
            return xp_rd_fail(r, "page %u: 0x%x+0x%x wraps around", i, pg->address, pg->length);
        if (pg->access != XP_READ && pg->access != XP_WRITE) return xp_rd_fail(r, "page %u: access %u unknown", i, pg->access);
        if (pg->data_len > pg->length) return xp_rd_fail(r, "page %u: %u data bytes for %u", i, pg->data_len, pg->length);
        mapped += pg->length;
        if (mapped > XP_MAX_MAPPED) return xp_rd_fail(r, "more than %u bytes mapped", XP_MAX_MAPPED);
        for (uint32_t j = 0; j < i; j++) {
            const struct xp_page *q = &c->pages[j];
            if (pg->address < (uint64_t)q->address + q->length && q->address < (uint64_t)pg->address + pg->length)
                return xp_rd_fail(r, "page %u overlaps page %u", i, j);
        }
        if (!take(r, "page.data", pg->data_len, &p)) return false;
        pg->data = p;
    }
    if (!xp_get_u32(r, "nreplies", &c->nreplies)) return false;
    if (c->nreplies > XP_MAX_REPLIES) return xp_rd_fail(r, "nreplies %u over the limit %u", c->nreplies, XP_MAX_REPLIES);
    for (uint32_t k = 0; k < c->nreplies; k++)
        for (unsigned i = 0; i < XP_NREGS; i++)
            if (!xp_get_u64(r, "replies", &c->replies[k][i])) return false;
    return true;
}

void xp_encode_result(struct xp_buf *b, const struct xp_result *res)
{
    xp_put_u8(b, res->status);
    put_state(b, res->pc, res->gas, res->regs);
    xp_put_u32(b, res->exit_arg);
    xp_put_u32(b, res->ndumps);
    for (uint32_t i = 0; i < res->ndumps; i++) {
        xp_put_u32(b, res->dumps[i].address);
        xp_put_bytes(b, res->dumps[i].data, XP_PAGE);
    }
}

static bool in_writable(const struct xp_case *c, uint32_t address)
{
    for (uint32_t i = 0; i < c->npages; i++)
        if (c->pages[i].access == XP_WRITE && address >= c->pages[i].address &&
            address - c->pages[i].address < c->pages[i].length)
            return true;
    return false;
}

bool xp_decode_result(struct xp_rd *r, const struct xp_case *case_, struct xp_result *res)
{
    uint64_t gas;
    const uint8_t *p = NULL;
    res->ndumps = 0;
    if (!xp_get_u8(r, "status", &res->status) || !xp_get_u32(r, "pc", &res->pc) || !xp_get_u64(r, "gas", &gas))
        return false;
    res->gas = (int64_t)gas;
    if (res->status >= XP_STATUS_COUNT) return xp_rd_fail(r, "status %u unknown", res->status);
    for (unsigned i = 0; i < XP_NREGS; i++)
        if (!xp_get_u64(r, "regs", &res->regs[i])) return false;
    uint32_t n;
    if (!xp_get_u32(r, "exit_arg", &res->exit_arg) || !xp_get_u32(r, "ndumps", &n)) return false;
    if (n > XP_MAX_MAPPED / XP_PAGE) return xp_rd_fail(r, "ndumps %u over the limit", n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t a;
        if (!xp_get_u32(r, "dump.address", &a)) return false;
        if (a % XP_PAGE) return xp_rd_fail(r, "dump %u: address 0x%x not page-aligned", i, a);
        if (i && a <= res->dumps[i - 1].address) return xp_rd_fail(r, "dump %u: addresses not ascending", i);
        if (case_ && !in_writable(case_, a)) return xp_rd_fail(r, "dump %u: 0x%x is not in a writable range", i, a);
        if (!take(r, "dump.data", XP_PAGE, &p)) return false;
        res->dumps[i] = (struct xp_dump){a, p};
    }
    res->ndumps = n;
    return true;
}

/* ---- framing ----------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum xp_io read_full(int fd, uint8_t *p, size_t n, int64_t deadline)
{
    size_t got = 0;
    while (got < n) {
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0) return XP_IO_TIMEOUT;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int rc = poll(&pfd, 1, (int)(left > 1000000 ? 1000000 : left));
            if (rc < 0 && errno == EINTR) continue;
            if (rc < 0) return XP_IO_ERROR;
            if (rc == 0) return XP_IO_TIMEOUT;
        }
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return XP_IO_ERROR;
        if (k == 0) return got ? XP_IO_ERROR : XP_IO_EOF;
        got += (size_t)k;
    }
    return XP_IO_OK;
}

enum xp_io xp_read_frame(int fd, struct xp_buf *in, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    uint8_t hdr[4];
    xp_buf_reset(in);
    enum xp_io io = read_full(fd, hdr, 4, deadline);
    if (io != XP_IO_OK) return io;
    uint32_t n = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 24;
    if (n > XP_MAX_FRAME) return XP_IO_TOO_BIG;
    if (!reserve(in, n ? n : 1)) return XP_IO_ERROR;
    io = read_full(fd, in->p, n, deadline);
    if (io == XP_IO_EOF) io = XP_IO_ERROR; /* EOF inside a frame */
    if (io == XP_IO_OK) in->len = n;
    return io;
}

enum xp_io xp_write_frame(int fd, const struct xp_buf *payload)
{
    if (payload->oom || payload->len > XP_MAX_FRAME) return XP_IO_TOO_BIG;
    uint8_t hdr[4];
    uint32_t n = (uint32_t)payload->len;
    for (int i = 0; i < 4; i++) hdr[i] = (uint8_t)(n >> (8 * i));
    const uint8_t *parts[2] = {hdr, payload->p};
    size_t lens[2] = {4, n};
    for (int k = 0; k < 2; k++) {
        size_t off = 0;
        while (off < lens[k]) {
            ssize_t w = write(fd, parts[k] + off, lens[k] - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return XP_IO_ERROR;
            off += (size_t)w;
        }
    }
    return XP_IO_OK;
}

const char *xp_io_name(enum xp_io io)
{
    switch (io) {
    case XP_IO_OK: return "ok";
    case XP_IO_EOF: return "end of stream";
    case XP_IO_TIMEOUT: return "deadline passed";
    case XP_IO_TOO_BIG: return "frame too large";
    case XP_IO_ERROR: return "read/write error or truncated frame";
    }
    return "?";
}

const char *xp_status_name(uint8_t status)
{
    static const char *const names[XP_STATUS_COUNT] = {"halt", "panic", "page-fault", "host", "out-of-gas",
                                                       "invalid-program", "crash"};
    return status < XP_STATUS_COUNT ? names[status] : "?";
}
