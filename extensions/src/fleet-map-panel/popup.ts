/** Popup HTML for a device or a stop. Everything from the database is escaped. */
import { IO_DICTIONARY, type IoDefinition } from '@fleet/daemon/protocol';
import { formatAge, formatDuration, formatTime } from '../shared/format/index.js';
import type { DeviceProps } from './fleet-state.js';

export function escapeHtml(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const BY_NAME = new Map<string, IoDefinition>([...IO_DICTIONARY.values()].map((d) => [d.name, d]));

/** Metres become km for odometers; everything else keeps the unit the protocol defines. */
function withUnit(value: number, unit: string | null): string {
  if (unit === 'm' && Math.abs(value) >= 1000)
    return `${(value / 1000).toLocaleString('en', { maximumFractionDigits: 1 })} km`;
  const text = Number.isInteger(value) ? String(value) : value.toLocaleString('en', { maximumFractionDigits: 3 });
  return unit ? `${text} ${unit}` : text;
}

/**
 * An attribute as a person reads it: the protocol's label ("External Voltage") and the value with
 * its unit ("12.6 V"), on/off for switches, the documented meaning for enumerations.
 */
export function describeAttribute(name: string, value: unknown): { label: string; text: string } {
  const def = BY_NAME.get(name);
  const label = def?.label ?? name;
  if (value === null || value === undefined) return { label, text: '–' };
  if (typeof value === 'boolean') return { label, text: value ? 'on' : 'off' };
  if (typeof value === 'number') {
    if (def?.kind === 'boolean') return { label, text: value ? 'on' : 'off' };
    if (def?.kind === 'enum' && def.values?.[value]) return { label, text: def.values[value] };
    return { label, text: withUnit(value, def?.unit ?? null) };
  }
  return { label, text: typeof value === 'object' ? JSON.stringify(value) : String(value) };
}

/**
 * Links carry `data-action` so the panel handles them itself (a drawer over the dashboard, the
 * console on the same dashboard); "new tab" is a plain link.
 */
export function devicePopupHtml(p: DeviceProps, deviceUrl: string, now = Date.now()): string {
  const attrs = Object.entries(p.attrs ?? {})
    .map(([k, v]) => {
      const a = describeAttribute(k, v);
      return `<tr><th>${escapeHtml(a.label)}</th><td>${escapeHtml(a.text)}</td></tr>`;
    })
    .join('');
  const fix = p.fix ? `${escapeHtml(formatTime(p.fix))} (${formatAge(p.fix, now)})` : 'no fix';
  const heading = p.heading !== null && p.heading !== undefined ? `, heading ${escapeHtml(p.heading)}°` : '';
  return `<div class="fleet-popup" data-device="${escapeHtml(p.id)}">
<strong>${escapeHtml(p.name)}</strong> <span class="fleet-status fleet-status-${escapeHtml(p.status)}">${escapeHtml(p.status)}</span>
<table>
<tr><th>IMEI</th><td>${escapeHtml(p.imei)}</td></tr>
<tr><th>Speed</th><td class="fleet-popup-speed">${p.speed ?? '–'} km/h${heading}</td></tr>
<tr><th>Last fix</th><td class="fleet-popup-fix">${fix}</td></tr>
<tr><th>Last seen</th><td class="fleet-popup-seen">${formatAge(p.seen, now)}</td></tr>
${attrs}
</table>
<div class="fleet-popup-actions">
<a href="#" data-action="open-device">Details</a>
<a href="${escapeHtml(deviceUrl)}" target="_blank" rel="noopener" class="fleet-popup-newtab">New tab ↗</a>
<a href="#" data-action="send-command">Send command</a>
<a href="#" data-action="show-track">Track (24 h)</a>
</div></div>`;
}

export function stopPopupHtml(p: { from: number; to: number; durationS: number }): string {
  return `<div class="fleet-popup"><strong>Stop</strong> ${formatDuration(p.durationS)}<br>${escapeHtml(formatTime(p.from))} – ${escapeHtml(formatTime(p.to))}</div>`;
}
