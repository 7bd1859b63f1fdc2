// The external-target protocol v2 (../PROTOCOL.md) for Node adapters: framed
// messages on stdin/stdout, synchronous I/O (one request at a time), strict
// decoding with an ERROR reply for a bad message.
import fs from "node:fs";

export const VERSION = 2;
const MAX_REPLIES = 16;
export const PAGE = 4096;
const MAX_FRAME = 64 << 20;
const MAX_BATCH = 4096;
const MAX_PAGES = 64;
const MAX_MAPPED = 16 << 20;
const MAX_PROGRAM = 4 << 20;
export const T = { HELLO: 0x01, RUN: 0x02, BYE: 0x03, HELLO_OK: 0x81, RESULTS: 0x82, ERROR: 0xff };
export const F = { FMT_GP_RAW: 1, FMT_POLKAVM: 2, SEM_GP: 4, SEM_POLKAVM: 8, MEMORY: 16 };
export const S = { HALT: 0, PANIC: 1, PAGE_FAULT: 2, HOST: 3, OOG: 4, INVALID_PROGRAM: 5, CRASH: 6 };
export const SEM_GP = 0;
export const FMT_GP_RAW = 0;
export const WRITE = 2;

// A case the adapter cannot run (wrong profile/format): an ERROR reply, not a crash.
export class BadMessage extends Error {}

// stdout carries frames only: whatever a PVM library prints goes to stderr,
// or nowhere unless CPVM_ADAPTER_LOG is set.
export const log = process.env.CPVM_ADAPTER_LOG ? (...a) => process.stderr.write(`${a.join(" ")}\n`) : () => {};
console.log = console.info = console.warn = console.debug = log;

function readExactly(n) {
  const buf = Buffer.allocUnsafe(n);
  let got = 0;
  while (got < n) {
    let k;
    try {
      k = fs.readSync(0, buf, got, n - got, null);
    } catch (e) {
      if (e.code === "EAGAIN") continue;
      if (e.code === "EOF") return null;
      throw e;
    }
    if (k === 0) {
      if (got === 0) return null;
      throw new Error("end of input inside a frame");
    }
    got += k;
  }
  return buf;
}

function readFrame() {
  const hdr = readExactly(4);
  if (hdr === null) return null;
  const n = hdr.readUInt32LE(0);
  if (n > MAX_FRAME) throw new Error(`frame of ${n} bytes over the limit`);
  return n === 0 ? Buffer.alloc(0) : readExactly(n);
}

function writeFrame(payload) {
  const hdr = Buffer.allocUnsafe(4);
  hdr.writeUInt32LE(payload.length, 0);
  const all = Buffer.concat([hdr, payload]);
  let off = 0;
  while (off < all.length) {
    try {
      off += fs.writeSync(1, all, off, all.length - off);
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
    }
  }
}

class Reader {
  constructor(buf) {
    this.buf = buf;
    this.off = 0;
  }
  need(n, what) {
    if (n > this.buf.length - this.off) throw new BadMessage(`at byte ${this.off}: ${what}: truncated`);
  }
  u8(what) {
    this.need(1, what);
    return this.buf[this.off++];
  }
  u32(what) {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.off);
    this.off += 4;
    return v;
  }
  u64(what) {
    this.need(8, what);
    const v = this.buf.readBigUInt64LE(this.off);
    this.off += 8;
    return v;
  }
  bytes(n, what) {
    this.need(n, what);
    const v = this.buf.subarray(this.off, this.off + n);
    this.off += n;
    return v;
  }
  fail(msg) {
    throw new BadMessage(`at byte ${this.off}: ${msg}`);
  }
}

function decodeCase(r) {
  const c = {};
  c.semantics = r.u8("semantics");
  c.format = r.u8("format");
  if (c.semantics > 1) r.fail(`semantics ${c.semantics} unknown`);
  if (c.format > 1) r.fail(`format ${c.format} unknown`);
  c.pc = r.u32("pc");
  c.gas = BigInt.asIntN(64, r.u64("gas"));
  c.regs = [];
  for (let i = 0; i < 13; i++) c.regs.push(r.u64("regs"));
  const plen = r.u32("program_len");
  if (plen > MAX_PROGRAM) r.fail(`program_len ${plen} over the limit`);
  c.program = r.bytes(plen, "program");
  const npages = r.u32("npages");
  if (npages > MAX_PAGES) r.fail(`npages ${npages} over the limit`);
  c.pages = [];
  let mapped = 0;
  for (let i = 0; i < npages; i++) {
    const address = r.u32("page.address");
    const length = r.u32("page.length");
    const access = r.u8("page.access");
    const dlen = r.u32("page.data_len");
    if (address % PAGE || length % PAGE || length === 0) r.fail(`page ${i}: not whole pages`);
    if (address + length > 2 ** 32) r.fail(`page ${i}: wraps around`);
    if (access !== 1 && access !== 2) r.fail(`page ${i}: access ${access} unknown`);
    if (dlen > length) r.fail(`page ${i}: data longer than the range`);
    mapped += length;
    if (mapped > MAX_MAPPED) r.fail("too many bytes mapped");
    for (const q of c.pages)
      if (address < q.address + q.length && q.address < address + length) r.fail(`page ${i} overlaps`);
    c.pages.push({ address, length, access, data: r.bytes(dlen, "page.data") });
  }
  // v2 host-call policy: the k-th ecalli resumes with replies[k] as registers
  const nreplies = r.u32("nreplies");
  if (nreplies > MAX_REPLIES) r.fail(`nreplies ${nreplies} over the limit`);
  c.replies = [];
  for (let k = 0; k < nreplies; k++) {
    const regs = [];
    for (let i = 0; i < 13; i++) regs.push(r.u64("replies"));
    c.replies.push(regs);
  }
  return c;
}

function str(s) {
  const b = Buffer.from(s, "utf8");
  const h = Buffer.allocUnsafe(4);
  h.writeUInt32LE(b.length, 0);
  return [h, b];
}

function errorMessage(msg) {
  return Buffer.concat([Buffer.from([T.ERROR]), ...str(String(msg).slice(0, 1000))]);
}

function allZero(d) {
  if (d.byteOffset % 4 === 0 && d.length % 4 === 0) {
    const w = new Uint32Array(d.buffer, d.byteOffset, d.length / 4);
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
    return true;
  }
  return !d.some((x) => x !== 0);
}

// Non-zero 4 KiB pages of the case's writable ranges, ascending, copied;
// readPage(a) returns the page at `a` (Uint8Array of up to PAGE bytes, may be
// a view the library reuses) or null when unreadable.
export function dumpPages(c, readPage) {
  const out = [];
  for (const p of c.pages) {
    if (p.access !== WRITE) continue;
    for (let a = p.address; a < p.address + p.length; a += PAGE) {
      const d = readPage(a);
      if (!d || allZero(d)) continue;
      // zero-extended when a library keeps a page shorter (lazily grown)
      const full = new Uint8Array(PAGE);
      full.set(d.subarray(0, PAGE));
      out.push({ address: a, data: full });
    }
  }
  out.sort((x, y) => x.address - y.address);
  return out;
}

function encodeResult(parts, res) {
  const b = Buffer.allocUnsafe(1 + 4 + 8 + 13 * 8 + 4 + 4);
  let o = 0;
  b[o++] = res.status;
  b.writeUInt32LE(res.pc >>> 0, o);
  o += 4;
  b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(res.gas)), o);
  o += 8;
  for (let i = 0; i < 13; i++) {
    b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(res.regs[i] ?? 0n)), o);
    o += 8;
  }
  b.writeUInt32LE((res.exitArg ?? 0) >>> 0, o);
  o += 4;
  const dumps = res.dumps ?? [];
  b.writeUInt32LE(dumps.length, o);
  parts.push(b);
  for (const d of dumps) {
    const a = Buffer.allocUnsafe(4);
    a.writeUInt32LE(d.address, 0);
    parts.push(a, Buffer.from(d.data.buffer, d.data.byteOffset, PAGE));
  }
}

// Serves until BYE or end of input. `hello` = {name, version, features,
// maxGas}; `run(case)` returns {status, pc, gas, regs, exitArg, dumps};
// `afterBatch()` (optional, may be async) runs after each reply is sent.
export async function serve(hello, run, afterBatch) {
  for (;;) {
    let frame;
    try {
      frame = readFrame();
    } catch (e) {
      process.stderr.write(`${hello.name}: ${e.message}\n`);
      process.exit(1);
    }
    if (frame === null) process.exit(0);
    let reply;
    try {
      const r = new Reader(frame);
      const type = r.u8("type");
      if (type === T.HELLO) {
        const v = r.u32("version");
        if (r.off !== frame.length) r.fail("trailing bytes");
        if (v !== VERSION) throw new BadMessage(`unsupported protocol version ${v}`);
        const tail = Buffer.allocUnsafe(12);
        tail.writeUInt32LE(hello.features, 0);
        tail.writeBigUInt64LE(BigInt(hello.maxGas), 4);
        const ver = Buffer.allocUnsafe(4);
        ver.writeUInt32LE(VERSION, 0);
        reply = Buffer.concat([Buffer.from([T.HELLO_OK]), ver, ...str(hello.name), ...str(hello.version), tail]);
      } else if (type === T.RUN) {
        const n = r.u32("count");
        if (n === 0 || n > MAX_BATCH) r.fail(`count ${n} outside [1, ${MAX_BATCH}]`);
        const cases = [];
        for (let i = 0; i < n; i++) cases.push(decodeCase(r));
        if (r.off !== frame.length) r.fail("trailing bytes");
        const head = Buffer.allocUnsafe(5);
        head[0] = T.RESULTS;
        head.writeUInt32LE(n, 1);
        const parts = [head];
        for (const c of cases) {
          let res;
          try {
            res = run(c);
          } catch (e) {
            if (e instanceof BadMessage) throw e;
            // The PVM itself threw on a well-formed case: a target bug, reported as a result.
            log(`${hello.name}: crash: ${e.stack}`);
            res = { status: S.CRASH, pc: 0, gas: 0n, regs: [], exitArg: 0, dumps: [] };
          }
          encodeResult(parts, res);
        }
        reply = Buffer.concat(parts);
      } else if (type === T.BYE) {
        process.exit(0);
      } else {
        throw new BadMessage(`unknown message type 0x${type.toString(16)}`);
      }
    } catch (e) {
      if (!(e instanceof BadMessage)) process.stderr.write(`${hello.name}: ${e.stack}\n`);
      reply = errorMessage(e.message);
    }
    writeFrame(reply);
    if (afterBatch) await afterBatch();
  }
}
