/**
 * The authorization code + PKCE flow in a real headless Chromium: the login and consent pages are filled in
 * and submitted as a user would (by label and button name), cookies, redirects and CSP are the browser's.
 * The relying party's callback is intercepted in the browser, and the code exchanged with openid-client.
 *
 * Uses the system Chromium (CHROMIUM_PATH, or /usr/bin/chromium); never downloads one. Skipped when none is
 * installed.
 */
import { existsSync } from 'node:fs';
import tap from 'tap';
import * as client from 'openid-client';
import { chromium, type Page } from 'playwright-core';
import { discover, PASSWORD, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

const executablePath = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (p): p is string => typeof p === 'string' && p !== '' && existsSync(p),
);
const SKIP = executablePath ? false : 'needs a system Chromium (/usr/bin/chromium or CHROMIUM_PATH)';
const GENERIC_ERROR = 'The email or password is incorrect.';

tap.test('authorization code + PKCE in a real browser', { skip: SKIP }, async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const user = await seedUser(server);
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);

  const browser = await chromium.launch({
    executablePath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  // Teardowns run last-in first-out: the browser closes before the server.
  t.teardown(() => browser.close());

  /**
   * A fresh browser profile whose requests to the relying party (REDIRECT_URI's origin, where nothing
   * listens) are answered by the test. The callback is reached by a redirect, and Playwright's page.route
   * never sees redirect hops, so this uses the DevTools Fetch domain, which pauses every matching request
   * (before Chromium's unsafe-port check for port 9, too).
   */
  async function newPage(t: Pick<typeof tap, 'teardown'>): Promise<{ page: Page; callbacks: string[] }> {
    const context = await browser.newContext();
    t.teardown(() => context.close());
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    const callbacks: string[] = [];
    const cdp = await context.newCDPSession(page);
    cdp.on('Fetch.requestPaused', (event) => {
      if (event.request.url.startsWith(REDIRECT_URI)) callbacks.push(event.request.url);
      cdp
        .send('Fetch.fulfillRequest', {
          requestId: event.requestId,
          responseCode: 200,
          responseHeaders: [{ name: 'content-type', value: 'text/html; charset=utf-8' }],
          body: Buffer.from('<!doctype html><title>callback</title><p>signed in</p>').toString('base64'),
        })
        .catch(() => {});
    });
    await cdp.send('Fetch.enable', { patterns: [{ urlPattern: `${new URL(REDIRECT_URI).origin}/*`, requestStage: 'Request' }] });
    return { page, callbacks };
  }

  async function authorizationRequest() {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: REDIRECT_URI,
      scope: 'openid profile email',
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return { url, verifier, state, nonce };
  }

  t.test('sign in, allow, exchange the code', async (t) => {
    const { page, callbacks } = await newPage(t);
    const request = await authorizationRequest();

    const opened = await page.goto(request.url.href);
    t.equal(opened?.status(), 200, 'the login page loads');
    t.match(new URL(page.url()).pathname, /^\/interaction\/[\w-]+$/, 'the provider sent the browser to its login page');
    t.equal(await page.title(), 'Sign in · keryu-auth', 'titled Sign in');

    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();

    const allow = page.getByRole('button', { name: 'Allow', exact: true });
    await allow.waitFor();
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Allow access?', 'the consent page follows');
    await Promise.all([page.waitForURL((url) => url.href.startsWith(REDIRECT_URI)), allow.click()]);

    const callback = new URL(page.url());
    t.equal(callback.origin + callback.pathname, REDIRECT_URI, 'the browser landed on the redirect URI');
    t.same(callbacks, [callback.href], 'the callback was requested once, and answered by the test');
    t.ok(callback.searchParams.get('code'), 'with a code');
    t.equal(callback.searchParams.get('state'), request.state, 'and the state');
    t.equal(callback.searchParams.get('iss'), server.issuer, 'and the issuer (RFC 9207)');
    t.match(await page.textContent('body'), /signed in/, 'the intercepted callback page rendered');

    const tokens = await client.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: request.verifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
    });
    t.ok(tokens.access_token, 'access token');
    const claims = tokens.claims();
    t.equal(claims?.sub, user.id, 'the ID token names the user');
    t.equal(claims?.nonce, request.nonce, 'and carries the nonce');
    const info = await client.fetchUserInfo(config, tokens.access_token, user.id);
    t.equal(info.email, 'alice@example.com', 'userinfo answers for the token');

    const cookies = await page.context().cookies(server.origin);
    const session = cookies.find((c) => c.name === 'keryu.session');
    t.ok(session, 'the browser holds the provider session cookie');
    t.equal(session?.httpOnly, true, 'HttpOnly');
    t.equal(session?.sameSite, 'Lax', 'SameSite=Lax');
  });

  t.test('a wrong password shows the generic error', async (t) => {
    const { page } = await newPage(t);
    const request = await authorizationRequest();
    await page.goto(request.url.href);

    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill('not the password');
    const [response] = await Promise.all([
      page.waitForResponse((res) => res.request().method() === 'POST' && res.url().endsWith('/login')),
      page.getByRole('button', { name: 'Sign in', exact: true }).click(),
    ]);
    t.equal(response.status(), 401, 'the form answers 401');

    const alert = page.getByRole('alert');
    await alert.waitFor();
    t.equal((await alert.textContent())?.trim(), GENERIC_ERROR, 'role=alert carries the generic message');
    t.equal(await page.getByLabel('Email').inputValue(), 'alice@example.com', 'the email is kept');
    t.equal(await page.getByLabel('Password').inputValue(), '', 'the password is not echoed back');

    // An unknown account gets exactly the same message.
    await page.getByLabel('Email').fill('nobody@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Email').and(page.locator('[value="nobody@example.com"]')).waitFor();
    t.equal((await page.getByRole('alert').textContent())?.trim(), GENERIC_ERROR, 'an unknown email gets the same message');

    // And the right password still works from the error page.
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Allow', exact: true }).waitFor();
    t.pass('after a failure, the right password reaches the consent page');
  });
});
