import fs from "node:fs";
import { HasMetadata, InputKind, prepareProgram, runProgram } from "@fluffylabs/anan-as";
const d = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const exe = prepareProgram(InputKind.Generic, HasMetadata.No, d.program, d["initial-regs"].map(BigInt),
  d["initial-page-map"].map(p => ({address: p.address, length: p.length, access: p["is-writable"] ? 2 : 1})),
  d["initial-memory"].map(c => ({address: c.address, data: c.contents})), [], 64);
const out = runProgram(exe, BigInt(d["initial-gas"]), d["initial-pc"], false, false, true);
console.log(out.status, out.pc, out.gas, out.registers.map(x=>x.toString(16)).join(" "));
for (const ch of out.memory) { const nz = ch.data.map((x,i)=>[i,x]).filter(([i,x])=>x); console.log(ch.address.toString(16), ch.data.length, JSON.stringify(nz.slice(0,12))); }
console.log("initial", JSON.stringify(d["initial-memory"].map(c=>[c.address.toString(16), c.contents.length, c.contents.slice(0,10)])));
