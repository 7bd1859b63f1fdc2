// @fluffylabs/anan-as (AssemblyScript PVM, GP 0.7.2) behind the protocol:
// the GP profile, raw programs, explicit page map.
// anan-as 1.2.0 leaks wasm memory across runs: after some thousands of cases
// prepareProgram throws (finding A2). The adapter therefore compiles the wasm
// once and runs a fresh instance every RECYCLE cases, dropping the old one
// (a re-imported ES module would never be freed: the module map keeps it).
import fs from "node:fs";
import { fileURLToPath } from "node:url";
import { instantiate } from "@fluffylabs/anan-as/raw";

const RECYCLE = 1000;
const wasm = await WebAssembly.compile(
  fs.readFileSync(fileURLToPath(import.meta.resolve("@fluffylabs/anan-as/release.wasm"))),
);
let cases = 0;
let pvm = await instantiate(wasm);
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
      0, // no preallocated pages: faster per case (measured), the warning goes to the log
    );
  } catch (e) {
    log(`anan-as: prepareProgram: ${e.message}`);
    return { status: S.INVALID_PROGRAM, pc: 0, gas: 0n, regs: [], exitArg: 0, dumps: [] };
  }
  cases++;
  // runProgram's own memory dump leaves out pages the program wrote (finding
  // A3), so the run goes through the pvm* API and each page is read back.
  const id = pvm.pvmStart(exe, false);
  try {
    let out = pvm.pvmResume(id, c.gas, c.pc, false);
    for (const regs of c.replies) {
      if (out.status !== S.HOST) break;
      pvm.pvmSetRegisters(id, regs);
      out = pvm.pvmResume(id, out.gas, out.nextPc, false);
    }
    return {
      status: out.status,
      pc: out.pc,
      gas: out.gas,
      regs: out.registers,
      exitArg: out.status === S.PAGE_FAULT || out.status === S.HOST ? out.exitCode : 0,
      dumps: dumpPages(c, (a) => readPage(id, a)),
    };
  } finally {
    pvm.pvmDestroy(id);
  }
}

// A page straight from the wasm memory (no copy through the loader: reading
// every page with pvmReadMemory was two thirds of the adapter's time); a page
// anan-as never allocated has no pointer and reads as zero.
function readPage(id, a) {
  const ptr = pvm.pvmGetPagePointer(id, a / PAGE);
  return ptr === 0 ? null : new Uint8Array(pvm.memory.buffer, ptr, PAGE);
}

async function afterBatch() {
  if (cases < RECYCLE) return;
  cases = 0;
  pvm = await instantiate(wasm);
}

await serve(hello, run, afterBatch);
