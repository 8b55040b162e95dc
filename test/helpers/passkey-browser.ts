/**
 * The harness of the passkey browser tests: a test server whose issuer is http://localhost:<port> (WebAuthn
 * needs a secure context, which browsers grant localhost, and a domain as RP id: the usual test server's
 * 127.0.0.1 cannot be one), a loopback SMTP server for the address codes, headless Chromium, and "devices":
 * fresh browser profiles each with its own virtual platform authenticator (virtual-authenticator.ts), with
 * the steps a person takes (add a passkey on the account pages, open a login, finish an authorization with
 * openid-client and read `amr`).
 */
import type { Test } from 'tap';
import * as client from 'openid-client';
import type { Page } from 'playwright-core';
import { buildApp } from '../../src/app.js';
import { signInToAccount } from './account.js';
import { manualClock, NO_RATE_LIMITS } from './auth.js';
import { launchChromium, relyingPartyPage } from './chromium.js';
import { createTestDatabase } from './db.js';
import { authorizationRequest, discover, REDIRECT_URI, seedClient, seedUser } from './oidc.js';
import { freePort } from './ports.js';
import { testConfig, type TestServer } from './server.js';
import { startSmtpServer } from './smtp.js';
import { addVirtualAuthenticator, type VirtualAuthenticator } from './virtual-authenticator.js';

type Teardown = Pick<Test, 'teardown'>;

/** The test server, with its issuer on localhost. */
async function startLocalhostServer(t: Teardown, clock: () => Date, env: Record<string, string> = {}): Promise<TestServer> {
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

export async function startPasskeyBrowser(t: Teardown) {
  const clock = manualClock();
  const smtp = await startSmtpServer();
  t.teardown(() => smtp.close());
  const server = await startLocalhostServer(t, clock, { SMTP_URL: smtp.url });
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);
  const browser = await launchChromium();
  // Teardowns run last-in first-out: the browser closes before the server.
  t.teardown(() => browser.close());

  /**
   * A device: a fresh browser profile with its own platform authenticator. Chromium's virtual authenticator
   * answers a conditional (autofill) request at once, as if the person picked the passkey from the email
   * field's suggestions: so, except in the autofill test, the device is a browser without conditional
   * mediation, and the passkey is used through the buttons.
   */
  async function device(t: Teardown, options: { javaScriptEnabled?: boolean; autofill?: boolean } = {}) {
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
    const status = response.status();
    // A refusal is rendered by the POST itself: wait until that document has committed and loaded, or the test's
    // next page.goto races it and is interrupted (seen on a busy machine).
    if (status < 300 || status >= 400) await page.waitForURL(response.url(), { waitUntil: 'load' });
    else await page.waitForLoadState();
    return status;
  }

  /** A user signed in to the account pages on a new device, with a passkey added there. */
  async function userWithPasskey(t: Teardown, email: string, name = 'Laptop', options: { autofill?: boolean } = {}) {
    const user = await seedUser(server, email);
    const a = await device(t, options);
    await signInToAccount(a.page, server, { email, path: '/account/security' });
    await addPasskey(a.page, name);
    return { user, ...a };
  }

  return { server, clock, smtp, config, device, heading, passkeyError, addPasskey, openLogin, finish, passkeyButton, userWithPasskey };
}
