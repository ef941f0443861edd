/**
 * One webhook attempt: POST the alert as JSON, signed, with a timeout. The outcome is a typed
 * result; the caller records it in the outbox.
 */
import { createHmac } from 'node:crypto';
import { type AlertPayload, WEBHOOK_HEADERS } from '../contract/alerts.js';

/** `sha256=<hex HMAC-SHA256 of body with secret>`; receivers recompute it over the raw body. */
export function signature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export type WebhookOutcome = { ok: true; status: number } | { ok: false; error: string; status?: number };

export async function postWebhook(
  url: string,
  payload: AlertPayload,
  secret: string | null,
  attempt: number,
  timeoutMs: number,
): Promise<WebhookOutcome> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'fleet-alerts/1',
    [WEBHOOK_HEADERS.delivery]: payload.delivery,
    [WEBHOOK_HEADERS.attempt]: String(attempt),
  };
  if (secret) headers[WEBHOOK_HEADERS.signature] = signature(body, secret);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
    // Drain the body so the connection can be reused; its content does not matter.
    await res.arrayBuffer().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    return { ok: false, status: res.status, error: `HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError') return { ok: false, error: `timed out after ${timeoutMs} ms` };
    return { ok: false, error: e.cause?.code ?? e.cause?.message ?? e.message };
  }
}
