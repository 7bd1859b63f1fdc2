/* Helpers shared by the cpvm tool's subcommands. */
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- files --------------------------------------------------------------- */

uint8_t *cli_read_file(const char *cmd, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cpvm %s: %s: %s\n", cmd, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    size_t cap = 65536;
    if (fstat(fileno(f), &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "cpvm %s: %s: is a directory\n", cmd, path);
            fclose(f);
            return NULL;
        }
        if (S_ISREG(st.st_mode)) {
            if ((unsigned long long)st.st_size > CLI_MAX_FILE_SIZE) {
                fprintf(stderr, "cpvm %s: %s: file too large (over %llu bytes)\n", cmd, path,
                        (unsigned long long)CLI_MAX_FILE_SIZE);
                fclose(f);
                return NULL;
            }
            cap = (size_t)st.st_size + 1;
        }
    }
    uint8_t *buf = malloc(cap);
    size_t n = 0;
    if (!buf) goto oom;
    for (;;) {
        if (n > CLI_MAX_FILE_SIZE) {
            fprintf(stderr, "cpvm %s: %s: file too large (over %llu bytes)\n", cmd, path,
                    (unsigned long long)CLI_MAX_FILE_SIZE);
            free(buf);
            fclose(f);
            return NULL;
        }
        if (n + 1 == cap) {
            /* Full: look for one more byte before growing. */
            int c = fgetc(f);
            if (c == EOF) {
                if (ferror(f)) goto read_error;
                break;
            }
            size_t ncap = cap * 2;
            if (ncap > CLI_MAX_FILE_SIZE + 2) ncap = CLI_MAX_FILE_SIZE + 2;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) goto oom;
            buf = nb;
            cap = ncap;
            buf[n++] = (uint8_t)c;
            continue;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) goto read_error;
            break;
        }
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
read_error:
    fprintf(stderr, "cpvm %s: %s: read error: %s\n", cmd, path, strerror(errno));
    free(buf);
    fclose(f);
    return NULL;
oom:
    fprintf(stderr, "cpvm %s: %s: out of memory\n", cmd, path);
    free(buf);
    fclose(f);
    return NULL;
}

/* ---- numbers ------------------------------------------------------------- */

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s) return false;
    uint64_t v = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s += 2;
        if (!*s) return false;
        for (; *s; s++) {
            int d = hex_digit(*s);
            if (d < 0 || v > (UINT64_MAX >> 4)) return false;
            v = (v << 4) | (uint64_t)d;
        }
    } else {
        for (; *s; s++) {
            if (*s < '0' || *s > '9') return false;
            uint64_t d = (uint64_t)(*s - '0');
            if (v > (UINT64_MAX - d) / 10) return false;
            v = v * 10 + d;
        }
    }
    *out = v;
    return true;
}

bool cli_parse_u32(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!cli_parse_u64(s, &v) || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

bool cli_parse_i64(const char *s, int64_t *out)
{
    if (!s) return false;
    bool neg = s[0] == '-';
    uint64_t mag;
    if (!cli_parse_u64(neg ? s + 1 : s, &mag)) return false;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return false;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)mag;
    }
    return true;
}

/* ---- hex ----------------------------------------------------------------- */

bool cli_hex_to_bytes(const char *s, uint8_t **out, size_t *len)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
    size_t n = strlen(s);
    if (n % 2) return false;
    uint8_t *b = malloc(n / 2 + 1);
    if (!b) return false;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return false;
        }
        b[i] = (uint8_t)(hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return true;
}

char *cli_bytes_to_hex(const uint8_t *bytes, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    if (len > (SIZE_MAX - 1) / 2) return NULL;
    char *s = malloc(len * 2 + 1);
    if (!s) return NULL;
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = digits[bytes[i] >> 4];
        s[2 * i + 1] = digits[bytes[i] & 15];
    }
    s[len * 2] = 0;
    return s;
}

/* ---- registers ----------------------------------------------------------- */

int cli_parse_reg(const char *name)
{
    if (!name || !*name) return -1;
    int r = cpvm_reg_from_name(name);
    return r >= 0 && r < CPVM_REG_COUNT ? r : -1;
}

bool cli_parse_reg_assignment(const char *cmd, const char *arg, unsigned *reg, uint64_t *value)
{
    const char *eq = strchr(arg, '=');
    char name[16];
    size_t n = eq ? (size_t)(eq - arg) : 0;
    if (!eq || n == 0 || n >= sizeof name) {
        fprintf(stderr, "cpvm %s: --reg: expected NAME=VALUE, got '%s'\n", cmd, arg);
        return false;
    }
    memcpy(name, arg, n);
    name[n] = 0;
    int r = cli_parse_reg(name);
    if (r < 0) {
        fprintf(stderr, "cpvm %s: --reg: unknown register '%s'\n", cmd, name);
        return false;
    }
    if (!cli_parse_u64(eq + 1, value)) {
        fprintf(stderr, "cpvm %s: --reg: bad value '%s' (decimal or 0x-hex u64)\n", cmd, eq + 1);
        return false;
    }
    *reg = (unsigned)r;
    return true;
}

/* ---- programs and errors ------------------------------------------------- */

void cli_print_error(const char *cmd, const char *what, const struct cpvm_error *err)
{
    fprintf(stderr, "cpvm %s: %s: %s at offset %" PRIu64, cmd, what, cpvm_status_message(err->code),
            err->offset);
    /* The detail is a fixed buffer: never trust it to be terminated. */
    size_t n = strnlen(err->detail, sizeof err->detail);
    if (n) fprintf(stderr, ": %.*s", (int)n, err->detail);
    fputc('\n', stderr);
}

cpvm_program *cli_load_program(const char *cmd, const char *path, bool raw, cpvm_isa isa)
{
    size_t len;
    uint8_t *bytes = cli_read_file(cmd, path, &len);
    if (!bytes) return NULL;
    cpvm_program *p = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status st = raw ? cpvm_program_parse_raw(bytes, len, isa, 0, &p, &err)
                         : cpvm_program_parse(bytes, len, 0, &p, &err);
    free(bytes);
    if (st != CPVM_OK || !p) {
        if (st == CPVM_OK) {
            err.code = CPVM_E_INVALID_ARGUMENT;
            err.detail[0] = 0;
        }
        cli_print_error(cmd, path, &err);
        return NULL;
    }
    return p;
}

bool cli_parse_isa(const char *cmd, const char *name, cpvm_isa *isa)
{
    if (cpvm_isa_from_name(name, isa)) return true;
    fprintf(stderr, "cpvm %s: unknown ISA '%s' (latest64, jamv1, latest32, revive_v1)\n", cmd, name);
    return false;
}

bool cli_resolve_entry(const char *cmd, const cpvm_program *program, const char *entry, uint32_t *pc)
{
    if (!entry) {
        struct cpvm_symbol sym;
        memset(&sym, 0, sizeof sym);
        *pc = cpvm_program_export(program, 0, &sym) ? sym.pc : 0;
        return true;
    }
    if (*entry && cpvm_program_find_export(program, entry, pc)) return true;
    if (cli_parse_u32(entry, pc)) return true;
    fprintf(stderr, "cpvm %s: --entry: no export named '%s' (and not a pc)\n", cmd, entry);
    return false;
}

bool cli_positional(const char *cmd, const char *arg, const char **slot, const char *what)
{
    if (arg[0] == '-' && arg[1] != 0) {
        fprintf(stderr, "cpvm %s: unknown option '%s'\n", cmd, arg);
        return false;
    }
    if (*slot) {
        fprintf(stderr, "cpvm %s: more than one %s given ('%s' and '%s')\n", cmd, what, *slot, arg);
        return false;
    }
    *slot = arg;
    return true;
}

bool cli_parse_backend(const char *cmd, const char *name, cpvm_backend *out)
{
    if (strcmp(name, "interpreter") == 0) *out = CPVM_BACKEND_INTERPRETER;
    else if (strcmp(name, "compiler") == 0 || strcmp(name, "jit") == 0) *out = CPVM_BACKEND_COMPILER;
    else {
        fprintf(stderr, "cpvm %s: unknown backend '%s' (interpreter, compiler)\n", cmd, name);
        return false;
    }
    return true;
}

bool cli_parse_sandbox(const char *cmd, const char *name, cpvm_sandbox *out)
{
    if (strcmp(name, "zygote") == 0) *out = CPVM_SANDBOX_ZYGOTE;
    else if (strcmp(name, "none") == 0) *out = CPVM_SANDBOX_NONE;
    else {
        fprintf(stderr, "cpvm %s: unknown sandbox '%s' (zygote, or none: unsandboxed, fuzzing speed only)\n", cmd,
                name);
        return false;
    }
    return true;
}

struct cpvm_cost_model cli_cost_model; /* zero = naive */

bool cli_parse_cost_model(const char *cmd, const char *arg, struct cpvm_cost_model *out)
{
    struct cpvm_cost_model m;
    memset(&m, 0, sizeof m);
    if (!cpvm_cost_model_from_name(arg, &m)) {
        if (strncmp(arg, "full:", 5) == 0 || strcmp(arg, "naive") == 0) {
            fprintf(stderr, "cpvm %s: unknown cost model '%s' (naive, full, full:l1, full:l2, full:l3 or a FILE)\n",
                    cmd, arg);
            return false;
        }
        size_t len = 0;
        uint8_t *blob = cli_read_file(cmd, arg, &len);
        if (!blob) return false;
        if (len != CPVM_COST_TABLE_SIZE && len != CPVM_COST_TABLE_SIZE + 4) {
            fprintf(stderr, "cpvm %s: %s: not a serialized cost table (%zu bytes, expected %u)\n", cmd, arg, len,
                    CPVM_COST_TABLE_SIZE);
            free(blob);
            return false;
        }
        static uint8_t table[CPVM_COST_TABLE_SIZE + 4]; /* one --cost-model a command */
        memcpy(table, blob, len);
        free(blob);
        m.kind = CPVM_COST_TABLE;
        m.table = table;
        m.table_len = len;
    }
    *out = m;
    return true;
}

void cli_module_config(struct cpvm_module_config *cfg, cpvm_backend backend, cpvm_sandbox sandbox,
                       cpvm_memory_model memory, cpvm_compat compat, bool step_tracing)
{
    cpvm_module_config_default(cfg);
    cfg->backend = backend;
    cfg->memory_model = memory;
    cfg->compat = compat;
    cfg->page_size = 4096;
    cfg->aux_data_size = 0;
    cfg->gas_metering = true;
    cfg->cost_model = cli_cost_model;
    cfg->step_tracing = step_tracing;
    cfg->sandbox = sandbox;
}

cpvm_module *cli_make_module(const char *cmd, const char *path, const cpvm_program *program,
                             cpvm_backend backend, cpvm_sandbox sandbox, cpvm_memory_model memory,
                             cpvm_compat compat, bool step_tracing)
{
    struct cpvm_module_config cfg;
    cli_module_config(&cfg, backend, sandbox, memory, compat, step_tracing);
    cpvm_module *m = NULL;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    cpvm_status st = cpvm_module_new(program, &cfg, &m, &err);
    if (st != CPVM_OK || !m) {
        if (st == CPVM_OK) err.code = CPVM_E_INVALID_ARGUMENT;
        cli_print_error(cmd, path, &err);
        return NULL;
    }
    cli_note_backend(cmd, m, backend, sandbox);
    return m;
}

void cli_note_backend(const char *cmd, const cpvm_module *m, cpvm_backend requested, cpvm_sandbox sandbox)
{
    static bool said_fallback, said_unsandboxed;
    const char *why = NULL;
    cpvm_backend got = cpvm_module_backend(m, &why);
    if (requested != CPVM_BACKEND_COMPILER) return;
    if (got != CPVM_BACKEND_COMPILER) {
        if (said_fallback) return;
        said_fallback = true;
        /* The library gives one reason; name the sandbox when it is the cause. */
        const char *no_sandbox = NULL;
        if (sandbox != CPVM_SANDBOX_NONE && why && !cpvm_sandbox_available(&no_sandbox) && no_sandbox &&
            strcmp(no_sandbox, why) == 0)
            fprintf(stderr,
                    "cpvm %s: the compiler backend is unavailable: its code runs in the zygote sandbox, which cannot "
                    "start here (%s); using the interpreter\n",
                    cmd, why);
        else
            fprintf(stderr, "cpvm %s: the compiler backend is unavailable (%s); using the interpreter\n", cmd,
                    why ? why : "unknown reason");
        return;
    }
    if (cpvm_module_sandbox(m) == CPVM_SANDBOX_ZYGOTE || said_unsandboxed) return;
    said_unsandboxed = true;
    if (sandbox == CPVM_SANDBOX_NONE)
        fprintf(stderr, "cpvm %s: --sandbox none: compiled guest code runs UNSANDBOXED in this process\n", cmd);
    else
        fprintf(stderr,
                "cpvm %s: warning: the zygote sandbox was asked for, but compiled guest code runs UNSANDBOXED in "
                "this process%s%s\n",
                cmd, why ? ": " : "", why ? why : "");
}

void cli_escape_bytes(const uint8_t *bytes, size_t len, char *buf, size_t cap)
{
    size_t o = 0;
    if (cap == 0) return;
    for (size_t i = 0; i < len; i++) {
        char tmp[5];
        uint8_t c = bytes[i];
        if (c == '\\' || c == '"') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tmp[2] = 0;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[0] = (char)c;
            tmp[1] = 0;
        } else {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
        }
        size_t t = strlen(tmp);
        if (o + t + 4 > cap) {
            if (o + 4 <= cap) memcpy(buf + o, "...", 3), o += 3;
            break;
        }
        memcpy(buf + o, tmp, t);
        o += t;
    }
    buf[o < cap ? o : cap - 1] = 0;
}

bool cli_option(int argc, char **argv, int *i, const char *name, const char **value, bool *missing,
                const char *cmd)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return false;
    if (a[n] == '=') {
        *value = a + n + 1;
        return true;
    }
    if (a[n] != 0) return false;
    if (*i + 1 >= argc) {
        fprintf(stderr, "cpvm %s: option %s needs a value\n", cmd, name);
        *missing = true;
        return false;
    }
    *i += 1;
    *value = argv[*i];
    return true;
}

/* ---- exact JSON numbers -------------------------------------------------- */

struct num_tokens {
    const char *text;
    size_t *start, *len;
    size_t count, cap, next;
};

static bool is_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' || c == 'E' || c == '.';
}

/* Finds the number tokens of the text in document order, the way cJSON cuts
 * them (a number starts with '-' or a digit outside strings and runs over
 * [0-9+-eE.]); a well-formed document has one token per number value. */
static bool scan_numbers(const char *text, size_t len, struct num_tokens *t)
{
    size_t i = 0;
    while (i < len) {
        char c = text[i];
        if (c == '"') {
            i++;
            while (i < len && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
            i++;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t s = i;
            while (i < len && is_number_char(text[i])) i++;
            if (t->count == t->cap) {
                size_t ncap = t->cap ? t->cap * 2 : 256;
                size_t *ns = realloc(t->start, ncap * sizeof *ns);
                if (!ns) return false;
                t->start = ns;
                size_t *nl = realloc(t->len, ncap * sizeof *nl);
                if (!nl) return false;
                t->len = nl;
                t->cap = ncap;
            }
            t->start[t->count] = s;
            t->len[t->count] = i - s;
            t->count++;
        } else {
            i++;
        }
    }
    return true;
}

static bool attach_numbers(cJSON *item, struct num_tokens *t)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item)) {
            if (t->next >= t->count) return false;
            size_t n = t->len[t->next];
            char *s = malloc(n + 1);
            if (!s) return false;
            memcpy(s, t->text + t->start[t->next], n);
            s[n] = 0;
            t->next++;
            free(item->valuestring);
            item->valuestring = s;
        } else if (item->child) {
            if (!attach_numbers(item->child, t)) return false;
        }
    }
    return true;
}

cJSON *cli_json_parse_exact(const char *text, size_t len, char *errbuf, size_t errcap)
{
    if (memchr(text, 0, len)) {
        snprintf(errbuf, errcap, "invalid JSON: NUL byte in the text");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, true);
    if (!root) {
        size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        snprintf(errbuf, errcap, "invalid JSON at offset %zu", off);
        return NULL;
    }
    struct num_tokens t = {.text = text};
    bool ok = scan_numbers(text, len, &t) && attach_numbers(root, &t) && t.next == t.count;
    free(t.start);
    free(t.len);
    if (!ok) {
        snprintf(errbuf, errcap, "cannot read the JSON numbers exactly");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

static bool json_digits(const char *s, uint64_t *out)
{
    if (!*s) return false;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool cli_json_u64(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item) || !item->valuestring) return false;
    return json_digits(item->valuestring, out);
}

bool cli_json_i64(const cJSON *item, int64_t *out)
{
    if (!cJSON_IsNumber(item) || !item->valuestring) return false;
    const char *s = item->valuestring;
    bool neg = *s == '-';
    uint64_t mag;
    if (!json_digits(neg ? s + 1 : s, &mag)) return false;
    if (neg) {
        if (mag > (uint64_t)INT64_MAX + 1) return false;
        *out = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    } else {
        if (mag > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)mag;
    }
    return true;
}

bool cli_json_u32(const cJSON *item, uint32_t *out)
{
    uint64_t v;
    if (!cli_json_u64(item, &v) || v > UINT32_MAX) return false;
    *out = (uint32_t)v;
    return true;
}

cJSON *cli_json_raw_u64(uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    return cJSON_CreateRaw(buf);
}

cJSON *cli_json_raw_i64(int64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    return cJSON_CreateRaw(buf);
}

/* The compiler backend handles guest faults with its own SIGSEGV handler; under
 * ASan (the sanitizer build of this tool) that needs allow_user_segv_handler. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allow_user_segv_handler=1"; }
