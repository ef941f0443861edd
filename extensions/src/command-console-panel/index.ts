import { definePanel } from '@directus/extensions-sdk';
import { integerOption, refreshOption } from '../shared/panel-options';
import PanelComponent from './panel.vue';

export default definePanel({
  id: 'fleet-command-console',
  name: 'Command console',
  icon: 'terminal',
  description: 'Send a command to a device and follow its status and reply.',
  component: PanelComponent,
  minWidth: 12,
  minHeight: 10,
  options: [refreshOption(3, 120), integerOption('limit', 'Commands shown', { default: 20, min: 1, max: 200 })],
});
