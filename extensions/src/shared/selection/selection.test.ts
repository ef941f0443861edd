import { describe, expect, it } from 'vitest';
import { FleetSelection, type SelectionEvent } from './index.js';

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
