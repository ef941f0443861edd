import { definePanel } from '@directus/extensions-sdk';
import { integerOption, refreshOption } from '../shared/panel-options';
import PanelComponent from './panel.vue';

export default definePanel({
  id: 'fleet-pipeline-health',
  name: 'Pipeline health',
  icon: 'monitor_heart',
  description: 'Consumer lag (the canary), pending entries, dead letters and live ingestion instances.',
  component: PanelComponent,
  minWidth: 12,
  minHeight: 8,
  options: [
    integerOption('lagWarning', 'Warn from backlog', { default: 1000, min: 0, note: 'Lag + pending on telemetry:avl' }),
    integerOption('lagCritical', 'Critical from backlog', { default: 10000, min: 0 }),
    integerOption('deadLetterWarning', 'Warn from dead letters', { default: 1, min: 1 }),
    refreshOption(5, 300),
  ],
});
