/* The worker pool: idle workers kept for the next instance, with everything a
 * previous instance left behind wiped on the way in (sandbox.md F4), and the
 * accounting behind cpvm_sandbox_stats(). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "../common/error.h"
#include "sandbox.h"

static struct {
    pthread_mutex_t lock;
    struct sbx_worker *idle, *busy;
    unsigned nidle, nbusy, max_idle;
    uint64_t spawned, reused, destroyed, next_owner;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .max_idle = 4, .next_owner = 1};

static void busy_add(struct sbx_worker *w) /* pool.lock held */
{
    w->busy_prev = NULL;
    w->busy_next = pool.busy;
    if (pool.busy) pool.busy->busy_prev = w;
    pool.busy = w;
    pool.nbusy++;
}

static void busy_remove(struct sbx_worker *w) /* pool.lock held */
{
    if (w->busy_prev) w->busy_prev->busy_next = w->busy_next;
    else pool.busy = w->busy_next;
    if (w->busy_next) w->busy_next->busy_prev = w->busy_prev;
    w->busy_next = w->busy_prev = NULL;
    pool.nbusy--;
}

static void idle_push(struct sbx_worker *w) /* pool.lock held */
{
    w->next = pool.idle;
    pool.idle = w;
    pool.nidle++;
}

uint64_t sbx_new_owner_id(void)
{
    return __atomic_fetch_add(&pool.next_owner, 1, __ATOMIC_RELAXED);
}

cpvm_status sbx_acquire(uint64_t owner, struct sbx_worker **out, char *why, size_t why_len)
{
    /* Idle workers that died meanwhile (killed from outside, or inherited
     * across a fork: not ours to wait for) are dropped first. */
    pthread_mutex_lock(&pool.lock);
    struct sbx_worker *dead = NULL;
    for (struct sbx_worker **p = &pool.idle; *p;) {
        if (sbx_worker_alive(*p)) {
            p = &(*p)->next;
            continue;
        }
        struct sbx_worker *d = *p;
        *p = d->next;
        d->next = dead;
        dead = d;
        pool.nidle--;
        pool.destroyed++;
    }
    struct sbx_worker **best = NULL;
    for (struct sbx_worker **p = &pool.idle; *p; p = &(*p)->next)
        if (!best || (*p)->code_owner == owner) {
            best = p;
            if ((*p)->code_owner == owner) break;
        }
    struct sbx_worker *w = NULL;
    if (best) {
        w = *best;
        *best = w->next;
        w->next = NULL;
        pool.nidle--;
        pool.reused++;
        busy_add(w);
    }
    pthread_mutex_unlock(&pool.lock);
    while (dead) {
        struct sbx_worker *n = dead->next;
        sbx_worker_destroy(dead);
        dead = n;
    }
    if (w) {
        *out = w;
        return CPVM_OK;
    }
    cpvm_status s = sbx_worker_spawn(out, why, why_len);
    if (s) return s;
    pthread_mutex_lock(&pool.lock);
    pool.spawned++;
    busy_add(*out);
    pthread_mutex_unlock(&pool.lock);
    return CPVM_OK;
}

/* Everything the previous instance could leave: guest memory and the JIT
 * context (hole-punched: zero pages for both sides), page permissions (all
 * inaccessible again) and the zygote's stacks. The code stays until another
 * module needs the worker (sbx_worker_load_code overwrites it). */
static bool scrub(struct sbx_worker *w)
{
    uint64_t from = SBX_WINDOW_PRE - MEM_CANARY_BELOW; /* canary page, context, window, guard */
    if (fallocate(w->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)from, (off_t)(SBX_MEM_SIZE - from)))
        return false;
    volatile struct sbx_ctrl *c = w->ctrl;
    c->prot[0] = (struct sbx_prot){.addr = SBX_WINDOW, .len = 1ull << 32, .prot = PROT_NONE};
    c->nprot = 1;
    return sbx_worker_call(w, SBX_CMD_SCRUB, sbx_now_ns() + 2000000000ull) == SBX_DONE;
}

void sbx_release(struct sbx_worker *w)
{
    if (!w) return;
    bool keep = !w->dead;
    pthread_mutex_lock(&pool.lock);
    busy_remove(w);
    keep = keep && pool.nidle < pool.max_idle;
    pthread_mutex_unlock(&pool.lock);
    if (keep) keep = scrub(w);
    if (!keep) {
        sbx_worker_destroy(w);
        pthread_mutex_lock(&pool.lock);
        pool.destroyed++;
        pthread_mutex_unlock(&pool.lock);
        return;
    }
    pthread_mutex_lock(&pool.lock);
    idle_push(w);
    pthread_mutex_unlock(&pool.lock);
}

/* --- public: pool control and accounting ------------------------------------------ */

void cpvm_sandbox_set_pool_size(unsigned max_idle)
{
    struct sbx_worker *drop = NULL;
    pthread_mutex_lock(&pool.lock);
    pool.max_idle = max_idle;
    while (pool.nidle > max_idle) {
        struct sbx_worker *w = pool.idle;
        pool.idle = w->next;
        w->next = drop;
        drop = w;
        pool.nidle--;
        pool.destroyed++;
    }
    pthread_mutex_unlock(&pool.lock);
    while (drop) {
        struct sbx_worker *n = drop->next;
        sbx_worker_destroy(drop);
        drop = n;
    }
}

cpvm_status cpvm_sandbox_prewarm(unsigned count, struct cpvm_error *err)
{
    pthread_mutex_lock(&pool.lock);
    unsigned want = count > pool.max_idle ? pool.max_idle : count;
    unsigned have = pool.nidle;
    pthread_mutex_unlock(&pool.lock);
    for (; have < want; have++) {
        struct sbx_worker *w;
        char why[200];
        cpvm_status s = sbx_worker_spawn(&w, why, sizeof why);
        if (s) {
            return cpvm_fail(err, s, 0, "%.180s", why);
        }
        pthread_mutex_lock(&pool.lock);
        pool.spawned++;
        idle_push(w);
        pthread_mutex_unlock(&pool.lock);
    }
    return CPVM_OK;
}

void cpvm_sandbox_stats(struct cpvm_sandbox_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&pool.lock);
    out->workers_idle = pool.nidle;
    out->workers_busy = pool.nbusy;
    out->max_idle = pool.max_idle;
    out->spawned = pool.spawned;
    out->reused = pool.reused;
    out->destroyed = pool.destroyed;
    for (struct sbx_worker *w = pool.idle; w; w = w->next) {
        uint64_t shared, priv;
        sbx_worker_memory(w, &shared, &priv);
        out->idle_shared_bytes += shared;
        out->idle_private_bytes += priv;
    }
    for (struct sbx_worker *w = pool.busy; w; w = w->busy_next) {
        uint64_t shared, priv;
        sbx_worker_memory(w, &shared, &priv);
        out->busy_shared_bytes += shared;
        out->busy_private_bytes += priv;
    }
    pthread_mutex_unlock(&pool.lock);
}

bool cpvm_sandbox_available(const char **why)
{
    return sbx_available(why);
}
