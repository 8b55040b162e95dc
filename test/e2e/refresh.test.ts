/**
 * Refresh tokens (RFC 6749 §6, RFC 9700 §4.14.2): rotated on every use, a reused (rotated) token revokes
 * the whole grant, and a refresh token (or code) works only for the client it was issued to.
 */
import t from 'tap';
import * as client from 'openid-client';
import { authorizeThroughForms, discover, loginWithCode, oauthError, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

t.test('refresh tokens', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  await seedUser(server);

  t.test('rotation: the old refresh token is invalid after one use', async (t) => {
    const config = await discover(server, await seedClient(server));
    const { tokens } = await loginWithCode(server, config);
    const rt1 = tokens.refresh_token!;
    t.ok(rt1, 'refresh token issued (offline_access)');

    const second = await client.refreshTokenGrant(config, rt1);
    t.ok(second.refresh_token, 'a new refresh token');
    t.not(second.refresh_token, rt1, 'rotated');
    t.ok(second.access_token, 'a new access token');

    const reuse = await oauthError(client.refreshTokenGrant(config, rt1));
    t.equal(reuse.error, 'invalid_grant', 'the rotated-out refresh token is refused');
    t.equal(reuse.status, 400);
  });

  t.test('reuse of a rotated refresh token revokes the whole grant', async (t) => {
    const config = await discover(server, await seedClient(server));
    const { tokens } = await loginWithCode(server, config);
    const rt1 = tokens.refresh_token!;
    const firstAccess = tokens.access_token;

    const second = await client.refreshTokenGrant(config, rt1);
    const rt2 = second.refresh_token!;
    const at2 = second.access_token;
    t.equal((await client.tokenIntrospection(config, at2)).active, true, 'newest access token active before the reuse');
    t.equal((await client.tokenIntrospection(config, rt2)).active, true, 'newest refresh token active before the reuse');

    // An attacker (or a confused client) replays the rotated-out token.
    const reuse = await oauthError(client.refreshTokenGrant(config, rt1));
    t.equal(reuse.error, 'invalid_grant');

    t.equal((await client.tokenIntrospection(config, rt2)).active, false, 'newest refresh token revoked');
    t.equal((await client.tokenIntrospection(config, at2)).active, false, 'newest access token revoked');
    t.equal((await client.tokenIntrospection(config, firstAccess)).active, false, 'first access token revoked');
    const afterRevoke = await oauthError(client.refreshTokenGrant(config, rt2));
    t.equal(afterRevoke.error, 'invalid_grant', 'the legitimate holder of the newest token must sign in again');
  });

  t.test("another client's refresh token fails with invalid_grant and stays usable by its owner", async (t) => {
    const configA = await discover(server, await seedClient(server));
    const configB = await discover(server, await seedClient(server));
    const { tokens } = await loginWithCode(server, configA);
    const rtA = tokens.refresh_token!;

    const stolen = await oauthError(client.refreshTokenGrant(configB, rtA));
    t.equal(stolen.error, 'invalid_grant', 'client B cannot redeem client A refresh token');
    t.equal(stolen.status, 400);

    // A public client presenting it fails the same way.
    const publicB = await seedClient(server, { token_endpoint_auth_method: 'none' });
    const publicConfig = await discover(server, publicB);
    t.equal((await oauthError(client.refreshTokenGrant(publicConfig, rtA))).error, 'invalid_grant', 'public client refused too');

    const own = await client.refreshTokenGrant(configA, rtA);
    t.ok(own.access_token, "the failed attempts neither consumed nor revoked client A's token");
  });

  t.test('a refresh token is bound to its client: its client_id without the secret is refused', async (t) => {
    const seeded = await seedClient(server);
    const config = await discover(server, seeded);
    const { tokens } = await loginWithCode(server, config);

    // Same client_id, but no (or a wrong) client authentication.
    const noSecret = await discover(server, { clientId: seeded.clientId, clientSecret: undefined });
    const unauthenticated = await oauthError(client.refreshTokenGrant(noSecret, tokens.refresh_token!));
    t.equal(unauthenticated.error, 'invalid_client', 'no client authentication');
    t.equal(unauthenticated.status, 401);

    const wrongSecret = await discover(server, { clientId: seeded.clientId, clientSecret: 'x'.repeat(43) });
    const wrong = await oauthError(client.refreshTokenGrant(wrongSecret, tokens.refresh_token!));
    t.equal(wrong.error, 'invalid_client', 'wrong client secret');
    t.equal(wrong.status, 401);

    t.ok((await client.refreshTokenGrant(config, tokens.refresh_token!)).access_token, 'still works for its own, authenticated client');
  });

  t.test("another client's authorization code fails with invalid_grant", async (t) => {
    const configA = await discover(server, await seedClient(server));
    const configB = await discover(server, await seedClient(server));
    const verifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(configA, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const callback = await authorizeThroughForms(server, url, { email: 'alice@example.com', password: TEST_PASSWORD });
    const stolen = await oauthError(client.authorizationCodeGrant(configB, callback, { pkceCodeVerifier: verifier, idTokenExpected: true }));
    t.equal(stolen.error, 'invalid_grant', 'client B cannot redeem client A code');
  });
});
