import { defineInterface } from '@directus/extensions-sdk';
import InterfaceComponent from './interface.vue';

/**
 * On the command item: the command's live status and reply (the item form itself does not refresh
 * while open) with Cancel / Retry, the same actions as the command console.
 */
export default defineInterface({
  id: 'fleet-command-live',
  name: 'Command status (live)',
  icon: 'sensors',
  description: 'Live status, reply and Cancel / Retry of a command.',
  component: InterfaceComponent,
  types: ['alias'],
  localTypes: ['presentation'],
  group: 'presentation',
  options: null,
});
