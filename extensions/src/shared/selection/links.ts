/**
 * Links into the seeded Fleet dashboard that open one device, used from the device item in the
 * Content module: `/insights/<dashboard>?fleet-device=<id>&fleet-show=track|command`. The map and
 * the console read the query when they mount (a selection event sent before navigating would
 * reach no panel: they are not mounted yet).
 */

/** The seeded dashboard's fixed id (directus/seed/50-fleet-dashboard.json; a test keeps them equal). */
export const FLEET_DASHBOARD_ID = '6f1c1c3e-2b7a-4b52-9a55-0e5f6d1a5000';

export type DashboardIntent = 'track' | 'command';

/** The Studio route (relative to `/admin`) that opens the device on the Fleet dashboard. */
export function dashboardLink(deviceId: string | number, show: DashboardIntent): string {
  const q = new URLSearchParams({ 'fleet-device': String(deviceId), 'fleet-show': show });
  return `/insights/${FLEET_DASHBOARD_ID}?${q.toString()}`;
}

/** What a dashboard URL asks the panels to open, or null (also for malformed values). */
export function parseDashboardLink(search: string): { deviceId: string; show: DashboardIntent } | null {
  const q = new URLSearchParams(search);
  const deviceId = q.get('fleet-device') ?? '';
  const show = q.get('fleet-show');
  if (!/^\d{1,18}$/.test(deviceId)) return null;
  if (show !== 'track' && show !== 'command') return null;
  return { deviceId, show };
}
