/** Content-module search on positions finds them by their device's IMEI or name (see ./search.ts). */
import { defineHook } from '@directus/extensions-sdk';
import { type ItemsQuery, SEARCH_BY_DEVICE, searchByDevice } from './search';

export default defineHook(({ filter }) => {
  for (const collection of SEARCH_BY_DEVICE) {
    filter(`${collection}.items.query`, (query) => searchByDevice(query as ItemsQuery));
  }
});
