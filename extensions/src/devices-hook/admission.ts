/** Which device edits change who may connect (pure; the hook turns the answer into a signal). */
import type { DeviceControl } from '@fleet/daemon/contract';

/** The control change an update payload implies for the live sessions, or null if none. */
export function admissionChange(payload: Record<string, unknown>): DeviceControl['change'] | null {
  if (payload.enabled === false || payload.enabled === 'false') return 'disabled';
  if ('enabled' in payload || 'allowed_networks' in payload || 'imei' in payload) return 'changed';
  return null;
}
