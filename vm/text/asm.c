/* The assembler: text (isa.md §11) -> `.polkavm` container or raw program.
 *
 * One statement per line. `//` starts a comment anywhere outside a "string".
 * Whitespace is free around punctuation; words (registers, numbers, mnemonics)
 * must be separated by at least one blank.
 *
 * Instructions. A line is matched against the template column of isa.def, for
 * every instruction the current instruction set has, in table order except
 * that rows with a 64-bit literal come last (so `a0 = 5` is load_imm and
 * `a0 = 0x100000000` load_imm64), then against the aliases. Placeholders:
 *   {A} {B} {D}  a register: ra sp t0 t1 t2 s0 s1 a0..a5 or r0..r12;
 *   {i} {i1} {i2} a 32-bit immediate: decimal, 0x hex or 0b binary, optional
 *                leading '-'. A non-negative literal is a 64-bit pattern that
 *                must be the sign extension of an i32 (`0xffffffffffffffff` is
 *                -1, `0xffffffff` is out of range), except where the value is
 *                32-bit anyway: in Latest32, inside [...] (addresses, offsets)
 *                and for ecalli, where 0..0xffffffff is the 32-bit pattern;
 *   {T}          a jump target: `@label`, or an absolute code offset (cpvm);
 *   {W}          a 64-bit literal (load_imm64).
 * In Latest32 the templates' "i32 " prefix is optional (that ISA has only the
 * 32-bit forms), and the 64-bit-only rows do not exist.
 * Everywhere, `[X + {i}]` may be written `[X]` when the offset is 0, and
 * `[X - n]` for `[X + -n]` (a cpvm convenience).
 *
 * Aliases (the reference assembler's extra forms, table `aliases` below):
 *   ret, nop, jump [reg], `d = i64 <literal>` (forces load_imm64),
 *   `d = s - imm` (add_imm with -imm), `d = -s` (negate_and_add_imm 0),
 *   `tmp = b, d = imm, jump [tmp + off]` (load_imm_and_jump_indirect, any regs;
 *   the short form `d = imm, jump [b + off]` is refused when d == b, as in the
 *   reference), `d = imm OP s` for + * & ^ | <u <s >u >s, `d = a >u b` and
 *   `>s` (swapped set_less_than), `jump T if X OP Y` with OP any of == != <u
 *   <s <=u <=s >u >s >=u >=s and an immediate on either side (swapped to the
 *   matching branch), `d = @label` (load_imm of the label's jump-table address
 *   2*(index+1); the label is appended to the jump table).
 * `d = s if c != 0` assembles as cmov_if_not_zero (the reference 0.35
 * assembler emits cmov_if_zero there, a bug not copied).
 *
 * Labels: `@name:` and `pub @name:` (also exported), alone on their line, name
 * of [A-Za-z0-9_.]. When the previous instruction is not a terminator a
 * `fallthrough` is inserted first, unless the line ends with `%no_fallthrough`.
 * As in the reference, a label names the start of its basic block: after
 * `%no_fallthrough` in the middle of a block, jumps go to that block's first
 * instruction, while the export is the next instruction. Label exports are
 * listed sorted by name (the reference keeps them in a BTreeMap).
 *
 * Directives of the reference: %isa = jam_v1|latest64|latest32|revive_v1
 * (before any instruction), %ro_data_size = N, %rw_data_size = N,
 * %stack_size = N, %ro_data = <hex>, %rw_data = <hex> (spaces allowed).
 * Lines starting with `pre:`, `post:` or `step:` (spectool metadata) are ignored.
 *
 * cpvm extensions, enough for disasm.c to describe any parsed program:
 *   %ro_data += <hex>, %rw_data += <hex>   append (the data in several lines);
 *   %raw XX XX ...        bytes copied verbatim as one instruction: the first
 *                         byte gets a start bit, the others none;
 *   %raw_cont XX ...      bytes copied verbatim without any start bit;
 *   jump 10 / jump 10 if a0 == 0 / a0 = 1, jump 10   numeric absolute targets;
 *   %jump_table = PC, PC  explicit jump table entries (absolute code offsets),
 *                         `+=` appends; `d = @label` entries come after them;
 *   %jump_table_entry_size = N   force the entry size 0..4 (default minimal);
 *   %jump_table_count = N a table of N entries of size 0 (no entries stored;
 *                         excludes explicit or label entries);
 *   %import "name"        imports, in order;
 *   %export "name" = PC   an export at an absolute pc, listed before the
 *                         `pub @` exports; strings take \\ \" and \xNN escapes.
 * A %raw item ends a basic block (for labels and fallthrough insertion) when
 * its first byte is a terminator's opcode or no opcode at all.
 * With `raw` output only the code, bitmask and jump table are written.
 *
 * Errors carry the 1-based line in err->offset (0 when no line applies).
 * Limits: instruction and label lines LIMIT_ASM_LINE characters (directive
 * lines are parsed in linear time and may be longer), label names 1024,
 * code LIMIT_CODE_SIZE bytes, jump table LIMIT_JUMP_TABLE entries.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "../common/bits.h"
#include "../common/error.h"
#include "../common/limits.h"
#include "../isa/isa.h"
#include "../program/reader.h"
#include "../program/writer.h"
#include "text.h"

#define NONE UINT32_MAX
#define LABEL_MAX_LEN 1024u
/* Branch layout: the reference's passes, then passes where lengths only grow
 * (which must settle), then give up rather than loop. */
#define LAYOUT_REFERENCE_PASSES 32
#define LAYOUT_MAX_PASSES 64

enum item_kind { IT_INSN, IT_RAW, IT_RAW_CONT };
enum item_flag { F_TARGET = 1, F_LABEL = 2, F_JT = 4 };

struct item {
    struct dec_insn in;
    uint32_t line;
    uint32_t pos;
    uint32_t ref;     /* F_LABEL: label id; F_JT: label jump-table index; raw: pool offset */
    uint32_t raw_len; /* raw items */
    uint8_t kind, flags, len;
};

struct label {
    const char *name;
    uint32_t len;
    uint32_t item;     /* the item it names; == item count for the end of the code */
    uint32_t def_line; /* 0 while undefined */
    uint32_t use_line; /* first use */
};

struct sym {
    uint32_t off, len; /* %export / %import: name in the pool; pub: label id in off */
    uint32_t at;       /* %export: pc; pub: item index */
};

struct vec {
    void *p;
    size_t n, cap;
};

struct asm_state {
    cpvm_isa isa;
    uint8_t decode_map[256];
    struct cpvm_error *err;
    uint32_t line;
    bool oom;

    struct vec items, labels, pool, ro, rw, jt, jt_labels, imports, exports, pubs;
    uint32_t *hash; /* label id + 1; 0 = empty */
    size_t hash_cap;

    uint32_t ro_size, rw_size, stack_size, ro_line, rw_line;
    int jt_entry_size; /* -1: minimal */
    uint32_t jt_entry_size_line, jt_count, jt_count_line;

    bool at_block_start;
    uint32_t block_start;
};

static void *vpush(struct asm_state *st, struct vec *v, size_t elem, size_t count)
{
    if (count > SIZE_MAX / elem / 4 || v->n > SIZE_MAX / elem / 4 - count) {
        st->oom = true;
        return NULL;
    }
    if (v->n + count > v->cap) {
        size_t cap = v->cap ? v->cap : 64;
        while (cap < v->n + count) cap *= 2;
        void *np = realloc(v->p, cap * elem);
        if (!np) {
            st->oom = true;
            return NULL;
        }
        v->p = np;
        v->cap = cap;
    }
    void *at = (char *)v->p + v->n * elem;
    v->n += count;
    return at;
}

static cpvm_status oom(struct asm_state *st)
{
    return cpvm_fail(st->err, CPVM_E_NO_MEMORY, st->line, "out of memory");
}

static cpvm_status syntax(struct asm_state *st, const char *what)
{
    return cpvm_fail(st->err, CPVM_E_ASM_SYNTAX, st->line, "%s", what);
}

static cpvm_status range(struct asm_state *st, const char *what)
{
    return cpvm_fail(st->err, CPVM_E_ASM_RANGE, st->line, "%s", what);
}

/* ---- lexical helpers ------------------------------------------------------ */

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_word(char c) { return is_alpha(c) || is_digit(c) || c == '_'; }
static bool is_label_char(char c) { return is_word(c) || c == '.'; }

static bool skip_ws(const char **p, const char *e)
{
    const char *s = *p;
    while (*p < e && is_space(**p)) (*p)++;
    return *p != s;
}

static bool starts_with(const char *p, const char *e, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(e - p) >= n && memcmp(p, lit, n) == 0;
}

/* Consumes `lit` after optional blanks. */
static bool eat(const char **p, const char *e, const char *lit)
{
    const char *q = *p;
    skip_ws(&q, e);
    if (!starts_with(q, e, lit)) return false;
    *p = q + strlen(lit);
    return true;
}

static bool at_end(const char *p, const char *e)
{
    skip_ws(&p, e);
    return p == e;
}

/* A register name: a whole word. */
static int parse_reg(const char **p, const char *e)
{
    const char *s = *p, *q = s;
    while (q < e && is_word(*q)) q++;
    size_t n = (size_t)(q - s);
    if (n < 2 || n > 3) return -1;
    char buf[4];
    memcpy(buf, s, n);
    buf[n] = 0;
    int r = cpvm_reg_from_name(buf);
    if (r >= 0) *p = q;
    return r;
}

struct num {
    bool neg;
    uint64_t mag;
};

/* [-](decimal | 0x hex | 0b binary), a whole word. False if not a number;
 * *too_big when the digits do not fit 64 bits. */
static bool parse_num(const char **pp, const char *e, struct num *n, bool *too_big)
{
    const char *p = *pp;
    n->neg = false;
    if (p < e && *p == '-') {
        n->neg = true;
        p++;
    }
    if (p >= e || !is_digit(*p)) return false;
    const char *w = p;
    while (p < e && is_word(*p)) p++;
    const char *d = w;
    unsigned base = 10;
    if (p - w > 2 && w[0] == '0' && (w[1] == 'x' || w[1] == 'X')) {
        base = 16;
        d = w + 2;
    } else if (p - w > 2 && w[0] == '0' && (w[1] == 'b' || w[1] == 'B')) {
        base = 2;
        d = w + 2;
    }
    uint64_t v = 0;
    bool over = false;
    for (; d < p; d++) {
        char c = *d;
        unsigned dv = is_digit(c)                ? (unsigned)(c - '0')
                      : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                      : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10)
                                               : 99u;
        if (dv >= base) return false;
        if (v > (UINT64_MAX - dv) / base)
            over = true;
        else
            v = v * base + dv;
    }
    if (over) {
        *too_big = true;
        return false;
    }
    n->mag = v;
    *pp = p;
    return true;
}

static bool num_u32(struct num n, uint32_t *out)
{
    if (n.neg || n.mag > UINT32_MAX) return false;
    *out = (uint32_t)n.mag;
    return true;
}

/* The 64-bit value a literal denotes in an i32 slot (see the top comment). */
static bool num_value(const struct asm_state *st, struct num n, bool wide32, int64_t *v)
{
    if (n.neg) {
        if (n.mag > (uint64_t)INT64_MAX + 1) return false;
        *v = n.mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)n.mag;
        return true;
    }
    if ((wide32 || st->isa == CPVM_ISA_LATEST32) && n.mag <= UINT32_MAX)
        *v = (int32_t)(uint32_t)n.mag;
    else
        *v = (int64_t)n.mag;
    return true;
}

/* ---- labels --------------------------------------------------------------- */

static uint32_t hash_name(const char *s, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static uint32_t label_id(struct asm_state *st, const char *name, uint32_t len)
{
    struct label *lb = st->labels.p;
    if (st->hash_cap) {
        for (size_t i = hash_name(name, len) & (st->hash_cap - 1);; i = (i + 1) & (st->hash_cap - 1)) {
            uint32_t id = st->hash[i];
            if (!id) break;
            if (lb[id - 1].len == len && memcmp(lb[id - 1].name, name, len) == 0) return id - 1;
        }
    }
    if ((st->labels.n + 1) * 2 > st->hash_cap) {
        size_t cap = st->hash_cap ? st->hash_cap * 2 : 64;
        uint32_t *h = calloc(cap, sizeof *h);
        if (!h) {
            st->oom = true;
            return NONE;
        }
        for (size_t k = 0; k < st->labels.n; k++) {
            size_t i = hash_name(lb[k].name, lb[k].len) & (cap - 1);
            while (h[i]) i = (i + 1) & (cap - 1);
            h[i] = (uint32_t)k + 1;
        }
        free(st->hash);
        st->hash = h;
        st->hash_cap = cap;
    }
    struct label *l = vpush(st, &st->labels, sizeof *l, 1);
    if (!l) return NONE;
    *l = (struct label){.name = name, .len = len, .item = NONE};
    uint32_t id = (uint32_t)(st->labels.n - 1);
    size_t i = hash_name(name, len) & (st->hash_cap - 1);
    while (st->hash[i]) i = (i + 1) & (st->hash_cap - 1);
    st->hash[i] = id + 1;
    return id;
}

/* `@name` at *p (the '@' included); returns the name's length or 0. */
static uint32_t label_name(const char **p, const char *e, const char **name)
{
    const char *q = *p;
    if (q >= e || *q != '@') return 0;
    q++;
    *name = q;
    while (q < e && is_label_char(*q) && q - *name < (ptrdiff_t)LABEL_MAX_LEN + 1) q++;
    uint32_t n = (uint32_t)(q - *name);
    if (n == 0 || n > LABEL_MAX_LEN) return 0;
    *p = q;
    return n;
}

/* ---- emitting ------------------------------------------------------------- */

static cpvm_status emit(struct asm_state *st, const struct item *it)
{
    if (st->items.n >= LIMIT_CODE_SIZE)
        return cpvm_fail(st->err, CPVM_E_LIMIT, st->line, "more than %u instructions",
                         LIMIT_CODE_SIZE);
    struct item *slot = vpush(st, &st->items, sizeof *slot, 1);
    if (!slot) return oom(st);
    *slot = *it;
    slot->line = st->line;
    if (it->kind == IT_INSN) {
        st->at_block_start = isa_is_terminator((enum op)it->in.op);
    } else if (it->kind == IT_RAW) {
        const uint8_t *pool = st->pool.p;
        st->at_block_start = isa_is_terminator((enum op)st->decode_map[pool[it->ref]]);
    }
    if (st->at_block_start && it->kind != IT_RAW_CONT) st->block_start = (uint32_t)st->items.n;
    return CPVM_OK;
}

static cpvm_status emit_insn(struct asm_state *st, const struct dec_insn *in, uint32_t label, unsigned flags)
{
    struct item it = {.in = *in, .ref = label, .kind = IT_INSN, .flags = (uint8_t)flags};
    uint8_t cls = isa_rows[in->op].cls;
    if (cls == CLS_O || cls == CLS_R_I_O || cls == CLS_RR_O) it.flags |= F_TARGET;
    if (label != NONE && (it.flags & F_TARGET)) it.flags |= F_LABEL;
    if (!(it.flags & (F_TARGET | F_JT))) {
        uint8_t buf[LIMIT_INSN_MAX_LEN];
        it.len = (uint8_t)dec_encode(st->isa, in, 0, buf);
        if (!it.len) CPVM_BUG("no encoding for %s", isa_rows[in->op].name);
    }
    return emit(st, &it);
}

/* ---- template matching ---------------------------------------------------- */

struct match {
    struct dec_insn in;
    const char *label; /* {T} given as @label */
    uint32_t label_len;
};

static void set_imm(struct match *m, const char *name, int32_t v)
{
    if (name[1] == '2')
        m->in.i2 = v;
    else
        m->in.i1 = v;
}

/* Matches the whole of [s, e) against template t. *out_of_range is set when
 * the shape matched up to a literal whose value does not fit. */
static bool match_template(const struct asm_state *st, const char *t, enum op op, const char *s, const char *e,
                           struct match *m, bool *out_of_range)
{
    const char *p = s;
    bool prev_word = false, in_bracket = false, negate = false;
    memset(m, 0, sizeof *m);
    m->in.op = (uint8_t)op;
    while (*t) {
        if (*t == ' ') {
            t++;
            continue;
        }
        bool ws = skip_ws(&p, e);
        bool glued = prev_word && !ws && p < e && is_word(*p);
        if (*t == '{') {
            const char *name = t + 1;
            const char *close = strchr(name, '}');
            t = close + 1;
            if (glued) return false;
            struct num n;
            switch (name[0]) {
            case 'A':
            case 'B':
            case 'D': {
                int r = parse_reg(&p, e);
                if (r < 0) return false;
                if (name[0] == 'A')
                    m->in.a = (uint8_t)r;
                else if (name[0] == 'B')
                    m->in.b = (uint8_t)r;
                else
                    m->in.d = (uint8_t)r;
                break;
            }
            case 'i':
            case 'n': {
                int64_t v;
                bool too_big = false;
                if (!parse_num(&p, e, &n, &too_big)) {
                    if (too_big) *out_of_range = true;
                    return false;
                }
                bool wide32 = name[0] == 'i' && (in_bracket || op == OP_ecalli);
                if (!num_value(st, n, wide32, &v) || (negate && v == INT64_MIN)) {
                    *out_of_range = true;
                    return false;
                }
                if (negate) v = -v;
                negate = false;
                if (name[0] == 'n') {
                    if (v < -(int64_t)INT32_MAX || v > (int64_t)INT32_MAX + 1) {
                        *out_of_range = true;
                        return false;
                    }
                    m->in.i1 = (int32_t)-v;
                } else {
                    if (v < INT32_MIN || v > INT32_MAX) {
                        *out_of_range = true;
                        return false;
                    }
                    set_imm(m, name, (int32_t)v);
                }
                break;
            }
            case 'W': {
                bool too_big = false;
                if (!parse_num(&p, e, &n, &too_big)) {
                    if (too_big) *out_of_range = true;
                    return false;
                }
                if (n.neg && n.mag > (uint64_t)INT64_MAX + 1) {
                    *out_of_range = true;
                    return false;
                }
                m->in.imm64 = n.neg ? 0 - n.mag : n.mag;
                break;
            }
            case 'T': {
                if (p < e && *p == '@') {
                    m->label_len = label_name(&p, e, &m->label);
                    if (!m->label_len) return false;
                    break;
                }
                bool too_big = false;
                if (!parse_num(&p, e, &n, &too_big)) {
                    if (too_big) *out_of_range = true;
                    return false;
                }
                if (!num_u32(n, &m->in.target)) {
                    *out_of_range = true;
                    return false;
                }
                break;
            }
            default:
                CPVM_BUG("unknown placeholder in template %s", isa_rows[op].tmpl);
            }
            prev_word = true;
            continue;
        }
        if (is_word(*t)) {
            if (glued) return false;
            size_t n = 0;
            while (is_word(t[n])) n++;
            if ((size_t)(e - p) < n || memcmp(p, t, n) != 0) return false;
            p += n;
            t += n;
            if (p < e && is_word(*p)) return false;
            prev_word = true;
            continue;
        }
        /* "[X + {i}]" may be written "[X]" for a zero offset, "[X - n]" for -n. */
        if (in_bracket && t[0] == '+' && t[1] == ' ' && t[2] == '{' && t[3] == 'i') {
            const char *close = strchr(t + 3, '}');
            if (close[1] == ']' && p < e && *p == ']') {
                set_imm(m, t + 3, 0);
                t = close + 1;
                continue;
            }
            if (p < e && *p == '-') {
                p++;
                t++;
                negate = true;
                prev_word = false;
                continue;
            }
        }
        size_t n = 0;
        while (t[n] && t[n] != ' ' && t[n] != '{' && !is_word(t[n])) n++;
        if ((size_t)(e - p) < n || memcmp(p, t, n) != 0) return false;
        for (size_t k = 0; k < n; k++) {
            if (t[k] == '[') in_bracket = true;
            if (t[k] == ']') in_bracket = false;
        }
        p += n;
        t += n;
        prev_word = false;
    }
    return at_end(p, e);
}

struct alias {
    const char *tmpl;
    enum op op;
};

/* Forms beyond the template column. Fields not named stay 0 (register ra). */
static const struct alias aliases[] = {
    {"ret", OP_jump_indirect},
    {"nop", OP_move_reg},
    {"{A} = i64 {W}", OP_load_imm64},
    {"{A} = {B} - {n}", OP_add_imm_64},
    {"i32 {A} = {B} - {n}", OP_add_imm_32},
    {"{A} = -{B}", OP_negate_and_add_imm_64},
    {"i32 {A} = -{B}", OP_negate_and_add_imm_32},
    {"tmp = {B}, {A} = {i1}, jump [tmp + {i2}]", OP_load_imm_and_jump_indirect},
    {"{A} = {i} + {B}", OP_add_imm_64},
    {"i32 {A} = {i} + {B}", OP_add_imm_32},
    {"{A} = {i} * {B}", OP_mul_imm_64},
    {"i32 {A} = {i} * {B}", OP_mul_imm_32},
    {"{A} = {i} & {B}", OP_and_imm},
    {"{A} = {i} ^ {B}", OP_xor_imm},
    {"{A} = {i} | {B}", OP_or_imm},
    {"{A} = {i} <u {B}", OP_set_greater_than_unsigned_imm},
    {"{A} = {i} <s {B}", OP_set_greater_than_signed_imm},
    {"{A} = {i} >u {B}", OP_set_less_than_unsigned_imm},
    {"{A} = {i} >s {B}", OP_set_less_than_signed_imm},
    {"{D} = {B} >u {A}", OP_set_less_than_unsigned},
    {"{D} = {B} >s {A}", OP_set_less_than_signed},
    {"jump {T} if {B} <=u {A}", OP_branch_greater_or_equal_unsigned},
    {"jump {T} if {B} <=s {A}", OP_branch_greater_or_equal_signed},
    {"jump {T} if {B} >u {A}", OP_branch_less_unsigned},
    {"jump {T} if {B} >s {A}", OP_branch_less_signed},
    {"jump {T} if {i1} == {A}", OP_branch_eq_imm},
    {"jump {T} if {i1} != {A}", OP_branch_not_eq_imm},
    {"jump {T} if {i1} <u {A}", OP_branch_greater_unsigned_imm},
    {"jump {T} if {i1} <s {A}", OP_branch_greater_signed_imm},
    {"jump {T} if {i1} <=u {A}", OP_branch_greater_or_equal_unsigned_imm},
    {"jump {T} if {i1} <=s {A}", OP_branch_greater_or_equal_signed_imm},
    {"jump {T} if {i1} >u {A}", OP_branch_less_unsigned_imm},
    {"jump {T} if {i1} >s {A}", OP_branch_less_signed_imm},
    {"jump {T} if {i1} >=u {A}", OP_branch_less_or_equal_unsigned_imm},
    {"jump {T} if {i1} >=s {A}", OP_branch_less_or_equal_signed_imm},
};

struct search {
    bool found, out_of_range, from_row;
    enum op unavailable; /* OP_COUNT: none */
    struct match m;
};

static void try_template(const struct asm_state *st, const char *t, enum op op, bool row, const char *s,
                         const char *e, struct search *r)
{
    struct match m;
    bool tried_short = false;
again:
    if (match_template(st, t, op, s, e, &m, &r->out_of_range)) {
        if (!isa_has(st->isa, op)) {
            r->unavailable = op;
        } else {
            r->found = true;
            r->from_row = row;
            r->m = m;
            return;
        }
    }
    if (st->isa == CPVM_ISA_LATEST32 && !tried_short && strncmp(t, "i32 ", 4) == 0) {
        tried_short = true;
        t += 4;
        goto again;
    }
}

static cpvm_status instruction(struct asm_state *st, const char *s, const char *e)
{
    /* d = @label: the label's jump-table address (isa.md §11). */
    const char *p = s;
    int r = parse_reg(&p, e);
    if (r >= 0 && eat(&p, e, "=")) {
        skip_ws(&p, e);
        const char *name;
        uint32_t n = label_name(&p, e, &name);
        if (n && at_end(p, e)) {
            uint32_t id = label_id(st, name, n);
            if (id == NONE) return oom(st);
            struct label *lb = st->labels.p;
            if (!lb[id].use_line) lb[id].use_line = st->line;
            uint32_t *slot = vpush(st, &st->jt_labels, sizeof *slot, 1);
            if (!slot) return oom(st);
            *slot = id;
            struct dec_insn in = {.op = OP_load_imm, .a = (uint8_t)r};
            return emit_insn(st, &in, (uint32_t)(st->jt_labels.n - 1), F_JT);
        }
    }

    struct search res = {.unavailable = OP_COUNT};
    /* Rows with a 64-bit literal last: a value that fits an i32 is load_imm. */
    for (int wide = 0; wide < 2; wide++)
        for (unsigned op = 0; op < OP_COUNT && !res.found; op++)
            if ((strstr(isa_rows[op].tmpl, "{W}") != NULL) == wide)
                try_template(st, isa_rows[op].tmpl, (enum op)op, true, s, e, &res);
    for (size_t k = 0; k < sizeof aliases / sizeof aliases[0] && !res.found; k++)
        try_template(st, aliases[k].tmpl, aliases[k].op, false, s, e, &res);
    if (!res.found) {
        if (res.unavailable != OP_COUNT)
            return cpvm_fail(st->err, CPVM_E_ASM_SYNTAX, st->line,
                             "instruction %s is not available in the %s instruction set",
                             isa_rows[res.unavailable].name, cpvm_isa_name(st->isa));
        if (res.out_of_range) return range(st, "immediate or jump target out of range");
        return syntax(st, "cannot parse this line");
    }
    struct match *m = &res.m;
    if (res.from_row && m->in.op == OP_load_imm_and_jump_indirect && m->in.a == m->in.b)
        return syntax(st, "the destination is also the base: write `tmp = b, d = imm, jump [tmp + off]`");
    uint32_t id = NONE;
    if (m->label) {
        id = label_id(st, m->label, m->label_len);
        if (id == NONE) return oom(st);
        struct label *lb = st->labels.p;
        if (!lb[id].use_line) lb[id].use_line = st->line;
    }
    return emit_insn(st, &m->in, id, 0);
}

/* ---- labels and directives ------------------------------------------------ */

static cpvm_status label_line(struct asm_state *st, const char *p, const char *e, bool pub)
{
    const char *name;
    uint32_t n = label_name(&p, e, &name);
    if (!n) return syntax(st, "expected a label name of [A-Za-z0-9_.] after '@'");
    if (!eat(&p, e, ":")) return syntax(st, "expected ':' after the label name");
    bool no_fallthrough = eat(&p, e, "%no_fallthrough");
    if (!at_end(p, e)) return syntax(st, "unexpected text after the label");
    if (!st->at_block_start && !no_fallthrough) {
        struct dec_insn ft = {.op = OP_fallthrough};
        cpvm_status s = emit_insn(st, &ft, NONE, 0);
        if (s) return s;
    }
    uint32_t id = label_id(st, name, n);
    if (id == NONE) return oom(st);
    struct label *lb = &((struct label *)st->labels.p)[id];
    if (lb->def_line)
        return cpvm_fail(st->err, CPVM_E_ASM_LABEL, st->line,
                         "label @%.*s is already defined on line %" PRIu32, (int)n, name,
                         lb->def_line);
    lb->def_line = st->line;
    lb->item = st->at_block_start ? (uint32_t)st->items.n : st->block_start;
    if (pub) {
        struct sym *x = vpush(st, &st->pubs, sizeof *x, 1);
        if (!x) return oom(st);
        *x = (struct sym){.off = id, .at = (uint32_t)st->items.n};
    }
    return CPVM_OK;
}

static cpvm_status parse_u32_arg(struct asm_state *st, const char **p, const char *e, uint32_t *out)
{
    struct num n;
    bool too_big = false;
    skip_ws(p, e);
    if (!parse_num(p, e, &n, &too_big)) return too_big ? range(st, "number out of range") : syntax(st, "expected a number");
    if (!num_u32(n, out)) return range(st, "number out of range (0..4294967295)");
    return CPVM_OK;
}

/* Hex digit pairs, blanks allowed anywhere, appended to v. */
static cpvm_status parse_hex(struct asm_state *st, const char *p, const char *e, struct vec *v, size_t *count)
{
    int hi = -1;
    *count = 0;
    for (; p < e; p++) {
        char c = *p;
        if (is_space(c)) continue;
        int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (d < 0) return syntax(st, "expected hexadecimal bytes");
        if (hi < 0) {
            hi = d;
            continue;
        }
        uint8_t *b = vpush(st, v, 1, 1);
        if (!b) return oom(st);
        *b = (uint8_t)(hi << 4 | d);
        hi = -1;
        ++*count;
    }
    if (hi >= 0) return syntax(st, "odd number of hexadecimal digits");
    return CPVM_OK;
}

/* "..." with \\ \" \xNN escapes into the pool; *p ends past the closing quote. */
static cpvm_status parse_string(struct asm_state *st, const char **pp, const char *e, uint32_t *off, uint32_t *len)
{
    const char *p = *pp;
    skip_ws(&p, e);
    if (p >= e || *p != '"') return syntax(st, "expected a \"string\"");
    p++;
    if (st->pool.n > UINT32_MAX / 2) return cpvm_fail(st->err, CPVM_E_LIMIT, st->line, "too many names");
    *off = (uint32_t)st->pool.n;
    for (;;) {
        if (p >= e) return syntax(st, "unterminated string");
        char c = *p++;
        if (c == '"') break;
        if (c == '\\') {
            if (p >= e) return syntax(st, "unterminated string");
            char x = *p++;
            if (x == 'x') {
                int v = 0;
                for (int k = 0; k < 2; k++, p++) {
                    char h = p < e ? *p : 0;
                    int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                    if (d < 0) return syntax(st, "bad \\x escape: two hex digits expected");
                    v = v * 16 + d;
                }
                c = (char)v;
            } else if (x == '\\' || x == '"') {
                c = x;
            } else {
                return syntax(st, "unknown escape (use \\\\, \\\" or \\xNN)");
            }
        }
        char *b = vpush(st, &st->pool, 1, 1);
        if (!b) return oom(st);
        *b = c;
    }
    *len = (uint32_t)(st->pool.n - *off);
    *pp = p;
    return CPVM_OK;
}

static bool word_is(const char *w, size_t n, const char *lit) { return strlen(lit) == n && memcmp(w, lit, n) == 0; }

static cpvm_status directive(struct asm_state *st, const char *s, const char *e)
{
    const char *p = s + 1, *w = p;
    while (p < e && is_word(*p)) p++;
    size_t wn = (size_t)(p - w);
    cpvm_status rc;

    if (word_is(w, wn, "raw") || word_is(w, wn, "raw_cont")) {
        size_t off = st->pool.n, count;
        if (off > UINT32_MAX / 2) return cpvm_fail(st->err, CPVM_E_LIMIT, st->line, "too much raw code");
        if ((rc = parse_hex(st, p, e, &st->pool, &count))) return rc;
        if (count == 0) return syntax(st, "%raw needs at least one byte");
        if (count > LIMIT_CODE_SIZE) return cpvm_fail(st->err, CPVM_E_LIMIT, st->line, "raw bytes exceed the code size limit");
        struct item it = {.kind = (uint8_t)(wn == 3 ? IT_RAW : IT_RAW_CONT), .ref = (uint32_t)off, .raw_len = (uint32_t)count};
        return emit(st, &it);
    }
    if (word_is(w, wn, "import")) {
        struct sym x = {0};
        if ((rc = parse_string(st, &p, e, &x.off, &x.len))) return rc;
        if (!at_end(p, e)) return syntax(st, "unexpected text after the import name");
        struct sym *slot = vpush(st, &st->imports, sizeof x, 1);
        if (!slot) return oom(st);
        *slot = x;
        return CPVM_OK;
    }
    if (word_is(w, wn, "export")) {
        struct sym x = {0};
        if ((rc = parse_string(st, &p, e, &x.off, &x.len))) return rc;
        if (!eat(&p, e, "=")) return syntax(st, "expected '= pc' after the export name");
        if ((rc = parse_u32_arg(st, &p, e, &x.at))) return rc;
        if (!at_end(p, e)) return syntax(st, "unexpected text after the export pc");
        struct sym *slot = vpush(st, &st->exports, sizeof x, 1);
        if (!slot) return oom(st);
        *slot = x;
        return CPVM_OK;
    }

    bool append = eat(&p, e, "+=");
    if (!append && !eat(&p, e, "=")) return syntax(st, "expected '=' after the directive name");
    if (append && !word_is(w, wn, "ro_data") && !word_is(w, wn, "rw_data") && !word_is(w, wn, "jump_table"))
        return syntax(st, "'+=' only applies to %ro_data, %rw_data and %jump_table");

    if (word_is(w, wn, "isa")) {
        skip_ws(&p, e);
        const char *v = p;
        while (p < e && is_word(*p)) p++;
        char name[16];
        size_t n = (size_t)(p - v);
        cpvm_isa isa;
        if (n >= sizeof name || !at_end(p, e)) return syntax(st, "unknown instruction set");
        memcpy(name, v, n);
        name[n] = 0;
        if (!cpvm_isa_from_name(name, &isa)) return syntax(st, "unknown instruction set");
        if (st->items.n && isa != st->isa) return syntax(st, "%isa must come before the first instruction");
        st->isa = isa;
        isa_build_decode_map(isa, st->decode_map);
        return CPVM_OK;
    }
    uint32_t *u32 = word_is(w, wn, "ro_data_size")            ? &st->ro_size
                    : word_is(w, wn, "rw_data_size")          ? &st->rw_size
                    : word_is(w, wn, "stack_size")            ? &st->stack_size
                    : word_is(w, wn, "jump_table_count")      ? &st->jt_count
                    : NULL;
    if (u32 || word_is(w, wn, "jump_table_entry_size")) {
        uint32_t v;
        if ((rc = parse_u32_arg(st, &p, e, &v))) return rc;
        if (!at_end(p, e)) return syntax(st, "unexpected text after the number");
        if (u32) {
            *u32 = v;
            if (u32 == &st->jt_count) st->jt_count_line = st->line;
            return CPVM_OK;
        }
        if (v > 4) return range(st, "the jump table entry size is 0..4");
        st->jt_entry_size = (int)v;
        st->jt_entry_size_line = st->line;
        return CPVM_OK;
    }
    if (word_is(w, wn, "ro_data") || word_is(w, wn, "rw_data")) {
        bool ro = w[1] == 'o';
        struct vec *v = ro ? &st->ro : &st->rw;
        size_t count;
        if (!append) v->n = 0;
        if (ro)
            st->ro_line = st->line;
        else
            st->rw_line = st->line;
        return parse_hex(st, p, e, v, &count);
    }
    if (word_is(w, wn, "jump_table")) {
        if (!append) st->jt.n = 0;
        if (at_end(p, e)) return CPVM_OK;
        for (;;) {
            uint32_t v, *slot;
            if ((rc = parse_u32_arg(st, &p, e, &v))) return rc;
            if (st->jt.n >= LIMIT_JUMP_TABLE)
                return cpvm_fail(st->err, CPVM_E_LIMIT, st->line, "more than %u jump table entries", LIMIT_JUMP_TABLE);
            if (!(slot = vpush(st, &st->jt, sizeof *slot, 1))) return oom(st);
            *slot = v;
            if (at_end(p, e)) return CPVM_OK;
            if (!eat(&p, e, ",")) return syntax(st, "expected ',' between jump table entries");
        }
    }
    return syntax(st, "unknown directive");
}

static cpvm_status statement(struct asm_state *st, const char *s, const char *e)
{
    if (starts_with(s, e, "pre:") || starts_with(s, e, "post:") || starts_with(s, e, "step:")) return CPVM_OK;
    if (*s == '%') return directive(st, s, e);
    if (*s == '@') return label_line(st, s, e, false);
    if (starts_with(s, e, "pub") && e - s > 3 && (is_space(s[3]) || s[3] == '@')) {
        const char *p = s + 3;
        skip_ws(&p, e);
        if (p < e && *p == '@') return label_line(st, p, e, true);
    }
    return instruction(st, s, e);
}

/* ---- layout and output ---------------------------------------------------- */

static uint32_t item_size(const struct item *it) { return it->kind == IT_INSN ? it->len : it->raw_len; }

/* Encodes at it->pos; when it->len is larger (layout fallback), the trailing
 * offset immediate is sign-extended to fill it (a longer field decodes to the
 * same value). */
static void encode_item(const struct asm_state *st, const struct item *it, uint8_t out[LIMIT_INSN_MAX_LEN])
{
    unsigned n = dec_encode(st->isa, &it->in, it->pos, out);
    int32_t off = (int32_t)(it->in.target - it->pos);
    while (n < it->len) out[n++] = off < 0 ? 0xff : 0x00;
}

static unsigned encoded_len(const struct asm_state *st, const struct item *it, uint32_t pos, unsigned min)
{
    uint8_t buf[LIMIT_INSN_MAX_LEN];
    unsigned n = dec_encode(st->isa, &it->in, pos, buf);
    return n < min ? min : n;
}

/* Label targets, laid out as the reference builder does (writer.rs,
 * serialize_code): guess each target from instruction counts, then re-encode
 * until no offset changes. */
static cpvm_status layout(struct asm_state *st, uint32_t *total)
{
    struct item *it = st->items.p;
    const struct label *lb = st->labels.p;
    uint32_t n = (uint32_t)st->items.n;
    uint64_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (it[i].flags & F_LABEL)
            it[i].in.target = (uint32_t)pos + (uint32_t)((int64_t)lb[it[i].ref].item - (int64_t)i);
        if (it[i].flags & F_TARGET) it[i].len = (uint8_t)encoded_len(st, &it[i], (uint32_t)pos, 0);
        it[i].pos = (uint32_t)pos;
        pos += item_size(&it[i]);
        if (pos > LIMIT_CODE_SIZE)
            return cpvm_fail(st->err, CPVM_E_LIMIT, it[i].line, "the code exceeds %u bytes", LIMIT_CODE_SIZE);
    }
    uint32_t end = (uint32_t)pos;
    for (int pass = 0; pass < LAYOUT_MAX_PASSES; pass++) {
        bool changed = false, grow_only = pass >= LAYOUT_REFERENCE_PASSES;
        pos = 0;
        for (uint32_t i = 0; i < n; i++) {
            bool moved = it[i].pos != pos;
            it[i].pos = (uint32_t)pos;
            if (it[i].flags & F_TARGET) {
                if (it[i].flags & F_LABEL) {
                    uint32_t k = lb[it[i].ref].item;
                    uint32_t t = k < n ? it[k].pos : end;
                    if (t != it[i].in.target) {
                        it[i].in.target = t;
                        moved = true;
                    }
                }
                if (moved) it[i].len = (uint8_t)encoded_len(st, &it[i], (uint32_t)pos, grow_only ? it[i].len : 0);
            }
            pos += item_size(&it[i]);
            if (pos > LIMIT_CODE_SIZE)
                return cpvm_fail(st->err, CPVM_E_LIMIT, it[i].line, "the code exceeds %u bytes", LIMIT_CODE_SIZE);
            changed |= moved;
        }
        end = (uint32_t)pos;
        if (!changed) {
            *total = end;
            return CPVM_OK;
        }
    }
    return cpvm_fail(st->err, CPVM_E_ASM_RANGE, 0, "jump offsets do not settle on a layout");
}

struct pub_sort {
    const char *name;
    uint32_t len, at;
};

static int cmp_pub(const void *x, const void *y)
{
    const struct pub_sort *a = x, *b = y;
    int c = memcmp(a->name, b->name, a->len < b->len ? a->len : b->len);
    if (c) return c;
    return a->len < b->len ? -1 : a->len > b->len;
}

/* Entry size 0 with a declared count: the writer cannot express it, so the
 * count varint is spliced into its output (count 0, size 0). */
static cpvm_status splice_jt_count(uint8_t **buf, size_t *len, bool raw, uint32_t count, struct cpvm_error *err)
{
    uint8_t cv[5], lv[5];
    unsigned cn = writer_varint(count, cv), ln = 0;
    size_t at = 0, len_at = 0, old_ln = 0;
    if (!raw) {
        struct reader r = {.data = *buf, .len = *len, .pos = 13, .origin = 0, .err = NULL};
        for (;;) {
            uint8_t id;
            uint32_t sec;
            const uint8_t *skip;
            if (reader_u8(&r, "id", &id)) CPVM_BUG("writer output has no code section");
            len_at = r.pos;
            if (reader_varint(&r, "len", &sec)) CPVM_BUG("bad writer output");
            if (id == 6) {
                old_ln = r.pos - len_at;
                ln = writer_varint(sec - 1 + cn, lv);
                at = r.pos;
                break;
            }
            if (reader_bytes(&r, "section", sec, &skip)) CPVM_BUG("bad writer output");
        }
    }
    size_t n = *len - 1 + cn + ln - old_ln;
    uint8_t *out = malloc(n);
    if (!out) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
    size_t o = 0;
    if (!raw) {
        memcpy(out, *buf, len_at);
        o = len_at;
        memcpy(out + o, lv, ln);
        o += ln;
    }
    memcpy(out + o, cv, cn);
    o += cn;
    memcpy(out + o, *buf + at + 1, *len - at - 1);
    if (!raw) wr_le64(out + 5, (uint64_t)n);
    free(*buf);
    *buf = out;
    *len = n;
    return CPVM_OK;
}

static cpvm_status finish(struct asm_state *st, bool raw, uint8_t **out, size_t *out_len)
{
    struct item *it = st->items.p;
    struct label *lb = st->labels.p;
    uint32_t n_items = (uint32_t)st->items.n;

    for (size_t i = 0; i < st->labels.n; i++)
        if (!lb[i].def_line)
            return cpvm_fail(st->err, CPVM_E_ASM_LABEL, lb[i].use_line,
                             "label @%.*s is not defined", (int)lb[i].len,
                             lb[i].name);
    size_t n_jt = st->jt.n + st->jt_labels.n;
    if (n_jt > LIMIT_JUMP_TABLE)
        return cpvm_fail(st->err, CPVM_E_LIMIT, 0, "more than %u jump table entries", LIMIT_JUMP_TABLE);
    if (st->jt_entry_size == 0 && n_jt)
        return cpvm_fail(st->err, CPVM_E_ASM_RANGE, st->jt_entry_size_line,
                         "a jump table with entry size 0 stores no entries (see %%jump_table_count)");
    if (st->jt_count > LIMIT_JUMP_TABLE)
        return cpvm_fail(st->err, CPVM_E_LIMIT, st->jt_count_line, "more than %u jump table entries",
                         LIMIT_JUMP_TABLE);
    if (st->jt_count && (st->jt_entry_size > 0 || n_jt))
        return cpvm_fail(st->err, CPVM_E_ASM_RANGE, st->jt_count_line,
                         "%%jump_table_count only declares entries of size 0; this table has entries");
    for (uint32_t i = 0; i < n_items; i++) {
        if (!(it[i].flags & F_JT)) continue;
        it[i].in.i1 = (int32_t)(2 * (st->jt.n + it[i].ref + 1));
        it[i].len = (uint8_t)encoded_len(st, &it[i], 0, 0);
    }
    uint32_t total = 0;
    cpvm_status s = layout(st, &total);
    if (s) return s;

    uint8_t *code = malloc(total ? total : 1), *bitmask = calloc(1, total / 8 + 1);
    uint32_t *jt = malloc((n_jt ? n_jt : 1) * sizeof *jt);
    size_t n_exp = st->exports.n + st->pubs.n;
    struct writer_symbol *syms = calloc(n_exp + st->imports.n + 1, sizeof *syms);
    struct pub_sort *pubs = calloc(st->pubs.n + 1, sizeof *pubs);
    if (!code || !bitmask || !jt || !syms || !pubs) {
        s = cpvm_fail(st->err, CPVM_E_NO_MEMORY, 0, "out of memory");
        goto done;
    }
    static const uint8_t no_names[1];
    const uint8_t *pool = st->pool.p ? st->pool.p : no_names; /* NULL when every name is empty */
    for (uint32_t i = 0; i < n_items; i++) {
        if (it[i].kind == IT_INSN) {
            uint8_t buf[LIMIT_INSN_MAX_LEN];
            encode_item(st, &it[i], buf);
            memcpy(code + it[i].pos, buf, it[i].len);
        } else {
            memcpy(code + it[i].pos, pool + it[i].ref, it[i].raw_len);
        }
        if (it[i].kind != IT_RAW_CONT) bitmask[it[i].pos >> 3] |= (uint8_t)(1u << (it[i].pos & 7));
    }
    if (st->jt.n) memcpy(jt, st->jt.p, st->jt.n * sizeof *jt);
    const uint32_t *jt_labels = st->jt_labels.p;
    for (size_t k = 0; k < st->jt_labels.n; k++) {
        uint32_t item = lb[jt_labels[k]].item;
        jt[st->jt.n + k] = item < n_items ? it[item].pos : total;
    }
    if (st->jt_entry_size > 0 && st->jt_entry_size < 4) {
        for (size_t k = 0; k < n_jt; k++)
            if (jt[k] >> (8 * st->jt_entry_size)) {
                s = cpvm_fail(st->err, CPVM_E_ASM_RANGE, st->jt_entry_size_line,
                              "jump table entry %zu (%" PRIu32 ") does not fit %d byte(s)", k, jt[k], st->jt_entry_size);
                goto done;
            }
    }
    if (!raw && st->ro.n > st->ro_size) {
        s = cpvm_fail(st->err, CPVM_E_ASM_RANGE, st->ro_line,
                      "%zu bytes of ro data exceed %%ro_data_size = %" PRIu32, st->ro.n,
                      st->ro_size);
        goto done;
    }
    if (!raw && st->rw.n > st->rw_size) {
        s = cpvm_fail(st->err, CPVM_E_ASM_RANGE, st->rw_line,
                      "%zu bytes of rw data exceed %%rw_data_size = %" PRIu32, st->rw.n,
                      st->rw_size);
        goto done;
    }

    const struct sym *x = st->exports.p;
    for (size_t k = 0; k < st->exports.n; k++)
        syms[k] = (struct writer_symbol){.name = pool + x[k].off, .name_len = x[k].len, .pc = x[k].at};
    x = st->pubs.p;
    for (size_t k = 0; k < st->pubs.n; k++)
        pubs[k] = (struct pub_sort){.name = lb[x[k].off].name, .len = lb[x[k].off].len, .at = x[k].at};
    if (st->pubs.n) qsort(pubs, st->pubs.n, sizeof *pubs, cmp_pub);
    for (size_t k = 0; k < st->pubs.n; k++)
        syms[st->exports.n + k] = (struct writer_symbol){.name = (const uint8_t *)pubs[k].name,
                                                         .name_len = pubs[k].len,
                                                         .pc = pubs[k].at < n_items ? it[pubs[k].at].pos : total};
    struct writer_symbol *imports = syms + n_exp;
    x = st->imports.p;
    for (size_t k = 0; k < st->imports.n; k++)
        imports[k] = (struct writer_symbol){.name = pool + x[k].off, .name_len = x[k].len};

    struct writer_parts parts = {
        .isa = st->isa,
        .ro_data_size = st->ro_size,
        .rw_data_size = st->rw_size,
        .stack_size = st->stack_size,
        .ro_data = st->ro.p,
        .rw_data = st->rw.p,
        .ro_data_len = st->ro.n,
        .rw_data_len = st->rw.n,
        .imports = imports,
        .import_count = st->imports.n,
        .exports = syms,
        .export_count = n_exp,
        .jump_table = jt,
        .jump_table_count = n_jt,
        .jump_table_entry_size = st->jt_entry_size > 0 ? (unsigned)st->jt_entry_size : 0,
        .code = code,
        .code_len = total,
        .bitmask = bitmask,
    };
    s = writer_build(&parts, raw, out, out_len, st->err);
    if (!s && st->jt_count) s = splice_jt_count(out, out_len, raw, st->jt_count, st->err);
    if (s && *out) {
        free(*out);
        *out = NULL;
        *out_len = 0;
    }
done:
    free(code);
    free(bitmask);
    free(jt);
    free(syms);
    free(pubs);
    return s;
}

/* Cuts a trailing `//` comment that is not inside a "string". */
static const char *strip_comment(const char *s, const char *e)
{
    bool in_string = false;
    for (const char *p = s; p < e; p++) {
        if (in_string) {
            if (*p == '\\' && p + 1 < e)
                p++;
            else if (*p == '"')
                in_string = false;
        } else if (*p == '"') {
            in_string = true;
        } else if (*p == '/' && p + 1 < e && p[1] == '/') {
            return p;
        }
    }
    return e;
}

cpvm_status text_assemble(const char *src, size_t len, cpvm_isa default_isa, bool raw, uint8_t **out,
                          size_t *out_len, struct cpvm_error *err)
{
    if (!out || !out_len) return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "NULL output pointer");
    *out = NULL;
    *out_len = 0;
    if (!src && len) return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "NULL source");
    if ((unsigned)default_isa >= CPVM_ISA_COUNT)
        return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "unknown instruction set %d", (int)default_isa);
    if (len > UINT32_MAX) return cpvm_fail(err, CPVM_E_LIMIT, 0, "source of %zu bytes is larger than 4 GiB", len);

    struct asm_state st = {.isa = default_isa, .err = err, .jt_entry_size = -1, .at_block_start = true};
    isa_build_decode_map(st.isa, st.decode_map);
    cpvm_status s = CPVM_OK;
    size_t at = 0;
    while (at < len) {
        const char *s0 = src + at, *nl = memchr(s0, '\n', len - at);
        const char *e = nl ? nl : src + len;
        at = (size_t)(e - src) + (nl ? 1 : 0);
        st.line++;
        e = strip_comment(s0, e);
        skip_ws(&s0, e);
        while (e > s0 && is_space(e[-1])) e--;
        if (s0 == e) continue;
        if ((size_t)(e - s0) > LIMIT_ASM_LINE && *s0 != '%') {
            s = cpvm_fail(err, CPVM_E_LIMIT, st.line, "the line is longer than %u characters",
                          LIMIT_ASM_LINE);
            break;
        }
        if ((s = statement(&st, s0, e))) break;
    }
    if (!s) {
        st.line = 0;
        s = st.oom ? oom(&st) : finish(&st, raw, out, out_len);
    } else if (st.oom) {
        s = oom(&st);
    }
    free(st.items.p);
    free(st.labels.p);
    free(st.pool.p);
    free(st.ro.p);
    free(st.rw.p);
    free(st.jt.p);
    free(st.jt_labels.p);
    free(st.imports.p);
    free(st.exports.p);
    free(st.pubs.p);
    free(st.hash);
    return s;
}
