import { describe, expect, it } from 'vitest';
import {
  encodeAvlFrame,
  encodeCodec12Response,
  encodeImeiLogin,
  type TcpFrame,
  TcpFramer,
} from '../../src/protocol/index.js';
import { catchError } from './helpers.js';

const CODEC8 = Buffer.from(
  '000000000000003608010000016B40D8EA30010000000000000000000000000000000105021503010101425E0F01F10000601A014E0000000000000000010000C7CF',
  'hex',
);

const framer = () => new TcpFramer({ maxFrameBytes: 4096 });

describe('TcpFramer', () => {
  it('peels a keep-alive glued to a login, then the frames that follow in the same read', () => {
    const reply = encodeCodec12Response('DO1:1');
    const stream = Buffer.concat([
      Buffer.from([0xff]),
      encodeImeiLogin('356307042441013'),
      CODEC8,
      reply,
      Buffer.from([0xff]),
    ]);
    const frames = framer().push(stream);
    expect(frames.map((f) => f.kind)).toEqual(['ping', 'imei', 'frame', 'frame', 'ping']);
    expect(frames[1]).toEqual({ kind: 'imei', imei: '356307042441013' });
    const [a, b] = frames.filter((f): f is Extract<TcpFrame, { kind: 'frame' }> => f.kind === 'frame');
    expect(a!.codec).toBe(0x08);
    expect(a!.bytes.equals(CODEC8)).toBe(true);
    expect(b!.codec).toBe(0x0c);
    expect(b!.bytes.equals(reply)).toBe(true);
  });

  it('waits for a frame split across many reads and yields it once', () => {
    const f = framer();
    const out: TcpFrame[] = [];
    for (let i = 0; i < CODEC8.length; i += 5) out.push(...f.push(CODEC8.subarray(i, i + 5)));
    expect(out).toHaveLength(1);
    expect(f.buffered).toBe(0);
  });

  it('keeps the remainder of a partial frame buffered', () => {
    const f = framer();
    expect(f.push(Buffer.concat([CODEC8, CODEC8.subarray(0, 20)]))).toHaveLength(1);
    expect(f.buffered).toBe(20);
    expect(f.push(CODEC8.subarray(20))).toHaveLength(1);
    expect(f.buffered).toBe(0);
  });

  it('treats an IMEI sent again mid-session as a new login', () => {
    const f = framer();
    const frames = f.push(
      Buffer.concat([encodeImeiLogin('356307042441013'), CODEC8, encodeImeiLogin('123456789012345'), CODEC8]),
    );
    expect(frames.map((x) => (x.kind === 'imei' ? x.imei : x.kind))).toEqual([
      '356307042441013',
      'frame',
      '123456789012345',
      'frame',
    ]);
  });

  it('accepts a short login (no 12-byte minimum before looking)', () => {
    expect(framer().push(encodeImeiLogin('12345'))).toEqual([{ kind: 'imei', imei: '12345' }]);
  });

  it('refuses garbage at its first byte and stays failed', () => {
    const f = framer();
    const err = catchError(() => f.push(Buffer.from('GET / HTTP/1.1\r\n')));
    expect(err.code).toBe('BAD_PREAMBLE');
    expect(err.offset).toBe(0);
    expect(() => f.push(CODEC8)).toThrow(err);
  });

  it('refuses a non-zero preamble as soon as it is visible, at the stream offset', () => {
    const f = framer();
    expect(f.push(CODEC8)).toHaveLength(1);
    const err = catchError(() => f.push(Buffer.from([0, 0, 0, 1])));
    expect(err.code).toBe('BAD_PREAMBLE');
    expect(err.offset).toBe(CODEC8.length + 3);
  });

  it('refuses a login with non-digit bytes', () => {
    const err = catchError(() => framer().push(Buffer.from('000f3335363330373034324134343130', 'hex')));
    expect(err.code).toBe('BAD_IMEI');
    expect(err.offset).toBe(11); // the 'A' in 3536333037303432|41
  });

  it('refuses a data length above the cap after 8 bytes, before buffering the frame', () => {
    const f = new TcpFramer({ maxFrameBytes: 1280 });
    const header = Buffer.from('0000000000000501', 'hex'); // D = 1281
    const err = catchError(() => f.push(header));
    expect(err.code).toBe('LENGTH_EXCEEDED');
    expect(err.offset).toBe(4);
  });

  it('refuses a data length too small for a frame', () => {
    const err = catchError(() => framer().push(Buffer.from('000000000000000208', 'hex')));
    expect(err.code).toBe('LENGTH_TOO_SMALL');
  });

  it('only holds the bytes actually received, whatever length the header claims', () => {
    const f = new TcpFramer({ maxFrameBytes: 0xffffffff });
    expect(f.push(Buffer.from('00000000fffffff0', 'hex'))).toEqual([]);
    for (let i = 0; i < 100; i++) f.push(Buffer.alloc(10));
    expect(f.buffered).toBe(8 + 1000);
  });

  it('rejects a nonsensical configuration', () => {
    expect(() => new TcpFramer({ maxFrameBytes: 0 })).toThrow(RangeError);
  });

  it('returns frames that later pushes do not change', () => {
    const f = framer();
    const [frame] = f.push(Buffer.from(CODEC8)) as Extract<TcpFrame, { kind: 'frame' }>[];
    f.push(encodeAvlFrame(0x08, []));
    expect(frame!.bytes.equals(CODEC8)).toBe(true);
  });

  describe('loginFirst (a server before it answered the login)', () => {
    const server = () => new TcpFramer({ maxFrameBytes: 65536, loginFirst: true });

    it.each([
      ['an AVL frame', CODEC8, 1],
      ['a ping', Buffer.from([0xff]), 0],
      ['text', Buffer.from('GET / HTTP/1.1\r\n'), 0],
      ['a zero login length', Buffer.from('0000', 'hex'), 1],
      ['an oversized login length', Buffer.from('0012', 'hex'), 1],
    ])('refuses %s at once, before buffering it', (_name, bytes, offset) => {
      const err = catchError(() => server().push(bytes));
      expect(err.code).toBe('EXPECTED_LOGIN');
      expect(err.offset).toBe(offset);
    });

    it('returns the login and parses nothing after it until the login is accepted', () => {
      const f = server();
      const login = encodeImeiLogin('356307042441013');
      expect(f.push(Buffer.concat([login, CODEC8]))).toEqual([{ kind: 'imei', imei: '356307042441013' }]);
      expect(f.buffered).toBe(CODEC8.length);
      // More bytes before the answer are held, not parsed (a frame preamble is no login).
      expect(f.push(CODEC8)).toEqual([]);
      f.loginAccepted();
      expect(f.push(Buffer.alloc(0))).toMatchObject([
        { kind: 'frame', codec: 8 },
        { kind: 'frame', codec: 8 },
      ]);
    });

    it('holds at most a partial login byte by byte', () => {
      const f = server();
      const login = encodeImeiLogin('356307042441013');
      for (let i = 0; i < login.length - 1; i++) expect(f.push(login.subarray(i, i + 1))).toEqual([]);
      expect(f.buffered).toBe(login.length - 1);
    });
  });
});
