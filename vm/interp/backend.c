/* The interpreter as a backend: its per-instance state is the lazily built op
 * stream, which depends on the module only, so a reset keeps it. */
#include <stdlib.h>

#include "../common/error.h"
#include "interp.h"

static cpvm_status prepare(struct cpvm_instance *in, struct cpvm_error *err)
{
    /* One slot per code offset plus the end: calloc leaves untouched pages unbacked. */
    in->block_of = calloc((size_t)in->mod->prog->code_len + 1, sizeof *in->block_of);
    if (!in->block_of) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
    return mem_init(in, err);
}

static cpvm_status reset(struct cpvm_instance *in)
{
    (void)in;
    return CPVM_OK;
}

static void release(struct cpvm_instance *in)
{
    mem_free(in);
    free(in->ops);
    free(in->block_of);
    free(in->jt_op);
}

const struct vm_backend interp_backend = {
    .name = "interpreter", .prepare = prepare, .run = interp_run, .reset = reset, .free = release};
