import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FleetSelection, type SelectionEvent } from './index.js';
import { dashboardLink, FLEET_DASHBOARD_ID, parseDashboardLink } from './links.js';

const truck = { id: 7, name: 'Truck', imei: '350000000000007' };

describe('FleetSelection', () => {
  it('tells every subscriber which device was selected and by whom, once per change', () => {
    const s = new FleetSelection();
    const seen: SelectionEvent[] = [];
    const off = s.subscribe((e) => seen.push(e));
    s.select({ ...truck, extra: 1 } as typeof truck, 'list');
    s.select({ ...truck, id: '7' }, 'map'); // the same device: no echo
    expect(s.device).toEqual(truck);
    expect(seen).toEqual([{ type: 'select', device: truck, source: 'list' }]);
    off();
    s.select(null, 'list');
    expect(seen).toHaveLength(1);
    expect(s.device).toBeNull();
  });

  it('selects the device of a track request before passing the request on', () => {
    const s = new FleetSelection();
    const seen: string[] = [];
    s.subscribe((e) => seen.push(e.type === 'select' ? `select ${e.device?.id}` : `request ${e.request.kind}`));
    s.request({ kind: 'track', device: truck, fromMs: 0, toMs: 1 }, 'reports');
    s.request({ kind: 'centre', lng: 10, lat: 50 }, 'reports');
    expect(seen).toEqual(['select 7', 'request track', 'request centre']);
  });
});

describe('links into the Fleet dashboard', () => {
  it('round-trips a device and what to show, and refuses anything else', () => {
    const link = dashboardLink(42, 'track');
    expect(link).toBe(`/insights/${FLEET_DASHBOARD_ID}?fleet-device=42&fleet-show=track`);
    expect(parseDashboardLink(link.slice(link.indexOf('?')))).toEqual({ deviceId: '42', show: 'track' });
    expect(parseDashboardLink('?fleet-device=7&fleet-show=command')).toEqual({ deviceId: '7', show: 'command' });
    expect(parseDashboardLink('?fleet-device=7&fleet-show=delete')).toBeNull();
    expect(parseDashboardLink('?fleet-device=1%20OR%201&fleet-show=track')).toBeNull();
    expect(parseDashboardLink('')).toBeNull();
  });

  it('names the dashboard the seed creates', () => {
    const seed = JSON.parse(
      readFileSync(join(import.meta.dirname, '../../../../directus/seed/50-fleet-dashboard.json'), 'utf8'),
    ) as { rows: { directus_dashboards: { id: string; name: string }[] } };
    expect(seed.rows.directus_dashboards.map((d) => [d.id, d.name])).toEqual([[FLEET_DASHBOARD_ID, 'Fleet']]);
  });
});
