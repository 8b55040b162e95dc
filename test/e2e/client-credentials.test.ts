/**
 * Client credentials grant (RFC 6749 §4.4) for a machine client, introspection (RFC 7662), revocation
 * (RFC 7009), client authentication failures, and `Cache-Control: no-store` on token responses.
 */
import { and, eq } from 'drizzle-orm';
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { createClientQueries } from '../../src/queries/clients.js';
import * as client from 'openid-client';
import { discover, oauthError, recordResponses, seedClient } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

t.test('client credentials', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());

  const machine = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });

  t.test('a machine client is registered without redirect URIs or response types', async (t) => {
    t.ok(machine.clientSecret, 'a secret was generated');
    const stored = await createClientQueries(server.app.keryu.database.db).findClientMetadataById(machine.clientId);
    t.same(stored?.response_types, [], 'response_types derived empty');
    t.same(stored?.redirect_uris, [], 'no redirect URIs');
    t.same(stored?.grant_types, ['client_credentials']);
  });

  t.test('token, introspection, revocation', async (t) => {
    const config = await discover(server, machine);
    const responses = recordResponses(config);

    const tokens = await client.clientCredentialsGrant(config);
    t.ok(tokens.access_token, 'access token');
    t.equal(tokens.token_type?.toLowerCase(), 'bearer');
    t.equal(tokens.refresh_token, undefined, 'no refresh token for client credentials');
    t.equal(tokens.id_token, undefined, 'no ID token for client credentials');
    t.ok(typeof tokens.expires_in === 'number' && tokens.expires_in > 0 && tokens.expires_in <= server.config.ttl.clientCredentials, 'expires_in within the configured TTL');

    const tokenResponse = responses.find((r) => r.url.endsWith('/token'));
    t.ok(tokenResponse, 'the token response was recorded');
    t.match(tokenResponse?.response.headers.get('cache-control') ?? '', /no-store/, 'token response has Cache-Control: no-store');

    const active = await client.tokenIntrospection(config, tokens.access_token);
    t.equal(active.active, true, 'introspection: active');
    t.equal(active.client_id, machine.clientId, 'introspection: client_id');
    t.equal(active.sub, undefined, 'no end-user subject');
    t.ok(typeof active.exp === 'number' && active.exp > Date.now() / 1000, 'introspection: exp in the future');

    await client.tokenRevocation(config, tokens.access_token);
    const revoked = await client.tokenIntrospection(config, tokens.access_token);
    t.equal(revoked.active, false, 'introspection after revocation: inactive');
    t.same(Object.keys(revoked), ['active'], 'an inactive token reveals nothing else');

    // RFC 7009 §2.2: revoking an unknown or already revoked token still answers 200.
    await client.tokenRevocation(config, tokens.access_token);
    await client.tokenRevocation(config, 'not-a-token-at-all');
    t.pass('revoking an invalid token succeeds silently');
  });

  t.test('a failed token request also carries Cache-Control: no-store', async (t) => {
    const config = await discover(server, { clientId: machine.clientId, clientSecret: 'y'.repeat(43) });
    const failure = await oauthError(client.clientCredentialsGrant(config));
    t.match(failure.response?.headers.get('cache-control') ?? '', /no-store/);
  });

  t.test('wrong secret: invalid_client, 401', async (t) => {
    // One character changed (a secret that already ends in 'A' gets a 'B': base64url of 32 bytes ends in one of 16
    // characters, 'A' among them, so a fixed 'A' left the secret unchanged in one run out of 16).
    const secret = machine.clientSecret!;
    const config = await discover(server, { clientId: machine.clientId, clientSecret: `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}` });
    const failure = await oauthError(client.clientCredentialsGrant(config));
    t.equal(failure.error, 'invalid_client');
    t.equal(failure.status, 401);

    const post = await client.discovery(new URL(server.issuer), machine.clientId, undefined, client.ClientSecretPost('wrong-secret'), {
      execute: [client.allowInsecureRequests],
    });
    const viaPost = await oauthError(client.clientCredentialsGrant(post));
    t.equal(viaPost.error, 'invalid_client', 'a method the client is not registered for is refused too');
    t.equal(viaPost.status, 401);
  });

  t.test('unknown client: invalid_client, 401', async (t) => {
    const config = await discover(server, { clientId: 'no-such-client', clientSecret: 'z'.repeat(43) });
    const failure = await oauthError(client.clientCredentialsGrant(config));
    t.equal(failure.error, 'invalid_client');
    t.equal(failure.status, 401);
  });

  t.test('introspection and revocation need client authentication', async (t) => {
    const config = await discover(server, machine);
    const tokens = await client.clientCredentialsGrant(config);

    const anonymous = await discover(server, { clientId: 'no-such-client', clientSecret: 'z'.repeat(43) });
    t.equal((await oauthError(client.tokenIntrospection(anonymous, tokens.access_token))).error, 'invalid_client', 'introspection by an unknown client');
    t.equal((await oauthError(client.tokenRevocation(anonymous, tokens.access_token))).error, 'invalid_client', 'revocation by an unknown client');
    t.equal((await client.tokenIntrospection(config, tokens.access_token)).active, true, 'the token was not revoked by the failed call');
  });

  t.test('a client without the client_credentials grant is refused', async (t) => {
    const web = await seedClient(server);
    const config = await discover(server, web);
    const failure = await oauthError(client.clientCredentialsGrant(config));
    // RFC 6749 §5.2: an authenticated client using a grant type it is not registered for.
    t.equal(failure.error, 'unauthorized_client', String(failure.description));
    t.equal(failure.description, 'requested grant type is not allowed for this client');
    t.equal(failure.status, 400);

    const device = await oauthError(client.initiateDeviceAuthorization(config, { scope: 'openid' }));
    t.equal(device.error, 'unauthorized_client', 'the device authorization endpoint too (RFC 8628 §3.2)');
    t.equal(device.status, 400);

    await server.app.keryu.services.audit.flush();
    const recorded = await server.db.database.db.select().from(auditEvents).where(and(eq(auditEvents.type, 'oidc.grant'), eq(auditEvents.clientId, web.clientId)));
    t.match(recorded.map((e) => e.details), [{ error: 'unauthorized_client' }], 'the audit log records the code the client got');
  });
});
