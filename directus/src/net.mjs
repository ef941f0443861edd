// @ts-check
import { createServer } from 'node:net';

/** A TCP port that was free a moment ago on 127.0.0.1 (the OS picks it). */
export function freePort() {
  return /** @type {Promise<number>} */ (
    new Promise((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const port = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(port));
      });
    })
  );
}

/**
 * Null when `port` can be bound on `host`, else the error code (e.g. EADDRINUSE).
 * @param {string} host
 * @param {number} port
 * @returns {Promise<string | null>}
 */
export function portProblem(host, port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err) => resolve(/** @type {NodeJS.ErrnoException} */ (err).code ?? err.message));
    srv.listen(port, host, () => srv.close(() => resolve(null)));
  });
}
