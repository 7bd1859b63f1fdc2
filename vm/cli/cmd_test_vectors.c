/* cpvm test-vectors [--backend interpreter|compiler] [--sandbox zygote|none] [--cost-model M]
 *                   [--check-block-costs] [--verbose] PATH...
 *
 * Checks JSON test vectors (execution.md §9): the flat JAM PVM v0.4 format
 * ("initial-regs", "expected-status", ...) and the step-based PolkaVM 0.35
 * spectool format ("steps", "block-gas-costs"). Prints one FAIL line per
 * failing vector and a closing "N passed, N failed". */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "util.h"

static const char *const CMD = "test-vectors";

/* The backend every vector runs on (--backend), and where compiled code runs (--sandbox). */
static cpvm_backend g_backend = CPVM_BACKEND_INTERPRETER;
static cpvm_sandbox g_sandbox = CPVM_SANDBOX_DEFAULT;
/* --cost-model: replaces the spectool vectors' block-gas-costs; --check-block-costs
 * compares every block's cost under it with that table. */
static bool g_model_set, g_check_costs;
static struct cpvm_cost_model g_model;
static unsigned long g_blocks_matched, g_blocks_mismatched;

#define TV_PAGE_SIZE 4096u
#define TV_MAX_MAPPED (64ull << 20) /* bytes mapped by one vector, all map steps together */

static void usage(FILE *out)
{
    fputs("usage: cpvm test-vectors [--backend interpreter|compiler] [--sandbox zygote|none]\n"
          "                         [--cost-model M] [--check-block-costs] [--verbose] PATH...\n"
          CLI_SANDBOX_USAGE
          CLI_COST_MODEL_USAGE
          "                        (spectool vectors: used instead of their block-gas-costs)\n"
          "  --check-block-costs   compare every block's cost under --cost-model with the\n"
          "                        vector's block-gas-costs; prints each mismatch, then\n"
          "                        'N blocks matched, M mismatched' (a mismatch fails the run)\n"
          "  Each PATH is a test vector (.json) or a directory of them (every *.json,\n"
          "  by name; files without a \"program\" are skipped). Supports the JAM PVM v0.4\n"
          "  vectors and the PolkaVM 0.35 spectool vectors. Prints FAIL lines and\n"
          "  'N passed, N failed'; exits 0 when none failed, 1 otherwise.\n",
          out);
}

/* ---- one vector's machine ------------------------------------------------ */

struct region {
    uint32_t address, length;
};

struct expected_byte {
    uint32_t address;
    uint8_t value;
    size_t order; /* position in the vector, to sort stably */
};

struct tv {
    char msg[768];
    const char *name; /* for MISMATCH lines */
    cpvm_program *prog;
    cpvm_module *mod;
    cpvm_instance *inst;
    struct region *regions;
    size_t nregions, capregions;
    uint64_t mapped;
    struct cpvm_interrupt last;
    bool ran;
};

static bool failf(struct tv *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool failf(struct tv *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->msg, sizeof t->msg, fmt, ap);
    va_end(ap);
    return false;
}

static void format_error(const struct cpvm_error *err, char *buf, size_t cap)
{
    size_t n = strnlen(err->detail, sizeof err->detail);
    snprintf(buf, cap, "%s at offset %" PRIu64 "%s%.*s", cpvm_status_message(err->code), err->offset,
             n ? ": " : "", (int)n, err->detail);
}

static void tv_free(struct tv *t)
{
    if (t->inst) cpvm_instance_free(t->inst);
    if (t->mod) cpvm_module_free(t->mod);
    if (t->prog) cpvm_program_free(t->prog);
    free(t->regions);
    t->inst = NULL;
    t->mod = NULL;
    t->prog = NULL;
    t->regions = NULL;
}

/* ---- reading fields ------------------------------------------------------ */

static const cJSON *field(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static bool get_u32(struct tv *t, const cJSON *obj, const char *key, const char *ctx, uint32_t *out)
{
    const cJSON *v = field(obj, key);
    if (!v) return failf(t, "%s%s: missing", ctx, key);
    if (!cli_json_u32(v, out)) return failf(t, "%s%s: not a u32", ctx, key);
    return true;
}

static bool get_i64(struct tv *t, const cJSON *obj, const char *key, const char *ctx, int64_t *out)
{
    const cJSON *v = field(obj, key);
    if (!v) return failf(t, "%s%s: missing", ctx, key);
    if (!cli_json_i64(v, out)) return failf(t, "%s%s: not an i64", ctx, key);
    return true;
}

static bool get_bool(struct tv *t, const cJSON *obj, const char *key, const char *ctx, bool *out)
{
    const cJSON *v = field(obj, key);
    if (!v) return failf(t, "%s%s: missing", ctx, key);
    if (!cJSON_IsBool(v)) return failf(t, "%s%s: not a boolean", ctx, key);
    *out = cJSON_IsTrue(v);
    return true;
}

/* A JSON array of u8 into a malloc'd buffer (non-NULL even when empty). */
static bool get_bytes(struct tv *t, const cJSON *obj, const char *key, const char *ctx, uint8_t **out, size_t *len)
{
    const cJSON *v = field(obj, key);
    if (!v) return failf(t, "%s%s: missing", ctx, key);
    if (!cJSON_IsArray(v)) return failf(t, "%s%s: not an array of bytes", ctx, key);
    size_t n = 0;
    for (const cJSON *e = v->child; e; e = e->next) n++;
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return failf(t, "%s%s: out of memory", ctx, key);
    size_t i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        uint32_t x;
        if (!cli_json_u32(e, &x) || x > 255) {
            free(b);
            return failf(t, "%s%s[%zu]: not a byte", ctx, key, i);
        }
        b[i] = (uint8_t)x;
    }
    *out = b;
    *len = n;
    return true;
}

/* 13 register values. */
static bool get_regs(struct tv *t, const cJSON *v, const char *what, uint64_t regs[CPVM_REG_COUNT])
{
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != CPVM_REG_COUNT)
        return failf(t, "%s: not an array of %d u64 values", what, CPVM_REG_COUNT);
    unsigned r = 0;
    for (const cJSON *e = v->child; e; e = e->next, r++)
        if (!cli_json_u64(e, &regs[r])) return failf(t, "%s[%u]: not a u64", what, r);
    return true;
}

/* ---- building the machine -------------------------------------------------- */

static bool load(struct tv *t, const cJSON *root, cpvm_isa isa, cpvm_compat compat, const struct cpvm_block_cost *costs,
                 size_t ncosts)
{
    uint8_t *bytes;
    size_t len;
    if (!get_bytes(t, root, "program", "", &bytes, &len)) return false;
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    char ebuf[400];
    cpvm_status st = cpvm_program_parse_raw(bytes, len, isa, 0, &t->prog, &err);
    free(bytes);
    if (st != CPVM_OK || !t->prog) {
        t->prog = NULL;
        format_error(&err, ebuf, sizeof ebuf);
        return failf(t, "program: %s", ebuf);
    }
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.backend = g_backend;
    cfg.memory_model = CPVM_MEMORY_DYNAMIC;
    cfg.compat = compat;
    cfg.page_size = TV_PAGE_SIZE;
    cfg.aux_data_size = 0;
    cfg.gas_metering = true;
    cfg.cost_model.kind = costs ? CPVM_COST_BLOCK_TABLE : CPVM_COST_NAIVE;
    cfg.cost_model.blocks = costs;
    cfg.cost_model.count = ncosts;
    cfg.cost_model.missing_cost = 0;
    if (costs && g_model_set) cfg.cost_model = g_model;
    cfg.step_tracing = false;
    cfg.sandbox = g_sandbox;
    memset(&err, 0, sizeof err);
    st = cpvm_module_new(t->prog, &cfg, &t->mod, &err);
    if (st == CPVM_OK && t->mod) cli_note_backend(CMD, t->mod, g_backend, g_sandbox);
    if (st != CPVM_OK || !t->mod) {
        t->mod = NULL;
        format_error(&err, ebuf, sizeof ebuf);
        return failf(t, "module: %s", ebuf);
    }
    memset(&err, 0, sizeof err);
    st = cpvm_instance_new(t->mod, &t->inst, &err);
    if (st != CPVM_OK || !t->inst) {
        t->inst = NULL;
        format_error(&err, ebuf, sizeof ebuf);
        return failf(t, "instance: %s", ebuf);
    }
    return true;
}

static bool do_map(struct tv *t, const cJSON *m, const char *ctx)
{
    uint32_t address = 0, length = 0;
    bool writable = false;
    if (!cJSON_IsObject(m)) return failf(t, "%snot an object", ctx);
    if (!get_u32(t, m, "address", ctx, &address) || !get_u32(t, m, "length", ctx, &length) ||
        !get_bool(t, m, "is-writable", ctx, &writable))
        return false;
    if ((uint64_t)address + length > (1ull << 32))
        return failf(t, "%srange 0x%" PRIx32 "+0x%" PRIx32 " wraps around the address space", ctx, address, length);
    if (t->mapped + length > TV_MAX_MAPPED)
        return failf(t, "%smore than %llu bytes mapped in all (refused)", ctx, (unsigned long long)TV_MAX_MAPPED);
    cpvm_status st = cpvm_instance_map_pages(t->inst, address, length, writable);
    if (st != CPVM_OK)
        return failf(t, "%smapping 0x%" PRIx32 "+0x%" PRIx32 ": %s", ctx, address, length, cpvm_status_message(st));
    if (t->nregions == t->capregions) {
        size_t ncap = t->capregions ? t->capregions * 2 : 8;
        struct region *nr = realloc(t->regions, ncap * sizeof *nr);
        if (!nr) return failf(t, "%sout of memory", ctx);
        t->regions = nr;
        t->capregions = ncap;
    }
    t->regions[t->nregions++] = (struct region){address, length};
    t->mapped += length;
    return true;
}

static bool do_write(struct tv *t, const cJSON *w, const char *ctx)
{
    uint32_t address;
    uint8_t *bytes;
    size_t len;
    if (!cJSON_IsObject(w)) return failf(t, "%snot an object", ctx);
    if (!get_u32(t, w, "address", ctx, &address) || !get_bytes(t, w, "contents", ctx, &bytes, &len)) return false;
    cpvm_status st = CPVM_OK;
    if ((uint64_t)address + len > (1ull << 32))
        st = CPVM_E_BAD_ADDRESS;
    else if (len)
        st = cpvm_instance_write_memory(t->inst, address, bytes, len);
    free(bytes);
    if (st != CPVM_OK)
        return failf(t, "%swriting %zu bytes at 0x%" PRIx32 ": %s", ctx, len, address, cpvm_status_message(st));
    return true;
}

static bool do_run(struct tv *t)
{
    memset(&t->last, 0, sizeof t->last);
    cpvm_status st = cpvm_instance_run(t->inst, &t->last);
    if (st != CPVM_OK) return failf(t, "run: %s", cpvm_status_message(st));
    t->ran = true;
    return true;
}

/* ---- comparing ------------------------------------------------------------- */

static int cmp_expected(const void *a, const void *b)
{
    const struct expected_byte *x = a, *y = b;
    if (x->address != y->address) return x->address < y->address ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static int cmp_regions(const void *a, const void *b)
{
    const struct region *x = a, *y = b;
    if (x->address != y->address) return x->address < y->address ? -1 : 1;
    return x->length < y->length ? -1 : x->length > y->length;
}

/* Expected memory = {address, contents} runs of the non-zero bytes of the
 * mapped regions: every listed byte must match and every other mapped byte
 * must be zero. */
static bool check_memory(struct tv *t, const cJSON *expected)
{
    if (!cJSON_IsArray(expected)) return failf(t, "memory: expected value is not an array");
    size_t total = 0;
    for (const cJSON *c = expected->child; c; c = c->next) {
        const cJSON *contents = cJSON_IsObject(c) ? field(c, "contents") : NULL;
        if (cJSON_IsArray(contents)) total += (size_t)cJSON_GetArraySize(contents);
    }
    struct expected_byte *eb = malloc((total ? total : 1) * sizeof *eb);
    if (!eb) return failf(t, "memory: out of memory");
    size_t n = 0, chunk = 0;
    bool ok = true;
    for (const cJSON *c = expected->child; ok && c; c = c->next, chunk++) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "memory[%zu]: ", chunk);
        uint32_t address;
        uint8_t *bytes;
        size_t len;
        if (!cJSON_IsObject(c)) {
            ok = failf(t, "%snot an object", ctx);
            break;
        }
        if (!get_u32(t, c, "address", ctx, &address) || !get_bytes(t, c, "contents", ctx, &bytes, &len)) {
            ok = false;
            break;
        }
        if ((uint64_t)address + len > (1ull << 32)) {
            free(bytes);
            ok = failf(t, "%srun wraps around the address space", ctx);
            break;
        }
        for (size_t i = 0; i < len && n < total; i++, n++) eb[n] = (struct expected_byte){address + (uint32_t)i, bytes[i], n};
        free(bytes);
    }
    if (!ok) {
        free(eb);
        return false;
    }
    qsort(eb, n, sizeof *eb, cmp_expected);

    /* The mapped regions, sorted and merged (a map step may repeat pages). */
    struct region *iv = malloc((t->nregions ? t->nregions : 1) * sizeof *iv);
    size_t niv = 0;
    if (!iv) {
        free(eb);
        return failf(t, "memory: out of memory");
    }
    for (size_t r = 0; r < t->nregions; r++)
        if (t->regions[r].length) iv[niv++] = t->regions[r];
    qsort(iv, niv, sizeof *iv, cmp_regions);
    size_t m = 0;
    for (size_t r = 0; r < niv; r++) {
        uint64_t end = (uint64_t)iv[r].address + iv[r].length;
        if (m && iv[r].address <= (uint64_t)iv[m - 1].address + iv[m - 1].length) {
            uint64_t prev_end = (uint64_t)iv[m - 1].address + iv[m - 1].length;
            if (end > prev_end) iv[m - 1].length = (uint32_t)(end - iv[m - 1].address);
        } else {
            iv[m++] = iv[r];
        }
    }
    niv = m;

    /* Every mapped byte, a page-sized piece at a time. */
    uint8_t actual[TV_PAGE_SIZE], want[TV_PAGE_SIZE];
    size_t k = 0; /* next expected byte */
    for (size_t r = 0; ok && r < niv; r++) {
        uint64_t start = iv[r].address, end = start + iv[r].length;
        /* Expected bytes below this region are not mapped. */
        if (k < n && eb[k].address < start) {
            ok = failf(t, "memory at 0x%" PRIx32 ": expected 0x%02x, but the address is not mapped", eb[k].address,
                       eb[k].value);
            break;
        }
        for (uint64_t a = start; ok && a < end;) {
            uint64_t piece_end = (a / TV_PAGE_SIZE + 1) * TV_PAGE_SIZE;
            if (piece_end > end) piece_end = end;
            size_t len = (size_t)(piece_end - a);
            cpvm_status st = cpvm_instance_read_memory(t->inst, (uint32_t)a, actual, len);
            if (st != CPVM_OK) {
                ok = failf(t, "memory: cannot read mapped memory at 0x%" PRIx64 ": %s", a, cpvm_status_message(st));
                break;
            }
            memset(want, 0, len);
            for (; k < n && eb[k].address < piece_end; k++) want[eb[k].address - a] = eb[k].value;
            for (size_t i = 0; i < len; i++) {
                if (actual[i] != want[i]) {
                    ok = failf(t, "memory at 0x%" PRIx64 ": expected 0x%02x, got 0x%02x", a + i, want[i], actual[i]);
                    break;
                }
            }
            a = piece_end;
        }
    }
    if (ok && k < n)
        ok = failf(t, "memory at 0x%" PRIx32 ": expected 0x%02x, but the address is not mapped", eb[k].address,
                   eb[k].value);
    free(iv);
    free(eb);
    return ok;
}

struct expectation {
    const cJSON *status, *pc, *regs, *gas, *page_fault_address, *hostcall, *memory;
};

static bool check_state(struct tv *t, const struct expectation *e)
{
    if (!t->ran) return failf(t, "assert before any run");
    const struct cpvm_interrupt *in = &t->last;
    if (e->status) {
        if (!cJSON_IsString(e->status) || !e->status->valuestring)
            return failf(t, "status: expected value is not a string");
        const char *got = cpvm_exit_name(in->exit);
        if (!got || strcmp(e->status->valuestring, got) != 0)
            return failf(t, "status: expected %.64s, got %s", e->status->valuestring, got ? got : "?");
    }
    if (e->pc) {
        uint32_t pc;
        if (!cli_json_u32(e->pc, &pc)) return failf(t, "pc: expected value is not a u32");
        if (pc != in->pc) return failf(t, "pc: expected %" PRIu32 ", got %" PRIu32, pc, in->pc);
    }
    if (e->regs) {
        uint64_t regs[CPVM_REG_COUNT];
        if (!get_regs(t, e->regs, "regs", regs)) return false;
        for (unsigned r = 0; r < CPVM_REG_COUNT; r++) {
            uint64_t got = cpvm_instance_reg(t->inst, r);
            if (got != regs[r])
                return failf(t, "reg %s: expected %" PRIu64 ", got %" PRIu64, cpvm_reg_name(r), regs[r], got);
        }
    }
    if (e->gas) {
        int64_t gas;
        if (!cli_json_i64(e->gas, &gas)) return failf(t, "gas: expected value is not an i64");
        int64_t got = cpvm_instance_gas(t->inst);
        if (gas != got) return failf(t, "gas: expected %" PRId64 ", got %" PRId64, gas, got);
    }
    if (e->page_fault_address) {
        uint32_t addr;
        if (!cli_json_u32(e->page_fault_address, &addr))
            return failf(t, "page-fault-address: expected value is not a u32");
        if (in->exit != CPVM_EXIT_PAGE_FAULT)
            return failf(t, "page-fault-address: expected %" PRIu32 ", got none", addr);
        if (addr != in->fault_address)
            return failf(t, "page-fault-address: expected %" PRIu32 ", got %" PRIu32, addr, in->fault_address);
    }
    if (e->hostcall) {
        uint32_t n;
        if (!cli_json_u32(e->hostcall, &n)) return failf(t, "hostcall: expected value is not a u32");
        if (in->exit != CPVM_EXIT_ECALLI) return failf(t, "hostcall: expected %" PRIu32 ", got none", n);
        if (n != in->hostcall) return failf(t, "hostcall: expected %" PRIu32 ", got %" PRIu32, n, in->hostcall);
    }
    if (e->memory && !check_memory(t, e->memory)) return false;
    return true;
}

/* ---- the two formats ------------------------------------------------------- */

/* JAM PVM test vectors v0.4 (execution.md §9.2): one run. */
static bool run_v04(struct tv *t, const cJSON *root)
{
    uint64_t regs[CPVM_REG_COUNT];
    uint32_t pc;
    int64_t gas;
    const cJSON *v = field(root, "initial-regs");
    if (!v) return failf(t, "initial-regs: missing");
    if (!get_regs(t, v, "initial-regs", regs)) return false;
    if (!get_u32(t, root, "initial-pc", "", &pc) || !get_i64(t, root, "initial-gas", "", &gas)) return false;
    const cJSON *pages = field(root, "initial-page-map"), *mem = field(root, "initial-memory");
    if (pages && !cJSON_IsArray(pages)) return failf(t, "initial-page-map: not an array");
    if (mem && !cJSON_IsArray(mem)) return failf(t, "initial-memory: not an array");
    struct expectation e = {
        .status = field(root, "expected-status"),
        .pc = field(root, "expected-pc"),
        .regs = field(root, "expected-regs"),
        .gas = field(root, "expected-gas"),
        .page_fault_address = field(root, "expected-page-fault-address"),
        .memory = field(root, "expected-memory"),
    };
    if (!e.status) return failf(t, "expected-status: missing");

    if (!load(t, root, CPVM_ISA_LATEST64, CPVM_COMPAT_GP_V04, NULL, 0)) return false;
    size_t i = 0;
    for (const cJSON *p = pages ? pages->child : NULL; p; p = p->next, i++) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "initial-page-map[%zu]: ", i);
        if (!do_map(t, p, ctx)) return false;
    }
    i = 0;
    for (const cJSON *w = mem ? mem->child : NULL; w; w = w->next, i++) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "initial-memory[%zu]: ", i);
        if (!do_write(t, w, ctx)) return false;
    }
    for (unsigned r = 0; r < CPVM_REG_COUNT; r++) cpvm_instance_set_reg(t->inst, r, regs[r]);
    cpvm_instance_set_next_pc(t->inst, pc);
    cpvm_instance_set_gas(t->inst, gas);
    if (!do_run(t)) return false;
    return check_state(t, &e);
}

/* PolkaVM 0.35 spectool vectors (execution.md §9.3): a list of steps. */
static bool run_steps(struct tv *t, const cJSON *root)
{
    uint32_t pc;
    int64_t gas;
    if (!get_u32(t, root, "initial-pc", "", &pc) || !get_i64(t, root, "initial-gas", "", &gas)) return false;
    const cJSON *steps = field(root, "steps"), *costs = field(root, "block-gas-costs");
    if (!cJSON_IsArray(steps)) return failf(t, "steps: not an array");
    if (!cJSON_IsArray(costs)) return failf(t, "block-gas-costs: not an array");

    size_t ncosts = 0;
    for (const cJSON *c = costs->child; c; c = c->next) ncosts++;
    struct cpvm_block_cost *table = malloc((ncosts ? ncosts : 1) * sizeof *table);
    if (!table) return failf(t, "block-gas-costs: out of memory");
    size_t i = 0;
    for (const cJSON *c = costs->child; c; c = c->next, i++) {
        char ctx[48];
        snprintf(ctx, sizeof ctx, "block-gas-costs[%zu]: ", i);
        if (!cJSON_IsObject(c)) {
            free(table);
            return failf(t, "%snot an object", ctx);
        }
        if (!get_u32(t, c, "pc", ctx, &table[i].pc) || !get_u32(t, c, "cost", ctx, &table[i].cost)) {
            free(table);
            return false;
        }
    }
    /* The module copies the table. */
    bool loaded = load(t, root, CPVM_ISA_JAM_V1, CPVM_COMPAT_POLKAVM_035, table, ncosts);
    unsigned long bad = 0;
    for (size_t k = 0; loaded && g_check_costs && k < ncosts; k++) {
        uint32_t got = 0;
        if (!cpvm_module_block_cost(t->mod, table[k].pc, &got)) {
            printf("MISMATCH %s: block %" PRIu32 ": no block starts there (expected cost %" PRIu32 ")\n", t->name,
                   table[k].pc, table[k].cost);
            bad++;
        } else if (got != table[k].cost) {
            printf("MISMATCH %s: block %" PRIu32 ": cost %" PRIu32 ", expected %" PRIu32 "\n", t->name, table[k].pc,
                   got, table[k].cost);
            bad++;
        }
    }
    if (loaded && g_check_costs) {
        g_blocks_mismatched += bad;
        g_blocks_matched += ncosts - bad;
    }
    free(table);
    if (!loaded) return false;
    if (bad) return failf(t, "%lu block cost(s) differ from block-gas-costs", bad);
    cpvm_instance_set_next_pc(t->inst, pc);
    cpvm_instance_set_gas(t->inst, gas);

    i = 0;
    for (const cJSON *s = steps->child; s; s = s->next, i++) {
        char ctx[64];
        bool ok;
        if (!cJSON_IsObject(s) || !s->child || s->child->next || !s->child->string) {
            failf(t, "steps[%zu]: not an object with exactly one key", i);
            return false;
        }
        const cJSON *body = s->child;
        const char *kind = body->string;
        snprintf(ctx, sizeof ctx, "%s: ", kind);
        if (strcmp(kind, "map") == 0) {
            ok = do_map(t, body, ctx);
        } else if (strcmp(kind, "write") == 0) {
            ok = do_write(t, body, ctx);
        } else if (strcmp(kind, "set-reg") == 0) {
            uint32_t reg;
            uint64_t value;
            const cJSON *val = cJSON_IsObject(body) ? field(body, "value") : NULL;
            if (!cJSON_IsObject(body))
                ok = failf(t, "set-reg: not an object");
            else if (!get_u32(t, body, "reg", ctx, &reg))
                ok = false;
            else if (reg >= CPVM_REG_COUNT)
                ok = failf(t, "set-reg: reg: %" PRIu32 " is not a register (0..12)", reg);
            else if (!val)
                ok = failf(t, "set-reg: value: missing");
            else if (!cli_json_u64(val, &value))
                ok = failf(t, "set-reg: value: not a u64");
            else {
                cpvm_instance_set_reg(t->inst, reg, value);
                ok = true;
            }
        } else if (strcmp(kind, "run") == 0) {
            ok = do_run(t);
        } else if (strcmp(kind, "assert") == 0) {
            if (!cJSON_IsObject(body)) {
                ok = failf(t, "assert: not an object");
            } else {
                struct expectation e = {
                    .status = field(body, "status"),
                    .pc = field(body, "pc"),
                    .regs = field(body, "regs"),
                    .gas = field(body, "gas"),
                    .page_fault_address = field(body, "page-fault-address"),
                    .hostcall = field(body, "hostcall"),
                    .memory = field(body, "memory"),
                };
                ok = check_state(t, &e);
            }
        } else {
            ok = failf(t, "unknown step kind '%.40s'", kind);
        }
        if (!ok) {
            size_t len = strlen(t->msg);
            snprintf(t->msg + len, sizeof t->msg - len, " (step %zu)", i);
            return false;
        }
    }
    return true;
}

/* ---- files ----------------------------------------------------------------- */

struct totals {
    unsigned long passed, failed;
    bool verbose;
};

/* Prints a line, replacing control characters so that it stays one line. */
static void print_line(const char *prefix, const char *name, const char *msg)
{
    char esc[256];
    cli_escape_bytes((const uint8_t *)name, strlen(name), esc, sizeof esc);
    printf("%s %s", prefix, esc);
    if (msg) {
        fputs(": ", stdout);
        for (const char *p = msg; *p; p++) putchar((unsigned char)*p < 0x20 ? '?' : *p);
    }
    putchar('\n');
}

static char *file_stem(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".json") == 0) n -= 5;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, base, n);
        s[n] = 0;
    }
    return s;
}

static void check_file(const char *path, bool explicit_file, struct totals *tot)
{
    char *stem = file_stem(path);
    const char *shown = stem ? stem : path;
    size_t len;
    uint8_t *text = cli_read_file(CMD, path, &len);
    if (!text) {
        print_line("FAIL", shown, "cannot read the file");
        tot->failed++;
        free(stem);
        return;
    }
    char err[128];
    cJSON *root = cli_json_parse_exact((const char *)text, len, err, sizeof err);
    free(text);
    if (!root) {
        print_line("FAIL", shown, err);
        tot->failed++;
        free(stem);
        return;
    }
    if (!cJSON_IsObject(root) || !cJSON_GetObjectItemCaseSensitive(root, "program")) {
        if (explicit_file) fprintf(stderr, "cpvm test-vectors: %s: not a test vector (no \"program\"), skipped\n", path);
        cJSON_Delete(root);
        free(stem);
        return;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (cJSON_IsString(name) && name->valuestring && *name->valuestring) shown = name->valuestring;

    struct tv t;
    memset(&t, 0, sizeof t);
    t.name = shown;
    bool ok;
    if (field(root, "initial-regs") && field(root, "expected-status"))
        ok = run_v04(&t, root);
    else if (field(root, "steps") && field(root, "block-gas-costs"))
        ok = run_steps(&t, root);
    else
        ok = failf(&t, "unknown test vector format (neither v0.4 nor spectool steps)");
    tv_free(&t);
    if (ok) {
        tot->passed++;
        if (tot->verbose) print_line("PASS", shown, NULL);
    } else {
        tot->failed++;
        print_line("FAIL", shown, t.msg);
    }
    fflush(stdout);
    cJSON_Delete(root);
    free(stem);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool check_dir(const char *dir, struct totals *tot)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "cpvm test-vectors: %s: %s\n", dir, strerror(errno));
        return false;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 5, ".json") != 0) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nn = realloc(names, ncap * sizeof *nn);
            if (!nn) {
                ok = false;
                break;
            }
            names = nn;
            cap = ncap;
        }
        names[n] = malloc(strlen(dir) + len + 2);
        if (!names[n]) {
            ok = false;
            break;
        }
        sprintf(names[n], "%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", de->d_name);
        n++;
    }
    closedir(d);
    if (!ok) fprintf(stderr, "cpvm test-vectors: %s: out of memory\n", dir);
    if (ok) {
        qsort(names, n, sizeof *names, cmp_names);
        for (size_t i = 0; i < n; i++) {
            struct stat st;
            if (stat(names[i], &st) == 0 && S_ISDIR(st.st_mode)) continue;
            check_file(names[i], false, tot);
        }
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return ok;
}

int cmd_test_vectors(int argc, char **argv)
{
    struct totals tot = {0, 0, false};
    int npaths = 0;
    const char **paths = calloc((size_t)argc, sizeof *paths);
    if (!paths) {
        fprintf(stderr, "cpvm test-vectors: out of memory\n");
        return 2;
    }
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(argv[i], "--verbose") == 0 || strcmp(argv[i], "-v") == 0) {
            tot.verbose = true;
        } else if (cli_option(argc, argv, &i, "--backend", &v, &missing, CMD)) {
            if (!cli_parse_backend(CMD, v, &g_backend)) goto out;
        } else if (cli_option(argc, argv, &i, "--sandbox", &v, &missing, CMD)) {
            if (!cli_parse_sandbox(CMD, v, &g_sandbox)) goto out;
        } else if (cli_option(argc, argv, &i, "--cost-model", &v, &missing, CMD)) {
            if (!cli_parse_cost_model(CMD, v, &g_model)) goto out;
            g_model_set = true;
        } else if (strcmp(argv[i], "--check-block-costs") == 0) {
            g_check_costs = true;
        } else if (missing) {
            goto out;
        } else if (argv[i][0] == '-' && argv[i][1] != 0) {
            fprintf(stderr, "cpvm test-vectors: unknown option '%s'\n", argv[i]);
            usage(stderr);
            goto out;
        } else {
            struct stat st;
            if (stat(argv[i], &st) != 0) {
                fprintf(stderr, "cpvm test-vectors: %s: %s\n", argv[i], strerror(errno));
                goto out;
            }
            paths[npaths++] = argv[i];
        }
    }
    if (g_check_costs && !g_model_set) {
        fprintf(stderr, "cpvm test-vectors: --check-block-costs needs --cost-model\n");
        goto out;
    }
    if (npaths == 0) {
        fprintf(stderr, "cpvm test-vectors: no test vector files or directories given\n");
        usage(stderr);
        goto out;
    }
    for (int i = 0; i < npaths; i++) {
        struct stat st;
        if (stat(paths[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (!check_dir(paths[i], &tot)) goto out;
        } else {
            check_file(paths[i], true, &tot);
        }
    }
    if (tot.passed + tot.failed == 0) fprintf(stderr, "cpvm test-vectors: warning: no test vectors found\n");
    if (g_check_costs) printf("%lu blocks matched, %lu mismatched\n", g_blocks_matched, g_blocks_mismatched);
    printf("%lu passed, %lu failed\n", tot.passed, tot.failed);
    fflush(stdout);
    rc = tot.failed ? 1 : 0;
out:
    free(paths);
    return rc;
}
