/* Guest memory: the 4 GiB window, its page permissions, the standard-mode
 * layout, the host's access API, and sbrk's bookkeeping. */
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "../common/bits.h"
#include "../common/limits.h"
#include "../sandbox/sandbox.h"
#include "interp.h"

#define WINDOW (1ull << 32)

static bool mem_discard(struct cpvm_instance *in, uint64_t start, uint64_t len);

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }


void mem_set_perm(struct cpvm_instance *in, uint32_t addr, uint64_t len, uint8_t perm)
{
    if (!len) return;
    uint64_t first = addr >> MEM_PAGE_SHIFT;
    uint64_t last = ((uint64_t)addr + len - 1) >> MEM_PAGE_SHIFT;
    if (last >= MEM_PAGES) last = MEM_PAGES - 1;
    memset(in->perm + first, perm, last - first + 1);
    if (in->worker) { /* the worker applies it before it next runs */
        if (in->dirty_lo > in->dirty_hi) in->dirty_lo = (uint32_t)first, in->dirty_hi = (uint32_t)last;
        if (first < in->dirty_lo) in->dirty_lo = (uint32_t)first;
        if (last > in->dirty_hi) in->dirty_hi = (uint32_t)last;
    }
    /* SECURITY: compiled code relies on the hardware enforcing the same table. */
    if (in->hw_perms && mprotect(in->mem + (first << MEM_PAGE_SHIFT), (last - first + 1) << MEM_PAGE_SHIFT,
                                 mem_prot(perm)) != 0)
        CPVM_BUG("mprotect of guest pages failed");
}

/* Gives the host fresh zero pages for [addr, addr + len). */
static void zero_range(struct cpvm_instance *in, uint32_t addr, uint64_t len)
{
    if (!len) return;
    uint64_t start = addr & ~0xfffull;
    uint64_t end = round_up((uint64_t)addr + len, 0x1000);
    if (end > WINDOW) end = WINDOW;
    /* SECURITY: only ever inside the window we mapped. */
    if (!mem_discard(in, start, end - start)) memset(in->mem + start, 0, end - start);
}

/* Zero pages: a private mapping drops them; a worker's shared memfd view must
 * punch them out of the file, or the worker would keep seeing the old data. */
static bool mem_discard(struct cpvm_instance *in, uint64_t start, uint64_t len)
{
    return madvise(in->mem + start, len, in->worker ? MADV_REMOVE : MADV_DONTNEED) == 0;
}

static void load_standard(struct cpvm_instance *in)
{
    const struct cpvm_module *m = in->mod;
    const struct cpvm_memory_map *map = &m->map;
    const struct cpvm_program *p = m->prog;
    in->heap_size = 0;
    in->rw_size = map->rw_data_size;
    /* ro data is written while still writable, then locked */
    mem_set_perm(in, map->ro_data_address, map->ro_data_size, PERM_R | PERM_W);
    mem_set_perm(in, map->rw_data_address, map->rw_data_size, PERM_R | PERM_W);
    mem_set_perm(in, map->stack_address_low, map->stack_size, PERM_R | PERM_W);
    mem_set_perm(in, map->aux_data_address, map->aux_data_size, PERM_R);
    if (p->ro_data_len) memcpy(in->mem + map->ro_data_address, p->ro_data, p->ro_data_len);
    if (p->rw_data_len) memcpy(in->mem + map->rw_data_address, p->rw_data, p->rw_data_len);
    mem_set_perm(in, map->ro_data_address, map->ro_data_size, PERM_R);
}

#define RESERVATION (MEM_PRE + WINDOW + MEM_POST)

/* The pattern of the canary pages next to the window: a write that escapes the
 * window without faulting would most likely land in one of them. */
static uint8_t canary_page[0x1000];
static pthread_once_t canary_once = PTHREAD_ONCE_INIT;

static void canary_init(void)
{
    for (unsigned i = 0; i < sizeof canary_page; i++) canary_page[i] = (uint8_t)(0xa5 ^ (i * 0x9d));
}

bool mem_canaries_intact(const struct cpvm_instance *in)
{
    return memcmp(in->mem - MEM_CANARY_BELOW, canary_page, sizeof canary_page) == 0 &&
           memcmp(in->mem + WINDOW + MEM_CANARY_ABOVE, canary_page, sizeof canary_page) == 0;
}

/* Canaries beside the window, then the program's initial memory. */
static cpvm_status mem_fill(struct cpvm_instance *in)
{
    pthread_once(&canary_once, canary_init);
    memcpy(in->mem - MEM_CANARY_BELOW, canary_page, sizeof canary_page);
    memcpy(in->mem + WINDOW + MEM_CANARY_ABOVE, canary_page, sizeof canary_page);
    if (in->mod->cfg.memory_model == CPVM_MEMORY_STANDARD) load_standard(in);
    return CPVM_OK;
}

cpvm_status mem_init(struct cpvm_instance *in, struct cpvm_error *err)
{
    if (in->worker) { /* the host's view of the worker's memory: all read-write here */
        void *perm = mmap(NULL, MEM_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (perm == MAP_FAILED) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot map the permission table");
        in->mem = sbx_window(in->worker);
        in->perm = perm;
        in->dirty_lo = 1, in->dirty_hi = 0; /* a fresh or scrubbed worker view is all PROT_NONE */
        return mem_fill(in);
    }
    uint8_t *res = mmap(NULL, RESERVATION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (res == MAP_FAILED) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot reserve the 4 GiB guest window");
    void *perm = mmap(NULL, MEM_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    bool ok = perm != MAP_FAILED && mprotect(res + MEM_PRE - 0x1000, 0x1000, PROT_READ | PROT_WRITE) == 0 &&
              mprotect(res + MEM_PRE - MEM_CANARY_BELOW, 0x1000, PROT_READ | PROT_WRITE) == 0 &&
              mprotect(res + MEM_PRE + WINDOW + MEM_CANARY_ABOVE, 0x1000, PROT_READ | PROT_WRITE) == 0 &&
              (in->hw_perms || mprotect(res + MEM_PRE, WINDOW, PROT_READ | PROT_WRITE) == 0);
    if (!ok) {
        munmap(res, RESERVATION);
        if (perm != MAP_FAILED) munmap(perm, MEM_PAGES);
        return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot set up the guest window");
    }
    in->mem = res + MEM_PRE;
    in->perm = perm;
    return mem_fill(in);
}

void mem_free(struct cpvm_instance *in)
{
    if (in->worker) { /* scrubbed and pooled, or destroyed */
        sbx_release(in->worker);
        in->worker = NULL;
    } else if (in->mem) {
        munmap(in->mem - MEM_PRE, RESERVATION);
    }
    if (in->perm) munmap(in->perm, MEM_PAGES);
    in->mem = in->perm = NULL;
}

cpvm_status mem_reset(struct cpvm_instance *in)
{
    /* Dropping every page is cheaper to get right than tracking dirty ones. */
    if (!mem_discard(in, 0, WINDOW)) return CPVM_E_NO_MEMORY;
    memset(in->perm, 0, MEM_PAGES);
    if (in->worker) in->dirty_lo = 0, in->dirty_hi = MEM_PAGES - 1;
    if (in->hw_perms && mprotect(in->mem, WINDOW, PROT_NONE) != 0) return CPVM_E_NO_MEMORY;
    if (in->mod->cfg.memory_model == CPVM_MEMORY_STANDARD) load_standard(in);
    return CPVM_OK;
}

void mem_fault(const struct cpvm_instance *in, uint32_t addr, unsigned width, bool write, struct cpvm_interrupt *out)
{
    out->exit = CPVM_EXIT_PANIC;
    out->fault_address = 0;
    if (in->mod->cfg.memory_model != CPVM_MEMORY_DYNAMIC) return; /* standard mode traps */
    uint32_t psz = in->mod->page_size;
    uint32_t page_mask = ~(psz - 1);
    uint32_t fault;
    if ((uint64_t)addr + width > 0xffffffffu) {
        /* The access would touch the last byte of the address space. */
        fault = 0xffffffffu & page_mask;
        if (in->perm[fault >> MEM_PAGE_SHIFT]) return; /* mapped: trap */
    } else {
        uint32_t lo = addr & page_mask, hi = (addr + width - 1) & page_mask;
        bool lo_ok = in->perm[addr >> MEM_PAGE_SHIFT] != 0;
        bool hi_ok = in->perm[(addr + width - 1) >> MEM_PAGE_SHIFT] != 0;
        if (!lo_ok) fault = lo;
        else if (!hi_ok) fault = hi;
        else if (write && !(in->perm[addr >> MEM_PAGE_SHIFT] & PERM_W)) fault = lo;
        else if (write) fault = hi;
        else CPVM_BUG("mem_fault on an accessible range");
    }
    if (fault < VM_FAULT_TRAP_BELOW) return; /* execution.md §3.3: low pages trap */
    out->exit = CPVM_EXIT_PAGE_FAULT;
    out->fault_address = fault;
}

/* --- instructions whose work is shared by every backend ------------------ */

/* Normalises a register write to the program's width (isa.md §8). */
static inline uint64_t reg_value(const struct cpvm_instance *in, uint64_t v)
{
    return in->mod->is64 ? v : sext32(v);
}

uint64_t mem_sbrk(struct cpvm_instance *in, uint64_t request)
{
    const struct cpvm_memory_map *map = &in->mod->map;
    if (in->mod->cfg.memory_model != CPVM_MEMORY_STANDARD) return 0; /* no heap without a memory map */
    /* execution.md §7: a size that does not fit in u32 counts as 0 (64-bit). */
    uint64_t size = in->mod->is64 ? (request > UINT32_MAX ? 0 : request) : (uint32_t)request;
    uint64_t heap = (uint64_t)in->heap_size + size;
    if (heap > UINT32_MAX || heap > map->max_heap_size) return 0;
    in->heap_size = (uint32_t)heap;
    uint64_t top = (uint64_t)map->heap_base + heap;
    uint64_t rw_end = (uint64_t)map->rw_data_address + in->rw_size;
    if (top > rw_end) {
        uint64_t new_end = round_up(top, in->mod->page_size);
        mem_set_perm(in, (uint32_t)rw_end, new_end - rw_end, PERM_R | PERM_W);
        in->rw_size = (uint32_t)(new_end - map->rw_data_address);
    }
    return sext32(top);
}

int mem_memset(struct cpvm_instance *in, struct cpvm_interrupt *out)
{
    uint64_t *r = in->regs;
    const bool metered = in->mod->cfg.gas_metering;
    uint32_t p0 = lo32(r[CPVM_REG_A0]), p = p0, n = lo32(r[CPVM_REG_A2]);
    uint8_t v = (uint8_t)r[CPVM_REG_A1];
    int rc = 0;
    while (n > 0) {
        if (metered && in->gas <= 0) {
            out->exit = CPVM_EXIT_OUT_OF_GAS;
            rc = 1;
            break;
        }
        uint64_t chunk = 0x1000 - (p & 0xfff);
        if (chunk > n) chunk = n;
        if (chunk > 0xffffffffu - (uint64_t)p) chunk = 0xffffffffu - (uint64_t)p; /* never the last byte */
        if (metered && (uint64_t)in->gas < chunk) chunk = (uint64_t)in->gas;
        if (chunk == 0 || !mem_ok(in, p, 1, PERM_W)) {
            mem_fault(in, p, 1, true, out);
            rc = 1;
            break;
        }
        /* SECURITY: [p, p + chunk) lies in one writable page below 2^32 - 1. */
        memset(in->mem + p, v, chunk);
        p += (uint32_t)chunk;
        n -= (uint32_t)chunk;
        if (metered) in->gas -= (int64_t)chunk;
    }
    r[CPVM_REG_A0] = reg_value(in, r[CPVM_REG_A0] + (uint32_t)(p - p0));
    r[CPVM_REG_A2] = reg_value(in, n);
    return rc;
}

/* --- host API ------------------------------------------------------------ */

static bool host_range_ok(const struct cpvm_instance *in, uint32_t address, size_t len)
{
    if (len == 0) return true;
    if ((uint64_t)address + len > WINDOW) return false;
    for (uint64_t pg = address >> MEM_PAGE_SHIFT; pg <= ((uint64_t)address + len - 1) >> MEM_PAGE_SHIFT; pg++)
        if (!in->perm[pg]) return false;
    return true;
}

cpvm_status cpvm_instance_read_memory(const cpvm_instance *in, uint32_t address, void *out, size_t len)
{
    if (!host_range_ok(in, address, len)) return CPVM_E_BAD_ADDRESS;
    if (len) memcpy(out, in->mem + address, len);
    return CPVM_OK;
}

cpvm_status cpvm_instance_write_memory(cpvm_instance *in, uint32_t address, const void *data, size_t len)
{
    if (!host_range_ok(in, address, len)) return CPVM_E_BAD_ADDRESS;
    if (!len) return CPVM_OK;
    if (!in->hw_perms) {
        memcpy(in->mem + address, data, len);
        return CPVM_OK;
    }
    /* The host may write read-only pages: open each briefly, page by page. */
    const uint8_t *src = data;
    uint64_t at = address, end = (uint64_t)address + len;
    while (at < end) {
        uint64_t page = at >> MEM_PAGE_SHIFT, stop = (page + 1) << MEM_PAGE_SHIFT;
        size_t n = (size_t)((stop < end ? stop : end) - at);
        uint8_t perm = in->perm[page];
        if (!(perm & PERM_W)) mem_set_perm(in, (uint32_t)at, 1, PERM_R | PERM_W);
        memcpy(in->mem + at, src, n);
        if (!(perm & PERM_W)) mem_set_perm(in, (uint32_t)at, 1, perm);
        src += n;
        at += n;
    }
    return CPVM_OK;
}

static cpvm_status dynamic_range(const cpvm_instance *in, uint32_t address, uint32_t len, uint32_t *start,
                                 uint64_t *size)
{
    if (in->mod->cfg.memory_model != CPVM_MEMORY_DYNAMIC) return CPVM_E_UNSUPPORTED;
    uint64_t psz = in->mod->page_size;
    uint64_t s = address & ~(psz - 1), e = round_up((uint64_t)address + len, psz);
    /* The lowest and the highest 64 KiB are never guest memory (execution.md §3.1). */
    if (s < VM_PAGE_MAX || e > WINDOW - VM_PAGE_MAX) return CPVM_E_BAD_ADDRESS;
    *start = (uint32_t)s;
    *size = e - s;
    return CPVM_OK;
}

cpvm_status cpvm_instance_map_pages(cpvm_instance *in, uint32_t address, uint32_t len, bool writable)
{
    uint32_t s;
    uint64_t n;
    cpvm_status st = dynamic_range(in, address, len, &s, &n);
    if (st || !n) return st;
    zero_range(in, s, n);
    mem_set_perm(in, s, n, (uint8_t)(PERM_R | (writable ? PERM_W : 0)));
    return CPVM_OK;
}

cpvm_status cpvm_instance_unmap_pages(cpvm_instance *in, uint32_t address, uint32_t len)
{
    uint32_t s;
    uint64_t n;
    cpvm_status st = dynamic_range(in, address, len, &s, &n);
    if (st || !n) return st;
    mem_set_perm(in, s, n, 0);
    zero_range(in, s, n);
    return CPVM_OK;
}

cpvm_status cpvm_instance_protect_pages(cpvm_instance *in, uint32_t address, uint32_t len, bool writable)
{
    uint32_t s;
    uint64_t n;
    cpvm_status st = dynamic_range(in, address, len, &s, &n);
    if (st || !n) return st;
    for (uint64_t pg = s >> MEM_PAGE_SHIFT; pg < (s + n) >> MEM_PAGE_SHIFT; pg++)
        if (!in->perm[pg]) return CPVM_E_BAD_ADDRESS;
    mem_set_perm(in, s, n, (uint8_t)(PERM_R | (writable ? PERM_W : 0)));
    return CPVM_OK;
}

uint32_t cpvm_instance_heap_size(const cpvm_instance *in) { return in->heap_size; }

cpvm_status cpvm_instance_reset_memory(cpvm_instance *in) { return mem_reset(in); }
