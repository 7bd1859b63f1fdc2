/* cpvm-doom: runs doom.polkavm headless through the public API (cpvm.h) —
 * ext_initialize, then N ext_ticks — and reports the video and audio hashes, the
 * time per tick and the gas used as one JSON line. See usage(). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cpvm.h"
#include "host.h"

#ifndef DOOM_DEFAULT_PROGRAM
#define DOOM_DEFAULT_PROGRAM "../shared/bench/doom.polkavm"
#endif
#define DOOM_DEFAULT_WAD "/usr/share/games/doom/freedoom1.wad"
#define DOOM_PAGE_SIZE 0x4000u
/* Plenty for any run (2000 ticks use 2.7e10), far from overflow. */
#define GAS_START (INT64_C(1) << 62)

static void usage(FILE *out)
{
    fputs("usage: cpvm-doom [--program FILE] [--wad FILE] [--ticks N] [--backend interpreter|compiler]\n"
          "                 [--sandbox zygote|none] [--gas none|sync|async] [--cost-model NAME]\n"
          "                 [--hash-every K]\n"
          "  --program FILE   the guest (default " DOOM_DEFAULT_PROGRAM ")\n"
          "  --wad FILE       the ROM (default " DOOM_DEFAULT_WAD ", Debian's freedoom)\n"
          "  --ticks N        ext_tick calls after ext_initialize (default 300)\n"
          "  --backend NAME   compiler (default) or interpreter\n"
          "  --sandbox NAME   zygote (default) or none: compiled code in this process\n"
          "  --gas MODE       none (default), sync or async metering\n"
          "  --cost-model M   naive (default), full, full:l1, full:l2 or full:l3 (gas.md §5)\n"
          "  --hash-every K   print the running hashes every K ticks (default 0: never)\n"
          "Prints the guest's stdout, then one JSON line: ticks, frames, ms_per_tick (time inside\n"
          "ext_tick calls, host imports included, hashing not), module_ms, init_ms, video_hash,\n"
          "audio_hash (FNV-1a 64), gas_used. A bad guest request ends the run with exit status 1.\n",
          out);
}

struct options {
    const char *program, *wad;
    uint64_t ticks, hash_every;
    cpvm_backend backend;
    cpvm_sandbox sandbox;
    enum { GAS_NONE, GAS_SYNC, GAS_ASYNC } gas;
    const char *cost_model;
};

static bool parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9') return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return false;
    *out = v;
    return true;
}

/* 0 = parsed, 1 = bad usage, 2 = --help */
static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){DOOM_DEFAULT_PROGRAM, DOOM_DEFAULT_WAD, 300, 0, CPVM_BACKEND_COMPILER,
                          CPVM_SANDBOX_ZYGOTE, GAS_NONE, "naive"};
    for (int i = 1; i < argc; i += 2) { /* every option takes a value */
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) return 2;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = v != NULL;
        if (strcmp(a, "--program") == 0) o->program = v;
        else if (strcmp(a, "--wad") == 0) o->wad = v;
        else if (strcmp(a, "--ticks") == 0) ok = parse_u64(v, &o->ticks);
        else if (strcmp(a, "--hash-every") == 0) ok = parse_u64(v, &o->hash_every);
        else if (strcmp(a, "--backend") == 0) {
            if (ok && strcmp(v, "interpreter") == 0) o->backend = CPVM_BACKEND_INTERPRETER;
            else if (ok && strcmp(v, "compiler") == 0) o->backend = CPVM_BACKEND_COMPILER;
            else ok = false;
        } else if (strcmp(a, "--sandbox") == 0) {
            if (ok && strcmp(v, "zygote") == 0) o->sandbox = CPVM_SANDBOX_ZYGOTE;
            else if (ok && strcmp(v, "none") == 0) o->sandbox = CPVM_SANDBOX_NONE;
            else ok = false;
        } else if (strcmp(a, "--gas") == 0) {
            if (ok && strcmp(v, "none") == 0) o->gas = GAS_NONE;
            else if (ok && strcmp(v, "sync") == 0) o->gas = GAS_SYNC;
            else if (ok && strcmp(v, "async") == 0) o->gas = GAS_ASYNC;
            else ok = false;
        } else if (strcmp(a, "--cost-model") == 0) {
            struct cpvm_cost_model m;
            ok = ok && cpvm_cost_model_from_name(v, &m);
            if (ok) o->cost_model = v;
        } else {
            fprintf(stderr, "cpvm-doom: unknown option '%s'\n", a);
            return 1;
        }
        if (!ok) {
            fprintf(stderr, "cpvm-doom: %s: missing or bad value%s%s%s\n", a, v ? " '" : "", v ? v : "", v ? "'" : "");
            return 1;
        }
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* The whole file, or NULL with a message. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cpvm-doom: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1u << 20;
            uint8_t *p = realloc(buf, cap);
            if (!p) break;
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    bool bad = ferror(f) || n == cap;
    fclose(f);
    if (bad) {
        fprintf(stderr, "cpvm-doom: %s: read failed\n", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static void print_error(const char *what, cpvm_status s, const struct cpvm_error *err)
{
    fprintf(stderr, "cpvm-doom: %s: %s", what, cpvm_status_message(s));
    if (err && err->detail[0]) fprintf(stderr, ": %s", err->detail);
    fputc('\n', stderr);
}

/* Calls the export at `pc` until it returns to the host, serving host calls. */
static bool call(struct doom_host *h, const char *name, uint32_t pc)
{
    cpvm_instance_prepare_call(h->inst, pc);
    for (;;) {
        struct cpvm_interrupt it;
        cpvm_status s = cpvm_instance_run(h->inst, &it);
        if (s != CPVM_OK) {
            print_error(name, s, NULL);
            return false;
        }
        switch (it.exit) {
        case CPVM_EXIT_HALT: return true;
        case CPVM_EXIT_ECALLI:
            if (host_call(h, it.hostcall)) continue;
            fprintf(stderr, "cpvm-doom: %s at pc %" PRIu32 ": %s\n", name, it.pc, h->error);
            return false;
        default:
            fprintf(stderr, "cpvm-doom: %s: the guest stopped with %s at pc %" PRIu32 "\n", name,
                    cpvm_exit_name(it.exit), it.pc);
            return false;
        }
    }
}

static void hex16(char out[17], uint64_t v)
{
    snprintf(out, 17, "%016" PRIx64, v);
}

static int run(const struct options *o, const cpvm_program *prog, struct doom_host *h)
{
    uint32_t pc_init, pc_tick;
    if (!cpvm_program_find_export(prog, "ext_initialize", &pc_init) ||
        !cpvm_program_find_export(prog, "ext_tick", &pc_tick)) {
        fprintf(stderr, "cpvm-doom: %s: exports ext_initialize and ext_tick are required\n", o->program);
        return 1;
    }
    if (!host_link(h, prog)) {
        fprintf(stderr, "cpvm-doom: %s: %s\n", o->program, h->error);
        return 1;
    }

    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.backend = o->backend;
    cfg.sandbox = o->sandbox;
    cfg.page_size = DOOM_PAGE_SIZE;
    cfg.gas_metering = o->gas != GAS_NONE;
    cfg.gas_async = o->gas == GAS_ASYNC;
    cpvm_cost_model_from_name(o->cost_model, &cfg.cost_model); /* checked by parse_options */

    struct cpvm_error err = {0};
    cpvm_module *mod = NULL;
    double t0 = now_ms();
    cpvm_status s = cpvm_module_new(prog, &cfg, &mod, &err);
    double module_ms = now_ms() - t0;
    if (s != CPVM_OK) {
        print_error(o->program, s, &err);
        return 1;
    }
    const char *why = NULL;
    if (cpvm_module_backend(mod, &why) != o->backend)
        fprintf(stderr, "cpvm-doom: note: the compiler is not available (%s); using the interpreter\n",
                why ? why : "unknown");

    int rc = 1;
    s = cpvm_instance_new(mod, &h->inst, &err);
    if (s != CPVM_OK) {
        print_error("instance", s, &err);
        goto out;
    }
    cpvm_instance_set_gas(h->inst, GAS_START);

    t0 = now_ms();
    if (!call(h, "ext_initialize", pc_init)) goto out;
    double init_ms = now_ms() - t0;
    host_flush(h);

    double tick_ms = 0;
    for (uint64_t t = 1; t <= o->ticks; t++) {
        t0 = now_ms();
        if (!call(h, "ext_tick", pc_tick)) goto out;
        tick_ms += now_ms() - t0;
        host_flush(h);
        if (o->hash_every && t % o->hash_every == 0) {
            char v[17], a[17];
            hex16(v, h->video_hash);
            hex16(a, h->audio_hash);
            printf("tick %" PRIu64 ": frames %" PRIu64 " video %s audio %s\n", t, h->frames, v, a);
            fflush(stdout);
        }
    }

    char v[17], a[17];
    hex16(v, h->video_hash);
    hex16(a, h->audio_hash);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "ticks", (double)o->ticks);
    cJSON_AddNumberToObject(j, "frames", (double)h->frames);
    cJSON_AddNumberToObject(j, "ms_per_tick", o->ticks ? tick_ms / (double)o->ticks : 0);
    cJSON_AddNumberToObject(j, "module_ms", module_ms);
    cJSON_AddNumberToObject(j, "init_ms", init_ms);
    cJSON_AddStringToObject(j, "video_hash", v);
    cJSON_AddStringToObject(j, "audio_hash", a);
    /* cJSON numbers are doubles: exact up to 2^53, far above any run's gas. */
    cJSON_AddNumberToObject(j, "gas_used", cfg.gas_metering ? (double)(GAS_START - cpvm_instance_gas(h->inst)) : 0);
    cJSON_AddStringToObject(j, "backend", cpvm_module_backend(mod, NULL) == CPVM_BACKEND_COMPILER ? "compiler" : "interpreter");
    cJSON_AddStringToObject(j, "sandbox", cpvm_module_sandbox(mod) == CPVM_SANDBOX_ZYGOTE ? "zygote" : "none");
    cJSON_AddStringToObject(j, "gas", o->gas == GAS_NONE ? "none" : o->gas == GAS_SYNC ? "sync" : "async");
    cJSON_AddStringToObject(j, "cost_model", o->cost_model);
    char *text = cJSON_PrintUnformatted(j);
    if (text) {
        printf("%s\n", text);
        rc = fflush(stdout) == 0 ? 0 : 1;
    }
    cJSON_free(text);
    cJSON_Delete(j);
out:
    cpvm_instance_free(h->inst);
    h->inst = NULL;
    cpvm_module_free(mod);
    return rc;
}

int main(int argc, char **argv)
{
    struct options o;
    int p = parse_options(argc, argv, &o);
    if (p) {
        usage(p == 2 ? stdout : stderr);
        return p == 2 ? 0 : 2;
    }

    size_t blob_len = 0, rom_len = 0;
    uint8_t *blob = read_file(o.program, &blob_len);
    uint8_t *rom = blob ? read_file(o.wad, &rom_len) : NULL;
    int rc = 1;
    if (!blob || !rom) goto out;
    if (rom_len > UINT32_MAX) {
        fprintf(stderr, "cpvm-doom: %s: a ROM over 4 GiB cannot be addressed by the guest\n", o.wad);
        goto out;
    }

    cpvm_program *prog = NULL;
    struct cpvm_error err = {0};
    cpvm_status s = cpvm_program_parse(blob, blob_len, CPVM_PARSE_BORROW, &prog, &err);
    if (s != CPVM_OK) {
        print_error(o.program, s, &err);
        goto out;
    }
    struct doom_host h = {.rom = rom, .rom_len = rom_len,
                          .video_hash = FNV_OFFSET_BASIS, .audio_hash = FNV_OFFSET_BASIS};
    rc = run(&o, prog, &h);
    host_free(&h);
    cpvm_program_free(prog);
out:
    free(rom);
    free(blob);
    return rc;
}
