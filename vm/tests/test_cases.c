/* Behaviour tests written as data: every vm/tests/cases/<name>.case file holds
 * cases of the form
 *
 *   == case name
 *   -- asm
 *   <assembly text, isa.md §11>
 *   -- setup                          (optional, one directive a line)
 *   isa latest32 | memory dynamic | compat gp04|gp | gas N | no-gas | async-gas | entry NAME|PC
 *   raw-regs | reg NAME = V | map ADDR LEN rw|ro | write ADDR = HEX | aux N
 *   steps N | ecalli-ret N = V | stop-on-ecalli | page N
 *   -- expect
 *   status halt|panic|ecalli|page-fault|out-of-gas|steps
 *   pc N | gas N | fault ADDR | hostcall N | hostcalls N N ... | reg NAME = V
 *   mem ADDR = HEX | unreadable ADDR LEN | load-error
 *
 * and each case runs on every backend. The files of sandbox-tests/guest (guest-level
 * attack cases, sandbox.md §11.2) use the same format and run the same way.
 * Numbers are decimal or 0x-hex; `//` starts a comment in setup and expect sections. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp/interp.h"
#include "testutil.h"
#include "text/text.h"

#define MAX_LIST 64

struct case_def {
    char name[128];
    const char *file;
    int line;
    char *asm_text;
    /* setup */
    cpvm_isa isa;
    cpvm_memory_model memory;
    cpvm_compat compat;
    bool metered, async_gas, raw_regs, stop_on_ecalli;
    int64_t gas;
    char entry[64];
    uint32_t page, aux;
    uint64_t steps;
    int nregs;
    struct { int reg; uint64_t v; } regs[16];
    int nmaps;
    struct { uint32_t addr, len; bool rw; } maps[16];
    int nwrites;
    struct { uint32_t addr; uint8_t bytes[256]; size_t len; } writes[8];
    int nrets;
    struct { uint32_t n; uint64_t v; } rets[8];
    /* expectations */
    bool load_error;
    const char *status;
    bool has_pc, has_gas, has_fault, has_hostcall, has_hostcalls;
    uint32_t pc, fault, hostcall;
    int64_t exp_gas;
    int nhost;
    uint32_t hostcalls[MAX_LIST];
    int nexp_regs;
    struct { int reg; uint64_t v; } exp_regs[16];
    int nmem;
    struct { uint32_t addr; uint8_t bytes[256]; size_t len; bool unreadable; } mem[8];
};

static const char *const statuses[] = {"halt", "panic", "ecalli", "page-fault", "out-of-gas", "steps"};

static uint64_t num(const char *s, const struct case_def *c)
{
    char *end;
    errno = 0;
    bool neg = *s == '-';
    uint64_t v = strtoull(neg ? s + 1 : s, &end, 0);
    if (errno || end == s || (*end && *end != ' ')) fail_msg("%s:%d: bad number '%s'", c->file, c->line, s);
    return neg ? (uint64_t)-(int64_t)v : v;
}

static int reg_of(const char *s, const struct case_def *c)
{
    char name[8] = {0};
    sscanf(s, "%7s", name);
    int r = cpvm_reg_from_name(name);
    if (r < 0) fail_msg("%s:%d: bad register '%s'", c->file, c->line, s);
    return r;
}

static void setup_line(struct case_def *c, char *l)
{
    char *eq = strchr(l, '=');
    if (!strncmp(l, "isa ", 4)) {
        if (!cpvm_isa_from_name(l + 4, &c->isa)) fail_msg("%s:%d: isa", c->file, c->line);
    } else if (!strcmp(l, "memory dynamic")) c->memory = CPVM_MEMORY_DYNAMIC;
    else if (!strcmp(l, "compat gp04")) c->compat = CPVM_COMPAT_GP_V04;
    else if (!strcmp(l, "compat gp")) c->compat = CPVM_COMPAT_GP;
    else if (!strncmp(l, "gas ", 4)) c->gas = (int64_t)num(l + 4, c);
    else if (!strcmp(l, "no-gas")) c->metered = false;
    else if (!strcmp(l, "async-gas")) c->async_gas = true;
    else if (!strncmp(l, "entry ", 6)) snprintf(c->entry, sizeof c->entry, "%s", l + 6);
    else if (!strcmp(l, "raw-regs")) c->raw_regs = true;
    else if (!strcmp(l, "stop-on-ecalli")) c->stop_on_ecalli = true;
    else if (!strncmp(l, "steps ", 6)) c->steps = num(l + 6, c);
    else if (!strncmp(l, "page ", 5)) c->page = (uint32_t)num(l + 5, c);
    else if (!strncmp(l, "aux ", 4)) c->aux = (uint32_t)num(l + 4, c);
    else if (!strncmp(l, "reg ", 4) && eq) {
        c->regs[c->nregs].reg = reg_of(l + 4, c);
        c->regs[c->nregs++].v = num(eq + 2, c);
    } else if (!strncmp(l, "map ", 4)) {
        char a[32], n[32], m[8];
        if (sscanf(l + 4, "%31s %31s %7s", a, n, m) != 3) fail_msg("%s:%d: map", c->file, c->line);
        c->maps[c->nmaps].addr = (uint32_t)num(a, c);
        c->maps[c->nmaps].len = (uint32_t)num(n, c);
        c->maps[c->nmaps++].rw = !strcmp(m, "rw");
    } else if (!strncmp(l, "write ", 6) && eq) {
        c->writes[c->nwrites].addr = (uint32_t)num(l + 6, c);
        c->writes[c->nwrites].len = tu_hex(eq + 1, c->writes[c->nwrites].bytes, 256);
        c->nwrites++;
    } else if (!strncmp(l, "ecalli-ret ", 11) && eq) {
        c->rets[c->nrets].n = (uint32_t)num(l + 11, c);
        c->rets[c->nrets++].v = num(eq + 2, c);
    } else fail_msg("%s:%d: unknown setup '%s'", c->file, c->line, l);
}

static void expect_line(struct case_def *c, char *l)
{
    char *eq = strchr(l, '=');
    if (!strncmp(l, "status ", 7)) {
        c->status = NULL;
        for (size_t i = 0; i < 6; i++)
            if (!strcmp(l + 7, statuses[i])) c->status = statuses[i];
        if (!c->status) fail_msg("%s:%d: status", c->file, c->line);
    } else if (!strcmp(l, "load-error")) c->load_error = true;
    else if (!strncmp(l, "pc ", 3)) c->has_pc = true, c->pc = (uint32_t)num(l + 3, c);
    else if (!strncmp(l, "gas ", 4)) c->has_gas = true, c->exp_gas = (int64_t)num(l + 4, c);
    else if (!strncmp(l, "fault ", 6)) c->has_fault = true, c->fault = (uint32_t)num(l + 6, c);
    else if (!strncmp(l, "hostcall ", 9)) c->has_hostcall = true, c->hostcall = (uint32_t)num(l + 9, c);
    else if (!strncmp(l, "hostcalls", 9)) {
        c->has_hostcalls = true;
        for (char *t = strtok(l + 9, " "); t && c->nhost < MAX_LIST; t = strtok(NULL, " "))
            c->hostcalls[c->nhost++] = (uint32_t)num(t, c);
    } else if (!strncmp(l, "reg ", 4) && eq) {
        c->exp_regs[c->nexp_regs].reg = reg_of(l + 4, c);
        c->exp_regs[c->nexp_regs++].v = num(eq + 2, c);
    } else if (!strncmp(l, "mem ", 4) && eq) {
        c->mem[c->nmem].addr = (uint32_t)num(l + 4, c);
        c->mem[c->nmem].len = tu_hex(eq + 1, c->mem[c->nmem].bytes, 256);
        c->nmem++;
    } else if (!strncmp(l, "unreadable ", 11)) {
        char a[32], n[32];
        if (sscanf(l + 11, "%31s %31s", a, n) != 2) fail_msg("%s:%d: unreadable", c->file, c->line);
        c->mem[c->nmem].addr = (uint32_t)num(a, c);
        c->mem[c->nmem].len = (size_t)num(n, c);
        c->mem[c->nmem++].unreadable = true;
    } else fail_msg("%s:%d: unknown expectation '%s'", c->file, c->line, l);
}

static char *trim(char *s)
{
    char *cmt = strstr(s, "//");
    if (cmt) *cmt = 0;
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = 0;
    return s;
}

/* Runs one case on one backend; fails the test with the first mismatch. */
/* Backends as run here: 0 interpreter, 1 compiler in the zygote sandbox, 2 the
 * compiler unsandboxed (in-process). */
#define UNSANDBOXED 2

/* The interpreter's fused kinds (fuse.def) and forwarding copies (accfwd.def)
 * in the op streams of the cases run without step tracing: each must occur,
 * or its handler goes untested. */
static bool fused_seen[IOP_COUNT];
#define FIRST_FUSED IOP_reverse_byte_32 + 1

static void note_fused(const cpvm_instance *in)
{
    if (in->step_on) return;
    for (uint32_t i = 0; i < in->nops; i++)
        if (in->ops[i].kind >= FIRST_FUSED) fused_seen[in->ops[i].kind] = true;
}

static void run_case(struct case_def *c, int variant)
{
    cpvm_backend backend = variant == UNSANDBOXED ? CPVM_BACKEND_COMPILER : (cpvm_backend)variant;
    if (getenv("CPVM_TRACE_CASES")) fprintf(stderr, "case %s: %s (backend %d)\n", c->file, c->name, backend);
    uint8_t *blob;
    size_t len;
    struct cpvm_error e = {0};
    cpvm_status s = text_assemble(c->asm_text, strlen(c->asm_text), c->isa, false, &blob, &len, &e);
    if (s) fail_msg("%s: %s: assembly line %llu: %s", c->file, c->name, (unsigned long long)e.offset, e.detail);
    cpvm_program *p;
    if (cpvm_program_parse(blob, len, 0, &p, &e)) fail_msg("%s: %s: parse: %s", c->file, c->name, e.detail);
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.backend = backend;
    cfg.sandbox = variant == UNSANDBOXED ? CPVM_SANDBOX_NONE : CPVM_SANDBOX_ZYGOTE;
    cfg.memory_model = c->memory;
    cfg.compat = c->compat;
    cfg.gas_metering = c->metered;
    cfg.gas_async = c->async_gas;
    cfg.step_tracing = c->steps != 0;
    cfg.aux_data_size = c->aux;
    if (c->page) cfg.page_size = c->page;
    cpvm_module *m;
    s = cpvm_module_new(p, &cfg, &m, &e);
    if (c->load_error) {
        if (!s) fail_msg("%s: %s: expected a load error", c->file, c->name);
        cpvm_program_free(p);
        free(blob);
        return;
    }
    if (s) fail_msg("%s: %s: module: %s", c->file, c->name, e.detail);
    const char *why = NULL;
    /* the GP's control flow is interpreted whatever the backend asked for */
    if (cpvm_module_backend(m, &why) != (c->compat == CPVM_COMPAT_GP ? CPVM_BACKEND_INTERPRETER : backend))
        fail_msg("%s: %s: backend %d not in use (%s)", c->file, c->name, backend, why ? why : "?");
    cpvm_instance *in;
    assert_int_equal(cpvm_instance_new(m, &in, &e), CPVM_OK);
    uint32_t entry = 0;
    if (c->entry[0]) {
        if (!cpvm_program_find_export(p, c->entry, &entry)) entry = (uint32_t)num(c->entry, c);
    } else {
        struct cpvm_symbol sym;
        if (cpvm_program_export(p, 0, &sym)) entry = sym.pc;
    }
    if (c->raw_regs) cpvm_instance_set_next_pc(in, entry);
    else cpvm_instance_prepare_call(in, entry);
    for (int i = 0; i < c->nregs; i++) cpvm_instance_set_reg(in, (unsigned)c->regs[i].reg, c->regs[i].v);
    for (int i = 0; i < c->nmaps; i++)
        assert_int_equal(cpvm_instance_map_pages(in, c->maps[i].addr, c->maps[i].len, c->maps[i].rw), CPVM_OK);
    for (int i = 0; i < c->nwrites; i++)
        assert_int_equal(cpvm_instance_write_memory(in, c->writes[i].addr, c->writes[i].bytes, c->writes[i].len),
                         CPVM_OK);
    cpvm_instance_set_gas(in, c->gas);
    if (c->steps) cpvm_instance_set_step_limit(in, c->steps);

    struct cpvm_interrupt out;
    uint32_t seen[MAX_LIST];
    int nseen = 0;
    for (int guard = 0;; guard++) {
        if (guard > 100000) fail_msg("%s: %s: too many host calls", c->file, c->name);
        assert_int_equal(cpvm_instance_run(in, &out), CPVM_OK);
        if (out.exit != CPVM_EXIT_ECALLI || c->stop_on_ecalli) break;
        if (nseen < MAX_LIST) seen[nseen++] = out.hostcall;
        for (int i = 0; i < c->nrets; i++)
            if (c->rets[i].n == out.hostcall) cpvm_instance_set_reg(in, CPVM_REG_A0, c->rets[i].v);
    }

    if (backend == CPVM_BACKEND_INTERPRETER) note_fused(in);
    if (!cpvm_instance_integrity_ok(in)) fail_msg("%s: %s (backend %d): integrity check failed", c->file, c->name, backend);
    const char *got = cpvm_exit_name(out.exit);
    if (c->status && strcmp(got, c->status))
        fail_msg("%s: %s (backend %d): status %s, expected %s (pc %u)", c->file, c->name, backend, got, c->status,
                 out.pc);
    if (c->has_pc && out.pc != c->pc)
        fail_msg("%s: %s (backend %d): pc %u, expected %u", c->file, c->name, backend, out.pc, c->pc);
    if (c->has_gas && cpvm_instance_gas(in) != c->exp_gas)
        fail_msg("%s: %s (backend %d): gas %lld, expected %lld", c->file, c->name, backend,
                 (long long)cpvm_instance_gas(in), (long long)c->exp_gas);
    if (c->has_fault && out.fault_address != c->fault)
        fail_msg("%s: %s (backend %d): fault 0x%x, expected 0x%x", c->file, c->name, backend, out.fault_address,
                 c->fault);
    if (c->has_hostcall && out.hostcall != c->hostcall)
        fail_msg("%s: %s (backend %d): hostcall %u, expected %u", c->file, c->name, backend, out.hostcall,
                 c->hostcall);
    if (c->has_hostcalls) {
        if (nseen != c->nhost || memcmp(seen, c->hostcalls, (size_t)nseen * sizeof *seen))
            fail_msg("%s: %s (backend %d): host call sequence differs (%d seen, %d expected)", c->file, c->name,
                     backend, nseen, c->nhost);
    }
    for (int i = 0; i < c->nexp_regs; i++) {
        uint64_t v = cpvm_instance_reg(in, (unsigned)c->exp_regs[i].reg);
        if (v != c->exp_regs[i].v)
            fail_msg("%s: %s (backend %d): reg %s = 0x%llx, expected 0x%llx", c->file, c->name, backend,
                     cpvm_reg_name((unsigned)c->exp_regs[i].reg), (unsigned long long)v,
                     (unsigned long long)c->exp_regs[i].v);
    }
    for (int i = 0; i < c->nmem; i++) {
        uint8_t buf[256];
        cpvm_status rs = cpvm_instance_read_memory(in, c->mem[i].addr, buf, c->mem[i].len);
        if (c->mem[i].unreadable) {
            if (rs == CPVM_OK) fail_msg("%s: %s: 0x%x should be unreadable", c->file, c->name, c->mem[i].addr);
            continue;
        }
        if (rs) fail_msg("%s: %s: memory 0x%x unreadable", c->file, c->name, c->mem[i].addr);
        for (size_t k = 0; k < c->mem[i].len; k++)
            if (buf[k] != c->mem[i].bytes[k])
                fail_msg("%s: %s (backend %d): byte 0x%x = 0x%02x, expected 0x%02x", c->file, c->name, backend,
                         c->mem[i].addr + (uint32_t)k, buf[k], c->mem[i].bytes[k]);
    }
    cpvm_instance_free(in);
    cpvm_module_free(m);
    cpvm_program_free(p);
    free(blob);
}

static const int backends[] = {CPVM_BACKEND_INTERPRETER, CPVM_BACKEND_COMPILER, UNSANDBOXED};

static int run_file(const char *path)
{
    size_t len;
    char *text = (char *)tu_read_file(path, &len);
    if (!text) fail_msg("cannot read %s", path);
    int cases = 0;
    char *save = NULL;
    struct case_def *c = NULL;
    enum { NONE, ASM, SETUP, EXPECT } section = NONE;
    size_t asm_cap = 0, asm_len = 0;
    int line = 0;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    for (char *l = strtok_r(text, "\n", &save);; l = strtok_r(NULL, "\n", &save)) {
        line++;
        if (!l || !strncmp(l, "== ", 3)) {
            if (c) {
                if (!c->status && !c->load_error) fail_msg("%s: %s: no status expected", base, c->name);
                for (size_t b = 0; b < sizeof backends / sizeof *backends; b++) run_case(c, backends[b]);
                free(c->asm_text);
                free(c);
                cases++;
            }
            if (!l) break;
            c = calloc(1, sizeof *c);
            snprintf(c->name, sizeof c->name, "%s", l + 3);
            c->file = base;
            c->isa = CPVM_ISA_LATEST64;
            c->metered = true;
            c->gas = 1000000;
            asm_cap = 4096;
            asm_len = 0;
            c->asm_text = calloc(1, asm_cap);
            section = NONE;
            continue;
        }
        if (!c) continue;
        c->line = line;
        if (!strncmp(l, "-- asm", 6)) { section = ASM; continue; }
        if (!strncmp(l, "-- setup", 8)) { section = SETUP; continue; }
        if (!strncmp(l, "-- expect", 9)) { section = EXPECT; continue; }
        if (section == ASM) {
            size_t n = strlen(l);
            while (asm_len + n + 2 > asm_cap) c->asm_text = realloc(c->asm_text, asm_cap *= 2);
            memcpy(c->asm_text + asm_len, l, n);
            asm_len += n;
            c->asm_text[asm_len++] = '\n';
            c->asm_text[asm_len] = 0;
            continue;
        }
        char *t = trim(l);
        if (!*t) continue;
        if (section == SETUP) setup_line(c, t);
        else if (section == EXPECT) expect_line(c, t);
    }
    free(text);
    return cases;
}

/* The behaviour cases, and the guest-level attack cases of sandbox-tests/guest
 * (sandbox.md §11.2): each directory must contribute its cases. */
static void test_all_case_files(void **state)
{
    (void)state;
    static const struct { const char *dir; int min; } dirs[] = {
        {"vm/tests/cases", 40},
        {"sandbox-tests/guest", 150},
    };
    int total = 0, nfiles = 0;
    for (size_t d = 0; d < sizeof dirs / sizeof *dirs; d++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "%s/%s", tu_source_dir(), dirs[d].dir);
        char **files = tu_list_dir(dir, ".case");
        int cases = 0;
        for (char **f = files; *f; f++, nfiles++) cases += run_file(*f);
        tu_free_list(files);
        printf("%s: %d cases\n", dirs[d].dir, cases);
        if (cases < dirs[d].min) fail_msg("%s: %d cases, expected at least %d", dir, cases, dirs[d].min);
        total += cases;
    }
    printf("ran %d cases from %d files on %zu backend(s)\n", total, nfiles, sizeof backends / sizeof *backends);
    static const char *const fused_names[] = {
#define FUSE(x, y, fwd) [IOP_F_##x##__##y] = #x " + " #y,
#define FUSE3(x, y, z, fwd) [IOP_F_##x##__##y##__##z] = #x " + " #y " + " #z,
#include "interp/fuse.def"
#undef FUSE
#undef FUSE3
#define ACC(op, field, first) [IOP_ACC_##field##_##op] = #op " forwarding " #field " (accfwd.def)",
#include "interp/accfwd.def"
#undef ACC
    };
    int missing = 0;
    for (int k = FIRST_FUSED; k < IOP_COUNT; k++)
        if (!fused_seen[k]) {
            fprintf(stderr, "no case runs the interpreter op %s\n", fused_names[k]);
            missing++;
        }
    if (missing) fail_msg("%d fused or forwarding ops untested", missing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_all_case_files)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
