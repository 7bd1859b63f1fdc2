/* Running an instance's compiled code in its worker: page permissions the
 * host changed are handed over first (as runs of equal protection), then the
 * worker is told where to start and the host waits, never longer than the
 * instance's deadline and never on a dead worker. */
#include <string.h>

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

static cpvm_status sync_perms(struct cpvm_instance *in, uint64_t deadline)
{
    struct sbx_worker *w = in->worker;
    volatile struct sbx_ctrl *c = w->ctrl;
    uint32_t n = 0;
    for (uint32_t p = in->dirty_lo; in->dirty_lo <= in->dirty_hi && p <= in->dirty_hi;) {
        uint8_t perm = in->perm[p];
        int prot = mem_prot(perm);
        uint32_t q = p + 1;
        /* Runs are long (a region, or the gap between two): skip them a word at a time. */
        uint64_t pattern = perm * 0x0101010101010101ull, word;
        while (q + 8 <= in->dirty_hi + 1 && (memcpy(&word, in->perm + q, 8), word == pattern)) q += 8;
        while (q <= in->dirty_hi && in->perm[q] == perm) q++;
        if (n == SBX_MAX_PROT) {
            c->nprot = n;
            cpvm_status s = outcome(in, sbx_worker_call(w, SBX_CMD_PROTECT, deadline));
            if (s) return s;
            n = 0;
        }
        c->prot[n++] = (struct sbx_prot){.addr = SBX_WINDOW + ((uint64_t)p << MEM_PAGE_SHIFT),
                                         .len = (uint64_t)(q - p) << MEM_PAGE_SHIFT,
                                         .prot = (uint32_t)prot};
        p = q;
    }
    c->nprot = n;
    in->dirty_lo = 1, in->dirty_hi = 0;
    return CPVM_OK;
}

cpvm_status sbx_enter(struct cpvm_instance *in, const struct jit_code *jc, uint32_t target)
{
    struct sbx_worker *w = in->worker;
    uint64_t deadline = in->deadline_ns ? sbx_now_ns() + in->deadline_ns : 0;
    cpvm_status s = sync_perms(in, deadline);
    if (s) return s;
    volatile struct sbx_ctrl *c = w->ctrl;
    c->code_len = jc->len;
    c->entry = jc->entry_off;
    c->restore = jc->restore_off;
    c->target = SBX_CODE + target;
    c->code_gen = w->code_gen;
    w->runs++;
    return outcome(in, sbx_worker_call(w, SBX_CMD_RUN, deadline));
}
