/**
 * The PROXY protocol header (HAProxy's `send-proxy` / `send-proxy-v2`) a TCP load balancer puts in
 * front of a device's bytes, so ingestion behind it still sees the device's own address: the
 * per-address limits, `allowed_networks` and takeover detection are about devices, not about the
 * balancer. Parsing is the maintained `proxy-protocol-js`; what is ours is knowing where the header
 * ends in a stream that arrives in pieces, and the decision as a typed result.
 */
import proxyProtocol from 'proxy-protocol-js';

/** The device's address as the balancer saw it; null for a LOCAL/UNKNOWN header (its own check). */
export type ProxySource = { address: string; port: number } | null;

export type ProxyHeaderResult =
  | { kind: 'need_more' }
  | { kind: 'invalid'; reason: string }
  | { kind: 'header'; length: number; source: ProxySource };

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The spec's longest v1 line, CRLF included. */
const V1_MAX = 107;
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;

/** Whether `buf` could still become `prefix` (or already starts with it). */
function startsLike(buf: Buffer, prefix: Buffer): boolean {
  const n = Math.min(buf.length, prefix.length);
  return buf.subarray(0, n).equals(prefix.subarray(0, n));
}

function ipv6Text(bytes: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  const text = groups.join(':');
  // IPv4-mapped (::ffff:a.b.c.d): the dotted form, as sockets report such peers
  if (/^0:0:0:0:0:ffff:/.test(text)) return `::ffff:${bytes.slice(12, 16).join('.')}`;
  return text;
}

function readV1(buf: Buffer): ProxyHeaderResult {
  const end = buf.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return buf.length < V1_MAX ? { kind: 'need_more' } : { kind: 'invalid', reason: 'v1 line too long' };
  const line = buf.toString('latin1', 0, end + 2);
  if (line.startsWith('PROXY UNKNOWN')) return { kind: 'header', length: end + 2, source: null };
  try {
    const p = proxyProtocol.V1ProxyProtocol.parse(line);
    return { kind: 'header', length: end + 2, source: { address: p.source.ipAddress, port: p.source.port } };
  } catch (err) {
    return { kind: 'invalid', reason: `v1: ${(err as Error).message}` };
  }
}

function readV2(buf: Buffer): ProxyHeaderResult {
  if (buf.length < V2_FIXED) return { kind: 'need_more' };
  const length = V2_FIXED + buf.readUInt16BE(14);
  if (buf.length < length) return { kind: 'need_more' };
  try {
    const p = proxyProtocol.V2ProxyProtocol.parse(new Uint8Array(buf.subarray(0, length)));
    if (p.command === proxyProtocol.Command.LOCAL) return { kind: 'header', length, source: null };
    const a = p.proxyAddress;
    if (a instanceof proxyProtocol.IPv4ProxyAddress) {
      return { kind: 'header', length, source: { address: a.sourceAddress.address.join('.'), port: a.sourcePort } };
    }
    if (a instanceof proxyProtocol.IPv6ProxyAddress) {
      return { kind: 'header', length, source: { address: ipv6Text(a.sourceAddress.address), port: a.sourcePort } };
    }
    return { kind: 'header', length, source: null };
  } catch (err) {
    return { kind: 'invalid', reason: `v2: ${(err as Error).message}` };
  }
}

/** Reads the header at the start of `buf` (the first bytes of a connection from a trusted balancer). */
export function readProxyHeader(buf: Buffer): ProxyHeaderResult {
  if (buf.length === 0) return { kind: 'need_more' };
  if (startsLike(buf, V2_SIGNATURE)) return buf.length < V2_SIGNATURE.length ? { kind: 'need_more' } : readV2(buf);
  if (startsLike(buf, V1_PREFIX)) return buf.length < V1_PREFIX.length ? { kind: 'need_more' } : readV1(buf);
  return { kind: 'invalid', reason: 'no PROXY protocol header' };
}
