/**
 * Helpers shared by the command tests and the benchmark: REST calls as a given user, bounded
 * polling, simulated devices registered in the database, and test users per role.
 */
import type { Knex } from 'knex';
import { SimulatedDevice } from '../../../daemon/src/simulator/device.js';
import { simulatedImei } from '../../../daemon/src/simulator/imei.js';

export interface ApiResult<T = unknown> {
  status: number;
  data: T;
  message: string;
}

export function restClient(baseUrl: string) {
  return async function api<T = unknown>(
    token: string,
    method: string,
    path: string,
    body?: unknown,
  ): Promise<ApiResult<T>> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text ? (JSON.parse(text) as { data?: T; errors?: Array<{ message: string }> }) : {};
    return { status: res.status, data: json.data as T, message: json.errors?.map((e) => e.message).join('; ') ?? '' };
  };
}

let imeiCounter = 0;
const seed = Math.floor(Math.random() * 10_000);

/** Inserts an enabled device row and returns its id and IMEI. */
export async function addDevice(knex: Knex, name: string, enabled = true): Promise<{ id: number; imei: string }> {
  const imei = simulatedImei(seed, ++imeiCounter);
  const [row] = await knex('devices').insert({ imei, name, enabled }).returning(['id']);
  return { id: Number(row.id), imei };
}

export function simulatedDevice(imei: string, port: number, answerCommands = true): SimulatedDevice {
  return new SimulatedDevice({ imei, host: '127.0.0.1', port, autoReconnect: false, answerCommands });
}

/** Creates a user with the named role through the REST API and returns an access token for it. */
export async function userWithRole(
  api: ReturnType<typeof restClient>,
  adminToken: string,
  login: (email: string, password: string) => Promise<string>,
  roleName: string,
): Promise<string> {
  const roles = await api<Array<{ id: string }>>(adminToken, 'GET', `/roles?filter[name][_eq]=${roleName}&fields=id`);
  const role = roles.data[0]?.id;
  if (!role) throw new Error(`role ${roleName} is not seeded`);
  const email = `${roleName.toLowerCase()}-${Math.random().toString(36).slice(2, 8)}@example.com`;
  const password = 'test-password-123';
  const created = await api(adminToken, 'POST', '/users', { email, password, role, status: 'active' });
  if (created.status >= 300) throw new Error(`creating ${roleName} user: ${created.status} ${created.message}`);
  return login(email, password);
}
