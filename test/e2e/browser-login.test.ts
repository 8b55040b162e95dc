/**
 * The authorization code + PKCE flow in a real headless Chromium: the login and consent pages are filled in
 * and submitted as a user would (by label and button name), cookies, redirects and CSP are the browser's.
 * The relying party's callback is intercepted in the browser, and the code exchanged with openid-client.
 *
 * Uses the system Chromium (CHROMIUM_PATH, or /usr/bin/chromium); never downloads one. Skipped when none is
 * installed.
 */
import tap from 'tap';
import * as client from 'openid-client';
import { launchChromium, relyingPartyPage, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { authorizationRequest as newAuthorizationRequest, discover, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const GENERIC_ERROR = 'The email or password is incorrect.';

tap.test('authorization code + PKCE in a real browser', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const user = await seedUser(server);
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);

  const browser = await launchChromium();
  // Teardowns run last-in first-out: the browser closes before the server.
  t.teardown(() => browser.close());
  const newPage = (t: Pick<typeof tap, 'teardown'>) => relyingPartyPage(browser, t);
  const authorizationRequest = () => newAuthorizationRequest(config);

  t.test('sign in, allow, exchange the code', async (t) => {
    const { page, callbacks } = await newPage(t);
    const request = await authorizationRequest();

    const opened = await page.goto(request.url.href);
    t.equal(opened?.status(), 200, 'the login page loads');
    t.match(new URL(page.url()).pathname, /^\/interaction\/[\w-]+$/, 'the provider sent the browser to its login page');
    t.equal(await page.title(), 'Sign in · keryu-auth', 'titled Sign in');

    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
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
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Email').and(page.locator('[value="nobody@example.com"]')).waitFor();
    t.equal((await page.getByRole('alert').textContent())?.trim(), GENERIC_ERROR, 'an unknown email gets the same message');

    // And the right password still works from the error page.
    await page.getByLabel('Email').fill('alice@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Allow', exact: true }).waitFor();
    t.pass('after a failure, the right password reaches the consent page');
  });
});
