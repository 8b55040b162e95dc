/**
 * Resource indicators (RFC 8707): a registered resource server receives audience-restricted access tokens,
 * as JWTs (RFC 9068) signed with the provider's published keys, or opaque; an unknown resource is
 * invalid_target.
 */
import t from 'tap';
import * as client from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { bootstrapSchema } from '../../src/services/bootstrap.js';
import { discover, loginWithCode, oauthError, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

const API = 'https://api.example.com/';
const OPAQUE_API = 'https://opaque.example.com/';

t.test('resource indicators', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());

  const summary = await server.app.keryu.services.bootstrap.applyBootstrap(
    bootstrapSchema.parse({
      resource_servers: [
        { identifier: API, name: 'Example API', scope: 'api:read api:write', access_token_format: 'jwt', access_token_ttl: 300 },
        { identifier: OPAQUE_API, scope: 'opaque:read', access_token_format: 'opaque' },
      ],
    }),
    { type: 'system' },
    'resource-indicators.test',
  );
  t.same(summary.resource_servers, { [API]: 'created', [OPAQUE_API]: 'created' }, 'resource servers registered through bootstrap');

  const machine = await seedClient(server, {
    grant_types: ['client_credentials'],
    redirect_uris: [],
    post_logout_redirect_uris: [],
    // Client `scope` may name only the provider's own scopes; resource scopes come from the resource server.
    scope: undefined,
  });
  const config = await discover(server, machine);
  const jwksUri = config.serverMetadata().jwks_uri;
  if (!jwksUri) throw new Error('discovery document has no jwks_uri');
  const jwks = createRemoteJWKSet(new URL(jwksUri));

  t.test('client credentials with resource= gives a JWT for that audience, verifiable with the JWKS', async (t) => {
    const tokens = await client.clientCredentialsGrant(config, { resource: API, scope: 'api:read' });
    t.equal(tokens.scope, 'api:read');
    t.ok(tokens.expires_in && tokens.expires_in <= 300, 'the resource server TTL applies');

    const header = decodeProtectedHeader(tokens.access_token);
    t.equal(header.typ, 'at+jwt', 'RFC 9068 token type');
    t.equal(header.alg, 'ES256');

    const { payload } = await jwtVerify(tokens.access_token, jwks, {
      issuer: server.issuer,
      audience: API,
      typ: 'at+jwt',
      algorithms: ['ES256'],
    });
    t.equal(payload.aud, API, 'aud is the resource identifier');
    t.equal(payload.client_id, machine.clientId);
    t.equal(payload.scope, 'api:read');
    t.ok(payload.exp && payload.iat && payload.exp - payload.iat <= 300, 'lifetime from the resource server');
    t.ok(payload.jti, 'has a jti');

    await t.rejects(jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, audience: OPAQUE_API }), 'not valid for another audience');
  });

  t.test('a scope the resource server does not define is dropped from its token', async (t) => {
    const tokens = await client.clientCredentialsGrant(config, { resource: API, scope: 'api:read opaque:read' });
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, audience: API });
    t.equal(payload.scope, 'api:read');
  });

  t.test('an opaque-format resource server gets an opaque token whose introspection names the audience', async (t) => {
    const tokens = await client.clientCredentialsGrant(config, { resource: OPAQUE_API, scope: 'opaque:read' });
    t.equal(tokens.access_token.split('.').length, 1, 'not a JWT');
    const info = await client.tokenIntrospection(config, tokens.access_token);
    t.equal(info.active, true);
    t.equal(info.aud, OPAQUE_API);
    t.equal(info.client_id, machine.clientId);
  });

  t.test('an unknown resource is invalid_target', async (t) => {
    const unknown = await oauthError(client.clientCredentialsGrant(config, { resource: 'https://unknown.example.com/', scope: 'api:read' }));
    t.equal(unknown.error, 'invalid_target');
    t.equal(unknown.status, 400);

    const fragment = await oauthError(client.clientCredentialsGrant(config, { resource: `${API}#frag` }));
    t.equal(fragment.error, 'invalid_target', 'a resource with a fragment (RFC 8707 §2)');

    const relative = await oauthError(client.clientCredentialsGrant(config, { resource: '/relative' }));
    t.equal(relative.error, 'invalid_target', 'a relative resource (RFC 8707 §2)');
  });

  t.test('authorization code flow with resource= gives the user a JWT for that audience', async (t) => {
    const user = await seedUser(server);
    const web = await seedClient(server);
    const webConfig = await discover(server, web);
    const { tokens } = await loginWithCode(server, webConfig, { resource: API, scope: 'openid offline_access api:read' });
    const { payload } = await jwtVerify(tokens.access_token, jwks, { issuer: server.issuer, audience: API, typ: 'at+jwt' });
    t.equal(payload.sub, user.id, 'sub is the user');
    t.equal(payload.client_id, web.clientId);
    t.equal(payload.scope, 'api:read', 'only the resource scopes');

    // The refresh token keeps the granted resource (useGrantedResource).
    const refreshed = await client.refreshTokenGrant(webConfig, tokens.refresh_token!);
    const again = await jwtVerify(refreshed.access_token, jwks, { issuer: server.issuer, audience: API });
    t.equal(again.payload.sub, user.id, 'refreshed access token is for the same resource');
  });
});
