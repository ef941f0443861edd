/**
 * The seam for code that builds on derived events (geofences and alerts): it runs inside the
 * transaction that replaces the derived rows of a batch of device windows, so what it adds or
 * writes commits or rolls back with them. Both hooks take the whole batch at once, so what they
 * read or write costs a statement per batch, not per device.
 *
 * - An EventDeriver adds events of its own (e.g. geofence_enter / geofence_exit) for the window.
 *   Its events go through the same ownership filter and upsert on the natural key
 *   (device, type, time, key) as the built-in ones, so re-deriving a window never gives an event
 *   a new identity. `load` reads what it needs (fences, its state before `from`) for every window
 *   of the batch with the transaction; `derive` stays a pure function of one window's input.
 * - An AfterEventsHook sees the batch's windows' events after they were stored, with the ones that
 *   did not exist before (`inserted`): an alerting outbox writes its rows here, keyed on the event,
 *   so a re-derivation that yields the same events inserts nothing and notifies no one.
 *
 * Register both on the HistoryExtensions passed to the worker (`runDerive(config, logger, { ... })`)
 * and to the `derive` command.
 */
import type { Knex } from 'knex';
import type { DetectionSettings } from './settings.js';
import type { DerivedEvent, DerivedWindow, HistoryPosition } from './types.js';

/** devices.id */
export type DeviceKey = number;

export interface DeriverInput {
  device: DeviceKey;
  /** The window's start (null: the device's whole history). Events before it are dropped. */
  from: number | null;
  /** The window's records (and the last good fix / trusted record before its first day), by time. */
  positions: readonly HistoryPosition[];
  settings: DetectionSettings;
  /** What the built-in derivation produced for the window. */
  derived: Readonly<DerivedWindow>;
}

export interface EventDeriver<T = unknown> {
  name: string;
  /** Reads what `derive` needs for each window of a batch (same order), within its transaction. */
  load?(trx: Knex.Transaction, inputs: readonly DeriverInput[]): Promise<readonly T[]>;
  derive(input: DeriverInput, loaded: T): DerivedEvent[];
}

/** An event as stored: its row id and natural key. */
export interface StoredEvent extends DerivedEvent {
  id: number | string;
  device: DeviceKey;
}

export interface EventsChange {
  device: DeviceKey;
  from: number | null;
  settings: DetectionSettings;
  /** Every event the window owns now (built-in and from derivers), with ids. */
  events: readonly StoredEvent[];
  /** Those that did not exist before this derivation (new identities). */
  inserted: readonly StoredEvent[];
  /** Owned events that vanished (e.g. a trip merged away after late records). */
  deleted: number;
}

/** Called once per batch with one change per derived window. */
export type AfterEventsHook = (trx: Knex.Transaction, changes: readonly EventsChange[]) => Promise<void>;

export interface HistoryExtensions {
  // biome-ignore lint/suspicious/noExplicitAny: each deriver loads its own type; load and derive agree per deriver
  eventDerivers?: readonly EventDeriver<any>[];
  afterEvents?: readonly AfterEventsHook[];
  /**
   * Devices whose derived events someone is waiting for (alerting: the devices its rules watch).
   * The worker derives their marks before each batch of the other devices, so their latency is
   * about one batch, not one pass over every marked device. null or empty: no device in particular.
   */
  urgentDevices?: (knex: Knex) => Promise<readonly DeviceKey[] | null>;
}
