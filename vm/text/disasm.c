/* The disassembler: fills the template column of isa.def (isa.md §11) and
 * writes whole programs as text that asm.c turns back into the same bytes.
 * The directives it prints are documented at the top of asm.c. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/error.h"
#include "../common/limits.h"
#include "../isa/isa.h"
#include "../program/program.h"
#include "text.h"

/* ---- a bounded string builder ------------------------------------------- */

struct sb {
    char *p;
    size_t len, cap;
    bool fixed; /* p is the caller's buffer of cap bytes: truncate, never grow */
    bool oom;
};

static void sb_put(struct sb *b, const char *s, size_t n)
{
    if (b->oom || n == 0) return;
    if (b->fixed) {
        size_t room = b->cap > b->len + 1 ? b->cap - b->len - 1 : 0;
        if (n > room) n = room;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = 0;
        return;
    }
    if (n >= SIZE_MAX / 2 - b->len) {
        b->oom = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(struct sb *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_fmt(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sb *b, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void sb_hex_bytes(struct sb *b, const uint8_t *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) sb_fmt(b, i ? " %02x" : "%02x", bytes[i]);
}

/* "..." with printable ASCII as is, \\ \" and \xNN otherwise (asm.c reads it back). */
static void sb_quoted(struct sb *b, const uint8_t *s, size_t n)
{
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c == '\\' || c == '"')
            sb_fmt(b, "\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            sb_put(b, (const char *)&c, 1);
        else
            sb_fmt(b, "\\x%02x", c);
    }
    sb_put(b, "\"", 1);
}

/* ---- one instruction ----------------------------------------------------- */

static bool fits_i32(uint64_t v) { return (int64_t)v == (int64_t)(int32_t)(uint32_t)v; }

/* isa.md §11: 0 as "0", anything else in hex, sign-extended to 64 bits unless
 * the ISA is 32-bit. */
static void put_imm(struct sb *b, cpvm_isa isa, int32_t v)
{
    if (v == 0)
        sb_put(b, "0", 1);
    else if (isa == CPVM_ISA_LATEST32)
        sb_fmt(b, "0x%" PRIx32, (uint32_t)v);
    else
        sb_fmt(b, "0x%" PRIx64, (uint64_t)(int64_t)v);
}

static void put_reg(struct sb *b, unsigned r, bool non_abi)
{
    if (non_abi)
        sb_fmt(b, "r%u", r);
    else
        sb_str(b, cpvm_reg_name(r));
}

/* The reference formatter's aliases (isa.md §11); asm.c accepts each of them.
 * {n} is the decimal magnitude of a negative `i`. */
static const char *alias_template(const struct dec_insn *in)
{
    switch ((enum op)in->op) {
    case OP_jump_indirect:
        return in->a == CPVM_REG_RA && in->i1 == 0 ? "ret" : NULL;
    case OP_add_imm_64:
        return in->i1 < 0 && in->i1 > -4096 ? "{A} = {B} - {n}" : NULL;
    case OP_add_imm_32:
        return in->i1 < 0 && in->i1 > -4096 ? "i32 {A} = {B} - {n}" : NULL;
    case OP_negate_and_add_imm_64:
        return in->i1 == 0 ? "{A} = -{B}" : NULL;
    case OP_negate_and_add_imm_32:
        return in->i1 == 0 ? "i32 {A} = -{B}" : NULL;
    case OP_load_imm_and_jump_indirect:
        /* The base is read before the destination is written (isa.md §7.1). */
        return in->a == in->b ? "tmp = {B}, {A} = {i1}, jump [tmp + {i2}]" : NULL;
    case OP_load_imm64:
        /* Would assemble as load_imm without the prefix. */
        return fits_i32(in->imm64) ? "{A} = i64 {W}" : NULL;
    default:
        return NULL;
    }
}

static int32_t imm_field(const struct dec_insn *in, const char *name, size_t n)
{
    return n == 2 && name[1] == '2' ? in->i2 : in->i1;
}

static void format_insn(cpvm_isa isa, const struct dec_insn *in, bool non_abi, struct sb *b)
{
    if (in->op >= OP_COUNT) {
        sb_str(b, "invalid");
        return;
    }
    const char *t = alias_template(in);
    if (!t) t = isa_rows[in->op].tmpl;
    if (isa == CPVM_ISA_LATEST32 && strncmp(t, "i32 ", 4) == 0) t += 4;
    while (*t) {
        /* "[X + {i}]" with i == 0 prints as "[X]". */
        if (strncmp(t, " + {i", 5) == 0) {
            const char *close = strchr(t + 4, '}');
            if (close && close[1] == ']' && imm_field(in, t + 4, (size_t)(close - t - 4)) == 0) {
                t = close + 1;
                continue;
            }
        }
        if (*t != '{') {
            sb_put(b, t, 1);
            t++;
            continue;
        }
        const char *name = t + 1;
        const char *close = strchr(name, '}');
        if (!close) CPVM_BUG("unterminated placeholder in template %s", isa_rows[in->op].tmpl);
        size_t n = (size_t)(close - name);
        switch (name[0]) {
        case 'A': put_reg(b, in->a, non_abi); break;
        case 'B': put_reg(b, in->b, non_abi); break;
        case 'D': put_reg(b, in->d, non_abi); break;
        case 'T': sb_fmt(b, "%" PRIu32, in->target); break;
        case 'W': sb_fmt(b, "0x%" PRIx64, in->imm64); break;
        case 'n': sb_fmt(b, "%" PRId64, -(int64_t)in->i1); break;
        case 'i':
            if (in->op == OP_ecalli)
                sb_fmt(b, "%" PRIu32, (uint32_t)in->i1);
            else
                put_imm(b, isa, imm_field(in, name, n));
            break;
        default: CPVM_BUG("unknown placeholder in template %s", isa_rows[in->op].tmpl);
        }
        t = close + 1;
    }
}

size_t text_format_insn(cpvm_isa isa, const struct dec_insn *insn, char *buf, size_t cap)
{
    if (!buf || cap == 0) return 0;
    buf[0] = 0;
    struct sb b = {.p = buf, .len = 0, .cap = cap, .fixed = true};
    format_insn(isa, insn, false, &b);
    return b.len;
}

/* ---- whole programs ------------------------------------------------------ */

#define RAW_PER_LINE 16u
#define DATA_PER_LINE 32u
#define JT_PER_LINE 16u
#define COMMENT_COLUMN 44u
#define LABEL_NAME_MAX 200u

struct export_entry {
    const uint8_t *name;
    uint32_t name_len;
    uint32_t pc;
    uint32_t index;
};

static int cmp_export_pc(const void *x, const void *y)
{
    const struct export_entry *a = x, *b = y;
    if (a->pc != b->pc) return a->pc < b->pc ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int cmp_name(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static bool is_label_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

/* Sequential walk of the exports section (cpvm_program_export() is O(index)). */
static cpvm_status read_exports(const struct cpvm_program *p, struct export_entry **out, struct cpvm_error *err)
{
    *out = NULL;
    if (p->export_count == 0) return CPVM_OK;
    struct export_entry *e = calloc(p->export_count, sizeof *e);
    if (!e) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory listing %u exports", p->export_count);
    struct reader r = {.data = p->exports, .len = p->exports_len, .pos = 0, .origin = 0, .err = NULL};
    uint32_t declared;
    if (reader_varint(&r, "export count", &declared)) CPVM_BUG("export section changed after parsing");
    for (uint32_t i = 0; i < p->export_count; i++) {
        uint32_t pc, len;
        const uint8_t *name;
        if (reader_varint(&r, "export pc", &pc) || reader_varint(&r, "export name length", &len) ||
            reader_bytes(&r, "export name", len, &name))
            CPVM_BUG("export %u no longer parses", i);
        e[i] = (struct export_entry){.name = name, .name_len = len, .pc = pc, .index = i};
    }
    *out = e;
    return CPVM_OK;
}

/* `pub @name:` labels can carry the exports only when the assembler would
 * rebuild the same list from them: it sorts label exports by name. */
static bool exports_as_labels(const struct cpvm_program *p, const struct export_entry *e, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (e[i].name_len == 0 || e[i].name_len > LABEL_NAME_MAX) return false;
        for (uint32_t k = 0; k < e[i].name_len; k++)
            if (!is_label_char(e[i].name[k])) return false;
        if (!dec_bit(p, e[i].pc)) return false;
        if (i && cmp_name(e[i - 1].name, e[i - 1].name_len, e[i].name, e[i].name_len) >= 0) return false;
    }
    return true;
}

static uint32_t next_start(const struct cpvm_program *p, uint32_t k)
{
    do k++;
    while (k < p->code_len && !dec_bit(p, k));
    return k;
}

static void pad_to_comment(struct sb *b, size_t line_start)
{
    size_t col = b->len - line_start;
    if (b->oom) return;
    do sb_put(b, " ", 1);
    while (++col < COMMENT_COLUMN);
}

static void data_lines(struct sb *b, const char *name, const uint8_t *data, size_t len)
{
    for (size_t at = 0; at < len; at += DATA_PER_LINE) {
        size_t n = len - at < DATA_PER_LINE ? len - at : DATA_PER_LINE;
        sb_fmt(b, "%%%s %s ", name, at ? "+=" : "=");
        sb_hex_bytes(b, data + at, n);
        sb_put(b, "\n", 1);
    }
}

static void raw_lines(struct sb *b, const struct cpvm_program *p, uint32_t k, uint32_t end, bool start,
                      const char *comment, const struct text_disasm_options *opt)
{
    bool first = true;
    for (uint32_t at = k; at < end; at += RAW_PER_LINE) {
        uint32_t n = end - at < RAW_PER_LINE ? end - at : RAW_PER_LINE;
        size_t line = b->len;
        sb_str(b, first && start ? "    %raw " : "    %raw_cont ");
        sb_hex_bytes(b, p->code + at, n);
        if (first && (comment || opt->show_offsets)) {
            pad_to_comment(b, line);
            sb_str(b, "//");
            if (opt->show_offsets) sb_fmt(b, " @0x%04" PRIx32 ":", k);
            if (comment) {
                sb_put(b, " ", 1);
                sb_str(b, comment);
            }
        }
        sb_put(b, "\n", 1);
        first = false;
    }
}

static void code_lines(struct sb *b, const struct cpvm_program *p, const struct export_entry *by_pc, uint32_t n_exp,
                       const struct text_disasm_options *opt)
{
    uint32_t k = 0, xi = 0;
    if (p->code_len && !dec_bit(p, 0)) {
        /* Bytes before the first instruction start belong to no instruction. */
        k = next_start(p, 0);
        raw_lines(b, p, 0, k, false, "bytes before the first instruction start", opt);
    }
    bool prev_term = true;
    while (k < p->code_len && !b->oom) {
        uint32_t end = next_start(p, k);
        struct dec_insn in;
        dec_decode(p, k, &in);
        for (; xi < n_exp && by_pc[xi].pc == k; xi++) {
            sb_str(b, "pub @");
            sb_put(b, (const char *)by_pc[xi].name, by_pc[xi].name_len);
            sb_str(b, prev_term ? ":\n" : ": %no_fallthrough\n");
        }
        uint8_t bytes[LIMIT_INSN_MAX_LEN];
        unsigned n = dec_encode(p->isa, &in, k, bytes);
        char text[160];
        struct sb t = {.p = text, .cap = sizeof text, .fixed = true};
        text[0] = 0;
        format_insn(p->isa, &in, opt->non_abi_regs, &t);
        if (n != 0 && n == end - k && memcmp(bytes, p->code + k, n) == 0) {
            size_t line = b->len;
            sb_str(b, "    ");
            sb_str(b, text);
            if (opt->show_offsets) {
                pad_to_comment(b, line);
                sb_fmt(b, "// @0x%04" PRIx32 ": ", k);
                sb_hex_bytes(b, p->code + k, n);
            }
            sb_put(b, "\n", 1);
        } else {
            char comment[200];
            if (in.op == OP_invalid)
                snprintf(comment, sizeof comment, "unknown opcode 0x%02x", p->code[k]);
            else
                snprintf(comment, sizeof comment, "not canonical: %s", text);
            raw_lines(b, p, k, end, true, comment, opt);
        }
        prev_term = isa_is_terminator((enum op)in.op);
        k = end;
    }
}

cpvm_status text_disassemble(const struct cpvm_program *p, const struct text_disasm_options *opt, char **out,
                             struct cpvm_error *err)
{
    static const struct text_disasm_options defaults = {0};
    if (!out) return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "NULL output pointer");
    *out = NULL;
    if (!p) return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "NULL program");
    if (!opt) opt = &defaults;

    struct export_entry *exp;
    cpvm_status st = read_exports(p, &exp, err);
    if (st) return st;
    uint32_t n_exp = p->export_count;
    bool labels = exports_as_labels(p, exp, n_exp);

    struct sb b = {0};
    sb_fmt(&b, "%%isa = %s\n", cpvm_isa_name(p->isa));
    if (p->ro_data_size) sb_fmt(&b, "%%ro_data_size = %" PRIu32 "\n", p->ro_data_size);
    if (p->rw_data_size) sb_fmt(&b, "%%rw_data_size = %" PRIu32 "\n", p->rw_data_size);
    if (p->stack_size) sb_fmt(&b, "%%stack_size = %" PRIu32 "\n", p->stack_size);
    data_lines(&b, "ro_data", p->ro_data, p->ro_data_len);
    data_lines(&b, "rw_data", p->rw_data, p->rw_data_len);

    uint32_t jt_len = program_jump_table_len(p);
    unsigned minimal = 0;
    for (uint32_t i = 0; i < jt_len; i++) {
        uint32_t v = 0;
        (void)cpvm_program_jump_table_entry(p, i, &v);
        unsigned need = v > 0xffffff ? 4 : v > 0xffff ? 3 : v > 0xff ? 2 : 1;
        if (need > minimal) minimal = need;
    }
    if (p->jump_table_entry_size != minimal)
        sb_fmt(&b, "%%jump_table_entry_size = %u\n", p->jump_table_entry_size);
    if (p->jump_table_entry_size == 0 && p->jump_table_count)
        sb_fmt(&b, "%%jump_table_count = %" PRIu32 "\n", p->jump_table_count);
    for (uint32_t i = 0; i < jt_len && !b.oom; i++) {
        uint32_t v = 0;
        (void)cpvm_program_jump_table_entry(p, i, &v);
        if (i % JT_PER_LINE == 0) sb_str(&b, i ? "\n%jump_table += " : "%jump_table = ");
        else sb_str(&b, ", ");
        sb_fmt(&b, "%" PRIu32, v);
    }
    if (jt_len) sb_put(&b, "\n", 1);

    for (uint32_t i = 0; i < p->import_count && !b.oom; i++) {
        struct cpvm_symbol s;
        (void)cpvm_program_import(p, i, &s);
        sb_str(&b, "%import ");
        sb_quoted(&b, s.name, s.name_len);
        if (!s.name) sb_str(&b, "  // the symbol's range is invalid in the original");
        sb_put(&b, "\n", 1);
    }
    if (!labels) {
        for (uint32_t i = 0; i < n_exp && !b.oom; i++) {
            sb_str(&b, "%export ");
            sb_quoted(&b, exp[i].name, exp[i].name_len);
            sb_fmt(&b, " = %" PRIu32 "\n", exp[i].pc);
        }
        n_exp = 0;
    } else if (n_exp) {
        qsort(exp, n_exp, sizeof *exp, cmp_export_pc);
    }
    sb_put(&b, "\n", 1);

    code_lines(&b, p, exp, n_exp, opt);
    free(exp);
    if (b.oom) {
        free(b.p);
        return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory writing the disassembly");
    }
    *out = b.p;
    return CPVM_OK;
}
