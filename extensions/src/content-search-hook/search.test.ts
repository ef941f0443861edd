import { describe, expect, it } from 'vitest';
import { searchByDevice } from './search.js';

describe('searchByDevice', () => {
  it("turns a search into a filter on the device's IMEI or name, keeping the other filters", () => {
    const byDevice = {
      _or: [{ device: { imei: { _contains: '3500420' } } }, { device: { name: { _icontains: '3500420' } } }],
    };
    expect(searchByDevice({ search: ' 3500420 ', limit: 25 })).toEqual({ limit: 25, filter: byDevice });
    const speed = { speed: { _gt: 10 } };
    expect(searchByDevice({ search: '3500420', filter: speed })).toEqual({ filter: { _and: [speed, byDevice] } });
    expect(searchByDevice({ search: '', limit: 1 })).toEqual({ search: '', limit: 1 });
    expect(searchByDevice({ limit: 1 })).toEqual({ limit: 1 });
  });
});
