import { defineDisplay } from '@directus/extensions-sdk';
import DisplayComponent from './display.vue';

/**
 * A position as "latitude, longitude" in Content lists and related items: Directus shows a
 * geometry column as raw GeoJSON or an icon, which says nothing at a glance.
 */
export default defineDisplay({
  id: 'fleet-coordinates',
  name: 'Coordinates',
  icon: 'my_location',
  description: 'A point as latitude, longitude (5 decimals).',
  component: DisplayComponent,
  options: null,
  types: ['geometry', 'json', 'csv', 'string', 'text'],
});
