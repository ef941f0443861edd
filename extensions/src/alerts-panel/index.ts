import { definePanel } from '@directus/extensions-sdk';
import PanelComponent from './panel.vue';

export default definePanel({
  id: 'fleet-alerts',
  name: 'Alerts',
  icon: 'campaign',
  description: 'Open alerts, newest first, with an acknowledge button; geofence import for administrators.',
  component: PanelComponent,
  minWidth: 12,
  minHeight: 8,
  options: [
    {
      field: 'refreshSeconds',
      name: 'Refresh every (s)',
      type: 'integer',
      schema: { default_value: 3 },
      meta: { width: 'half', interface: 'input', options: { min: 1, max: 300 } },
    },
    {
      field: 'limit',
      name: 'Alerts shown',
      type: 'integer',
      schema: { default_value: 50 },
      meta: { width: 'half', interface: 'input', options: { min: 1, max: 200 } },
    },
  ],
});
