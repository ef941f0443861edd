// @ts-check
/**
 * The source of `snapshots/schema.yaml`: the collections as Directus REST payloads.
 *
 * The snapshot is what deploys apply; this file is how it is (re)made: `npm run schema:snapshot`
 * creates these collections on a scratch Directus and exports a partial (version 2) snapshot.
 * Every field carries `meta`, because fields without it are "unmanaged" and silently left out of
 * snapshots. Indexes a snapshot cannot express live in `directus/sql/after-schema.sql`.
 */

const pk = (/** @type {'integer' | 'bigInteger'} */ type) => ({
  field: 'id',
  type,
  meta: { hidden: true, readonly: true, interface: 'input' },
  schema: { is_primary_key: true, has_auto_increment: true },
});

/** @param {string} field @param {string} note @param {Record<string, unknown>} [meta] */
const timestamp = (field, note, meta = {}) => ({
  field,
  // `timestamp` = timestamptz(6) on PostgreSQL: microsecond resolution, so milliseconds survive.
  type: 'timestamp',
  meta: { interface: 'datetime', display: 'datetime', readonly: true, width: 'half', note, ...meta },
  schema: { is_nullable: true },
});

/** @param {string} field @param {string} note @param {Record<string, unknown>} [schema] */
const integer = (field, note, schema = {}) => ({
  field,
  type: 'integer',
  meta: { interface: 'input', readonly: true, width: 'half', note },
  schema: { is_nullable: true, ...schema },
});

/** @param {string} field @param {string} note */
const json = (field, note) => ({
  field,
  type: 'json',
  meta: { interface: 'input-code', options: { language: 'JSON' }, special: ['cast-json'], readonly: true, note },
  schema: { is_nullable: true },
});

/** @param {string} field @param {string} note */
const point = (field, note) => ({
  field,
  type: 'geometry.Point',
  meta: { interface: 'map', options: { geometryType: 'Point' }, readonly: true, note },
  schema: { is_nullable: true },
});

/** @param {string} field @param {string} note @param {Record<string, unknown>} [meta] @param {Record<string, unknown>} [schema] */
const string = (field, note, meta = {}, schema = {}) => ({
  field,
  type: 'string',
  meta: { interface: 'input', width: 'half', note, ...meta },
  schema: { is_nullable: true, ...schema },
});

/** @param {string} field @param {string} note @param {Record<string, unknown>} [meta] */
const text = (field, note, meta = {}) => ({
  field,
  type: 'text',
  meta: { interface: 'input-multiline', note, ...meta },
  schema: { is_nullable: true },
});

/** @param {string} field @param {boolean} dflt @param {string} note @param {Record<string, unknown>} [meta] */
const boolean = (field, dflt, note, meta = {}) => ({
  field,
  type: 'boolean',
  meta: { interface: 'boolean', special: ['cast-boolean'], width: 'half', note, ...meta },
  schema: { is_nullable: false, default_value: dflt },
});

/** @param {string} field @param {string} note */
const deviceM2o = (field, note) => ({
  field,
  type: 'integer',
  meta: {
    interface: 'select-dropdown-m2o',
    special: ['m2o'],
    options: { template: '{{name}} ({{imei}})' },
    display: 'related-values',
    display_options: { template: '{{name}} ({{imei}})' },
    required: true,
    width: 'half',
    note,
  },
  schema: { is_nullable: false },
});

export const COMMAND_STATUSES = ['pending', 'queued', 'sent', 'answered', 'failed', 'expired', 'cancelled'];

export const collections = [
  {
    collection: 'devices',
    meta: {
      icon: 'router',
      note: 'Teltonika trackers. A device must exist and be enabled to be accepted at handshake.',
      display_template: '{{name}} ({{imei}})',
      sort: 1,
    },
    schema: {},
    fields: [
      pk('integer'),
      string(
        'imei',
        'The 15-digit IMEI the device sends at handshake.',
        {
          required: true,
          options: { placeholder: '15 digits', trim: true },
          validation: { _and: [{ imei: { _regex: '^[0-9]{15}$' } }] },
          validation_message: 'An IMEI is exactly 15 digits.',
        },
        { is_unique: true, is_nullable: false, max_length: 15 },
      ),
      string('name', 'Display name.'),
      string('model', 'e.g. FMC130.'),
      boolean('enabled', true, 'Disabled devices are refused at handshake.'),
      boolean('online', false, 'Connected to an ingestion instance right now (maintained by the daemon).', {
        readonly: true,
      }),
      string('instance_id', 'Ingestion instance holding the connection.', { readonly: true }),
      timestamp('last_seen_at', 'Last packet of any kind.'),
      timestamp('last_fix_at', 'Fix time of the latest position.'),
      point('last_location', 'Latest position (WGS 84).'),
      integer('last_speed', 'km/h'),
      integer('last_heading', 'Degrees from north.'),
      json('last_attributes', 'Named values of the latest record.'),
      timestamp('date_created', 'Created', { special: ['date-created'], hidden: true }),
    ],
  },
  {
    collection: 'positions',
    meta: {
      icon: 'location_on',
      note: 'One row per AVL record, written by the daemon. Unique on (device, fix_time, event_io_id).',
      display_template: '{{device.name}} {{fix_time}}',
      sort: 2,
      // Written in bulk by the daemon with plain SQL; revisions would only cost space if a
      // Directus write ever happened.
      accountability: null,
    },
    schema: {},
    fields: [
      pk('bigInteger'),
      deviceM2o('device', 'Device that recorded the position.'),
      {
        ...timestamp('fix_time', 'GNSS time of the record (UTC, millisecond resolution).'),
        schema: { is_nullable: false },
      },
      timestamp('received_at', 'When ingestion received the frame.'),
      point('location', 'WGS 84 point.'),
      integer('altitude', 'Metres above sea level.'),
      integer('heading', 'Degrees from north.'),
      integer('speed', 'km/h'),
      integer('satellites', 'Satellites in use.'),
      integer('priority', '0 low, 1 high, 2 panic.'),
      // NOT NULL with default 0 (Teltonika's "no event"): a UNIQUE index treats NULLs as distinct,
      // which would let resends of records without an event id duplicate.
      integer('event_io_id', 'IO id that triggered the record (0 = periodic).', {
        is_nullable: false,
        default_value: 0,
      }),
      json('io', 'Raw IO elements by id.'),
      json('attributes', 'Named, scaled IO values.'),
      json('flags', 'Reasons this record is doubtful, e.g. ["no_fix"]; empty when fine.'),
    ],
  },
  {
    collection: 'commands',
    meta: {
      icon: 'terminal',
      note: 'Commands sent to devices over GPRS (Codec 12). Create one to send it.',
      display_template: '{{text}} ({{status}})',
      sort: 3,
    },
    schema: {},
    fields: [
      pk('integer'),
      deviceM2o('device', 'Device to send the command to.'),
      string(
        'text',
        'Command text, e.g. getinfo or setdigout 1.',
        { required: true, width: 'full' },
        { is_nullable: false, max_length: 1024 },
      ),
      text('payload_hex', 'Raw Codec 12 payload in hex (optional; overrides text).'),
      {
        field: 'status',
        type: 'string',
        meta: {
          interface: 'select-dropdown',
          options: { choices: COMMAND_STATUSES.map((s) => ({ text: s, value: s })) },
          display: 'labels',
          width: 'half',
          readonly: true,
          note: 'Lifecycle: pending → queued → sent → answered, or failed / expired / cancelled.',
        },
        schema: { is_nullable: false, default_value: 'pending', max_length: 32 },
      },
      integer('attempts', 'Delivery attempts so far.', { is_nullable: false, default_value: 0 }),
      text('response', 'Device reply.', { readonly: true }),
      text('error', 'Why the command failed or expired.', { readonly: true }),
      timestamp('created_at', 'Created', { special: ['date-created'] }),
      {
        field: 'user_created',
        type: 'uuid',
        meta: {
          interface: 'select-dropdown-m2o',
          special: ['user-created'],
          options: { template: '{{avatar}} {{first_name}} {{last_name}}' },
          display: 'user',
          readonly: true,
          width: 'half',
          note: 'Who created the command.',
        },
        schema: { is_nullable: true },
      },
      timestamp('queued_at', 'Handed to the ingestion instance holding the device.'),
      timestamp('sent_at', 'Written to the device socket.'),
      timestamp('answered_at', 'Device reply received.'),
      timestamp('expires_at', 'Not sent after this time.', { readonly: false }),
      string('instance_id', 'Ingestion instance the command was queued to.', { readonly: true }),
    ],
  },
];

export const relations = [
  {
    collection: 'positions',
    field: 'device',
    related_collection: 'devices',
    meta: { one_field: null, sort_field: null, one_deselect_action: 'nullify' },
    schema: { on_delete: 'CASCADE' },
  },
  {
    collection: 'commands',
    field: 'device',
    related_collection: 'devices',
    meta: { one_field: null, sort_field: null, one_deselect_action: 'nullify' },
    schema: { on_delete: 'CASCADE' },
  },
  {
    collection: 'commands',
    field: 'user_created',
    related_collection: 'directus_users',
    meta: { one_field: null, sort_field: null, one_deselect_action: 'nullify' },
    schema: { on_delete: 'SET NULL' },
  },
];

export const SNAPSHOT_COLLECTIONS = collections.map((c) => c.collection);
