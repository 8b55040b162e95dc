/**
 * The management APIs accept only tokens meant for them: a relying party's token for userinfo (opaque) or
 * for another resource server (JWT with another audience) is refused, so no relying party can act on the
 * APIs with its users' tokens (confused deputy). Tokens for the built-in API resource work. A service account
 * (a client holding roles) asking for client credentials without `resource` gets a token for the API (issue 10
 * item 4); an explicit resource still wins, and a client without roles still gets an opaque token.
 */
import * as client from 'openid-client';
import t from 'tap';
import { bootstrapSchema } from '../../src/services/bootstrap.js';
import { discover, loginWithCode, seedClient } from '../helpers/oidc.js';
import { apiClient, assignClientRoles, serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('a service account asking for client credentials without resource gets a token for the API', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  await server.app.keryu.services.bootstrap.applyBootstrap(
    bootstrapSchema.parse({ resource_servers: [{ identifier: 'https://orders.example.com', scope: 'orders', access_token_format: 'jwt' }] }),
    { type: 'system' },
    'test',
  );
  const seeded = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  await assignClientRoles(server, seeded.clientId, ['admin']);
  const config = await discover(server, seeded);

  const tokens = await client.clientCredentialsGrant(config);
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1] ?? '', 'base64url').toString()) as { aud?: string };
  t.equal(claims.aud, server.config.apiAudience, 'the API is the default resource of a service account');
  const api = apiClient(server.origin, tokens.access_token);
  t.equal((await api('GET', '/api/auth/roles/')).status, 200, 'and the management API takes it');
  t.equal((await api('POST', '/api/auth/permissions/', { name: 'Orders', codename: 'orders.read' })).status, 201, 'for writes too');

  const explicit = await client.clientCredentialsGrant(config, { resource: 'https://orders.example.com', scope: 'orders' });
  const explicitClaims = JSON.parse(Buffer.from(explicit.access_token.split('.')[1] ?? '', 'base64url').toString()) as { aud?: string; scope?: string };
  t.equal(explicitClaims.aud, 'https://orders.example.com', 'an explicit resource still wins');
  t.equal(explicitClaims.scope, 'orders');
});

t.test('only tokens for the API audience reach the management APIs', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  await server.app.keryu.services.bootstrap.applyBootstrap(
    bootstrapSchema.parse({ resource_servers: [{ identifier: 'https://orders.example.com', scope: 'orders', access_token_format: 'jwt' }] }),
    { type: 'system' },
    'test',
  );

  const admin = await serviceAccount(server, ['admin']);
  t.equal((await admin.api('GET', '/api/auth/roles/')).status, 200, 'a service account token for the API works');

  // A client without roles asking for client credentials gets an opaque token, which the API refuses.
  const plain = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  const plainConfig = await discover(server, plain);
  const opaque = await client.clientCredentialsGrant(plainConfig);
  t.equal(opaque.access_token.split('.').length, 1, 'a client without roles: opaque, as before');
  const res = await apiClient(server.origin, opaque.access_token)('GET', '/api/auth/roles/');
  t.equal(res.status, 401, 'an opaque token without the API audience is refused');
  t.equal(res.body.error, 'invalid_token');

  const seeded = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  await assignClientRoles(server, seeded.clientId, ['admin']);
  const config = await discover(server, seeded);
  const other = await client.clientCredentialsGrant(config, { resource: 'https://orders.example.com' });
  t.equal((await apiClient(server.origin, other.access_token)('GET', '/api/auth/roles/')).status, 401, 'a JWT for another resource is refused, even for an admin client');
  const alice = await userWithToken(server, 'alice@example.com', ['admin']);
  t.equal((await alice.api('GET', '/api/auth/roles/')).status, 200, 'a user token for the API works');
  const rp = await seedClient(server);
  const userinfoToken = await loginWithCode(server, await discover(server, rp), { email: 'alice@example.com' });
  t.equal((await apiClient(server.origin, userinfoToken.tokens.access_token)('GET', '/api/auth/roles/')).status, 401, 'a relying party’s userinfo token is refused');
});
