/* Loading and matching recorded findings. */
#include "findings.h"

#include <cjson/cJSON.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FINDINGS_MAX_BYTES (4u << 20)

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "findings: %s: cannot open\n", path);
        return NULL;
    }
    uint8_t *buf = malloc(FINDINGS_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, FINDINGS_MAX_BYTES + 1, fp) : 0;
    fclose(fp);
    if (!buf || n > FINDINGS_MAX_BYTES) {
        fprintf(stderr, "findings: %s: unreadable or larger than %u bytes\n", path, FINDINGS_MAX_BYTES);
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

static cJSON *parse(const uint8_t *text, size_t len, char *err, size_t cap)
{
    if (memchr(text, 0, len)) {
        snprintf(err, cap, "NUL byte in the text");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)text, len);
    if (!root) snprintf(err, cap, "invalid JSON");
    return root;
}

void xp_findings_free(struct xp_findings *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->v[i].id);
        free(f->v[i].target);
        free(f->v[i].profile);
        free(f->v[i].signature);
    }
    free(f->v);
    f->v = NULL;
    f->n = 0;
}

static char *json_str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) && v->valuestring ? strdup(v->valuestring) : NULL;
}

bool xp_findings_load(const char *path, struct xp_findings *f)
{
    memset(f, 0, sizeof *f);
    if (access(path, F_OK) != 0) return true;
    size_t len;
    uint8_t *text = read_all(path, &len);
    if (!text) return false;
    char err[128];
    cJSON *root = parse(text, len, err, sizeof err);
    free(text);
    if (!root) {
        fprintf(stderr, "findings: %s: %s\n", path, err);
        return false;
    }
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "findings");
    bool ok = cJSON_IsArray(list);
    size_t n = ok ? (size_t)cJSON_GetArraySize(list) : 0;
    f->v = calloc(n ? n : 1, sizeof *f->v);
    ok = ok && f->v;
    for (const cJSON *e = ok ? list->child : NULL; e; e = e->next) {
        struct xp_finding *x = &f->v[f->n++];
        x->id = json_str(e, "id");
        x->target = json_str(e, "target");
        x->profile = json_str(e, "profile");
        x->signature = json_str(e, "signature");
        if (!x->id || !x->target || !x->profile || !x->signature) {
            fprintf(stderr, "findings: %s: finding %zu lacks id/target/profile/signature\n", path, f->n - 1);
            ok = false;
            break;
        }
    }
    bool no_list = !cJSON_IsArray(list);
    cJSON_Delete(root);
    if (!ok) {
        if (no_list) fprintf(stderr, "findings: %s: no \"findings\" array\n", path);
        xp_findings_free(f);
    }
    return ok;
}

struct xp_finding *xp_findings_match(struct xp_findings *f, const char *target, const char *profile, const char *sig)
{
    for (size_t i = 0; i < f->n; i++) {
        struct xp_finding *x = &f->v[i];
        if (strcmp(x->target, "*") && strcmp(x->target, target)) continue;
        if (strcmp(x->profile, profile)) continue;
        if (fnmatch(x->signature, sig, 0) == 0) return x;
    }
    return NULL;
}
