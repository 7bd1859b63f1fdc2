import fs from "node:fs";
import { HasMetadata, InputKind, prepareProgram, runProgram } from "@fluffylabs/anan-as";
const d = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
try {
const exe = prepareProgram(InputKind.Generic, HasMetadata.No, d.program, d["initial-regs"].map(BigInt),
  d["initial-page-map"].map(p => ({address: p.address, length: p.length, access: p["is-writable"] ? 2 : 1})),
  d["initial-memory"].map(c => ({address: c.address, data: c.contents})), [], 64);
console.log("ok");
} catch (e) { console.log("threw", e.message); }
console.log(d["initial-page-map"].map(p=>[p.address.toString(16), p.length.toString(16), p["is-writable"]]));
console.log(d["initial-memory"].map(c=>[c.address.toString(16), c.contents.length]));
