import { MAX_COMMAND_BYTES } from '@fleet/daemon/contract/limits';
import { describe, expect, it } from 'vitest';
import {
  actionPath,
  actionsFor,
  describeCommand,
  deviceSearchParams,
  isFinal,
  needsConfirmation,
  recentCommandsParams,
  replyLooksLikeError,
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
    expect(validateCommandText('x'.repeat(MAX_COMMAND_BYTES))).toBeNull();
    expect(validateCommandText('x'.repeat(MAX_COMMAND_BYTES + 1))).toMatch(new RegExp(`${MAX_COMMAND_BYTES}`));
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

describe('honest command feedback', () => {
  const t = (v: string) => v.slice(0, 10);
  it('says an offline device queues the command until it connects, with the expiry, never "sent"', () => {
    const text = describeCommand({ status: 'pending', expires_at: '2026-12-01T10:00:00Z' }, false, t);
    expect(text).toBe('Queued until the device connects; expires 2026-12-01.');
    expect(describeCommand({ status: 'pending' }, true, t)).not.toMatch(/sent/i);
  });

  it('shows an error-looking reply as an error', () => {
    expect(replyLooksLikeError('Unknown command')).toBe(true);
    expect(replyLooksLikeError('Param ID:2004 error')).toBe(true);
    expect(replyLooksLikeError('DOUT1:1 DOUT2:0')).toBe(false);
    expect(describeCommand({ status: 'answered', response: 'Unknown command' }, true, t)).toMatch(/error/);
  });

  it('asks before outputs and resets, not before reads', () => {
    expect(needsConfirmation('setdigout 1')).toMatch(/outputs/);
    expect(needsConfirmation('cpureset')).toMatch(/restarts/);
    expect(needsConfirmation('getinfo')).toBeNull();
  });
});
