/* cpvm diff-external: runs generated programs (or JAM PVM v0.4 vectors) on cpvm
 * in-process and on an external PVM behind the protocol of
 * fuzz/external/PROTOCOL.md, and compares the full final state. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "diff_external.h"
#include "diff.h"
#include "findings.h"
#include "local.h"
#include "target.h"
#include "util.h"

static const char *const CMD = "diff-external";

#ifndef CPVM_SOURCE_DIR
#define CPVM_SOURCE_DIR "."
#endif

static void usage(FILE *out)
{
    fputs("usage: cpvm diff-external (--target cpvm|anan-as|typeberry | --target-cmd 'CMD ARGS')\n"
          "         [--seeds N | --time S] [--seed-start S] [--profile gp|polkavm] [--batch N]\n"
          "         [--max-gas N] [--deadline-ms N] [--findings FILE] [--out DIR] [--minimize]\n"
          "         [--vectors PATH...] [--verbose]\n"
          "  Runs generated programs on cpvm in-process and on the target, and compares\n"
          "  status, pc, gas, registers, exit argument and every writable page. Ends with\n"
          "  'N agreed, M diverged, K errors'; exits 0 only when there were no errors and\n"
          "  every divergence matches a finding in --findings (default\n"
          "  corpus/external/findings.json). --out DIR writes each new divergence as a\n"
          "  JAM PVM v0.4 vector (minimised with --minimize) and each error's generator\n"
          "  input. --vectors runs JAM PVM v0.4 vectors through the target (and cpvm's GP\n"
          "  profile) instead, printing 'N passed, M failed' per side.\n"
          "  Built-in targets: cpvm (`cpvm serve`), anan-as and typeberry (node adapters in\n"
          "  fuzz/external/adapters; CPVM_EXTERNAL_DIR overrides where they are).\n",
          out);
}

/* ---- options and targets ------------------------------------------------------ */

static char *target_command(const struct opts *o)
{
    char buf[4096];
    if (o->target_cmd) return strdup(o->target_cmd);
    const char *dir = getenv("CPVM_EXTERNAL_DIR");
    if (!dir) dir = CPVM_SOURCE_DIR "/fuzz/external";
    if (!strcmp(o->target, "cpvm")) {
        char self[2048];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) return NULL;
        self[n] = 0;
        snprintf(buf, sizeof buf, "'%s' serve", self);
    } else if (!strcmp(o->target, "anan-as") || !strcmp(o->target, "typeberry")) {
        snprintf(buf, sizeof buf, "exec node '%s/adapters/%s.mjs'", dir, o->target);
    } else {
        return NULL;
    }
    return strdup(buf);
}

/* ---- findings ------------------------------------------------------------------- */

/* ---- JAM PVM v0.4 vectors out ----------------------------------------------------------- */

static void put_bytes_json(FILE *f, const uint8_t *p, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++) fprintf(f, "%s%u", i ? "," : "", p[i]);
    fputc(']', f);
}

static void put_regs_json(FILE *f, const uint64_t *r)
{
    fputc('[', f);
    for (unsigned i = 0; i < XP_NREGS; i++) fprintf(f, "%s%" PRIu64, i ? "," : "", r[i]);
    fputc(']', f);
}

/* Non-zero runs of `page` (XP_PAGE bytes at `address`) as memory chunks. */
static void put_runs_json(FILE *f, uint32_t address, const uint8_t *page, uint32_t len, bool *first)
{
    for (uint32_t i = 0; i < len;) {
        if (!page[i]) {
            i++;
            continue;
        }
        uint32_t j = i;
        while (j < len && page[j]) j++;
        fprintf(f, "%s\n    {\"address\": %u, \"contents\": ", *first ? "" : ",", address + i);
        put_bytes_json(f, page + i, j - i);
        fputc('}', f);
        *first = false;
        i = j;
    }
}

static const char *v04_status(uint8_t s)
{
    return s == XP_OOG ? "out-of-gas" : s == XP_HOST ? "host" : xp_status_name(s);
}

/* Writes the case with `res` as the expected outcome (cpvm's GP profile). Status
 * host and out-of-gas are outside the v0.4 enum (PROTOCOL.md "Findings"). */
static bool write_vector(const char *path, const char *name, const struct xp_case *c, const struct xp_result *res)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "cpvm %s: %s: %s\n", CMD, path, strerror(errno));
        return false;
    }
    fprintf(f, "{\n  \"name\": \"%s\",\n  \"initial-regs\": ", name);
    put_regs_json(f, c->regs);
    fprintf(f, ",\n  \"initial-pc\": %u,\n  \"initial-page-map\": [", c->pc);
    for (uint32_t i = 0; i < c->npages; i++)
        fprintf(f, "%s\n    {\"address\": %u, \"length\": %u, \"is-writable\": %s}", i ? "," : "", c->pages[i].address,
                c->pages[i].length, c->pages[i].access == XP_WRITE ? "true" : "false");
    fputs("\n  ],\n  \"initial-memory\": [", f);
    bool first = true;
    for (uint32_t i = 0; i < c->npages; i++)
        if (c->pages[i].data_len) {
            fprintf(f, "%s\n    {\"address\": %u, \"contents\": ", first ? "" : ",", c->pages[i].address);
            put_bytes_json(f, c->pages[i].data, c->pages[i].data_len);
            fputc('}', f);
            first = false;
        }
    fputs("\n  ],", f);
    if (c->nreplies) { /* extension (PROTOCOL.md v2): registers each ecalli resumes with */
        fputs("\n  \"host-call-replies\": [", f);
        for (uint32_t k = 0; k < c->nreplies; k++) {
            fputs(k ? ", " : "", f);
            put_regs_json(f, c->replies[k]);
        }
        fputs("],", f);
    }
    fprintf(f, "\n  \"initial-gas\": %" PRId64 ",\n  \"program\": ", c->gas);
    put_bytes_json(f, c->program, c->program_len);
    fprintf(f, ",\n  \"expected-status\": \"%s\",\n  \"expected-regs\": ", v04_status(res->status));
    put_regs_json(f, res->regs);
    fprintf(f, ",\n  \"expected-pc\": %u,\n  \"expected-memory\": [", res->pc);
    /* Every mapped non-zero byte: read-only pages keep their data, writable ones are dumped. */
    first = true;
    for (uint32_t i = 0; i < c->npages; i++) {
        const struct xp_page *pg = &c->pages[i];
        if (pg->access == XP_READ && pg->data_len) put_runs_json(f, pg->address, pg->data, pg->data_len, &first);
        if (pg->access != XP_WRITE) continue;
        for (uint32_t d = 0; d < res->ndumps; d++)
            if (res->dumps[d].address >= pg->address && res->dumps[d].address - pg->address < pg->length)
                put_runs_json(f, res->dumps[d].address, res->dumps[d].data, XP_PAGE, &first);
    }
    fprintf(f, "\n  ],\n  \"expected-gas\": %" PRId64, res->gas);
    if (res->status == XP_PAGE_FAULT) fprintf(f, ",\n  \"expected-page-fault-address\": %u", res->exit_arg);
    fputs("\n}\n", f);
    bool ok = !ferror(f);
    if (fclose(f) != 0) ok = false;
    return ok;
}

static bool write_file(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* ---- one differential run ------------------------------------------------------------ */

/* Runs one input alone through both sides: 1 agreed, 0 diverged (sig filled), -1 error. */
static int run_one(struct diff *d, const uint8_t *in, size_t len, char *sig, size_t sigcap, char *detail, size_t detailcap,
                   struct xp_gen *keep)
{
    struct xp_gen x;
    char err[256];
    if (!xp_gen_case(in, len, d->o->semantics, d->o->max_gas, &x, err, sizeof err)) {
        snprintf(detail, detailcap, "%s", err);
        return -1;
    }
    xp_buf_reset(&d->t.out);
    xp_encode_batch(&d->t.out, XP_RUN, 1);
    xp_encode_case(&d->t.out, &x.c);
    int rc;
    const struct xp_case *one = &x.c;
    if (!xp_target_run(&d->t, &one, 1, d->tres)) {
        snprintf(detail, detailcap, "%.200s", d->t.err);
        rc = -1;
    } else if (!xp_local_run(&x.c, d->lres, d->mem, err, sizeof err)) {
        snprintf(detail, detailcap, "cpvm: %.200s", err);
        rc = -1;
    } else {
        rc = xp_compare(&x.c, x.code, x.code_len, d->lres, d->tres, sig, sigcap, detail, detailcap) ? 1 : 0;
    }
    if (keep && rc == 0)
        *keep = x;
    else
        xp_gen_free(&x);
    return rc;
}

/* Deletes chunks of the generator input while the divergence keeps its signature. */
static size_t minimize(struct diff *d, uint8_t *in, size_t len, const char *sig)
{
    uint8_t *tmp = malloc(len ? len : 1);
    if (!tmp) return len;
    unsigned tries = 0;
    for (size_t chunk = len / 2; chunk >= 1 && tries < 400; chunk /= 2) {
        for (size_t at = 0; at + chunk <= len && tries < 400;) {
            memcpy(tmp, in, at);
            memcpy(tmp + at, in + at + chunk, len - at - chunk);
            char s2[160], det[256];
            tries++;
            if (run_one(d, tmp, len - chunk, s2, sizeof s2, det, sizeof det, NULL) == 0 && !strcmp(s2, sig)) {
                len -= chunk;
                memcpy(in, tmp, len);
            } else {
                at += chunk;
            }
        }
        if (chunk == 1) break;
    }
    free(tmp);
    return len;
}

static bool seen_new(struct diff *d, const char *sig)
{
    for (size_t i = 0; i < d->nnew; i++)
        if (!strcmp(d->new_sigs[i], sig)) return true;
    char **v = realloc(d->new_sigs, (d->nnew + 1) * sizeof *v);
    if (!v) return true;
    d->new_sigs = v;
    d->new_sigs[d->nnew++] = strdup(sig);
    return false;
}

static void record_divergence(struct diff *d, uint64_t seed, const uint8_t *in, size_t len, const char *sig, const char *detail)
{
    d->diverged++;
    struct xp_finding *f = xp_findings_match(&d->known, d->t.hello.name, d->profile, sig);
    if (f) {
        f->hits++;
        if (d->o->verbose) printf("seed %" PRIu64 ": known %s (%s): %s\n", seed, f->id, sig, detail);
        return;
    }
    d->unknown++;
    if (seen_new(d, sig)) return;
    printf("seed %" PRIu64 ": NEW divergence %s: %s\n", seed, sig, detail);
    if (!d->o->out_dir) return;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) return;
    memcpy(buf, in, len);
    size_t n = d->o->minimize ? minimize(d, buf, len, sig) : len;
    char sig2[160], det[256], path[4096], name[200];
    struct xp_gen x;
    memset(&x, 0, sizeof x);
    if (run_one(d, buf, n, sig2, sizeof sig2, det, sizeof det, &x) == 0) {
        snprintf(name, sizeof name, "%s-%s-%" PRIu64, d->profile, sig, seed);
        for (char *p = name; *p; p++)
            if (*p == ':' || *p == '/') *p = '_';
        snprintf(path, sizeof path, "%s/%s.input", d->o->out_dir, name);
        write_file(path, buf, n);
        snprintf(path, sizeof path, "%s/%s.json", d->o->out_dir, name);
        char err[256];
        if (xp_local_run(&x.c, d->lres, d->mem, err, sizeof err) && write_vector(path, name, &x.c, d->lres))
            printf("  written %s (%zu input bytes; %s)\n", path, n, det);
        xp_gen_free(&x);
    }
    free(buf);
}

static void record_error(struct diff *d, uint64_t seed, const uint8_t *in, size_t len, const char *msg)
{
    d->errors++;
    printf("seed %" PRIu64 ": ERROR %s\n", seed, msg);
    if (d->o->out_dir) {
        char path[4096];
        snprintf(path, sizeof path, "%s/error-%s-%" PRIu64 ".input", d->o->out_dir, d->profile, seed);
        if (write_file(path, in, len)) printf("  input written to %s\n", path);
    }
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define GEN_INPUT_MAX 4096

/* Room for a case's page dumps (at least one byte). */
static size_t writable_bytes(const struct xp_case *c)
{
    size_t n = 1;
    for (uint32_t i = 0; i < c->npages; i++)
        if (c->pages[i].access == XP_WRITE) n += c->pages[i].length;
    return n;
}

static int diff_seeds(struct diff *d)
{
    struct opts *o = d->o;
    uint32_t nb = o->batch;
    struct xp_gen *xs = calloc(nb, sizeof *xs);
    uint8_t(*inputs)[GEN_INPUT_MAX] = malloc((size_t)nb * GEN_INPUT_MAX);
    size_t *lens = calloc(nb, sizeof *lens);
    const struct xp_case **ptrs = calloc(nb, sizeof *ptrs);
    /* cpvm's results for the batch in flight, and their page dumps */
    struct xp_result *lres = calloc(nb, sizeof *lres);
    uint8_t **lmem = calloc(nb, sizeof *lmem);
    bool *local_ok = calloc(nb, sizeof *local_ok);
    char(*lerr)[256] = calloc(nb, sizeof *lerr);
    if (!xs || !inputs || !lens || !ptrs || !lres || !lmem || !local_ok || !lerr) {
        free(xs), free(inputs), free(lens), free(ptrs), free(lres), free(lmem), free(local_ok), free(lerr);
        fprintf(stderr, "cpvm %s: out of memory\n", CMD);
        return 2;
    }
    double t0 = now_s();
    uint64_t seed = o->seed_start, done = 0;
    for (;;) {
        if (o->time_s > 0 ? now_s() - t0 >= o->time_s : done >= o->seeds) break;
        uint32_t n = 0;
        xp_buf_reset(&d->t.out);
        xp_encode_batch(&d->t.out, XP_RUN, 0); /* count patched below */
        while (n < nb && (o->time_s > 0 || done + n < o->seeds)) {
            char err[256];
            lens[n] = gen_seed_bytes(seed + n, inputs[n], GEN_INPUT_MAX);
            if (!xp_gen_case(inputs[n], lens[n], o->semantics, o->max_gas, &xs[n], err, sizeof err)) {
                fprintf(stderr, "cpvm %s: seed %" PRIu64 ": %s\n", CMD, seed + n, err);
                free(xs), free(inputs), free(lens), free(ptrs), free(lres), free(lmem), free(local_ok), free(lerr);
                return 2;
            }
            xp_encode_case(&d->t.out, &xs[n].c);
            n++;
        }
        for (int i = 0; i < 4; i++) d->t.out.p[1 + i] = (uint8_t)(n >> (8 * i));
        for (uint32_t i = 0; i < n; i++) ptrs[i] = &xs[i].c;
        /* cpvm runs the batch while the target does (the two overlap on two cores). */
        bool batch_ok = xp_target_send(&d->t);
        for (uint32_t i = 0; batch_ok && i < n; i++) {
            lmem[i] = malloc(writable_bytes(&xs[i].c));
            local_ok[i] = lmem[i] && xp_local_run(&xs[i].c, &lres[i], lmem[i], lerr[i], sizeof lerr[i]);
            if (!lmem[i]) snprintf(lerr[i], sizeof lerr[i], "out of memory");
        }
        batch_ok = batch_ok && xp_target_recv(&d->t, ptrs, n, d->tres);
        if (!batch_ok) printf("batch at seed %" PRIu64 " failed (%s); rerunning its cases one by one\n", seed, d->t.err);
        for (uint32_t i = 0; i < n; i++) {
            char sig[160], detail[512];
            if (batch_ok) {
                if (!local_ok[i]) {
                    snprintf(detail, sizeof detail, "cpvm: %.200s", lerr[i]);
                    record_error(d, seed + i, inputs[i], lens[i], detail);
                } else if (xp_compare(&xs[i].c, xs[i].code, xs[i].code_len, &lres[i], &d->tres[i], sig, sizeof sig, detail,
                                      sizeof detail)) {
                    d->agreed++;
                } else {
                    record_divergence(d, seed + i, inputs[i], lens[i], sig, detail);
                }
            } else {
                int rc = run_one(d, inputs[i], lens[i], sig, sizeof sig, detail, sizeof detail, NULL);
                if (rc == 1) d->agreed++;
                else if (rc == 0) record_divergence(d, seed + i, inputs[i], lens[i], sig, detail);
                else record_error(d, seed + i, inputs[i], lens[i], detail);
            }
            xp_gen_free(&xs[i]);
            free(lmem[i]);
            lmem[i] = NULL;
        }
        seed += n;
        done += n;
    }
    double dt = now_s() - t0;
    printf("%" PRIu64 " programs in %.1f s (%.0f programs/s), seeds %" PRIu64 "..%" PRIu64 ", target restarts %u\n", done,
           dt, dt > 0 ? (double)done / dt : 0.0, o->seed_start, seed ? seed - 1 : 0, d->t.restarts);
    for (size_t i = 0; i < d->known.n; i++)
        if (d->known.v[i].hits) printf("  known %s (%s): %" PRIu64 "\n", d->known.v[i].id, d->known.v[i].signature, d->known.v[i].hits);
    if (d->unknown) printf("%" PRIu64 " divergences match no recorded finding\n", d->unknown);
    printf("%" PRIu64 " agreed, %" PRIu64 " diverged, %" PRIu64 " errors\n", d->agreed, d->diverged, d->errors);
    free(xs), free(inputs), free(lens), free(ptrs), free(lres), free(lmem), free(local_ok), free(lerr);
    return d->errors || d->unknown ? 1 : 0;
}

int cmd_diff_external(int argc, char **argv)
{
    struct opts o = {.seeds = 1000, .semantics = XP_SEM_GP, .batch = 64, .max_gas = 100000, .deadline_ms = 20000};
    const char *profile = "gp";
    o.vectors = calloc((size_t)argc, sizeof *o.vectors);
    if (!o.vectors) return 2;
    for (int i = 1; i < argc; i++) {
        const char *v;
        bool missing = false;
        uint64_t u;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(o.vectors);
            return 0;
        } else if (cli_option(argc, argv, &i, "--target", &v, &missing, CMD)) {
            o.target = v;
        } else if (cli_option(argc, argv, &i, "--target-cmd", &v, &missing, CMD)) {
            o.target_cmd = v;
        } else if (cli_option(argc, argv, &i, "--findings", &v, &missing, CMD)) {
            o.findings = v;
        } else if (cli_option(argc, argv, &i, "--out", &v, &missing, CMD)) {
            o.out_dir = v;
        } else if (cli_option(argc, argv, &i, "--profile", &v, &missing, CMD)) {
            profile = v;
        } else if (cli_option(argc, argv, &i, "--seeds", &v, &missing, CMD) ||
                   cli_option(argc, argv, &i, "--seed-start", &v, &missing, CMD) ||
                   cli_option(argc, argv, &i, "--time", &v, &missing, CMD) ||
                   cli_option(argc, argv, &i, "--batch", &v, &missing, CMD) ||
                   cli_option(argc, argv, &i, "--max-gas", &v, &missing, CMD) ||
                   cli_option(argc, argv, &i, "--deadline-ms", &v, &missing, CMD)) {
            const char *name = argv[i - 1];
            if (!cli_parse_u64(v, &u)) {
                fprintf(stderr, "cpvm %s: %s: bad number '%s'\n", CMD, name, v);
                free(o.vectors);
                return 2;
            }
            if (!strcmp(name, "--seeds")) o.seeds = u;
            else if (!strcmp(name, "--seed-start")) o.seed_start = u;
            else if (!strcmp(name, "--time")) o.time_s = (double)u;
            else if (!strcmp(name, "--batch")) o.batch = u && u <= XP_MAX_BATCH ? (uint32_t)u : 0;
            else if (!strcmp(name, "--max-gas")) o.max_gas = u <= XP_LOCAL_MAX_GP_GAS ? (int64_t)u : -1;
            else o.deadline_ms = u && u <= 3600000 ? (int)u : 0;
            if (!o.batch || o.max_gas < 0 || !o.deadline_ms) {
                fprintf(stderr, "cpvm %s: %s %s out of range\n", CMD, name, v);
                free(o.vectors);
                return 2;
            }
        } else if (!strcmp(argv[i], "--minimize")) {
            o.minimize = true;
        } else if (!strcmp(argv[i], "--verbose")) {
            o.verbose = true;
        } else if (!strcmp(argv[i], "--vectors")) {
            while (i + 1 < argc && argv[i + 1][0] != '-') o.vectors[o.nvectors++] = argv[++i];
        } else if (missing) {
            free(o.vectors);
            return 2;
        } else {
            fprintf(stderr, "cpvm %s: unknown argument '%s'\n", CMD, argv[i]);
            usage(stderr);
            free(o.vectors);
            return 2;
        }
    }
    if (!strcmp(profile, "gp")) o.semantics = XP_SEM_GP;
    else if (!strcmp(profile, "polkavm")) o.semantics = XP_SEM_POLKAVM;
    else {
        fprintf(stderr, "cpvm %s: --profile: gp or polkavm, not '%s'\n", CMD, profile);
        free(o.vectors);
        return 2;
    }
    if (!!o.target == !!o.target_cmd) {
        fprintf(stderr, "cpvm %s: give exactly one of --target and --target-cmd\n", CMD);
        usage(stderr);
        free(o.vectors);
        return 2;
    }
    char *cmd = target_command(&o);
    if (!cmd) {
        fprintf(stderr, "cpvm %s: unknown target '%s' (cpvm, anan-as, typeberry)\n", CMD, o.target);
        free(o.vectors);
        return 2;
    }
    struct diff d = {.o = &o, .profile = profile};
    char fpath[4096];
    snprintf(fpath, sizeof fpath, "%s", o.findings ? o.findings : CPVM_SOURCE_DIR "/corpus/external/findings.json");
    d.tres = calloc(o.batch, sizeof *d.tres);
    d.lres = calloc(1, sizeof *d.lres);
    d.mem = malloc(XP_MAX_MAPPED);
    int rc = 2;
    if (!d.tres || !d.lres || !d.mem) {
        fprintf(stderr, "cpvm %s: out of memory\n", CMD);
    } else if (!xp_findings_load(fpath, &d.known)) {
        /* message printed */
    } else if (o.out_dir && mkdir(o.out_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cpvm %s: %s: %s\n", CMD, o.out_dir, strerror(errno));
    } else if (!xp_target_start(&d.t, cmd, o.deadline_ms)) {
        fprintf(stderr, "cpvm %s: target '%s': %s\n", CMD, cmd, d.t.err);
        rc = 1;
    } else {
        printf("target %s %s (features 0x%x), profile %s\n", d.t.hello.name, d.t.hello.impl_version, d.t.hello.features,
               profile);
        uint32_t need = o.semantics == XP_SEM_GP ? XP_F_SEM_GP : XP_F_SEM_POLKAVM;
        if (!(d.t.hello.features & need)) {
            fprintf(stderr, "cpvm %s: the target does not implement the %s profile\n", CMD, profile);
            rc = 2;
        } else {
            fflush(stdout);
            rc = o.nvectors ? diff_external_vectors(&d) : diff_seeds(&d);
        }
        xp_target_stop(&d.t);
    }
    xp_findings_free(&d.known);
    for (size_t i = 0; i < d.nnew; i++) free(d.new_sigs[i]);
    free(d.new_sigs);
    free(d.tres);
    free(d.lres);
    free(d.mem);
    free(cmd);
    free(o.vectors);
    return rc;
}
