/** The PostgreSQL connection every role builds from the DB_* settings. */
import knexFactory, { type Knex } from 'knex';
import type { Config } from './config.js';

export type DatabaseConfig = Pick<Config, 'DB_HOST' | 'DB_PORT' | 'DB_DATABASE' | 'DB_USER' | 'DB_PASSWORD'>;

/** Host, port, database and credentials, in the shape both knex and `pg.Pool` take. */
export function databaseConnection(config: DatabaseConfig) {
  return {
    host: config.DB_HOST,
    port: config.DB_PORT,
    database: config.DB_DATABASE,
    user: config.DB_USER,
    password: config.DB_PASSWORD,
  };
}

/**
 * A knex instance on the configured database; each role sizes its own pool. `applicationName`
 * names its connections in pg_stat_activity (which backend is whose).
 */
export function connectDatabase(
  config: DatabaseConfig,
  pool: { min: number; max: number },
  applicationName?: string,
): Knex {
  const connection = {
    ...databaseConnection(config),
    ...(applicationName ? { application_name: applicationName } : {}),
  };
  return knexFactory({ client: 'pg', connection, pool });
}
