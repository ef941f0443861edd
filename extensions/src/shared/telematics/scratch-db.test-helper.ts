/**
 * Interim test database: a fresh PostGIS database with the `devices`/`positions` columns this
 * module reads, until the shared template-based harness (test/support/db.ts) is in place.
 */
import knexFactory, { type Knex } from 'knex';

const ADMIN = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres' };

export interface ScratchDb {
  db: Knex;
  drop(): Promise<void>;
}

export async function createScratchDb(): Promise<ScratchDb> {
  const name = `fleet_tele_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = knexFactory({ client: 'pg', connection: ADMIN, pool: { min: 0, max: 1 } });
  await admin.raw(`CREATE DATABASE ${name}`);
  const db = knexFactory({ client: 'pg', connection: { ...ADMIN, database: name }, pool: { min: 0, max: 4 } });
  await db.raw(`
    CREATE EXTENSION IF NOT EXISTS postgis;
    CREATE TABLE devices (
      id serial PRIMARY KEY, imei varchar(17) UNIQUE NOT NULL, name varchar(255), model varchar(64),
      enabled boolean DEFAULT true, last_seen_at timestamptz, last_fix_at timestamptz,
      last_location geometry(Point,4326), last_speed real, last_heading real, last_attributes json,
      online boolean DEFAULT false, instance_id varchar(255));
    CREATE TABLE positions (
      id bigserial PRIMARY KEY, device integer NOT NULL REFERENCES devices(id), fix_time timestamptz NOT NULL,
      received_at timestamptz, location geometry(Point,4326), altitude real, heading real, speed real,
      satellites int, priority int, event_io_id int, io json, attributes json, flags json,
      UNIQUE (device, fix_time));`);
  return {
    db,
    async drop() {
      await db.destroy();
      await admin.raw(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.destroy();
    },
  };
}
