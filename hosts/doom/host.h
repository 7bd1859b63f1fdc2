/* The DOOM guest's host interface (../shared/bench/doom-host.md): the five
 * imports, bounds-checked against guest memory and the ROM, and the running
 * FNV-1a 64 hashes of the video and audio output. */
#ifndef DOOM_HOST_H
#define DOOM_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpvm.h"

#define FNV_OFFSET_BASIS 0xcbf29ce484222325ull

/* Output of one call, kept as raw bytes so that hashing stays out of the timed
 * guest call (the reference's host only copies frames out, too). */
struct byte_buf {
    uint8_t *ptr;
    size_t len, cap;
};

struct doom_host {
    cpvm_instance *inst;
    const uint8_t *rom;
    size_t rom_len;
    /* import index (ecalli N) -> handler number, or -1 for an unknown name */
    int handler[16];
    unsigned import_count;
    struct byte_buf video, audio;
    uint64_t frames;
    uint64_t video_hash, audio_hash;
    char error[256]; /* why the run must end (a bad guest request) */
};

/* Resolves the program's imports by name; false (with h->error) when an import
 * is unknown to this host. */
bool host_link(struct doom_host *h, const cpvm_program *program);

/* Serves host call `n` on h->inst; false (with h->error) ends the run. */
bool host_call(struct doom_host *h, uint32_t n);

/* Folds the buffered output into the hashes and empties the buffers. */
void host_flush(struct doom_host *h);

void host_free(struct doom_host *h);

#endif
