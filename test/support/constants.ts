/**
 * Fixed facts of the test environment shared by the harness files.
 * Services: the local PostgreSQL (PostGIS) and Redis, overridable with TEST_DB_HOST/PORT/USER/PASSWORD
 * and TEST_REDIS (never the dev `.env`, so tests can't touch the dev database).
 */
import type { Connection } from '../../directus/src/postgres.mjs';

export const TEST_PG: Omit<Connection, 'database'> = {
  host: process.env.TEST_DB_HOST ?? '127.0.0.1',
  port: Number(process.env.TEST_DB_PORT ?? 5432),
  user: process.env.TEST_DB_USER ?? 'postgres',
  password: process.env.TEST_DB_PASSWORD ?? '',
};
export const TEST_REDIS_URL = process.env.TEST_REDIS ?? 'redis://127.0.0.1:6379';

/** The admin present in every test database (created by `bootstrap` when the template was built). */
export const TEST_ADMIN = {
  email: 'admin@example.com',
  password: 'admin-test-password',
  /** Static token (directus_users.token): `Authorization: Bearer <token>` works without logging in. */
  token: 'fleet-test-admin-token',
} as const;

/** Prefix of every database the harness creates; the template is `${DB_PREFIX}tpl_<hash>`. */
export const DB_PREFIX = 'fleet_test_';
