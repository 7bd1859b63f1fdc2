/* Growable arrays in their own anonymous mappings, for the compiler's big
 * per-module buffers: sized up front and prefaulted in one call (one page fault
 * per page costs more than the compiler's work on it), grown by mremap (no copy),
 * and kept for the next compile once freed. Always read-write: native code is
 * copied into code_mem.c's mappings, which are never writable. */
#ifndef CPVM_JIT_PAGES_H
#define CPVM_JIT_PAGES_H

#include <stdbool.h>
#include <stddef.h>

/* Makes *p hold at least `need` bytes (*cap: its mapped size, 0 for none yet);
 * the first `prefault` bytes are faulted in at once. False when out of memory
 * (*p unchanged). */
bool pages_grow(void **p, size_t *cap, size_t need, size_t prefault);
void pages_free(void *p, size_t cap);

#endif
