/* cpvm diff-external --vectors: JAM PVM v0.4 vectors (execution.md §9.2) run
 * through the protocol on the target, and on cpvm's GP profile in-process;
 * each side is checked against the vector's expectations. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "diff_external.h"
#include "local.h"
#include "util.h"

static const char *const CMD = "diff-external";

/* A parsed vector: the case plus its expectations, bytes owned here. */
struct vec {
    struct xp_case c;
    uint8_t *program, *data[XP_MAX_PAGES];
    uint8_t status;
    uint32_t pc, fault;
    bool has_fault;
    int64_t gas;
    uint64_t regs[XP_NREGS];
    uint8_t *want;               /* expected bytes of every writable page, in page order */
    size_t want_len;
};

static void vec_free(struct vec *v)
{
    free(v->program);
    for (unsigned i = 0; i < XP_MAX_PAGES; i++) free(v->data[i]);
    free(v->want);
    memset(v, 0, sizeof *v);
}

static bool bytes_of(const cJSON *a, uint8_t **out, size_t *len)
{
    if (!cJSON_IsArray(a)) return false;
    size_t n = (size_t)cJSON_GetArraySize(a);
    uint8_t *b = malloc(n ? n : 1);
    if (!b) return false;
    size_t i = 0;
    for (const cJSON *e = a->child; e; e = e->next) {
        uint32_t x;
        if (!cli_json_u32(e, &x) || x > 255) {
            free(b);
            return false;
        }
        b[i++] = (uint8_t)x;
    }
    *out = b;
    *len = n;
    return true;
}

static bool regs_of(const cJSON *a, uint64_t *r)
{
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != XP_NREGS) return false;
    unsigned i = 0;
    for (const cJSON *e = a->child; e; e = e->next) if (!cli_json_u64(e, &r[i++])) return false;
    return true;
}

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* Places `bytes` at `address` in the page ranges of the case: into a page's
 * data (initial) or into the expected image of writable pages. */
static bool place(struct vec *v, uint32_t address, const uint8_t *bytes, size_t n, bool initial)
{
    size_t base = 0;
    for (uint32_t i = 0; i < v->c.npages; i++) {
        struct xp_page *pg = &v->c.pages[i];
        for (size_t k = 0; k < n; k++) {
            uint64_t a = (uint64_t)address + k;
            if (a < pg->address || a - pg->address >= pg->length) continue;
            size_t off = (size_t)(a - pg->address);
            if (initial) v->data[i][off] = bytes[k];
            else if (pg->access == XP_WRITE) v->want[base + off] = bytes[k];
        }
        if (pg->access == XP_WRITE) base += pg->length;
    }
    return true;
}

static bool vec_load(const char *path, struct vec *v, char *err, size_t errcap)
{
    memset(v, 0, sizeof *v);
    size_t len;
    uint8_t *text = cli_read_file(CMD, path, &len);
    if (!text) return snprintf(err, errcap, "unreadable"), false;
    cJSON *root = cli_json_parse_exact((const char *)text, len, err, errcap);
    free(text);
    if (!root) return false;
    bool ok = false;
    size_t plen;
    uint32_t pc;
    const cJSON *st = get(root, "expected-status"), *pages = get(root, "initial-page-map");
    if (!bytes_of(get(root, "program"), &v->program, &plen) || !regs_of(get(root, "initial-regs"), v->c.regs) ||
        !cli_json_u32(get(root, "initial-pc"), &pc) || !cli_json_i64(get(root, "initial-gas"), &v->c.gas) ||
        !regs_of(get(root, "expected-regs"), v->regs) || !cli_json_u32(get(root, "expected-pc"), &v->pc) ||
        !cli_json_i64(get(root, "expected-gas"), &v->gas) || !cJSON_IsString(st) || !cJSON_IsArray(pages) ||
        cJSON_GetArraySize(pages) > (int)XP_MAX_PAGES) {
        snprintf(err, errcap, "not a JAM PVM v0.4 vector");
        goto out;
    }
    /* extension (PROTOCOL.md v2): the registers each ecalli resumes with */
    const cJSON *replies = get(root, "host-call-replies");
    if (replies) {
        if (!cJSON_IsArray(replies) || cJSON_GetArraySize(replies) > (int)XP_MAX_REPLIES) {
            snprintf(err, errcap, "host-call-replies: at most %u register sets", XP_MAX_REPLIES);
            goto out;
        }
        for (const cJSON *e = replies->child; e; e = e->next)
            if (!regs_of(e, v->c.replies[v->c.nreplies++])) {
                snprintf(err, errcap, "host-call-replies: 13 registers each");
                goto out;
            }
    }
    v->c.semantics = XP_SEM_GP;
    v->c.format = XP_FMT_GP_RAW;
    v->c.pc = pc;
    v->c.program = v->program;
    v->c.program_len = (uint32_t)plen;
    const char *s = st->valuestring;
    /* "host" and "out-of-gas": the findings' extension of the v0.4 status enum. */
    v->status = !strcmp(s, "halt")         ? XP_HALT
                : !strcmp(s, "panic")      ? XP_PANIC
                : !strcmp(s, "page-fault") ? XP_PAGE_FAULT
                : !strcmp(s, "host")       ? XP_HOST
                : !strcmp(s, "out-of-gas") ? XP_OOG
                                           : 255;
    if (v->status == 255) {
        snprintf(err, errcap, "expected-status '%.32s' unknown", s);
        goto out;
    }
    v->has_fault = get(root, "expected-page-fault-address") != NULL;
    if (v->has_fault && !cli_json_u32(get(root, "expected-page-fault-address"), &v->fault)) goto out;
    for (const cJSON *p = pages->child; p; p = p->next) {
        struct xp_page *pg = &v->c.pages[v->c.npages];
        uint32_t a, l;
        const cJSON *w = get(p, "is-writable");
        if (!cli_json_u32(get(p, "address"), &a) || !cli_json_u32(get(p, "length"), &l) || !cJSON_IsBool(w) || a % XP_PAGE ||
            l % XP_PAGE || !l || l > XP_MAX_MAPPED) {
            snprintf(err, errcap, "bad initial-page-map entry");
            goto out;
        }
        v->data[v->c.npages] = calloc(l, 1);
        if (!v->data[v->c.npages]) goto out;
        *pg = (struct xp_page){a, l, cJSON_IsTrue(w) ? XP_WRITE : XP_READ, v->data[v->c.npages], l};
        if (pg->access == XP_WRITE) v->want_len += l;
        v->c.npages++;
    }
    v->want = calloc(v->want_len ? v->want_len : 1, 1);
    if (!v->want) goto out;
    const char *keys[2] = {"initial-memory", "expected-memory"};
    for (int k = 0; k < 2; k++) {
        const cJSON *chunks = get(root, keys[k]);
        if (!cJSON_IsArray(chunks)) goto out;
        for (const cJSON *ch = chunks->child; ch; ch = ch->next) {
            uint32_t a;
            uint8_t *b;
            size_t n;
            if (!cli_json_u32(get(ch, "address"), &a) || !bytes_of(get(ch, "contents"), &b, &n)) {
                snprintf(err, errcap, "bad %s chunk", keys[k]);
                goto out;
            }
            place(v, a, b, n, k == 0);
            free(b);
        }
    }
    ok = true;
out:
    cJSON_Delete(root);
    if (!ok && !err[0]) snprintf(err, errcap, "malformed vector");
    return ok;
}

/* Checks one side's result against the vector; NULL when it passes. */
static const char *check(const struct vec *v, const struct xp_result *r, char *buf, size_t cap)
{
    if (r->status != v->status)
        return snprintf(buf, cap, "status %s (expected %s)", xp_status_name(r->status), xp_status_name(v->status)), buf;
    if (r->pc != v->pc) return snprintf(buf, cap, "pc %u (expected %u)", r->pc, v->pc), buf;
    if (r->gas != v->gas) return snprintf(buf, cap, "gas %" PRId64 " (expected %" PRId64 ")", r->gas, v->gas), buf;
    for (unsigned i = 0; i < XP_NREGS; i++)
        if (r->regs[i] != v->regs[i])
            return snprintf(buf, cap, "r%u 0x%" PRIx64 " (expected 0x%" PRIx64 ")", i, r->regs[i], v->regs[i]), buf;
    if (v->has_fault && r->exit_arg != v->fault)
        return snprintf(buf, cap, "page-fault address 0x%x (expected 0x%x)", r->exit_arg, v->fault), buf;
    size_t base = 0;
    static const uint8_t zero[XP_PAGE];
    for (uint32_t i = 0; i < v->c.npages; i++) {
        const struct xp_page *pg = &v->c.pages[i];
        if (pg->access != XP_WRITE) continue;
        for (uint32_t off = 0; off < pg->length; off += XP_PAGE) {
            const uint8_t *got = zero;
            for (uint32_t d = 0; d < r->ndumps; d++)
                if (r->dumps[d].address == pg->address + off) got = r->dumps[d].data;
            for (uint32_t k = 0; k < XP_PAGE; k++)
                if (got[k] != v->want[base + off + k])
                    return snprintf(buf, cap, "memory 0x%x = 0x%02x (expected 0x%02x)", pg->address + off + k, got[k],
                                    v->want[base + off + k]),
                           buf;
        }
        base += pg->length;
    }
    return NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every *.json under `path` (a file or a directory), sorted. */
static size_t list_vectors(const char *path, char ***out)
{
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) != 0) return 0;
    if (!S_ISDIR(sb.st_mode)) {
        *out = malloc(sizeof **out);
        if (!*out) return 0;
        (*out)[0] = strdup(path);
        return 1;
    }
    DIR *dir = opendir(path);
    if (!dir) return 0;
    size_t n = 0, cap = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json")) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(*out, cap * sizeof *nv);
            if (!nv) break;
            *out = nv;
        }
        size_t pl = strlen(path) + l + 2;
        (*out)[n] = malloc(pl);
        if (!(*out)[n]) break;
        snprintf((*out)[n++], pl, "%s/%s", path, e->d_name);
    }
    closedir(dir);
    if (n) qsort(*out, n, sizeof **out, cmp_str);
    return n;
}

int diff_external_vectors(struct diff *d)
{
    unsigned tpass = 0, tfail = 0, lpass = 0, lfail = 0, bad = 0;
    for (int p = 0; p < d->o->nvectors; p++) {
        char **files;
        size_t n = list_vectors(d->o->vectors[p], &files);
        if (!n) {
            fprintf(stderr, "cpvm %s: %s: no vectors\n", CMD, d->o->vectors[p]);
            bad++;
        }
        for (size_t i = 0; i < n; i++) {
            struct vec v;
            char err[256] = "", why[256], why2[256];
            const char *name = strrchr(files[i], '/') ? strrchr(files[i], '/') + 1 : files[i];
            if (!vec_load(files[i], &v, err, sizeof err)) {
                printf("BAD  %s: %s\n", name, err);
                bad++;
                vec_free(&v);
                free(files[i]);
                continue;
            }
            xp_buf_reset(&d->t.out);
            xp_encode_batch(&d->t.out, XP_RUN, 1);
            xp_encode_case(&d->t.out, &v.c);
            const struct xp_case *one = &v.c;
            const char *tw = xp_target_run(&d->t, &one, 1, d->tres) ? check(&v, d->tres, why, sizeof why) : d->t.err;
            const char *lw = xp_local_run(&v.c, d->lres, d->mem, err, sizeof err) ? check(&v, d->lres, why2, sizeof why2) : err;
            tw ? tfail++ : tpass++;
            lw ? lfail++ : lpass++;
            if (tw) printf("FAIL %s: %s: %s\n", d->t.hello.name, name, tw);
            if (lw) printf("FAIL cpvm-gp: %s: %s\n", name, lw);
            vec_free(&v);
            free(files[i]);
        }
        free(files);
    }
    printf("%s: %u passed, %u failed\n", d->t.hello.name, tpass, tfail);
    printf("cpvm gp profile: %u passed, %u failed\n", lpass, lfail);
    return tfail || lfail || bad ? 1 : 0;
}
