/** Popup HTML for a device or a stop. Everything from the database is escaped. */
import type { DeviceProps } from './fleet-state.js';

export function escapeHtml(v: unknown): string {
  return String(v ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function formatAge(ms: number | null, now = Date.now()): string {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? `${h} h ${m} min` : `${m} min`;
}

/**
 * Links carry `data-action` so the panel handles them with the Studio's router (no page reload)
 * and can hand the device to the command console on the same dashboard.
 */
export function devicePopupHtml(p: DeviceProps, now = Date.now()): string {
  const attrs = Object.entries(p.attrs ?? {})
    .map(
      ([k, v]) =>
        `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`,
    )
    .join('');
  const fix = p.fix
    ? `${escapeHtml(new Date(p.fix).toISOString().replace('T', ' ').slice(0, 19))} UTC (${formatAge(p.fix, now)})`
    : 'no fix';
  return `<div class="fleet-popup" data-device="${escapeHtml(p.id)}">
<strong>${escapeHtml(p.name)}</strong> <span class="fleet-status fleet-status-${escapeHtml(p.status)}">${escapeHtml(p.status)}</span>
<table>
<tr><th>IMEI</th><td>${escapeHtml(p.imei)}</td></tr>
<tr><th>Speed</th><td>${p.speed ?? '–'} km/h${p.heading !== null && p.heading !== undefined ? `, heading ${escapeHtml(p.heading)}°` : ''}</td></tr>
<tr><th>Last fix</th><td>${fix}</td></tr>
<tr><th>Last seen</th><td>${formatAge(p.seen, now)}</td></tr>
${attrs}
</table>
<div class="fleet-popup-actions">
<a href="#" data-action="open-device">Open device</a>
<a href="#" data-action="send-command">Send command</a>
<a href="#" data-action="show-track">Track (24 h)</a>
</div></div>`;
}

export function stopPopupHtml(p: { from: number; to: number; durationS: number }): string {
  const t = (ms: number) => escapeHtml(new Date(ms).toISOString().replace('T', ' ').slice(0, 16));
  return `<div class="fleet-popup"><strong>Stop</strong> ${formatDuration(p.durationS)}<br>${t(p.from)} – ${t(p.to)} UTC</div>`;
}

/** 1234 → "1.2k": cluster labels stay inside their circle. */
export function formatCount(n: number): string {
  if (n < 1000) return String(n);
  return n < 10_000 ? `${(n / 1000).toFixed(1)}k` : `${Math.round(n / 1000)}k`;
}
