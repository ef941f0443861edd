/**
 * Positions the benchmarks hand straight to the processor's writer (no Redis, no decode): a row
 * with a steady GPS's constant fields, and the write as the consumer makes it.
 */
import { latestPerDevice, type PositionRow } from '../src/processor/rows.js';
import type { DeviceId, PositionWriter } from '../src/processor/writer.js';

type Varying = 'imei' | 'fixTime' | 'receivedAt' | 'latitude' | 'longitude' | 'speed' | 'io' | 'attributes';

export function benchRow(r: Pick<PositionRow, Varying>): PositionRow {
  return { altitude: 100, heading: 0, satellites: 12, priority: 0, eventIoId: 0, flags: [], ...r };
}

/** One write of `rows`: latest state per device, last seen = the rows' receive times. */
export function writeRows(writer: PositionWriter, rows: PositionRow[], ids: ReadonlyMap<string, DeviceId>) {
  return writer.write(rows, latestPerDevice(rows), new Map(rows.map((r) => [r.imei, r.receivedAt])), ids);
}
