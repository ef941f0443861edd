-- Runs after `directus schema apply` on every deploy (and when the test template is built).
-- Holds what a Directus snapshot cannot express: composite, partial and GiST indexes.
-- Every statement must be idempotent.

-- Natural key of a position. A device resends a whole AVL packet when our ACK is lost, and the
-- pipeline may redeliver a stream entry: byte-identical records then collide here and the writer's
-- ON CONFLICT DO NOTHING drops them. event_io_id is part of the key because a tracker may emit two
-- distinct event records (say ignition on and a digital input) in the same millisecond; both must
-- survive. The leading (device, fix_time) columns also serve "latest position of a device"
-- (ORDER BY fix_time DESC LIMIT 1) and "track of one device between two times" (range scan), so
-- no second b-tree is needed.
CREATE UNIQUE INDEX IF NOT EXISTS positions_device_fix_time_event_key
  ON positions (device, fix_time, event_io_id);

-- No single-column indexes here: Directus reports any single-column index as the field's
-- `is_indexed` and the next `schema apply` then tries to drop it (under Directus's own index name,
-- failing). Single-column indexes belong in the snapshot (field schema `is_indexed: true`); a GiST
-- index on devices.last_location or a BRIN on positions.fix_time would need that treatment.

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

-- Partitioning later: when positions grows past what one table serves comfortably (retention by
-- dropping old partitions, smaller indexes), convert it to a table partitioned by RANGE (fix_time),
-- monthly. PostgreSQL requires every unique index of a partitioned table to contain the partition
-- key: the natural key above already does; the primary key would become (id, fix_time) in the
-- database while Directus keeps treating `id` as the key (ids come from one sequence, so they stay
-- unique). Do the conversion here, after `schema apply`, guarded so it runs once, and keep
-- `npm run schema:check` clean.
