/**
 * Helpers for tests that run several server processes (replicas) against one PostgreSQL database: the
 * `keryu` CLI in-process, raw protocol requests to a given replica, JWT/JWKS inspection, and an empty
 * (unmigrated) database for migration tests.
 */
import { verify as verifySignature, createPublicKey, type JsonWebKey } from 'node:crypto';
import { Readable } from 'node:stream';
import { runCli } from '../../src/cli.js';
import { createDatabase, testDatabaseUrl, type CreatedDatabase } from './db.js';
import { testCliEnv } from './defaults.js';
import { startServerProcess, type ServerProcess } from './process.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment a replica's operator would give `keryu`: same database, same root secret. */
export function cliEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...testCliEnv(databaseUrl), ...extra };
}

/** Runs `keryu ARGV` in this process and captures what it prints. */
export async function keryu(argv: string[], env: Record<string, string>, stdin = ''): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    env,
    stdin: Readable.from(stdin ? [Buffer.from(stdin)] : []),
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
  });
  return { code, stdout, stderr };
}

/** Like `keryu`, but fails with the captured output unless the command exits 0; parses `--json` output. */
export async function keryuJson<T = unknown>(argv: string[], env: Record<string, string>, stdin = ''): Promise<T> {
  const result = await keryu([...argv, '--json'], env, stdin);
  if (result.code !== 0) throw new Error(`keryu ${argv.join(' ')} exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/**
 * Starts `count` server processes on one database. The first one's issuer (its own origin) is shared by
 * all, so tokens, codes and cookies are interchangeable; each listens on its own port.
 */
export async function startReplicas(count: number, databaseUrl: string, env: Record<string, string> = {}): Promise<ServerProcess[]> {
  const first = await startServerProcess({ databaseUrl, env });
  const replicas = [first];
  try {
    const rest = await Promise.all(
      Array.from({ length: count - 1 }, () => startServerProcess({ databaseUrl, issuer: first.issuer, env })),
    );
    replicas.push(...rest);
  } catch (err) {
    await first.stop();
    throw err;
  }
  return replicas;
}

/** A provider endpoint on this replica's own origin (the shared issuer names the first replica's). */
export function endpoint(replica: { origin: string; issuer: string }, path: string): string {
  return `${replica.origin}${new URL(replica.issuer).pathname.replace(/\/$/, '')}${path}`;
}

export function basicAuth(clientId: string, secret: string): string {
  // RFC 6749 §2.3.1: form-urlencode each part before joining.
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64')}`;
}

/** A raw token endpoint request (what openid-client would send), so it can be aimed at any replica. */
export async function tokenRequest(
  replica: { origin: string; issuer: string },
  client: { clientId: string; clientSecret: string },
  fields: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(endpoint(replica, '/token'), {
    method: 'POST',
    headers: {
      authorization: basicAuth(client.clientId, client.clientSecret),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams(fields).toString(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

export async function introspect(
  replica: { origin: string; issuer: string },
  client: { clientId: string; clientSecret: string },
  token: string,
): Promise<Record<string, unknown>> {
  const res = await fetch(endpoint(replica, '/token/introspection'), {
    method: 'POST',
    headers: {
      authorization: basicAuth(client.clientId, client.clientSecret),
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    },
    body: new URLSearchParams({ token }).toString(),
  });
  if (res.status !== 200) throw new Error(`introspection answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

export type PublicJwk = JsonWebKey & { kid: string; alg?: string; use?: string };

export async function fetchJwks(replica: { origin: string; issuer: string }): Promise<PublicJwk[]> {
  const res = await fetch(endpoint(replica, '/jwks'));
  if (res.status !== 200) throw new Error(`jwks answered ${res.status}`);
  return ((await res.json()) as { keys: PublicJwk[] }).keys;
}

export function jwtHeader(jwt: string): { alg: string; kid?: string; typ?: string } {
  const [header] = jwt.split('.');
  return JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8')) as { alg: string; kid?: string };
}

export function jwtPayload(jwt: string): Record<string, unknown> {
  const [, payload] = jwt.split('.');
  return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Verifies a compact JWS (RS256 or ES256) with the key its header names, found in `keys`. */
export function verifyJwt(jwt: string, keys: PublicJwk[]): boolean {
  const { alg, kid } = jwtHeader(jwt);
  const jwk = keys.find((k) => k.kid === kid);
  if (!jwk) return false;
  const [h, p, s] = jwt.split('.');
  const data = Buffer.from(`${h}.${p}`);
  const signature = Buffer.from(s ?? '', 'base64url');
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  if (alg === 'RS256') return verifySignature('sha256', data, key, signature);
  if (alg === 'ES256') return verifySignature('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature);
  throw new Error(`unexpected alg ${alg}`);
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A new, empty PostgreSQL database (no migrations applied) on the TEST_DATABASE_URL server. */
export async function createEmptyDatabase(): Promise<CreatedDatabase> {
  if (!testDatabaseUrl) throw new Error('createEmptyDatabase needs TEST_DATABASE_URL');
  return createDatabase(testDatabaseUrl);
}

export type { ServerProcess };
