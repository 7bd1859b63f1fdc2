/* The recorded findings of external differential fuzzing
 * (corpus/external/findings.json, FINDINGS.md): which divergence signatures
 * are known, per target and profile. */
#ifndef CPVM_FUZZ_EXTERNAL_FINDINGS_H
#define CPVM_FUZZ_EXTERNAL_FINDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xp_finding {
    char *id, *target, *profile, *signature;
    uint64_t hits;
};

struct xp_findings {
    struct xp_finding *v;
    size_t n;
};

/* {"findings": [{"id", "target", "profile", "signature", ...}]}; a missing
 * file is an empty list. False (message on stderr) when malformed. */
bool xp_findings_load(const char *path, struct xp_findings *f);
void xp_findings_free(struct xp_findings *f);
/* The first finding whose target ("*" = any) and profile match and whose
 * signature, a shell glob (fnmatch), matches `sig`; NULL when none. */
struct xp_finding *xp_findings_match(struct xp_findings *f, const char *target, const char *profile, const char *sig);

#endif
