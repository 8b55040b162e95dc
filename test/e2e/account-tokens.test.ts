/**
 * The account pages' personal tokens and applications, in headless Chromium with JavaScript on and off: a
 * token is created (its value shown once, and it works against the API), renamed, deactivated (the API then
 * refuses it) and deleted; an application granted through the code flow is listed with its scopes and its
 * access removed (its refresh token then dies). Hostile: another user's token or application answers 404
 * and changes nothing, a form without its CSRF token is refused, and creating a token after a stale sign-in
 * asks to sign in again.
 */
import tap from 'tap';
import * as client from 'openid-client';
import type { Page } from 'playwright-core';
import { accountPage, signInToAccount } from '../helpers/account.js';
import { launchChromium, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { NO_RATE_LIMITS } from '../helpers/auth.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';
import { checkPage } from '../helpers/pages.js';
import { discover, hiddenField, loginWithCode, oauthError, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer, type TestServer } from '../helpers/server.js';

tap.test('account pages: personal tokens and applications', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  let clockOffset = 0;
  const server: TestServer = await startServer({ env: NO_RATE_LIMITS, clock: () => new Date(Date.now() + clockOffset) });
  t.teardown(() => server.close());
  const alice = await seedUser(server);
  const bob = await seedUser(server, 'bob@example.com');
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const sessions = server.app.keryu.services.sessions;

  /** What the API answers a bearer token with (GET /api/auth/tokens/ takes personal tokens). */
  const apiStatus = async (token: string) => (await fetch(`${server.origin}/api/auth/tokens/`, { headers: { authorization: `Bearer ${token}` } })).status;
  const personalTokens = async (userId: string) => (await sessions.listTokens(userId, undefined, { limit: 50, kinds: ['personal'] })).items;
  const main = async (page: Page) => (await page.textContent('main')) ?? '';

  for (const javaScriptEnabled of [true, false]) {
    const js = javaScriptEnabled ? 'on' : 'off';

    t.test(`create, use, rename, deactivate and delete a personal token (JavaScript ${js})`, async (t) => {
      const page = await accountPage(browser, t, { javaScriptEnabled });
      await signInToAccount(page, server, { path: '/account/tokens' });
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Personal tokens');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'tokens-empty');

      await page.getByRole('link', { name: 'Create a token' }).click();
      t.equal(new URL(page.url()).pathname, '/account/tokens/new', 'a recent sign-in goes straight to the form');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'token-new');
      await page.getByLabel('Name').fill(`deploy ${js}`);
      await page.getByLabel('Expires after').selectOption({ label: '30 days' });
      await page.getByLabel(/Read the audit log/).check();
      const [answer] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/account/tokens'), page.getByRole('button', { name: 'Create token' }).click()]);
      await page.waitForLoadState();
      t.equal(answer.status(), 201, 'the POST itself answers with the new token (no redirect to a page that could show it again)');
      t.equal(answer.headers()['cache-control'], 'no-store', 'and is not cached');
      const value = await page.getByLabel('Token value').inputValue();
      t.match(value, /^kpat_/, 'the value is shown');
      t.match(await main(page), /shown only this once/, 'with the hint to copy it now');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'token-created');

      const [stored] = await personalTokens(alice.id);
      t.equal(stored?.name, `deploy ${js}`);
      t.same(stored?.scopes, ['auth.audit.read'], 'the scope chosen');
      const lifetime = new Date(stored!.expires_at!).getTime() - new Date(stored!.created_at).getTime();
      t.equal(Math.round(lifetime / 86_400_000), 30, 'the lifetime chosen');
      t.equal(await apiStatus(value), 200, 'the token works against the API');

      await page.getByRole('link', { name: 'Done' }).click();
      t.match(await main(page), new RegExp(`deploy ${js}`), 'the list shows it');
      t.notMatch(await main(page), /kpat_/, 'the list never shows the value');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'tokens');

      await page.getByRole('link', { name: `deploy ${js}` }).click();
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'token');
      await page.getByLabel('New name').fill(`ci ${js}`);
      await page.getByRole('button', { name: 'Rename' }).click();
      await page.waitForURL(`${server.origin}/account/tokens?done=renamed`);
      t.match(await page.getByRole('status').textContent(), /renamed/);
      t.equal((await personalTokens(alice.id))[0]?.name, `ci ${js}`, 'renamed');

      await page.getByRole('link', { name: `ci ${js}` }).click();
      await page.getByRole('link', { name: 'Deactivate' }).click();
      t.match(await page.getByRole('heading', { level: 1 }).textContent(), /Deactivate the token/, 'a confirmation page first');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'token-deactivate');
      t.equal(await apiStatus(value), 200, 'still working before the confirmation');
      await page.getByRole('button', { name: 'Deactivate token' }).click();
      await page.waitForURL(`${server.origin}/account/tokens?done=deactivated`);
      t.equal(await apiStatus(value), 401, 'the API refuses a deactivated token');
      t.equal((await personalTokens(alice.id))[0]?.is_active, false);
      t.match(await main(page), /Deactivated/, 'the list says so');

      await page.getByRole('link', { name: `ci ${js}` }).click();
      await page.getByRole('link', { name: 'Delete' }).click();
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'token-delete');
      await page.getByRole('button', { name: 'Delete token' }).click();
      await page.waitForURL(`${server.origin}/account/tokens?done=deleted`);
      t.same(await personalTokens(alice.id), [], 'deleted');
      t.notMatch(await main(page), new RegExp(`ci ${js}`), 'and gone from the list');
    });

    t.test(`an application granted through the code flow is listed, and removing its access kills its refresh token (JavaScript ${js})`, async (t) => {
      const seeded = await seedClient(server, { client_name: `Notes ${js}` });
      const config = await discover(server, seeded);
      const { tokens } = await loginWithCode(server, config);
      t.ok(tokens.refresh_token, 'the app holds a refresh token');

      const page = await accountPage(browser, t, { javaScriptEnabled });
      await signInToAccount(page, server, { path: '/account/applications' });
      const text = await main(page);
      t.match(text, new RegExp(`Notes ${js}`), 'the application is listed by its name');
      t.match(text, /See your email address/, 'with the scopes granted in plain words');
      t.match(text, /offline_access/, 'and their names');
      t.notMatch(text, /Your account|keryu-account/, 'the account pages\' own client is not an application');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'applications');

      await page.getByRole('link', { name: `Remove access of Notes ${js}` }).click();
      t.match(await page.getByRole('heading', { level: 1 }).textContent(), new RegExp(`Remove access of Notes ${js}`), 'a confirmation page first');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'application-remove');
      await page.getByRole('button', { name: 'Remove access' }).click();
      await page.waitForURL(`${server.origin}/account/applications?removed=1`);
      t.notMatch(await main(page), new RegExp(`Notes ${js}`), 'no longer listed');
      const refused = await oauthError(client.refreshTokenGrant(config, tokens.refresh_token!));
      t.equal(refused.error, 'invalid_grant', 'the app\'s refresh token is refused');
    });
  }

  t.test('hostile: another user\'s token or application answers 404 and changes nothing; forms need the CSRF token', async (t) => {
    const bobToken = await sessions.createPersonalToken({ userId: bob.id, signIn: { providerSignIn: { at: new Date(), amr: ['pwd'] } } }, { name: 'bob cli' });
    const bobApp = await seedClient(server, { client_name: 'Bob app' });
    const bobConfig = await discover(server, bobApp);
    const bobLogin = await loginWithCode(server, bobConfig, { email: 'bob@example.com' });

    const page = await accountPage(browser, t);
    await signInToAccount(page, server, { path: '/account/tokens' });
    const csrf = hiddenField(await page.content(), 'csrf');
    const post = (path: string, form: Record<string, string>) => page.request.post(`${server.origin}${path}`, { form, maxRedirects: 0 });

    t.equal((await page.request.get(`${server.origin}/account/tokens/${bobToken.id}`)).status(), 404, 'another user\'s token page: 404');
    t.equal((await page.request.get(`${server.origin}/account/tokens/${bobToken.id}/delete`)).status(), 404, 'its confirmation page: 404');
    t.equal((await post(`/account/tokens/${bobToken.id}/rename`, { csrf, name: 'mine now' })).status(), 404, 'renaming it: 404');
    t.equal((await post(`/account/tokens/${bobToken.id}/deactivate`, { csrf })).status(), 404, 'deactivating it: 404');
    t.equal((await post(`/account/tokens/${bobToken.id}/delete`, { csrf })).status(), 404, 'deleting it: 404');
    t.equal((await post('/account/tokens/not-a-uuid/delete', { csrf })).status(), 404, 'an id that is no id: 404');
    const [stillBob] = await personalTokens(bob.id);
    t.equal(stillBob?.name, 'bob cli', 'bob\'s token keeps its name');
    t.equal(await apiStatus(bobToken.token), 200, 'and still works');

    t.equal((await page.request.get(`${server.origin}/account/applications/remove?client=${bobApp.clientId}`)).status(), 404, 'another user\'s application: 404');
    t.equal((await post('/account/applications/remove', { csrf, client: bobApp.clientId })).status(), 404, 'removing it: 404');
    t.equal((await post('/account/applications/remove', { csrf, client: 'keryu-account' })).status(), 404, 'the account pages\' own client cannot be removed here');
    const bobRefresh = await client.refreshTokenGrant(bobConfig, bobLogin.tokens.refresh_token!);
    t.ok(bobRefresh.access_token, 'bob\'s app keeps its access');

    // Alice's own token and app, attacked with forged forms.
    const own = await sessions.createPersonalToken({ userId: alice.id, signIn: { providerSignIn: { at: new Date(), amr: ['pwd'] } } }, { name: 'alice own' });
    const aliceApp = await seedClient(server, { client_name: 'Alice app' });
    const aliceConfig = await discover(server, aliceApp);
    const aliceLogin = await loginWithCode(server, aliceConfig);
    for (const forged of [undefined, 'forged']) {
      const field: Record<string, string> = forged === undefined ? {} : { csrf: forged };
      const label = forged === undefined ? 'without' : 'with a wrong';
      t.equal((await post('/account/tokens', { ...field, name: 'sneaky', expires_in_days: '30' })).status(), 403, `creating ${label} CSRF token: 403`);
      t.equal((await post(`/account/tokens/${own.id}/rename`, { ...field, name: 'sneaky' })).status(), 403, `renaming ${label} CSRF token: 403`);
      t.equal((await post(`/account/tokens/${own.id}/deactivate`, field)).status(), 403, `deactivating ${label} CSRF token: 403`);
      t.equal((await post(`/account/tokens/${own.id}/delete`, field)).status(), 403, `deleting ${label} CSRF token: 403`);
      t.equal((await post('/account/applications/remove', { ...field, client: aliceApp.clientId })).status(), 403, `removing an app ${label} CSRF token: 403`);
    }
    const grantRow = (await sessions.listTokens(alice.id, undefined, { limit: 50, kinds: ['oidc_grant'] })).items.find((row) => row.is_active);
    t.ok(grantRow, 'alice has an app grant in her token list');
    t.equal((await page.request.get(`${server.origin}/account/tokens/${grantRow!.id}/deactivate`)).status(), 404, 'an app grant is not a personal token: 404 on the tokens pages');
    t.equal((await post(`/account/tokens/${grantRow!.id}/delete`, { csrf })).status(), 404, 'and deleting it there: 404');
    const aliceTokens = await personalTokens(alice.id);
    t.same(aliceTokens.map((tk) => [tk.name, tk.is_active]), [['alice own', true]], 'no token created, renamed, deactivated or deleted');
    t.ok((await client.refreshTokenGrant(aliceConfig, aliceLogin.tokens.refresh_token!)).access_token, 'the app keeps its access');
    await sessions.deleteToken(alice.id, own.id);
  });

  t.test('creating a token after a stale sign-in asks to sign in again', async (t) => {
    const page = await accountPage(browser, t, { javaScriptEnabled: false });
    await signInToAccount(page, server, { path: '/account/tokens' });
    const csrf = hiddenField(await page.content(), 'csrf');
    clockOffset = 10 * 60 * 1000;
    t.teardown(() => {
      clockOffset = 0;
    });

    const form = await page.request.get(`${server.origin}/account/tokens/new`, { maxRedirects: 0 });
    t.equal(form.status(), 303, 'the form is not shown');
    t.match(form.headers().location, /^\/account\/login\?.*reauth=1/, 'the browser is sent to sign in again');
    const created = await page.request.post(`${server.origin}/account/tokens`, { form: { csrf, name: 'late', expires_in_days: '30' }, maxRedirects: 0, headers: { referer: `${server.origin}/account/tokens/new` } });
    t.equal(created.status(), 303, 'a POST of the form is not honoured either');
    t.match(created.headers().location, /reauth=1/, 'and asks to sign in again');
    t.same(await personalTokens(alice.id), [], 'no token was created');

    // Through the browser: the link leads to the login page (max_age re-authentication), then back to the form.
    await page.goto(`${server.origin}/account/tokens/new`);
    t.match(new URL(page.url()).pathname, /^\/interaction\//, 'the login page asks for the password again');
    clockOffset = 0;
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await Promise.all([page.waitForURL(`${server.origin}/account/tokens/new`), page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Create a personal token', 'and then comes back to the form');
  });
});
