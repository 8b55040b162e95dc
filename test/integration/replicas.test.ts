/**
 * Two server processes on one PostgreSQL database, sharing one issuer: a token issued by one replica is
 * valid at the other, and a key rotated with `keryu keys rotate` is published (and, once active, used) by
 * every replica within the key refresh interval, without a restart.
 *
 * Replica A's origin is the shared issuer, so openid-client talks to A through discovery; replica B is
 * reached on its own origin with raw requests (its metadata names A's endpoints).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import * as client from 'openid-client';
import { createTestDatabase, onPostgres } from '../helpers/db.js';
import { Browser, discover, loginWithCode, REDIRECT_URI } from '../helpers/oidc.js';
import {
  cliEnv,
  endpoint,
  fetchJwks,
  introspect,
  jwtHeader,
  keryuJson,
  startReplicas,
  tokenRequest,
  verifyJwt,
  type ServerProcess,
} from '../helpers/replicas.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const SKIP = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL)';
const API = 'https://api.example.test';
const machine = { clientId: 'svc', clientSecret: 's'.repeat(40) };
const web = { clientId: 'web', clientSecret: 'w'.repeat(40) };

interface Rotation {
  keys: Array<{ kid: string; alg: string }>;
  activates_at: string;
}

t.test('replicas share tokens and signing keys', { skip: SKIP }, async (t) => {
  const db = await createTestDatabase();
  const dir = await mkdtemp(join(tmpdir(), 'keryu-replicas-'));
  let replicas: ServerProcess[] = [];
  t.teardown(async () => {
    try {
      await Promise.allSettled(replicas.map((r) => r.stop()));
    } finally {
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  });
  const env = cliEnv(db.url!);

  // Everything is declared the way an operator would: one bootstrap file applied with the CLI.
  const file = join(dir, 'bootstrap.json');
  await writeFile(
    file,
    JSON.stringify({
      clients: [
        { client_id: machine.clientId, client_secret: machine.clientSecret, grant_types: ['client_credentials'] },
        {
          client_id: web.clientId,
          client_secret: web.clientSecret,
          redirect_uris: [REDIRECT_URI],
          grant_types: ['authorization_code', 'refresh_token'],
          scope: 'openid profile email offline_access',
        },
      ],
      users: [{ email: 'alice@example.com', password: TEST_PASSWORD, email_verified: true }],
      resource_servers: [{ identifier: API, scope: 'read', access_token_format: 'jwt' }],
    }),
  );
  await keryuJson(['bootstrap', file], env);

  replicas = await startReplicas(2, db.url!);
  const [a, b] = replicas as [ServerProcess, ServerProcess];
  t.equal(b.issuer, a.issuer, 'both replicas have the same issuer');
  t.not(b.origin, a.origin, 'on different ports');

  const machineConfig = await discover(a, machine);
  const webConfig = await discover(a, web);

  /** A JWT access token (RFC 9068) for the resource server, from replica A (openid-client) or B (raw). */
  async function jwtAccessToken(replica: ServerProcess): Promise<string> {
    if (replica === a) return (await client.clientCredentialsGrant(machineConfig, { resource: API, scope: 'read' })).access_token;
    const res = await tokenRequest(replica, machine, { grant_type: 'client_credentials', resource: API, scope: 'read' });
    if (res.status !== 200) throw new Error(`client credentials at B answered ${res.status}: ${JSON.stringify(res.body)}`);
    return String(res.body.access_token);
  }

  // An interactive login on A gives a refresh token; each refresh (at A or B) returns a new ID token.
  const login = await loginWithCode(a, webConfig, { browser: new Browser() });
  let refreshToken = login.tokens.refresh_token!;
  async function idToken(replica: ServerProcess): Promise<string> {
    const res = await tokenRequest(replica, web, { grant_type: 'refresh_token', refresh_token: refreshToken });
    if (res.status !== 200) throw new Error(`refresh at ${replica === a ? 'A' : 'B'} answered ${res.status}: ${JSON.stringify(res.body)}`);
    refreshToken = String(res.body.refresh_token);
    return String(res.body.id_token);
  }

  async function jwksKids(replica: ServerProcess): Promise<Set<string>> {
    return new Set((await fetchJwks(replica)).map((k) => k.kid));
  }

  /** Rotates with the CLI and measures how long until both replicas publish the new kids. */
  async function rotate(activateIn: number): Promise<{ rotation: Rotation; ms: number }> {
    // Measured from the moment the operator runs the command, CLI start-up included.
    const started = Date.now();
    const rotation = await keryuJson<Rotation>(['keys', 'rotate', '--activate-in', String(activateIn)], env);
    const kids = rotation.keys.map((k) => k.kid);
    const pending = new Set(replicas);
    while (pending.size && Date.now() - started < 10_000) {
      for (const r of [...pending]) {
        const published = await jwksKids(r);
        if (kids.every((k) => published.has(k))) pending.delete(r);
      }
      if (pending.size) await new Promise((r) => setTimeout(r, 50));
    }
    if (pending.size) throw new Error(`new keys ${kids.join(', ')} not published by every replica after 10 s`);
    return { rotation, ms: Date.now() - started };
  }

  t.test('a token issued by replica A is active at replica B', async (t) => {
    const tokens = await client.clientCredentialsGrant(machineConfig);
    t.ok(tokens.access_token, 'A issued an access token');

    const atB = await introspect(b, machine, tokens.access_token);
    t.equal(atB.active, true, 'B: active');
    t.equal(atB.client_id, machine.clientId, 'B: client_id');
    t.equal(atB.iss, a.issuer, 'B: the shared issuer');

    // And the other way round, for a token B issued.
    const fromB = await tokenRequest(b, machine, { grant_type: 'client_credentials' });
    t.equal(fromB.status, 200, 'B issues tokens too');
    const atA = await client.tokenIntrospection(machineConfig, String(fromB.body.access_token));
    t.equal(atA.active, true, 'a token from B is active at A');

    // Revocation at B is seen by A: there is no per-replica state.
    const revoked = await fetch(endpoint(b, '/token/revocation'), {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${machine.clientId}:${machine.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: tokens.access_token }).toString(),
    });
    t.equal(revoked.status, 200, 'B revoked the token A issued');
    t.equal((await client.tokenIntrospection(machineConfig, tokens.access_token)).active, false, 'A sees it revoked');
  });

  t.test('key rotation reaches both replicas', async (t) => {
    const initial = await jwksKids(a);
    t.same([...(await jwksKids(b))].sort(), [...initial].sort(), 'both replicas publish the same keys');
    t.equal(initial.size, 2, 'one key per algorithm (RS256, ES256)');

    const oldId = await idToken(a);
    const oldJwt = await jwtAccessToken(b);
    t.ok(initial.has(jwtHeader(oldId).kid!), 'ID token signed with an initial key');
    t.ok(initial.has(jwtHeader(oldJwt).kid!), 'JWT access token signed with an initial key');

    // --activate-in 0: published and signing at once.
    const now = await rotate(0);
    t.comment(`--activate-in 0: both replicas published the new keys ${now.ms} ms after the CLI started`);
    t.ok(now.ms < 5000, `published by both replicas within 5 s (took ${now.ms} ms)`);
    const kidFor = (r: Rotation, alg: string) => r.keys.find((k) => k.alg === alg)?.kid;
    const newRs = kidFor(now.rotation, 'RS256');
    const newEs = kidFor(now.rotation, 'ES256');
    t.ok(newRs && newEs, 'a new key for each algorithm');

    for (const [name, r] of [['A', a], ['B', b]] as const) {
      const jwks = await fetchJwks(r);
      const kids = new Set(jwks.map((k) => k.kid));
      for (const kid of initial) t.ok(kids.has(kid), `${name}: the old key ${kid} is still published`);
      t.equal(jwks.length, 4, `${name}: old and new keys published`);
      t.notOk(
        jwks.some((k) => 'd' in k || 'p' in k || 'q' in k),
        `${name}: JWKS carries no private key material`,
      );

      const id = await idToken(r);
      t.equal(jwtHeader(id).alg, 'RS256', `${name}: ID token alg`);
      t.equal(jwtHeader(id).kid, newRs, `${name}: a new ID token is signed with the new RS256 key`);
      const jwt = await jwtAccessToken(r);
      t.equal(jwtHeader(jwt).alg, 'ES256', `${name}: JWT access token alg (resource server)`);
      t.equal(jwtHeader(jwt).kid, newEs, `${name}: a new JWT access token is signed with the new ES256 key`);

      // Tokens from either replica verify with either replica's JWKS; the old ones still do too.
      const other = await fetchJwks(r === a ? b : a);
      t.ok(verifyJwt(id, other) && verifyJwt(jwt, other), `${name}: new tokens verify against the other replica's JWKS`);
      t.ok(verifyJwt(oldId, jwks) && verifyJwt(oldJwt, jwks), `${name}: tokens signed before the rotation still verify`);
    }

    // --activate-in 3600: published now, but the current key keeps signing.
    const later = await rotate(3600);
    t.comment(`--activate-in 3600: both replicas published the pending keys ${later.ms} ms after the CLI started`);
    t.ok(later.ms < 5000, `pending keys published by both replicas within 5 s (took ${later.ms} ms)`);
    const pending = new Set(later.rotation.keys.map((k) => k.kid));
    for (const [name, r] of [['A', a], ['B', b]] as const) {
      const kids = await jwksKids(r);
      t.equal(kids.size, 6, `${name}: initial, current and pending keys all published`);
      const id = await idToken(r);
      const jwt = await jwtAccessToken(r);
      t.equal(jwtHeader(id).kid, newRs, `${name}: ID tokens still signed with the current RS256 key`);
      t.equal(jwtHeader(jwt).kid, newEs, `${name}: JWT access tokens still signed with the current ES256 key`);
      t.notOk(pending.has(jwtHeader(id).kid!) || pending.has(jwtHeader(jwt).kid!), `${name}: the pending keys do not sign yet`);
    }

    const listed = await keryuJson<Array<{ kid: string; state: string }>>(['keys', 'list'], env);
    const state = Object.fromEntries(listed.map((k) => [k.kid, k.state]));
    t.same(
      { old: [...initial].map((k) => state[k]), current: [state[newRs!], state[newEs!]], pending: [...pending].map((k) => state[k]) },
      { old: ['retiring', 'retiring'], current: ['signing', 'signing'], pending: ['pending', 'pending'] },
      'keys list: initial keys retiring, current signing, new pending',
    );
  });
});
