/**
 * The account pages sign in through the provider like any application (code + PKCE, the normal login
 * pages), in headless Chromium with JavaScript on and off: no consent is asked for the built-in client, the
 * account cookie is HttpOnly and SameSite=Lax, forms need the session's CSRF token, the pages cannot be
 * framed, and signing out ends the SSO session too.
 */
import tap from 'tap';
import type { Page } from 'playwright-core';
import { launchChromium, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { checkPage } from '../helpers/pages.js';
import { seedUser } from '../helpers/oidc.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';
import { startServer } from '../helpers/server.js';

tap.test('account pages: signing in and out', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const user = await seedUser(server);
  const browser = await launchChromium();
  t.teardown(() => browser.close());

  async function newPage(t: Pick<typeof tap, 'teardown'>, javaScriptEnabled = true): Promise<Page> {
    const context = await browser.newContext({ javaScriptEnabled });
    t.teardown(() => context.close());
    context.setDefaultTimeout(10_000);
    return context.newPage();
  }

  async function signIn(page: Page, path = '/account/') {
    await page.goto(`${server.origin}${path}`);
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await Promise.all([page.waitForURL((url) => url.pathname.startsWith('/account/')), page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
  }

  for (const javaScriptEnabled of [true, false]) {
    t.test(`sign in, edit the name, sign out (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`, async (t) => {
      const page = await newPage(t, javaScriptEnabled);
      const first = await page.goto(`${server.origin}/account/`);
      t.match(new URL(page.url()).pathname, /^\/interaction\//, 'a signed-out visitor is sent to the provider\'s login page');
      t.equal(first?.status(), 200);
      await page.getByLabel('Email').fill('alice@example.com');
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await Promise.all([page.waitForURL(`${server.origin}/account/`), page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Your account', 'back on the account page, no consent asked');
      t.match(await page.textContent('main'), /alice@example\.com/, 'it shows who signed in');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'overview');

      const cookie = (await page.context().cookies(server.origin)).find((c) => c.name === 'keryu_account');
      t.ok(cookie, 'the account cookie is set');
      t.equal(cookie?.httpOnly, true, 'HttpOnly');
      t.equal(cookie?.sameSite, 'Lax', 'SameSite=Lax');

      await page.getByLabel('Name').fill(`Alice ${javaScriptEnabled ? 'On' : 'Off'}`);
      await Promise.all([page.waitForURL(`${server.origin}/account/?saved=1`), page.getByRole('button', { name: 'Save name' }).click()]);
      t.match(await page.getByRole('status').textContent(), /saved/, 'the change is confirmed');
      const stored = await server.app.keryu.services.users.findUserById(user.id);
      t.equal(stored?.name, `Alice ${javaScriptEnabled ? 'On' : 'Off'}`, 'the name is stored');

      await page.getByRole('button', { name: 'Sign out' }).click();
      // The provider asks to confirm the logout (its own page), then comes back.
      await page.getByRole('button', { name: /sign.?out|yes/i }).first().click();
      await page.waitForURL(`${server.origin}/account/signed-out`);
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'You are signed out');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'signed-out');
      await page.goto(`${server.origin}/account/`);
      t.match(new URL(page.url()).pathname, /^\/interaction\//, 'signing in again asks for the password: the SSO session ended too');
    });
  }

  t.test('forms need the session\'s CSRF token; pages are not framed or cached', async (t) => {
    const page = await newPage(t);
    await signIn(page);
    const response = await page.request.get(`${server.origin}/account/`);
    const headers = response.headers();
    t.match(headers['content-security-policy'], /frame-ancestors 'none'/, 'frame-ancestors none');
    t.notMatch(headers['content-security-policy'], /unsafe-inline/, 'no inline script or style');
    t.equal(headers['x-frame-options'], 'DENY');
    t.equal(headers['cache-control'], 'no-store');

    const before = (await server.app.keryu.services.users.findUserById(user.id))?.name;
    for (const csrf of [undefined, 'forged']) {
      const answer = await page.request.post(`${server.origin}/account/profile`, { form: csrf === undefined ? { name: 'Mallory' } : { name: 'Mallory', csrf }, maxRedirects: 0 });
      t.equal(answer.status(), 403, `a form ${csrf === undefined ? 'without' : 'with a wrong'} CSRF token is refused`);
    }
    t.equal((await server.app.keryu.services.users.findUserById(user.id))?.name, before, 'and nothing changed');
  });

  t.test('the account session ends with the SSO session', async (t) => {
    const page = await newPage(t);
    await signIn(page);
    await server.app.keryu.services.sessions.logout({ userId: user.id }, true);
    await page.goto(`${server.origin}/account/`);
    t.match(new URL(page.url()).pathname, /^\/interaction\//, 'after "sign out everywhere" the account pages ask to sign in again');
  });

  t.test('a return path outside the account pages is not followed', async (t) => {
    const page = await newPage(t);
    await signIn(page, '/account/login?return_to=//evil.example/');
    t.equal(new URL(page.url()).pathname, '/account/', 'back on the overview, not elsewhere');
  });
});
