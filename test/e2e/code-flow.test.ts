import t from 'tap';
import * as client from 'openid-client';
import { discover, loginWithCode, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

t.test('authorization code + PKCE through the login form, userinfo, refresh rotation', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const user = await seedUser(server);
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);

  const { tokens, callback } = await loginWithCode(server, config);
  t.equal(callback.searchParams.get('iss'), server.issuer, 'authorization response carries iss (RFC 9207)');
  t.ok(tokens.access_token, 'access token');
  t.ok(tokens.refresh_token, 'refresh token');
  const claims = tokens.claims();
  t.equal(claims?.sub, user.id);
  t.equal(claims?.email, undefined, 'scope claims go to userinfo, not the ID token (conformIdTokenClaims)');

  const info = await client.fetchUserInfo(config, tokens.access_token, user.id);
  t.equal(info.email, 'alice@example.com');

  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
  t.not(refreshed.refresh_token, tokens.refresh_token, 'refresh token rotated');
});
