import { definePanel } from '@directus/extensions-sdk';
import PanelComponent from './panel.vue';

export default definePanel({
  id: 'fleet-reports',
  name: 'Reports',
  icon: 'summarize',
  description:
    'Trips, stops, events, daily summaries and geofence visits of chosen devices over a range, with totals; exports as CSV/XLSX, a trip as GPX/KML; a click shows the row on the fleet map.',
  component: PanelComponent,
  minWidth: 16,
  minHeight: 10,
  options: [
    {
      field: 'limit',
      name: 'Rows at most',
      type: 'integer',
      schema: { default_value: 1000 },
      meta: { width: 'half', interface: 'input', options: { min: 1, max: 10000 } },
    },
  ],
});
