/* A growing code buffer with labels and fixups. Errors are sticky: after the
 * first failure every emit is a no-op, checked once at the end. */
#ifndef CPVM_X64_ASM_H
#define CPVM_X64_ASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x64_enc.h"

#define X64_UNBOUND UINT32_MAX

enum x64_fixup_kind {
    FIX_REL32,  /* rel32 of a jump/call/rip-relative operand ending 4 bytes after `at` */
    FIX_TABLE,  /* int32 at `at` = label offset - `base` (jump table entries) */
};

struct x64_fixup {
    uint32_t at, label, base;
    uint8_t kind;
};

struct x64_asm {
    uint8_t *buf;
    size_t len, cap, limit;
    uint32_t *labels; /* label -> offset, X64_UNBOUND until bound */
    size_t nlabels, label_cap;
    struct x64_fixup *fixups;
    size_t nfixups, fixup_cap;
    bool failed;
    uint8_t scratch[64]; /* where emits land after a failure */
};

void x64_asm_init(struct x64_asm *a, size_t limit);
void x64_asm_free(struct x64_asm *a);
/* Makes room for `n` more bytes; false (and sticky failure) past the limit or out of memory. */
bool x64_asm_reserve_slow(struct x64_asm *a, size_t n);
static inline bool x64_asm_reserve(struct x64_asm *a, size_t n)
{
    if (__builtin_expect(!a->failed && a->len + n <= a->cap && a->len + n <= a->limit, 1)) return true;
    return x64_asm_reserve_slow(a, n);
}
/* Where the next instruction goes (at least 64 writable bytes after reserve). */
static inline uint8_t *x64_cur(struct x64_asm *a) { return a->failed ? a->scratch : a->buf + a->len; }
static inline void x64_advance(struct x64_asm *a, unsigned n)
{
    if (!a->failed) a->len += n;
}

/* Sizes the buffers for the expected output up front (no growth copies); the
 * code buffer's pages are populated at once. False if out of memory. */
bool x64_asm_presize(struct x64_asm *a, size_t code, size_t labels, size_t fixups);

/* The slow paths: growth and failure. */
uint32_t x64_label_new_slow(struct x64_asm *a);
void x64_add_fixup_slow(struct x64_asm *a, struct x64_fixup f);

static inline uint32_t x64_label_new(struct x64_asm *a)
{
    if (__builtin_expect(!a->failed && a->nlabels < a->label_cap && a->nlabels < UINT32_MAX - 1, 1)) {
        a->labels[a->nlabels] = X64_UNBOUND;
        return (uint32_t)a->nlabels++;
    }
    return x64_label_new_slow(a);
}
static inline void x64_label_bind(struct x64_asm *a, uint32_t label)
{
    if (!a->failed) a->labels[label] = (uint32_t)a->len;
}
/* Binds `label` to an offset already emitted. */
static inline void x64_label_bind_at(struct x64_asm *a, uint32_t label, uint32_t offset)
{
    if (!a->failed) a->labels[label] = offset;
}
static inline void x64_add_fixup(struct x64_asm *a, struct x64_fixup f)
{
    if (__builtin_expect(!a->failed && a->nfixups < a->fixup_cap, 1)) a->fixups[a->nfixups++] = f;
    else x64_add_fixup_slow(a, f);
}
/* Records that the 4 bytes ending at the current position refer to `label`. */
static inline void x64_fixup_rel32(struct x64_asm *a, uint32_t label)
{
    x64_add_fixup(a, (struct x64_fixup){.at = (uint32_t)a->len - 4, .label = label, .kind = FIX_REL32});
}
static inline void x64_fixup_table(struct x64_asm *a, uint32_t at, uint32_t label, uint32_t base)
{
    x64_add_fixup(a, (struct x64_fixup){.at = at, .label = label, .base = base, .kind = FIX_TABLE});
}

/* jmp/jcc/call/lea-rip to a label (rel32, patched by finish). */
static inline void x64_jmp_label(struct x64_asm *a, uint32_t label)
{
    x64_advance(a, x64_jmp_rel32(x64_cur(a), 0));
    x64_fixup_rel32(a, label);
}
static inline void x64_jcc_label(struct x64_asm *a, enum x64_cc cc, uint32_t label)
{
    x64_advance(a, x64_jcc_rel32(x64_cur(a), cc, 0));
    x64_fixup_rel32(a, label);
}
static inline void x64_lea_label(struct x64_asm *a, enum x64_reg dst, uint32_t label)
{
    x64_advance(a, x64_lea(x64_cur(a), 8, dst, x64_mem_rip(0)));
    x64_fixup_rel32(a, label);
}

/* Patches every fixup; false if a label is unbound or the buffer failed. */
bool x64_asm_finish(struct x64_asm *a);

#endif
