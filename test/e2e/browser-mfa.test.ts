/**
 * The login interaction's further steps in a real headless Chromium with JavaScript turned off (the pages
 * must work without it): a second factor by authenticator app, text message, recovery code; a code by email
 * for a device never seen before; and enrolment (authenticator app with its QR code, phone, email) when a
 * role requires MFA and the user has no factor. Forms are filled in by label and submitted by button name,
 * codes come from where a user would read them (the app's secret, the SMS and SMTP loopback servers), and
 * the relying party exchanges the code with openid-client and reads `amr` from the ID token.
 *
 * Uses the system Chromium (CHROMIUM_PATH, or /usr/bin/chromium); never downloads one. Skipped when none is
 * installed.
 */
import tap from 'tap';
import { generate } from 'otplib';
import * as client from 'openid-client';
import type { Page } from 'playwright-core';
import { manualClock, NO_RATE_LIMITS } from '../helpers/auth.js';
import { launchChromium, relyingPartyPage, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { authorizationRequest, discover, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { enrolTotpFor } from '../helpers/mfa.js';
import { operator } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';
import { startSmtpServer } from '../helpers/smtp.js';
import { startTwilioServer } from '../helpers/twilio.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

tap.test('MFA steps of the login interaction in a real browser', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const smtp = await startSmtpServer();
  t.teardown(() => smtp.close());
  const twilio = await startTwilioServer();
  t.teardown(() => twilio.close());
  // The services' clock is moved by hand: TOTP steps and the resend interval without sleeping.
  const clock = manualClock();
  const server = await startServer({
    clock,
    env: { ...NO_RATE_LIMITS, ...twilio.env, SMTP_URL: smtp.url, DEVICE_VERIFICATION: 'challenge', OTP_RESEND_INTERVAL: '30' },
  });
  t.teardown(() => server.close());
  const { factors, rbac } = server.app.keryu.services;
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);

  const browser = await launchChromium();
  // Teardowns run last-in first-out: the browser closes before the server.
  t.teardown(() => browser.close());

  /** A fresh profile without JavaScript (the pages must work without it). */
  const newPage = async (t: Pick<typeof tap, 'teardown'>): Promise<Page> => (await relyingPartyPage(browser, t, { javaScriptEnabled: false })).page;

  /** Opens an authorization request and signs in with the password; answers what the RP needs to finish. */
  async function signIn(page: Page, email: string) {
    const { url, verifier, state, nonce } = await authorizationRequest(config, { scope: 'openid email' });
    await page.goto(url.href);
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    return { verifier, state, nonce };
  }

  /** Submits the Code field with Verify; answers the status of the POST (303 when it led on). */
  async function enterCode(page: Page, code: string): Promise<number> {
    await page.getByLabel('Code', { exact: true }).fill(code);
    const [response] = await Promise.all([
      page.waitForResponse((res) => res.request().method() === 'POST' && new URL(res.url()).pathname.startsWith('/interaction/')),
      page.getByRole('button', { name: 'Verify', exact: true }).click(),
    ]);
    await page.waitForLoadState();
    return response.status();
  }

  /** Allows access on the consent page, lands on the callback and exchanges the code; answers the ID token claims. */
  async function allowAndExchange(page: Page, request: { verifier: string; state: string; nonce: string }) {
    const allow = page.getByRole('button', { name: 'Allow', exact: true });
    await allow.waitFor();
    await Promise.all([page.waitForURL((u) => u.href.startsWith(REDIRECT_URI)), allow.click()]);
    const tokens = await client.authorizationCodeGrant(config, new URL(page.url()), {
      pkceCodeVerifier: request.verifier,
      expectedState: request.state,
      expectedNonce: request.nonce,
    });
    const amr = tokens.claims()?.amr;
    return { amr: Array.isArray(amr) ? amr.filter((v): v is string => typeof v === 'string') : [] };
  }

  /** The page after an enrolment at sign-in: ten recovery codes shown once, then on to the application. */
  async function saveRecoveryCodes(t: Pick<typeof tap, 'equal' | 'match'>, page: Page) {
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Save your recovery codes', 'recovery codes follow the enrolment');
    const codes = (await page.getByRole('list', { name: 'Recovery codes' }).locator('code').allTextContents()).map((c) => c.trim());
    t.equal(codes.length, 10, 'ten of them');
    t.match(codes[0], /^([a-z2-9]{4}-){6}[a-z2-9]{4}$/);
    await page.getByRole('link', { name: 'I saved them, continue', exact: true }).click();
    return codes;
  }

  const alertText = async (page: Page) => (await page.getByRole('alert').textContent())?.trim();
  const heading = async (page: Page) => (await page.getByRole('heading', { level: 1 }).textContent())?.trim();

  /** The code of the newest mail to `to` that arrived after `since` messages. */
  async function mailedCode(to: string, since: number): Promise<string> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const mail = smtp.messages.slice(since).reverse().find((m) => m.to.includes(to) && /code is (\d{6})/.test(m.text));
      if (mail) return /code is (\d{6})/.exec(mail.text)![1]!;
      if (Date.now() > deadline) throw new Error(`no code mailed to ${to}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** A user with an authenticator app; `totp()` is the code it shows now. */
  async function totpUser(email: string) {
    const user = await seedUser(server, email);
    return { user, totp: await enrolTotpFor(server, user, clock) };
  }

  async function mfaRole() {
    return (await rbac.findRole('needs-mfa')) ?? (await rbac.createRole({ name: 'needs-mfa', description: 'MFA required', level: 0, mfaRequired: true }, operator));
  }

  /** A user without a factor holding a role that requires MFA. */
  async function mustEnrollUser(email: string) {
    const user = await seedUser(server, email);
    await rbac.assignRole(user.id, { role: (await mfaRole()).name }, operator);
    return user;
  }

  /** Passes the new-device check (a code mailed to the account) that precedes enrolment. */
  async function passDeviceCheck(t: Pick<typeof tap, 'equal' | 'match'>, page: Page, email: string, since: number) {
    await page.getByLabel('Code', { exact: true }).waitFor();
    t.match(await page.textContent('main'), "We don't recognize this device", 'first, a code for the new device');
    t.equal(await enterCode(page, await mailedCode(email, since)), 303, 'the device code is accepted');
  }

  t.test('authenticator app: wrong code, then the right one', async (t) => {
    const { totp } = await totpUser('totp@example.com');
    const page = await newPage(t);
    const request = await signIn(page, 'totp@example.com');

    const codeField = page.getByLabel('Code', { exact: true });
    await codeField.waitFor();
    t.equal(await page.title(), 'Two-step verification · keryu-auth', 'the code page follows the password');
    t.equal(await codeField.getAttribute('autocomplete'), 'one-time-code');
    t.equal(await codeField.getAttribute('inputmode'), 'numeric');
    t.match(await page.textContent('main'), 'Enter the 6-digit code from your authenticator app.', 'says where the code is');
    t.equal(await page.getByLabel('Password').count(), 0, 'no password field');

    const right = await totp();
    const wrong = `${(Number(right[0]) + 5) % 10}${right.slice(1)}`;
    t.equal(await enterCode(page, wrong), 401, 'a wrong code answers 401');
    t.equal(await alertText(page), 'That code is not correct. You have 4 more tries.', 'and says so in plain words');
    t.equal(await enterCode(page, right), 303, 'the right code leads on');

    const claims = await allowAndExchange(page, request);
    t.ok(claims.amr.includes('mfa'), 'the ID token says mfa');
    t.ok(claims.amr.includes('otp'), 'and otp');
  });

  t.test('a recovery code instead of the app', async (t) => {
    const { user } = await totpUser('recovery@example.com');
    const [recovery] = await factors.generateRecoveryCodes(user);
    const page = await newPage(t);
    const request = await signIn(page, 'recovery@example.com');

    const link = page.getByRole('link', { name: 'Use a recovery code' });
    await link.waitFor();
    await link.click();
    await page.waitForURL(/method=recovery_code/);
    t.match(await page.textContent('main'), 'recovery codes you saved', 'the page explains the recovery code');
    t.equal(await page.getByLabel('Code', { exact: true }).getAttribute('inputmode'), null, 'a recovery code is not numeric');
    t.ok(await page.getByRole('link', { name: 'Use your authenticator app' }).isVisible(), 'and links back to the app');

    t.equal(await enterCode(page, recovery!.toUpperCase()), 303, 'the recovery code is accepted (case does not matter)');
    const claims = await allowAndExchange(page, request);
    t.ok(claims.amr.includes('mfa'), 'the ID token says mfa');
    t.equal(await factors.countUnusedRecoveryCodes(user.id), 9, 'the code is used up');
  });

  t.test('text message: the code, a resend too soon, a resend later', async (t) => {
    const user = await seedUser(server, 'sms@example.com');
    const sent = twilio.messages.length;
    const { factor_id } = await factors.enrollCodeFactor(user, 'sms', '+14155552671');
    await factors.confirm(user, 'sms', factor_id, await twilio.codeOf(sent + 1));
    clock.advance(31);

    const page = await newPage(t);
    const request = await signIn(page, 'sms@example.com');
    await page.getByLabel('Code', { exact: true }).waitFor();
    t.match(await page.textContent('main'), 'We sent a code to +1•••71.', 'says where the code went (masked)');
    const first = await twilio.codeOf(sent + 2);

    const resend = () =>
      Promise.all([
        page.waitForResponse((res) => res.request().method() === 'POST' && res.url().endsWith('/resend')),
        page.getByRole('button', { name: 'Send a new code', exact: true }).click(),
      ]).then(async ([res]) => {
        await page.waitForLoadState();
        return res;
      });
    const tooSoon = await resend();
    t.equal(tooSoon.status(), 429, 'a resend within the interval answers 429');
    t.ok(Number(await tooSoon.headerValue('retry-after')) > 0, 'with Retry-After');
    t.match(await alertText(page), /^Too many codes were sent\. Wait \d+ seconds before asking for a new one\.$/, 'the page says how long to wait');
    t.equal(twilio.messages.length, sent + 2, 'no SMS was sent');

    clock.advance(31);
    t.equal((await resend()).status(), 303, 'later, the resend goes through');
    t.match(await page.textContent('main'), 'We sent a code to +1•••71.');
    const second = await twilio.codeOf(sent + 3);
    if (second !== first) {
      t.equal(await enterCode(page, first), 401, 'the earlier code no longer counts');
    }
    t.equal(await enterCode(page, second), 303, 'the new code is accepted');
    const claims = await allowAndExchange(page, request);
    t.ok(claims.amr.includes('mfa'), 'mfa');
    t.ok(claims.amr.includes('sms'), 'by sms');
  });

  t.test('a device never seen before: a code by email', async (t) => {
    await seedUser(server, 'mail@example.com');
    const since = smtp.messages.length;
    const page = await newPage(t);
    const request = await signIn(page, 'mail@example.com');
    await page.getByLabel('Code', { exact: true }).waitFor();
    t.equal(await heading(page), "Confirm it's you");
    const text = await page.textContent('main');
    t.match(text, "We don't recognize this device", 'says why');
    t.match(text, 'We sent a code to m•••@example.com.', 'and where the code went');
    t.equal(await enterCode(page, await mailedCode('mail@example.com', since)), 303);
    const claims = await allowAndExchange(page, request);
    t.ok(claims.amr.includes('email'), 'the ID token says a code by email was used');
    t.notOk(claims.amr.includes('mfa'), 'a device check is not a second factor');
  });

  t.test('a role requires MFA: enrol an authenticator app at sign-in', async (t) => {
    const user = await mustEnrollUser('enrol-totp@example.com');
    const since = smtp.messages.length;
    const page = await newPage(t);
    const request = await signIn(page, 'enrol-totp@example.com');
    await passDeviceCheck(t, page, 'enrol-totp@example.com', since);

    await page.getByRole('button', { name: 'Use an authenticator app', exact: true }).waitFor();
    t.equal(await heading(page), 'Set up two-step verification', 'the enrolment page follows');
    t.ok(await page.getByRole('button', { name: 'Get codes by text message', exact: true }).isVisible(), 'phone is offered');
    t.ok(await page.getByRole('button', { name: 'Get codes by email', exact: true }).isVisible(), 'email is offered');
    await page.getByRole('button', { name: 'Use an authenticator app', exact: true }).click();

    const secret = (await page.locator('#totp-secret').textContent())?.trim() ?? '';
    t.match(secret, /^[A-Z2-7]{32}$/, 'the setup key is shown as text');
    const qr = page.getByRole('img');
    t.match(await qr.getAttribute('alt'), `Setup key: ${secret}`, 'the QR code has alt text with the key');
    t.ok(await qr.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth > 0), 'and renders (the CSP allows the data: image)');

    const code = await generate({ secret, epoch: Math.floor(clock().getTime() / 1000) });
    const wrong = `${(Number(code[0]) + 5) % 10}${code.slice(1)}`;
    t.equal(await enterCode(page, wrong), 401, 'a wrong code answers 401');
    t.match(await alertText(page), 'That code is not correct.', 'in plain words');
    t.equal(await page.locator('#totp-secret').count(), 0, 'the secret is not shown again');
    t.equal(await enterCode(page, code), 200, 'the code from the app activates it and completes the login');
    const codes = await saveRecoveryCodes(t, page);

    const claims = await allowAndExchange(page, request);
    t.ok(claims.amr.includes('mfa'), 'the ID token says mfa');
    t.match(await factors.list(user.id), [{ type: 'totp', active: true }, { type: 'recovery_code', active: true, remaining: 10 }], 'the app is the user\'s factor now, with recovery codes');
    t.ok(await factors.checkRecoveryCode(user.id, codes[3]!), 'a code from the page works');
  });

  t.test('a role requires MFA: enrol a phone at sign-in', async (t) => {
    const user = await mustEnrollUser('enrol-sms@example.com');
    const since = smtp.messages.length;
    const page = await newPage(t);
    const request = await signIn(page, 'enrol-sms@example.com');
    await passDeviceCheck(t, page, 'enrol-sms@example.com', since);

    await page.getByRole('button', { name: 'Get codes by text message', exact: true }).click();
    const phone = page.getByLabel('Phone number', { exact: true });
    await phone.waitFor();
    await phone.fill('12345');
    await page.getByRole('button', { name: 'Send code', exact: true }).click();
    await page.getByRole('alert').waitFor();
    t.match(await alertText(page), 'Enter a valid mobile number with its country code', 'a bad number is explained');
    t.equal(await phone.inputValue(), '12345', 'and kept in the field');

    const sent = twilio.messages.length;
    await phone.fill('+14155552672');
    await page.getByRole('button', { name: 'Send code', exact: true }).click();
    await page.getByLabel('Code', { exact: true }).waitFor();
    t.match(await page.textContent('main'), 'We sent a code to +1•••72.', 'then the code page');
    t.equal(await enterCode(page, await twilio.codeOf(sent + 1)), 200, 'the code activates the phone and completes the login');
    await saveRecoveryCodes(t, page);
    const claims = await allowAndExchange(page, request);
    t.ok(claims.amr.includes('mfa'), 'mfa');
    t.match(await factors.list(user.id), [{ type: 'sms', active: true }, { type: 'recovery_code' }]);
  });

  t.test('a role requires MFA: enrol the account address at sign-in', async (t) => {
    const user = await mustEnrollUser('enrol-mail@example.com');
    let since = smtp.messages.length;
    const page = await newPage(t);
    const request = await signIn(page, 'enrol-mail@example.com');
    await passDeviceCheck(t, page, 'enrol-mail@example.com', since);

    await page.getByRole('button', { name: 'Get codes by email', exact: true }).click();
    const address = page.getByLabel('Email address', { exact: true });
    await address.waitFor();
    t.equal(await address.inputValue(), 'enrol-mail@example.com', 'the account address by default');
    since = smtp.messages.length;
    await page.getByRole('button', { name: 'Send code', exact: true }).click();
    await page.getByLabel('Code', { exact: true }).waitFor();
    t.match(await page.textContent('main'), 'We sent a code to e•••@example.com.');
    t.equal(await enterCode(page, await mailedCode('enrol-mail@example.com', since)), 200);
    await saveRecoveryCodes(t, page);
    const claims = await allowAndExchange(page, request);
    t.ok(claims.amr.includes('mfa'), 'mfa');
    t.match(await factors.list(user.id), [{ type: 'email', active: true }, { type: 'recovery_code' }]);
  });
});
