/**
 * Deleting a client (DELETE /api/auth/clients/{id}/) revokes what it was issued: its grants are tombstoned and
 * their tokens gone (introspection answers inactive, the refresh token is refused), its client credentials
 * tokens, opaque or JWT, are inactive, and its service-account roles go with it.
 */
import { eq, sql } from 'drizzle-orm';
import * as client from 'openid-client';
import t from 'tap';
import { oidcPayloads, oidcRevokedGrants } from '../../src/db/schema/index.js';
import { NO_RATE_LIMITS } from '../helpers/auth.js';
import { auditLog } from '../helpers/mfa.js';
import { discover, loginWithCode, oauthError, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('deleting a client revokes its grants and tokens', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const db = server.app.keryu.database.db;
  const { api } = await userWithToken(server, 'admin@example.com', ['admin']);
  // A relying service that introspects tokens presented to it (a confidential client of its own).
  const introspector = await discover(server, await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined }));
  const active = async (token: string) => (await client.tokenIntrospection(introspector, token)).active;

  // A web app a user signed in to (a grant, an access token, a refresh token).
  await seedUser(server, 'alice@example.com');
  const web = await api('POST', '/api/auth/clients/', {
    client_id: 'doomed-web',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    scope: 'openid profile offline_access',
  });
  t.equal(web.status, 201);
  const webConfig = await discover(server, { clientId: 'doomed-web', clientSecret: web.body.client_secret });
  const { tokens: userTokens } = await loginWithCode(server, webConfig, { scope: 'openid profile offline_access' });
  t.ok(userTokens.refresh_token, 'a refresh token');

  // A machine client without roles (an opaque token, stored), and a service account with a role (a JWT for the API, not stored).
  const machine = { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' };
  const plain = await api('POST', '/api/auth/clients/', { client_id: 'doomed-plain', ...machine });
  const plainConfig = await discover(server, { clientId: 'doomed-plain', clientSecret: plain.body.client_secret });
  const opaque = (await client.clientCredentialsGrant(plainConfig)).access_token;
  t.not(opaque.split('.').length, 3, 'an opaque token');
  const bot = await api('POST', '/api/auth/clients/', { client_id: 'doomed-bot', ...machine });
  t.equal((await api('POST', '/api/auth/clients/doomed-bot/roles/', { role: 'admin' })).status, 201);
  const botConfig = await discover(server, { clientId: 'doomed-bot', clientSecret: bot.body.client_secret });
  const jwt = (await client.clientCredentialsGrant(botConfig, { resource: server.config.apiAudience })).access_token;
  t.equal(jwt.split('.').length, 3, 'the API token is a JWT');

  for (const [what, token] of [
    ['user access token', userTokens.access_token],
    ['refresh token', userTokens.refresh_token as string],
    ['opaque client credentials token', opaque],
    ['JWT client credentials token', jwt],
  ] as const) {
    t.equal(await active(token), true, `before: ${what} active`);
  }
  const botApi = (path: string) => fetch(`${server.origin}${path}`, { headers: { authorization: `Bearer ${jwt}` } });
  t.equal((await botApi('/api/auth/clients/')).status, 200, 'before: the service account uses the API');
  const grantIds = (await db.select({ id: oidcPayloads.id }).from(oidcPayloads).where(sql`${oidcPayloads.model} = 'Grant' and ${oidcPayloads.payload} ->> 'clientId' = 'doomed-web'`)).map((r) => r.id);
  t.equal(grantIds.length, 1, 'the web app holds a grant');
  const stored = await db.select({ id: oidcPayloads.id }).from(oidcPayloads).where(sql`${oidcPayloads.model} = 'ClientCredentials' and ${oidcPayloads.payload} ->> 'clientId' = 'doomed-plain'`);
  t.equal(stored.length, 1, 'the opaque token is stored');

  t.equal((await api('DELETE', '/api/auth/clients/doomed-web/')).status, 204);
  t.equal((await api('DELETE', '/api/auth/clients/doomed-bot/')).status, 204);
  t.equal((await api('DELETE', '/api/auth/clients/doomed-plain/')).status, 204);

  for (const [what, token] of [
    ['user access token', userTokens.access_token],
    ['refresh token', userTokens.refresh_token as string],
    ['opaque client credentials token', opaque],
    ['JWT client credentials token', jwt],
  ] as const) {
    t.equal(await active(token), false, `after: ${what} inactive`);
  }
  t.equal((await oauthError(client.refreshTokenGrant(webConfig, userTokens.refresh_token as string))).error, 'invalid_client', 'the refresh token cannot be used');
  t.equal((await oauthError(client.clientCredentialsGrant(botConfig))).error, 'invalid_client', 'the deleted client cannot authenticate');
  t.not((await botApi('/api/auth/clients/')).status, 200, 'the service account\'s API token no longer works');

  const left = await db.select({ id: oidcPayloads.id }).from(oidcPayloads).where(sql`${oidcPayloads.payload} ->> 'clientId' in ('doomed-web', 'doomed-bot', 'doomed-plain')`);
  t.same(left, [], 'nothing issued to them is stored any more');
  const tombstones = await db.select().from(oidcRevokedGrants).where(eq(oidcRevokedGrants.grantId, grantIds[0] as string));
  t.equal(tombstones.length, 1, 'the grant is tombstoned (a token written a moment later dies too)');
  t.equal((await api('GET', '/api/auth/clients/doomed-bot/roles/')).status, 404, 'its roles went with it');

  // One event per deleted client; the log's order within a second is not what this checks.
  const deleted = (await auditLog(server)).filter((e) => e.type === 'client.deleted');
  t.same(
    deleted
      .map((e) => [e.subjectId, (e.details as { revoked_grants: number }).revoked_grants, (e.details as { deleted_artefacts: number }).deleted_artefacts > 0])
      .sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    [
      ['doomed-bot', 0, false],
      ['doomed-plain', 0, true],
      ['doomed-web', 1, false],
    ],
    'audited with what was revoked',
  );
});
