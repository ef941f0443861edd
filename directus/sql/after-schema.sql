-- Runs after `directus schema apply` on every deploy (and when the test template is built).
-- Holds what a Directus snapshot cannot express: composite, partial and GiST indexes.
-- Every statement must be idempotent.

-- Natural key of a position: (device, fix_time, event_io_id). A device resends a whole AVL packet
-- when our ACK is lost, and the pipeline may redeliver a stream entry: byte-identical records then
-- collide and the writer's ON CONFLICT DO NOTHING drops them. event_io_id is part of the key because
-- a tracker may emit two distinct event records (say ignition on and a digital input) in the same
-- millisecond; both must survive. positions is partitioned (positions-partitions.sql), so the key is
-- enforced by the primary key, which is derived from these three columns; this index is not unique
-- (PostgreSQL would need the partition key in it) and serves "latest positions of a device"
-- (ORDER BY fix_time DESC LIMIT n) and "track of one device between two times" (range scan).
CREATE INDEX IF NOT EXISTS positions_device_fix_time_event ON positions (device, fix_time, event_io_id);

-- No single-column indexes here: Directus reports any single-column index as the field's
-- `is_indexed` and the next `schema apply` then tries to drop it (under Directus's own index name,
-- failing). Single-column indexes belong in the snapshot (field schema `is_indexed: true`); a GiST
-- index on devices.last_location or a BRIN on positions.fix_time would need that treatment.

-- The processor rewrites a device's row for every batch that carries the device (last_seen_at,
-- last_fix_at, last_location, …: none of them indexed). With room left on each page such updates
-- are HOT: no new entries in devices' two indexes, and the old version is pruned in place. On full
-- pages about half of them were not. Half-empty pages made 91 % of them HOT and cut the device
-- statement's backend CPU from 2.9 to 2.3 µs per position row (one device row per ten position
-- rows; 30 % free space: 100 % HOT, 2.2 µs). Only new and rewritten pages follow the setting.
ALTER TABLE devices SET (fillfactor = 50);

-- Pending work per device, looked up when a device connects and by the sweeper.
CREATE INDEX IF NOT EXISTS commands_device_status ON commands (device, status);

-- Integrity the daemon's plain-SQL writes cannot skip (Directus validates only its own API):
-- an IMEI is exactly 15 digits; a command status is one of the lifecycle states.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'devices_imei_15_digits') THEN
    ALTER TABLE devices ADD CONSTRAINT devices_imei_15_digits CHECK (imei ~ '^[0-9]{15}$');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'commands_status_known') THEN
    ALTER TABLE commands ADD CONSTRAINT commands_status_known
      CHECK (status IN ('pending', 'queued', 'sent', 'answered', 'failed', 'expired', 'cancelled'));
  END IF;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Geofences and alerts
-- ---------------------------------------------------------------------------------------------

-- One shape per geofence, always a MultiPolygon in WGS 84: the circle (centre + radius_m) and the
-- corridor (route + width_m) forms are buffered on the geography (metres, not degrees) into
-- `area`, a drawn Polygon becomes a MultiPolygon, an invalid ring is repaired. In the database,
-- not in the extension, so rows written by any client (Studio, REST, import, daemon) agree.
CREATE OR REPLACE FUNCTION geofences_normalise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.center IS NOT NULL AND NEW.radius_m IS NOT NULL THEN
    IF NEW.radius_m <= 0 THEN
      RAISE EXCEPTION 'geofence radius_m must be positive' USING ERRCODE = '22023';
    END IF;
    NEW.area := ST_Buffer(ST_SetSRID(NEW.center, 4326)::geography, NEW.radius_m, 'quad_segs=16')::geometry;
  ELSIF NEW.corridor IS NOT NULL AND NEW.width_m IS NOT NULL THEN
    IF NEW.width_m <= 0 THEN
      RAISE EXCEPTION 'geofence width_m must be positive' USING ERRCODE = '22023';
    END IF;
    NEW.area := ST_Buffer(ST_SetSRID(NEW.corridor, 4326)::geography, NEW.width_m / 2)::geometry;
  END IF;
  IF NEW.area IS NULL THEN
    RAISE EXCEPTION 'a geofence needs an area (Polygon or MultiPolygon), a center with radius_m, or a corridor with width_m'
      USING ERRCODE = '22023';
  END IF;
  NEW.area := ST_SetSRID(NEW.area, 4326);
  IF NOT ST_IsValid(NEW.area) THEN
    NEW.area := ST_CollectionExtract(ST_MakeValid(NEW.area), 3);
  END IF;
  IF GeometryType(NEW.area) NOT IN ('POLYGON', 'MULTIPOLYGON') OR ST_IsEmpty(NEW.area) THEN
    RAISE EXCEPTION 'geofence area must be a Polygon or MultiPolygon, not %', GeometryType(NEW.area)
      USING ERRCODE = '22023';
  END IF;
  NEW.area := ST_Multi(NEW.area);
  RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS geofences_normalise ON geofences;
CREATE TRIGGER geofences_normalise BEFORE INSERT OR UPDATE ON geofences
  FOR EACH ROW EXECUTE FUNCTION geofences_normalise();

-- The spatial index of the geofence check. An expression index (ST_Multi(area) is a no-op on the
-- normalised column), because Directus reads any index on the bare column as the field's
-- `is_indexed` and would try to drop it on the next `schema apply`; queries must use the same
-- expression (see daemon/src/alerts/geofence-sql.ts).
CREATE INDEX IF NOT EXISTS geofences_area_gist ON geofences USING gist ((ST_Multi(area)));

-- Natural key of an alert: a rule fires at most once per qualifying event, whatever re-derives,
-- replays or restarts. The daemon inserts with ON CONFLICT DO NOTHING and creates deliveries only
-- for the rows it really inserted. Also serves the cooldown lookup (rule, device, time range).
CREATE UNIQUE INDEX IF NOT EXISTS alerts_natural_key
  ON alerts (rule, device, event_time, event_type, event_key);
-- The Alerts panel: open alerts, newest first.
CREATE INDEX IF NOT EXISTS alerts_state_time ON alerts (state, event_time);

-- One delivery per alert, channel and target; senders claim due rows by (status, next_attempt_at).
CREATE UNIQUE INDEX IF NOT EXISTS alert_deliveries_identity ON alert_deliveries (alert, channel, target);
CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (status, next_attempt_at);

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alerts_state_known') THEN
    ALTER TABLE alerts ADD CONSTRAINT alerts_state_known CHECK (state IN ('open', 'acknowledged', 'resolved'));
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'alert_deliveries_known') THEN
    ALTER TABLE alert_deliveries ADD CONSTRAINT alert_deliveries_known
      CHECK (channel IN ('app', 'email', 'webhook') AND status IN ('pending', 'sending', 'delivered', 'failed'));
  END IF;
END $$;

-- ---------------------------------------------------------------------------------------------
-- Fleet history
-- ---------------------------------------------------------------------------------------------

-- History (daemon/src/history): natural keys of the derived rows. The history worker upserts on
-- them, so re-deriving a window keeps every row's identity (alerts key on events).
CREATE UNIQUE INDEX IF NOT EXISTS trips_device_start_key ON trips (device, start_time);
CREATE UNIQUE INDEX IF NOT EXISTS stops_device_start_key ON stops (device, start_time);
CREATE UNIQUE INDEX IF NOT EXISTS events_device_type_time_key ON events (device, type, time, key);
CREATE UNIQUE INDEX IF NOT EXISTS daily_summaries_device_day_key ON daily_summaries (device, day);
-- Reports list a device's events by time.
CREATE INDEX IF NOT EXISTS events_device_time ON events (device, time);

-- Durable "work to do" for the history worker: the processor inserts one row per device and batch
-- in the same statement (so the same transaction) as the positions; the worker deletes the rows it
-- handled in the transaction that replaces the derived rows. A crash in between loses nothing.
-- Append-only on the processor side (no upsert, so no row lock shared between processors and the
-- worker). A plain table, not a Directus collection: Directus ignores it and the Core tier does
-- not count it.
-- Written on the telemetry path, so as lean as a durable row gets: one index, no sequence, no
-- foreign key (its check is a query and a row lock on devices per mark; together they made a mark
-- about four times as costly). The worker drops the marks of a device that no longer exists.
CREATE TABLE IF NOT EXISTS history_dirty (
  device integer NOT NULL,
  from_time timestamptz NOT NULL,
  to_time timestamptz NOT NULL,
  marked_at timestamptz NOT NULL DEFAULT now(),
  -- The oldest receive time of the rows marked (null for marks not written by the processor):
  -- marked_at minus this is how far behind the processor was, and the worker yields while it is.
  received_from timestamptz
);
ALTER TABLE history_dirty ADD COLUMN IF NOT EXISTS received_from timestamptz;
-- Databases created with the earlier shape (a bigserial id and a foreign key; dropping the column
-- drops its primary key and the (device, id) index with it).
ALTER TABLE history_dirty DROP CONSTRAINT IF EXISTS history_dirty_device_fkey;
ALTER TABLE history_dirty DROP COLUMN IF EXISTS id;
CREATE INDEX IF NOT EXISTS history_dirty_device ON history_dirty (device);

-- The transaction that last derived each device (written by every derivation, worker or
-- `derive --from`, with its marks deleted): a worker that keeps a device's window positions in
-- memory trusts that copy only while the device's last derivation is still its own, since another
-- deriver may have taken marks of positions the copy lacks. A plain table, like history_dirty.
CREATE TABLE IF NOT EXISTS history_state (
  device integer PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
  derived_in bigint NOT NULL
);
