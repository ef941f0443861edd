import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allowedFor, DEFAULT_ALLOW, MAX_PARAMETER_ID, parseAllowRule, parseCommand } from './parse';

const rules = DEFAULT_ALLOW.map(parseAllowRule);
const operatorMay = (text: string) => {
  const p = parseCommand(text);
  return p.ok && allowedFor(p.command, rules).allowed;
};

describe('parseCommand', () => {
  it.each([
    ['setparam 2004:evil.example.com', [{ id: 2004, value: 'evil.example.com' }]],
    ['setparam 02004:x', [{ id: 2004, value: 'x' }]],
    ['SETPARAM2004:x', [{ id: 2004, value: 'x' }]],
    [
      'setparam 1000:0;2005:7000',
      [
        { id: 1000, value: '0' },
        { id: 2005, value: '7000' },
      ],
    ],
    ['setparam 2004 host', [{ id: 2004, value: 'host' }]],
    ['getparam 2004', [{ id: 2004, value: null }]],
  ])('reads %s as numeric parameter ids', (text, params) => {
    const p = parseCommand(text);
    expect(p.ok && p.command.params).toEqual(params);
  });

  it.each([
    'setparam 2004.0:x',
    'setparam 0x7d4:x',
    'setparam :x',
    'setparam',
    'setparam 99999999:x',
    '1getinfo',
    'get\u0000info',
    'getinfo\r\nsetparam 2004:x',
  ])('refuses %j', (text) => {
    expect(parseCommand(text).ok).toBe(false);
  });

  it('keeps a plain command as a lowercased name and its arguments', () => {
    expect(parseCommand('  SetDigOut 1 ')).toEqual({ ok: true, command: { name: 'setdigout', args: '1', params: [] } });
  });
});

describe('allow-list for non-admins', () => {
  it.each(['getinfo', 'getver', 'setdigout 1', 'getparam 2004', 'GETGPS'])('lets %s through', (text) => {
    expect(operatorMay(text)).toBe(true);
  });

  it.each([
    'setparam 2004:evil.example.com',
    'setparam 02004:x',
    'setparam 2004.0:x',
    'setparam2004:x',
    'setparam 1000:0;2004:x',
    'flush 352093081452251,,,internet,,,evil.example.com,5027,0',
    'defaultcfg',
    'cpureset',
    'getinfo\u0007',
  ])('keeps %j for admins', (text) => {
    expect(operatorMay(text)).toBe(false);
  });

  it('lets configured parameter ranges through, and only those', () => {
    const some = [parseAllowRule('setparam 11000-11999|2')];
    const p = (t: string) => {
      const r = parseCommand(t);
      return r.ok && allowedFor(r.command, some).allowed;
    };
    expect(p('setparam 11500:1;2:0')).toBe(true);
    expect(p('setparam 11500:1;2004:x')).toBe(false);
  });

  it('never lets a setparam of a server parameter (2001-2010) through, however it is written', () => {
    const id = fc.integer({ min: 2001, max: 2010 });
    const spelling = fc.record({
      zeros: fc.integer({ min: 0, max: 3 }),
      sep: fc.constantFrom(':', ' ', ' : '),
      name: fc.constantFrom('setparam', 'SETPARAM', 'SetParam'),
      gap: fc.constantFrom('', ' ', '   '),
      before: fc.array(fc.integer({ min: 0, max: MAX_PARAMETER_ID }), { maxLength: 3 }),
    });
    fc.assert(
      fc.property(id, spelling, fc.string({ maxLength: 20 }), (target, s, value) => {
        const pairs = [...s.before.map((b) => `${b}:0`), `${'0'.repeat(s.zeros)}${target}${s.sep}${value}`];
        expect(operatorMay(`${s.name}${s.gap}${pairs.join(';')}`)).toBe(false);
      }),
    );
  });

  it('never lets text with a control byte through, wherever it is', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DEFAULT_ALLOW),
        fc.nat({ max: 20 }),
        fc.integer({ min: 0, max: 31 }),
        (name, at, code) => {
          const text = `${name} 1`;
          const i = Math.min(at, text.length);
          expect(operatorMay(text.slice(0, i) + String.fromCharCode(code) + text.slice(i))).toBe(false);
        },
      ),
    );
  });

  it('decides on the parsed name only: any printable text parses or is refused, never throws', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) }), (t) => {
        const p = parseCommand(t);
        if (p.ok) expect(p.command.name).toMatch(/^[a-z_]+$/);
      }),
    );
  });
});
