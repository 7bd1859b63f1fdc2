// @typeberry/lib's TypeScript PVM interpreter behind the protocol: the GP
// profile, raw programs, explicit page map (no heap: sbrk has none to grow).
import { tryAsGas } from "@typeberry/lib/pvm-interface";
import {
  Interpreter,
  MemoryBuilder,
  Registers,
  tryAsMemoryIndex,
  tryAsSbrkIndex,
} from "@typeberry/lib/pvm-interpreter";
import { BadMessage, dumpPages, F, FMT_GP_RAW, PAGE, S, SEM_GP, serve, WRITE } from "./protocol.mjs";

const hello = { name: "typeberry", version: "0.5.11", features: F.FMT_GP_RAW | F.SEM_GP | F.MEMORY, maxGas: 10_000_000n };
const vm = Interpreter.new();

function run(c) {
  if (c.semantics !== SEM_GP || c.format !== FMT_GP_RAW) throw new BadMessage("typeberry runs GP cases only");
  const mb = new MemoryBuilder();
  for (const p of c.pages) {
    const start = tryAsMemoryIndex(p.address);
    // The last page of the address space ends at 2^32, one past MAX_MEMORY_INDEX.
    const end = p.address + p.length;
    if (p.access === WRITE) mb.setWriteablePages(start, end, new Uint8Array(p.data));
    else mb.setReadablePages(start, end, new Uint8Array(p.data));
  }
  const memory = mb.finalize(tryAsMemoryIndex(0), tryAsSbrkIndex(0));
  const regs = Registers.empty();
  for (let i = 0; i < 13; i++) regs.setU64(i, c.regs[i]);
  try {
    vm.resetGeneric(new Uint8Array(c.program), c.pc, tryAsGas(c.gas), regs, memory);
  } catch (e) {
    return { status: S.INVALID_PROGRAM, pc: 0, gas: 0n, regs: [], exitArg: 0, dumps: [] };
  }
  vm.runProgram();
  for (const regs of c.replies) {
    if (vm.getStatus() !== S.HOST) break;
    for (let i = 0; i < 13; i++) vm.registers.setU64(i, regs[i]);
    vm.runProgram(); // continues after the ecalli
  }
  const status = vm.getStatus();
  const out = [];
  for (let i = 0; i < 13; i++) out.push(vm.registers.getU64(i));
  return {
    status,
    pc: vm.getPC(),
    gas: BigInt(vm.gas.get()),
    regs: out,
    exitArg: status === S.PAGE_FAULT || status === S.HOST ? (vm.getExitParam() ?? 0) : 0,
    dumps: dumpPages(c, (a) => vm.getMemoryPage(a / PAGE)),
  };
}

await serve(hello, run);
