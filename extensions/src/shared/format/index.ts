/**
 * How every panel writes times and durations: one format, local time with seconds
 * (`2026-11-30 14:05:09`), so the map, console, health panel and reports read alike.
 */

type TimeInput = number | string | Date | null | undefined;

function toDate(v: TimeInput): Date | null {
  if (v === null || v === undefined || v === '') return null;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** `2026-11-30 14:05:09` in the browser's time zone; '' for no time. */
export function formatTime(v: TimeInput): string {
  const d = toDate(v);
  if (!d) return '';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/**
 * `2026-11-30 14:05:09` in the given IANA zone: the same text as formatTime where the browser is,
 * for what a server writes (report tables and their CSV/XLSX files); '' for no time.
 */
export function formatTimeIn(v: TimeInput, timeZone: string): string {
  const d = toDate(v);
  if (!d) return '';
  const parts = Object.fromEntries(
    zoneFormat(timeZone)
      .formatToParts(d)
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second}`;
}

const zoneFormats = new Map<string, Intl.DateTimeFormat>();
function zoneFormat(timeZone: string): Intl.DateTimeFormat {
  let f = zoneFormats.get(timeZone);
  if (!f) {
    // Throws a RangeError for an unknown zone.
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    zoneFormats.set(timeZone, f);
  }
  return f;
}

/** Whether `timeZone` is an IANA zone this runtime knows. */
export function isTimeZone(timeZone: string): boolean {
  try {
    zoneFormat(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** `14:05:09`: for times on a timeline whose day is shown elsewhere. */
export function formatClock(v: TimeInput): string {
  const d = toDate(v);
  return d ? `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` : '';
}

/** `12 s ago`, `3 min ago`, `2 h ago`, `4 d ago`; `never` for no time. */
export function formatAge(v: TimeInput, now = Date.now()): string {
  const d = toDate(v);
  if (!d) return 'never';
  const s = Math.max(0, Math.round((now - d.getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

/** `1 h 05 min`, `12 min`, `40 s`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h} h ${pad(m)} min` : `${m} min`;
}

/** `1:05:09` (hours:minutes:seconds) for a table column of durations; '' for none. */
export function formatHms(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
}

/** 12345 → `12,345` (grouping that does not depend on the browser's locale). */
export function formatInt(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * A GeoJSON Point (or a `POINT(lon lat)` text) as a person reads it: `50.11239, 8.68342` (latitude
 * first, five decimals ≈ 1 m); '' for anything that is not a point.
 */
export function formatCoordinates(v: unknown): string {
  let lon: unknown;
  let lat: unknown;
  if (typeof v === 'string') {
    const m = /^\s*(?:SRID=\d+;)?POINT\s*\(\s*(\S+)\s+(\S+)\s*\)\s*$/i.exec(v);
    if (m) [lon, lat] = [Number(m[1]), Number(m[2])];
    else if (v.trim().startsWith('{')) {
      try {
        return formatCoordinates(JSON.parse(v));
      } catch {
        return '';
      }
    }
  } else if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Point') {
    const c = (v as { coordinates?: unknown }).coordinates;
    if (Array.isArray(c)) [lon, lat] = c;
  }
  if (typeof lon !== 'number' || typeof lat !== 'number' || !Number.isFinite(lon) || !Number.isFinite(lat)) return '';
  return `${lat.toFixed(5)}, ${lon.toFixed(5)}`;
}
