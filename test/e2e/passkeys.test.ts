/**
 * Passkeys in a real headless Chromium with the DevTools Protocol's virtual authenticator (a CTAP2 platform
 * authenticator with discoverable credentials and user verification): adding one from the account pages,
 * a passwordless sign-in, the passkey as the second factor after the password, a second device's passkey,
 * enrolment of one at sign-in when MFA is required, and removal; each authorization completed by
 * openid-client with `amr` read from the ID token (RFC 8176). Hostile: user verification failing, a forged
 * UV flag and a forged signature, and an assertion made on another origin (a phishing page) relayed to us.
 * Without JavaScript the passkey parts stay hidden and the password works as before.
 *
 * The issuer is http://localhost:<port>: WebAuthn needs a secure context (browsers treat localhost as one)
 * and a domain as RP id (an IP address cannot be one).
 */
import tap from 'tap';
import * as client from 'openid-client';
import type { Browser, Page } from 'playwright-core';
import { buildApp } from '../../src/app.js';
import { signInToAccount } from '../helpers/account.js';
import { manualClock, NO_RATE_LIMITS } from '../helpers/auth.js';
import { launchChromium, relyingPartyPage, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { createTestDatabase } from '../helpers/db.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';
import { authorizationRequest, discover, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { codeIn, mailbox } from '../helpers/mfa.js';
import { checkPage } from '../helpers/pages.js';
import { startSmtpServer } from '../helpers/smtp.js';
import { freePort } from '../helpers/ports.js';
import { operator } from '../helpers/rbac.js';
import { testConfig, type TestServer } from '../helpers/server.js';
import { addVirtualAuthenticator, type VirtualAuthenticator } from '../helpers/virtual-authenticator.js';

/** The test server, with its issuer on localhost (the helper's is on 127.0.0.1, which cannot be an RP id). */
async function startLocalhostServer(t: Pick<typeof tap, 'teardown'>, clock: () => Date, env: Record<string, string> = {}): Promise<TestServer> {
  const db = await createTestDatabase();
  const port = await freePort();
  const config = testConfig(port, { ...NO_RATE_LIMITS, ISSUER: `http://localhost:${port}/oidc`, ...env });
  const app = await buildApp(config, { database: db.database, logger: false, clock });
  await app.listen({ port, host: '127.0.0.1' });
  const server: TestServer = {
    app,
    config,
    db,
    origin: `http://localhost:${port}`,
    issuer: config.issuer,
    async close() {
      await app.close();
      await db.drop();
    },
  };
  t.teardown(() => server.close());
  return server;
}

tap.test('passkeys in a real browser', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const clock = manualClock();
  const smtp = await startSmtpServer();
  t.teardown(() => smtp.close());
  const server = await startLocalhostServer(t, clock, { SMTP_URL: smtp.url });
  const { factors, rbac } = server.app.keryu.services;
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);
  const browser: Browser = await launchChromium();
  t.teardown(() => browser.close());

  /**
   * A device: a fresh browser profile with its own platform authenticator. Chromium's virtual authenticator
   * answers a conditional (autofill) request at once, as if the person picked the passkey from the email
   * field's suggestions: so, except in the autofill test, the device is a browser without conditional
   * mediation, and the passkey is used through the buttons.
   */
  async function device(t: Pick<typeof tap, 'teardown'>, options: { javaScriptEnabled?: boolean; autofill?: boolean } = {}) {
    const { page, callbacks } = await relyingPartyPage(browser, t, { javaScriptEnabled: options.javaScriptEnabled });
    if (!options.autofill) await page.context().addInitScript('if (window.PublicKeyCredential) PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false);');
    const authenticator = options.javaScriptEnabled === false ? undefined : await addVirtualAuthenticator(page);
    return { page, callbacks, authenticator: authenticator as VirtualAuthenticator };
  }

  const heading = async (page: Page) => (await page.getByRole('heading', { level: 1 }).textContent())?.trim();
  const passkeyError = (page: Page) => page.locator('[data-passkey-error]');

  /** Adds a passkey named `name` from the account pages (the device is signed in to them). */
  async function addPasskey(page: Page, name: string) {
    await page.goto(`${server.origin}/account/security/passkeys/add`);
    await page.getByLabel('Name').fill(name);
    await Promise.all([page.waitForURL(`${server.origin}/account/security?done=passkey`), page.getByRole('button', { name: 'Create a passkey' }).click()]);
  }

  /** Opens an authorization request that shows the login page even when the browser has a session. */
  async function openLogin(page: Page) {
    const request = await authorizationRequest(config, { scope: 'openid email', prompt: 'login' });
    await page.goto(request.url.href);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    return request;
  }

  /** Allows access on the consent page (when asked), lands on the callback, exchanges the code: the ID token's amr. */
  async function finish(page: Page, request: { verifier: string; state: string; nonce: string }) {
    await page.waitForURL((u) => u.href.startsWith(REDIRECT_URI) || u.pathname.startsWith('/interaction/'));
    if (!page.url().startsWith(REDIRECT_URI)) {
      const allow = page.getByRole('button', { name: 'Allow', exact: true });
      await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)), allow.click()]);
    }
    const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
    const claims = tokens.claims()!;
    return { amr: (claims.amr as string[] | undefined) ?? [], sub: claims.sub };
  }

  /** Clicks "Sign in with a passkey"; answers the status of the form POST the ceremony led to. */
  async function passkeyButton(page: Page, name = 'Sign in with a passkey') {
    const [response] = await Promise.all([
      page.waitForResponse((res) => res.request().method() === 'POST' && /\/interaction\/[^/]+\/passkey$/.test(new URL(res.url()).pathname)),
      page.getByRole('button', { name, exact: true }).click(),
    ]);
    await page.waitForLoadState();
    return response.status();
  }

  /** A user signed in to the account pages on a new device, with a passkey added there. */
  async function userWithPasskey(t: Pick<typeof tap, 'teardown'>, email: string, name = 'Laptop', options: { autofill?: boolean } = {}) {
    const user = await seedUser(server, email);
    const a = await device(t, options);
    await signInToAccount(a.page, server, { email, path: '/account/security' });
    await addPasskey(a.page, name);
    return { user, ...a };
  }

  t.test('add a passkey from the account pages, then sign in without a password', async (t) => {
    const user = await seedUser(server, 'pia@example.com');
    const { page, authenticator } = await device(t);
    await signInToAccount(page, server, { email: 'pia@example.com', path: '/account/security' });
    t.match(await page.textContent('main'), 'You have no passkey yet.');

    await page.getByRole('link', { name: 'Add a passkey' }).click();
    t.equal(await heading(page), 'Add a passkey');
    t.ok(await page.getByRole('button', { name: 'Create a passkey' }).isVisible(), 'the script shows the passkey form where WebAuthn works');
    t.notOk(await page.locator('[data-passkey-unavailable]').isVisible(), 'and hides the words for browsers without it');
    await checkPage(t, page, 'passkeys', 'account-passkey-add');
    await page.getByLabel('Name').fill('Work laptop');
    await Promise.all([page.waitForURL(`${server.origin}/account/security?done=passkey`), page.getByRole('button', { name: 'Create a passkey' }).click()]);

    const stored = await authenticator.credentials();
    t.equal(stored.length, 1, 'the authenticator holds one credential');
    t.ok(stored[0]!.isResidentCredential, 'a discoverable one (a passkey)');
    t.match(await page.getByRole('status').textContent(), /passkey was added/i);
    const list = page.getByRole('region', { name: 'Passkeys' });
    t.match(await list.textContent(), /Work laptop[\s\S]*not used yet/, 'the list shows its name, and that it was not used yet');
    t.ok((await factors.listActive(user.id)).some((f) => f.type === 'webauthn'), 'it is a factor of the account');
    await checkPage(t, page, 'passkeys', 'account-security-with-passkey');

    const request = await openLogin(page);
    t.equal(await page.getByLabel('Email').getAttribute('autocomplete'), 'username webauthn', 'the email field offers passkeys in autofill');
    t.ok(await page.getByRole('button', { name: 'Sign in with a passkey' }).isVisible(), 'the login page offers a passkey');
    await checkPage(t, page, 'passkeys', 'login');
    t.equal(await passkeyButton(page), 303, 'the assertion is accepted');
    const { amr, sub } = await finish(page, request);
    t.equal(sub, user.id, 'signed in as the passkey owner, no email typed');
    t.ok(amr.includes('hwk') || amr.includes('swk'), `amr says a key proved it (${amr.join(' ')})`);
    t.ok(amr.includes('user'), 'and that the user was verified');
    t.notOk(amr.includes('pwd'), 'no password');

    await page.goto(`${server.origin}/account/security`);
    t.notMatch(await page.getByRole('region', { name: 'Passkeys' }).textContent(), /not used yet/, 'the list now shows when it was last used');
  });

  t.test('autofill: the passkey offered in the email field signs in', async (t) => {
    const { user, page } = await userWithPasskey(t, 'autofill@example.com', 'Laptop', { autofill: true });
    const request = await authorizationRequest(config, { scope: 'openid email', prompt: 'login' });
    // The script starts a conditional request on the login page; the virtual authenticator answers it as a
    // person picking the suggestion would, and the page posts it without any button pressed.
    const [posted] = await Promise.all([
      page.waitForResponse((res) => res.request().method() === 'POST' && /\/interaction\/[^/]+\/passkey$/.test(new URL(res.url()).pathname)),
      page.goto(request.url.href),
    ]);
    t.equal(posted.status(), 303, 'the autofilled assertion is accepted');
    const { amr, sub } = await finish(page, request);
    t.equal(sub, user.id);
    t.ok(amr.includes('user'), `amr: ${amr.join(' ')}`);
  });

  t.test('password, then the passkey as the second factor', async (t) => {
    const { page } = await userWithPasskey(t, 'second@example.com');
    const request = await openLogin(page);
    await page.getByLabel('Email').fill('second@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Use your passkey' }).waitFor();
    t.equal(await heading(page), 'Two-step verification', 'the step after the password');
    await checkPage(t, page, 'passkeys', 'mfa-passkey');
    t.equal(await passkeyButton(page, 'Use your passkey'), 303, 'the passkey passes the step');
    const { amr } = await finish(page, request);
    for (const value of ['pwd', 'mfa', 'user']) t.ok(amr.includes(value), `amr has ${value} (${amr.join(' ')})`);
    t.ok(amr.includes('hwk') || amr.includes('swk'), 'and the key');
  });

  t.test("a second device's passkey", async (t) => {
    await seedUser(server, 'two@example.com');
    // The second device signs in before the account has a factor (afterwards it would need one it lacks).
    const phone = await device(t);
    await signInToAccount(phone.page, server, { email: 'two@example.com', path: '/account/security' });
    const laptop = await device(t);
    await signInToAccount(laptop.page, server, { email: 'two@example.com', path: '/account/security' });
    await addPasskey(laptop.page, 'Laptop');
    await addPasskey(phone.page, 'Phone');
    const list = await phone.page.getByRole('region', { name: 'Passkeys' }).textContent();
    t.match(list, /Laptop/, 'both are listed');
    t.match(list, /Phone/);
    t.not((await phone.authenticator.credentials())[0]!.credentialId, (await laptop.authenticator.credentials())[0]!.credentialId, 'two credentials');

    for (const [label, d] of [['phone', phone], ['laptop', laptop]] as const) {
      const request = await openLogin(d.page);
      t.equal(await passkeyButton(d.page), 303, `the ${label} signs in with its own passkey`);
      t.ok((await finish(d.page, request)).amr.includes('user'));
    }
  });

  t.test('rename, then remove a passkey: it no longer signs in', async (t) => {
    const { user, page } = await userWithPasskey(t, 'remove@example.com', 'Old name');
    await page.getByRole('link', { name: 'Rename passkey Old name' }).click();
    await checkPage(t, page, 'passkeys', 'account-passkey-rename');
    await page.getByLabel('Name').fill('Desk key');
    await Promise.all([page.waitForURL(/done=passkey_renamed/), page.getByRole('button', { name: 'Save' }).click()]);
    t.match(await page.getByRole('region', { name: 'Passkeys' }).textContent(), /Desk key/, 'renamed');

    await page.getByRole('link', { name: 'Remove passkey Desk key' }).click();
    t.equal(await heading(page), 'Remove a passkey?', 'removal asks to confirm first');
    await checkPage(t, page, 'passkeys', 'account-passkey-remove');
    await Promise.all([page.waitForURL(/done=passkey_removed/), page.getByRole('button', { name: 'Remove it' }).click()]);
    t.match(await page.textContent('main'), 'You have no passkey yet.');
    t.notOk((await factors.listActive(user.id)).some((f) => f.type === 'webauthn'), 'the factor is gone');

    await openLogin(page);
    t.equal(await passkeyButton(page), 401, "the removed passkey's assertion is refused");
    t.match(await page.getByRole('alert').first().textContent(), /could not sign you in/);
  });

  t.test('enrolment at sign-in when MFA is required: a passkey', async (t) => {
    const user = await seedUser(server, 'enrol@example.com');
    const role = (await rbac.findRole('needs-mfa')) ?? (await rbac.createRole({ name: 'needs-mfa', description: 'MFA required', level: 0, mfaRequired: true }, operator));
    await rbac.assignRole(user.id, { role: role.name }, operator);
    const { page } = await device(t);
    const inbox = mailbox(smtp, 'enrol@example.com');
    const request = await openLogin(page);
    await page.getByLabel('Email').fill('enrol@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    // Enrolment follows a code to the account's address (a stolen password alone cannot enrol a factor).
    await page.getByLabel('Code', { exact: true }).fill(codeIn(await inbox.next()));
    await page.getByRole('button', { name: 'Verify', exact: true }).click();
    await page.getByRole('button', { name: 'Use a passkey' }).waitFor();
    await checkPage(t, page, 'passkeys', 'mfa-enroll');
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
    await page.getByRole('link', { name: 'I saved them, continue' }).click();
    const { amr } = await finish(page, request);
    t.ok(amr.includes('pwd'), `amr: ${amr.join(' ')}`);
    t.ok((await factors.listActive(user.id)).some((f) => f.type === 'webauthn'), 'the passkey is the enrolled factor');
  });

  t.test('hostile: user verification missing, a forged UV flag, a forged signature', async (t) => {
    const { page, authenticator, callbacks } = await userWithPasskey(t, 'hostile@example.com');

    await authenticator.setUserVerified(false);
    await openLogin(page);
    await page.getByRole('button', { name: 'Sign in with a passkey' }).click();
    await passkeyError(page).waitFor();
    t.match(await passkeyError(page).textContent(), /passkey was not used/, 'user verification failing: the browser refuses, the page says so');
    t.equal(await heading(page), 'Sign in', 'still on the login page');
    await authenticator.setUserVerified(true);

    await authenticator.overrideResponseBits({ isBadUV: true });
    await openLogin(page);
    t.equal(await passkeyButton(page), 401, 'a UV flag forged after signing: refused by the server');
    await authenticator.overrideResponseBits({ isBogusSignature: true });
    await openLogin(page);
    t.equal(await passkeyButton(page), 401, 'a forged signature: refused');
    t.match(await page.getByRole('alert').first().textContent(), /could not sign you in/);
    await authenticator.overrideResponseBits({});
    t.same(callbacks, [], 'no sign-in reached the application');
  });

  t.test('hostile: an assertion made on another origin (a phishing page) is refused', async (t) => {
    const { page, callbacks } = await userWithPasskey(t, 'phished@example.com');
    await openLogin(page);
    const uid = new URL(page.url()).pathname.split('/').pop()!;
    const csrf = await page.locator('input[name=csrf]').first().inputValue();
    // The phishing page relays our options (same RP id: ports do not count) and posts back what it got.
    const options = await (await page.request.post(`${server.origin}/interaction/${uid}/passkey/options`, { data: { csrf } })).json();
    const phishing = `http://localhost:${await freePort()}/`;
    await page.route(phishing, (route) => route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>Sign in</title><p>phish</p>' }));
    await page.goto(phishing);
    // In the page (a browser function as text: the test's TypeScript has no DOM types).
    const response = await page.evaluate(`(async (o) => {
      const b64 = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
      const out = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
      const cred = await navigator.credentials.get({ publicKey: { challenge: b64(o.challenge), rpId: o.rpId, userVerification: 'required' } });
      const r = cred.response;
      return {
        id: cred.id,
        rawId: out(cred.rawId),
        type: 'public-key',
        clientExtensionResults: {},
        response: { clientDataJSON: out(r.clientDataJSON), authenticatorData: out(r.authenticatorData), signature: out(r.signature), userHandle: r.userHandle ? out(r.userHandle) : undefined },
      };
    })(${JSON.stringify(options)})`);
    const relayed = await page.request.post(`${server.origin}/interaction/${uid}/passkey`, { form: { csrf, response: JSON.stringify(response) }, maxRedirects: 0 });
    t.equal(relayed.status(), 401, "an assertion whose clientData names another origin is refused");
    t.same(callbacks, [], 'nothing reached the application');
  });

  t.test("hostile: another user's passkey, forms without their CSRF token, a stale sign-in", async (t) => {
    const { passkeys } = server.app.keryu.services;
    const owner = await userWithPasskey(t, 'owner@example.com', 'Mine');
    const [mine] = await passkeys.list(owner.user.id);
    const other = await userWithPasskey(t, 'other@example.com', 'Theirs');
    const post = (page: Page, path: string, form: Record<string, string>) => page.request.post(`${server.origin}${path}`, { form, maxRedirects: 0 });
    const csrfOf = (page: Page) => page.locator('input[name=csrf]').first().inputValue();

    const otherCsrf = await csrfOf(other.page);
    for (const action of ['rename', 'remove']) {
      const path = `/account/security/passkeys/${mine!.id}/${action}`;
      t.equal((await other.page.request.get(`${server.origin}${path}`, { maxRedirects: 0 })).status(), 404, `${action} page of another user's passkey: 404`);
      t.equal((await post(other.page, path, { csrf: otherCsrf, name: 'taken' })).status(), 404, `${action} of another user's passkey: 404`);
    }
    t.same((await passkeys.list(owner.user.id)).map((p) => p.name), ['Mine'], 'and it is unchanged');

    t.equal((await post(owner.page, `/account/security/passkeys/${mine!.id}/remove`, { csrf: otherCsrf })).status(), 403, "removal with another session's CSRF token: refused");
    t.equal((await post(owner.page, `/account/security/passkeys/${mine!.id}/rename`, { csrf: '', name: 'x' })).status(), 403, 'rename without one: refused');
    const options = await owner.page.request.post(`${server.origin}/account/security/passkeys/options`, { data: { csrf: otherCsrf } });
    t.equal(options.status(), 403, 'registration options without the CSRF token: refused');
    t.equal((await options.json()).error, 'forbidden', 'in the JSON error shape');
    await openLogin(owner.page);
    const uid = new URL(owner.page.url()).pathname.split('/').pop()!;
    t.equal((await owner.page.request.post(`${server.origin}/interaction/${uid}/passkey/options`, { data: { csrf: otherCsrf } })).status(), 403, "the login page's options without its CSRF token: refused");
    t.equal((await post(owner.page, `/interaction/${uid}/passkey`, { csrf: otherCsrf, response: '{}' })).status(), 403, 'and its form');

    await owner.page.goto(`${server.origin}/account/security`);
    const ownerCsrf = await csrfOf(owner.page);
    clock.advance(6 * 60);
    try {
      const stale = await owner.page.request.post(`${server.origin}/account/security/passkeys/options`, { data: { csrf: ownerCsrf } });
      t.equal(stale.status(), 403, 'six minutes after signing in, no registration options');
      t.equal((await stale.json()).error, 'reauthentication_required');
      const addPage = await owner.page.request.get(`${server.origin}/account/security/passkeys/add`, { maxRedirects: 0 });
      t.equal(addPage.status(), 303, 'the add page sends the browser to sign in again');
      t.match(addPage.headers().location, /reauth=1/);
      const removal = await post(owner.page, `/account/security/passkeys/${mine!.id}/remove`, { csrf: ownerCsrf });
      t.equal(removal.status(), 303, 'removal too (re-authentication)');
      t.match(removal.headers().location, /reauth=1/);
      t.equal((await passkeys.list(owner.user.id)).length, 1, 'nothing was removed');
    } finally {
      clock.advance(-6 * 60);
    }
  });

  t.test('without JavaScript: no passkey button, the password works', async (t) => {
    await seedUser(server, 'nojs@example.com');
    const { page } = await device(t, { javaScriptEnabled: false });
    const request = await openLogin(page);
    t.notOk(await page.getByRole('button', { name: 'Sign in with a passkey' }).isVisible(), 'the passkey button stays hidden');
    await page.getByLabel('Email').fill('nojs@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    t.same((await finish(page, request)).amr, ['pwd'], 'signed in with the password');
  });

  t.test('the script: one external file, pinned, cached, and only pages that carry it allow scripts', async (t) => {
    const { page } = await device(t);
    await openLogin(page);
    const src = await page.locator('script').getAttribute('src');
    t.match(src, /^\/assets\/passkeys-[0-9a-f]{16}\.js$/, 'a content-named path');
    t.match(await page.locator('script').getAttribute('integrity'), /^sha384-/, 'with Subresource Integrity');
    const login = await page.request.get(page.url());
    t.match(login.headers()['content-security-policy'], /script-src 'self'(;|$)/);
    t.notMatch(login.headers()['content-security-policy'], /unsafe-inline|unsafe-eval/);
    const script = await page.request.get(`${server.origin}${src}`);
    t.equal(script.status(), 200);
    t.match(script.headers()['cache-control'], /immutable/);
    t.equal(await page.locator('script:not([src])').count(), 0, 'no inline script');
  });
});
