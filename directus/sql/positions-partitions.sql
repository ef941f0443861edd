-- positions, partitioned by time. Runs on every deploy twice: before `schema apply` (so an existing
-- unpartitioned table with bigint ids is converted before the snapshot, which says uuid, is
-- compared with it) and after it (so the plain table `schema apply` creates on an empty database
-- is converted at once). Every statement is idempotent.
--
-- The key. Directus needs a single-column primary key; PostgreSQL needs the partition key in every
-- unique index of a partitioned table. So the primary key IS the partition key, and it is derived
-- from the natural key (device, fix_time, event_io_id): a UUIDv7-shaped value whose first 48 bits
-- are the fix time in milliseconds (so ids sort by time and RANGE partitions on id are time ranges),
-- the next 12 the microseconds within that millisecond, then the device id (32 bits) and the event
-- IO id (28 bits) as they are, not hashed. The mapping is one-to-one on the values the processor
-- stores (fix times 1970–9999 at microsecond resolution, integer device ids, 16-bit event ids), so
-- the primary key rejects exactly the duplicates the natural key would, and never two distinct
-- records. Writers compute it with position_id(...) in the INSERT itself (a generated column can
-- not be a partition key, and a BEFORE trigger runs after the row was routed).

-- Partitions live in their own schema: Directus lists only the tables of `public`, so the
-- partitions never show up as collections.
CREATE SCHEMA IF NOT EXISTS partitions;

-- The writer's form: the fix time as epoch microseconds. Plain integer and text functions only,
-- so PostgreSQL inlines it into the INSERT.
CREATE OR REPLACE FUNCTION position_id(device integer, fix_us bigint, event_io_id integer) RETURNS uuid
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT (lpad(to_hex(fix_us / 1000), 12, '0') || '7' || lpad(to_hex((fix_us % 1000)::integer), 3, '0')
    || '8' || lpad(to_hex(device), 8, '0') || lpad(to_hex(event_io_id), 7, '0'))::uuid
$$;

CREATE OR REPLACE FUNCTION position_id(device integer, fix_time timestamptz, event_io_id integer) RETURNS uuid
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT position_id(device, (extract(epoch FROM fix_time) * 1000000)::bigint, event_io_id)
$$;

-- The smallest id at a time: partition bounds, and the id range that lets a query on fix_time
-- prune partitions (fix_time >= a AND fix_time <= b  ⇔  id >= position_id_at(a) AND
-- id < position_id_at(b + 1 µs), for the rows the processor writes).
CREATE OR REPLACE FUNCTION position_id_at(t timestamptz) RETURNS uuid
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT position_id(0, t, 0)
$$;

-- One month's partition (months are UTC calendar months). Rows of that month already sitting in
-- the default partition (written before the partition existed) are moved into it, because
-- PostgreSQL refuses a new partition whose range the default partition holds rows of.
CREATE OR REPLACE FUNCTION positions_create_partition(month timestamp) RETURNS boolean
  LANGUAGE plpgsql AS $$
DECLARE
  m timestamp := date_trunc('month', month);
  name text := format('positions_%s', to_char(m, 'YYYY_MM'));
  lo uuid := position_id_at(m AT TIME ZONE 'UTC');
  hi uuid := position_id_at((m + interval '1 month') AT TIME ZONE 'UTC');
BEGIN
  IF to_regclass(format('partitions.%I', name)) IS NOT NULL THEN
    RETURN false;
  END IF;
  IF EXISTS (SELECT 1 FROM partitions.positions_default WHERE id >= lo AND id < hi) THEN
    EXECUTE format('CREATE TABLE partitions.%I (LIKE positions INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format(
      'WITH moved AS (DELETE FROM partitions.positions_default WHERE id >= $1 AND id < $2 RETURNING *)
       INSERT INTO partitions.%I SELECT * FROM moved', name) USING lo, hi;
    EXECUTE format('ALTER TABLE positions ATTACH PARTITION partitions.%I FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
  ELSE
    EXECUTE format('CREATE TABLE partitions.%I PARTITION OF positions FOR VALUES FROM (%L) TO (%L)', name, lo, hi);
  END IF;
  RETURN true;
END $$;

-- The current month's partition and the next `months_ahead` ones; returns how many were created.
-- Called by the deploy and periodically by the processor. Serialised by an advisory lock, so
-- processors running it at once do not collide.
CREATE OR REPLACE FUNCTION positions_ensure_partitions(months_ahead integer DEFAULT 3) RETURNS integer
  LANGUAGE plpgsql AS $$
DECLARE
  m timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
  created integer := 0;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('public.positions') AND relkind = 'p') THEN
    RETURN 0;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('positions_partitions'));
  FOR i IN 0..months_ahead LOOP
    IF positions_create_partition(m + make_interval(months => i)) THEN
      created := created + 1;
    END IF;
  END LOOP;
  RETURN created;
END $$;

-- Retention: detaches and drops the monthly partitions that end before the start of the month
-- `keep_months` months ago (so at least `keep_months` full months stay, plus the current one).
-- Only positions: trips, stops, summaries and events are other tables and stay. Returns the
-- dropped partitions' names.
CREATE OR REPLACE FUNCTION positions_drop_partitions(keep_months integer) RETURNS text[]
  LANGUAGE plpgsql AS $$
DECLARE
  cutoff uuid := position_id_at(
    (date_trunc('month', now() AT TIME ZONE 'UTC') - make_interval(months => keep_months)) AT TIME ZONE 'UTC');
  p record;
  dropped text[] := '{}';
BEGIN
  IF keep_months < 0 THEN
    RAISE EXCEPTION 'keep_months must be 0 or more, not %', keep_months USING ERRCODE = '22023';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('positions_partitions'));
  FOR p IN
    SELECT c.relname,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([0-9a-f-]+)''\)'))[1]::uuid AS upper
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = 'public.positions'::regclass AND c.relname <> 'positions_default'
  LOOP
    IF p.upper <= cutoff THEN
      EXECUTE format('ALTER TABLE positions DETACH PARTITION partitions.%I', p.relname);
      EXECUTE format('DROP TABLE partitions.%I', p.relname);
      dropped := dropped || p.relname::text;
    END IF;
  END LOOP;
  RETURN dropped;
END $$;

-- Converts an unpartitioned `positions` (the bigint-id table of earlier versions, or the plain
-- table `schema apply` creates) into the partitioned one, in the deploy's transaction: same
-- columns (id becomes the derived uuid), same foreign keys under the same names, a partition per
-- month that has rows, the default partition, every row copied once. events.position follows the
-- id to its new value. Raises (and so rolls everything back) if a row would be lost.
CREATE OR REPLACE FUNCTION positions_convert_to_partitioned() RETURNS bigint
  LANGUAGE plpgsql AS $$
DECLARE
  old_id_type text;
  columns text;
  names text;
  fk record;
  fks text[] := '{}';
  before bigint;
  after bigint;
  m timestamp;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass('public.positions') AND relkind = 'r') THEN
    RETURN NULL;
  END IF;
  LOCK TABLE positions IN ACCESS EXCLUSIVE MODE;
  ALTER TABLE positions RENAME TO positions_unpartitioned;
  SELECT format_type(atttypid, atttypmod) INTO old_id_type
    FROM pg_attribute WHERE attrelid = 'positions_unpartitioned'::regclass AND attname = 'id';

  -- Column definitions from the catalogue (so this stays true to whatever the snapshot created),
  -- except id: uuid, no default.
  SELECT string_agg(format('%I %s%s%s', a.attname,
           CASE WHEN a.attname = 'id' THEN 'uuid' ELSE format_type(a.atttypid, a.atttypmod) END,
           CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END,
           CASE WHEN d.adbin IS NOT NULL AND a.attname <> 'id' THEN ' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid) ELSE '' END),
           ', ' ORDER BY a.attnum),
         string_agg(format('%I', a.attname), ', ' ORDER BY a.attnum) FILTER (WHERE a.attname <> 'id')
    INTO columns, names
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON (d.adrelid, d.adnum) = (a.attrelid, a.attnum)
   WHERE a.attrelid = 'positions_unpartitioned'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
  FOR fk IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE conrelid = 'positions_unpartitioned'::regclass AND contype IN ('f', 'c') LOOP
    fks := fks || format('ALTER TABLE positions ADD CONSTRAINT %I %s', fk.conname, fk.def);
    EXECUTE format('ALTER TABLE positions_unpartitioned DROP CONSTRAINT %I', fk.conname);
  END LOOP;
  ALTER TABLE positions_unpartitioned DROP CONSTRAINT IF EXISTS positions_pkey;
  DROP INDEX IF EXISTS positions_device_fix_time_event_key;

  EXECUTE format('CREATE TABLE positions (%s, CONSTRAINT positions_pkey PRIMARY KEY (id)) PARTITION BY RANGE (id)', columns);
  CREATE TABLE partitions.positions_default PARTITION OF positions DEFAULT;
  FOR m IN SELECT DISTINCT date_trunc('month', fix_time AT TIME ZONE 'UTC') FROM positions_unpartitioned
            WHERE fix_time >= '2000-01-01' AND fix_time < now() + interval '1 year' LOOP
    PERFORM positions_create_partition(m);
  END LOOP;
  PERFORM positions_ensure_partitions();

  EXECUTE format('INSERT INTO positions (id, %s) SELECT position_id(device, fix_time, event_io_id), %s
                    FROM positions_unpartitioned ON CONFLICT (id) DO NOTHING', names, names);
  SELECT count(*) INTO before FROM positions_unpartitioned;
  SELECT count(*) INTO after FROM positions;
  IF before <> after THEN
    RAISE EXCEPTION 'converting positions would keep % of % rows; nothing changed', after, before;
  END IF;

  -- events.position held the old bigint ids: map each to the row's new id.
  IF old_id_type <> 'uuid' AND EXISTS (SELECT 1 FROM pg_attribute
      WHERE attrelid = to_regclass('public.events') AND attname = 'position' AND NOT attisdropped) THEN
    CREATE TEMP TABLE position_id_map ON COMMIT DROP AS
      SELECT id AS old, position_id(device, fix_time, event_io_id) AS new FROM positions_unpartitioned
       WHERE id IN (SELECT "position" FROM events);
    ALTER TABLE events ADD COLUMN position_new uuid;
    UPDATE events e SET position_new = m.new FROM position_id_map m WHERE m.old = e.position;
    -- keeps the column's place and Directus's field row (same name)
    ALTER TABLE events ALTER COLUMN position TYPE uuid USING NULL;
    UPDATE events SET position = position_new WHERE position_new IS NOT NULL;
    ALTER TABLE events DROP COLUMN position_new;
  END IF;

  DROP TABLE positions_unpartitioned;
  FOR i IN 1..coalesce(array_length(fks, 1), 0) LOOP
    EXECUTE fks[i];
  END LOOP;
  RETURN after;
END $$;

SELECT positions_convert_to_partitioned();
