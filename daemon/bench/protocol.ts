/**
 * `npm run bench:protocol`: decodes one generated corpus (Codec 8 and 8E; packets of 1, 10 and 50
 * records with 10 IO elements each; CRC checked) with our decoder and with complete-teltonika-parser
 * in the same run, and prints records/s and the ratio. Absolute figures are noisy on a shared
 * machine; compare the ratio.
 *
 * The peer only accepts hex strings, so it gets them precomputed (its hex conversion is not timed);
 * ours gets the Buffers a socket or a Redis stream would hand over.
 */
import { createRequire } from 'node:module';
import { checkAvlFrame, decodeAvlFrame, type EncodableRecord, encodeAvlFrame } from '../src/protocol/index.js';

const require = createRequire(import.meta.url);
const { ProtocolParser } = require('complete-teltonika-parser') as {
  ProtocolParser: new (hex: string) => { Content: { AVL_Datas: unknown[] } | null };
};

/** Small deterministic PRNG so every run decodes the same corpus. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makeRecords(n: number, codec: number, rand: () => number): EncodableRecord[] {
  const start = Date.UTC(2026, 10, 25, 8, 0, 0);
  const records: EncodableRecord[] = [];
  for (let i = 0; i < n; i++) {
    const int = (max: number) => Math.floor(rand() * max);
    // 10 IO elements: 4 × 1 byte, 3 × 2 bytes, 2 × 4 bytes, 1 × 8 bytes (a typical FMB record).
    const ids = [239, 240, 21, 69, 66, 67, 24, 16, 241, codec === 0x8e ? 11 : 78];
    const values = [int(2), int(2), int(6), int(4), 11000 + int(3000), 4000 + int(200), int(130)];
    values.push(int(4_000_000_000), 24602, int(2 ** 40));
    records.push({
      timestamp: start + i * 10_000,
      priority: int(3),
      longitude: (250000000 + int(1_000_000)) / 1e7,
      latitude: (-330000000 - int(1_000_000)) / 1e7,
      altitude: int(600) - 50,
      angle: int(360),
      satellites: int(20),
      speed: int(130),
      eventIoId: 0,
      io: { ids, values, widths: [1, 1, 1, 1, 2, 2, 2, 4, 4, 8] },
    });
  }
  return records;
}

interface Case {
  name: string;
  recordsPerPacket: number;
  frames: Buffer[];
  hex: string[];
}

function buildCases(): Case[] {
  const rand = rng(20261125);
  const cases: Case[] = [];
  for (const codec of [0x08, 0x8e]) {
    for (const n of [1, 10, 50]) {
      const frames: Buffer[] = [];
      for (let k = 0; k < 64; k++) frames.push(encodeAvlFrame(codec, makeRecords(n, codec, rand)));
      cases.push({
        name: `${codec === 0x08 ? 'Codec 8 ' : 'Codec 8E'} × ${String(n).padStart(2)}`,
        recordsPerPacket: n,
        frames,
        hex: frames.map((f) => f.toString('hex')),
      });
    }
  }
  return cases;
}

let sink = 0;

/** Runs decodeOne over the corpus for about `ms` milliseconds; returns records per second. */
function measure(c: Case, ms: number, decodeOne: (i: number) => number): number {
  const deadline = performance.now() + ms;
  let records = 0;
  let i = 0;
  const began = performance.now();
  let now = began;
  while (now < deadline) {
    for (let k = 0; k < 16; k++) {
      records += decodeOne(i);
      i = (i + 1) % c.frames.length;
    }
    now = performance.now();
  }
  return records / ((now - began) / 1000);
}

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(0)}k`;
}

function main(): void {
  const cases = buildCases();
  const ms = Number(process.env.BENCH_MS ?? 1000);
  const rounds = 5;

  // Both decoders must agree on the corpus before anything is timed.
  for (const c of cases) {
    const ours = decodeAvlFrame(c.frames[0]!).records.length;
    const peer = new ProtocolParser(c.hex[0]!).Content?.AVL_Datas.length;
    if (ours !== c.recordsPerPacket || peer !== c.recordsPerPacket) {
      throw new Error(`${c.name}: decoders disagree (ours ${ours}, peer ${peer})`);
    }
  }

  console.log(
    `protocol decode benchmark — node ${process.version}, best of ${rounds} alternating rounds of ${ms / rounds} ms, CRC checked by both`,
  );
  console.log('case             ours decode   ours check   complete-teltonika-parser   ratio (decode)');
  let oursTotal = 0;
  let peerTotal = 0;
  for (const c of cases) {
    const peerOne = (i: number) => new ProtocolParser(c.hex[i]!).Content!.AVL_Datas.length;
    const oursOne = (i: number) => {
      const p = decodeAvlFrame(c.frames[i]!);
      sink += p.records[0]!.timestamp;
      return p.records.length;
    };
    measure(c, ms / 4, peerOne);
    measure(c, ms / 4, oursOne);
    // Alternate short rounds and keep each decoder's best: other work on the machine only ever
    // slows a round down, so the best round is the least disturbed one.
    let peer = 0;
    let ours = 0;
    let check = 0;
    for (let k = 0; k < rounds; k++) {
      peer = Math.max(peer, measure(c, ms / rounds, peerOne));
      ours = Math.max(ours, measure(c, ms / rounds, oursOne));
      check = Math.max(
        check,
        measure(c, ms / rounds / 2, (i) => checkAvlFrame(c.frames[i]!).records),
      );
    }
    oursTotal += ours;
    peerTotal += peer;
    console.log(
      `${c.name.padEnd(16)} ${fmt(ours).padStart(8)} rec/s ${fmt(check).padStart(8)} rec/s ${fmt(peer).padStart(15)} rec/s ${(ours / peer).toFixed(1).padStart(13)}×`,
    );
  }
  console.log(
    `mean of the six cases: ours ${fmt(oursTotal / cases.length)} rec/s, peer ${fmt(peerTotal / cases.length)} rec/s, ratio ${(oursTotal / peerTotal).toFixed(1)}×`,
  );
  if (sink === 42) console.log('');
}

main();
