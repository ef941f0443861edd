import { describe, expect, it } from 'vitest';
import { type ConnectionEvent, encodeRegistryValue } from '../contract/index.js';
import { deviceStateChanges } from './device-state.js';

const ev = (type: ConnectionEvent['type'], imei: string, instance: string, at: number): ConnectionEvent => ({
  type,
  imei,
  instance,
  at,
  reason: '',
  remote: '',
  transport: 'tcp',
});

describe('deviceStateChanges', () => {
  it('follows the registry, not the order events arrive in', () => {
    const registry = new Map([['A', encodeRegistryValue({ instance: 'ing-b', connectedAt: 20 })]]);
    // The old socket's disconnect arrives after the reconnect elsewhere: the device stays online on b.
    const changes = deviceStateChanges(
      [ev('connected', 'A', 'ing-b', 20), ev('disconnected', 'A', 'ing-a', 25)],
      registry,
      new Set(['ing-a', 'ing-b']),
    );
    expect(changes).toEqual([{ imei: 'A', online: true, instance: 'ing-b', connectedAt: 20 }]);
  });
  it('is offline when no instance holds the device, or the holder has no heartbeat', () => {
    const registry = new Map<string, string | null>([
      ['A', null],
      ['B', encodeRegistryValue({ instance: 'dead', connectedAt: 5 })],
    ]);
    const changes = deviceStateChanges(
      [ev('connected', 'A', 'ing-a', 10), ev('disconnected', 'A', 'ing-a', 11), ev('connected', 'B', 'dead', 5)],
      registry,
      new Set(['ing-a']),
    );
    expect(changes).toEqual([
      { imei: 'A', online: false, instance: null, connectedAt: 10 },
      { imei: 'B', online: false, instance: null, connectedAt: 5 },
    ]);
  });
});
