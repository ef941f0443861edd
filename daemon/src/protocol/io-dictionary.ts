import { decodeBeaconList, decodeBleTags } from './ble.js';
import { JsonTextBuilder, keyBytes } from './json-text.js';
import type { IoList, IoValue } from './types.js';

/**
 * FMB AVL IO elements as data. Meanings are for the FMB/FMC/FMM families: other families reuse ids
 * with other meanings (e.g. FM63xx id 11 is an analog input), so a model-aware caller may skip
 * namedAttributes(). Unknown ids are never an error; they stay in the raw IO list.
 */
export type IoKind =
  /** Integer × scale in `unit`. */
  | 'number'
  /** 0 / 1 → false / true. */
  | 'boolean'
  /** Enumerated code, reported raw (see `values`). */
  | 'enum'
  /** Text bytes (NX element), reported as a string. */
  | 'ascii'
  /** Opaque bytes or identifiers, reported as lowercase hex. */
  | 'hex';

export interface IoDefinition {
  id: number;
  /** Attribute key (camelCase). */
  name: string;
  /** Human label as in Teltonika's tables. */
  label: string;
  /** Usual width in bytes (0 = variable-length NX element). The group on the wire is authoritative. */
  size: number;
  /** Two's-complement value (reinterpreted at `size` bytes). */
  signed: boolean;
  /** raw × scale = value in `unit`. */
  scale: number;
  unit: string | null;
  kind: IoKind;
  /** Meaning of enumerated values, when documented. */
  values?: Readonly<Record<number, string>>;
}

type Row = [
  id: number,
  name: string,
  label: string,
  size: number,
  kind: IoKind,
  scale?: number,
  unit?: string | null,
  signed?: boolean,
];

// biome-ignore format: one element per line reads like the vendor table
const ROWS: Row[] = [
  [1, 'digitalInput1', 'Digital Input 1', 1, 'boolean'],
  [2, 'digitalInput2', 'Digital Input 2', 1, 'boolean'],
  [3, 'digitalInput3', 'Digital Input 3', 1, 'boolean'],
  [9, 'analogInput1', 'Analog Input 1', 2, 'number', 0.001, 'V'],
  [10, 'sdStatus', 'SD Status', 1, 'enum'],
  [11, 'iccid1', 'ICCID1', 8, 'number'],
  [12, 'fuelUsedGps', 'Fuel Used GPS', 4, 'number', 0.001, 'l'],
  [13, 'fuelRateGps', 'Fuel Rate GPS', 2, 'number', 0.01, 'l/100km'],
  [14, 'iccid2', 'ICCID2', 8, 'number'],
  [16, 'totalOdometer', 'Total Odometer', 4, 'number', 1, 'm'],
  [17, 'axisX', 'Axis X', 2, 'number', 1, 'mG', true],
  [18, 'axisY', 'Axis Y', 2, 'number', 1, 'mG', true],
  [19, 'axisZ', 'Axis Z', 2, 'number', 1, 'mG', true],
  [21, 'gsmSignal', 'GSM Signal', 1, 'number'],
  [24, 'speed', 'Speed', 2, 'number', 1, 'km/h'],
  [66, 'externalVoltage', 'External Voltage', 2, 'number', 0.001, 'V'],
  [67, 'batteryVoltage', 'Battery Voltage', 2, 'number', 0.001, 'V'],
  [68, 'batteryCurrent', 'Battery Current', 2, 'number', 0.001, 'A'],
  [69, 'gnssStatus', 'GNSS Status', 1, 'enum'],
  [72, 'dallasTemperature1', 'Dallas Temperature 1', 4, 'number', 0.1, '°C', true],
  [73, 'dallasTemperature2', 'Dallas Temperature 2', 4, 'number', 0.1, '°C', true],
  [74, 'dallasTemperature3', 'Dallas Temperature 3', 4, 'number', 0.1, '°C', true],
  [75, 'dallasTemperature4', 'Dallas Temperature 4', 4, 'number', 0.1, '°C', true],
  [78, 'iButton', 'iButton', 8, 'hex'],
  [80, 'dataMode', 'Data Mode', 1, 'enum'],
  [113, 'batteryLevel', 'Battery Level', 1, 'number', 1, '%'],
  [175, 'autoGeofence', 'Auto Geofence', 1, 'enum'],
  [179, 'digitalOutput1', 'Digital Output 1', 1, 'boolean'],
  [180, 'digitalOutput2', 'Digital Output 2', 1, 'boolean'],
  [181, 'gnssPdop', 'GNSS PDOP', 2, 'number', 0.1],
  [182, 'gnssHdop', 'GNSS HDOP', 2, 'number', 0.1],
  [199, 'tripOdometer', 'Trip Odometer', 4, 'number', 1, 'm'],
  [200, 'sleepMode', 'Sleep Mode', 1, 'enum'],
  [205, 'gsmCellId', 'GSM Cell ID', 2, 'number'],
  [206, 'gsmAreaCode', 'GSM Area Code', 2, 'number'],
  [236, 'alarm', 'Alarm', 1, 'boolean'],
  [239, 'ignition', 'Ignition', 1, 'boolean'],
  [240, 'movement', 'Movement', 1, 'boolean'],
  [241, 'activeGsmOperator', 'Active GSM Operator', 4, 'number'],
  [246, 'towing', 'Towing', 1, 'boolean'],
  [247, 'crashDetection', 'Crash Detection', 1, 'enum'],
  [249, 'jamming', 'Jamming', 1, 'boolean'],
  [250, 'trip', 'Trip', 1, 'enum'],
  [251, 'idling', 'Idling', 1, 'boolean'],
  [252, 'unplug', 'Unplug', 1, 'boolean'],
  [253, 'greenDrivingType', 'Green Driving Type', 1, 'enum'],
  [254, 'greenDrivingValue', 'Green Driving Value', 1, 'number'],
  [255, 'overSpeeding', 'Over Speeding', 1, 'number', 1, 'km/h'],
  [256, 'vin', 'VIN', 0, 'ascii'],
  [281, 'faultCodes', 'Fault Codes', 0, 'ascii'],
  [385, 'beacon', 'Beacon', 0, 'hex'],
  [449, 'ignitionOnCounter', 'Ignition On Counter', 4, 'number', 1, 's'],
  [548, 'advancedBleBeaconData', 'Advanced BLE Beacon Data', 0, 'hex'],
  [636, 'lteCellId', 'LTE Cell ID', 4, 'number'],
  [10800, 'eyeTemperature1', 'EYE Temperature 1', 2, 'number', 0.01, '°C', true],
  [10801, 'eyeTemperature2', 'EYE Temperature 2', 2, 'number', 0.01, '°C', true],
  [10802, 'eyeTemperature3', 'EYE Temperature 3', 2, 'number', 0.01, '°C', true],
  [10803, 'eyeTemperature4', 'EYE Temperature 4', 2, 'number', 0.01, '°C', true],
  [10828, 'eyeSensor1Data', 'EYE Sensor 1 data', 0, 'hex'],
  [10829, 'eyeSensor2Data', 'EYE Sensor 2 data', 0, 'hex'],
  [10831, 'eyeSensor4Data', 'EYE Sensor 4 data', 0, 'hex'],
  [11317, 'eyeBeacons', 'EYE beacon list', 0, 'hex'],
];

const ENUMS: Record<number, Record<number, string>> = {
  69: { 0: 'GNSS off', 1: 'GNSS on with fix', 2: 'GNSS on without fix', 3: 'GNSS sleeping' },
  80: {
    0: 'home, stopped',
    1: 'home, moving',
    2: 'roaming, stopped',
    3: 'roaming, moving',
    4: 'unknown network, stopped',
    5: 'unknown network, moving',
  },
  175: { 0: 'left', 1: 'entered' },
  200: { 0: 'awake', 1: 'GPS sleep', 2: 'deep sleep', 3: 'online sleep', 4: 'ultra sleep' },
  247: {
    1: 'crash (calibrated)',
    2: 'limited crash trace (not calibrated)',
    3: 'limited crash trace (calibrated)',
    4: 'full crash trace (not calibrated)',
    5: 'full crash trace (calibrated)',
    6: 'crash (not calibrated)',
  },
  250: { 0: 'trip end', 1: 'trip start', 2: 'business', 3: 'private' },
  253: { 1: 'harsh acceleration', 2: 'harsh braking', 3: 'harsh cornering' },
};

export const IO_DICTIONARY: ReadonlyMap<number, IoDefinition> = new Map(
  ROWS.map(([id, name, label, size, kind, scale = 1, unit = null, signed = false]) => {
    const def: IoDefinition = { id, name, label, size, signed, scale, unit, kind };
    const values = ENUMS[id];
    if (values) def.values = values;
    return [id, Object.freeze(def)] as const;
  }),
);

/** Device families whose ids mean different things. FMB/FMC/FMM is the default. */
export type IoFamily = 'fmb' | 'fm63';

// biome-ignore format: one element per line reads like the vendor table
const FM63_ROWS: Row[] = [
  [11, 'analogInput3', 'Analog Input 3', 2, 'number', 0.001, 'V'],
  [14, 'io14', 'IO 14 (FM63xx)', 0, 'number'],
  [80, 'wheelBasedSpeed', 'Wheel-based Speed', 4, 'number', 1, 'km/h'],
  [113, 'serviceDistance', 'Service Distance', 4, 'number'],
  [205, 'gsmCellId', 'GSM Cell ID', 4, 'number'],
];

/**
 * FM63xx (FMB630/FM6300/FM6320, the Codec 16 family) meanings where they differ from FMB; other ids
 * fall back to IO_DICTIONARY. Only the differences the reference documents are listed.
 */
export const FM63_OVERRIDES: ReadonlyMap<number, IoDefinition> = new Map(
  FM63_ROWS.map(([id, name, label, size, kind, scale = 1, unit = null, signed = false]) => [
    id,
    Object.freeze({ id, name, label, size, signed, scale, unit, kind }),
  ]),
);

/** The family whose dictionary applies to a codec when the device model is unknown. */
export function ioFamilyForCodec(codec: number): IoFamily {
  return codec === 0x10 ? 'fm63' : 'fmb';
}

function definition(id: number, family: IoFamily | undefined): IoDefinition | undefined {
  if (family === 'fm63') {
    const o = FM63_OVERRIDES.get(id);
    if (o) return o;
  }
  return IO_DICTIONARY.get(id);
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += HEX[bytes[i]!];
  return s;
}

/** Raw IO as JSON: safe integers as numbers, 8-byte values beyond 2^53 as decimal strings, bytes as lowercase hex. */
export function ioToJson(io: IoList): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (let i = 0; i < io.ids.length; i++) out[io.ids[i]!] = ioValueToJson(io.values[i]!);
  return out;
}

/**
 * JSON.stringify(ioToJson(io)), written as bytes (json-text.ts): the processor stores it for every
 * record, and the object with integer keys is slow to build and slower to serialise. Same text
 * (ids ascending, the last value of a repeated id), property-tested against the object form.
 */
export function ioJsonText(io: IoList): string {
  const { ids, values } = io;
  const n = ids.length;
  // Indices by ascending id: an insertion sort (lists are short), stable, so of a repeated id the
  // last one (the value an object keeps) comes last. Reused across calls: no allocation.
  const order = IO_ORDER;
  order.length = n;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    let k = i;
    while (k > 0 && ids[order[k - 1]!]! > id) {
      order[k] = order[k - 1]!;
      k--;
    }
    order[k] = i;
  }
  const t = TEXT;
  t.start();
  t.char(0x7b);
  let first = true;
  for (let k = 0; k < n; k++) {
    const i = order[k]!;
    const id = ids[i]!;
    if (k + 1 < n && ids[order[k + 1]!] === id) continue;
    if (!first) t.char(0x2c);
    first = false;
    let key = ID_KEYS[id];
    if (key === undefined) {
      key = keyBytes(id);
      ID_KEYS[id] = key;
    }
    t.bytes(key);
    const v = values[i]!;
    if (typeof v === 'number') t.number(v);
    else if (typeof v === 'bigint') {
      t.char(0x22);
      t.ascii(v.toString());
      t.char(0x22);
    } else t.hex(v);
  }
  t.char(0x7d);
  return t.text();
}
const IO_ORDER: number[] = [];
const TEXT = new JsonTextBuilder();
/** `"id":` per IO id, as bytes (ids are 16-bit). */
const ID_KEYS: (Uint8Array | undefined)[] = [];

/** How namedAttributesText writes one id's value, worked out on first sight of the id. */
interface AttributeText {
  def: IoDefinition;
  key: Uint8Array;
  /** k when the value is raw / 10^k (see decimalsOf), else 0. */
  decimals: number;
}

/** Per family, per IO id: its AttributeText, or null for an id the dictionary does not know. */
const ATTRIBUTE_TEXTS = { fmb: new Map<number, AttributeText | null>(), fm63: new Map<number, AttributeText | null>() };

function attributeText(id: number, family: IoFamily | undefined): AttributeText | null {
  const cache = ATTRIBUTE_TEXTS[family ?? 'fmb'];
  let a = cache.get(id);
  if (a === undefined) {
    const def = definition(id, family);
    a = def ? { def, key: keyBytes(def.name), decimals: def.kind === 'number' ? decimalsOf(def.scale) : 0 } : null;
    cache.set(id, a);
  }
  return a;
}

export function ioValueToJson(v: IoValue): number | string {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return v.toString();
  return toHex(v);
}

function scaled(raw: number, scale: number): number {
  // Dividing by the integer reciprocal keeps 24079 × 0.001 at 24.079 (no binary noise).
  if (scale === 1) return raw;
  if (scale < 1) {
    const div = Math.round(1 / scale);
    if (Math.abs(1 / div - scale) < 1e-12) return raw / div;
  }
  return raw * scale;
}

/** k when `scaled` divides by 10^k (k 1–6), else 0: such values can be written as decimals (json-text.ts). */
function decimalsOf(scale: number): number {
  if (!(scale < 1)) return 0;
  const div = Math.round(1 / scale);
  if (!(Math.abs(1 / div - scale) < 1e-12)) return 0;
  for (let k = 1, p = 10; k <= 6; k++, p *= 10) if (div === p) return k;
  return 0;
}

function signedAt(raw: number, size: number): number {
  if (size === 1 || size === 2 || size === 4) {
    const half = 2 ** (8 * size - 1);
    return raw >= half ? raw - 2 * half : raw;
  }
  return raw;
}

function interpret(def: IoDefinition, v: IoValue): number | string | boolean {
  if (v instanceof Uint8Array) {
    if (def.kind === 'ascii')
      return Buffer.from(v.buffer, v.byteOffset, v.length).toString('latin1').replace(/\0+$/, '');
    return toHex(v);
  }
  if (def.kind === 'hex') {
    // Identifiers such as the iButton key are read little-endian, as the reference notes.
    const big = BigInt.asUintN(64, typeof v === 'bigint' ? v : BigInt(v));
    let s = '';
    for (let k = 0n; k < 8n; k++) s += HEX[Number((big >> (8n * k)) & 0xffn)];
    return s;
  }
  if (def.kind === 'boolean') return typeof v === 'bigint' ? v !== 0n : v !== 0;
  if (typeof v === 'bigint') {
    const x = def.signed ? BigInt.asIntN(64, v) : v;
    return Number.isSafeInteger(Number(x)) && def.scale === 1 ? Number(x) : x.toString();
  }
  const raw = def.signed ? signedAt(v, def.size) : v;
  return def.kind === 'number' ? scaled(raw, def.scale) : raw;
}

/** NX elements carrying "advanced BLE beacon data" (sensor TLVs). */
const BLE_TAG_IDS = new Set([548, 10828, 10829, 10831, 11317]);

const cap = (k: string) => k[0]!.toUpperCase() + k.slice(1);

/** Flattens sensors as tag<n><Field> (numbered across the record's elements), e.g. tag1Voltage (mV). */
function addTags(out: Record<string, number | string | boolean>, bytes: Uint8Array, n: number): number {
  const tags = decodeBleTags(bytes);
  if (!tags) return n;
  for (const tag of tags) {
    n++;
    for (const [k, val] of Object.entries(tag)) out[`tag${n}${cap(k)}`] = val as number | string | boolean;
  }
  return n;
}

/** Flattens the beacon list (id 385) as beacon<n><Field>. */
function addBeacons(out: Record<string, number | string | boolean>, bytes: Uint8Array, n: number): number {
  const list = decodeBeaconList(bytes);
  if (!list) return n;
  for (const b of list.beacons) {
    n++;
    for (const [k, val] of Object.entries(b)) out[`beacon${n}${cap(k)}`] = val as number | string;
  }
  return n;
}

/**
 * Named attributes for the ids the dictionary knows (e.g. { externalVoltage: 24.079, ignition: true }).
 * Unknown ids are left out here and stay available raw through ioToJson(). Adds `iccid` when both
 * halves (ids 11 and 14) are present (the 10-digit padding of the second half is inferred, not
 * documented), BLE sensor fields as tag<n><Field> and beacon-list entries as beacon<n><Field>.
 * `family` picks the FM63xx meanings for the ids that differ (see ioFamilyForCodec).
 */
export function namedAttributes(io: IoList, family?: IoFamily): Record<string, number | string | boolean> {
  const out: Record<string, number | string | boolean> = {};
  let iccid1: IoValue | undefined;
  let iccid2: IoValue | undefined;
  let tagCount = 0;
  let beaconCount = 0;
  for (let i = 0; i < io.ids.length; i++) {
    const id = io.ids[i]!;
    const def = definition(id, family);
    if (!def) continue;
    const v = io.values[i]!;
    out[def.name] = interpret(def, v);
    if (id === 11 && family !== 'fm63') iccid1 = v;
    else if (id === 14 && family !== 'fm63') iccid2 = v;
    else if (v instanceof Uint8Array) {
      if (BLE_TAG_IDS.has(id)) tagCount = addTags(out, v, tagCount);
      else if (id === 385) beaconCount = addBeacons(out, v, beaconCount);
    }
  }
  if (
    iccid1 !== undefined &&
    iccid2 !== undefined &&
    !(iccid1 instanceof Uint8Array) &&
    !(iccid2 instanceof Uint8Array)
  ) {
    out.iccid = `${iccid1.toString()}${iccid2.toString().padStart(10, '0')}`;
  }
  return out;
}

/**
 * JSON.stringify(namedAttributes(io, family)), written as bytes (json-text.ts) when every value is a
 * plain number and no id repeats or needs combining (the ICCID halves; byte values carry BLE data):
 * the processor stores it for every record. Other lists take the object route. Property-tested to
 * be the same text.
 */
export function namedAttributesText(io: IoList, family?: IoFamily): string {
  const { ids, values } = io;
  const n = ids.length;
  const t = TEXT;
  t.start();
  t.char(0x7b);
  let first = true;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    const v = values[i]!;
    if (typeof v !== 'number' || ((id === 11 || id === 14) && family !== 'fm63')) return slowAttributesText(io, family);
    for (let k = 0; k < i; k++) if (ids[k] === id) return slowAttributesText(io, family);
    const a = attributeText(id, family);
    if (a === null) continue;
    if (!first) t.char(0x2c);
    first = false;
    t.bytes(a.key);
    const { def } = a;
    if (a.decimals > 0) {
      t.decimal(def.signed ? signedAt(v, def.size) : v, a.decimals);
      continue;
    }
    const x = interpret(def, v);
    if (typeof x === 'number') t.number(x);
    else if (typeof x === 'boolean') t.ascii(x ? 'true' : 'false');
    else if (!t.ascii(JSON.stringify(x))) return slowAttributesText(io, family);
  }
  t.char(0x7d);
  return t.text();
}

function slowAttributesText(io: IoList, family: IoFamily | undefined): string {
  return JSON.stringify(namedAttributes(io, family));
}

/** Units of the attributes namedAttributes() would produce for this IO list. */
export function attributeUnits(io: IoList, family?: IoFamily): Record<string, string> {
  const out: Record<string, string> = {};
  for (const id of io.ids) {
    const def = definition(id, family);
    if (def?.unit) out[def.name] = def.unit;
  }
  return out;
}
