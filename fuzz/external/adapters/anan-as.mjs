// @fluffylabs/anan-as (AssemblyScript PVM, GP 0.7.2) behind the protocol:
// the GP profile, raw programs, explicit page map.
// anan-as 1.2.0 leaks wasm memory across runs: after some thousands of cases
// prepareProgram throws (finding A2). The adapter therefore loads a fresh
// instance of the module (a new module record = a new wasm instance) every
// RECYCLE cases; the protocol behaviour is unchanged.
const RECYCLE = 1000;
const url = import.meta.resolve("@fluffylabs/anan-as");
let generation = 0;
let cases = 0;
let pvm = await import(url);
import { BadMessage, dumpPages, log, F, FMT_GP_RAW, PAGE, S, SEM_GP, serve, WRITE } from "./protocol.mjs";

const hello = { name: "anan-as", version: "1.2.0", features: F.FMT_GP_RAW | F.SEM_GP | F.MEMORY, maxGas: 10_000_000n };

function run(c) {
  if (c.semantics !== SEM_GP || c.format !== FMT_GP_RAW) throw new BadMessage("anan-as runs GP cases only");
  let exe;
  try {
    exe = pvm.prepareProgram(
      pvm.InputKind.Generic,
      pvm.HasMetadata.No,
      Array.from(c.program),
      c.regs,
      c.pages.map((p) => ({ address: p.address, length: p.length, access: p.access === WRITE ? 2 : 1 })),
      c.pages.filter((p) => p.data.length).map((p) => ({ address: p.address, data: Array.from(p.data) })),
      [],
      64, // pages preallocated: fewer "run out of pages" reallocations
    );
  } catch (e) {
    log(`anan-as: prepareProgram: ${e.message}`);
    return { status: S.INVALID_PROGRAM, pc: 0, gas: 0n, regs: [], exitArg: 0, dumps: [] };
  }
  cases++;
  const out = pvm.runProgram(exe, c.gas, c.pc, false, false, true);
  // The dump: chunks of memory; index them by page.
  const pages = new Map();
  for (const ch of out.memory ?? []) {
    const data = ch.data;
    for (let i = 0; i < data.length; ) {
      const a = ch.address + i;
      const base = a - (a % PAGE);
      let pg = pages.get(base);
      if (!pg) pages.set(base, (pg = new Uint8Array(PAGE)));
      const n = Math.min(PAGE - (a - base), data.length - i);
      for (let k = 0; k < n; k++) pg[a - base + k] = data[i + k];
      i += n;
    }
  }
  return {
    status: out.status,
    pc: out.pc,
    gas: out.gas,
    regs: out.registers,
    exitArg: out.status === S.PAGE_FAULT || out.status === S.HOST ? out.exitCode : 0,
    dumps: dumpPages(c, (a) => pages.get(a) ?? null),
  };
}

async function afterBatch() {
  if (cases < RECYCLE) return;
  cases = 0;
  pvm = await import(`${url}?instance=${++generation}`);
}

await serve(hello, run, afterBatch);
