/* Edge-case arithmetic shared by every backend (isa.md §7.1): division and
 * remainder never trap, 32-bit results are sign-extended, shifts are masked. */
#ifndef CPVM_SEMANTICS_H
#define CPVM_SEMANTICS_H

#include <stdint.h>

#include "../common/bits.h"

static inline uint64_t sem_div_u64(uint64_t a, uint64_t b) { return b ? a / b : UINT64_MAX; }
static inline uint64_t sem_rem_u64(uint64_t a, uint64_t b) { return b ? a % b : a; }
static inline uint64_t sem_div_s64(uint64_t a, uint64_t b)
{
    if (!b) return UINT64_MAX;
    if (a == (1ull << 63) && b == UINT64_MAX) return a;
    return (uint64_t)((int64_t)a / (int64_t)b);
}
static inline uint64_t sem_rem_s64(uint64_t a, uint64_t b)
{
    if (!b) return a;
    if (a == (1ull << 63) && b == UINT64_MAX) return 0;
    return (uint64_t)((int64_t)a % (int64_t)b);
}
static inline uint64_t sem_div_u32(uint64_t a, uint64_t b)
{
    return (uint32_t)b ? sext32((uint32_t)a / (uint32_t)b) : UINT64_MAX;
}
static inline uint64_t sem_rem_u32(uint64_t a, uint64_t b)
{
    return (uint32_t)b ? sext32((uint32_t)a % (uint32_t)b) : sext32(a);
}
static inline uint64_t sem_div_s32(uint64_t a, uint64_t b)
{
    int32_t x = (int32_t)(uint32_t)a, y = (int32_t)(uint32_t)b;
    if (!y) return UINT64_MAX;
    if (x == INT32_MIN && y == -1) return sext32((uint32_t)x);
    return sext32((uint32_t)(x / y));
}
static inline uint64_t sem_rem_s32(uint64_t a, uint64_t b)
{
    int32_t x = (int32_t)(uint32_t)a, y = (int32_t)(uint32_t)b;
    if (!y) return sext32((uint32_t)x);
    if (x == INT32_MIN && y == -1) return 0;
    return sext32((uint32_t)(x % y));
}

static inline uint64_t sem_mulh_ss64(uint64_t a, uint64_t b)
{
    return (uint64_t)((unsigned __int128)((__int128)(int64_t)a * (__int128)(int64_t)b) >> 64);
}
static inline uint64_t sem_mulh_uu64(uint64_t a, uint64_t b)
{
    return (uint64_t)(((unsigned __int128)a * b) >> 64);
}
static inline uint64_t sem_mulh_su64(uint64_t a, uint64_t b)
{
    return (uint64_t)((unsigned __int128)((__int128)(int64_t)a * (__int128)b) >> 64);
}
/* Latest32 (isa.md §8): the high half of the 64-bit product of 32-bit operands. */
static inline uint64_t sem_mulh_ss32(uint64_t a, uint64_t b)
{
    return sext32((uint64_t)((int64_t)(int32_t)(uint32_t)a * (int64_t)(int32_t)(uint32_t)b) >> 32);
}
static inline uint64_t sem_mulh_uu32(uint64_t a, uint64_t b)
{
    return sext32(((uint64_t)(uint32_t)a * (uint32_t)b) >> 32);
}
static inline uint64_t sem_mulh_su32(uint64_t a, uint64_t b)
{
    return sext32((uint64_t)((int64_t)(int32_t)(uint32_t)a * (int64_t)(uint32_t)b) >> 32);
}

static inline uint64_t sem_rotl64(uint64_t v, uint64_t n) { n &= 63; return n ? (v << n) | (v >> (64 - n)) : v; }
static inline uint64_t sem_rotr64(uint64_t v, uint64_t n) { n &= 63; return n ? (v >> n) | (v << (64 - n)) : v; }
static inline uint32_t sem_rotl32(uint32_t v, uint64_t n) { n &= 31; return n ? (v << n) | (v >> (32 - n)) : v; }
static inline uint32_t sem_rotr32(uint32_t v, uint64_t n) { n &= 31; return n ? (v >> n) | (v << (32 - n)) : v; }

static inline uint64_t sem_sll32(uint64_t a, uint64_t n) { return sext32((uint32_t)a << (n & 31)); }
static inline uint64_t sem_srl32(uint64_t a, uint64_t n) { return sext32((uint32_t)a >> (n & 31)); }
static inline uint64_t sem_sra32(uint64_t a, uint64_t n) { return sext32((uint32_t)((int32_t)(uint32_t)a >> (n & 31))); }
static inline uint64_t sem_sra64(uint64_t a, uint64_t n) { return (uint64_t)((int64_t)a >> (n & 63)); }

static inline uint64_t sem_clz64(uint64_t v) { return v ? (uint64_t)__builtin_clzll(v) : 64; }
static inline uint64_t sem_ctz64(uint64_t v) { return v ? (uint64_t)__builtin_ctzll(v) : 64; }
static inline uint64_t sem_clz32(uint64_t v) { return (uint32_t)v ? (uint64_t)__builtin_clz((uint32_t)v) : 32; }
static inline uint64_t sem_ctz32(uint64_t v) { return (uint32_t)v ? (uint64_t)__builtin_ctz((uint32_t)v) : 32; }

static inline uint64_t sem_max_s(uint64_t a, uint64_t b) { return (int64_t)a > (int64_t)b ? a : b; }
static inline uint64_t sem_min_s(uint64_t a, uint64_t b) { return (int64_t)a < (int64_t)b ? a : b; }
static inline uint64_t sem_max_u(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline uint64_t sem_min_u(uint64_t a, uint64_t b) { return a < b ? a : b; }

#endif
