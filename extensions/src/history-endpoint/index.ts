/**
 * Endpoint entry `fleet-history` (mounted at /fleet-history): the Reports panel's tables and their
 * exports (CSV, XLSX), and one trip's track as GPX or KML. Items are read through Directus's
 * ItemsService with the caller's accountability, so the roles' permissions decide.
 */
import { defineEndpoint } from '@directus/extensions-sdk';
import { registerHistoryRoutes } from './routes.js';

export default defineEndpoint({ id: 'fleet-history', handler: registerHistoryRoutes });
