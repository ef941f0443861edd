/**
 * `npm run decode -- <hex>`: what a support engineer pastes a device capture into.
 * Prints JSON; a refused frame prints the typed error with a hint and exits 1.
 */
import { readFile } from 'node:fs/promises';
import { avlAck, udpAck } from './ack.js';
import { checkEnvelope, decodeAvlFrame, hasPositionFix } from './avl.js';
import { commandReplyText, decodeCommandFrame, isCommandCodec, isTextPayload } from './commands.js';
import { crc16ibm } from './crc.js';
import { ProtocolError } from './errors.js';
import { attributeUnits, ioFamilyForCodec, ioToJson, namedAttributes, toHex } from './io-dictionary.js';
import { TcpFramer } from './tcp-framer.js';
import { type AvlDecodeOptions, type AvlRecord, CODEC_16, type ProtocolErrorCode } from './types.js';
import { decodeUdpDatagram } from './udp.js';

const USAGE = `usage: npm run decode -- [options] <hex> [<hex>...]
       npm run decode -- [options] -f <file>      file of hex lines (# comments allowed) or raw bytes
       <capture> | npm run decode -- [options]    same on stdin
Input may hold a whole TCP stream (FF pings, IMEI login, frames back to back).
options:
  --udp          read each input as a UDP datagram (auto-detected when the length field fits)
  --ignore-crc   decode frames whose CRC does not match (crcOk: false in the output)
  --extended     read the extra 16-byte IO group some 2017-era firmware sent
  -h, --help     this text`;

const HINTS: Partial<Record<ProtocolErrorCode, string>> = {
  CRC_MISMATCH:
    'the bytes were altered or the capture is incomplete; re-copy it, or pass --ignore-crc to see the content',
  TRUNCATED: 'the capture is shorter than the frame says: paste every TCP read of the frame, concatenated',
  TRAILING_BYTES: 'there are bytes after the frame or the records: two frames pasted together, or a wrong codec layout',
  BAD_PREAMBLE:
    'not a Teltonika TCP frame: frames start with 00000000, IMEI logins with 000F; use --udp for UDP datagrams',
  LENGTH_TOO_SMALL: 'the data length field (bytes 4..7) is too small for any frame',
  LENGTH_EXCEEDED: 'the data length field (bytes 4..7) is implausibly large: the stream is out of sync',
  RECORD_COUNT_MISMATCH: 'number of data 1 (byte 9) and number of data 2 (last byte before the CRC) differ',
  UNSUPPORTED_CODEC: 'byte 8 is the codec id: 08, 8e, 10 are AVL data; 0c..0f are commands',
  BAD_IMEI: 'an IMEI is 15 ASCII digits (hex 3x)',
  BAD_UDP_HEADER: 'a UDP datagram starts with its length (bytes that follow), packet id, 01, AVL packet id, IMEI',
};

export interface DecodeIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
}

interface Options {
  udp: boolean;
  ignoreCrc: boolean;
  extended: boolean;
}

type Json = Record<string, unknown>;

export async function runDecode(argv: string[], io: DecodeIo = process): Promise<number> {
  const opts: Options = { udp: false, ignoreCrc: false, extended: false };
  const hexArgs: string[] = [];
  let file: string | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      io.stdout.write(`${USAGE}\n`);
      return 0;
    } else if (a === '--udp') opts.udp = true;
    else if (a === '--ignore-crc') opts.ignoreCrc = true;
    else if (a === '--extended') opts.extended = true;
    else if (a === '-f' || a === '--file') {
      file = argv[++i] ?? null;
      if (file === null) return usageError(io, '-f needs a file name');
    } else if (a === '-') file = '-';
    else if (a.startsWith('--')) return usageError(io, `unknown option ${a}`);
    else hexArgs.push(a);
  }

  let inputs: Buffer[];
  try {
    if (hexArgs.length > 0) inputs = [hexToBytes(hexArgs.join(''))];
    else if (file !== null && file !== '-') inputs = splitInput(await readFile(file));
    else {
      if (io.stdin.isTTY) return usageError(io, 'no input: give hex, -f <file>, or pipe a capture');
      inputs = splitInput(await readAll(io.stdin));
    }
  } catch (err) {
    return usageError(io, err instanceof Error ? err.message : String(err));
  }
  if (inputs.length === 0) return usageError(io, 'no input bytes');

  const results: Json[] = [];
  let failed = false;
  for (const input of inputs) {
    for (const r of decodeInput(input, opts)) {
      if ('error' in r) failed = true;
      results.push(r);
    }
  }
  io.stdout.write(`${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`);
  return failed ? 1 : 0;
}

function usageError(io: DecodeIo, message: string): number {
  io.stderr.write(`decode: ${message}\n${USAGE}\n`);
  return 2;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(parts);
}

function hexToBytes(text: string): Buffer {
  const clean = text.replace(/0x/gi, '').replace(/[\s:,-]/g, '');
  if (!/^[0-9a-fA-F]*$/.test(clean)) {
    const bad = clean.match(/[^0-9a-fA-F]/)![0];
    throw new Error(`not hex: unexpected character ${JSON.stringify(bad)}`);
  }
  if (clean.length % 2 !== 0) throw new Error(`odd number of hex digits (${clean.length}): the capture is cut`);
  return Buffer.from(clean, 'hex');
}

/** A file or stdin holds either hex lines (one capture per line) or raw bytes (one stream). */
function splitInput(data: Buffer): Buffer[] {
  const text = data.toString('latin1');
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const looksHex = lines.length > 0 && lines.every((l) => /^(0x)?[0-9a-fA-F\s:]+$/.test(l));
  if (!looksHex) return data.length > 0 ? [data] : [];
  return lines.map(hexToBytes);
}

function errorJson(err: unknown, frameOffset: number): Json {
  if (err instanceof ProtocolError) {
    const out: Json = { error: { code: err.code, offset: err.offset, message: err.message } };
    if (frameOffset > 0) out.frameOffset = frameOffset;
    const hint = HINTS[err.code];
    if (hint) out.hint = hint;
    return out;
  }
  return { error: { code: 'INTERNAL', message: err instanceof Error ? err.message : String(err) } };
}

function looksLikeUdp(b: Buffer): boolean {
  return b.length > 10 && b.readUInt16BE(0) === b.length - 2 && b.readUInt16BE(6) >= 1 && b.readUInt16BE(6) <= 17;
}

function decodeInput(input: Buffer, opts: Options): Json[] {
  const avlOpts: AvlDecodeOptions = { ioGroup16: opts.extended, skipCrc: opts.ignoreCrc };
  if (opts.udp || looksLikeUdp(input)) {
    try {
      const d = decodeUdpDatagram(input, avlOpts);
      return [
        {
          transport: 'udp',
          packetId: d.packetId,
          avlPacketId: d.avlPacketId,
          imei: d.imei,
          codec: d.packet.codec,
          records: d.packet.records.map((r) => recordJson(r, d.packet.codec)),
          ack: udpAck(d.packetId, d.avlPacketId, d.packet.records.length).toString('hex'),
        },
      ];
    } catch (err) {
      if (opts.udp) return [errorJson(err, 0)];
      // Not UDP after all: fall through to TCP.
    }
  }
  const out: Json[] = [];
  const framer = new TcpFramer({ maxFrameBytes: 16 * 1024 * 1024 });
  let frames: ReturnType<TcpFramer['push']>;
  let framingError: unknown = null;
  try {
    frames = framer.push(input);
  } catch (err) {
    framingError = err;
    frames = [];
  }
  // Re-frame up to the error to report what came before it (push() throws without returning).
  if (framingError !== null) {
    const again = new TcpFramer({ maxFrameBytes: 16 * 1024 * 1024 });
    for (let i = 0; i < input.length; i++) {
      try {
        frames.push(...again.push(input.subarray(i, i + 1)));
      } catch {
        break;
      }
    }
  }
  let offset = 0;
  for (const f of frames) {
    if (f.kind === 'ping') {
      out.push({ ping: true, note: 'keep-alive byte 0xFF: no reply is sent' });
      offset += 1;
    } else if (f.kind === 'imei') {
      out.push({ imei: f.imei, reply: '01 to accept, 00 to reject' });
      offset += 2 + f.imei.length;
    } else {
      out.push(decodeFrame(f.bytes, opts, avlOpts, offset));
      offset += f.bytes.length;
    }
  }
  if (framingError !== null) out.push(errorJson(framingError, 0));
  else if (framer.buffered > 0)
    out.push(errorJson(leftoverError(input.subarray(input.length - framer.buffered)), offset));
  return out;
}

/** Why the bytes the framer kept waiting for are not a frame: a cut frame, a cut login, or junk. */
function leftoverError(rest: Buffer): ProtocolError {
  if (rest.length >= 2 && rest[0] !== 0xff && rest.readUInt16BE(0) !== 0) {
    const l = rest.readUInt16BE(0);
    return new ProtocolError(
      'TRUNCATED',
      rest.length,
      `IMEI login announces ${l} digits, only ${rest.length - 2} present`,
    );
  }
  if (rest.length < 4 && rest.every((b) => b === 0)) {
    return new ProtocolError(
      'TRUNCATED',
      rest.length,
      `${rest.length} byte(s) of a frame preamble, then the input ends`,
    );
  }
  if (rest.length === 1) {
    return new ProtocolError(
      'TRAILING_BYTES',
      0,
      `1 byte (0x${rest[0]!.toString(16).padStart(2, '0')}) that is no frame`,
    );
  }
  try {
    checkEnvelope(rest);
    return new ProtocolError('TRUNCATED', rest.length, 'incomplete frame at the end of the input');
  } catch (err) {
    return err as ProtocolError;
  }
}

function decodeFrame(bytes: Buffer, opts: Options, avlOpts: AvlDecodeOptions, offset: number): Json {
  const codec = bytes[8]!;
  const d = bytes.readUInt32BE(4);
  const crcOk = crc16ibm(bytes, 8, 8 + d) === bytes.readUInt32BE(8 + d);
  try {
    if (isCommandCodec(codec)) {
      const c = decodeCommandFrame(bytes, { skipCrc: opts.ignoreCrc });
      const out: Json = { codec, type: c.type };
      if (isTextPayload(c.payload)) out.text = commandReplyText(c);
      else out.hex = toHex(c.payload);
      if (c.imei !== null) out.imei = c.imei;
      if (c.timestamp !== null) out.timestamp = new Date(c.timestamp).toISOString();
      if (codec === 0x0e)
        out.meaning = c.type === 0x06 ? 'ACK (executed)' : c.type === 0x11 ? 'nACK (IMEI mismatch)' : 'command';
      out.crcOk = crcOk;
      out.note = 'command frames are never acknowledged';
      return out;
    }
    const packet = decodeAvlFrame(bytes, avlOpts);
    return {
      codec,
      records: packet.records.map((r) => recordJson(r, codec)),
      crcOk,
      ack: avlAck(packet.records.length).toString('hex'),
    };
  } catch (err) {
    return errorJson(err, offset);
  }
}

function recordJson(r: AvlRecord, codec: number): Json {
  const out: Json = {
    timestamp:
      Number.isFinite(r.timestamp) && r.timestamp < 8.64e15 ? new Date(r.timestamp).toISOString() : r.timestamp,
    priority: r.priority,
    longitude: r.longitude,
    latitude: r.latitude,
    altitude: r.altitude,
    angle: r.angle,
    satellites: r.satellites,
    speed: r.speed,
    eventIoId: r.eventIoId,
  };
  if (codec === CODEC_16) out.generationType = r.generationType;
  if (!hasPositionFix(r)) out.fix = false;
  out.io = ioToJson(r.io);
  const family = ioFamilyForCodec(codec);
  out.attributes = namedAttributes(r.io, family);
  const units = attributeUnits(r.io, family);
  if (Object.keys(units).length > 0) out.units = units;
  return out;
}
