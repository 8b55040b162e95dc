/**
 * A change made through the client management API on one replica is seen by another server process at once
 * (the `clients` trigger's NOTIFY drops the other replica's cached entry on commit): a replaced grant list, a
 * rotated secret (grace period 0 here) and a deleted client. PostgreSQL only: PGlite is single-process.
 */
import t from 'tap';
import { NO_RATE_LIMITS } from '../helpers/auth.js';
import { onPostgres } from '../helpers/db.js';
import { startServerProcess } from '../helpers/process.js';
import { userWithToken } from '../helpers/rbac.js';
import { tokenRequest } from '../helpers/replicas.js';
import { startServer } from '../helpers/server.js';

/** Polls until `fn` holds; the answer is whether it did before `ms` (a bound for a hung test, not a measured time). */
async function eventually(fn: () => Promise<boolean>, ms = 5000): Promise<boolean> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

t.test('client API changes reach another replica', { skip: onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL): PGlite is single-process' }, async (t) => {
  const env = { ...NO_RATE_LIMITS, CLIENT_SECRET_GRACE_PERIOD: '0' };
  const a = await startServer({ env });
  t.teardown(() => a.close());
  const b = await startServerProcess({ databaseUrl: a.db.url as string, issuer: a.issuer, env });
  t.teardown(() => b.stop());
  const { api } = await userWithToken(a, 'admin@example.com', ['admin']);

  const machine = { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' };
  const created = await api('POST', '/api/auth/clients/', { client_id: 'replicated', ...machine });
  t.equal(created.status, 201);
  let secret: string = created.body.client_secret;
  const grantOnB = async (s = secret) => (await tokenRequest(b, { clientId: 'replicated', clientSecret: s }, { grant_type: 'client_credentials' })).status;
  t.equal(await grantOnB(), 200, 'B issues a token (and caches the client)');
  t.equal(await grantOnB(), 200, 'again, from its cache');

  // PUT on A: the client may no longer use client_credentials.
  const replaced = await api('PUT', '/api/auth/clients/replicated/', { ...machine, grant_types: ['authorization_code'], redirect_uris: ['https://app.example.com/cb'] });
  t.equal(replaced.status, 200, JSON.stringify(replaced.body));
  t.ok(await eventually(async () => (await grantOnB()) !== 200), 'B refuses the grant the update removed');
  t.equal((await tokenRequest(b, { clientId: 'replicated', clientSecret: secret }, { grant_type: 'client_credentials' })).body.error, 'unauthorized_client');
  t.equal((await api('PUT', '/api/auth/clients/replicated/', machine)).status, 200, 'and back');
  t.ok(await eventually(async () => (await grantOnB()) === 200), 'B follows');

  // Rotation on A: B refuses the old secret, accepts the new one.
  const rotated = await api('POST', '/api/auth/clients/replicated/secret/');
  t.equal(rotated.status, 200);
  const old = secret;
  secret = rotated.body.client_secret;
  t.ok(await eventually(async () => (await grantOnB(old)) === 401), 'B refuses the replaced secret');
  t.equal(await grantOnB(), 200, 'B accepts the new one');

  // Delete on A: B stops authenticating the client.
  t.equal((await api('DELETE', '/api/auth/clients/replicated/')).status, 204);
  t.ok(await eventually(async () => (await grantOnB()) === 401), 'B refuses the deleted client');
});
