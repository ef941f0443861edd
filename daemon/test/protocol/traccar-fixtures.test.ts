/**
 * Every row of the Traccar capture corpus (daemon/test/fixtures/teltonika-traccar.tsv). The `notes`
 * column holds facts computed by an independent decoder (record counts, first/last record time and
 * position, IO counts, NX ids, command payloads, which CRCs are wrong); they are asserted here.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type AvlRecord,
  checkAvlFrame,
  commandReplyText,
  decodeAvlFrame,
  decodeCommandFrame,
  decodeUdpDatagram,
  isCommandCodec,
  namedAttributes,
  TcpFramer,
  toHex,
} from '../../src/protocol/index.js';
import { catchError } from './helpers.js';

interface Row {
  id: string;
  transport: string;
  codec: string;
  hex: string;
  expected: string;
  crcOk: string;
  notes: string;
}

const rows: Row[] = readFileSync(new URL('../fixtures/teltonika-traccar.tsv', import.meta.url), 'utf8')
  .split('\n')
  .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('id\t'))
  .map((l) => {
    const [id, transport, codec, hex, expected, crcOk, notes] = l.split('\t');
    return {
      id: id!,
      transport: transport!,
      codec: codec!,
      hex: hex!,
      expected: expected!,
      crcOk: crcOk!,
      notes: notes!,
    };
  });

interface PositionFact {
  time: string;
  lat: number;
  lon: number;
  alt?: number;
  sats?: number;
  speed?: number;
  event?: number;
  gen?: number;
  io?: number;
}

function facts(notes: string) {
  const rec0 = notes.match(
    /rec0 (\S+) lat=(\S+) lon=(\S+) alt=(-?\d+) sats=(\d+) speed=(\d+) event=(\d+)(?: gen=(\d+))? io=(\d+)/,
  );
  const last = notes.match(/last (\S+) lat=(\S+) lon=([^;\s]+)/);
  const records = notes.match(/records=(\d+)/);
  const nx = notes.match(/NX ids=\[([^\]]*)\]/);
  const big = notes.match(/ids>255: \[([^\]]*)\](\.\.\.)?/);
  const cmd = notes.match(/type=([0-9a-f]{2}) size=(\d+)(?: ts\(4B,s\)=(\d+))? payload=(.*?)(?:; |$)/);
  const list = (s: string) => (s.trim() === '' ? [] : s.split(',').map((x) => Number(x.trim())));
  return {
    records: records ? Number(records[1]) : undefined,
    rec0: rec0
      ? ({
          time: rec0[1]!,
          lat: Number(rec0[2]),
          lon: Number(rec0[3]),
          alt: Number(rec0[4]),
          sats: Number(rec0[5]),
          speed: Number(rec0[6]),
          event: Number(rec0[7]),
          gen: rec0[8] === undefined ? undefined : Number(rec0[8]),
          io: Number(rec0[9]),
        } satisfies PositionFact)
      : undefined,
    last: last ? ({ time: last[1]!, lat: Number(last[2]), lon: Number(last[3]) } satisfies PositionFact) : undefined,
    nxIds: nx ? list(nx[1]!) : undefined,
    bigIds: big ? { ids: list(big[1]!), truncated: big[2] !== undefined } : undefined,
    command: cmd ? { type: Number.parseInt(cmd[1]!, 16), size: Number(cmd[2]), payload: cmd[4]! } : undefined,
    noFix: notes.includes('sats=0 (no fix)'),
    negative: notes.includes('negative coordinates present'),
  };
}

function expectPosition(r: AvlRecord, f: PositionFact): void {
  expect(new Date(r.timestamp).toISOString()).toBe(f.time);
  expect(r.latitude).toBeCloseTo(f.lat, 7);
  expect(r.longitude).toBeCloseTo(f.lon, 7);
  if (f.alt !== undefined) expect(r.altitude).toBe(f.alt);
  if (f.sats !== undefined) expect(r.satellites).toBe(f.sats);
  if (f.speed !== undefined) expect(r.speed).toBe(f.speed);
  if (f.event !== undefined) expect(r.eventIoId).toBe(f.event);
  if (f.gen !== undefined) expect(r.generationType).toBe(f.gen);
  if (f.io !== undefined) expect(r.io.ids).toHaveLength(f.io);
}

function expectAvlFacts(records: AvlRecord[], notes: string): void {
  const f = facts(notes);
  expect(f.records).toBeDefined();
  expect(records).toHaveLength(f.records!);
  expectPosition(records[0]!, f.rec0!);
  if (f.last) expectPosition(records[records.length - 1]!, f.last);
  const nxIds = new Set<number>();
  const bigIds = new Set<number>();
  for (const r of records) {
    r.io.ids.forEach((id, i) => {
      if (r.io.values[i] instanceof Uint8Array) nxIds.add(id);
      if (id > 255) bigIds.add(id);
    });
  }
  if (f.nxIds) expect([...nxIds].sort((a, b) => a - b)).toEqual(f.nxIds);
  if (f.bigIds) {
    const sorted = [...bigIds].sort((a, b) => a - b);
    if (f.bigIds.truncated) expect(sorted.slice(0, f.bigIds.ids.length)).toEqual(f.bigIds.ids);
    else expect(sorted).toEqual(f.bigIds.ids);
  }
  if (f.noFix) expect(records.some((r) => r.satellites === 0)).toBe(true);
  if (f.negative) expect(records.some((r) => r.latitude < 0 || r.longitude < 0)).toBe(true);
}

/** Which refusal a frame with a wrong trailer gets: length problems are found before the CRC. */
function expectedRefusal(row: Row): string {
  const m = row.notes.match(/data-length field=(\d+) implies (\d+) bytes total, frame has (\d+)/);
  if (!m) return 'CRC_MISMATCH';
  const d = Number(m[1]);
  if (d < 3) return 'LENGTH_TOO_SMALL';
  return Number(m[2]) > Number(m[3]) ? 'TRUNCATED' : 'TRAILING_BYTES';
}

describe('Traccar capture corpus', () => {
  it('has every row (54 vectors)', () => {
    expect(rows).toHaveLength(54);
  });

  for (const row of rows) {
    const bytes = Buffer.from(row.hex, 'hex');
    const extended = row.expected.includes('protocol.extended=true');

    if (row.codec === 'ping' || row.codec === 'imei') {
      it(`${row.id}: framer yields ${row.codec === 'ping' ? 'the keep-alive first' : 'the IMEI login'}`, () => {
        const frames = new TcpFramer({ maxFrameBytes: 65536 }).push(bytes);
        if (row.codec === 'ping') {
          expect(frames[0]).toEqual({ kind: 'ping' });
          if (bytes.length > 1) expect(frames[1]).toEqual({ kind: 'imei', imei: '123456789012345' });
        } else {
          expect(frames).toEqual([{ kind: 'imei', imei: '123456789012345' }]);
        }
      });
      continue;
    }

    if (row.transport === 'udp') {
      it(`${row.id}: UDP datagram decodes to the stated header and record`, () => {
        const d = decodeUdpDatagram(bytes);
        expect(d.packetId).toBe(0xcafe);
        expect(d.avlPacketId).toBe(0x22);
        expect(d.imei).toBe('357454072713975');
        expectAvlFacts(d.packet.records, row.notes);
      });
      continue;
    }

    const codec = Number.parseInt(row.codec, 16);

    if (row.crcOk === 'no') {
      const code = expectedRefusal(row);
      it(`${row.id}: refused with ${code}`, () => {
        const err = catchError(() => (isCommandCodec(codec) ? decodeCommandFrame(bytes) : decodeAvlFrame(bytes)));
        expect(err.code).toBe(code);
        if (!isCommandCodec(codec)) expect(catchError(() => checkAvlFrame(bytes)).code).toBe(code);
        if (code === 'CRC_MISMATCH') {
          const computed = row.notes.match(/computed=([0-9a-f]{4})/)![1]!;
          expect(err.message).toContain(`0x${computed}`);
          expect(err.offset).toBe(bytes.length - 4);
        }
      });
      if (code === 'CRC_MISMATCH' && (codec === 0x08 || codec === 0x8e || codec === 0x10)) {
        it(`${row.id}: with the CRC skipped, still decodes to the stated values`, () => {
          expectAvlFacts(decodeAvlFrame(bytes, { skipCrc: true }).records, row.notes);
        });
      }
      continue;
    }

    if (codec === 0x07) {
      it(`${row.id}: GH3000 codec is refused with a clear UNSUPPORTED_CODEC (CRC is fine)`, () => {
        const err = catchError(() => decodeAvlFrame(bytes));
        expect(err.code).toBe('UNSUPPORTED_CODEC');
        expect(err.offset).toBe(8);
        expect(err.message).toMatch(/GH3000/);
      });
      continue;
    }

    if (isCommandCodec(codec)) {
      it(`${row.id}: command frame decodes to the stated type and payload`, () => {
        const c = decodeCommandFrame(bytes);
        expect(c.codec).toBe(codec);
        const f = facts(row.notes).command!;
        expect(c.type).toBe(f.type);
        if (codec === 0x0d && row.id.endsWith('L063')) {
          // Wiki-style Codec 13: 8-byte millisecond timestamp, then "getinfo" (see notes).
          expect(new Date(c.timestamp!).toISOString()).toBe('2019-07-19T13:52:52.000Z');
          expect(commandReplyText(c)).toBe('getinfo');
        } else if (codec === 0x0d) {
          expect(c.timestamp).toBe(Number(row.notes.match(/ts\(4B,s\)=(\d+)/)![1]) * 1000);
          expect(c.payload.length).toBe(f.size - 4);
          expect(c.payload.toString('latin1').replace(/\r\n/g, '\\r\\n')).toBe(f.payload);
        } else {
          expect(c.payload.length).toBe(f.size);
          const asText = c.payload.toString('latin1').replace(/\r\n/g, '\\r\\n');
          expect([asText, toHex(c.payload)]).toContain(f.payload);
        }
        if (row.expected.includes('driverUniqueId=')) {
          const id = row.expected.match(/driverUniqueId=(\d+)/)![1]!;
          expect(commandReplyText(c).split('|')[4]).toBe(id);
        }
      });
      continue;
    }

    it(`${row.id}: ${row.codec} frame passes checkAvlFrame and decodes to the stated values`, () => {
      const f = facts(row.notes);
      if (!extended) expect(checkAvlFrame(bytes)).toEqual({ codec, records: f.records });
      const packet = decodeAvlFrame(bytes, { ioGroup16: extended });
      expect(packet.codec).toBe(codec);
      expectAvlFacts(packet.records, row.notes);
      const attr = row.expected.match(/position attr (\w+)=(\S+)/);
      if (attr) {
        // Traccar's attribute names map onto ours; BLE sensor fields keep Traccar's tag<n><Field> form.
        const names: Record<string, string> = { eyeTemp1: 'eyeTemperature1' };
        const attrs = namedAttributes(packet.records[0]!.io);
        expect(attrs[names[attr[1]!] ?? attr[1]!]).toBe(Number(attr[2]));
      }
    });

    if (extended) {
      it(`${row.id}: without the 16-byte IO group option the layout is refused, not misread`, () => {
        const err = catchError(() => decodeAvlFrame(bytes));
        expect(['TRAILING_BYTES', 'TRUNCATED']).toContain(err.code);
      });
    }
  }
});
