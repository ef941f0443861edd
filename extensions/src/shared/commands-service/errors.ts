/** Directus errors carrying our rule messages, so the Studio shows the reason (not a generic 403). */
import { createError } from '@directus/errors';
import { CommandRuleError } from '../commands';

export const CommandInvalidError = createError<{ reason: string }>('FLEET_COMMAND_INVALID', (e) => e.reason, 400);
export const CommandForbiddenError = createError<{ reason: string }>('FLEET_COMMAND_FORBIDDEN', (e) => e.reason, 403);
export const CommandConflictError = createError<{ reason: string }>('FLEET_COMMAND_CONFLICT', (e) => e.reason, 409);
export const CommandNotFoundError = createError<{ reason: string }>('FLEET_COMMAND_NOT_FOUND', (e) => e.reason, 404);

/** Maps a rule refusal to the matching Directus error; anything else passes through. */
export function toDirectusError(err: unknown): unknown {
  if (err instanceof CommandRuleError) {
    return err.kind === 'forbidden'
      ? new CommandForbiddenError({ reason: err.message })
      : new CommandInvalidError({ reason: err.message });
  }
  return err;
}
