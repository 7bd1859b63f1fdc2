/* Guest memory: the 4 GiB window, its page permissions, the standard-mode
 * layout, the host's access API, and sbrk's bookkeeping. */
#include <string.h>
#include <sys/mman.h>

#include "../common/limits.h"
#include "interp.h"

#define WINDOW (1ull << 32)

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

void mem_set_perm(struct cpvm_instance *in, uint32_t addr, uint64_t len, uint8_t perm)
{
    if (!len) return;
    uint64_t first = addr >> MEM_PAGE_SHIFT;
    uint64_t last = ((uint64_t)addr + len - 1) >> MEM_PAGE_SHIFT;
    if (last >= MEM_PAGES) last = MEM_PAGES - 1;
    memset(in->perm + first, perm, last - first + 1);
}

/* Gives the host fresh zero pages for [addr, addr + len). */
static void zero_range(struct cpvm_instance *in, uint32_t addr, uint64_t len)
{
    if (!len) return;
    uint64_t start = addr & ~0xfffull;
    uint64_t end = round_up((uint64_t)addr + len, 0x1000);
    if (end > WINDOW) end = WINDOW;
    /* SECURITY: only ever inside the window we mapped. */
    if (madvise(in->mem + start, end - start, MADV_DONTNEED) != 0) memset(in->mem + start, 0, end - start);
}

static void load_standard(struct cpvm_instance *in)
{
    const struct cpvm_module *m = in->mod;
    const struct cpvm_memory_map *map = &m->map;
    const struct cpvm_program *p = m->prog;
    memset(in->perm, 0, MEM_PAGES);
    in->heap_size = 0;
    in->rw_size = map->rw_data_size;
    mem_set_perm(in, map->ro_data_address, map->ro_data_size, PERM_R);
    mem_set_perm(in, map->rw_data_address, map->rw_data_size, PERM_R | PERM_W);
    mem_set_perm(in, map->stack_address_low, map->stack_size, PERM_R | PERM_W);
    mem_set_perm(in, map->aux_data_address, map->aux_data_size, PERM_R);
    if (p->ro_data_len) memcpy(in->mem + map->ro_data_address, p->ro_data, p->ro_data_len);
    if (p->rw_data_len) memcpy(in->mem + map->rw_data_address, p->rw_data, p->rw_data_len);
}

cpvm_status mem_init(struct cpvm_instance *in, struct cpvm_error *err)
{
    void *mem = mmap(NULL, WINDOW, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (mem == MAP_FAILED) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot reserve the 4 GiB guest window");
    void *perm = mmap(NULL, MEM_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (perm == MAP_FAILED) {
        munmap(mem, WINDOW);
        return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot allocate the page table");
    }
    in->mem = mem;
    in->perm = perm;
    if (in->mod->cfg.memory_model == CPVM_MEMORY_STANDARD) load_standard(in);
    return CPVM_OK;
}

void mem_free(struct cpvm_instance *in)
{
    if (in->mem) munmap(in->mem, WINDOW);
    if (in->perm) munmap(in->perm, MEM_PAGES);
    in->mem = in->perm = NULL;
}

cpvm_status mem_reset(struct cpvm_instance *in)
{
    /* Dropping every page is cheaper to get right than tracking dirty ones. */
    if (madvise(in->mem, WINDOW, MADV_DONTNEED) != 0) return CPVM_E_NO_MEMORY;
    if (in->mod->cfg.memory_model == CPVM_MEMORY_STANDARD) load_standard(in);
    else memset(in->perm, 0, MEM_PAGES);
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
    if (len) memcpy(in->mem + address, data, len);
    return CPVM_OK;
}

static cpvm_status dynamic_range(const cpvm_instance *in, uint32_t address, uint32_t len, uint32_t *start,
                                 uint64_t *size)
{
    if (in->mod->cfg.memory_model != CPVM_MEMORY_DYNAMIC) return CPVM_E_UNSUPPORTED;
    uint64_t psz = in->mod->page_size;
    uint64_t s = address & ~(psz - 1), e = round_up((uint64_t)address + len, psz);
    if (s < VM_PAGE_MAX || e > WINDOW) return CPVM_E_BAD_ADDRESS;
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
