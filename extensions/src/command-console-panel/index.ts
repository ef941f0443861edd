import { definePanel } from '@directus/extensions-sdk';
import PanelComponent from './panel.vue';

export default definePanel({
  id: 'fleet-command-console',
  name: 'Command console',
  icon: 'terminal',
  description: 'Send a command to a device and follow its status and reply.',
  component: PanelComponent,
  minWidth: 12,
  minHeight: 10,
  options: [
    {
      field: 'refreshSeconds',
      name: 'Refresh every (s)',
      type: 'integer',
      schema: { default_value: 3 },
      meta: { width: 'half', interface: 'input', options: { min: 1, max: 120 } },
    },
    {
      field: 'limit',
      name: 'Commands shown',
      type: 'integer',
      schema: { default_value: 20 },
      meta: { width: 'half', interface: 'input', options: { min: 1, max: 200 } },
    },
  ],
});
