/* Guest memory: the 4 GiB window (a pool of reservations per process), its
 * page permissions in software and in hardware, the written-page bookkeeping
 * that makes a reset cost what the last run touched, the standard layout, the
 * host's access API and sbrk. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../common/bits.h"
#include "../common/error.h"
#include "../common/limits.h"
#include "../program/program.h"
#include "machine.h"

#define WINDOW MEM_WINDOW
#define SMALL_PAGES 64u /* spans up to this many pages are zeroed in place, larger ones given back */
#define SMALL_PAGES_MEMFD 16u

static uint64_t round_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

/* --- page spans ------------------------------------------------------------------- */

/* Adds [lo, hi] to a short list of spans: merged into one it overlaps or
 * touches, else appended, else (list full) merged into the nearest. */
static void span_add(struct mem_span *v, unsigned *n, uint32_t lo, uint32_t hi)
{
    for (unsigned i = 0; i < *n; i++)
        if (lo <= (uint64_t)v[i].hi + 1 && (uint64_t)hi + 1 >= v[i].lo) {
            if (lo < v[i].lo) v[i].lo = lo;
            if (hi > v[i].hi) v[i].hi = hi;
            return;
        }
    if (*n < MEM_SPANS) {
        v[(*n)++] = (struct mem_span){lo, hi};
        return;
    }
    unsigned best = 0;
    uint64_t gap = UINT64_MAX;
    for (unsigned i = 0; i < *n; i++) {
        uint64_t g = lo > v[i].hi ? (uint64_t)lo - v[i].hi : (uint64_t)v[i].lo - hi;
        if (g < gap) gap = g, best = i;
    }
    if (lo < v[best].lo) v[best].lo = lo;
    if (hi > v[best].hi) v[best].hi = hi;
}

/* Whether every page of [addr, addr + len) (len > 0) lies in one of `spans`. */
static bool spans_covered(const struct mem_span *spans, unsigned n, uint32_t addr, uint64_t len)
{
    uint32_t lo = addr >> MEM_PAGE_SHIFT, hi = (uint32_t)(((uint64_t)addr + len - 1) >> MEM_PAGE_SHIFT);
    for (unsigned i = 0; i < n; i++)
        if (spans[i].lo <= lo && spans[i].hi >= hi) return true;
    return false;
}

/* --- windows: reserved once, pooled per process ----------------------------------- */

/* A 4 GiB reservation of this process with its permission tables. In the pool
 * it is clean: every page zero, `perm` all zero; `hw` keeps the protections
 * the pages have (only pages in `hw_spans` can have any), so the next
 * instance changes only what differs. */
struct mem_window {
    uint8_t *mem;
    uint8_t *perm, *hw;
    bool hw_perms;
    struct mem_span hw_spans[MEM_SPANS];
    unsigned nhw;
    uint64_t key; /* layout_key of its last user */
    struct mem_window *next;
};

#define POOL_MAX 8u

static struct {
    pthread_mutex_t lock;
    struct mem_window *free[2]; /* [hw_perms] */
    unsigned n[2];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The pattern of the canary pages next to the window: a write that escapes the
 * window without faulting would most likely land in one of them. */
static uint8_t canary_page[0x1000];
static pthread_once_t canary_once = PTHREAD_ONCE_INIT;

static void canary_init(void)
{
    for (unsigned i = 0; i < sizeof canary_page; i++) canary_page[i] = (uint8_t)(0xa5 ^ (i * 0x9d));
}

static void window_destroy(struct mem_window *w)
{
    if (!w) return;
    if (w->mem) munmap(w->mem - MEM_PRE, MEM_RESERVATION);
    if (w->perm) munmap(w->perm, MEM_PAGES);
    if (w->hw) munmap(w->hw, MEM_PAGES);
    free(w);
}

static uint8_t *map_reservation(int prot)
{
    uint8_t *res = mmap(NULL, MEM_RESERVATION, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return res == MAP_FAILED ? NULL : res + MEM_PRE;
}

/* One private anonymous mapping: all read-write for the interpreter (the
 * table is the only guard), guarded page by page for compiled code. Private
 * anonymous memory reads zero pages for free and gives pages back cheaply,
 * which matters more than anything a shared alias would save. */
static struct mem_window *window_new(bool hw_perms)
{
    struct mem_window *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->hw_perms = hw_perms;
    w->mem = map_reservation(PROT_NONE);
    void *perm = mmap(NULL, MEM_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *hw = mmap(NULL, MEM_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    w->perm = perm == MAP_FAILED ? NULL : perm;
    w->hw = hw == MAP_FAILED ? NULL : hw;
    /* The context and the canaries are read-write: a stray write from
     * compiled code lands there and is noticed. */
    bool ok = w->mem && w->perm && w->hw &&
              mprotect(w->mem - MEM_CANARY_BELOW, MEM_CANARY_BELOW, PROT_READ | PROT_WRITE) == 0 &&
              mprotect(w->mem + WINDOW + MEM_CANARY_ABOVE, 0x1000, PROT_READ | PROT_WRITE) == 0 &&
              (hw_perms || mprotect(w->mem, WINDOW, PROT_READ | PROT_WRITE) == 0);
    if (!ok) {
        window_destroy(w);
        return NULL;
    }
    return w;
}

/* The layout an instance leaves its window's hardware permissions in. */
static uint64_t layout_key(const struct cpvm_module *m)
{
    const struct cpvm_memory_map *map = &m->map;
    uint64_t k = m->cfg.memory_model;
    const uint32_t f[] = {map->ro_data_address, map->ro_data_size, map->rw_data_address, map->rw_data_size,
                          map->stack_address_low, map->stack_size, map->aux_data_address, map->aux_data_size};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) k = (k ^ f[i]) * 0x100000001b3ull;
    return k;
}

/* A pooled window, preferring one whose protections already fit `key`
 * (the same memory layout: nothing to change), else a new one. */
static struct mem_window *window_acquire(bool hw_perms, uint64_t key)
{
    pthread_mutex_lock(&pool.lock);
    struct mem_window **best = &pool.free[hw_perms];
    for (struct mem_window **p = best; *p; p = &(*p)->next)
        if ((*p)->key == key) {
            best = p;
            break;
        }
    struct mem_window *w = *best;
    if (w) {
        *best = w->next;
        pool.n[hw_perms]--;
    }
    pthread_mutex_unlock(&pool.lock);
    if (!w) w = window_new(hw_perms);
    if (w) w->key = key;
    return w;
}

/* Whether the hardware lets the host write pages [lo, hi] directly. */
static bool host_writable(const struct cpvm_instance *in, uint32_t lo, uint32_t hi)
{
    if (!in->hw_perms) return true;
    for (uint32_t p = lo; p <= hi; p++)
        if (!(in->hw[p] & PERM_W)) return false;
    return true;
}

/* Whether a page reads as zero (a page never touched reads the shared zero page). */
static bool page_zero(const uint8_t *p)
{
    uint64_t acc = 0, w[8];
    for (unsigned i = 0; i < 0x1000; i += sizeof w) {
        memcpy(w, p + i, sizeof w);
        for (unsigned k = 0; k < 8; k++) acc |= w[k];
        if (acc) return false;
    }
    return true;
}

/* Whether page `p` reads zero without looking (machine.h, `forced`): the
 * guest may access it, the hardware lets nobody in this process. */
static bool page_known_zero(const struct cpvm_instance *in, uint32_t p)
{
    if (!in->hw_perms || in->hw[p] || !in->perm[p]) return false;
    for (unsigned i = 0; i < in->nforced; i++)
        if (in->forced[i].lo <= p && in->forced[i].hi >= p) return false;
    return true;
}

/* Zeroes the pages [lo, hi]: small writable runs in place, only the pages
 * that are not zero (no system call, and the pages stay mapped for the next
 * run instead of faulting in again), the rest given back to the kernel (a
 * private mapping drops the pages; a worker's memfd gets holes punched,
 * which the worker sees too). */
static void zero_pages(struct cpvm_instance *in, uint32_t lo, uint32_t hi)
{
    uint64_t start = (uint64_t)lo << MEM_PAGE_SHIFT, len = (uint64_t)(hi - lo + 1) << MEM_PAGE_SHIFT;
    /* A worker's memfd has no zero page: reading a hole allocates it. */
    bool small = hi - lo < (in->memfd ? SMALL_PAGES_MEMFD : SMALL_PAGES);
    if (small && host_writable(in, lo, hi)) {
        for (uint64_t at = start; at < start + len; at += 0x1000)
            if (in->memfd || !page_zero(in->host + at)) memset(in->host + at, 0, 0x1000);
        return;
    }
    if (madvise(in->host + start, len, in->memfd ? MADV_REMOVE : MADV_DONTNEED) != 0) {
        if (!host_writable(in, lo, hi)) CPVM_BUG("cannot discard guest pages");
        memset(in->host + start, 0, len);
    }
}

/* /proc/self/mem writes through page protections, as a debugger does: one
 * system call for the host's write into read-only guest pages instead of
 * two mprotects (which also split and merge mappings). -1 where refused. */
static int self_mem = -1; /* -1: not open (yet, or again after a fork), -2: refused */
static pthread_mutex_t self_mem_lock = PTHREAD_MUTEX_INITIALIZER;

/* A forked child's descriptor would still name its parent's memory. */
static void self_mem_forget(void)
{
    if (self_mem >= 0) close(self_mem);
    self_mem = -1;
}

int mem_self_fd(void)
{
    int fd = __atomic_load_n(&self_mem, __ATOMIC_ACQUIRE);
    if (fd != -1) return fd;
    static bool registered;
    pthread_mutex_lock(&self_mem_lock);
    if (!registered) registered = pthread_atfork(NULL, NULL, self_mem_forget) == 0;
    if (self_mem == -1) {
        int f = registered ? open("/proc/self/mem", O_RDWR | O_CLOEXEC) : -1;
        __atomic_store_n(&self_mem, f >= 0 ? f : -2, __ATOMIC_RELEASE);
    }
    fd = self_mem;
    pthread_mutex_unlock(&self_mem_lock);
    return fd;
}

/* The host writes [addr, addr + len), whatever the hardware allows the guest. */
static void host_copy(struct cpvm_instance *in, uint32_t addr, const void *data, size_t len)
{
    uint32_t lo = addr >> MEM_PAGE_SHIFT, hi = (uint32_t)(((uint64_t)addr + len - 1) >> MEM_PAGE_SHIFT);
    if (host_writable(in, lo, hi)) {
        memcpy(in->host + addr, data, len);
        return;
    }
    span_add(in->forced, &in->nforced, lo, hi);
    int fd = mem_self_fd();
    if (fd >= 0 && pwrite(fd, data, len, (off_t)(uintptr_t)(in->mem + addr)) == (ssize_t)len) return;
    const uint8_t *src = data;
    for (uint64_t at = addr, end = (uint64_t)addr + len; at < end;) { /* page by page, opened briefly */
        uint64_t page = at >> MEM_PAGE_SHIFT, stop = (page + 1) << MEM_PAGE_SHIFT;
        size_t n = (size_t)((stop < end ? stop : end) - at);
        uint8_t *pg = in->mem + (page << MEM_PAGE_SHIFT);
        bool locked = !(in->hw[page] & PERM_W);
        if (locked && mprotect(pg, 0x1000, PROT_READ | PROT_WRITE) != 0) CPVM_BUG("mprotect of a guest page failed");
        memcpy(in->mem + at, src, n);
        if (locked && mprotect(pg, 0x1000, mem_prot(in->hw[page])) != 0) CPVM_BUG("mprotect of a guest page failed");
        src += n;
        at += n;
    }
}

/* Wipes the contents of `spans` and every permission of the pages accessible
 * since the window was clean (the hardware follows at the next mem_sync). */
static void mem_wipe(struct cpvm_instance *in, const struct mem_span *spans, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        /* runs of pages that may hold data (sbrk's heap the guest never
         * touched is all zero, and still closed in hardware) */
        for (uint32_t p = spans[i].lo;;) {
            while (p <= spans[i].hi && page_known_zero(in, p)) p++;
            if (p > spans[i].hi) break;
            uint32_t q = p;
            while (q < spans[i].hi && !page_known_zero(in, q + 1)) q++;
            zero_pages(in, p, q);
            if (q == spans[i].hi) break;
            p = q + 1;
        }
    }
    in->nforced = 0;
    for (unsigned i = 0; i < in->nmapped; i++) {
        struct mem_span s = in->mapped[i];
        memset(in->perm + s.lo, 0, (size_t)s.hi - s.lo + 1);
        if (in->hw_perms || in->shared_view) span_add(in->perm_dirty, &in->ndirty, s.lo, s.hi);
    }
    in->sync_due = in->ndirty != 0;
}

static void window_release(struct cpvm_instance *in)
{
    struct mem_window *w = in->win;
    /* The hardware keeps the instance's protections, all within the pages
     * it ever made accessible; the next instance's first sync sets them right. */
    if (w->hw_perms) {
        for (unsigned i = 0; i < in->nmapped; i++) span_add(w->hw_spans, &w->nhw, in->mapped[i].lo, in->mapped[i].hi);
        /* a reset forgets what was mapped before it; until a sync closes
         * those pages in hardware, they are only in the pending changes */
        for (unsigned i = 0; i < in->ndirty; i++)
            span_add(w->hw_spans, &w->nhw, in->perm_dirty[i].lo, in->perm_dirty[i].hi);
    }
    /* Only the written pages and the read-only image hold anything but
     * zero (the rest of what was mapped never took a write). */
    mem_wipe(in, in->written, in->nwritten);
    const struct cpvm_memory_map *map = &in->mod->map;
    uint32_t ro_len = in->mod->prog->ro_data_len;
    if (in->mod->cfg.memory_model == CPVM_MEMORY_STANDARD && ro_len &&
        !spans_covered(in->written, in->nwritten, map->ro_data_address, ro_len))
        zero_pages(in, map->ro_data_address >> MEM_PAGE_SHIFT,
                   (uint32_t)(((uint64_t)map->ro_data_address + ro_len - 1) >> MEM_PAGE_SHIFT));
    memset(in->mem - JIT_CTX_OFFSET, 0, 0x1000);
    in->win = NULL;
    pthread_mutex_lock(&pool.lock);
    bool keep = pool.n[w->hw_perms] < POOL_MAX;
    if (keep) {
        w->next = pool.free[w->hw_perms];
        pool.free[w->hw_perms] = w;
        pool.n[w->hw_perms]++;
    }
    pthread_mutex_unlock(&pool.lock);
    if (!keep) window_destroy(w);
}

/* --- permissions -------------------------------------------------------------------- */

void mem_set_perm(struct cpvm_instance *in, uint32_t addr, uint64_t len, uint8_t perm)
{
    if (!len) return;
    uint64_t first = addr >> MEM_PAGE_SHIFT;
    uint64_t last = ((uint64_t)addr + len - 1) >> MEM_PAGE_SHIFT;
    if (last >= MEM_PAGES) last = MEM_PAGES - 1;
    memset(in->perm + first, perm, last - first + 1);
    if (perm) span_add(in->mapped, &in->nmapped, (uint32_t)first, (uint32_t)last);
    if (perm & PERM_W) span_add(in->written, &in->nwritten, (uint32_t)first, (uint32_t)last);
    /* the hardware (here, or in the worker) follows before native code next runs */
    if (in->hw_perms || in->shared_view) {
        span_add(in->perm_dirty, &in->ndirty, (uint32_t)first, (uint32_t)last);
        in->sync_due = true;
    }
}

static cpvm_status sync_span(struct cpvm_instance *in, struct mem_span d,
                             cpvm_status (*apply)(void *arg, uint32_t page, uint32_t n, int prot), void *arg);

cpvm_status mem_sync_runs(struct cpvm_instance *in, cpvm_status (*apply)(void *arg, uint32_t page, uint32_t n, int prot),
                          void *arg)
{
    for (unsigned i = 0; i < in->ndirty; i++) {
        cpvm_status s = sync_span(in, in->perm_dirty[i], apply, arg);
        if (s) return s;
    }
    in->ndirty = 0;
    in->sync_due = false;
    return CPVM_OK;
}

static cpvm_status sync_span(struct cpvm_instance *in, struct mem_span d,
                             cpvm_status (*apply)(void *arg, uint32_t page, uint32_t n, int prot), void *arg)
{
    for (uint32_t p = d.lo; p <= d.hi;) {
        /* Equal stretches are long (regions, and the gaps between them): a word at a time. */
        uint64_t a, b;
        while (p + 8 <= d.hi + 1 && (memcpy(&a, in->perm + p, 8), memcpy(&b, in->hw + p, 8), a == b)) p += 8;
        while (p <= d.hi && in->perm[p] == in->hw[p]) p++;
        if (p > d.hi) break;
        uint8_t want = in->perm[p];
        uint32_t q = p + 1;
        /* A run is as long as the heap sbrk opened (a GiB is 2^18 pages): a
         * word at a time while all of perm is `want` and no byte of hw is. */
        const uint64_t ones = 0x0101010101010101ull, want8 = want * ones;
        while (q + 8 <= d.hi + 1) {
            memcpy(&a, in->perm + q, 8);
            memcpy(&b, in->hw + q, 8);
            uint64_t x = b ^ want8; /* a zero byte where hw already is `want` */
            if (a != want8 || ((x - ones) & ~x & (ones << 7))) break;
            q += 8;
        }
        while (q <= d.hi && in->perm[q] == want && in->hw[q] != want) q++;
        cpvm_status s = apply(arg, p, q - p, mem_prot(want));
        if (s) return s;
        memset(in->hw + p, want, q - p);
        p = q;
    }
    return CPVM_OK;
}

static cpvm_status apply_mprotect(void *arg, uint32_t page, uint32_t n, int prot)
{
    struct cpvm_instance *in = arg;
    /* SECURITY: compiled code relies on the hardware enforcing the same table. */
    if (mprotect(in->mem + ((uint64_t)page << MEM_PAGE_SHIFT), (uint64_t)n << MEM_PAGE_SHIFT, prot) != 0)
        CPVM_BUG("mprotect of guest pages failed");
    return CPVM_OK;
}

void mem_sync(struct cpvm_instance *in)
{
    if (in->hw_perms && in->ndirty) mem_sync_runs(in, apply_mprotect, in);
}

/* --- the initial memory ------------------------------------------------------------- */

/* Whether any page of [addr, addr + len) is in `spans`. */
static bool spans_overlap(const struct mem_span *spans, unsigned n, uint32_t addr, uint64_t len)
{
    if (!len) return false;
    uint32_t lo = addr >> MEM_PAGE_SHIFT, hi = (uint32_t)(((uint64_t)addr + len - 1) >> MEM_PAGE_SHIFT);
    for (unsigned i = 0; i < n; i++)
        if (spans[i].lo <= hi && spans[i].hi >= lo) return true;
    return false;
}

static void load_standard(struct cpvm_instance *in, bool ro_intact)
{
    const struct cpvm_module *m = in->mod;
    const struct cpvm_memory_map *map = &m->map;
    const struct cpvm_program *p = m->prog;
    in->heap_size = 0;
    in->rw_size = map->rw_data_size;
    mem_set_perm(in, map->ro_data_address, map->ro_data_size, PERM_R);
    mem_set_perm(in, map->rw_data_address, map->rw_data_size, PERM_R | PERM_W);
    mem_set_perm(in, map->stack_address_low, map->stack_size, PERM_R | PERM_W);
    mem_set_perm(in, map->aux_data_address, map->aux_data_size, PERM_R);
    /* the initial image: not "written" (a reset keeps intact read-only data) */
    if (p->ro_data_len && !ro_intact) host_copy(in, map->ro_data_address, p->ro_data, p->ro_data_len);
    if (p->rw_data_len) host_copy(in, map->rw_data_address, p->rw_data, p->rw_data_len);
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
    if (in->mod->cfg.memory_model == CPVM_MEMORY_STANDARD) load_standard(in, false);
    return CPVM_OK;
}

cpvm_status mem_init_view(struct cpvm_instance *in, uint8_t *window, int fd, uint64_t off, uint8_t *perm, uint8_t *hw)
{
    /* The host's view of a worker's memory: all read-write here; the worker's
     * pages start inaccessible (a fresh or scrubbed worker), so do the tables
     * (the worker's, all zero: mem_free leaves them so). */
    in->mem = in->host = window;
    in->memfd = true;
    in->view_fd = fd;
    in->view_off = off;
    in->perm = perm;
    in->hw = hw;
    in->shared_view = true;
    return mem_fill(in);
}

cpvm_status mem_init(struct cpvm_instance *in, struct cpvm_error *err)
{
    struct mem_window *w = window_acquire(in->hw_perms, layout_key(in->mod));
    if (!w) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot reserve the 4 GiB guest window");
    in->win = w;
    in->mem = in->host = w->mem;
    in->perm = w->perm;
    in->hw = w->hw;
    /* Pages the previous user left accessible are set right by the first sync. */
    for (unsigned i = 0; i < w->nhw; i++) span_add(in->perm_dirty, &in->ndirty, w->hw_spans[i].lo, w->hw_spans[i].hi);
    in->sync_due = in->ndirty != 0;
    w->nhw = 0;
    return mem_fill(in);
}

void mem_free(struct cpvm_instance *in)
{
    if (in->win) {
        window_release(in);
    } else if (in->shared_view && in->perm) {
        /* the worker's tables, zero again for its next instance: only pages
         * accessible since it was scrubbed, or closed since in the table
         * alone, can have a permission in either */
        const struct mem_span *lists[2] = {in->mapped, in->perm_dirty};
        const unsigned counts[2] = {in->nmapped, in->ndirty};
        for (unsigned k = 0; k < 2; k++)
            for (unsigned i = 0; i < counts[k]; i++) {
                memset(in->perm + lists[k][i].lo, 0, (size_t)lists[k][i].hi - lists[k][i].lo + 1);
                memset(in->hw + lists[k][i].lo, 0, (size_t)lists[k][i].hi - lists[k][i].lo + 1);
            }
    }
    in->mem = in->host = in->perm = in->hw = NULL;
}

cpvm_status mem_reset(struct cpvm_instance *in)
{
    const struct cpvm_memory_map *map = &in->mod->map;
    bool standard = in->mod->cfg.memory_model == CPVM_MEMORY_STANDARD;
    /* Read-only data nobody wrote still holds the initial image. */
    bool ro_intact = standard && !spans_overlap(in->written, in->nwritten, map->ro_data_address, map->ro_data_size);
    mem_wipe(in, in->written, in->nwritten);
    in->nwritten = in->nmapped = 0;
    in->heap_size = 0;
    in->rw_size = map->rw_data_size;
    if (standard) load_standard(in, ro_intact);
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
        /* Only ever more access: the hardware catches up when the guest
         * first touches the pages (a fault the runtime retries after
         * mem_sync) or the host reads them, so a loop of small sbrk calls
         * costs one mprotect, not one each (in the middle of a run nothing
         * syncs them before then). */
        bool due = in->sync_due;
        mem_set_perm(in, (uint32_t)rw_end, new_end - rw_end, PERM_R | PERM_W);
        in->sync_due = due;
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
        if (in->hw_perms && !(in->hw[p >> MEM_PAGE_SHIFT] & PERM_W)) mem_sync(in); /* sbrk's, pending */
        memset(in->host + p, v, chunk);
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
    if (!len) return CPVM_OK;
    /* Pages opened since the last sync may still be closed in hardware: those
     * known to be zero read as such (they stay closed: the next run needs no
     * change if a reset closes them again), any other is opened first. The
     * instance is ours (never a const object); only its hardware state changes. */
    uint32_t first = address >> MEM_PAGE_SHIFT, last = (uint32_t)(((uint64_t)address + len - 1) >> MEM_PAGE_SHIFT);
    bool zeros = false;
    if (in->hw_perms && in->ndirty) {
        for (uint32_t pg = first; pg <= last; pg++) {
            if (in->hw[pg] & PERM_R) continue;
            if (!page_known_zero(in, pg)) {
                mem_sync((struct cpvm_instance *)in);
                zeros = false;
                break;
            }
            zeros = true;
        }
    }
    if (!zeros) {
        if (in->shared_view && in->view_fd >= 0 && len >= 0x1000 &&
            pread(in->view_fd, out, len, (off_t)(in->view_off + address)) == (ssize_t)len)
            return CPVM_OK;
        memcpy(out, in->host + address, len);
        return CPVM_OK;
    }
    uint8_t *o = out;
    for (uint64_t at = address, end = (uint64_t)address + len; at < end;) {
        uint64_t stop = ((at >> MEM_PAGE_SHIFT) + 1) << MEM_PAGE_SHIFT;
        size_t n = (size_t)((stop < end ? stop : end) - at);
        if (in->hw[at >> MEM_PAGE_SHIFT] & PERM_R) memcpy(o, in->host + at, n);
        else memset(o, 0, n);
        o += n;
        at += n;
    }
    return CPVM_OK;
}

cpvm_status cpvm_instance_write_memory(cpvm_instance *in, uint32_t address, const void *data, size_t len)
{
    if (!host_range_ok(in, address, len)) return CPVM_E_BAD_ADDRESS;
    if (!len) return CPVM_OK;
    span_add(in->written, &in->nwritten, address >> MEM_PAGE_SHIFT,
             (uint32_t)(((uint64_t)address + len - 1) >> MEM_PAGE_SHIFT));
    host_copy(in, address, data, len); /* read-only pages included */
    return CPVM_OK;
}

/* Zeroes the part of [s, s + n) inside `spans` (pages accessible since the
 * window was clean: the others are zero already). */
static void zero_range(struct cpvm_instance *in, const struct mem_span *spans, unsigned nspans, uint32_t s,
                       uint64_t n)
{
    uint32_t lo = s >> MEM_PAGE_SHIFT, hi = (uint32_t)((s + n - 1) >> MEM_PAGE_SHIFT);
    for (unsigned i = 0; i < nspans; i++) {
        struct mem_span w = spans[i];
        if (w.hi < lo || w.lo > hi) continue;
        zero_pages(in, w.lo > lo ? w.lo : lo, w.hi < hi ? w.hi : hi);
    }
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
    zero_range(in, in->written, in->nwritten, s, n); /* data got in only through writable pages or the host */
    mem_set_perm(in, s, n, (uint8_t)(PERM_R | (writable ? PERM_W : 0)));
    return CPVM_OK;
}

cpvm_status cpvm_instance_unmap_pages(cpvm_instance *in, uint32_t address, uint32_t len)
{
    uint32_t s;
    uint64_t n;
    cpvm_status st = dynamic_range(in, address, len, &s, &n);
    if (st || !n) return st;
    mem_set_perm(in, s, n, 0); /* its contents are zeroed when it is mapped again */
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


