/* Building cases from the generator and comparing results. */
#include "diff.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const l64_names[256] = {
#define ISA(name, cls, jam, l64, l32, rv, tmpl, flags) [(l64) < 0 ? 255 : (l64)] = #name,
#include "isa/isa.def"
#undef ISA
};

const char *xp_insn_name(const uint8_t *code, size_t code_len, uint32_t pc)
{
    if (pc >= code_len) return "end-of-code";
    const char *n = l64_names[code[pc]];
    return n && code[pc] != 255 ? n : "invalid";
}

void xp_gen_free(struct xp_gen *x)
{
    if (x->prog) cpvm_program_free(x->prog); /* borrows the generator's blob */
    gen_program_free(&x->g);
    free(x->raw);
    memset(x, 0, sizeof *x);
}

static void add_page(struct xp_case *c, uint32_t address, uint32_t size, uint8_t access, struct cpvm_bytes data)
{
    uint32_t len = (uint32_t)(((uint64_t)size + XP_PAGE - 1) / XP_PAGE * XP_PAGE);
    if (!len || c->npages >= XP_MAX_PAGES) return;
    struct xp_page *p = &c->pages[c->npages++];
    p->address = address;
    p->length = len;
    p->access = access;
    p->data = data.ptr;
    p->data_len = (uint32_t)(data.len < len ? data.len : len);
}

bool xp_gen_case(const uint8_t *in, size_t len, int semantics, int64_t max_gas, struct xp_gen *x, char *err,
                 size_t errcap)
{
    memset(x, 0, sizeof *x);
    struct gen_config gp_cfg = GEN_CONFIG_DIFF_EXTERNAL_GP, pvm_cfg = GEN_CONFIG_DIFF_EXTERNAL_POLKAVM;
    bool gp = semantics == XP_SEM_GP;
    cpvm_status st = gen_from_bytes(in, len, gp ? &gp_cfg : &pvm_cfg, &x->g);
    struct cpvm_error e;
    memset(&e, 0, sizeof e);
    if (st == CPVM_OK) st = cpvm_program_parse(x->g.blob, x->g.blob_len, CPVM_PARSE_BORROW, &x->prog, &e);
    if (st != CPVM_OK) {
        snprintf(err, errcap, "generator: %s", cpvm_status_message(st));
        xp_gen_free(x);
        return false;
    }
    struct cpvm_program_info info;
    cpvm_program_get_info(x->prog, &info);
    const struct cpvm_memory_map *m = &x->g.map;
    struct xp_case *c = &x->c;
    c->semantics = (uint8_t)semantics;
    c->pc = x->g.entry_pc;
    c->gas = x->g.gas < max_gas ? x->g.gas : max_gas;
    c->regs[CPVM_REG_RA] = 0xFFFF0000u;
    c->regs[CPVM_REG_SP] = m->stack_address_high;
    /* v2 host-call policy: the first XP_GEN_REPLIES ecallis resume with the
     * case's starting registers but a0/a1 drawn from the input (a host's
     * answer), so code after an ecalli runs too. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ in[i]) * 0x100000001b3ull;
    c->nreplies = XP_GEN_REPLIES;
    for (uint32_t k = 0; k < XP_GEN_REPLIES; k++) {
        memcpy(c->replies[k], c->regs, sizeof c->regs);
        h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ull;
        c->replies[k][CPVM_REG_A0] = k ? h : h & 0xff; /* a small value and wide ones */
        c->replies[k][CPVM_REG_A1] = h >> 32;
    }
    struct cpvm_bytes none = {NULL, 0};
    if (gp) {
        const uint8_t *base = info.code_section.ptr;
        if (!base || info.code.ptr < base || info.code.ptr + info.code.len > base + info.code_section.len ||
            info.bitmask.ptr < base || info.bitmask.ptr + info.bitmask.len > base + info.code_section.len) {
            snprintf(err, errcap, "code section layout unexpected");
            xp_gen_free(x);
            return false;
        }
        x->raw = malloc(info.code_section.len ? info.code_section.len : 1);
        if (!x->raw) {
            snprintf(err, errcap, "out of memory");
            xp_gen_free(x);
            return false;
        }
        memcpy(x->raw, base, info.code_section.len);
        x->raw_len = info.code_section.len;
        uint8_t *code = x->raw + (info.code.ptr - base);
        const uint8_t *mask = info.bitmask.ptr;
        /* memset (2) and unlikely (3) have no GP opcode: both sides see trap.
         * sbrk (101) has no agreed meaning without a heap (PROFILES.md): it
         * becomes move_reg (100), same operands, so the prologue's heap
         * request is a no-op everywhere. */
        for (size_t i = 0; i < info.code.len; i++) {
            bool start = i / 8 < info.bitmask.len && (mask[i / 8] >> (i % 8) & 1);
            if (start && (code[i] == 2 || code[i] == 3)) code[i] = 0;
            if (start && code[i] == 101) code[i] = 100;
        }
        x->code = code;
        x->code_len = info.code.len;
        c->format = XP_FMT_GP_RAW;
        c->program = x->raw;
        c->program_len = (uint32_t)x->raw_len;
        add_page(c, m->ro_data_address, m->ro_data_size, XP_READ, info.ro_data);
        add_page(c, m->rw_data_address, m->rw_data_size, XP_WRITE, info.rw_data);
        add_page(c, m->stack_address_low, m->stack_address_high - m->stack_address_low, XP_WRITE, none);
    } else {
        x->code = info.code.ptr;
        x->code_len = info.code.len;
        c->format = XP_FMT_POLKAVM;
        c->program = x->g.blob;
        c->program_len = (uint32_t)x->g.blob_len;
        /* Reported pages only: standard memory lays the program out itself. */
        add_page(c, m->rw_data_address, m->rw_data_size, XP_WRITE, none);
        add_page(c, m->stack_address_low, m->stack_address_high - m->stack_address_low, XP_WRITE, none);
    }
    return true;
}

static bool differ(char *sig, size_t sigcap, char *detail, size_t detailcap, const char *field, const struct xp_result *a,
                   const struct xp_result *b, const char *insn, const char *fmt, ...) __attribute__((format(printf, 9, 10)));
static bool differ(char *sig, size_t sigcap, char *detail, size_t detailcap, const char *field, const struct xp_result *a,
                   const struct xp_result *b, const char *insn, const char *fmt, ...)
{
    snprintf(sig, sigcap, "%s:%s/%s:%s%s%s", field, xp_status_name(a->status), xp_status_name(b->status), insn,
             a->len_field_8_11 ? "+len8" : a->odd_encoding ? "+odd" : "", a->cross_page ? "+xpage" : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, detailcap, fmt, ap);
    va_end(ap);
    return false;
}

static bool in_readonly(const struct xp_case *c, uint32_t address)
{
    for (uint32_t i = 0; i < c->npages; i++)
        if (c->pages[i].access == XP_READ && address >= c->pages[i].address && address - c->pages[i].address < c->pages[i].length)
            return true;
    return false;
}

bool xp_compare(const struct xp_case *c, const uint8_t *code, size_t code_len, const struct xp_result *a,
                const struct xp_result *b, char *sig, size_t sigcap, char *detail, size_t detailcap)
{
    const char *insn = xp_insn_name(code, code_len, a->pc);
    /* A store to a read-only page, or one spanning a read-only page and an
     * unmapped one (PolkaVM reports the unmapped page: execution.md §3.3). */
    bool ro = in_readonly(c, a->exit_arg) || (a->cross_page && a->exit_arg >= XP_PAGE && in_readonly(c, a->exit_arg - XP_PAGE));
    if (a->status == XP_PAGE_FAULT && b->status == XP_PANIC && a->pc == b->pc && ro)
        return differ(sig, sigcap, detail, detailcap, "ro-write", a, b, insn,
                      "write to read-only page 0x%x at pc %u: cpvm page-fault, target panic", a->exit_arg, a->pc);
    if (a->status != b->status)
        return differ(sig, sigcap, detail, detailcap, "status", a, b, insn, "status: cpvm %s(0x%x) at pc %u, target %s(0x%x) at pc %u",
                      xp_status_name(a->status), a->exit_arg, a->pc, xp_status_name(b->status), b->exit_arg, b->pc);
    if (a->status == XP_INVALID_PROGRAM || a->status == XP_CRASH) return true;
    if (a->pc != b->pc)
        return differ(sig, sigcap, detail, detailcap, "pc", a, b, insn, "pc: cpvm %u, target %u (%s)", a->pc, b->pc,
                      xp_status_name(a->status));
    if (a->gas != b->gas)
        return differ(sig, sigcap, detail, detailcap, "gas", a, b, insn, "gas: cpvm %" PRId64 ", target %" PRId64, a->gas,
                      b->gas);
    for (unsigned r = 0; r < XP_NREGS; r++)
        if (a->regs[r] != b->regs[r])
            return differ(sig, sigcap, detail, detailcap, "regs", a, b, insn,
                          "r%u: cpvm 0x%" PRIx64 ", target 0x%" PRIx64, r, a->regs[r], b->regs[r]);
    if ((a->status == XP_PAGE_FAULT || a->status == XP_HOST) && a->exit_arg != b->exit_arg)
        return differ(sig, sigcap, detail, detailcap, "exit-arg", a, b, insn, "%s argument: cpvm 0x%x, target 0x%x",
                      xp_status_name(a->status), a->exit_arg, b->exit_arg);
    uint32_t n = a->ndumps > b->ndumps ? a->ndumps : b->ndumps;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t pa = i < a->ndumps ? a->dumps[i].address : UINT32_MAX, pb = i < b->ndumps ? b->dumps[i].address : UINT32_MAX;
        if (pa != pb)
            return differ(sig, sigcap, detail, detailcap, "memory", a, b, insn,
                          "page 0x%x non-zero on %s only", pa < pb ? pa : pb, pa < pb ? "cpvm" : "the target");
        for (uint32_t k = 0; k < XP_PAGE; k++)
            if (a->dumps[i].data[k] != b->dumps[i].data[k])
                return differ(sig, sigcap, detail, detailcap, "memory", a, b, insn, "byte 0x%x: cpvm 0x%02x, target 0x%02x",
                              pa + k, a->dumps[i].data[k], b->dumps[i].data[k]);
    }
    return true;
}
