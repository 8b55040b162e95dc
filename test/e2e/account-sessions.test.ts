/**
 * The account pages' sessions and devices, in headless Chromium with JavaScript on and off: the sessions of
 * two other devices (a first-party app login, an application signed in through a browser) and a second
 * browser on the account pages are listed with this device marked; signing one out kills its refresh token;
 * "sign out everywhere else" ends all of them (the other browser is sent to sign in, refresh tokens are dead)
 * while this page goes on working; a trusted device is forgotten. Hostile: another user's ids answer 404 and
 * change nothing; forms without the session's CSRF token are refused.
 */
import * as client from 'openid-client';
import tap from 'tap';
import type { Page } from 'playwright-core';
import { createMfaQueries } from '../../src/queries/mfa.js';
import { api, login, NO_RATE_LIMITS, type Pair } from '../helpers/auth.js';
import { accountPage, signInToAccount } from '../helpers/account.js';
import { launchChromium, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { auditLog } from '../helpers/mfa.js';
import { Browser, discover, loginWithCode, seedClient, seedUser } from '../helpers/oidc.js';
import { checkPage } from '../helpers/pages.js';
import { startServer } from '../helpers/server.js';

const FIREFOX_ON_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:120.0) Gecko/20100101 Firefox/120.0';

tap.test('account pages: sessions and devices', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const alice = await seedUser(server);
  const bob = await seedUser(server, 'bob@example.com');
  const app = await seedClient(server);
  const config = await discover(server, app);
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const mfa = createMfaQueries(server.app.keryu.database.db);
  const services = server.app.keryu.services;
  // The provider's sessions and grants are mirrored into the list a moment after they are written.
  const mirrored = () => new Promise((r) => setTimeout(r, 100));

  const refreshStatus = async (pair: Pair) => (await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token } })).status;
  // Read without using the session (a refresh would rotate its token).
  const isActive = async (userId: string, pair: Pair) => (await services.sessions.findToken(userId, pair.session_id, undefined))?.is_active;
  const appRefreshError = (refreshToken: string) => client.refreshTokenGrant(config, refreshToken).then(() => undefined, (err: unknown) => (err as { error?: string }).error);
  const entry = (page: Page, text: string | RegExp) => page.locator('ul.entries li', { hasText: text });
  const trust = (userId: string, name: string) =>
    mfa.trustDevice({ userId, deviceDigest: `digest-${name}-${Math.random()}`, deviceInfo: { device_name: name }, ipAddress: '198.51.100.23', now: new Date(), trustedUntil: new Date(Date.now() + 86_400_000) });

  for (const javaScriptEnabled of [true, false]) {
    const phone = `Work phone ${javaScriptEnabled ? 'A' : 'B'}`;
    t.test(`list, sign out one, sign out everywhere else, forget a device (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`, async (t) => {
      const page = await accountPage(browser, t, { javaScriptEnabled });
      await signInToAccount(page, server, { path: '/account/sessions' });
      // Two other devices: an app signed in through the first-party API, and an application through a browser.
      const appLogin = await login(server, { device_name: phone }, { 'user-agent': FIREFOX_ON_WINDOWS });
      const { tokens: appTokens } = await loginWithCode(server, config, { browser: new Browser() });
      // And a second browser on the account pages.
      const other = await accountPage(browser, t, { javaScriptEnabled });
      await signInToAccount(other, server);
      const device = await trust(alice.id, 'Old tablet');
      await mirrored();

      await page.goto(`${server.origin}/account/sessions`);
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sessions and devices');
      const mine = page.locator('ul.entries li.current');
      t.equal(await mine.count(), 1, 'one entry is this device');
      t.match(await mine.textContent(), /This device[\s\S]*Browser sign-in[\s\S]*Chrome[^\n]* on Linux[\s\S]*127\.0\.0\.1[\s\S]*127\.0\.0\.0\/24/, 'this browser, with its device, IP and network');
      t.match(await entry(page, phone).textContent(), /App sign-in[\s\S]*Work phone/, 'the first-party app login is listed under its device name');
      t.match(await entry(page, `Application access: ${app.clientId}`).textContent(), /Application access/, 'the application\'s access is listed');
      t.equal(await entry(page, 'Browser sign-in').filter({ hasText: 'Chrome' }).count(), 2, 'two Chromium browser sessions: this one and the other account browser');
      t.ok(await entry(page, 'Browser sign-in').filter({ hasText: 'Unknown device' }).count(), 'and the application\'s browser session (no user agent)');
      t.match(await entry(page, 'Old tablet').textContent(), /198\.51\.100\.23[\s\S]*198\.51\.100\.0\/24/, 'the trusted device is listed separately');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'sessions');

      // Sign out one: the app login. Through its confirmation page.
      await entry(page, phone).getByRole('link', { name: /^Sign out/ }).click();
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign out this session?', 'asked to confirm first');
      t.equal(await isActive(alice.id, appLogin), true, 'nothing ended before confirming');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'sessions-confirm');
      await Promise.all([page.waitForURL(`${server.origin}/account/sessions?done=signed-out`), page.getByRole('main').getByRole('button', { name: 'Sign out', exact: true }).click()]);
      t.match(await page.getByRole('status').textContent(), /signed out/);
      t.equal(await entry(page, phone).count(), 0, 'it is gone from the list');
      t.equal(await refreshStatus(appLogin), 401, 'its refresh token is dead');
      const revokedEvents = (await auditLog(server)).filter((e) => e.type === 'token.revoked' && e.subjectId === appLogin.session_id);
      t.equal(revokedEvents.length, 1, 'audited as the API\'s DELETE /api/auth/tokens/:id/');

      // Sign out everywhere else.
      const secondLogin = await login(server);
      const personal = await services.sessions.createPersonalToken({ userId: alice.id, signIn: { firstPartySessionId: secondLogin.session_id } }, { name: 'ci' });
      await page.goto(`${server.origin}/account/sessions`);
      await page.getByRole('link', { name: 'Sign out everywhere else' }).click();
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign out everywhere else?', 'asked to confirm first');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'sessions-confirm-others');
      await Promise.all([page.waitForURL(`${server.origin}/account/sessions?done=others`), page.getByRole('button', { name: 'Sign out everywhere else' }).click()]);
      t.match(await page.getByRole('status').textContent(), /everywhere else/);
      t.equal(await refreshStatus(secondLogin), 401, 'the first-party session\'s refresh token is dead');
      t.equal(await appRefreshError(appTokens.refresh_token!), 'invalid_grant', 'the application\'s refresh token is dead');
      t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: personal.token })).status, 401, 'the personal token is dead');
      await other.goto(`${server.origin}/account/`);
      t.match(new URL(other.url()).pathname, /^\/interaction\//, 'the other browser is sent to sign in');
      await page.goto(`${server.origin}/account/sessions`);
      t.equal(new URL(page.url()).pathname, '/account/sessions', 'this page still works');
      t.equal(await page.locator('ul.entries li.current').count(), 1, 'and this device is still listed');
      // The provider itself still honours this browser's SSO session: signing in again asks for nothing.
      await page.goto(`${server.origin}/account/login?return_to=/account/sessions`);
      t.equal(new URL(page.url()).pathname, '/account/sessions', 'the SSO session is alive at the provider too');
      t.equal(await entry(page, 'Browser sign-in').count(), 1, 'no other browser session is left');
      t.equal(await entry(page, 'App sign-in').count(), 0, 'no first-party session is left');
      t.equal(await entry(page, 'Personal token').count(), 0, 'no personal token is left');
      const events = await auditLog(server);
      const ended = events.filter((e) => e.type === 'session.revoked' && e.subjectId === alice.id).at(-1);
      t.match(ended?.details, { reason: 'logout_all' }, 'audited as the API\'s logout everywhere');
      t.match(events.filter((e) => e.type === 'logout').at(-1)?.details, { all_sessions: true });

      // Forget the trusted device.
      await entry(page, 'Old tablet').getByRole('link', { name: /^Forget this device/ }).click();
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Forget this device?');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'sessions-confirm-device');
      await Promise.all([page.waitForURL(`${server.origin}/account/sessions?done=forgotten`), page.getByRole('button', { name: 'Forget this device' }).click()]);
      t.equal(await entry(page, 'Old tablet').count(), 0, 'the device is gone from the list');
      t.notOk((await services.mfaDevices.list(alice.id)).some((d) => d.id === device.id), 'and is no longer trusted');
      // The next walk starts with nothing signed in.
      await services.sessions.logout({ userId: alice.id }, true);
    });
  }

  t.test('another user\'s ids answer 404 and change nothing; forms need the CSRF token', async (t) => {
    const page = await accountPage(browser, t);
    await signInToAccount(page, server, { path: '/account/sessions' });
    const bobLogin = await login(server, { email: 'bob@example.com' });
    const bobDevice = await trust(bob.id, 'Bob\'s laptop');
    const aliceLogin = await login(server);
    const csrf = await page.locator('input[name=csrf]').first().inputValue();

    for (const path of [`/account/sessions/${bobLogin.session_id}/sign-out`, `/account/sessions/devices/${bobDevice.id}/forget`, '/account/sessions/not-a-uuid/sign-out']) {
      t.equal((await page.request.get(`${server.origin}${path}`, { maxRedirects: 0 })).status(), 404, `GET ${path}: 404`);
      t.equal((await page.request.post(`${server.origin}${path}`, { form: { csrf }, maxRedirects: 0 })).status(), 404, `POST ${path}: 404`);
    }
    t.equal(await isActive(bob.id, bobLogin), true, 'Bob\'s session still works');
    t.ok((await services.mfaDevices.list(bob.id)).some((d) => d.id === bobDevice.id), 'Bob\'s device is still trusted');

    for (const path of [`/account/sessions/${aliceLogin.session_id}/sign-out`, '/account/sessions/sign-out-others']) {
      for (const form of [{}, { csrf: 'forged' }] as Array<Record<string, string>>) {
        const answer = await page.request.post(`${server.origin}${path}`, { form, maxRedirects: 0 });
        t.equal(answer.status(), 403, `POST ${path} ${'csrf' in form ? 'with a wrong' : 'without a'} CSRF token: refused`);
      }
    }
    t.equal(await isActive(alice.id, aliceLogin), true, 'nothing was signed out');
  });

  t.test('a signed-out visitor is sent to sign in', async (t) => {
    const page = await accountPage(browser, t);
    await page.goto(`${server.origin}/account/sessions`);
    t.match(new URL(page.url()).pathname, /^\/interaction\//);
  });
});
