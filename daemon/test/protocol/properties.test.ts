/**
 * Property tests: encode → decode round trips for every codec, hostile input only ever produces a
 * ProtocolError, and stream chunking never changes the frames.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type AvlRecord,
  checkAvlFrame,
  crc16ibm,
  decodeAvlFrame,
  decodeCommandFrame,
  decodeUdpDatagram,
  type EncodableRecord,
  encodeAvlFrame,
  encodeCodec12Command,
  encodeCodec14Response,
  encodeImeiLogin,
  encodeUdpDatagram,
  IO_DICTIONARY,
  type IoValue,
  ioJsonText,
  ioToJson,
  namedAttributes,
  namedAttributesText,
  ProtocolError,
  parseUdpDatagram,
  type TcpFrame,
  TcpFramer,
} from '../../src/protocol/index.js';
import { catchError, encodableRecord } from './helpers.js';

const CODECS = [0x08, 0x8e, 0x10] as const;

function valueArb(width: number): fc.Arbitrary<IoValue> {
  switch (width) {
    case 1:
      return fc.integer({ min: 0, max: 0xff });
    case 2:
      return fc.integer({ min: 0, max: 0xffff });
    case 4:
      return fc.integer({ min: 0, max: 0xffffffff });
    case 8:
      // Below 2^53 decoding yields a number, above it an exact bigint.
      return fc.oneof(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }),
      );
    default:
      return fc.uint8Array({ minLength: 0, maxLength: 40 });
  }
}

function recordArb(codec: number): fc.Arbitrary<EncodableRecord> {
  const idMax = codec === 0x08 ? 0xff : 0xffff;
  const group = (width: number) =>
    fc
      .array(fc.tuple(fc.integer({ min: 0, max: idMax }), valueArb(width)), { maxLength: 4 })
      .map((els) => els.map(([id, value]) => ({ id, value, width })));
  const groups = codec === 0x8e ? [1, 2, 4, 8, 0] : [1, 2, 4, 8];
  return fc.record({
    timestamp: fc.integer({ min: 0, max: 2 ** 43 }),
    priority: fc.integer({ min: 0, max: 2 }),
    longitude: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((x) => x / 1e7),
    latitude: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }).map((x) => x / 1e7),
    altitude: fc.integer({ min: -32768, max: 32767 }),
    angle: fc.integer({ min: 0, max: 0xffff }),
    satellites: fc.integer({ min: 0, max: 0xff }),
    speed: fc.integer({ min: 0, max: 0xffff }),
    eventIoId: fc.integer({ min: 0, max: idMax }),
    generationType: codec === 0x10 ? fc.integer({ min: 0, max: 0xff }) : fc.constant(null),
    io: fc.tuple(...groups.map(group)).map((gs) => {
      const els = gs.flat();
      return { ids: els.map((e) => e.id), values: els.map((e) => e.value), widths: els.map((e) => e.width) };
    }),
  });
}

function expectSame(decoded: AvlRecord[], input: EncodableRecord[]): void {
  expect(decoded).toHaveLength(input.length);
  decoded.forEach((d, i) => {
    const { io, ...rest } = input[i]!;
    expect(d).toEqual({ ...rest, io: { ids: io.ids, values: io.values } });
  });
}

describe('round trips', () => {
  it('ioJsonText is the text of ioToJson, whatever the order and repeats of the ids', () => {
    // Ids from a small range, so repeats and descending runs are common (frames group by size, not id).
    const entry = fc.tuple(
      fc.integer({ min: 0, max: 12 }),
      fc.oneof(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }),
        fc.uint8Array({ maxLength: 8 }),
      ),
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 10 }), (list) => {
        const io = { ids: list.map(([id]) => id), values: list.map(([, v]) => v) };
        expect(ioJsonText(io)).toBe(JSON.stringify(ioToJson(io)));
      }),
      { numRuns: 500 },
    );
  });

  it('namedAttributesText is the text of namedAttributes, for either family', () => {
    // Known ids (ICCID halves, BLE and beacon data among them) and a few unknown ones, repeats included.
    const known = [...IO_DICTIONARY.keys(), 80, 113, 205, 9999];
    const value = fc.oneof(
      fc.integer({ min: 0, max: 0xffffffff }),
      fc.constantFrom(0, 1, 0x7fff, 0x8000, 0xffff),
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.uint8Array({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...known), value), { maxLength: 10 }),
        fc.constantFrom(undefined, 'fmb' as const, 'fm63' as const),
        (list, family) => {
          const io = { ids: list.map(([id]) => id), values: list.map(([, v]) => v) };
          expect(namedAttributesText(io, family)).toBe(JSON.stringify(namedAttributes(io, family)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  for (const codec of CODECS) {
    it(`codec 0x${codec.toString(16)}: encodeAvlFrame → decodeAvlFrame gives the records back`, () => {
      fc.assert(
        fc.property(fc.array(recordArb(codec), { maxLength: 5 }), (records) => {
          const frame = encodeAvlFrame(codec, records);
          expect(checkAvlFrame(frame)).toEqual({ codec, records: records.length });
          expectSame(decodeAvlFrame(frame).records, records);
          // Serialising never throws either (bigint → string, bytes → hex).
          for (const r of records) {
            expect(ioJsonText(r.io)).toBe(JSON.stringify(ioToJson(r.io)));
            JSON.stringify(namedAttributes(r.io));
          }
        }),
        { numRuns: 200 },
      );
    });

    it(`codec 0x${codec.toString(16)}: encodeUdpDatagram → decodeUdpDatagram gives header and records back`, () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 0xffff }),
          fc.integer({ min: 0, max: 0xff }),
          fc.stringMatching(/^[0-9]{15}$/),
          fc.array(recordArb(codec), { maxLength: 3 }),
          (packetId, avlPacketId, imei, records) => {
            const dgram = encodeUdpDatagram(packetId, avlPacketId, imei, codec, records);
            expect(parseUdpDatagram(dgram)).toEqual({ packetId, avlPacketId, imei, codec, records: records.length });
            const d = decodeUdpDatagram(dgram);
            expect(d.packet.codec).toBe(codec);
            expectSame(d.packet.records, records);
          },
        ),
        { numRuns: 100 },
      );
    });
  }

  it('keeps 8-byte values beyond 2^53 exact', () => {
    const big = 2n ** 64n - 3n;
    const rec = encodableRecord({ io: { ids: [78, 11], values: [big, 2 ** 53 - 1] } });
    const [r] = decodeAvlFrame(encodeAvlFrame(0x8e, [rec])).records;
    expect(r!.io.values).toEqual([big, 2 ** 53 - 1]);
    expect(ioToJson(r!.io)).toEqual({ 78: '18446744073709551613', 11: 9007199254740991 });
  });
});

/** Runs fn and fails on anything thrown that is not a ProtocolError. */
function onlyProtocolErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    expect(err.offset).toBeGreaterThanOrEqual(0);
  }
}

function withFixedCrc(frame: Buffer): Buffer {
  if (frame.length < 12) return frame;
  const out = Buffer.from(frame);
  const end = out.length - 4;
  out.writeUInt32BE(crc16ibm(out, 8, end), end);
  return out;
}

const mutation = (base: fc.Arbitrary<Buffer>) =>
  fc
    .tuple(
      base,
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      fc.option(fc.nat(), { nil: undefined }),
      fc.boolean(),
    )
    .map(([bytes, flips, cut, fixLength]) => {
      let b = Buffer.from(bytes);
      for (const [pos, v] of flips) if (b.length > 0) b[pos % b.length] = v;
      if (cut !== undefined && b.length > 0) b = b.subarray(0, cut % (b.length + 1));
      // Keep the envelope consistent now and then so the record parser sees the damage.
      if (fixLength && b.length >= 12) b.writeUInt32BE(b.length - 12, 4);
      return b;
    });

const validFrame = fc
  .constantFrom(...CODECS)
  .chain((codec) => fc.array(recordArb(codec), { minLength: 1, maxLength: 3 }).map((rs) => encodeAvlFrame(codec, rs)));

describe('hostile input', () => {
  it('random bytes only ever produce a ProtocolError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (arr) => {
        const b = Buffer.from(arr);
        onlyProtocolErrors(() => checkAvlFrame(b));
        onlyProtocolErrors(() => decodeAvlFrame(b));
        onlyProtocolErrors(() => decodeAvlFrame(b, { skipCrc: true, ioGroup16: true }));
        onlyProtocolErrors(() => decodeCommandFrame(b, { skipCrc: true }));
        onlyProtocolErrors(() => decodeUdpDatagram(b));
        onlyProtocolErrors(() => new TcpFramer({ maxFrameBytes: 1024 }).push(b));
      }),
      { numRuns: 500 },
    );
  });

  it('interpreting random NX payloads (BLE sensors, beacon list, VIN) never throws', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (arr, big) => {
        const io = {
          ids: [548, 10831, 11317, 385, 256, 78, 17, 11, 14],
          values: [arr, arr, arr, arr, arr, big, 65535, big, 7],
        };
        JSON.stringify(namedAttributes(io));
        JSON.stringify(ioToJson(io));
      }),
      { numRuns: 500 },
    );
  });

  it('mutated valid frames (CRC recomputed, so records are parsed) only ever produce a ProtocolError', () => {
    fc.assert(
      fc.property(mutation(validFrame), (b) => {
        const fixed = withFixedCrc(b);
        onlyProtocolErrors(() => decodeAvlFrame(fixed));
        onlyProtocolErrors(() => decodeAvlFrame(fixed, { ioGroup16: true }));
        onlyProtocolErrors(() => checkAvlFrame(b));
        onlyProtocolErrors(() => decodeCommandFrame(fixed));
        onlyProtocolErrors(() => decodeUdpDatagram(b));
        onlyProtocolErrors(() => new TcpFramer({ maxFrameBytes: 65536 }).push(b));
      }),
      { numRuns: 500 },
    );
  });

  it('mutated command frames only ever produce a ProtocolError', () => {
    const cmd = fc
      .tuple(fc.string({ minLength: 1, maxLength: 30 }), fc.boolean())
      .map(([t, c14]) => (c14 ? encodeCodec14Response('352093081452251', t) : encodeCodec12Command(t)));
    fc.assert(
      fc.property(mutation(cmd), (b) => {
        onlyProtocolErrors(() => decodeCommandFrame(withFixedCrc(b)));
      }),
      { numRuns: 300 },
    );
  });

  it('huge counts and lengths inside a small frame fail fast with a typed error', () => {
    // One Codec 8E record announcing 65535 NX elements of 65535 bytes each.
    const data = Buffer.alloc(3 + 24 + 14);
    data[0] = 0x8e;
    data[1] = 1;
    data.writeUInt16BE(0xffff, 3 + 24 + 12); // NX count
    data[data.length - 1] = 1;
    const frame = Buffer.alloc(data.length + 12);
    frame.writeUInt32BE(data.length, 4);
    data.copy(frame, 8);
    frame.writeUInt32BE(crc16ibm(data), 8 + data.length);
    expect(catchError(() => decodeAvlFrame(frame)).code).toBe('TRUNCATED');
  });
});

describe('stream chunking', () => {
  const streamArb = fc
    .array(
      fc.oneof(
        fc.constant(Buffer.from([0xff])),
        fc.stringMatching(/^[0-9]{15}$/).map(encodeImeiLogin),
        validFrame,
        fc.string({ minLength: 1, maxLength: 20 }).map(encodeCodec12Command),
      ),
      { minLength: 1, maxLength: 6 },
    )
    .map((parts) => Buffer.concat(parts));

  const collect = (chunks: Buffer[]): TcpFrame[] => {
    const f = new TcpFramer({ maxFrameBytes: 65536 });
    const out: TcpFrame[] = [];
    for (const c of chunks) out.push(...f.push(c));
    expect(f.buffered).toBe(0);
    return out;
  };

  it('cutting a stream at any set of points yields the same frames', () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.nat(), { maxLength: 10 }), (stream, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const chunks: Buffer[] = [];
        let prev = 0;
        for (const p of [...points, stream.length]) {
          chunks.push(stream.subarray(prev, p));
          prev = p;
        }
        expect(collect(chunks)).toEqual(collect([stream]));
      }),
      { numRuns: 200 },
    );
  });

  it('cutting one stream at every single point (and byte by byte) yields the same frames', () => {
    const stream = fc.sample(streamArb, { numRuns: 1, seed: 42 })[0]!;
    const whole = collect([stream]);
    for (let p = 0; p <= stream.length; p++) {
      expect(collect([stream.subarray(0, p), stream.subarray(p)])).toEqual(whole);
    }
    expect(collect([...stream].map((b) => Buffer.from([b])))).toEqual(whole);
  });
});
