/**
 * Command settings read from the Directus environment (`context.env`). Directus casts env values
 * ("24" → 24, "true" → true), so every field accepts numbers and strings alike.
 */
import { type KeyLayout, keyLayoutFromEnv, parseClusterNodes, type RedisTarget } from '@fleet/daemon/contract';
import { MAX_COMMAND_BYTES } from '@fleet/daemon/contract/limits';
import { z } from 'zod';
import { type AllowRule, DEFAULT_ALLOW, parseAllowRule } from './parse';

const list = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter((s) => s.length > 0));

const positive = (def: number) => z.coerce.number().positive().default(def);

export const CommandConfigSchema = z.object({
  /** Redis URL; when absent (and no REDIS_HOST) dispatch is disabled and commands stay pending. */
  REDIS: z.coerce.string().optional(),
  REDIS_HOST: z.coerce.string().optional(),
  REDIS_PORT: z.coerce.number().int().positive().optional(),
  REDIS_USERNAME: z.coerce.string().optional(),
  REDIS_PASSWORD: z.coerce.string().optional(),
  /** Prefix of every contract key ('' in production, random in tests). */
  FLEET_REDIS_PREFIX: z.coerce.string().default(''),
  /** Default lifetime of a new command. */
  FLEET_COMMAND_TTL_HOURS: positive(24),
  /**
   * Comma-separated allow-list: what non-admins may send (`name`, or `setparam 11000-11999|2`
   * for some parameter ids). Everything else needs an Administrator.
   */
  FLEET_COMMAND_ALLOW: list.default([...DEFAULT_ALLOW]),
  /** Dispatch attempts before a command whose instance keeps vanishing is marked failed. */
  FLEET_COMMAND_MAX_ATTEMPTS: z.coerce.number().int().min(1).default(5),
  /** Role names (besides admins) allowed to create, cancel and retry commands. */
  FLEET_COMMAND_SENDER_ROLES: list.default(['Operator']),
  /** Sweeper cadence (cron with seconds). */
  FLEET_COMMAND_SWEEP_CRON: z.coerce.string().default('*/15 * * * * *'),
  /** A `queued` command older than this whose outbound entry is gone is re-dispatched. */
  FLEET_COMMAND_LOST_AFTER_SECONDS: z.coerce.number().min(0).default(60),
  /** Stream entries left unacknowledged by a dead Directus consumer are claimed after this. */
  FLEET_COMMAND_CLAIM_IDLE_MS: z.coerce.number().int().min(100).default(60_000),
});

export interface CommandConfig {
  /** Directus's own single Redis (`REDIS` or `REDIS_HOST`/…); null when Redis is off. */
  redisUrl: string | null;
  /**
   * The telemetry plane's Redis: the cluster in `REDIS_CLUSTER_NODES` when set (Directus itself
   * cannot use a cluster and keeps `REDIS`), else `redisUrl`; null when neither is set.
   */
  redis: RedisTarget | null;
  /** Telemetry partitions and cluster hash tags, as the daemon reads them. */
  keyLayout: Required<KeyLayout>;
  prefix: string;
  ttlMs: number;
  allowRules: AllowRule[];
  maxAttempts: number;
  /** The contract's command limit (`MAX_COMMAND_BYTES`); a field so tests can narrow it. */
  maxBytes: number;
  senderRoles: string[];
  sweepCron: string;
  lostAfterMs: number;
  claimIdleMs: number;
}

export class CommandConfigError extends Error {
  override name = 'CommandConfigError';
}

export function parseCommandConfig(env: Record<string, unknown>): CommandConfig {
  const defined = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== null && v !== ''));
  const parsed = CommandConfigSchema.safeParse(defined);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new CommandConfigError(`Invalid command configuration: ${lines.join('; ')}`);
  }
  const c = parsed.data;
  let allowRules: AllowRule[];
  try {
    allowRules = c.FLEET_COMMAND_ALLOW.map(parseAllowRule);
  } catch (err) {
    throw new CommandConfigError(`Invalid command configuration: FLEET_COMMAND_ALLOW: ${(err as Error).message}`);
  }
  let redisUrl: string | null = c.REDIS ?? null;
  if (!redisUrl && c.REDIS_HOST) {
    const auth = c.REDIS_PASSWORD
      ? `${encodeURIComponent(c.REDIS_USERNAME ?? '')}:${encodeURIComponent(c.REDIS_PASSWORD)}@`
      : '';
    redisUrl = `redis://${auth}${c.REDIS_HOST}:${c.REDIS_PORT ?? 6379}`;
  }
  if (env.REDIS_ENABLED === false || env.REDIS_ENABLED === 'false') redisUrl = null;
  let keyLayout: Required<KeyLayout>;
  let cluster: ReturnType<typeof parseClusterNodes>;
  try {
    cluster = parseClusterNodes(env.REDIS_CLUSTER_NODES);
    keyLayout = keyLayoutFromEnv(env);
  } catch (err) {
    throw new CommandConfigError(`Invalid command configuration: ${(err as Error).message}`);
  }
  return {
    redisUrl,
    redis: cluster ? { kind: 'cluster', ...cluster } : redisUrl ? { kind: 'single', url: redisUrl } : null,
    keyLayout,
    prefix: c.FLEET_REDIS_PREFIX,
    ttlMs: c.FLEET_COMMAND_TTL_HOURS * 3_600_000,
    allowRules,
    maxAttempts: c.FLEET_COMMAND_MAX_ATTEMPTS,
    maxBytes: MAX_COMMAND_BYTES,
    senderRoles: c.FLEET_COMMAND_SENDER_ROLES,
    sweepCron: c.FLEET_COMMAND_SWEEP_CRON,
    lostAfterMs: c.FLEET_COMMAND_LOST_AFTER_SECONDS * 1000,
    claimIdleMs: c.FLEET_COMMAND_CLAIM_IDLE_MS,
  };
}
