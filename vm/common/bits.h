/* Width conversions named for intent (isa.md §1). */
#ifndef CPVM_COMMON_BITS_H
#define CPVM_COMMON_BITS_H

#include <stdint.h>
#include <string.h>

static inline uint64_t sext8(uint64_t v) { return (uint64_t)(int64_t)(int8_t)(uint8_t)v; }
static inline uint64_t sext16(uint64_t v) { return (uint64_t)(int64_t)(int16_t)(uint16_t)v; }
static inline uint64_t sext32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)(uint32_t)v; }
static inline uint64_t zext32(uint64_t v) { return (uint32_t)v; }
static inline uint32_t lo32(uint64_t v) { return (uint32_t)v; }

static inline uint16_t rd_le16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd_le32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rd_le64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline void wr_le16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static inline void wr_le32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline void wr_le64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "cpvm assumes a little-endian host"
#endif

#endif
