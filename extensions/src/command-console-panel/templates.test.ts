import { describe, expect, it } from 'vitest';
import { deviceSearchParams, isFinal, recentCommandsParams, TEMPLATES, validateCommandText } from './templates.js';

describe('command templates', () => {
  it('accepts ready templates and asks for placeholders to be filled', () => {
    for (const t of TEMPLATES) {
      expect(validateCommandText(t.text) === null).toBe(t.needs === undefined);
    }
    expect(validateCommandText('setparam 2004:example.com')).toBeNull();
  });

  it('rejects empty, non-ASCII and overlong text', () => {
    expect(validateCommandText('   ')).toMatch(/Type a command/);
    expect(validateCommandText('getinfo\n')).toBeNull(); // trimmed
    expect(validateCommandText('setparam 1:é')).toMatch(/ASCII/);
    expect(validateCommandText('x'.repeat(513))).toMatch(/512/);
  });

  it('knows which states are final and builds the Studio API queries', () => {
    expect(isFinal('answered')).toBe(true);
    expect(isFinal('queued')).toBe(false);
    expect(recentCommandsParams(7)).toMatchObject({ 'filter[device][_eq]': 7, sort: '-created_at' });
    expect(deviceSearchParams(' 3563 ')).toMatchObject({ search: '3563' });
    expect(deviceSearchParams('')).not.toHaveProperty('search');
  });
});
