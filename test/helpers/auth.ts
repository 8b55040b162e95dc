/**
 * Helpers for the first-party auth API tests: JSON requests, a seeded user, a login.
 */
import type { TestServer } from './server.js';
import { TEST_PASSWORD } from './defaults.js';

export interface JsonResponse<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export async function api<T = Record<string, unknown>>(
  server: { origin: string },
  method: string,
  path: string,
  options: { body?: unknown; token?: string; headers?: Record<string, string>; raw?: string } = {},
): Promise<JsonResponse<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined || options.raw !== undefined) headers['content-type'] ??= 'application/json';
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  const res = await fetch(`${server.origin}${path}`, {
    method,
    headers,
    body: options.raw ?? (options.body !== undefined ? JSON.stringify(options.body) : undefined),
  });
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

export interface Pair {
  token_type: string;
  access_token: string;
  refresh_token: string;
  expires_in: number;
  session_id: string;
}

export async function seedAuthUser(server: TestServer, email = 'alice@example.com', password = TEST_PASSWORD) {
  return server.app.keryu.services.users.createUser({ email, password, name: 'Alice', emailVerified: true }, { type: 'system' });
}

export async function login(server: { origin: string }, body: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<Pair> {
  const res = await api<Pair>(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: TEST_PASSWORD, ...body }, headers });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A clock tests move forward instead of sleeping. */
export function manualClock(start = Date.now()) {
  let now = start;
  const clock = () => new Date(now);
  return Object.assign(clock, {
    advance(seconds: number) {
      now += seconds * 1000;
    },
  });
}

/** Generous limits so tests exercise what they test, not the request rate limiter. */
export const NO_RATE_LIMITS = { RATE_LIMIT_AUTH: '0', RATE_LIMIT_OIDC: '0', RATE_LIMIT_CLIENT: '0' };
