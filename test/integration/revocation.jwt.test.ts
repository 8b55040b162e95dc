/**
 * Revocation (RFC 7009) of JWT access tokens at the discovered revocation endpoint: once revoked, the
 * management API refuses the token at once on the replica that revoked it, and within the notification's
 * delivery on every other, including one that had already verified it and remembered it was not revoked;
 * only the client a token was issued to may revoke it (RFC 7009 §2.1).
 */
import { eq } from 'drizzle-orm';
import * as client from 'openid-client';
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { NO_RATE_LIMITS } from '../helpers/auth.js';
import { onPostgres } from '../helpers/db.js';
import { discover, loginWithCode, oauthError, seedClient, seedUser } from '../helpers/oidc.js';
import { startServerProcess } from '../helpers/process.js';
import { apiClient, assignClientRoles, assignRoles } from '../helpers/rbac.js';
import { startServer, type TestServer } from '../helpers/server.js';

// The replica test needs a database two processes share.
const SKIP = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL)';

/** Other replicas learn of a revocation by notification (milliseconds); this bounds the wait generously. */
const NOTIFICATION_WAIT_MS = 3000;

/** The status the call answers once it stops answering 200, or 200 if it never does within the wait. */
async function statusOnceRefused(call: () => Promise<{ status: number }>): Promise<number> {
  const deadline = Date.now() + NOTIFICATION_WAIT_MS;
  for (;;) {
    const { status } = await call();
    if (status !== 200 || Date.now() > deadline) return status;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function adminServiceAccount(server: TestServer) {
  const seeded = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  await assignClientRoles(server, seeded.clientId, ['admin']);
  const config = await discover(server, seeded);
  const { access_token: token } = await client.clientCredentialsGrant(config, { resource: server.config.apiAudience });
  return { clientId: seeded.clientId, config, token };
}

t.test('a revoked JWT is refused by the management API on every replica', { skip: SKIP }, async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const replicaB = await startServerProcess({ databaseUrl: server.db.url!, issuer: server.issuer, env: NO_RATE_LIMITS });
  t.teardown(() => replicaB.stop());

  const admin = await adminServiceAccount(server);
  t.equal(admin.token.split('.').length, 3, 'a JWT for the API');
  const atA = apiClient(server.origin, admin.token);
  const atB = apiClient(replicaB.origin, admin.token);
  t.equal((await atA('GET', '/api/auth/roles/')).status, 200, 'works at replica A');
  t.equal((await atB('GET', '/api/auth/roles/')).status, 200, 'works at replica B (which now has it verified in memory)');

  await client.tokenRevocation(admin.config, admin.token);

  const refusedA = await atA('GET', '/api/auth/roles/');
  t.equal(refusedA.status, 401, 'refused at replica A');
  t.equal(refusedA.body.error, 'invalid_token');
  t.equal(await statusOnceRefused(() => atB('GET', '/api/auth/roles/')), 401, 'refused at replica B within the wait');
  t.same(await client.tokenIntrospection(admin.config, admin.token), { active: false }, 'introspection agrees');

  const fresh = await client.clientCredentialsGrant(admin.config, { resource: server.config.apiAudience });
  t.equal((await apiClient(server.origin, fresh.access_token)('GET', '/api/auth/roles/')).status, 200, 'only that token: a new one works');

  await client.tokenRevocation(admin.config, admin.token);
  t.pass('revoking it again answers 200 (RFC 7009 §2.2)');

  await server.app.keryu.services.audit.flush();
  const events = await server.db.database.db.select().from(auditEvents).where(eq(auditEvents.type, 'oidc.token_revoked'));
  t.equal(events.filter((e) => e.outcome === 'success').length, 2, 'each revocation audited as a success');
  t.equal(events.filter((e) => e.outcome === 'failure').length, 0, 'no failure recorded for a JWT');
});

t.test("a client cannot revoke another client's token", async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const admin = await adminServiceAccount(server);

  const other = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  const otherConfig = await discover(server, other);
  const refused = await oauthError(client.tokenRevocation(otherConfig, admin.token));
  t.equal(refused.status, 400, 'a confidential client is told (RFC 7009 §2.1)');
  t.equal(refused.error, 'unauthorized_client');
  t.equal((await apiClient(server.origin, admin.token)('GET', '/api/auth/roles/')).status, 200, 'and the token still works');

  const spa = await seedClient(server, { token_endpoint_auth_method: 'none' });
  await client.tokenRevocation(await discover(server, spa), admin.token);
  t.equal((await apiClient(server.origin, admin.token)('GET', '/api/auth/roles/')).status, 200, 'a public client gets 200 and revokes nothing');
  t.equal((await client.tokenIntrospection(admin.config, admin.token)).active, true, 'still active');

  // The same rule for the opaque tokens the provider stores.
  const opaque = await client.clientCredentialsGrant(admin.config);
  const opaqueRefused = await oauthError(client.tokenRevocation(otherConfig, opaque.access_token));
  t.equal(opaqueRefused.error, 'unauthorized_client', 'an opaque token of another client too');
  t.equal((await client.tokenIntrospection(admin.config, opaque.access_token)).active, true, 'still active');
});

t.test("a user's JWT is refused by the management API once its grant is revoked", async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const user = await seedUser(server);
  await assignRoles(server, user.id, ['admin']);
  // Only first-party clients may obtain user tokens for the API.
  const config = await discover(server, await seedClient(server, { first_party: true }));
  const scope = ['openid', 'offline_access', 'auth.roles.manage'].join(' ');
  const { tokens } = await loginWithCode(server, config, { scope, resource: server.config.apiAudience });
  const asUser = apiClient(server.origin, tokens.access_token);
  t.equal((await asUser('GET', '/api/auth/roles/')).status, 200, 'the JWT works (and is now verified in memory)');

  // Revoking the refresh token revokes the grant, and with it every token issued under it (the tombstone is
  // announced by notification, to this replica too).
  await client.tokenRevocation(config, tokens.refresh_token!);
  t.equal(await statusOnceRefused(() => asUser('GET', '/api/auth/roles/')), 401, 'refused once its grant is revoked');
});
