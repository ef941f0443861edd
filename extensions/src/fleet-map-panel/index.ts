import { definePanel } from '@directus/extensions-sdk';
import { DEFAULT_POPUP_ATTRIBUTES } from '@fleet/daemon/contract/attributes';
import { integerOption, refreshOption } from '../shared/panel-options';
import { prewarmMap } from './fleet-map.js';
import PanelComponent from './panel.vue';
import { prefetchPositions } from './positions-client.js';

// The Studio loads the bundle at boot, well before a dashboard mounts this panel: the first
// positions (on a page that showed the map before) and the map's worker start now.
prefetchPositions();
prewarmMap();

export default definePanel({
  id: 'fleet-map',
  name: 'Fleet map',
  icon: 'map',
  description: 'Live positions of every device (clustered) on the street map, a device list, popups, and track replay.',
  component: PanelComponent,
  minWidth: 16,
  minHeight: 12,
  options: [
    {
      field: 'basemap',
      name: 'Basemap',
      type: 'string',
      meta: {
        width: 'full',
        interface: 'input',
        options: {
          placeholder:
            'empty = the Studio basemap (Settings → Maps); a basemap name; offline; or a tile / style.json URL',
        },
        note: 'Empty uses the project basemaps (OpenStreetMap by default); "offline" draws country outlines only. Other hosts must be allowed by the content-security policy (CONTENT_SECURITY_POLICY_DIRECTIVES__CONNECT_SRC / IMG_SRC).',
      },
    },
    { field: 'attribution', name: 'Attribution', type: 'string', meta: { width: 'full', interface: 'input' } },
    refreshOption(5, 300, 'pollSeconds'),
    integerOption('movingSpeedKmh', 'Moving from (km/h)', { default: 5, min: 0 }),
    {
      field: 'attributes',
      name: 'Attributes in popup',
      type: 'string',
      schema: { default_value: DEFAULT_POPUP_ATTRIBUTES.join(',') },
      meta: {
        width: 'full',
        interface: 'input',
        note: 'Comma-separated names from devices.last_attributes (empty: the default set)',
      },
    },
    integerOption('clusterMaxZoom', 'Cluster up to zoom', { default: 12, min: 0, max: 20 }),
  ],
});
