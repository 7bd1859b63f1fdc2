#include "writer.h"

#include <stdlib.h>
#include <string.h>

#include "../common/bits.h"
#include "../common/error.h"
#include "../common/limits.h"

unsigned writer_varint(uint32_t v, uint8_t out[5])
{
    unsigned bits = v ? 32u - (unsigned)__builtin_clz(v) : 0;
    unsigned L = bits <= 7 ? 0 : bits <= 14 ? 1 : bits <= 21 ? 2 : bits <= 28 ? 3 : 4;
    if (L == 4) {
        out[0] = 0xf0;
        wr_le32(out + 1, v);
        return 5;
    }
    out[0] = (uint8_t)(((0xffu << (8 - L)) & 0xffu) | (v >> (8 * L)));
    for (unsigned i = 0; i < L; i++) out[1 + i] = (uint8_t)(v >> (8 * i));
    return 1 + L;
}

struct buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->oom || n == 0) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u8(struct buf *b, uint8_t v) { put(b, &v, 1); }

static void put_varint(struct buf *b, uint32_t v)
{
    uint8_t tmp[5];
    put(b, tmp, writer_varint(v, tmp));
}

static void put_section(struct buf *b, uint8_t id, const struct buf *payload)
{
    put_u8(b, id);
    put_varint(b, (uint32_t)payload->len);
    put(b, payload->p, payload->len);
}

static cpvm_status code_section(const struct writer_parts *w, struct buf *s, struct cpvm_error *err)
{
    unsigned size = w->jump_table_entry_size;
    if (size > 4) return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "jump table entry size %u > 4", size);
    if (size == 0) {
        for (size_t i = 0; i < w->jump_table_count; i++) {
            uint32_t v = w->jump_table[i];
            unsigned need = v > 0xffffff ? 4 : v > 0xffff ? 3 : v > 0xff ? 2 : 1;
            if (need > size) size = need;
        }
    }
    if (w->jump_table_count > LIMIT_JUMP_TABLE || w->code_len > LIMIT_CODE_SIZE)
        return cpvm_fail(err, CPVM_E_LIMIT, 0, "jump table or code too large");
    put_varint(s, (uint32_t)w->jump_table_count);
    put_u8(s, (uint8_t)size);
    put_varint(s, (uint32_t)w->code_len);
    for (size_t i = 0; i < w->jump_table_count; i++) {
        uint8_t e[4];
        wr_le32(e, w->jump_table[i]);
        if (size < 4 && (w->jump_table[i] >> (8 * size)))
            return cpvm_fail(err, CPVM_E_ASM_RANGE, i, "jump table entry %zu (%u) does not fit %u byte(s)", i,
                             w->jump_table[i], size);
        put(s, e, size);
    }
    put(s, w->code, w->code_len);
    put(s, w->bitmask, (w->code_len + 7) / 8);
    return CPVM_OK;
}

static void symbols(struct buf *s, const struct writer_symbol *syms, size_t n, bool exports)
{
    put_varint(s, (uint32_t)n);
    if (exports) {
        for (size_t i = 0; i < n; i++) {
            put_varint(s, syms[i].pc);
            put_varint(s, (uint32_t)syms[i].name_len);
            put(s, syms[i].name, syms[i].name_len);
        }
        return;
    }
    uint32_t at = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t o[4];
        wr_le32(o, at);
        put(s, o, 4);
        at += (uint32_t)syms[i].name_len;
    }
    for (size_t i = 0; i < n; i++) put(s, syms[i].name, syms[i].name_len);
}

cpvm_status writer_build(const struct writer_parts *w, bool raw, uint8_t **out, size_t *out_len,
                         struct cpvm_error *err)
{
    *out = NULL;
    *out_len = 0;
    struct buf code = {0}, b = {0}, s = {0};
    cpvm_status st = code_section(w, &code, err);
    if (st) goto done;
    if (raw) {
        b = code;
        code = (struct buf){0};
        goto finish;
    }
    if (w->import_count > LIMIT_IMPORTS) {
        st = cpvm_fail(err, CPVM_E_LIMIT, 0, "%zu imports, limit is %u", w->import_count, LIMIT_IMPORTS);
        goto done;
    }
    static const uint8_t magic[4] = {'P', 'V', 'M', 0};
    put(&b, magic, 4);
    put_u8(&b, (uint8_t)w->isa);
    put(&b, (uint8_t[8]){0}, 8); /* patched below */
    if (w->ro_data_size || w->rw_data_size || w->stack_size) {
        put_varint(&s, w->ro_data_size);
        put_varint(&s, w->rw_data_size);
        put_varint(&s, w->stack_size);
        put_section(&b, 1, &s);
        s.len = 0;
    }
    if (w->ro_data_len) {
        put_u8(&b, 2);
        put_varint(&b, (uint32_t)w->ro_data_len);
        put(&b, w->ro_data, w->ro_data_len);
    }
    if (w->rw_data_len) {
        put_u8(&b, 3);
        put_varint(&b, (uint32_t)w->rw_data_len);
        put(&b, w->rw_data, w->rw_data_len);
    }
    if (w->import_count) {
        symbols(&s, w->imports, w->import_count, false);
        put_section(&b, 4, &s);
        s.len = 0;
    }
    if (w->export_count) {
        symbols(&s, w->exports, w->export_count, true);
        put_section(&b, 5, &s);
        s.len = 0;
    }
    put_section(&b, 6, &code);
    put_u8(&b, 0);
    if (!b.oom) wr_le64(b.p + 5, (uint64_t)b.len);
finish:
    if (b.oom || code.oom || s.oom) {
        st = cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory writing the program");
        goto done;
    }
    *out = b.p;
    *out_len = b.len;
    b.p = NULL;
done:
    free(b.p);
    free(code.p);
    free(s.p);
    return st;
}
