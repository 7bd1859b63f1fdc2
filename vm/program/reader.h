/* The only code that reads untrusted bytes: a cursor over a slice that knows its
 * absolute offset, so every error can say where it happened. */
#ifndef CPVM_PROGRAM_READER_H
#define CPVM_PROGRAM_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

struct reader {
    const uint8_t *data;
    size_t len;
    size_t pos;
    size_t origin; /* absolute offset of data[0] in the parsed input */
    struct cpvm_error *err;
};

static inline size_t reader_offset(const struct reader *r) { return r->origin + r->pos; }
static inline size_t reader_left(const struct reader *r) { return r->len - r->pos; }

static inline cpvm_status reader_truncated(struct reader *r, const char *what, size_t need)
{
    return cpvm_fail(r->err, CPVM_E_TRUNCATED, reader_offset(r),
                     "unexpected end of input reading %s: need %zu byte(s), %zu left", what, need,
                     reader_left(r));
}

static inline cpvm_status reader_u8(struct reader *r, const char *what, uint8_t *out)
{
    *out = 0;
    if (reader_left(r) < 1) return reader_truncated(r, what, 1);
    *out = r->data[r->pos++];
    return CPVM_OK;
}

/* Borrows `n` bytes without copying.
 * SECURITY: the one bounds check every untrusted length goes through. */
static inline cpvm_status reader_bytes(struct reader *r, const char *what, size_t n, const uint8_t **out)
{
    *out = NULL;
    if (reader_left(r) < n) return reader_truncated(r, what, n);
    *out = r->data + r->pos;
    r->pos += n;
    return CPVM_OK;
}

/* A sub-reader over the next `n` bytes (the parent skips them). */
static inline cpvm_status reader_slice(struct reader *r, const char *what, size_t n, struct reader *sub)
{
    const uint8_t *p;
    size_t at = reader_offset(r);
    cpvm_status s = reader_bytes(r, what, n, &p);
    if (s) return s;
    *sub = (struct reader){.data = p, .len = n, .pos = 0, .origin = at, .err = r->err};
    return CPVM_OK;
}

/* PolkaVM varint (blob-format.md §2.2), including its accepted quirks:
 * non-canonical forms decode, and the 5-byte form ORs the first byte's low
 * bits into bit 0..2 of the value. */
cpvm_status reader_varint(struct reader *r, const char *what, uint32_t *out);

#endif
