/** Directus errors for the alerts endpoint and hook, carrying the reason the Studio shows. */
import { createError } from '@directus/errors';

export const AlertsInvalidError = createError<{ reason: string }>('FLEET_ALERTS_INVALID', (e) => e.reason, 400);
export const AlertsForbiddenError = createError<{ reason: string }>('FLEET_ALERTS_FORBIDDEN', (e) => e.reason, 403);
export const AlertsNotFoundError = createError<{ reason: string }>('FLEET_ALERTS_NOT_FOUND', (e) => e.reason, 404);
