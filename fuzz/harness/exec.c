/* The execution harness (exec.h): setup from the input framing, the
 * deterministic host, the run loop, outcomes and their comparison. */
#include "exec.h"
#include "gas_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAIL(...) exec_fail(su, __VA_ARGS__)

void exec_fail(const struct exec_setup *su, const char *fmt, ...)
{
    fprintf(stderr, "%s invariant violated: ", su->target);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (su->on_fail) su->on_fail(su->on_fail_arg);
    abort();
}

/* --- setup ------------------------------------------------------------------------ */

bool exec_setup_init(struct exec_setup *su, const char *target, const uint8_t *data, size_t size)
{
    memset(su, 0, sizeof *su);
    su->target = target;
    uint8_t cfgb = size > 0 ? data[0] : 0, seed = size > 1 ? data[1] : 0;
    const uint8_t *gin = size > 2 ? data + 2 : NULL;
    size_t glen = size > 2 ? size - 2 : 0;

    struct gen_config gcfg = GEN_CONFIG_INTERP_EXEC;
    if (gen_from_bytes(gin, glen, &gcfg, &su->g)) return false;
    struct cpvm_error err;
    if (cpvm_program_parse(su->g.blob, su->g.blob_len, CPVM_PARSE_BORROW, &su->prog, &err))
        FAIL("generated program does not parse: %s", err.detail);
    su->cfg = cfgb;
    su->seed = seed;
    su->dynamic = (cfgb & 1) != 0;
    su->metered = !((cfgb & 4) && !su->g.has_memset);
    su->refill = (cfgb & 0x40) != 0;
    su->reenter = (cfgb & 0x80) != 0;
    su->step_limit = su->metered ? su->g.step_limit : EXEC_UNMETERED_STEP_BUDGET;
    su->snapshot_full = EXEC_SNAPSHOT_FULL;
    cpvm_program_get_info(su->prog, &su->info);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ull;
    su->input_hash = h;
    return true;
}

static uint64_t mix(uint64_t x);

bool exec_sampled(const struct exec_setup *su, uint64_t salt, unsigned one_in)
{
    static int all = -1;
    if (all < 0) {
        const char *v = getenv("CPVM_FUZZ_CHECKS");
        all = v && strcmp(v, "all") == 0;
    }
    return all || one_in <= 1 || mix(su->input_hash ^ mix(salt)) % one_in == 0;
}

void exec_setup_free(struct exec_setup *su)
{
    cpvm_program_free(su->prog);
    su->prog = NULL;
    gen_program_free(&su->g);
}

void exec_module_config(const struct exec_setup *su, cpvm_backend backend, struct cpvm_module_config *mc)
{
    cpvm_module_config_default(mc);
    mc->backend = backend;
    mc->memory_model = su->dynamic ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD;
    mc->compat = (su->cfg & 2) ? CPVM_COMPAT_GP_V04 : CPVM_COMPAT_POLKAVM_035;
    mc->page_size = su->g.page_size;
    mc->aux_data_size = su->g.aux_size;
    mc->gas_metering = su->metered;
    mc->gas_async = su->metered && su->async;
    mc->step_tracing = su->step_limit != 0;
    const struct cpvm_cost_model *forced = exec_cost_model_override();
    if (forced) mc->cost_model = *forced;
}

/* --- outcomes and memory snapshots ---------------------------------------------------- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* A stop's words digested in four independent lanes (each step a bijection
 * of the word), then mixed: a step stop per instruction makes this the
 * harness's hottest loop, and one serial mix per word was most of it. */
static uint64_t digest_words(const uint64_t *w, size_t n)
{
    uint64_t a = 0x9e3779b97f4a7c15ull, b = 0xbf58476d1ce4e5b9ull, c = 0x94d049bb133111ebull,
             d = 0x2545f4914f6cdd1dull;
#define LANE(l, v) (l = ((l) ^ (v)) * 0xff51afd7ed558ccdull, l ^= (l) >> 29)
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        LANE(a, w[i]);
        LANE(b, w[i + 1]);
        LANE(c, w[i + 2]);
        LANE(d, w[i + 3]);
    }
    for (; i < n; i++) LANE(a, w[i]);
#undef LANE
    return mix(mix(mix(a) ^ b) ^ c) ^ d;
}

/* Snapshot buffers outlive their outcomes: a target makes several per input,
 * and a fresh megabyte per snapshot (sanitizer allocators map big blocks
 * anew each time) would cost more page faults than the runs themselves. */
#define SNAP_CACHE 8u
static struct {
    uint8_t *mem;
    size_t cap;
    struct exec_chunk *chunks;
    size_t chunks_cap;
} snap_cache[SNAP_CACHE];
static unsigned snap_cached;

void exec_outcome_free(struct exec_outcome *o)
{
    if ((o->mem || o->chunks) && snap_cached < SNAP_CACHE) {
        snap_cache[snap_cached].mem = o->mem;
        snap_cache[snap_cached].cap = o->mem_cap;
        snap_cache[snap_cached].chunks = o->chunks;
        snap_cache[snap_cached].chunks_cap = o->chunks_cap;
        snap_cached++;
    } else {
        free(o->mem);
        free(o->chunks);
    }
    o->mem = NULL;
    o->chunks = NULL;
    o->mem_len = o->mem_cap = o->nchunks = o->chunks_cap = 0;
}

/* Room for guest bytes [addr, addr + n) at the end of the snapshot. */
static uint8_t *snap_reserve(struct exec_outcome *o, uint32_t addr, size_t n)
{
    if (!o->mem && !o->chunks && snap_cached) {
        snap_cached--;
        o->mem = snap_cache[snap_cached].mem;
        o->mem_cap = snap_cache[snap_cached].cap;
        o->chunks = snap_cache[snap_cached].chunks;
        o->chunks_cap = snap_cache[snap_cached].chunks_cap;
    }
    if (o->mem_len + n > o->mem_cap) {
        size_t cap = o->mem_cap ? o->mem_cap : 65536;
        while (cap < o->mem_len + n) cap *= 2;
        uint8_t *np = realloc(o->mem, cap);
        if (!np) abort();
        o->mem = np;
        o->mem_cap = cap;
    }
    if (o->nchunks == o->chunks_cap) {
        size_t cap = o->chunks_cap ? o->chunks_cap * 2 : 64;
        struct exec_chunk *nc = realloc(o->chunks, cap * sizeof *nc);
        if (!nc) abort();
        o->chunks = nc;
        o->chunks_cap = cap;
    }
    o->chunks[o->nchunks++] = (struct exec_chunk){.addr = addr, .len = (uint32_t)n, .at = o->mem_len};
    uint8_t *dst = o->mem + o->mem_len;
    o->mem_len += n;
    return dst;
}

bool exec_snapshot_addr(const struct exec_outcome *o, size_t at, uint32_t *addr)
{
    size_t lo = 0, hi = o->nchunks;
    while (lo < hi) { /* the last chunk starting at or before `at` */
        size_t mid = lo + (hi - lo) / 2;
        if (o->chunks[mid].at <= at) lo = mid + 1;
        else hi = mid;
    }
    if (lo == 0 || at >= o->chunks[lo - 1].at + o->chunks[lo - 1].len) return false;
    *addr = o->chunks[lo - 1].addr + (uint32_t)(at - o->chunks[lo - 1].at);
    return true;
}

/* Appends [addr, addr + len) to the snapshot; ranges above su->snapshot_full
 * are sampled (both ends, and one page per `full` bytes, or per larger power
 * of two so that at most EXEC_SNAPSHOT_MIDDLE_PAGES come from the middle),
 * which keeps huge heaps cheap: reading a page the guest never touched costs
 * a page fault, more than the runs of most inputs. Reads straight into the
 * snapshot. */
static void snap_range(const struct exec_setup *su, struct exec_outcome *o, const cpvm_instance *inst, uint32_t addr,
                       uint64_t len, const char *what)
{
    uint64_t full = su->snapshot_full;
    uint64_t step = 1u << 16;
    while (step < full || (len > full && (len - full) / step > EXEC_SNAPSHOT_MIDDLE_PAGES)) step *= 2;
    uint64_t done = 0;
    while (done < len) {
        uint64_t chunk = len - done < (1u << 16) ? len - done : (1u << 16);
        uint64_t at = addr + done;
        if (len > full && done >= full / 2 && done + full / 2 < len) {
            /* the middle of a big range: one page per step */
            if ((done & (step - 1)) != 0) {
                done = (done | (step - 1)) + 1;
                if (done + full / 2 > len) done = len - full / 2;
                continue;
            }
            chunk = 0x1000;
        }
        uint8_t *dst = snap_reserve(o, (uint32_t)at, (size_t)chunk);
        if (cpvm_instance_read_memory(inst, (uint32_t)at, dst, (size_t)chunk) != CPVM_OK)
            FAIL("%s: [0x%llx, +0x%llx) is not readable", what, (unsigned long long)at, (unsigned long long)chunk);
        done += chunk;
    }
}

static void expect_unmapped(const struct exec_setup *su, const cpvm_instance *inst, uint32_t addr, const char *what)
{
    uint8_t b;
    if (cpvm_instance_read_memory(inst, addr, &b, 1) == CPVM_OK) FAIL("%s: 0x%x is mapped", what, addr);
}

static void snapshot(const struct exec_setup *su, const cpvm_instance *inst, const struct exec_host *h,
                     struct exec_outcome *o)
{
    const struct cpvm_memory_map *m = &su->g.map;
    if (su->dynamic) {
        for (unsigned i = 0; i < h->n_pages; i++)
            snap_range(su, o, inst, h->pages[i].addr, m->page_size, "mapped page");
        return;
    }
    /* ro data: the initial contents, zero-padded, plus the host's writes (the
     * guest cannot write it). */
    size_t at = o->mem_len;
    snap_range(su, o, inst, m->ro_data_address, m->ro_data_size, "ro data");
    if (m->ro_data_size && memcmp(o->mem + at, h->ro_expect, m->ro_data_size) != 0) {
        size_t i = 0;
        while (o->mem[at + i] == h->ro_expect[i]) i++;
        FAIL("ro data changed at +0x%zx", i);
    }
    /* rw data + heap: up to the page the heap top is in. */
    uint64_t top = (uint64_t)m->heap_base + o->heap;
    uint64_t rw_end = (uint64_t)m->rw_data_address + m->rw_data_size;
    uint64_t heap_end = (top + m->page_size - 1) / m->page_size * m->page_size;
    if (heap_end > rw_end) rw_end = heap_end;
    snap_range(su, o, inst, m->rw_data_address, rw_end - m->rw_data_address, "rw data/heap");
    if (rw_end < m->stack_address_low) expect_unmapped(su, inst, (uint32_t)rw_end, "past the heap");
    snap_range(su, o, inst, m->stack_address_low, m->stack_size, "stack");
    if (m->stack_address_low) expect_unmapped(su, inst, m->stack_address_low - 1, "below the stack");
    expect_unmapped(su, inst, m->stack_address_high, "above the stack");
    at = o->mem_len;
    snap_range(su, o, inst, m->aux_data_address, m->aux_data_size, "aux data");
    /* a page at a time: a loop per byte costs the fuzzer a comparison callback each */
    static const uint8_t zero[0x1000];
    for (size_t i = 0; i < m->aux_data_size; i += sizeof zero) {
        size_t n = m->aux_data_size - i < sizeof zero ? m->aux_data_size - i : sizeof zero;
        if (memcmp(o->mem + at + i, zero, n) == 0) continue;
        size_t k = i;
        while (!o->mem[at + k]) k++;
        FAIL("aux data changed at +0x%zx", k);
    }
}

/* --- the host --------------------------------------------------------------------------- */

static struct exec_dyn_page *find_page(struct exec_host *h, uint32_t addr)
{
    for (unsigned i = 0; i < h->n_pages; i++)
        if (h->pages[i].addr == addr) return &h->pages[i];
    return NULL;
}

/* Dynamic memory: the host maps a range (one call per run of pages it can
 * track, as a host mapping a region would) and remembers it page by page. */
static void host_map(const struct exec_setup *su, struct exec_host *h, cpvm_instance *inst, uint32_t psz,
                     uint32_t addr, uint64_t len, bool writable)
{
    if (!len) return;
    uint64_t start = addr & ~(uint64_t)(psz - 1), end = ((uint64_t)addr + len + psz - 1) & ~(uint64_t)(psz - 1);
    /* The lowest and the highest 64 KiB are never guest memory. */
    if (start < 0x10000) start = 0x10000;
    if (end > 0xffff0000u) end = 0xffff0000u;
    uint64_t run = start; /* pages [run, a) are tracked and not yet mapped */
    for (uint64_t a = start; a < end; a += psz) {
        struct exec_dyn_page *pg = find_page(h, (uint32_t)a);
        if (!pg) {
            if (h->n_pages == EXEC_MAX_DYN_PAGES) {
                end = a;
                break;
            }
            pg = &h->pages[h->n_pages++];
            pg->addr = (uint32_t)a;
        }
        pg->writable = writable;
    }
    if (end > run) {
        cpvm_status s = cpvm_instance_map_pages(inst, (uint32_t)run, (uint32_t)(end - run), writable);
        if (s != CPVM_OK) FAIL("map_pages(0x%llx, 0x%llx) failed: %s", (unsigned long long)run,
                               (unsigned long long)(end - run), cpvm_status_message(s));
    }
}

static void dynamic_setup(const struct exec_setup *su, struct exec_host *h, cpvm_instance *inst)
{
    const struct cpvm_memory_map *m = &su->g.map;
    uint32_t psz = m->page_size;
    host_map(su, h, inst, psz, m->ro_data_address, m->ro_data_size, true);
    if (su->info.ro_data.len &&
        cpvm_instance_write_memory(inst, m->ro_data_address, su->info.ro_data.ptr, su->info.ro_data.len))
        FAIL("writing ro data failed");
    if (m->ro_data_size) {
        if (cpvm_instance_protect_pages(inst, m->ro_data_address, m->ro_data_size, false)) FAIL("protect_pages failed");
        for (unsigned i = 0; i < h->n_pages; i++) h->pages[i].writable = false;
    }
    host_map(su, h, inst, psz, m->rw_data_address, m->rw_data_size, true);
    if (su->info.rw_data.len &&
        cpvm_instance_write_memory(inst, m->rw_data_address, su->info.rw_data.ptr, su->info.rw_data.len))
        FAIL("writing rw data failed");
    host_map(su, h, inst, psz, m->stack_address_low, m->stack_size, true);
    host_map(su, h, inst, psz, m->aux_data_address, m->aux_data_size, false);
}

/* A host call: answers from (seed, call number, call count). Returns whether
 * the host set the next pc itself. */
static bool host_call(const struct exec_setup *su, struct exec_host *h, cpvm_instance *inst, uint32_t n)
{
    uint64_t r = mix(((uint64_t)su->seed << 40) ^ ((uint64_t)n << 8) ^ h->ecallis);
    h->ecallis++;
    static const uint64_t answers[8] = {0, 1, UINT64_MAX, 0x80000000ull, 0xffff0000ull, 2, 0x7fffffffffffffffull, 4};
    cpvm_instance_set_reg(inst, 7, (r & 8) ? r : answers[r & 7]);
    if (r & 0x10) cpvm_instance_set_reg(inst, 8, r >> 16);
    const struct cpvm_memory_map *m = &su->g.map;
    if ((r & 0x60) == 0x60) {
        /* write 8 bytes into rw data (or the stack when there is none) */
        uint32_t base = m->rw_data_size >= 8 ? m->rw_data_address : m->stack_address_low;
        uint32_t size = m->rw_data_size >= 8 ? m->rw_data_size : m->stack_size;
        if (size >= 8) {
            uint32_t at = base + (uint32_t)((r >> 24) % (size - 7)), psz = m->page_size;
            /* with dynamic memory the host may have unmapped the page since */
            bool mapped = !su->dynamic || (find_page(h, at & ~(psz - 1)) && find_page(h, (at + 7) & ~(psz - 1)));
            cpvm_status ws = cpvm_instance_write_memory(inst, at, &r, 8);
            if ((ws == CPVM_OK) != mapped) FAIL("host write at 0x%x: %s", at, cpvm_status_message(ws));
        }
    }
    if ((r & 0x180) == 0x180 && !su->dynamic && m->ro_data_size >= 8 && h->ro_writes < EXEC_MAX_RO_WRITES) {
        h->ro_writes++;
        /* the host may write read-only data */
        uint32_t off = (uint32_t)((r >> 20) % (m->ro_data_size - 7));
        if (cpvm_instance_write_memory(inst, m->ro_data_address + off, &r, 8) != CPVM_OK)
            FAIL("host write into ro data at +0x%x failed", off);
        memcpy(h->ro_expect + off, &r, 8);
    }
    if ((r & 0x600) == 0x600 && su->dynamic && h->n_pages) {
        /* unmap a page; touching it again faults and the host maps it back */
        unsigned i = (unsigned)((r >> 32) % h->n_pages);
        uint32_t a = h->pages[i].addr;
        if (cpvm_instance_unmap_pages(inst, a, m->page_size) != CPVM_OK) FAIL("unmap_pages(0x%x) failed", a);
        h->pages[i] = h->pages[--h->n_pages];
        expect_unmapped(su, inst, a, "an unmapped page");
    }
    if ((r & 0xf800) == 0xf800 && su->metered && !su->async) {
        /* a host function dearer than the gas left: the next run() stops at
         * once, out of gas (after a refill, if any, the guest goes on) */
        cpvm_instance_set_gas(inst, -1);
    }
    if (su->reenter && (h->ecallis & 1)) {
        uint32_t pc;
        if (!cpvm_instance_next_pc(inst, &pc)) FAIL("no next pc after a host call");
        cpvm_instance_set_next_pc(inst, pc);
        return true;
    }
    return false;
}

static void record(struct exec_outcome *o, const struct exec_stop *st)
{
    uint64_t ev[6 + CPVM_REG_COUNT];
    ev[0] = st->intr.exit;
    ev[1] = st->intr.pc;
    ev[2] = st->intr.hostcall;
    ev[3] = st->intr.fault_address;
    ev[4] = (uint64_t)st->gas;
    ev[5] = st->has_next ? st->next_pc : UINT64_MAX;
    for (unsigned r = 0; r < CPVM_REG_COUNT; r++) ev[6 + r] = st->regs[r];
    uint64_t d = digest_words(ev, sizeof ev / sizeof ev[0]);
    o->hash_all = mix(o->hash_all ^ d) + o->events;
    o->events++;
    if (st->intr.exit != CPVM_EXIT_STEP) {
        o->hash_filtered = mix(o->hash_filtered ^ d) + o->filtered_events;
        o->filtered_events++;
    }
}

/* --- the run loop ------------------------------------------------------------------------- */

/* What a reset instance must look like before the host touches it (its
 * memory is compared with the initial snapshot by the reset_memory check and,
 * through the outcomes, with a fresh instance's). */
static void expect_fresh(const struct exec_setup *su, const cpvm_instance *inst)
{
    uint32_t pc;
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++)
        if (cpvm_instance_reg(inst, i)) FAIL("reset: register %s is not zero", cpvm_reg_name(i));
    if (cpvm_instance_gas(inst)) FAIL("reset: gas is not zero");
    if (cpvm_instance_next_pc(inst, &pc)) FAIL("reset: a next pc (%u) is left", pc);
    if (cpvm_instance_heap_size(inst)) FAIL("reset: the heap is not empty");
    if (!cpvm_instance_integrity_ok(inst)) FAIL("reset: canaries or context canary not intact");
    if (cpvm_instance_insn_count(inst)) FAIL("reset: instruction count not zero");
}

bool exec_begin(struct exec_run *r, const struct exec_setup *su, const cpvm_module *mod, uint64_t step_limit,
                bool check_reset, struct exec_outcome *o)
{
    const struct gen_program *g = &su->g;
    exec_hook hook = r->hook;
    void *hook_arg = r->hook_arg;
    cpvm_instance *reuse = r->reuse;
    bool keep = r->keep;
    memset(r, 0, sizeof *r);
    r->hook = hook;
    r->hook_arg = hook_arg;
    r->reuse = reuse;
    r->keep = keep;
    r->su = su;
    r->mod = mod;
    r->o = o;
    r->step_limit = step_limit;
    r->check_reset = check_reset;
    r->host_set_pc = true;
    r->state = EXEC_CONTINUE;
    memset(o, 0, sizeof *o);
    o->hash_all = o->hash_filtered = 0xcbf29ce484222325ull;
    struct cpvm_error err;
    cpvm_status s;
    if (reuse) {
        r->inst = reuse;
        r->reuse = NULL;
        s = cpvm_instance_reset(r->inst);
        if (s) FAIL("cpvm_instance_reset failed: %s", cpvm_status_message(s));
        expect_fresh(su, r->inst);
    } else {
        s = cpvm_instance_new(mod, &r->inst, &err);
        if (s == CPVM_E_NO_MEMORY) {
            r->state = EXEC_NO_MEMORY;
            return false;
        }
        if (s) FAIL("instance creation failed: %s", err.detail);
    }
    const struct cpvm_memory_map *mm = &g->map;
    r->h.ro_expect = calloc(mm->ro_data_size + 1, 1);
    if (!r->h.ro_expect) abort();
    if (su->info.ro_data.len) memcpy(r->h.ro_expect, su->info.ro_data.ptr, su->info.ro_data.len);
    if (su->dynamic) dynamic_setup(su, &r->h, r->inst);
    if (check_reset && !su->dynamic) snapshot(su, r->inst, &r->h, &r->initial);
    cpvm_instance_prepare_call(r->inst, g->entry_pc);
    cpvm_instance_set_gas(r->inst, su->metered ? g->gas : 1234);
    if (step_limit) cpvm_instance_set_step_limit(r->inst, step_limit);
    return true;
}

enum exec_step_result exec_step(struct exec_run *r)
{
    const struct exec_setup *su = r->su;
    const struct gen_program *g = &su->g;
    cpvm_instance *inst = r->inst;
    if (r->state != EXEC_CONTINUE) return r->state;
    if (r->runs >= EXEC_MAX_RUNS || r->stops >= EXEC_MAX_STEP_STOPS) return r->state = EXEC_CAPPED;
    int64_t before = cpvm_instance_gas(inst);
    struct exec_stop *st = &r->last;
    memset(st, 0, sizeof *st);
    cpvm_status s = cpvm_instance_run(inst, &st->intr);
    if (s == CPVM_E_NO_MEMORY) {
        r->no_memory = true;
        return r->state = EXEC_NO_MEMORY;
    }
    if (s != CPVM_OK) FAIL("run() returned host error %s", cpvm_status_message(s));
    const struct cpvm_interrupt intr = st->intr;
    int64_t after = st->gas = cpvm_instance_gas(inst);
    st->has_next = cpvm_instance_next_pc(inst, &st->next_pc);
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++) st->regs[i] = cpvm_instance_reg(inst, i);
    st->heap = cpvm_instance_heap_size(inst);
    bool has_next = st->has_next;
    uint32_t next = st->next_pc;
    if (r->hook) r->hook(r, r->hook_arg);
    record(r->o, st);
    bool entered_at_host_pc = r->host_set_pc;
    r->host_set_pc = false;

    /* Invariants of this stop. */
    if ((unsigned)intr.exit > CPVM_EXIT_STEP) FAIL("exit kind %d", intr.exit);
    if (intr.pc > su->info.code.len)
        FAIL("%s at pc %u past the code (%zu)", cpvm_exit_name(intr.exit), intr.pc, su->info.code.len);
    if (su->metered) {
        if (after > before)
            FAIL("gas grew from %lld to %lld (%s)", (long long)before, (long long)after, cpvm_exit_name(intr.exit));
        /* asynchronous metering: a stop with negative gas is a final out of
         * gas; a run() entered with negative gas (the host charged it) stops
         * out of gas, charging nothing */
        bool host_charged = before < 0 && after == before && intr.exit == CPVM_EXIT_OUT_OF_GAS;
        if (after < 0 && !(su->async && intr.exit == CPVM_EXIT_OUT_OF_GAS) && !host_charged)
            FAIL("gas went negative: %lld (%s)", (long long)after, cpvm_exit_name(intr.exit));
        if (before < 0 && !host_charged) FAIL("a run() entered with gas %lld: %s", (long long)before,
                                              cpvm_exit_name(intr.exit));
    } else {
        if (after != before) FAIL("gas changed without metering");
        if (intr.exit == CPVM_EXIT_OUT_OF_GAS) FAIL("out of gas without metering");
    }
    if (intr.exit == CPVM_EXIT_STEP && !r->step_limit) FAIL("a step stop without a step limit");
    uint64_t count = cpvm_instance_insn_count(inst);
    if (count < r->insns) FAIL("instruction count went backwards");
    r->insns = count;
    if (!su->dynamic && st->heap > g->map.max_heap_size) FAIL("heap beyond its maximum");
    bool done = false;
    switch (intr.exit) {
    case CPVM_EXIT_HALT:
    case CPVM_EXIT_PANIC:
        /* Only a failed entry at a host-set pc keeps it (execution.md §4.1). */
        if (has_next && !(intr.exit == CPVM_EXIT_PANIC && entered_at_host_pc && next == intr.pc))
            FAIL("%s at %u leaves a next pc (%u)", cpvm_exit_name(intr.exit), intr.pc, next);
        done = true;
        break;
    case CPVM_EXIT_ECALLI:
        if (!has_next || next <= intr.pc) FAIL("ecalli at %u: next pc %d/%u", intr.pc, has_next, next);
        r->host_set_pc = host_call(su, &r->h, inst, intr.hostcall);
        break;
    case CPVM_EXIT_OUT_OF_GAS:
        if (su->async) {
            /* final (gas.md §3, F2): nothing to resume */
            if (has_next) FAIL("asynchronous out of gas at %u leaves a next pc (%u)", intr.pc, next);
            done = true;
            break;
        }
        if (!has_next || next != intr.pc) FAIL("out of gas at %u: next pc %d/%u", intr.pc, has_next, next);
        /* nothing ran (no block was charged): a host-set entry is still pending, and
         * the next run() may fail it (a panic that keeps its next pc, execution.md §4.1) */
        if (entered_at_host_pc && after == before) r->host_set_pc = true;
        if (su->refill && !r->h.refilled) {
            r->h.refilled = true;
            cpvm_instance_set_gas(inst, after + g->gas + 1);
        } else {
            done = true;
        }
        break;
    case CPVM_EXIT_PAGE_FAULT: {
        if (!su->dynamic) FAIL("page fault with standard memory");
        uint32_t psz = g->map.page_size, a = intr.fault_address;
        if (a % psz || a < 0x4000) FAIL("page fault address 0x%x", a);
        if (!has_next || next != intr.pc) FAIL("page fault at %u: next pc %d/%u", intr.pc, has_next, next);
        struct exec_dyn_page *pg = find_page(&r->h, a);
        if (pg && pg->writable) FAIL("page fault on mapped writable page 0x%x", a);
        if (r->h.faults++ >= EXEC_MAX_FAULT_MAPS) {
            done = true;
            break;
        }
        if (pg) {
            if (cpvm_instance_protect_pages(inst, a, psz, true)) FAIL("protect_pages(0x%x) failed", a);
            pg->writable = true;
        } else {
            bool writable = ((mix(su->seed ^ r->h.faults) >> 3) & 3) != 0;
            host_map(su, &r->h, inst, psz, a, psz, writable);
            if (!find_page(&r->h, a)) done = true; /* out of page slots */
        }
        break;
    }
    case CPVM_EXIT_STEP:
        if (!has_next || next != intr.pc) FAIL("step stop at %u: next pc %d/%u", intr.pc, has_next, next);
        r->stops++;
        if (!su->metered && r->stops >= EXEC_UNMETERED_MAX_STOPS) done = true;
        if (su->widen_steps && r->stops == EXEC_STEP_STOPS_EXACT && r->step_limit < EXEC_STEP_LIMIT_LATE)
            r->step_limit = EXEC_STEP_LIMIT_LATE;
        cpvm_instance_set_step_limit(inst, r->step_limit);
        break;
    }
    if (intr.exit != CPVM_EXIT_STEP) r->runs++; /* step stops have their own cap */
    return r->state = done ? EXEC_DONE : EXEC_CONTINUE;
}

void exec_end(struct exec_run *r)
{
    const struct exec_setup *su = r->su;
    struct exec_outcome *o = r->o;
    cpvm_instance *inst = r->inst;
    if (!inst) return;
    o->complete = r->state == EXEC_DONE;
    for (unsigned i = 0; i < CPVM_REG_COUNT; i++) o->regs[i] = cpvm_instance_reg(inst, i);
    o->gas = cpvm_instance_gas(inst);
    o->has_next = cpvm_instance_next_pc(inst, &o->next_pc);
    o->heap = cpvm_instance_heap_size(inst);
    snapshot(su, inst, &r->h, o);

    /* reset_memory: back to the program's initial memory, empty heap, and with
     * dynamic memory nothing mapped. */
    if (r->check_reset && cpvm_instance_reset_memory(inst) == CPVM_OK) {
        if (cpvm_instance_heap_size(inst) != 0) FAIL("heap not empty after reset_memory");
        if (su->dynamic) {
            for (unsigned i = 0; i < r->h.n_pages; i++)
                expect_unmapped(su, inst, r->h.pages[i].addr, "a page after reset_memory");
        } else {
            const struct cpvm_memory_map *mm = &su->g.map;
            struct exec_outcome after;
            memset(&after, 0, sizeof after);
            if (su->info.ro_data.len) memcpy(r->h.ro_expect, su->info.ro_data.ptr, su->info.ro_data.len);
            memset(r->h.ro_expect + su->info.ro_data.len, 0, mm->ro_data_size - su->info.ro_data.len);
            snapshot(su, inst, &r->h, &after);
            if (after.mem_len != r->initial.mem_len ||
                (after.mem_len && memcmp(after.mem, r->initial.mem, after.mem_len) != 0))
                FAIL("memory after reset_memory differs from the initial memory");
            exec_outcome_free(&after);
        }
    }
    exec_outcome_free(&r->initial);
    free(r->h.ro_expect);
    r->h.ro_expect = NULL;
    if (r->keep) r->reuse = inst;
    else cpvm_instance_free(inst);
    r->inst = NULL;
}

void exec_run_instance(const struct exec_setup *su, const cpvm_module *mod, uint64_t step_limit, bool check_reset,
                       struct exec_outcome *o)
{
    /* static: the host's page table is a few KiB */
    static struct exec_run r;
    r.hook = NULL;
    r.hook_arg = NULL;
    r.reuse = NULL;
    r.keep = false;
    if (!exec_begin(&r, su, mod, step_limit, check_reset, o)) return;
    while (exec_step(&r) == EXEC_CONTINUE) {
    }
    exec_end(&r);
}

void exec_run_reused(const struct exec_setup *su, const cpvm_module *mod, cpvm_instance **inst, uint64_t step_limit,
                     bool check_reset, struct exec_outcome *o)
{
    static struct exec_run r;
    r.hook = NULL;
    r.hook_arg = NULL;
    r.reuse = *inst;
    r.keep = true;
    *inst = NULL;
    if (exec_begin(&r, su, mod, step_limit, check_reset, o)) {
        while (exec_step(&r) == EXEC_CONTINUE) {
        }
        exec_end(&r);
    }
    *inst = r.reuse;
    r.reuse = NULL;
}

void exec_compare(const struct exec_setup *su, const struct exec_outcome *a, const struct exec_outcome *b,
                  bool filtered, const char *what)
{
    if (filtered ? (a->hash_filtered != b->hash_filtered || a->filtered_events != b->filtered_events)
                 : (a->hash_all != b->hash_all || a->events != b->events))
        FAIL("%s: interrupt sequences differ (%u vs %u events)", what, filtered ? a->filtered_events : a->events,
             filtered ? b->filtered_events : b->events);
    for (unsigned r = 0; r < CPVM_REG_COUNT; r++)
        if (a->regs[r] != b->regs[r])
            FAIL("%s: register %s differs: 0x%llx vs 0x%llx", what, cpvm_reg_name(r), (unsigned long long)a->regs[r],
                 (unsigned long long)b->regs[r]);
    if (a->gas != b->gas) FAIL("%s: gas differs: %lld vs %lld", what, (long long)a->gas, (long long)b->gas);
    if (a->has_next != b->has_next || (a->has_next && a->next_pc != b->next_pc)) FAIL("%s: next pc differs", what);
    if (a->heap != b->heap) FAIL("%s: heap size differs", what);
    if (a->mem_len != b->mem_len) FAIL("%s: memory snapshot sizes differ", what);
    if (a->mem_len && memcmp(a->mem, b->mem, a->mem_len) != 0)
        for (size_t i = 0; i < a->mem_len; i++)
            if (a->mem[i] != b->mem[i]) FAIL("%s: memory differs at snapshot byte 0x%zx", what, i);
}
