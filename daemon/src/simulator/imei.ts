/**
 * Deterministic, valid-looking IMEIs for simulated devices: 14 digits + Luhn check digit, the same
 * shape real trackers report, so the daemon's IMEI validation treats them like real ones.
 */

/** Luhn check digit for a string of decimal digits. */
export function luhnDigit(body: string): number {
  let sum = 0;
  // Doubling starts from the rightmost digit of the body (it becomes the second from the right).
  for (let i = 0; i < body.length; i++) {
    let d = body.charCodeAt(body.length - 1 - i) - 48;
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return (10 - (sum % 10)) % 10;
}

export function isValidImei(imei: string): boolean {
  return /^\d{15}$/.test(imei) && luhnDigit(imei.slice(0, 14)) === Number(imei[14]);
}

/**
 * IMEI of device `index` in a fleet run with `seed`: "35" (a TAC range used by trackers), four
 * digits derived from the seed, eight digits of index. Different seeds give disjoint fleets with
 * high probability; the same seed always gives the same IMEIs (so `--register` is done once).
 */
export function simulatedImei(seed: number, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index > 99_999_999) throw new RangeError(`device index ${index}`);
  const seedPart = String((seed >>> 0) % 10_000).padStart(4, '0');
  const body = `35${seedPart}${String(index).padStart(8, '0')}`;
  return `${body}${luhnDigit(body)}`;
}
