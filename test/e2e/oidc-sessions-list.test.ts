/**
 * Browser SSO sessions and app grants from the OIDC flows appear in the user's list of sessions with their
 * device and IP, and revoking them from the list ends them at once.
 */
import * as client from 'openid-client';
import t from 'tap';
import { api, login, NO_RATE_LIMITS } from '../helpers/auth.js';
import { Browser, discover, loginWithCode, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

interface Item {
  id: string;
  kind: string;
  name: string | null;
  ip_address: string | null;
  is_active: boolean;
  device_info: Record<string, string>;
}

t.test('OIDC sessions and grants in the list, revocable from it', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedUser(server);
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);
  const browser = new Browser();
  const { tokens } = await loginWithCode(server, config, { browser });
  t.ok(tokens.refresh_token);

  const me = await login(server);
  const listed = async () => {
    await new Promise((r) => setTimeout(r, 50)); // mirror writes are not awaited by the provider
    return (await api<{ items: Item[] }>(server, 'GET', '/api/auth/tokens/', { token: me.access_token })).body.items;
  };
  const items = await listed();
  const session = items.find((i) => i.kind === 'oidc_session');
  const grant = items.find((i) => i.kind === 'oidc_grant');
  t.ok(session, 'the browser session is listed');
  t.ok(grant, 'the app grant is listed');
  t.equal(grant?.name, seeded.clientId, 'named after the client');
  t.equal(session?.ip_address, '127.0.0.1', 'with its IP');
  t.ok(session?.device_info.user_agent, 'and its device');

  t.equal((await api(server, 'DELETE', `/api/auth/tokens/${grant!.id}/`, { token: me.access_token })).status, 204);
  const refused = await client.refreshTokenGrant(config, tokens.refresh_token!).then(() => undefined, (err: unknown) => err as { error?: string });
  t.equal(refused?.error, 'invalid_grant', 'the app\'s refresh token is dead');

  t.equal((await api(server, 'DELETE', `/api/auth/tokens/${session!.id}/`, { token: me.access_token })).status, 204);
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const res = await browser.fetch(url);
  const location = new URL(res.headers.get('location') ?? '', server.origin);
  t.equal(location.searchParams.get('error'), 'login_required', 'the browser session has ended');
});
