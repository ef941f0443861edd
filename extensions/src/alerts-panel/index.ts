import { definePanel } from '@directus/extensions-sdk';
import { integerOption, refreshOption } from '../shared/panel-options';
import PanelComponent from './panel.vue';

export default definePanel({
  id: 'fleet-alerts',
  name: 'Alerts',
  icon: 'campaign',
  description: 'Open alerts, newest first, with an acknowledge button; geofence import for administrators.',
  component: PanelComponent,
  minWidth: 12,
  minHeight: 8,
  options: [refreshOption(3, 300), integerOption('limit', 'Alerts shown', { default: 50, min: 1, max: 200 })],
});
