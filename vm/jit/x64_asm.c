#include "x64_asm.h"

#include <stdlib.h>
#include <string.h>

#include "pages.h"

void x64_asm_init(struct x64_asm *a, size_t limit)
{
    memset(a, 0, sizeof *a);
    a->limit = limit;
}

void x64_asm_free(struct x64_asm *a)
{
    pages_free(a->buf, a->cap);
    pages_free(a->labels, a->label_cap * sizeof *a->labels);
    pages_free(a->fixups, a->fixup_cap * sizeof *a->fixups);
    memset(a, 0, sizeof *a);
}

/* Element-counted growth of a pages_grow array. */
static bool grow(void **p, size_t *cap, size_t need, size_t elem, size_t prefault)
{
    if (need <= *cap) return true;
    size_t bytes = *cap * elem;
    if (!pages_grow(p, &bytes, need * elem, prefault * elem)) return false;
    *cap = bytes / elem;
    return true;
}

bool x64_asm_reserve_slow(struct x64_asm *a, size_t n)
{
    if (a->failed) return false;
    if (a->len + n > a->limit || !grow((void **)&a->buf, &a->cap, a->len + n, 1, 0)) {
        a->failed = true;
        return false;
    }
    return true;
}

bool x64_asm_presize(struct x64_asm *a, size_t code, size_t labels, size_t fixups)
{
    if (a->failed) return false;
    if (!grow((void **)&a->buf, &a->cap, code, 1, code) ||
        !grow((void **)&a->labels, &a->label_cap, labels, sizeof *a->labels, labels) ||
        !grow((void **)&a->fixups, &a->fixup_cap, fixups, sizeof *a->fixups, fixups)) {
        a->failed = true;
        return false;
    }
    return true;
}

uint32_t x64_label_new_slow(struct x64_asm *a)
{
    if (a->failed || a->nlabels >= UINT32_MAX - 1 ||
        !grow((void **)&a->labels, &a->label_cap, a->nlabels + 1, sizeof *a->labels, 0)) {
        a->failed = true;
        return 0;
    }
    a->labels[a->nlabels] = X64_UNBOUND;
    return (uint32_t)a->nlabels++;
}

void x64_add_fixup_slow(struct x64_asm *a, struct x64_fixup f)
{
    if (a->failed) return;
    if (!grow((void **)&a->fixups, &a->fixup_cap, a->nfixups + 1, sizeof *a->fixups, 0)) {
        a->failed = true;
        return;
    }
    a->fixups[a->nfixups++] = f;
}

bool x64_asm_finish(struct x64_asm *a)
{
    if (a->failed) return false;
    for (size_t i = 0; i < a->nfixups; i++) {
        const struct x64_fixup *f = &a->fixups[i];
        uint32_t target = a->labels[f->label];
        if (target == X64_UNBOUND) return false;
        int64_t v = f->kind == FIX_REL32 ? (int64_t)target - ((int64_t)f->at + 4) : (int64_t)target - f->base;
        if (v < INT32_MIN || v > INT32_MAX) return false;
        int32_t v32 = (int32_t)v;
        memcpy(a->buf + f->at, &v32, 4);
    }
    return true;
}
