#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "program/writer.h"

uint8_t *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    uint8_t *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        if (!got) break;
        n += got;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

const char *tu_conformance_dir(void)
{
    /* The environment at test time, else what CMake was configured with. */
    const char *d = getenv("CPVM_CONFORMANCE_DIR");
    if (d && *d) return d;
    d = getenv("CPVM_CONFORMANCE_DEFAULT");
    return d && *d ? d : "../shared/conformance";
}

const char *tu_source_dir(void)
{
    const char *d = getenv("CPVM_SOURCE_DIR");
    return d && *d ? d : ".";
}

size_t tu_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int v;
        if (*p >= '0' && *p <= '9') v = *p - '0';
        else if (*p >= 'a' && *p <= 'f') v = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F') v = *p - 'A' + 10;
        else continue;
        if (hi < 0) hi = v;
        else {
            if (n < cap) out[n] = (uint8_t)(hi << 4 | v);
            n++;
            hi = -1;
        }
    }
    return n;
}

uint8_t *tu_raw_program(const char *const *insns, size_t n, const uint32_t *jt, size_t jt_n, size_t *len)
{
    uint8_t code[4096] = {0}, bitmask[512] = {0};
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        bitmask[at / 8] |= (uint8_t)(1u << (at % 8));
        at += tu_hex(insns[i], code + at, sizeof code - at);
    }
    struct writer_parts w = {.isa = CPVM_ISA_LATEST64, .code = code, .code_len = at, .bitmask = bitmask,
                             .jump_table = jt, .jump_table_count = jt_n};
    uint8_t *out = NULL;
    if (writer_build(&w, true, &out, len, NULL)) return NULL;
    return out;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

char **tu_list_dir(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 16;
    char **list = calloc(cap + 1, sizeof *list);
    if (!d) return list;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < sl || strcmp(e->d_name + l - sl, suffix) != 0) continue;
        if (n == cap) {
            cap *= 2;
            list = realloc(list, (cap + 1) * sizeof *list);
        }
        size_t pl = strlen(dir) + l + 2;
        list[n] = malloc(pl);
        snprintf(list[n], pl, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    list[n] = NULL;
    qsort(list, n, sizeof *list, cmp_str);
    return list;
}

void tu_free_list(char **list)
{
    if (!list) return;
    for (char **p = list; *p; p++) free(*p);
    free(list);
}

/* The in-process compiler backend turns guest faults into results with its own
 * SIGSEGV handler; under ASan that needs allow_user_segv_handler. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allow_user_segv_handler=1"; }
