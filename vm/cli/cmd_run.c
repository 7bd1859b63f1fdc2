/* cpvm run PROGRAM [options] — runs a program and prints one JSON line. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "util.h"

static const char *const CMD = "run";

#define DEFAULT_GAS 1000000000LL
#define MAX_READ_LEN (16u << 20)      /* one --read */
#define MAX_READ_TOTAL (256u << 20)   /* all --read together */
#define MAX_HOSTCALLS_RECORDED (1u << 24)
#define MAX_DEADLINE_MS (UINT64_MAX / 1000000u)
#define EXIT_DEADLINE 3

static void usage(FILE *out)
{
    fputs("usage: cpvm run PROGRAM [options]\n"
          "  --raw                 PROGRAM is a raw Graypaper program (dynamic memory)\n"
          "  --isa NAME            with --raw: latest64 (default), jamv1, latest32, revive_v1\n"
          "  --backend NAME        interpreter (default) or compiler (x86-64 native code)\n"
          CLI_SANDBOX_USAGE
          "  --deadline MS         wall-clock limit of each run in milliseconds (zygote sandbox\n"
          "                        only; bound the others with --gas); past it the run fails\n"
          "                        with \"deadline exceeded\" and exit code 3\n"
          "  --gas N               starting gas (default 1000000000)\n"
          CLI_COST_MODEL_USAGE
          "  --entry NAME|PC       export name or pc (default: first export, else 0)\n"
          "  --reg NAME=VALUE      set a register before running (repeatable)\n"
          "  --raw-regs            start with all registers 0 instead of a PolkaVM call\n"
          "  --write ADDR=HEX      write bytes into guest memory first (repeatable)\n"
          "  --map ADDR:LEN[:rw|:ro]  map pages (dynamic memory only; default rw)\n"
          "  --stop-on-ecalli      stop at the first host call (status \"ecalli\")\n"
          "  --ecalli-ret N=V      on host call N, set a0 = V and continue (repeatable)\n"
          "  --steps N             stop after N instructions (status \"steps\")\n"
          "  --read ADDR:LEN       include guest memory in the output (repeatable)\n"
          "  --compat polkavm|gp04|gp  semantics of under-specified corners (default polkavm;\n"
          "                        gp: also the Graypaper's control flow, interpreter only)\n"
          "Prints {status, pc, hostcall, page_fault_address, regs, gas, hostcalls, memory}.\n"
          "Exit code 0 when it ran (whatever the guest did), 2 on errors, 3 past --deadline.\n",
          out);
}

struct kv {
    uint64_t key, value;
};
struct write_op {
    uint32_t address;
    uint8_t *bytes;
    size_t len;
};
struct map_op {
    uint32_t address, len;
    bool writable;
};
struct read_op {
    uint32_t address, len;
};

/* Splits "A<sep>B" at the first `sep` into a bounded copy of A and a pointer to B. */
static bool split(const char *arg, char sep, char *left, size_t cap, const char **right)
{
    const char *p = strchr(arg, sep);
    if (!p || (size_t)(p - arg) >= cap) return false;
    memcpy(left, arg, (size_t)(p - arg));
    left[p - arg] = 0;
    *right = p + 1;
    return true;
}

static bool parse_map(const char *arg, struct map_op *op)
{
    char a[64], l[64];
    const char *rest, *mode = NULL;
    if (!split(arg, ':', a, sizeof a, &rest)) return false;
    if (strchr(rest, ':')) {
        if (!split(rest, ':', l, sizeof l, &mode)) return false;
    } else {
        if (strlen(rest) >= sizeof l) return false;
        strcpy(l, rest);
    }
    if (!cli_parse_u32(a, &op->address) || !cli_parse_u32(l, &op->len)) return false;
    if (!mode || strcmp(mode, "rw") == 0)
        op->writable = true;
    else if (strcmp(mode, "ro") == 0)
        op->writable = false;
    else
        return false;
    return true;
}

struct run_opts {
    const char *path, *isa_name, *entry;
    bool raw, raw_regs, stop_on_ecalli, have_steps;
    int64_t gas;
    uint64_t steps, deadline_ms; /* deadline_ms 0 = none */
    cpvm_compat compat;
    cpvm_backend backend;
    cpvm_sandbox sandbox;
    struct kv *regs, *rets;
    size_t nregs, nrets;
    struct write_op *writes;
    size_t nwrites;
    struct map_op *maps;
    size_t nmaps;
    struct read_op *reads;
    size_t nreads;
};

static void free_opts(struct run_opts *o)
{
    for (size_t i = 0; i < o->nwrites; i++) free(o->writes[i].bytes);
    free(o->regs);
    free(o->rets);
    free(o->writes);
    free(o->maps);
    free(o->reads);
}

/* Returns -1 to go on, else the exit code. */
static int parse_args(int argc, char **argv, struct run_opts *o)
{
    size_t n = (size_t)argc;
    o->regs = calloc(n, sizeof *o->regs);
    o->rets = calloc(n, sizeof *o->rets);
    o->writes = calloc(n, sizeof *o->writes);
    o->maps = calloc(n, sizeof *o->maps);
    o->reads = calloc(n, sizeof *o->reads);
    if (!o->regs || !o->rets || !o->writes || !o->maps || !o->reads) {
        fprintf(stderr, "cpvm run: out of memory\n");
        return 2;
    }
    o->gas = DEFAULT_GAS;
    o->compat = CPVM_COMPAT_POLKAVM_035;
    uint64_t read_total = 0;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        const char *a = argv[i];
        bool missing = false;
#define OPT(name) cli_option(argc, argv, &i, name, &v, &missing, CMD)
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--raw") == 0) {
            o->raw = true;
        } else if (strcmp(a, "--raw-regs") == 0) {
            o->raw_regs = true;
        } else if (strcmp(a, "--stop-on-ecalli") == 0) {
            o->stop_on_ecalli = true;
        } else if (OPT("--isa")) {
            o->isa_name = v;
        } else if (OPT("--backend")) {
            if (!cli_parse_backend(CMD, v, &o->backend)) return 2;
        } else if (OPT("--sandbox")) {
            if (!cli_parse_sandbox(CMD, v, &o->sandbox)) return 2;
        } else if (OPT("--deadline")) {
            if (!cli_parse_u64(v, &o->deadline_ms) || o->deadline_ms == 0 || o->deadline_ms > MAX_DEADLINE_MS) {
                fprintf(stderr, "cpvm run: --deadline: expected milliseconds (at least 1), got '%s'\n", v);
                return 2;
            }
        } else if (OPT("--cost-model")) {
            if (!cli_parse_cost_model(CMD, v, &cli_cost_model)) return 2;
        } else if (OPT("--gas")) {
            if (!cli_parse_i64(v, &o->gas)) {
                fprintf(stderr, "cpvm run: --gas: bad value '%s'\n", v);
                return 2;
            }
        } else if (OPT("--entry")) {
            o->entry = v;
        } else if (OPT("--reg")) {
            unsigned r;
            uint64_t val;
            if (!cli_parse_reg_assignment(CMD, v, &r, &val)) return 2;
            o->regs[o->nregs++] = (struct kv){r, val};
        } else if (OPT("--write")) {
            char addr[64];
            const char *hex;
            struct write_op *w = &o->writes[o->nwrites];
            if (!split(v, '=', addr, sizeof addr, &hex) || !cli_parse_u32(addr, &w->address)) {
                fprintf(stderr, "cpvm run: --write: expected ADDR=HEX, got '%s'\n", v);
                return 2;
            }
            if (!cli_hex_to_bytes(hex, &w->bytes, &w->len)) {
                fprintf(stderr, "cpvm run: --write: bad hex bytes '%s'\n", hex);
                return 2;
            }
            o->nwrites++;
        } else if (OPT("--map")) {
            if (!parse_map(v, &o->maps[o->nmaps])) {
                fprintf(stderr, "cpvm run: --map: expected ADDR:LEN[:rw|:ro], got '%s'\n", v);
                return 2;
            }
            o->nmaps++;
        } else if (OPT("--ecalli-ret")) {
            char num[64];
            const char *val;
            uint32_t k;
            uint64_t x;
            if (!split(v, '=', num, sizeof num, &val) || !cli_parse_u32(num, &k) || !cli_parse_u64(val, &x)) {
                fprintf(stderr, "cpvm run: --ecalli-ret: expected N=V, got '%s'\n", v);
                return 2;
            }
            o->rets[o->nrets++] = (struct kv){k, x};
        } else if (OPT("--steps")) {
            if (!cli_parse_u64(v, &o->steps) || o->steps == 0) {
                fprintf(stderr, "cpvm run: --steps: expected a count of at least 1, got '%s'\n", v);
                return 2;
            }
            o->have_steps = true;
        } else if (OPT("--read")) {
            char addr[64];
            const char *len;
            struct read_op *r = &o->reads[o->nreads];
            uint64_t len64;
            if (!split(v, ':', addr, sizeof addr, &len) || !cli_parse_u32(addr, &r->address) ||
                !cli_parse_u64(len, &len64)) {
                fprintf(stderr, "cpvm run: --read: expected ADDR:LEN, got '%s'\n", v);
                return 2;
            }
            if (len64 > MAX_READ_LEN || read_total + len64 > MAX_READ_TOTAL) {
                fprintf(stderr, "cpvm run: --read: too much memory requested (at most %u bytes each, %u in all)\n",
                        MAX_READ_LEN, MAX_READ_TOTAL);
                return 2;
            }
            r->len = (uint32_t)len64;
            read_total += len64;
            o->nreads++;
        } else if (OPT("--compat")) {
            if (strcmp(v, "polkavm") == 0)
                o->compat = CPVM_COMPAT_POLKAVM_035;
            else if (strcmp(v, "gp04") == 0)
                o->compat = CPVM_COMPAT_GP_V04;
            else if (strcmp(v, "gp") == 0)
                o->compat = CPVM_COMPAT_GP;
            else {
                fprintf(stderr, "cpvm run: --compat: expected polkavm, gp04 or gp, got '%s'\n", v);
                return 2;
            }
        } else if (missing) {
            return 2;
        } else if (!cli_positional(CMD, a, &o->path, "program")) {
            usage(stderr);
            return 2;
        }
#undef OPT
    }
    if (!o->path) {
        fprintf(stderr, "cpvm run: no program given\n");
        usage(stderr);
        return 2;
    }
    if (o->isa_name && !o->raw) {
        fprintf(stderr, "cpvm run: --isa needs --raw (a container names its own ISA)\n");
        return 2;
    }
    if (o->nmaps && !o->raw) {
        fprintf(stderr, "cpvm run: --map needs dynamic memory (a raw program, --raw)\n");
        return 2;
    }
    if (o->deadline_ms && (o->backend != CPVM_BACKEND_COMPILER || o->sandbox == CPVM_SANDBOX_NONE)) {
        fprintf(stderr, "cpvm run: --deadline needs the zygote sandbox (--backend compiler --sandbox zygote); "
                        "bound the %s with --gas\n",
                o->backend == CPVM_BACKEND_COMPILER ? "unsandboxed compiler" : "interpreter");
        return 2;
    }
    return -1;
}

static bool add_raw(cJSON *parent, const char *key, cJSON *item)
{
    if (!item) return false;
    if (key) return cJSON_AddItemToObject(parent, key, item);
    return cJSON_AddItemToArray(parent, item);
}

static char *build_json(cpvm_instance *inst, const struct cpvm_interrupt *intr, const uint32_t *hostcalls,
                        size_t nhostcalls, const struct run_opts *o)
{
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    bool ok = cJSON_AddStringToObject(root, "status", cpvm_exit_name(intr->exit)) != NULL;
    ok = ok && add_raw(root, "pc", cli_json_raw_u64(intr->pc));
    if (intr->exit == CPVM_EXIT_ECALLI)
        ok = ok && add_raw(root, "hostcall", cli_json_raw_u64(intr->hostcall));
    else
        ok = ok && cJSON_AddNullToObject(root, "hostcall");
    if (intr->exit == CPVM_EXIT_PAGE_FAULT)
        ok = ok && add_raw(root, "page_fault_address", cli_json_raw_u64(intr->fault_address));
    else
        ok = ok && cJSON_AddNullToObject(root, "page_fault_address");
    cJSON *regs = ok ? cJSON_AddArrayToObject(root, "regs") : NULL;
    ok = regs != NULL;
    for (unsigned r = 0; ok && r < CPVM_REG_COUNT; r++) ok = add_raw(regs, NULL, cli_json_raw_u64(cpvm_instance_reg(inst, r)));
    ok = ok && add_raw(root, "gas", cli_json_raw_i64(cpvm_instance_gas(inst)));
    cJSON *hc = ok ? cJSON_AddArrayToObject(root, "hostcalls") : NULL;
    ok = hc != NULL;
    for (size_t i = 0; ok && i < nhostcalls; i++) ok = add_raw(hc, NULL, cli_json_raw_u64(hostcalls[i]));
    cJSON *mem = ok ? cJSON_AddArrayToObject(root, "memory") : NULL;
    ok = mem != NULL;
    for (size_t i = 0; ok && i < o->nreads; i++) {
        const struct read_op *r = &o->reads[i];
        cJSON *e = cJSON_CreateObject();
        ok = e && cJSON_AddItemToArray(mem, e);
        ok = ok && add_raw(e, "address", cli_json_raw_u64(r->address));
        if (!ok) break;
        if ((uint64_t)r->address + r->len > (1ull << 32)) {
            ok = cJSON_AddStringToObject(e, "error", "range wraps around the address space") != NULL;
            continue;
        }
        uint8_t *buf = malloc(r->len ? r->len : 1);
        if (!buf) {
            ok = false;
            break;
        }
        cpvm_status st = cpvm_instance_read_memory(inst, r->address, buf, r->len);
        if (st != CPVM_OK) {
            ok = cJSON_AddStringToObject(e, "error", cpvm_status_message(st)) != NULL;
        } else {
            char *hex = cli_bytes_to_hex(buf, r->len);
            ok = hex && cJSON_AddStringToObject(e, "hex", hex) != NULL;
            free(hex);
        }
        free(buf);
    }
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

int cmd_run(int argc, char **argv)
{
    struct run_opts o;
    memset(&o, 0, sizeof o);
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        free_opts(&o);
        return rc;
    }
    cpvm_isa isa = CPVM_ISA_LATEST64;
    if (o.isa_name && !cli_parse_isa(CMD, o.isa_name, &isa)) {
        free_opts(&o);
        return 2;
    }

    cpvm_program *prog = NULL;
    cpvm_module *mod = NULL;
    cpvm_instance *inst = NULL;
    uint32_t *hostcalls = NULL;
    size_t nhost = 0, caphost = 0;
    bool hostcalls_truncated = false;
    rc = 2;

    prog = cli_load_program(CMD, o.path, o.raw, isa);
    if (!prog) goto out;
    mod = cli_make_module(CMD, o.path, prog, o.backend, o.sandbox,
                          o.raw ? CPVM_MEMORY_DYNAMIC : CPVM_MEMORY_STANDARD, o.compat, o.have_steps);
    if (!mod) goto out;
    if (o.deadline_ms && cpvm_module_sandbox(mod) != CPVM_SANDBOX_ZYGOTE) {
        /* The compiler fell back to the interpreter (said above). */
        fprintf(stderr, "cpvm run: --deadline needs the zygote sandbox, which this run would not use; "
                        "bound it with --gas\n");
        goto out;
    }
    struct cpvm_error err;
    memset(&err, 0, sizeof err);
    if (cpvm_instance_new(mod, &inst, &err) != CPVM_OK || !inst) {
        cli_print_error(CMD, o.path, &err);
        inst = NULL;
        goto out;
    }
    uint32_t pc;
    if (!cli_resolve_entry(CMD, prog, o.entry, &pc)) goto out;
    if (o.raw_regs)
        cpvm_instance_set_next_pc(inst, pc);
    else
        cpvm_instance_prepare_call(inst, pc);
    for (size_t i = 0; i < o.nregs; i++) cpvm_instance_set_reg(inst, (unsigned)o.regs[i].key, o.regs[i].value);
    for (size_t i = 0; i < o.nmaps; i++) {
        cpvm_status st = cpvm_instance_map_pages(inst, o.maps[i].address, o.maps[i].len, o.maps[i].writable);
        if (st != CPVM_OK) {
            fprintf(stderr, "cpvm run: --map 0x%" PRIx32 ":0x%" PRIx32 ": %s\n", o.maps[i].address, o.maps[i].len,
                    cpvm_status_message(st));
            goto out;
        }
    }
    for (size_t i = 0; i < o.nwrites; i++) {
        cpvm_status st = cpvm_instance_write_memory(inst, o.writes[i].address, o.writes[i].bytes, o.writes[i].len);
        if (st != CPVM_OK) {
            fprintf(stderr, "cpvm run: --write at 0x%" PRIx32 " (%zu bytes): %s\n", o.writes[i].address,
                    o.writes[i].len, cpvm_status_message(st));
            goto out;
        }
    }
    cpvm_instance_set_gas(inst, o.gas);
    if (o.have_steps) cpvm_instance_set_step_limit(inst, o.steps);
    if (o.deadline_ms) {
        cpvm_status st = cpvm_instance_set_deadline(inst, o.deadline_ms * 1000000u);
        if (st != CPVM_OK) {
            fprintf(stderr, "cpvm run: --deadline: %s\n", cpvm_status_message(st));
            goto out;
        }
    }

    struct cpvm_interrupt intr;
    for (;;) {
        memset(&intr, 0, sizeof intr);
        cpvm_status st = cpvm_instance_run(inst, &intr);
        if (st == CPVM_E_DEADLINE) {
            fprintf(stderr,
                    "cpvm run: %s: deadline exceeded: a run took longer than %" PRIu64
                    " ms; the sandbox worker was killed\n",
                    o.path, o.deadline_ms);
            rc = EXIT_DEADLINE;
            goto out;
        }
        if (st != CPVM_OK) {
            fprintf(stderr, "cpvm run: %s: run failed: %s\n", o.path, cpvm_status_message(st));
            goto out;
        }
        if (intr.exit != CPVM_EXIT_ECALLI) break;
        if (nhost < MAX_HOSTCALLS_RECORDED) {
            if (nhost == caphost) {
                size_t ncap = caphost ? caphost * 2 : 64;
                uint32_t *nh = realloc(hostcalls, ncap * sizeof *nh);
                if (!nh) {
                    fprintf(stderr, "cpvm run: out of memory\n");
                    goto out;
                }
                hostcalls = nh;
                caphost = ncap;
            }
            hostcalls[nhost++] = intr.hostcall;
        } else if (!hostcalls_truncated) {
            hostcalls_truncated = true;
            fprintf(stderr, "cpvm run: warning: more than %u host calls; \"hostcalls\" lists the first %u\n",
                    MAX_HOSTCALLS_RECORDED, MAX_HOSTCALLS_RECORDED);
        }
        if (o.stop_on_ecalli) break;
        /* The last --ecalli-ret for this number wins. */
        for (size_t i = o.nrets; i-- > 0;) {
            if (o.rets[i].key == intr.hostcall) {
                cpvm_instance_set_reg(inst, CPVM_REG_A0, o.rets[i].value);
                break;
            }
        }
    }

    char *json = build_json(inst, &intr, hostcalls, nhost, &o);
    if (!json) {
        fprintf(stderr, "cpvm run: out of memory while writing the result\n");
        goto out;
    }
    puts(json);
    free(json);
    rc = fflush(stdout) == 0 ? 0 : 2;
out:
    free(hostcalls);
    if (inst) cpvm_instance_free(inst);
    if (mod) cpvm_module_free(mod);
    if (prog) cpvm_program_free(prog);
    free_opts(&o);
    return rc;
}
