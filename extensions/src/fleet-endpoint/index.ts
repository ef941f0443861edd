/**
 * Endpoint entry `fleet` (mounted at /fleet): live positions, tracks and pipeline health for the
 * Insights panels, plus the static files the map needs (maplibre's worker, the offline basemap).
 */
import { defineEndpoint } from '@directus/extensions-sdk';
import { registerFleetRoutes } from './routes.js';

export default defineEndpoint({ id: 'fleet', handler: registerFleetRoutes });
