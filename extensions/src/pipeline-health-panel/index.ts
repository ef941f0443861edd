import { definePanel } from '@directus/extensions-sdk';
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
    {
      field: 'lagWarning',
      name: 'Warn from backlog',
      type: 'integer',
      schema: { default_value: 1000 },
      meta: { width: 'half', interface: 'input', note: 'Lag + pending on telemetry:avl', options: { min: 0 } },
    },
    {
      field: 'lagCritical',
      name: 'Critical from backlog',
      type: 'integer',
      schema: { default_value: 10000 },
      meta: { width: 'half', interface: 'input', options: { min: 0 } },
    },
    {
      field: 'deadLetterWarning',
      name: 'Warn from dead letters',
      type: 'integer',
      schema: { default_value: 1 },
      meta: { width: 'half', interface: 'input', options: { min: 1 } },
    },
    {
      field: 'refreshSeconds',
      name: 'Refresh every (s)',
      type: 'integer',
      schema: { default_value: 5 },
      meta: { width: 'half', interface: 'input', options: { min: 1, max: 300 } },
    },
  ],
});
