/* Memory for compiled code. A fuzz target compiles a module per input, and a
 * fresh mapping costs three system calls (map, protect, unmap). Freed
 * mappings are kept in a small per-process pool instead; a reused one is
 * refilled with one write through /proc/self/mem, which writes through the
 * page protection as a debugger does, so the code is never writable in this
 * process, let alone writable and executable at once (W^X). Where that
 * write is refused, the page protection is opened and closed around it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "jit.h"

#define POOL_SLOTS 16u
#define POOL_SLACK 8u /* a reused mapping is at most this many pages bigger than the code */
#define PAGE 4096u

struct code_slot {
    uint8_t *p;
    size_t size;
    bool exec;
};

static struct {
    pthread_mutex_t lock;
    struct code_slot slot[POOL_SLOTS];
    unsigned n;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* What fills a mapping past the code: int3, so a stray jump there traps
 * instead of running an earlier module's code. */
static uint8_t int3_page[PAGE];
static pthread_once_t int3_once = PTHREAD_ONCE_INIT;
static void int3_init(void) { memset(int3_page, 0xcc, sizeof int3_page); }

static int prot_of(bool exec) { return exec ? PROT_READ | PROT_EXEC : PROT_READ; }

/* A pooled mapping of at least `size` bytes (and not much more), or NULL. */
static uint8_t *pool_take(size_t size, bool exec, size_t *got)
{
    uint8_t *p = NULL;
    pthread_mutex_lock(&pool.lock);
    unsigned best = POOL_SLOTS;
    for (unsigned i = 0; i < pool.n; i++)
        if (pool.slot[i].exec == exec && pool.slot[i].size >= size &&
            pool.slot[i].size <= size + (size_t)POOL_SLACK * PAGE &&
            (best == POOL_SLOTS || pool.slot[i].size < pool.slot[best].size))
            best = i;
    if (best != POOL_SLOTS) {
        p = pool.slot[best].p;
        *got = pool.slot[best].size;
        pool.slot[best] = pool.slot[--pool.n];
    }
    pthread_mutex_unlock(&pool.lock);
    return p;
}

/* Writes the code and the int3 padding into a protected mapping: one
 * pwritev through /proc/self/mem, else mprotect around a memcpy. */
static bool refill(uint8_t *p, size_t size, const uint8_t *bytes, size_t len, bool exec)
{
    struct iovec v[1 + POOL_SLACK + 1];
    unsigned n = 0;
    v[n++] = (struct iovec){.iov_base = (void *)bytes, .iov_len = len};
    for (size_t at = len; at < size; n++) {
        size_t k = size - at < PAGE ? size - at : PAGE;
        v[n] = (struct iovec){.iov_base = int3_page, .iov_len = k};
        at += k;
    }
    int fd = mem_self_fd();
    if (fd >= 0 && pwritev(fd, v, (int)n, (off_t)(uintptr_t)p) == (ssize_t)size) return true;
    if (mprotect(p, size, PROT_READ | PROT_WRITE) != 0) return false;
    memcpy(p, bytes, len);
    memset(p + len, 0xcc, size - len);
    return mprotect(p, size, prot_of(exec)) == 0;
}

uint8_t *jit_code_map(const uint8_t *bytes, size_t len, bool exec, size_t *map_size)
{
    pthread_once(&int3_once, int3_init);
    size_t size = (len + PAGE - 1) / PAGE * PAGE;
    if (!size) size = PAGE;
    size_t got = 0;
    uint8_t *p = pool_take(size, exec, &got);
    if (p) {
        if (refill(p, got, bytes, len, exec)) {
            *map_size = got;
            return p;
        }
        munmap(p, got);
    }
    p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    memcpy(p, bytes, len);
    memset(p + len, 0xcc, size - len);
    if (mprotect(p, size, prot_of(exec)) != 0) {
        munmap(p, size);
        return NULL;
    }
    *map_size = size;
    return p;
}

void jit_code_unmap(uint8_t *code, size_t map_size, bool exec)
{
    if (!code) return;
    pthread_mutex_lock(&pool.lock);
    bool kept = pool.n < POOL_SLOTS;
    if (kept) pool.slot[pool.n++] = (struct code_slot){.p = code, .size = map_size, .exec = exec};
    pthread_mutex_unlock(&pool.lock);
    if (!kept) munmap(code, map_size);
}

bool jit_code_open_data(uint8_t *code, size_t off, size_t map_size)
{
    return off >= map_size || mprotect(code + off, map_size - off, PROT_READ | PROT_WRITE) == 0;
}

bool jit_code_close_data(uint8_t *code, size_t off, size_t map_size, bool exec)
{
    if (off >= map_size || mprotect(code + off, map_size - off, prot_of(exec)) == 0) return true;
    munmap(code, map_size); /* cannot go back to the pool as code */
    return false;
}
