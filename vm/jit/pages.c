#define _GNU_SOURCE /* mremap, MADV_POPULATE_WRITE */
#include "pages.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#define PAGE_ROUND(n) (((n) + 4095) & ~(size_t)4095)

/* Freed mappings kept for the next compile: a fresh mapping costs a zeroed page
 * and a fault per page, which is more than the compiler's work on that page.
 * Every user appends before it reads, so stale contents never show. */
#define CACHE_SLOTS 8
#define CACHE_MAX_BYTES ((size_t)64 << 20)
static struct { void *p; size_t size; } cache[CACHE_SLOTS];
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* The smallest cached mapping of at least `need` bytes; NULL if none. */
static void *cache_take(size_t need, size_t *size)
{
    void *best = NULL;
    pthread_mutex_lock(&cache_lock);
    unsigned k = CACHE_SLOTS;
    for (unsigned i = 0; i < CACHE_SLOTS; i++)
        if (cache[i].p && cache[i].size >= need && (k == CACHE_SLOTS || cache[i].size < cache[k].size)) k = i;
    if (k < CACHE_SLOTS) {
        best = cache[k].p;
        *size = cache[k].size;
        cache[k].p = NULL;
    }
    pthread_mutex_unlock(&cache_lock);
    return best; /* read-write as it went in: code lives in code_mem.c's mappings, never here */
}

bool pages_grow(void **p, size_t *cap, size_t need, size_t prefault)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 4096;
    while (c < need) c *= 2;
    c = PAGE_ROUND(c);
    void *np;
    bool fresh = true;
    if (*p) {
        np = mremap(*p, *cap, c, MREMAP_MAYMOVE);
    } else {
        np = cache_take(c, &c);
        fresh = !np; /* a reused mapping's pages are mostly present already */
        if (!np) np = mmap(NULL, c, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (np == MAP_FAILED) return false;
    /* Best effort (older kernels lack it): the pages would fault in anyway. */
    if (fresh && prefault > *cap)
        (void)madvise((char *)np + *cap, PAGE_ROUND(prefault < c ? prefault : c) - *cap, MADV_POPULATE_WRITE);
    *p = np;
    *cap = c;
    return true;
}

void pages_free(void *p, size_t cap)
{
    if (!p) return;
    if (cap <= CACHE_MAX_BYTES) {
        pthread_mutex_lock(&cache_lock);
        unsigned k = 0;
        for (unsigned i = 1; i < CACHE_SLOTS; i++)
            if (!cache[i].p || (cache[k].p && cache[i].size < cache[k].size)) k = i;
        if (!cache[k].p || cache[k].size < cap) {
            void *old = cache[k].p;
            size_t old_size = cache[k].size;
            cache[k].p = p;
            cache[k].size = cap;
            p = old;
            cap = old_size;
        }
        pthread_mutex_unlock(&cache_lock);
    }
    if (p) munmap(p, cap);
}
