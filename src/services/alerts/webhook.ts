/**
 * Webhook delivery as the Standard Webhooks specification defines it: headers `webhook-id` (the alert's
 * stable id, the same on every retry so receivers deduplicate), `webhook-timestamp` (Unix seconds of this
 * attempt) and `webhook-signature: v1,<base64 HMAC-SHA256 over "id.timestamp.body">`, keyed with the
 * base64-decoded part of a `whsec_` secret. Requests time out after 5 s and follow no redirect (a redirect
 * could send the alert somewhere the operator never configured).
 */
import { createHmac } from 'node:crypto';

export const WEBHOOK_TIMEOUT_MS = 5000;

export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/** A webhook URL as it may be shown (listings, audit events): no credentials, query or fragment. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '[invalid url]';
  }
}

/** Posts one signed delivery; resolves on a 2xx answer, throws with a short reason otherwise. */
export async function postWebhook(url: string, message: { id: string; body: string; secret: string }): Promise<void> {
  // The wall clock, not the services' injectable one: receivers compare it with theirs to refuse replays.
  const timestamp = Math.floor(Date.now() / 1000);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'keryu-auth-alerts',
        'webhook-id': message.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(message.secret, message.id, timestamp, message.body),
      },
      body: message.body,
    });
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    throw new Error(name === 'TimeoutError' ? `no answer within ${WEBHOOK_TIMEOUT_MS / 1000} s` : 'connection failed');
  }
  await response.body?.cancel().catch(() => {});
  if (response.status < 200 || response.status >= 300) throw new Error(`answered HTTP ${response.status}`);
}
