/**
 * What a simulated FMB device answers to a GPRS (Codec 12) command. Replies imitate the shape of
 * FMB firmware answers closely enough for the command console and tests to show something real;
 * commands that change state (`setdigout`, `setparam`) change the simulated device.
 */
import type { Track } from './track.js';

export interface DeviceIdentity {
  imei: string;
  model: string;
  firmware: string;
  /** Epoch ms when the simulated device "booted". */
  bootedAt: number;
  /** Parameters changed with `setparam` (id → value). */
  params: Map<string, string>;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** `2026/11/25 7:05` style, as FMB replies print dates (UTC). */
function fmbDate(ms: number): string {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}/${d.getUTCMonth() + 1}/${d.getUTCDate()} ${d.getUTCHours()}:${pad2(d.getUTCMinutes())}`;
}

/** Default values for a few well-known FMB parameters (`getparam`). */
const PARAM_DEFAULTS: Record<string, string> = {
  '2001': 'internet', // APN
  '2004': 'fleet.example.org', // server domain
  '2005': '5027', // server port
  '2006': '0', // protocol TCP
  '1000': '900', // min period on stop (s)
  '10000': '10', // min period moving (s)
};

/**
 * Reply text for one command. Unknown commands get an error-ish answer, as firmware does, so a
 * console user sees that the device was reached but did not understand.
 */
export function commandReply(raw: string, device: DeviceIdentity, track: Track, now = Date.now()): string {
  const text = raw.trim();
  const [name = '', ...args] = text.split(/\s+/);
  switch (name.toLowerCase()) {
    case 'getinfo': {
      const uptimeS = Math.floor((now - device.bootedAt) / 1000);
      return (
        `INI:${fmbDate(device.bootedAt)} RTC:${fmbDate(now)} RST:2 ERR:0 SR:0 BR:0 CF:0 FG:0 FL:0 ` +
        `TU:0/0 UT:${uptimeS} SMS:0 NOGPS:0:0 GPS:1 SAT:${track.satellites} RS:3 RF:${40 + track.gsm * 5} ` +
        `SF:1 MD:${track.speed > 0 ? 1 : 0}`
      );
    }
    case 'getver':
      return (
        `Ver:${device.firmware} GPS:AXN_5.10_3333 Hw:${device.model} Mod:15 IMEI:${device.imei} ` +
        `Init:${fmbDate(device.bootedAt)} Uptime:${Math.floor((now - device.bootedAt) / 1000)} ` +
        `MAC:60BD${device.imei.slice(-8)} SPC:1(0) AXL:0 OBD:0 BL:1.6 BT:4`
      );
    case 'getgps': {
      const d = new Date(track.lastTimestamp || now);
      return (
        `GPS:1 Sat:${track.satellites} Lat:${track.lat.toFixed(6)} Long:${track.lon.toFixed(6)} ` +
        `Alt:${Math.round(track.altitude)} Speed:${Math.round(track.speed)} Dir:${Math.round(track.heading) % 360} ` +
        `Date: ${d.getUTCFullYear()}/${pad2(d.getUTCMonth() + 1)}/${pad2(d.getUTCDate())} ` +
        `Time: ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`
      );
    }
    case 'getio':
      return (
        `DI1:${track.ignition ? 1 : 0} DI2:0 DI3:0 AIN1:${Math.round(track.externalMv)} AIN2:0 ` +
        `DO1:${track.digitalOutput1} DO2:${track.digitalOutput2}`
      );
    case 'getstatus':
      return (
        `Data Link: 1 GPRS: 1 Phone: 0 SIM: 0 OP: 24602 Signal: ${track.gsm} NewSMS: 0 Roaming: 0 ` +
        `SMSFull: 0 LAC: 1 Cell ID: 3055 NetType: 1 FwUpd:-1`
      );
    case 'setdigout': {
      // `setdigout 1` / `setdigout 10` / `setdigout ?1`: one character per output; '?' keeps it.
      const mask = args[0];
      if (mask === undefined || !/^[01?]{1,2}$/.test(mask)) return `Invalid argument for setdigout: ${args.join(' ')}`;
      if (mask[0] !== '?') track.digitalOutput1 = mask[0] === '1' ? 1 : 0;
      if (mask.length > 1 && mask[1] !== '?') track.digitalOutput2 = mask[1] === '1' ? 1 : 0;
      return `DOUT1:${track.digitalOutput1} Timeout:INFINITY DOUT2:${track.digitalOutput2} Timeout:INFINITY`;
    }
    case 'getparam': {
      const ids = (args[0] ?? '').split(';').filter((id) => /^\d+$/.test(id));
      if (ids.length === 0) return 'Param ID error';
      return ids.map((id) => `Param ID:${id} Value:${device.params.get(id) ?? PARAM_DEFAULTS[id] ?? '0'}`).join(' ');
    }
    case 'setparam': {
      const pairs = args
        .join(' ')
        .split(';')
        .map((p) => p.trim().split(/[:\s]+/))
        .filter((p) => p.length >= 2 && /^\d+$/.test(p[0]!));
      if (pairs.length === 0) return 'Param ID error';
      for (const [id, value] of pairs) device.params.set(id!, value!);
      return `New value ${pairs.map(([id, value]) => `${id}:${value}`).join(';')};`;
    }
    case 'cpureset':
    case 'defaultcfg':
      return name.toLowerCase() === 'cpureset' ? 'Resetting CPU' : 'Default config set';
    case '':
      return 'Empty command';
    default:
      return `Unknown command: ${name.slice(0, 64)}`;
  }
}
