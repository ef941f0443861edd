import { defineInterface } from '@directus/extensions-sdk';
import InterfaceComponent from './interface.vue';

/**
 * On the device item: its latest positions and commands, and links that open it on the Fleet
 * dashboard (track, command console) — what an admin looks for after finding a device.
 */
export default defineInterface({
  id: 'fleet-device-links',
  name: 'Device activity and links',
  icon: 'travel_explore',
  description: 'Recent positions and commands of the device, with links to its track and the console.',
  component: InterfaceComponent,
  types: ['alias'],
  localTypes: ['presentation'],
  group: 'presentation',
  options: null,
});
