import { MAX_COMMAND_BYTES } from '@fleet/daemon/contract/limits';
import { describe, expect, it } from 'vitest';
import * as templates from './templates.js';

describe('command templates', () => {
  it('accepts ready templates and asks for placeholders to be filled', () => {
    for (const t of templates.TEMPLATES) {
      expect(templates.validateCommandText(t.text) === null).toBe(t.needs === undefined);
    }
    expect(templates.validateCommandText('setparam 2004:example.com')).toBeNull();
  });

  it('rejects empty, non-ASCII and overlong text', () => {
    expect(templates.validateCommandText('   ')).toMatch(/Type a command/);
    expect(templates.validateCommandText('getinfo\n')).toBeNull(); // trimmed
    expect(templates.validateCommandText('setparam 1:é')).toMatch(/ASCII/);
    expect(templates.validateCommandText('x'.repeat(MAX_COMMAND_BYTES))).toBeNull();
    expect(templates.validateCommandText('x'.repeat(MAX_COMMAND_BYTES + 1))).toMatch(
      new RegExp(`${MAX_COMMAND_BYTES}`),
    );
  });

  it('knows which states are final and builds the Studio API queries', () => {
    expect(templates.isFinal('answered')).toBe(true);
    expect(templates.isFinal('queued')).toBe(false);
    expect(templates.recentCommandsParams(7)).toMatchObject({ 'filter[device][_eq]': 7, sort: '-created_at' });
    expect(templates.deviceSearchParams(' 3563 ')).toMatchObject({ search: '3563' });
    expect(templates.deviceSearchParams('')).not.toHaveProperty('search');
  });

  it('offers cancel while waiting and retry after a failure', () => {
    expect(templates.actionsFor('pending')).toEqual(['cancel']);
    expect(templates.actionsFor('queued')).toEqual(['cancel']);
    expect(templates.actionsFor('sent')).toEqual([]);
    expect(templates.actionsFor('expired')).toEqual(['retry']);
    expect(templates.actionsFor('answered')).toEqual([]);
    expect(templates.actionPath(12, 'retry')).toBe('/fleet-commands/12/retry');
  });
});

describe('honest command feedback', () => {
  const t = (v: string) => v.slice(0, 10);
  it('says an offline device queues the command until it connects, with the expiry, never "sent"', () => {
    const text = templates.describeCommand({ status: 'pending', expires_at: '2026-12-01T10:00:00Z' }, false, t);
    expect(text).toBe('Queued until the device connects; expires 2026-12-01.');
    expect(templates.describeCommand({ status: 'pending' }, true, t)).not.toMatch(/sent/i);
  });

  it('shows an error-looking reply as an error', () => {
    expect(templates.replyLooksLikeError('Unknown command')).toBe(true);
    expect(templates.replyLooksLikeError('Param ID:2004 error')).toBe(true);
    expect(templates.replyLooksLikeError('DOUT1:1 DOUT2:0')).toBe(false);
    expect(templates.describeCommand({ status: 'answered', response: 'Unknown command' }, true, t)).toMatch(/error/);
  });

  it('asks before outputs and resets, not before reads', () => {
    expect(templates.needsConfirmation('setdigout 1')).toMatch(/outputs/);
    expect(templates.needsConfirmation('cpureset')).toMatch(/restarts/);
    expect(templates.needsConfirmation('getinfo')).toBeNull();
  });
});
