import proxyProtocol from 'proxy-protocol-js';
import { describe, expect, it } from 'vitest';
import { readProxyHeader } from '../../src/ingestion/proxy-header.js';
import { encodeImeiLogin } from '../../src/protocol/index.js';

const v1 = (src: string, port: number) =>
  Buffer.from(
    new proxyProtocol.V1ProxyProtocol(
      proxyProtocol.INETProtocol.TCP4,
      new proxyProtocol.Peer(src, port),
      new proxyProtocol.Peer('10.0.0.1', 5027),
    ).build(),
    'latin1',
  );

/** The spec's v2 example shape, as HAProxy's `send-proxy-v2` writes it for an IPv4 TCP client. */
const v2 = (src: [number, number, number, number], port: number, command = proxyProtocol.Command.PROXY) =>
  Buffer.from(
    new proxyProtocol.V2ProxyProtocol(
      command,
      proxyProtocol.TransportProtocol.STREAM,
      new proxyProtocol.IPv4ProxyAddress(
        proxyProtocol.IPv4Address.createFrom(src),
        port,
        proxyProtocol.IPv4Address.createFrom([10, 0, 0, 1]),
        5027,
      ),
    ).build(),
  );

describe('PROXY protocol header', () => {
  const login = encodeImeiLogin('356307042441013');

  it('reads v1 and v2 headers and says where the device bytes start', () => {
    for (const [header, address] of [
      [v1('203.0.113.7', 40001), '203.0.113.7'],
      [v2([203, 0, 113, 8], 40002), '203.0.113.8'],
    ] as const) {
      const r = readProxyHeader(Buffer.concat([header, login]));
      expect(r).toMatchObject({ kind: 'header', length: header.length, source: { address } });
    }
  });

  it('waits for a header split anywhere, and only then answers', () => {
    for (const header of [v1('198.51.100.1', 1), v2([198, 51, 100, 2], 2)]) {
      for (let cut = 0; cut < header.length; cut++) {
        expect(readProxyHeader(header.subarray(0, cut)).kind).toBe('need_more');
      }
      expect(readProxyHeader(header).kind).toBe('header');
    }
  });

  it('gives no device address for a LOCAL (health check) or UNKNOWN header', () => {
    expect(readProxyHeader(v2([127, 0, 0, 1], 9, proxyProtocol.Command.LOCAL))).toMatchObject({ source: null });
    expect(readProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ kind: 'header', length: 15, source: null });
  });

  it('refuses a connection that starts with anything else, or a broken header', () => {
    expect(readProxyHeader(login).kind).toBe('invalid');
    expect(readProxyHeader(Buffer.from('PROXY TCP4 nonsense\r\n')).kind).toBe('invalid');
    expect(readProxyHeader(Buffer.from(`PROXY ${'x'.repeat(120)}`)).kind).toBe('invalid');
  });
});
