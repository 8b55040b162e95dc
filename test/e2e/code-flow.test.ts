import t from 'tap';
import * as client from 'openid-client';
import { auditEvents } from '../../src/db/schema/index.js';
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

  await server.app.keryu.services.audit.flush();
  const events = await server.app.keryu.database.db.select().from(auditEvents);
  const seen = (type: string, outcome = 'success') => events.some((e) => e.type === type && e.outcome === outcome);
  t.ok(seen('user.created'), 'user creation audited');
  t.ok(seen('client.created'), 'client registration audited');
  t.ok(seen('keys.generated'), 'key generation audited');
  t.ok(seen('oidc.interaction_started'), 'interaction start audited');
  const login = events.find((e) => e.type === 'login' && e.outcome === 'success');
  t.equal(login?.subjectId, user.id, 'login audited with its subject');
  t.equal(login?.ip, '127.0.0.1', 'and the client IP');
  t.ok(login?.requestId, 'and the request id');
  t.ok(seen('consent'), 'consent audited');
  t.ok(seen('oidc.authorization'), 'authorization success audited');
  t.equal(events.filter((e) => e.type === 'oidc.grant' && e.outcome === 'success').length, 2, 'code exchange and refresh audited');
  t.notOk(JSON.stringify(events).includes(tokens.refresh_token!), 'no token value in the audit log');
});
