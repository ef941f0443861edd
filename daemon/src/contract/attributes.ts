/**
 * Attribute keys as the processor stores them (`positions.attributes`, `devices.last_attributes`):
 * the names of the protocol's IO dictionary, the same table `namedAttributes()` reads. The fleet
 * endpoint, the map panel and the seeded dashboard take their keys from here, so they ask for
 * what is stored. Pure data: browser bundles import it as `@fleet/daemon/contract/attributes`.
 */
import { IO_DICTIONARY } from '../protocol/io-dictionary.js';

function attributeKey(ioId: number): string {
  const def = IO_DICTIONARY.get(ioId);
  if (!def) throw new Error(`IO id ${ioId} is not in the IO dictionary`);
  return def.name;
}

/** Keys other components name explicitly, by their FMB AVL IO id. */
export const ATTRIBUTE_KEYS = {
  ignition: attributeKey(239),
  movement: attributeKey(240),
  externalVoltage: attributeKey(66),
  batteryVoltage: attributeKey(67),
  gsmSignal: attributeKey(21),
} as const;

/** What the map popup shows when the panel names no attributes. */
export const DEFAULT_POPUP_ATTRIBUTES: readonly string[] = [
  ATTRIBUTE_KEYS.ignition,
  ATTRIBUTE_KEYS.movement,
  ATTRIBUTE_KEYS.externalVoltage,
  ATTRIBUTE_KEYS.batteryVoltage,
  ATTRIBUTE_KEYS.gsmSignal,
];
