import { type Logger, pino } from 'pino';

export type { Logger };

/** JSON logs in production; readable lines when a person is watching a terminal. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  const pretty = process.stdout.isTTY && process.env.LOG_STYLE !== 'raw';
  return pino({
    level,
    base,
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
  });
}
