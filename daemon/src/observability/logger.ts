import { type Logger, pino } from 'pino';

export type { Logger };

/**
 * JSON logs in production; readable lines when a person is watching. `LOG_STYLE` (`pretty` | `raw`)
 * means what it means to Directus, so the one `.env` that `npm start` uses styles both alike, even
 * though the daemon's output reaches the terminal through a pipe.
 */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  const style = process.env.LOG_STYLE;
  const pretty = style === 'pretty' || (style !== 'raw' && process.stdout.isTTY === true);
  return pino({
    level,
    base,
    ...(pretty
      ? {
          transport: {
            target: 'pino-pretty',
            options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true },
          },
        }
      : {}),
  });
}
