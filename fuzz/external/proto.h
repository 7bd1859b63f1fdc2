/* The external-target protocol, version 1 (PROTOCOL.md): framed binary
 * messages between a driver and a PVM behind an adapter. Every decoder here
 * reads untrusted bytes: bounds come from the XP_MAX_* limits, never from the
 * input, and a bad message yields a message naming the field and offset. */
#ifndef CPVM_FUZZ_EXTERNAL_PROTO_H
#define CPVM_FUZZ_EXTERNAL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XP_VERSION 2u
#define XP_PAGE 4096u
#define XP_NREGS 13u
#define XP_MAX_FRAME (64u << 20)   /* payload bytes of one frame */
#define XP_MAX_BATCH 4096u         /* cases in one RUN */
#define XP_MAX_PAGES 64u           /* page ranges in one case */
#define XP_MAX_MAPPED (16u << 20)  /* bytes mapped by one case, all ranges together */
#define XP_MAX_PROGRAM (4u << 20)  /* program bytes in one case */
#define XP_MAX_STRING 1024u
#define XP_MAX_REPLIES 16u         /* host-call replies in one case (v2) */

enum xp_type {
    XP_HELLO = 0x01,
    XP_RUN = 0x02,
    XP_BYE = 0x03,
    XP_HELLO_OK = 0x81,
    XP_RESULTS = 0x82,
    XP_ERROR = 0xFF,
};

/* How the target must run a case (the semantic profile, PROFILES.md). */
enum xp_semantics { XP_SEM_GP = 0, XP_SEM_POLKAVM = 1 };
enum xp_format { XP_FMT_GP_RAW = 0, XP_FMT_POLKAVM = 1 };
enum xp_access { XP_READ = 1, XP_WRITE = 2 };
enum xp_status {
    XP_HALT = 0,
    XP_PANIC = 1,
    XP_PAGE_FAULT = 2,
    XP_HOST = 3,
    XP_OOG = 4,
    XP_INVALID_PROGRAM = 5, /* the target refused the program before running it */
    XP_CRASH = 6,           /* the implementation threw or failed an assertion while running it */
};
#define XP_STATUS_COUNT 7

/* HELLO_OK feature bits. */
enum {
    XP_F_FMT_GP_RAW = 1u << 0,
    XP_F_FMT_POLKAVM = 1u << 1,
    XP_F_SEM_GP = 1u << 2,       /* per-instruction gas, page map, GP opcodes */
    XP_F_SEM_POLKAVM = 1u << 3,  /* PolkaVM 0.35: per-block gas, program's own layout */
    XP_F_MEMORY = 1u << 4,       /* reports writable pages */
};

struct xp_hello {
    uint32_t version;
    char name[64], impl_version[64];
    uint32_t features;
    uint64_t max_gas;            /* largest initial gas it accepts (step limit) */
};

struct xp_page {
    uint32_t address, length;    /* page-aligned, length a multiple of XP_PAGE, > 0 */
    uint8_t access;              /* XP_READ or XP_WRITE (read+write) */
    const uint8_t *data;         /* initial bytes at `address` (data_len <= length) */
    uint32_t data_len;
};

struct xp_case {
    uint8_t semantics, format;
    uint32_t pc;
    int64_t gas;
    uint64_t regs[XP_NREGS];
    const uint8_t *program;      /* borrowed from the frame */
    uint32_t program_len;
    uint32_t npages;
    struct xp_page pages[XP_MAX_PAGES];
    /* v2 host-call policy: the k-th ecalli (k < nreplies) resumes after itself
     * with all registers set to replies[k]; the next one stops (status host). */
    uint32_t nreplies;
    uint64_t replies[XP_MAX_REPLIES][XP_NREGS];
};

/* One non-zero page of a writable range after the run. */
struct xp_dump {
    uint32_t address;
    const uint8_t *data;         /* XP_PAGE bytes */
};

struct xp_result {
    uint8_t status;
    uint32_t pc;
    int64_t gas;
    uint64_t regs[XP_NREGS];
    uint32_t exit_arg;           /* page-fault address or host-call index */
    bool cross_page;             /* not on the wire: cpvm ran a page-spanning load/store */
    bool odd_encoding;           /* not on the wire: cpvm ran a non-canonical encoding */
    bool len_field_8_11;         /* not on the wire: ... with an immediate-length field of 8-11 */
    uint32_t ndumps;
    struct xp_dump dumps[XP_MAX_MAPPED / XP_PAGE];
};

/* A growable output buffer; `oom` sticks once an allocation fails. */
struct xp_buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};
void xp_buf_reset(struct xp_buf *b);
void xp_buf_free(struct xp_buf *b);
void xp_put_u8(struct xp_buf *b, uint8_t v);
void xp_put_u32(struct xp_buf *b, uint32_t v);
void xp_put_u64(struct xp_buf *b, uint64_t v);
void xp_put_bytes(struct xp_buf *b, const void *p, size_t n);
void xp_put_str(struct xp_buf *b, const char *s);

/* A cursor over one received payload. The first failure is kept in `err`. */
struct xp_rd {
    const uint8_t *p;
    size_t len, off;
    char err[160];
};
void xp_rd_init(struct xp_rd *r, const uint8_t *p, size_t len);
bool xp_get_u8(struct xp_rd *r, const char *what, uint8_t *v);
bool xp_get_u32(struct xp_rd *r, const char *what, uint32_t *v);
bool xp_get_u64(struct xp_rd *r, const char *what, uint64_t *v);
bool xp_get_str(struct xp_rd *r, const char *what, char *out, size_t cap);
bool xp_rd_fail(struct xp_rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* False (with a message) when bytes are left over. */
bool xp_rd_end(struct xp_rd *r);

/* Messages (payloads without the length prefix). */
void xp_encode_hello(struct xp_buf *b);
void xp_encode_hello_ok(struct xp_buf *b, const struct xp_hello *h);
bool xp_decode_hello_ok(struct xp_rd *r, struct xp_hello *h);
void xp_encode_error(struct xp_buf *b, const char *msg);
/* RUN / RESULTS header: type + count; xp_encode_case / xp_encode_result follow. */
void xp_encode_batch(struct xp_buf *b, uint8_t type, uint32_t count);
void xp_encode_case(struct xp_buf *b, const struct xp_case *c);
bool xp_decode_case(struct xp_rd *r, struct xp_case *c);
void xp_encode_result(struct xp_buf *b, const struct xp_result *res);
/* `case_` (may be NULL) bounds the dumps to the case's writable ranges. */
bool xp_decode_result(struct xp_rd *r, const struct xp_case *case_, struct xp_result *res);

/* Framing over file descriptors: u32 little-endian payload length, payload.
 * xp_read_frame waits at most timeout_ms in total (< 0: forever). */
enum xp_io { XP_IO_OK = 0, XP_IO_EOF, XP_IO_TIMEOUT, XP_IO_TOO_BIG, XP_IO_ERROR };
enum xp_io xp_read_frame(int fd, struct xp_buf *in, int timeout_ms);
enum xp_io xp_write_frame(int fd, const struct xp_buf *payload);
const char *xp_io_name(enum xp_io io);
const char *xp_status_name(uint8_t status);

#endif
