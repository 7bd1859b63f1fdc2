/* cpvm under the GP and PolkaVM profiles (PROFILES.md). */
#include "local.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpvm.h"
#include "decode/decode.h"
#include "isa/isa.h"

void xp_local_hello(struct xp_hello *h)
{
    memset(h, 0, sizeof *h);
    h->version = XP_VERSION;
    snprintf(h->name, sizeof h->name, "cpvm");
    snprintf(h->impl_version, sizeof h->impl_version, "polkavm-0.35 + gp profile");
    h->features = XP_F_FMT_GP_RAW | XP_F_FMT_POLKAVM | XP_F_SEM_GP | XP_F_SEM_POLKAVM | XP_F_MEMORY;
    h->max_gas = XP_LOCAL_MAX_GP_GAS;
}

static int cmp_dump(const void *a, const void *b)
{
    const struct xp_dump *x = a, *y = b;
    return x->address < y->address ? -1 : x->address > y->address;
}

/* Every page of the case's writable ranges that holds a non-zero byte. Pages
 * the instance cannot read (never mapped) count as zero. */
static void dump_pages(const struct xp_case *c, cpvm_instance *inst, struct xp_result *res, uint8_t *mem)
{
    size_t used = 0;
    res->ndumps = 0;
    for (uint32_t i = 0; i < c->npages; i++) {
        const struct xp_page *pg = &c->pages[i];
        if (pg->access != XP_WRITE) continue;
        for (uint32_t off = 0; off < pg->length; off += XP_PAGE) {
            uint8_t *dst = mem + used;
            if (cpvm_instance_read_memory(inst, pg->address + off, dst, XP_PAGE) != CPVM_OK) continue;
            bool nonzero = false;
            for (uint32_t k = 0; k < XP_PAGE && !nonzero; k++) nonzero = dst[k] != 0;
            if (!nonzero) continue;
            res->dumps[res->ndumps++] = (struct xp_dump){pg->address + off, dst};
            used += XP_PAGE;
        }
    }
    qsort(res->dumps, res->ndumps, sizeof res->dumps[0], cmp_dump);
}

static uint8_t status_of(cpvm_exit exit)
{
    switch (exit) {
    case CPVM_EXIT_HALT: return XP_HALT;
    case CPVM_EXIT_PANIC: return XP_PANIC;
    case CPVM_EXIT_PAGE_FAULT: return XP_PAGE_FAULT;
    case CPVM_EXIT_ECALLI: return XP_HOST;
    case CPVM_EXIT_OUT_OF_GAS: return XP_OOG;
    case CPVM_EXIT_STEP: break;
    }
    return XP_PANIC;
}

/* The instruction at the instance's next pc (false when there is none or its
 * opcode is unknown); *info describes the program. */
static bool next_insn(const cpvm_program *prog, cpvm_instance *inst, struct cpvm_program_info *info, uint32_t *pc,
                      struct dec_insn *d)
{
    cpvm_program_get_info(prog, info);
    if (!cpvm_instance_next_pc(inst, pc) || *pc >= info->code.len) return false;
    dec_decode(prog, *pc, d);
    return d->op < OP_COUNT;
}

/* Whether the instruction at the next pc is a load or store whose bytes span
 * two pages (a diagnosis aid: implementations often get those wrong). */
static bool crosses_page(const cpvm_program *prog, cpvm_instance *inst)
{
    uint32_t pc;
    struct cpvm_program_info info;
    struct dec_insn d;
    if (!next_insn(prog, inst, &info, &pc, &d)) return false;
    unsigned f = isa_flags((enum op)d.op);
    if (!(f & (LOAD | STORE))) return false;
    uint32_t w = f & W1 ? 1 : f & W2 ? 2 : f & W4 ? 4 : 8, addr;
    switch ((enum isa_class)isa_rows[d.op].cls) {
    case CLS_R_I_I: addr = (uint32_t)cpvm_instance_reg(inst, d.a) + (uint32_t)d.i1; break;
    case CLS_RR_I: addr = (uint32_t)cpvm_instance_reg(inst, d.b) + (uint32_t)d.i1; break;
    default: addr = (uint32_t)d.i1; break;
    }
    return (addr & (XP_PAGE - 1)) + w > XP_PAGE;
}

/* Whether the instruction at the next pc is encoded other than the way the
 * encoder writes it (register fields 13-15, ignored bits set, long immediates,
 * padding): implementations decode those differently (a diagnosis aid). */
static bool odd_encoding(const cpvm_program *prog, cpvm_instance *inst, bool *len_8_11)
{
    uint32_t pc;
    struct cpvm_program_info info;
    struct dec_insn d;
    if (!next_insn(prog, inst, &info, &pc, &d)) return false;
    /* A 3-bit immediate-length field (isa.md §2: min(4, field & 7)) whose
     * 4-bit nibble holds 8-11: read without the mask it means 4, not 0-3. */
    const uint8_t *b = info.code.ptr + pc;
    unsigned nib = 0;
    switch ((enum isa_class)isa_rows[d.op].cls) {
    case CLS_R_I_O:
    case CLS_R_I_I: nib = pc + 1 < info.code.len ? b[1] >> 4 : 0; break;
    case CLS_I_I: nib = pc + 1 < info.code.len ? b[1] & 15 : 0; break;
    case CLS_RR_I_I: nib = pc + 2 < info.code.len ? b[2] & 15 : 0; break;
    default: break;
    }
    if (nib >= 8 && nib <= 11) *len_8_11 = true;
    uint8_t bytes[LIMIT_INSN_MAX_LEN];
    unsigned n = dec_encode(CPVM_ISA_LATEST64, &d, pc, bytes);
    return n != d.len || pc + n > info.code.len || memcmp(bytes, info.code.ptr + pc, n) != 0;
}

/* A branch at `pc` to a target outside the GP's block set: taken, the
 * interpreter goes to a trap at the branch's own pc, which step tracing counts
 * as one more step (CPVM_COMPAT_GP); the GP charges the branch alone. */
static bool gp_trap_if_taken(const cpvm_program *prog, uint32_t pc)
{
    struct cpvm_program_info info;
    struct dec_insn d;
    cpvm_program_get_info(prog, &info);
    if (pc >= info.code.len) return false;
    dec_decode(prog, pc, &d);
    return (isa_flags((enum op)d.op) & BRANCH) && !dec_gp_block_start(prog, d.target);
}

/* GP: one instruction per run() (step limit 1), one unit of gas each, charged
 * before the instruction runs; with no gas left the next instruction is
 * out-of-gas at its own pc and gas reads 0 (PROFILES.md "gas"). */
/* The host-call policy (PROTOCOL.md v2): true when the ecalli just stopped at
 * is answered (registers set; the next run() continues after it). */
static bool resume_host(cpvm_instance *inst, const struct xp_case *c, uint32_t *answered)
{
    if (*answered >= c->nreplies) return false;
    for (unsigned r = 0; r < XP_NREGS; r++) cpvm_instance_set_reg(inst, r, c->replies[*answered][r]);
    ++*answered;
    return true;
}

static bool run_gp(const cpvm_program *prog, cpvm_instance *inst, const struct xp_case *c, struct xp_result *res, char *err,
                   size_t errcap)
{
    int64_t gas = c->gas;
    uint32_t answered = 0;
    struct cpvm_interrupt in;
    for (;;) {
        uint32_t pc = 0;
        cpvm_instance_next_pc(inst, &pc);
        if (gas < 1) {
            res->status = XP_OOG;
            res->pc = pc;
            res->gas = 0;
            return true;
        }
        gas--;
        if (!res->cross_page && crosses_page(prog, inst)) res->cross_page = true;
        if (odd_encoding(prog, inst, &res->len_field_8_11)) res->odd_encoding = true;
        cpvm_instance_set_step_limit(inst, 1);
        cpvm_status st = cpvm_instance_run(inst, &in);
        if (st != CPVM_OK) {
            snprintf(err, errcap, "run: %s", cpvm_status_message(st));
            return false;
        }
        if (in.exit == CPVM_EXIT_STEP && !(in.pc == pc && gp_trap_if_taken(prog, pc))) continue;
        if (in.exit == CPVM_EXIT_ECALLI && resume_host(inst, c, &answered)) continue;
        res->status = in.exit == CPVM_EXIT_STEP ? XP_PANIC : status_of(in.exit);
        /* GP A.8: an access needing an index below 2^16 panics; cpvm never maps
         * those pages, so its fault names one of them exactly then. */
        if (in.exit == CPVM_EXIT_PAGE_FAULT && in.fault_address < XP_GP_RESERVED) res->status = XP_PANIC;
        res->pc = in.pc;
        res->gas = gas;
        res->exit_arg = res->status == XP_PAGE_FAULT ? in.fault_address : res->status == XP_HOST ? in.hostcall : 0;
        return true;
    }
}

bool xp_local_run(const struct xp_case *c, struct xp_result *res, uint8_t *mem, char *err, size_t errcap)
{
    bool gp = c->semantics == XP_SEM_GP;
    memset(res, 0, offsetof(struct xp_result, dumps));
    if (gp && c->format != XP_FMT_GP_RAW) {
        snprintf(err, errcap, "the GP profile takes raw GP programs only");
        return false;
    }
    if (gp && (c->gas < 0 || c->gas > XP_LOCAL_MAX_GP_GAS)) {
        snprintf(err, errcap, "GP gas %lld outside [0, %d]", (long long)c->gas, XP_LOCAL_MAX_GP_GAS);
        return false;
    }
    cpvm_program *prog = NULL;
    cpvm_module *mod = NULL;
    cpvm_instance *inst = NULL;
    struct cpvm_error e;
    memset(&e, 0, sizeof e);
    cpvm_status st = c->format == XP_FMT_GP_RAW
                         ? cpvm_program_parse_raw(c->program, c->program_len, CPVM_ISA_LATEST64, 0, &prog, &e)
                         : cpvm_program_parse(c->program, c->program_len, 0, &prog, &e);
    bool ok = true;
    if (st != CPVM_OK) {
        res->status = XP_INVALID_PROGRAM;
        goto out;
    }
    struct cpvm_module_config cfg;
    cpvm_module_config_default(&cfg);
    cfg.backend = CPVM_BACKEND_INTERPRETER;
    cfg.memory_model = gp ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD;
    cfg.compat = gp ? CPVM_COMPAT_GP : CPVM_COMPAT_POLKAVM_035;
    cfg.page_size = XP_PAGE;
    cfg.gas_metering = !gp;
    cfg.cost_model.kind = CPVM_COST_NAIVE;
    cfg.step_tracing = gp;
    st = cpvm_module_new(prog, &cfg, &mod, &e);
    if (st == CPVM_E_VALIDATION || st == CPVM_E_BAD_MEMORY_MAP) {
        res->status = XP_INVALID_PROGRAM;
        goto out;
    }
    if (st == CPVM_OK) st = cpvm_instance_new(mod, &inst, &e);
    if (st != CPVM_OK) {
        snprintf(err, errcap, "module/instance: %s: %.*s", cpvm_status_message(st), (int)sizeof e.detail, e.detail);
        ok = false;
        goto out;
    }
    if (gp) {
        for (uint32_t i = 0; ok && i < c->npages; i++) {
            const struct xp_page *pg = &c->pages[i];
            st = cpvm_instance_map_pages(inst, pg->address, pg->length, pg->access == XP_WRITE);
            if (st == CPVM_OK && pg->data_len) st = cpvm_instance_write_memory(inst, pg->address, pg->data, pg->data_len);
            if (st != CPVM_OK) {
                snprintf(err, errcap, "page 0x%x+0x%x: %s", pg->address, pg->length, cpvm_status_message(st));
                ok = false;
            }
        }
        if (!ok) goto out;
    }
    for (unsigned r = 0; r < XP_NREGS; r++) cpvm_instance_set_reg(inst, r, c->regs[r]);
    cpvm_instance_set_next_pc(inst, c->pc);
    if (gp) {
        ok = run_gp(prog, inst, c, res, err, errcap);
    } else {
        struct cpvm_interrupt in;
        uint32_t answered = 0;
        cpvm_instance_set_gas(inst, c->gas);
        do st = cpvm_instance_run(inst, &in);
        while (st == CPVM_OK && in.exit == CPVM_EXIT_ECALLI && resume_host(inst, c, &answered));
        if (st != CPVM_OK) {
            snprintf(err, errcap, "run: %s", cpvm_status_message(st));
            ok = false;
        } else {
            res->status = status_of(in.exit);
            res->pc = in.pc;
            res->gas = cpvm_instance_gas(inst);
            res->exit_arg = in.exit == CPVM_EXIT_PAGE_FAULT ? in.fault_address : in.exit == CPVM_EXIT_ECALLI ? in.hostcall : 0;
        }
    }
    if (ok) {
        for (unsigned r = 0; r < XP_NREGS; r++) res->regs[r] = cpvm_instance_reg(inst, r);
        dump_pages(c, inst, res, mem);
    }
out:
    if (inst) cpvm_instance_free(inst);
    if (mod) cpvm_module_free(mod);
    if (prog) cpvm_program_free(prog);
    return ok;
}
