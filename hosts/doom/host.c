/* The DOOM guest's five imports. Every guest request is checked before it is
 * served: a pointer outside guest memory or a ROM range past the end is a host
 * error that ends the run (doom-host.md), never a guest trap or a host crash. */
#include "host.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* No frame or audio batch comes near this; a bigger request is a bad guest. */
#define MAX_OUTPUT_BYTES (64u << 20)

enum handler { H_AUDIO, H_VIDEO, H_ROM_READ, H_ROM_SIZE, H_STDOUT, H_COUNT };
static const char *const handler_name[H_COUNT] = {
    "ext_output_audio", "ext_output_video", "ext_rom_read", "ext_rom_size", "ext_stdout",
};

static bool fail(struct doom_host *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->error, sizeof h->error, fmt, ap);
    va_end(ap);
    return false;
}

bool host_link(struct doom_host *h, const cpvm_program *program)
{
    struct cpvm_program_info info;
    cpvm_program_get_info(program, &info);
    if (info.import_count > sizeof h->handler / sizeof h->handler[0])
        return fail(h, "the program has %" PRIu32 " imports; this host knows 5", info.import_count);
    h->import_count = info.import_count;
    for (uint32_t i = 0; i < info.import_count; i++) {
        struct cpvm_symbol sym;
        h->handler[i] = -1;
        if (!cpvm_program_import(program, i, &sym)) continue;
        for (int k = 0; k < H_COUNT; k++)
            if (sym.name_len == strlen(handler_name[k]) && memcmp(sym.name, handler_name[k], sym.name_len) == 0)
                h->handler[i] = k;
    }
    return true;
}

/* The low 32 bits of an argument register (doom-host.md). */
static uint32_t arg(const struct doom_host *h, unsigned reg)
{
    return (uint32_t)cpvm_instance_reg(h->inst, reg);
}

/* Appends `len` bytes of guest memory at `address` to `b`. */
static bool copy_out(struct doom_host *h, const char *what, struct byte_buf *b, uint32_t address, uint64_t len)
{
    if (len > MAX_OUTPUT_BYTES)
        return fail(h, "%s: %" PRIu64 " bytes at 0x%08" PRIx32 " is more than this host accepts (%u)", what, len,
                    address, MAX_OUTPUT_BYTES);
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 1u << 20;
        while (cap < b->len + len) cap *= 2;
        uint8_t *p = realloc(b->ptr, cap);
        if (!p) return fail(h, "%s: out of memory", what);
        b->ptr = p;
        b->cap = cap;
    }
    if (cpvm_instance_read_memory(h->inst, address, b->ptr + b->len, (size_t)len) != CPVM_OK)
        return fail(h, "%s: guest range 0x%08" PRIx32 "+%" PRIu64 " is outside guest memory", what, address, len);
    b->len += (size_t)len;
    return true;
}

static bool rom_read(struct doom_host *h)
{
    uint32_t dst = arg(h, CPVM_REG_A0), off = arg(h, CPVM_REG_A1), len = arg(h, CPVM_REG_A2);
    if ((uint64_t)off + len > h->rom_len)
        return fail(h, "ext_rom_read: ROM range 0x%" PRIx32 "+%" PRIu32 " is past the end of the ROM (%zu bytes)",
                    off, len, h->rom_len);
    if (cpvm_instance_write_memory(h->inst, dst, h->rom + off, len) != CPVM_OK)
        return fail(h, "ext_rom_read: guest range 0x%08" PRIx32 "+%" PRIu32 " is outside guest memory", dst, len);
    return true;
}

static bool guest_stdout(struct doom_host *h)
{
    uint32_t ptr = arg(h, CPVM_REG_A0), len = arg(h, CPVM_REG_A1);
    int32_t result = 0;
    if (len) {
        struct byte_buf b = {0};
        bool ok = copy_out(h, "ext_stdout", &b, ptr, len);
        if (ok) result = fwrite(b.ptr, 1, b.len, stdout) == b.len ? (int32_t)len : -32; /* -EPIPE */
        free(b.ptr);
        if (!ok) return false;
    }
    cpvm_instance_set_reg(h->inst, CPVM_REG_A0, (uint64_t)(int64_t)result);
    return true;
}

bool host_call(struct doom_host *h, uint32_t n)
{
    int k = n < h->import_count ? h->handler[n] : -1;
    switch (k) {
    case H_AUDIO: /* samples of two i16 channels */
        return copy_out(h, "ext_output_audio", &h->audio, arg(h, CPVM_REG_A0), (uint64_t)arg(h, CPVM_REG_A1) * 4);
    case H_VIDEO: /* width x height pixels of 4 bytes */
        if (!copy_out(h, "ext_output_video", &h->video, arg(h, CPVM_REG_A0),
                      (uint64_t)arg(h, CPVM_REG_A1) * arg(h, CPVM_REG_A2) * 4))
            return false;
        h->frames++;
        return true;
    case H_ROM_READ: return rom_read(h);
    case H_ROM_SIZE:
        cpvm_instance_set_reg(h->inst, CPVM_REG_A0, (uint32_t)h->rom_len);
        return true;
    case H_STDOUT: return guest_stdout(h);
    default: return fail(h, "host call %" PRIu32 " is not an import this host provides", n);
    }
}

static uint64_t fnv1a(uint64_t hash, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++) hash = (hash ^ p[i]) * 0x100000001b3ull;
    return hash;
}

void host_flush(struct doom_host *h)
{
    h->video_hash = fnv1a(h->video_hash, h->video.ptr, h->video.len);
    h->audio_hash = fnv1a(h->audio_hash, h->audio.ptr, h->audio.len);
    h->video.len = h->audio.len = 0;
}

void host_free(struct doom_host *h)
{
    free(h->video.ptr);
    free(h->audio.ptr);
    h->video = h->audio = (struct byte_buf){0};
}
