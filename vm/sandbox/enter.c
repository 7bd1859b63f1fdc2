/* The sandboxed compiler as a backend: an instance holds a worker for its
 * life; its memory is the host's view of the worker's memfd. Before each run
 * the permission changes since the last one go over (as runs of pages that
 * differ from what the worker has), then the worker is told where to start
 * and the host waits, never longer than the instance's deadline and never on
 * a dead worker. */
#include <string.h>
#include <sys/mman.h>

#include "../common/error.h"
#include "../jit/jit.h"
#include "sandbox.h"

cpvm_status sbx_fail(struct cpvm_instance *in, cpvm_status why)
{
    in->dead = why;
    in->next = NEXT_NONE;
    if (in->worker) sbx_worker_kill(in->worker);
    return why;
}

static cpvm_status outcome(struct cpvm_instance *in, enum sbx_wait r)
{
    switch (r) {
    case SBX_DONE: return CPVM_OK;
    case SBX_TIMEOUT: return sbx_fail(in, CPVM_E_DEADLINE);
    case SBX_DIED:
    case SBX_REFUSED: break;
    }
    return sbx_fail(in, CPVM_E_SANDBOX);
}

struct prot_batch {
    struct cpvm_instance *in;
    uint32_t n;
    uint64_t deadline;
};

static cpvm_status add_prot(void *arg, uint32_t page, uint32_t n, int prot)
{
    struct prot_batch *b = arg;
    struct sbx_worker *w = b->in->worker;
    volatile struct sbx_ctrl *c = w->ctrl;
    if (b->n == SBX_MAX_PROT) { /* a full batch goes over on its own */
        c->nprot = b->n;
        cpvm_status s = outcome(b->in, sbx_worker_call(w, SBX_CMD_PROTECT, b->deadline));
        if (s) return s;
        b->n = 0;
    }
    c->prot[b->n++] = (struct sbx_prot){.addr = SBX_WINDOW + ((uint64_t)page << MEM_PAGE_SHIFT),
                                        .len = (uint64_t)n << MEM_PAGE_SHIFT,
                                        .prot = (uint32_t)prot};
    return CPVM_OK;
}

/* What the worker's sbrk calls did: checked (a heap that only grew, within
 * its maximum, rw_end the page-rounded top), then the table and what the
 * worker's hardware has (the worker opened the pages) follow. */
static cpvm_status took_sbrk(struct cpvm_instance *in, uint64_t rw_end)
{
    volatile struct sbx_ctrl *c = in->worker->ctrl;
    const struct cpvm_memory_map *map = &in->mod->map;
    uint32_t heap = c->heap_size;
    uint64_t end = c->rw_end;
    if (heap == in->heap_size && end == rw_end) return CPVM_OK;
    uint64_t psz = in->mod->page_size, top = (uint64_t)map->heap_base + heap;
    uint64_t want = (top + psz - 1) / psz * psz;
    if (want < rw_end) want = rw_end;
    if (heap < in->heap_size || heap > map->max_heap_size || top > 0xffffffffull || end != want)
        return sbx_fail(in, CPVM_E_SANDBOX);
    in->heap_size = heap;
    if (end > rw_end) {
        bool due = in->sync_due;
        mem_set_perm(in, (uint32_t)rw_end, end - rw_end, PERM_R | PERM_W);
        memset(in->hw + (rw_end >> MEM_PAGE_SHIFT), PERM_R | PERM_W, (size_t)((end - rw_end) >> MEM_PAGE_SHIFT));
        in->sync_due = due;
        in->rw_size = (uint32_t)(end - map->rw_data_address);
    }
    return CPVM_OK;
}

static cpvm_status enter(struct cpvm_instance *in, const struct jit_code *jc, uint32_t target)
{
    struct sbx_worker *w = in->worker;
    uint64_t deadline = in->deadline_ns ? sbx_now_ns() + in->deadline_ns : 0;
    struct prot_batch b = {.in = in, .deadline = deadline};
    cpvm_status s = mem_sync_runs(in, add_prot, &b);
    if (s) return s;
    volatile struct sbx_ctrl *c = w->ctrl;
    c->nprot = b.n;
    c->code_len = jc->len;
    c->entry = jc->entry_off;
    c->restore = jc->restore_off;
    c->target = SBX_CODE + target;
    c->code_gen = w->code_gen;
    const struct cpvm_module *m = in->mod;
    const struct cpvm_memory_map *map = &m->map;
    uint64_t rw_end = (uint64_t)map->rw_data_address + in->rw_size;
    c->sbrk_on = m->cfg.memory_model == CPVM_MEMORY_STANDARD;
    c->sbrk_is64 = m->is64;
    c->heap_base = map->heap_base;
    c->heap_size = in->heap_size;
    c->heap_max = map->max_heap_size;
    c->page_size = m->page_size;
    c->rw_end = rw_end;
    w->runs++;
    s = outcome(in, sbx_worker_call(w, SBX_CMD_RUN, deadline));
    if (s) return s;
    return took_sbrk(in, rw_end);
}

static cpvm_status reject(struct cpvm_instance *in) { return sbx_fail(in, CPVM_E_SANDBOX); }

/* Lazy costs: the worker reads its copy of the table, in its code memfd (the
 * instance's worker holds this module's code for the instance's life; only
 * the host writes it). */
static bool cost_known(struct cpvm_instance *in, const struct jit_code *jc, size_t k, uint64_t cost)
{
    struct sbx_worker *w = in->worker;
    if (w->code_owner != in->mod->owner_id || jc->costs_off + (k + 1) * 8 > w->code_used) return false;
    uint64_t was;
    memcpy(&was, w->code_view + jc->costs_off + k * 8, 8);
    memcpy(w->code_view + jc->costs_off + k * 8, &cost, 8);
    return was == JIT_COST_UNKNOWN;
}

static const struct jit_exec in_worker = {.code_base = SBX_CODE, .enter = enter, .reject = reject,
                                          .cost_known = cost_known, .cost_batch = 16};

static cpvm_status run(struct cpvm_instance *in, struct cpvm_interrupt *out) { return jit_run(in, out, &in_worker); }

static cpvm_status prepare(struct cpvm_instance *in, struct cpvm_error *err)
{
    const struct cpvm_module *m = in->mod;
    char why[200];
    if (sbx_acquire(m->owner_id, &in->worker, why, sizeof why)) return cpvm_fail(err, CPVM_E_SANDBOX, 0, "%s", why);
    if (in->worker->code_owner != m->owner_id &&
        sbx_worker_load_code(in->worker, m->owner_id, m->jit->code, m->jit->len))
        return cpvm_fail(err, CPVM_E_LIMIT, 0, "%zu bytes of native code exceed a worker's code window", m->jit->len);
    struct sbx_worker *w = in->worker;
    uint8_t **tables[2] = {&w->perm_table, &w->hw_table};
    for (unsigned i = 0; i < 2; i++) {
        if (*tables[i]) continue;
        void *p = mmap(NULL, MEM_PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "cannot map the permission tables");
        *tables[i] = p;
    }
    return mem_init_view(in, sbx_window(w), w->memfd, SBX_WINDOW_PRE, w->perm_table, w->hw_table);
}

/* The worker keeps its window: the host already wiped the written pages
 * through its view (hole-punched, so the worker sees zeros) and the changed
 * permissions go over with the next run. */
static cpvm_status reset(struct cpvm_instance *in)
{
    (void)in;
    return CPVM_OK;
}

static void release(struct cpvm_instance *in)
{
    mem_free(in);
    sbx_release(in->worker); /* scrubbed and pooled, or destroyed */
    in->worker = NULL;
}

const struct vm_backend sbx_backend = {
    .name = "compiler (zygote)", .prepare = prepare, .run = run, .reset = reset, .free = release};
