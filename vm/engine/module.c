/* Modules: checking the configuration, compiling, and choosing the backend
 * that runs the module's instances (never a silent downgrade to unsandboxed
 * native code). */
#include <stdlib.h>
#include <string.h>

#include "../common/bits.h"
#include "../common/limits.h"
#include "../interp/interp.h"
#include "../jit/jit.h"
#include "../sandbox/sandbox.h"

void cpvm_module_config_default(struct cpvm_module_config *c)
{
    memset(c, 0, sizeof *c);
    c->page_size = VM_PAGE_MIN;
}

cpvm_status cpvm_module_new(const cpvm_program *p, const struct cpvm_module_config *cfg, cpvm_module **out,
                            struct cpvm_error *err)
{
    *out = NULL;
    struct cpvm_module_config def;
    if (!cfg) {
        cpvm_module_config_default(&def);
        cfg = &def;
    }
    if (cfg->backend != CPVM_BACKEND_INTERPRETER && cfg->backend != CPVM_BACKEND_COMPILER)
        return cpvm_fail(err, CPVM_E_UNSUPPORTED, 0, "unknown backend %d", (int)cfg->backend);
    if (cfg->memory_model != CPVM_MEMORY_STANDARD && cfg->memory_model != CPVM_MEMORY_DYNAMIC)
        return cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "unknown memory model %d", (int)cfg->memory_model);
    uint32_t page = cfg->page_size ? cfg->page_size : VM_PAGE_MIN;
    struct cpvm_module *m = calloc(1, sizeof *m);
    if (!m) return cpvm_fail(err, CPVM_E_NO_MEMORY, 0, "out of memory");
    m->prog = p;
    m->cfg = *cfg;
    m->cfg.cost_model.blocks = NULL; /* the copies live in m->gas */
    m->cfg.cost_model.table = NULL;
    m->page_size = page;
    m->is64 = cpvm_program_is_64_bit(p);
    cpvm_status s = cpvm_memory_map_build(page, p->ro_data_size, p->rw_data_size, p->stack_size,
                                          cfg->aux_data_size, &m->map, err);
    if (!s) s = gas_model_init(&m->gas, p, &cfg->cost_model, err);
    /* blob-format.md §5: the reference validates JamV1 code at load time. */
    if (!s && p->isa == CPVM_ISA_JAM_V1) s = dec_validate_jam(p, err);
    const char *missing;
    if (!s && (unsigned)cfg->sandbox > CPVM_SANDBOX_NONE)
        s = cpvm_fail(err, CPVM_E_INVALID_ARGUMENT, 0, "unknown sandbox %d", (int)cfg->sandbox);
    if (!s && cfg->backend == CPVM_BACKEND_COMPILER) {
        /* SECURITY: never a silent downgrade to unsandboxed native code: without
         * a sandbox the interpreter runs it, and cpvm_module_backend says why. */
        m->sandboxed = cfg->sandbox != CPVM_SANDBOX_NONE;
        if (cfg->compat == CPVM_COMPAT_GP) m->backend_note = "the Graypaper control flow (CPVM_COMPAT_GP) is interpreted";
        else if (!jit_cpu_supported(&missing)) m->backend_note = missing;
        else if (m->sandboxed && !sbx_available(&missing)) m->backend_note = missing;
        else s = jit_compile(m, &m->jit, err);
        if (!m->jit) m->sandboxed = false;
        m->owner_id = sbx_new_owner_id();
    }
    m->backend = !m->jit ? &interp_backend : m->sandboxed ? &sbx_backend : &jit_backend;
    if (s) {
        cpvm_module_free(m);
        return s;
    }
    *out = m;
    return CPVM_OK;
}

void cpvm_module_free(cpvm_module *m)
{
    if (!m) return;
    jit_code_free(m->jit);
    gas_model_free(&m->gas);
    free(m);
}

const cpvm_program *cpvm_module_program(const cpvm_module *m) { return m->prog; }
const struct cpvm_memory_map *cpvm_module_memory_map(const cpvm_module *m) { return &m->map; }

cpvm_backend cpvm_module_backend(const cpvm_module *m, const char **why)
{
    if (why) *why = m->backend_note ? m->backend_note : NULL;
    return m->jit ? CPVM_BACKEND_COMPILER : CPVM_BACKEND_INTERPRETER;
}


cpvm_sandbox cpvm_module_sandbox(const cpvm_module *m)
{
    return m->sandboxed ? CPVM_SANDBOX_ZYGOTE : CPVM_SANDBOX_NONE;
}
