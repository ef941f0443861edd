// @ts-check
/**
 * The source of `snapshots/schema.yaml`: the collections as Directus REST payloads.
 *
 * The snapshot is what deploys apply; this file is how it is (re)made: `npm run schema:snapshot`
 * creates these collections on a scratch Directus and exports a partial (version 2) snapshot.
 * Every field carries `meta`, because fields without it are "unmanaged" and silently left out of
 * snapshots. Indexes a snapshot cannot express live in `directus/sql/after-schema.sql`.
 */

import STATUS_COLOUR_FILE from '../../extensions/src/shared/commands/status-colours.json' with { type: 'json' };

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
  meta: {
    interface: 'datetime',
    options: { includeSeconds: true, use24: true },
    display: 'datetime',
    // one time format with seconds, as the dashboard panels write it
    display_options: { format: 'yyyy-MM-dd HH:mm:ss' },
    readonly: true,
    width: 'half',
    note,
    ...meta,
  },
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
  meta: {
    interface: 'map',
    options: { geometryType: 'Point' },
    display: 'fleet-coordinates',
    readonly: true,
    note,
  },
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

/** @param {string} field @param {string} type @param {string} note @param {Record<string, unknown>} [meta] */
const geometry = (field, type, note, meta = {}) => ({
  field,
  type,
  meta: { interface: 'map', note, ...meta },
  schema: { is_nullable: true },
});

/** @param {string} field @param {string} note @param {Record<string, unknown>} [meta] */
const number = (field, note, meta = {}) => ({
  field,
  type: 'float',
  meta: { interface: 'input', width: 'half', note, ...meta },
  schema: { is_nullable: true },
});

/** A JSON list of strings edited as tags. @param {string} field @param {string} note @param {string} placeholder */
const tags = (field, note, placeholder) => ({
  field,
  type: 'json',
  meta: { interface: 'tags', special: ['cast-json'], options: { placeholder }, width: 'half', note },
  schema: { is_nullable: true },
});

/** @param {string} field @param {readonly string[]} values @param {string} dflt @param {string} note @param {Record<string, unknown>} [meta] */
const choice = (field, values, dflt, note, meta = {}) => ({
  field,
  type: 'string',
  meta: {
    interface: 'select-dropdown',
    options: { choices: values.map((v) => ({ text: v, value: v })) },
    display: 'labels',
    width: 'half',
    note,
    ...meta,
  },
  schema: { is_nullable: false, default_value: dflt, max_length: 64 },
});

/**
 * @param {string} field @param {string} related @param {string} template @param {string} note
 * @param {boolean} required @param {Record<string, unknown>} [meta]
 */
const m2o = (field, related, template, note, required, meta = {}) => ({
  field,
  type: related === 'directus_users' ? 'uuid' : related === 'alerts' ? 'bigInteger' : 'integer',
  meta: {
    interface: 'select-dropdown-m2o',
    special: ['m2o'],
    options: { template },
    display: 'related-values',
    display_options: { template },
    required,
    width: 'half',
    note,
    ...meta,
  },
  schema: { is_nullable: !required },
});

/** @param {string} field @param {string} note @param {Record<string, unknown>} [meta] @param {Record<string, unknown>} [schema] */
const decimal = (field, note, meta = {}, schema = {}) => ({
  field,
  type: 'decimal',
  meta: { interface: 'input', readonly: true, width: 'half', note, ...meta },
  // Four decimals of a kilometre = the derivation's decimetres, so stored sums stay exact.
  schema: { is_nullable: true, numeric_precision: 14, numeric_scale: 4, ...schema },
});

/** @param {string} field @param {string} note @param {Record<string, unknown>} [meta] */
const float = (field, note, meta = {}) => ({
  field,
  type: 'float',
  meta: { interface: 'input', readonly: true, width: 'half', note, ...meta },
  schema: { is_nullable: true },
});

/** A collection only the history worker writes (see the history hook): read-only in the app. */
const derived = (
  /** @type {string} */ icon,
  /** @type {string} */ note,
  /** @type {number} */ sort,
  /** @type {string} */ template,
) => ({
  icon,
  note,
  sort,
  display_template: template,
  // Written in bulk by the daemon; revisions would only cost space.
  accountability: null,
});

export const COMMAND_STATUSES = ['pending', 'queued', 'sent', 'answered', 'failed', 'expired', 'cancelled'];
/** Status colours, the same as the command console's. */
const STATUS_COLOURS = /** @type {Record<string, string>} */ (STATUS_COLOUR_FILE);
/**
 * Fields the system sets are hidden in the create form, which then shows only what a sender sets
 * (device, text, expiry), and shown read-only once the command exists. Conditions can only test
 * values the form has, and a new item has no id: so these fields are hidden by default and a
 * condition on the id shows them.
 */
const SHOWN_ONCE_CREATED = {
  name: 'Set by the system',
  rule: { _and: [{ id: { _nnull: true } }] },
  hidden: false,
  readonly: true,
};
/** @param {Record<string, any>} field */
const systemSet = (field) => ({ ...field, meta: { ...field.meta, hidden: true, conditions: [SHOWN_ONCE_CREATED] } });
/**
 * A created command is never edited (the commands hook refuses it: cancel and create a new one, or
 * retry), so once it exists its form is read-only instead of offering a Save that must fail.
 */
const READONLY_ONCE_CREATED = {
  name: 'Sent commands are not edited',
  rule: { _and: [{ id: { _nnull: true } }] },
  readonly: true,
};
/** @param {Record<string, any>} field @param {Record<string, unknown>[]} conditions */
const withConditions = (field, ...conditions) => ({ ...field, meta: { ...field.meta, conditions } });

/** Rule types with a meaning of their own; any other event type name is also accepted. */
export const ALERT_RULE_TYPES = [
  'geofence_enter',
  'geofence_exit',
  'overspeed',
  'ignition_on',
  'ignition_off',
  'offline',
  'no_fix',
  'alarm',
  'low_power',
];
export const ALERT_STATES = ['open', 'acknowledged', 'resolved'];
export const DELIVERY_CHANNELS = ['app', 'email', 'webhook'];
export const DELIVERY_STATUSES = ['pending', 'sending', 'delivered', 'failed'];

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
      systemSet({
        // no column: the device's latest positions and commands, and links to its track and the
        // console on the Fleet dashboard (the bundle's interface)
        field: 'activity',
        type: 'alias',
        meta: {
          interface: 'fleet-device-links',
          special: ['alias', 'no-data'],
          width: 'full',
          note: 'Latest positions and commands; updates while the page is open.',
        },
      }),
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
      boolean('enabled', true, 'Disabled devices are refused at handshake; disabling one closes its live session.', {
        options: { label: 'Enabled' },
      }),
      {
        field: 'allowed_networks',
        type: 'csv',
        meta: {
          interface: 'tags',
          special: ['cast-csv'],
          options: { placeholder: 'e.g. 10.20.0.0/16 (Enter after each)', alphabetize: false },
          width: 'full',
          note: 'Source networks (CIDR) this device may connect from; empty = any. Logins from elsewhere are refused.',
        },
        schema: { is_nullable: true },
      },
      boolean('online', false, 'Connected to an ingestion instance right now (maintained by the daemon).', {
        readonly: true,
        options: { label: 'Online' },
        display: 'boolean',
        display_options: { labelOn: 'Online', labelOff: 'Offline', colorOn: '#2ecc71', colorOff: '#95a5a6' },
      }),
      string('instance_id', 'Ingestion instance holding the connection.', { readonly: true }),
      timestamp('last_seen_at', 'Last packet of any kind.'),
      timestamp('last_fix_at', 'Fix time of the latest position.'),
      point('last_location', 'Latest position (WGS 84).'),
      integer('last_speed', 'km/h'),
      integer('last_heading', 'Degrees from north.'),
      json('last_attributes', 'Named values of the latest record.'),
      timestamp('date_created', 'Created', { special: ['date-created'], hidden: true }),
      decimal(
        'odometer_km',
        'Total distance: the device odometer (IO 16) where it sends one, else computed from its fixes; plus the correction.',
      ),
      decimal(
        'engine_hours',
        'Engine hours: the device counter (IO 449) where it sends one, else ignition-on time; plus the correction.',
      ),
      decimal('odometer_correction_km', 'Added to the odometer (Administrators).', { readonly: false }),
      decimal('engine_hours_correction', 'Added to the engine hours (Administrators).', { readonly: false }),
      {
        ...json(
          'history_settings',
          'Overrides of the fleet detection settings for this device, e.g. {"timeZone": "Europe/Vilnius", "overspeedLimitKmh": 80} (Administrators).',
        ),
        meta: {
          interface: 'input-code',
          options: { language: 'JSON' },
          special: ['cast-json'],
          readonly: false,
          note: 'Overrides of the fleet detection settings for this device, e.g. {"timeZone": "Europe/Vilnius", "overspeedLimitKmh": 80} (Administrators).',
        },
      },
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
      {
        // Derived from the natural key by the writer (position_id() in
        // directus/sql/positions-partitions.sql): time-ordered, so it is also the partition key.
        field: 'id',
        type: 'uuid',
        meta: {
          hidden: true,
          readonly: true,
          interface: 'input',
          note: 'Fix time, device and event id in one time-ordered key (see the storage notes).',
        },
        schema: { is_primary_key: true },
      },
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
      systemSet({
        // no column: the live status, reply and Cancel / Retry on the item page (the bundle's interface)
        field: 'live_status',
        type: 'alias',
        meta: {
          interface: 'fleet-command-live',
          special: ['alias', 'no-data'],
          width: 'full',
          note: 'Updates while the page is open.',
        },
      }),
      withConditions(deviceM2o('device', 'Device to send the command to.'), READONLY_ONCE_CREATED),
      withConditions(
        string(
          'text',
          'Command text, e.g. getinfo or setdigout 1.',
          { required: true, width: 'full' },
          { is_nullable: false, max_length: 1024 },
        ),
        READONLY_ONCE_CREATED,
      ),
      systemSet(text('payload_hex', 'Raw Codec 12 payload in hex (optional; overrides text).')),
      systemSet({
        field: 'status',
        type: 'string',
        meta: {
          interface: 'select-dropdown',
          options: { choices: COMMAND_STATUSES.map((s) => ({ text: s, value: s })) },
          display: 'labels',
          display_options: {
            showAsDot: false,
            choices: COMMAND_STATUSES.map((s) => ({
              text: s,
              value: s,
              foreground: '#ffffff',
              background: STATUS_COLOURS[s],
            })),
          },
          width: 'half',
          readonly: true,
          note: 'Lifecycle: pending → queued → sent → answered, or failed / expired / cancelled.',
        },
        schema: { is_nullable: false, default_value: 'pending', max_length: 32 },
      }),
      // Default 1, not 0: Directus's GraphQL makes a non-nullable field with a falsy default a
      // required input, which broke GraphQL creates (the hook sets the real value anyway).
      systemSet(integer('attempts', 'Delivery attempts so far.', { is_nullable: false, default_value: 1 })),
      systemSet(text('response', 'Device reply.', { readonly: true, width: 'full' })),
      systemSet(text('error', 'Why the command failed or expired.', { readonly: true, width: 'full' })),
      systemSet(timestamp('created_at', 'Created', { special: ['date-created'] })),
      systemSet({
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
      }),
      systemSet(
        m2o(
          'cancelled_by',
          'directus_users',
          '{{avatar}} {{first_name}} {{last_name}}',
          'Who cancelled the command.',
          false,
          { readonly: true, display: 'user' },
        ),
      ),
      systemSet(
        m2o(
          'retried_by',
          'directus_users',
          '{{avatar}} {{first_name}} {{last_name}}',
          'Who last retried the command.',
          false,
          { readonly: true, display: 'user' },
        ),
      ),
      systemSet(timestamp('queued_at', 'Handed to the ingestion instance holding the device.')),
      systemSet(timestamp('sent_at', 'Written to the device socket.')),
      systemSet(timestamp('answered_at', 'Device reply received.')),
      withConditions(timestamp('expires_at', 'Not sent after this time.', { readonly: false }), READONLY_ONCE_CREATED),
      systemSet(string('instance_id', 'Ingestion instance the command was queued to.', { readonly: true })),
    ],
  },
  {
    collection: 'geofences',
    meta: {
      icon: 'fence',
      note: 'Areas that raise geofence_enter / geofence_exit events (and zone overspeed when a speed limit is set).',
      display_template: '{{name}}',
      sort: 20,
    },
    schema: {},
    fields: [
      pk('integer'),
      string('name', 'Shown in alerts and reports.', { required: true }, { is_nullable: false, max_length: 255 }),
      geometry(
        'area',
        'geometry',
        'Polygon or MultiPolygon. Left empty (or replaced) when a circle or corridor below is given: the database computes it.',
        { width: 'full' },
      ),
      geometry('center', 'geometry.Point', 'Circle form: centre (with radius_m).', {
        options: { geometryType: 'Point' },
        width: 'half',
      }),
      number('radius_m', 'Circle form: radius in metres.'),
      geometry('corridor', 'geometry.LineString', 'Corridor form: the route (with width_m).', {
        options: { geometryType: 'LineString' },
        width: 'half',
      }),
      number('width_m', 'Corridor form: total width in metres.'),
      integer('speed_limit', 'km/h inside this zone; faster fixes raise overspeed events naming the zone.'),
      {
        field: 'color',
        type: 'string',
        meta: { interface: 'select-color', display: 'color', width: 'half', note: 'Colour on the fleet map.' },
        schema: { is_nullable: true, default_value: '#e35169', max_length: 16 },
      },
      boolean('active', true, 'Inactive geofences raise no events.'),
    ],
  },
  {
    collection: 'alert_rules',
    meta: {
      icon: 'notification_important',
      note: 'When to raise an alert and whom to tell. Evaluated by the daemon on derived events.',
      display_template: '{{name}} ({{type}})',
      sort: 21,
    },
    schema: {},
    fields: [
      pk('integer'),
      string('name', 'Shown in notifications.', { required: true }, { is_nullable: false, max_length: 255 }),
      boolean('enabled', true, 'Disabled rules raise nothing.'),
      {
        field: 'type',
        type: 'string',
        meta: {
          interface: 'select-dropdown',
          options: { allowOther: true, choices: ALERT_RULE_TYPES.map((t) => ({ text: t, value: t })) },
          display: 'labels',
          required: true,
          width: 'half',
          note: 'Event type to alert on (or any other event type name).',
        },
        schema: { is_nullable: false, max_length: 64 },
      },
      m2o('geofence', 'geofences', '{{name}}', 'For geofence and zone overspeed rules (empty = any geofence).', false),
      tags('devices', 'IMEIs or device ids this rule watches (empty = all devices).', 'IMEI or id'),
      integer('after_minutes', 'offline / no_fix: minutes of silence (no connection / no valid fix).', {
        readonly: false,
      }),
      integer('min_duration_s', 'The condition must last this long (e.g. inside the zone, speeding).', {
        is_nullable: false,
        default_value: 0,
      }),
      integer('cooldown_s', 'After an alert, the same rule stays quiet for this device this long.', {
        is_nullable: false,
        default_value: 0,
      }),
      {
        field: 'schedule',
        type: 'json',
        meta: {
          interface: 'list',
          special: ['cast-json'],
          options: {
            template: '{{days}} {{from}}–{{to}}',
            fields: [
              {
                field: 'days',
                name: 'Days',
                type: 'json',
                meta: {
                  interface: 'select-multiple-checkbox',
                  width: 'full',
                  options: {
                    choices: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].map((d, i) => ({
                      text: d,
                      value: i + 1,
                    })),
                  },
                },
              },
              {
                field: 'from',
                name: 'From',
                type: 'string',
                meta: { interface: 'input', width: 'half', options: { placeholder: '22:00' } },
              },
              {
                field: 'to',
                name: 'To',
                type: 'string',
                meta: { interface: 'input', width: 'half', options: { placeholder: '06:00' } },
              },
            ],
          },
          note: 'Only alert inside these time-of-week windows, in the fleet time zone (empty = always). A window whose end is before its start runs past midnight.',
        },
        schema: { is_nullable: true },
      },
      boolean('notify_stale', false, 'Also notify for stale data (a device flushing an old buffer).'),
      tags(
        'notify_users',
        'Users (email or id) who get an in-app notification (and e-mail if they enabled it).',
        'user email or id',
      ),
      tags('notify_roles', 'Roles (name or id) whose users get an in-app notification.', 'role name or id'),
      tags('email_to', 'Addresses that get an e-mail.', 'name@example.com'),
      string(
        'webhook_url',
        'POSTed as JSON, signed with the secret (X-Fleet-Signature).',
        { width: 'full' },
        { max_length: 2048 },
      ),
      string('webhook_secret', 'HMAC-SHA256 key for X-Fleet-Signature.', { options: { masked: true } }),
    ],
  },
  {
    collection: 'alerts',
    meta: {
      icon: 'campaign',
      note: 'One row per fired alert (rule, device, event). Written by the daemon; acknowledged in the Alerts panel.',
      display_template: '{{message}}',
      sort: 22,
      archive_field: null,
    },
    schema: {},
    fields: [
      pk('bigInteger'),
      m2o('rule', 'alert_rules', '{{name}}', 'The rule that fired.', true),
      m2o('device', 'devices', '{{name}} ({{imei}})', 'Device the event belongs to.', true),
      string(
        'event_type',
        'Type of the event that fired the rule.',
        { readonly: true },
        { is_nullable: false, max_length: 64 },
      ),
      { ...timestamp('event_time', 'Time of the event (fix time).'), schema: { is_nullable: false } },
      string(
        'event_key',
        'Event discriminator (e.g. the geofence id).',
        { readonly: true, hidden: true },
        {
          is_nullable: false,
          default_value: '',
          max_length: 255,
        },
      ),
      point('location', 'Where the event happened.'),
      json('attributes', 'Event attributes (geofence name, speed, limit, ...).'),
      string('message', 'Human-readable summary.', { readonly: true, width: 'full' }, { max_length: 1024 }),
      choice('state', ALERT_STATES, 'open', 'open → acknowledged → resolved.'),
      boolean('stale', false, 'The event was older than the stale age when evaluated: recorded, not notified.', {
        readonly: true,
      }),
      timestamp('created_at', 'When the alert fired.'),
      m2o('acknowledged_by', 'directus_users', '{{first_name}} {{last_name}}', 'Who acknowledged.', false, {
        readonly: true,
        display: 'user',
      }),
      timestamp('acknowledged_at', 'When it was acknowledged.'),
      timestamp('resolved_at', 'When the condition ended (offline / no_fix) or someone resolved it.'),
    ],
  },
  {
    collection: 'alert_deliveries',
    meta: {
      icon: 'outbox',
      note: 'Outbox: one row per alert, channel and target; senders claim, retry and mark them.',
      display_template: '{{channel}} {{target}} ({{status}})',
      sort: 23,
      accountability: null,
    },
    schema: {},
    fields: [
      pk('bigInteger'),
      m2o('alert', 'alerts', '{{message}}', 'The alert delivered.', true),
      choice('channel', DELIVERY_CHANNELS, 'app', 'app (in-app notification), email or webhook.', { readonly: true }),
      string(
        'target',
        'User id, e-mail address or URL.',
        { readonly: true, width: 'full' },
        {
          is_nullable: false,
          max_length: 2048,
        },
      ),
      choice(
        'status',
        DELIVERY_STATUSES,
        'pending',
        'pending → sending (leased) → delivered, or failed after the last attempt.',
        {
          readonly: true,
        },
      ),
      integer('attempts', 'Attempts so far.', { is_nullable: false, default_value: 0 }),
      timestamp('next_attempt_at', 'Due time of the next attempt, or lease expiry while sending.'),
      text('last_error', 'Error of the last failed attempt.', { readonly: true }),
      timestamp('delivered_at', 'When the channel accepted it.'),
      timestamp('created_at', 'Created with the alert.'),
    ],
  },
  {
    collection: 'trips',
    meta: derived(
      'route',
      'Trips derived from positions by the history worker (read-only).',
      4,
      '{{device.name}} {{start_time}}',
    ),
    schema: {},
    fields: [
      pk('bigInteger'),
      deviceM2o('device', 'Device.'),
      { ...timestamp('start_time', 'Departure (the last parked fix).'), schema: { is_nullable: false } },
      timestamp('end_time', 'Arrival (the first parked fix), or the latest fix while in progress.'),
      point('start_location', 'Where it started.'),
      point('end_location', 'Where it ended.'),
      decimal('distance_km', 'Distance driven.'),
      integer('duration_s', 'end − start, seconds.'),
      integer('driving_s', 'Time moving, seconds.'),
      integer('idle_s', 'Engine on while not moving, seconds.'),
      integer('max_speed', 'km/h'),
      float('avg_speed', 'km/h over the time moving.'),
      decimal('start_odometer_km', 'Odometer at the start.'),
      decimal('end_odometer_km', 'Odometer at the end.'),
      boolean('in_progress', false, 'No stop after it yet.', { readonly: true }),
    ],
  },
  {
    collection: 'stops',
    meta: derived(
      'local_parking',
      'Stops derived from positions by the history worker (read-only).',
      5,
      '{{device.name}} {{start_time}}',
    ),
    schema: {},
    fields: [
      pk('bigInteger'),
      deviceM2o('device', 'Device.'),
      { ...timestamp('start_time', 'First parked fix.'), schema: { is_nullable: false } },
      timestamp('end_time', 'Departure; empty while still stopped.'),
      point('location', 'Where it stopped.'),
      integer('duration_s', 'Seconds (up to the latest fix while still stopped).'),
      integer('engine_on_s', 'Seconds with the engine running (idling).'),
    ],
  },
  {
    collection: 'events',
    meta: derived(
      'bolt',
      'Events derived from positions: trips, ignition, overspeed, alarms, … (read-only).',
      6,
      '{{type}} {{time}}',
    ),
    schema: {},
    fields: [
      pk('bigInteger'),
      deviceM2o('device', 'Device.'),
      { ...timestamp('time', 'When it happened.'), schema: { is_nullable: false } },
      string(
        'type',
        'e.g. ignition_on, trip_end, overspeed_start, crash.',
        { readonly: true },
        { is_nullable: false, max_length: 64 },
      ),
      string(
        'key',
        "Discriminator within (device, type, time): '' for most events, e.g. the geofence id for geofence events.",
        { readonly: true, hidden: true },
        { is_nullable: false, default_value: '', max_length: 64 },
      ),
      point('location', 'Where (empty when the record had no fix).'),
      json('attributes', 'Details, e.g. max_speed, duration_s, limit.'),
      // A plain id, not a many-to-one: a relation needs a foreign key for `schema apply` to keep it,
      // and positions is a partitioned table whose retention drops old rows under their events.
      {
        field: 'position',
        type: 'uuid',
        meta: {
          interface: 'input',
          readonly: true,
          width: 'half',
          note: 'Id of the position record it comes from, where there is one.',
        },
        schema: { is_nullable: true },
      },
    ],
  },
  {
    collection: 'daily_summaries',
    meta: derived(
      'calendar_month',
      'One row per device and local day (fleet or device time zone) (read-only).',
      7,
      '{{device.name}} {{day}}',
    ),
    schema: {},
    fields: [
      pk('bigInteger'),
      deviceM2o('device', 'Device.'),
      {
        field: 'day',
        type: 'date',
        meta: { interface: 'datetime', display: 'datetime', readonly: true, width: 'half', note: 'Local day.' },
        schema: { is_nullable: false },
      },
      decimal('distance_km', 'Distance driven.'),
      integer('driving_s', 'Seconds moving.'),
      integer('idle_s', 'Seconds with the engine on while not moving.'),
      integer('engine_s', 'Seconds with the engine on.'),
      integer('trips', 'Trips started that day.'),
      integer('stops', 'Stops started that day.'),
      integer('max_speed', 'km/h'),
      timestamp('first_fix', 'First good fix of the day.'),
      timestamp('last_fix', 'Last good fix of the day.'),
    ],
  },
  {
    collection: 'fleet_settings',
    meta: {
      icon: 'tune',
      note: 'Trip, stop and event detection defaults for the whole fleet (devices may override). Administrators only. After a change, re-derive history: npm run daemon -- derive --from …',
      singleton: true,
      sort: 8,
    },
    schema: {},
    fields: [
      pk('integer'),
      {
        field: 'motion_source',
        type: 'string',
        meta: {
          interface: 'select-dropdown',
          options: {
            choices: [
              { text: 'Movement IO 240 (speed where absent)', value: 'movement' },
              { text: 'Ignition IO 239', value: 'ignition' },
              { text: 'Speed threshold', value: 'speed' },
            ],
          },
          width: 'half',
          note: 'What says the vehicle is moving.',
        },
        schema: { is_nullable: true, max_length: 16 },
      },
      float('speed_threshold_kmh', 'Moving at or above this speed (speed source).', { readonly: false }),
      integer('min_trip_duration_s', 'Shorter movements are not trips.'),
      float('min_trip_distance_m', 'Shorter movements are not trips.', { readonly: false }),
      integer('min_stop_duration_s', 'Shorter halts stay inside the trip.'),
      integer('max_gap_s', 'Fixes further apart split a trip.'),
      float('overspeed_limit_kmh', 'Empty: no overspeed events.', { readonly: false }),
      integer('overspeed_min_duration_s', 'Shorter overspeeding is ignored.'),
      integer('offline_after_s', 'No record for this long: device_offline.'),
      float('low_power_v', 'External voltage below this: power_low.', { readonly: false }),
      string('time_zone', 'IANA zone of daily summaries, e.g. Europe/Vilnius (default UTC).'),
    ].map((f) => (f.field === 'id' ? f : { ...f, meta: { ...f.meta, readonly: false } })),
  },
];

/**
 * A many-to-one relation. @param {string} collection @param {string} field @param {string} related
 * @param {'CASCADE' | 'SET NULL'} onDelete
 */
const relation = (collection, field, related, onDelete) => ({
  collection,
  field,
  related_collection: related,
  meta: { one_field: null, sort_field: null, one_deselect_action: 'nullify' },
  schema: { on_delete: onDelete },
});

export const relations = [
  relation('positions', 'device', 'devices', 'CASCADE'),
  relation('commands', 'device', 'devices', 'CASCADE'),
  relation('commands', 'user_created', 'directus_users', 'SET NULL'),
  relation('commands', 'cancelled_by', 'directus_users', 'SET NULL'),
  relation('commands', 'retried_by', 'directus_users', 'SET NULL'),
  relation('alert_rules', 'geofence', 'geofences', 'SET NULL'),
  relation('alerts', 'rule', 'alert_rules', 'CASCADE'),
  relation('alerts', 'device', 'devices', 'CASCADE'),
  relation('alerts', 'acknowledged_by', 'directus_users', 'SET NULL'),
  relation('alert_deliveries', 'alert', 'alerts', 'CASCADE'),
  ...['trips', 'stops', 'events', 'daily_summaries'].map((c) => relation(c, 'device', 'devices', 'CASCADE')),
];

export const SNAPSHOT_COLLECTIONS = collections.map((c) => c.collection);
