import { describe, expect, it } from 'vitest';
import {
  assertUpdateAllowed,
  CommandRuleError,
  type CreateInput,
  DEFAULT_ALLOW,
  deviceEnabled,
  parseAllowRule,
  validateCreate,
} from './index';

const config = {
  senderRoles: ['Operator'],
  maxBytes: 64,
  ttlMs: 3_600_000,
  allowRules: DEFAULT_ALLOW.map(parseAllowRule),
};
const operator = { user: 'u1', admin: false, roleNames: ['Operator'] };
const admin = { user: 'u0', admin: true, roleNames: ['Administrator'] };
const viewer = { user: 'u2', admin: false, roleNames: ['Viewer'] };
const device = { exists: true, enabled: true, label: '7' };
const now = Date.parse('2026-11-25T12:00:00Z');

const input = (over: Partial<CreateInput> & { payload?: Record<string, unknown> } = {}): CreateInput => ({
  payload: { device: 7, text: 'getinfo' },
  sender: operator,
  device,
  now,
  config,
  ...over,
});

function refusal(fn: () => unknown): CommandRuleError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CommandRuleError) return e;
    throw e;
  }
  throw new Error('expected a refusal');
}

describe('validateCreate', () => {
  it('normalizes a good command and fills the lifecycle defaults', () => {
    const out = validateCreate(
      input({ payload: { device: { id: 7 }, text: '  setdigout 1 ', payload_hex: '03 03 0A' }, sender: admin }),
    );
    expect(out).toEqual({
      device: 7,
      text: 'setdigout 1',
      payload_hex: '03030a',
      expires_at: '2026-11-25T13:00:00.000Z',
      status: 'pending',
      attempts: 1,
      response: null,
      error: null,
      instance_id: null,
    });
    // Binary (control bytes) is for admins only: an Operator's payload must spell an allowed command.
    const binary = refusal(() =>
      validateCreate(input({ payload: { device: 7, text: 'getinfo', payload_hex: '03030a' } })),
    );
    expect(binary.kind).toBe('forbidden');
    expect(binary.message).toMatch(/hex payload is not a command a non-admin may send/);
    const spelled = Buffer.from('getver').toString('hex');
    expect(validateCreate(input({ payload: { device: 7, text: 'getver', payload_hex: spelled } })).payload_hex).toBe(
      spelled,
    );
  });

  it.each([
    [{ text: '' }, /text is required/],
    [{ text: '   ' }, /text is required/],
    [{ text: 'getinfo\n' + 'x' }, /printable ASCII \(found character U\+0A\)/],
    [{ text: 'gétinfo' }, /printable ASCII \(found character U\+E9\)/],
    [{ text: 'x'.repeat(65) }, /65 bytes; the limit is 64/],
    [{ payload_hex: 'abc' }, /even number of hex digits/],
    [{ payload_hex: 'zz' }, /only hex digits/],
    [{ expires_at: '2026-11-25T11:59:59Z' }, /Expiry must be in the future/],
    [{ expires_at: 'tomorrow' }, /not a valid date/],
    [{ device: null }, /Choose an existing device/],
    [{ device: { imei: '1', name: 'new' } }, /Choose an existing device/],
  ])('refuses %o with a message', (patch, message) => {
    const e = refusal(() => validateCreate(input({ payload: { device: 7, text: 'getinfo', ...patch } })));
    expect(e.message).toMatch(message);
    expect(e.kind).toBe('invalid');
  });

  it('refuses unknown and disabled devices', () => {
    expect(refusal(() => validateCreate(input({ device: { ...device, exists: false } }))).message).toMatch(
      /Device 7 does not exist/,
    );
    expect(refusal(() => validateCreate(input({ device: { ...device, enabled: false } }))).message).toMatch(/disabled/);
  });

  it('lets only admins and sender roles create', () => {
    const e = refusal(() => validateCreate(input({ sender: viewer })));
    expect(e.kind).toBe('forbidden');
    expect(e.message).toMatch(/may not send commands/);
    expect(refusal(() => validateCreate(input({ sender: { user: null, admin: false, roleNames: [] } }))).kind).toBe(
      'forbidden',
    );
    expect(validateCreate(input({ sender: admin })).status).toBe('pending');
  });

  it('keeps commands off the allow-list for admins', () => {
    const payload = { device: 7, text: 'setparam 2004:evil.example.com' };
    const e = refusal(() => validateCreate(input({ payload })));
    expect(e.message).toMatch(/needs the Admin role/);
    expect(validateCreate(input({ payload, sender: admin })).text).toBe('setparam 2004:evil.example.com');
    // The same command smuggled in as a hex payload (which the device gets instead of the text).
    const hex = Buffer.from('setparam 2004:evil.example.com').toString('hex');
    const smuggled = refusal(() =>
      validateCreate(input({ payload: { device: 7, text: 'getinfo', payload_hex: hex } })),
    );
    expect(smuggled.message).toMatch(/hex payload needs the Admin role: "setparam" is not on the allow-list/);
    expect(
      validateCreate(input({ payload: { device: 7, text: 'getinfo', payload_hex: hex }, sender: admin })).payload_hex,
    ).toBe(hex);
  });

  it('refuses forged lifecycle fields from a sender but allows the default status', () => {
    expect(validateCreate(input({ payload: { device: 7, text: 'getver', status: 'pending' } })).status).toBe('pending');
    for (const forged of [{ status: 'answered' }, { response: 'fake' }, { attempts: 9 }, { instance_id: 'x' }]) {
      const e = refusal(() => validateCreate(input({ payload: { device: 7, text: 'getver', ...forged } })));
      expect(e.kind).toBe('forbidden');
      expect(e.message).toMatch(/set by the system/);
    }
    // The extension itself (no sender) may pass lifecycle data through.
    expect(validateCreate(input({ sender: null, payload: { device: 7, text: 'getver', error: 'x' } })).error).toBe('x');
  });
});

describe('updates and devices', () => {
  it('refuses user edits of the command and its lifecycle, allows the system', () => {
    expect(refusal(() => assertUpdateAllowed({ status: 'answered' }, operator)).message).toMatch(
      /cannot be edited \(status\)/,
    );
    expect(refusal(() => assertUpdateAllowed({ text: 'x', response: 'y' }, admin)).message).toMatch(/text, response/);
    expect(() => assertUpdateAllowed({ status: 'sent' }, null)).not.toThrow();
    expect(() => assertUpdateAllowed({ note: 'hello' }, operator)).not.toThrow();
  });
  it('reads the device enable flag under its likely names', () => {
    expect(deviceEnabled({ enabled: true })).toBe(true);
    expect(deviceEnabled({ enabled: false })).toBe(false);
    expect(deviceEnabled({ allowed: false })).toBe(false);
    expect(deviceEnabled({ blocked: true })).toBe(false);
    expect(deviceEnabled({ imei: '1' })).toBe(true);
  });
});
