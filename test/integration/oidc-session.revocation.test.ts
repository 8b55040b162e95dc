/**
 * A browser (provider) session stays ended once every session of its user was ended, even when a request that
 * loaded it before the revocation writes it back afterwards (the race is replayed deterministically through the
 * adapter: load, revoke, upsert). An account that must reset its password, or a disabled one, holds no session.
 */
import { and, eq } from 'drizzle-orm';
import * as client from 'openid-client';
import t from 'tap';
import { oidcPayloads, users } from '../../src/db/schema/index.js';
import { NO_RATE_LIMITS } from '../helpers/auth.js';
import { Browser, discover, loginWithCode, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer, type TestServer } from '../helpers/server.js';

/** A prompt=none authorization in the browser: 'ok' when its SSO session signs it in, else the error. */
async function silentAuthorization(server: TestServer, config: client.Configuration, browser: Browser): Promise<string> {
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    prompt: 'none',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const res = await browser.fetch(url);
  const location = new URL(res.headers.get('location') ?? '', server.origin);
  return location.searchParams.get('error') ?? (location.searchParams.get('code') ? 'ok' : `status ${res.status}`);
}

t.test('a revoked browser session written back by an in-flight request stays ended', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const user = await seedUser(server);
  const config = await discover(server, await seedClient(server));
  const browser = new Browser();
  await loginWithCode(server, config, { browser });
  t.equal(await silentAuthorization(server, config, browser), 'ok', 'the SSO session signs in silently');

  const db = server.db.database.db;
  const [row] = await db.select({ id: oidcPayloads.id }).from(oidcPayloads).where(and(eq(oidcPayloads.model, 'Session'), eq(oidcPayloads.accountId, user.id)));
  t.ok(row, 'the session is stored');
  const adapter = server.app.keryu.host.provider.Session.adapter;
  // A request loads the session (it signed in a while ago) ...
  const loaded = await adapter.find(row!.id);
  t.ok(loaded, 'loaded before the revocation');
  const inFlight = { ...loaded!, loginTs: Number(loaded!.loginTs) - 5 };

  // ... every session of the user is ended meanwhile ...
  await server.app.keryu.services.sessions.endAllSignIns(user.id, { reason: 'logout_all' });
  t.equal(await adapter.find(row!.id), undefined, 'the session is gone');

  // ... and the request saves the session it holds, after the delete.
  await adapter.upsert(row!.id, inFlight, 3600);
  t.equal(await adapter.find(row!.id), undefined, 'the written-back session is not returned');
  t.equal(await silentAuthorization(server, config, browser), 'login_required', 'the browser is not signed in');

  const again = new Browser();
  await loginWithCode(server, config, { browser: again });
  t.equal(await silentAuthorization(server, config, again), 'ok', 'a sign-in after the revocation works');
});

t.test('an account that must reset its password, or is disabled, holds no session or token', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const db = server.db.database.db;
  for (const [flag, change] of [
    ['password_reset_required', { passwordResetRequired: true }],
    ['disabled', { disabled: true }],
  ] as const) {
    const user = await seedUser(server, `${flag}@example.com`);
    const config = await discover(server, await seedClient(server));
    const browser = new Browser();
    const { tokens } = await loginWithCode(server, config, { browser, email: `${flag}@example.com` });
    t.equal(await silentAuthorization(server, config, browser), 'ok', `${flag}: signed in before`);

    // Set directly, without ending any session: the account check alone must refuse.
    await db.update(users).set(change).where(eq(users.id, user.id));
    const silent = await silentAuthorization(server, config, browser);
    t.equal(silent, 'login_required', `${flag}: the SSO session no longer signs in (${silent})`);
    const refresh = await client.refreshTokenGrant(config, tokens.refresh_token!).then(
      () => 'ok',
      (err: unknown) => (err as { error?: string }).error,
    );
    t.equal(refresh, 'invalid_grant', `${flag}: the refresh token is refused`);
  }
});
