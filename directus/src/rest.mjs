// @ts-check
/** A tiny Directus REST client (fetch + bearer token) that turns error responses into readable errors. */

/**
 * @param {string} url base URL of the instance
 * @param {string} token
 */
export function directusRest(url, token) {
  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   * @returns {Promise<any>} the parsed JSON body (`undefined` for 204)
   */
  async function request(method, path, body) {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 500)}`);
    if (!text) return undefined;
    return res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  }
  return {
    get: (/** @type {string} */ path) => request('GET', path),
    post: (/** @type {string} */ path, /** @type {unknown} */ body) => request('POST', path, body),
    patch: (/** @type {string} */ path, /** @type {unknown} */ body) => request('PATCH', path, body),
    delete: (/** @type {string} */ path) => request('DELETE', path),
  };
}
