/**
 * Interpretation of the two BLE payloads FMB devices put in NX elements. Pure reads with bounds
 * checks; a malformed payload yields null (the raw bytes stay in the IO list), never an exception.
 */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

function hex(b: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += HEX[b[i]!];
  return s;
}

/** One sensor of an "advanced BLE beacon data" element (ids 548, 10828, 10829, 10831, 11317). */
export interface BleTag {
  rssi?: number;
  id?: string;
  name?: string;
  lowBattery?: boolean;
  /** Millivolts. */
  voltage?: number;
  /** Millivolts. */
  battery?: number;
  /** Raw signed value as sent (unit not documented for this payload). */
  temperature?: number;
  humidity?: number;
  magnet?: boolean;
  motion?: boolean;
}

/**
 * Layout: one header byte, then per sensor a length byte and that many bytes of
 * `parameter id (1) | length (1) | value` entries.
 */
export function decodeBleTags(b: Uint8Array): BleTag[] | null {
  if (b.length < 1) return null;
  const tags: BleTag[] = [];
  let p = 1;
  while (p < b.length) {
    const end = p + 1 + b[p]!;
    if (end > b.length) return null;
    p += 1;
    const tag: BleTag = {};
    while (p < end) {
      if (p + 2 > end) return null;
      const param = b[p]!;
      const len = b[p + 1]!;
      const v = p + 2;
      p = v + len;
      if (p > end) return null;
      switch (param) {
        case 0:
          if (len >= 1) tag.rssi = (b[v]! << 24) >> 24;
          break;
        case 1:
          tag.id = hex(b, v, v + len);
          break;
        case 2:
          if (len >= 1) {
            const flags = b[v]!;
            if (flags & 0x40) tag.lowBattery = true;
            // Bit 7: a voltage byte follows, 10 mV steps above 2 V.
            if (flags & 0x80 && len >= 2) tag.voltage = b[v + 1]! * 10 + 2000;
          }
          break;
        case 5:
          tag.name = Buffer.from(b.buffer, b.byteOffset + v, len)
            .toString('utf8')
            .replace(/\0+$/, '');
          break;
        case 6:
          if (len >= 2) tag.temperature = (((b[v]! << 8) | b[v + 1]!) << 16) >> 16;
          break;
        case 7:
          if (len >= 1) tag.humidity = b[v]!;
          break;
        case 8:
          if (len >= 1) tag.magnet = b[v]! > 0;
          break;
        case 9:
          if (len >= 1) tag.motion = b[v]! > 0;
          break;
        case 13:
          if (len >= 1) tag.lowBattery = b[v]! > 0;
          break;
        case 14:
          if (len >= 2) tag.battery = (b[v]! << 8) | b[v + 1]!;
          break;
        default:
        // Unknown parameter: skipped by its length.
      }
    }
    tags.push(tag);
  }
  return tags;
}

/** One entry of the beacon list (id 385). */
export interface Beacon {
  kind: 'ibeacon' | 'eddystone';
  /** iBeacon: UUID + major + minor (20 bytes); Eddystone: namespace + instance (16 bytes); lowercase hex. */
  id: string;
  rssi?: number;
  /** Raw U16 as sent. */
  battery?: number;
  /** Raw U16 as sent. */
  temperature?: number;
}

/**
 * Layout: data-part byte (high nibble part index, low nibble part count), then per beacon a flags
 * byte (bit0 RSSI, bit1 battery, bit2 temperature; non-zero high nibble = iBeacon), the id and the
 * optional fields in that order.
 */
export function decodeBeaconList(b: Uint8Array): { part: number; parts: number; beacons: Beacon[] } | null {
  if (b.length < 1) return null;
  const beacons: Beacon[] = [];
  let p = 1;
  while (p < b.length) {
    const flags = b[p]!;
    const ibeacon = flags >> 4 > 0;
    const idLen = ibeacon ? 20 : 16;
    const need = 1 + idLen + (flags & 1 ? 1 : 0) + (flags & 2 ? 2 : 0) + (flags & 4 ? 2 : 0);
    if (p + need > b.length) return null;
    p += 1;
    const beacon: Beacon = { kind: ibeacon ? 'ibeacon' : 'eddystone', id: hex(b, p, p + idLen) };
    p += idLen;
    if (flags & 1) beacon.rssi = (b[p++]! << 24) >> 24;
    if (flags & 2) {
      beacon.battery = (b[p]! << 8) | b[p + 1]!;
      p += 2;
    }
    if (flags & 4) {
      beacon.temperature = (b[p]! << 8) | b[p + 1]!;
      p += 2;
    }
    beacons.push(beacon);
  }
  return { part: b[0]! >> 4, parts: b[0]! & 0x0f, beacons };
}
