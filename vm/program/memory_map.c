/* The guest address space layout (execution.md §3.1). */
#include "../common/error.h"
#include "../common/limits.h"

static uint64_t up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

cpvm_status cpvm_memory_map_build(uint32_t page_size, uint32_t ro, uint32_t rw, uint32_t stack, uint32_t aux,
                                  struct cpvm_memory_map *m, struct cpvm_error *err)
{
    const uint64_t G = VM_PAGE_MAX, TOP = (1ull << 32) - VM_PAGE_MAX, P = page_size;
    if (P < VM_PAGE_MIN || P > VM_PAGE_MAX || (P & (P - 1)))
        return cpvm_fail(err, CPVM_E_BAD_MEMORY_MAP, 0, "page size 0x%x is not a power of two in [4 KiB, 64 KiB]",
                         page_size);
    /* Signed 64-bit arithmetic: nothing here can overflow, and any result outside
     * [0, 2^32] means the layout does not fit. */
    int64_t rw_addr = (int64_t)(G + up(ro, G) + G);
    int64_t aux_addr = (int64_t)TOP - (int64_t)up(aux, G);
    int64_t stack_high = aux_addr - (int64_t)G;
    int64_t low_end = rw_addr + (int64_t)up(rw, G) + (int64_t)G;
    int64_t high_end = stack_high - (int64_t)up(stack, G);
    if (aux_addr < 0 || high_end < 0 || low_end > high_end)
        return cpvm_fail(err, CPVM_E_BAD_MEMORY_MAP, 0,
                         "maximum memory size exceeded: ro %u, rw %u, stack %u, aux %u bytes do not fit in 4 GiB", ro,
                         rw, stack, aux);
    *m = (struct cpvm_memory_map){
        .page_size = page_size,
        .ro_data_address = (uint32_t)G,
        .ro_data_size = (uint32_t)up(ro, P),
        .rw_data_address = (uint32_t)rw_addr,
        .rw_data_size = (uint32_t)up(rw, P),
        .heap_base = (uint32_t)(rw_addr + rw),
        .aux_data_address = (uint32_t)aux_addr,
        .aux_data_size = (uint32_t)up(aux, P),
        .stack_address_high = (uint32_t)stack_high,
        .stack_size = (uint32_t)up(stack, P),
        .stack_address_low = (uint32_t)(stack_high - (int64_t)up(stack, P)),
        .max_heap_size = (uint32_t)(high_end - (int64_t)G - (rw_addr + rw)),
    };
    return CPVM_OK;
}
