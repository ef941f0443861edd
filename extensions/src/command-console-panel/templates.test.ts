import { describe, expect, it } from 'vitest';
import {
  actionPath,
  actionsFor,
  deviceSearchParams,
  isFinal,
  recentCommandsParams,
  TEMPLATES,
  validateCommandText,
} from './templates.js';

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

  it('offers cancel while waiting and retry after a failure', () => {
    expect(actionsFor('pending')).toEqual(['cancel']);
    expect(actionsFor('queued')).toEqual(['cancel']);
    expect(actionsFor('sent')).toEqual([]);
    expect(actionsFor('expired')).toEqual(['retry']);
    expect(actionsFor('answered')).toEqual([]);
    expect(actionPath(12, 'retry')).toBe('/fleet-commands/12/retry');
  });
});
