/**
 * Security settings in headless Chromium: adding and removing an authenticator app with codes the test
 * computes, recovery codes and their download, an email factor confirmed with the captured mail, the password
 * change (JavaScript on and off), re-authentication when the sign-in is stale, another user's factor id, and
 * forms without their CSRF token.
 */
import { readFile } from 'node:fs/promises';
import tap from 'tap';
import type { Page } from 'playwright-core';
import { accountPage, signInToAccount } from '../helpers/account.js';
import { seedAuthUser } from '../helpers/auth.js';
import { launchChromium, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';
import { codeIn, enrolTotpFor, mailbox, startMfaServer, totpAt, wrongCode } from '../helpers/mfa.js';
import { checkPage } from '../helpers/pages.js';

const NEW_PASSWORD = 'violet-harbour-lantern-92';

tap.test('account pages: security settings', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const { server, smtp, twilio, clock } = await startMfaServer(t);
  const { factors } = server.app.keryu.services;
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const security = `${server.origin}/account/security`;
  const csrfOf = (page: Page) => page.locator('input[name=csrf]').first().inputValue();

  async function signedIn(t: Pick<typeof tap, 'teardown'>, email: string, options: { javaScriptEnabled?: boolean; path?: string } = {}) {
    const user = await seedAuthUser(server, email);
    const page = await accountPage(browser, t, options);
    await signInToAccount(page, server, { email, path: options.path ?? '/account/security' });
    return { user, page };
  }

  t.test('add an authenticator app, make it preferred, remove it', async (t) => {
    const { user, page } = await signedIn(t, 'totp@example.com');
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Security');
    await checkPage(t, page, 'account', 'security');

    await page.getByRole('button', { name: 'Add an authenticator app' }).click();
    const secret = (await page.locator('#totp-secret').textContent())!.trim();
    t.match(await page.locator('p.qr img').getAttribute('src'), /^data:image\//, 'the QR code is a data: URL image');
    await checkPage(t, page, 'account', 'security-totp');

    await page.getByLabel('Code from the app').fill(wrongCode(await totpAt(secret, clock)));
    await page.getByRole('button', { name: 'Add the app' }).click();
    t.match(await page.getByRole('alert').textContent(), /not right/, 'a wrong code is refused on the page');
    t.equal((await page.locator('#totp-secret').textContent())!.trim(), secret, 'and the same setup key is shown again');

    await page.getByLabel('Code from the app').fill(await totpAt(secret, clock));
    await Promise.all([page.waitForURL(`${security}?done=totp`), page.getByRole('button', { name: 'Add the app' }).click()]);
    t.match(await page.getByRole('status').textContent(), /authenticator app was added/);
    const [totp] = (await factors.list(user.id)).filter((f) => f.type === 'totp' && f.active);
    t.ok(totp, 'the factor is active');

    await page.getByRole('link', { name: /^Remove Authenticator app/ }).click();
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Remove a factor?', 'removal asks to confirm first');
    await checkPage(t, page, 'account', 'security-remove');
    await Promise.all([page.waitForURL(`${security}?done=removed`), page.getByRole('button', { name: 'Remove it' }).click()]);
    t.same((await factors.list(user.id)).filter((f) => f.type === 'totp'), [], 'the factor is gone');
  });

  t.test('recovery codes: shown once, downloaded as a text file right after', async (t) => {
    const { user, page } = await signedIn(t, 'codes@example.com', { path: '/account/security/recovery-codes' });
    await checkPage(t, page, 'account', 'security-recovery');
    await page.getByRole('button', { name: 'Create new recovery codes' }).click();
    const codes = (await page.locator('ul.codes code').allTextContents()).map((c) => c.trim());
    t.equal(codes.length, 10, 'ten codes are shown');
    await checkPage(t, page, 'account', 'security-recovery-codes');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download as a text file' }).click()]);
    t.equal(download.suggestedFilename(), 'recovery-codes.txt');
    const text = await readFile((await download.path())!, 'utf8');
    for (const code of codes) t.ok(text.includes(code), `the file holds ${code}`);
    t.ok(await factors.checkRecoveryCode(user.id, codes[1]!), 'the codes work');

    const sealed = await page.locator('input[name=sealed]').inputValue();
    const other = await signedIn(t, 'codes-other@example.com');
    const stolen = await other.page.request.post(`${security}/recovery-codes/download`, { form: { csrf: await csrfOf(other.page), sealed }, maxRedirects: 0 });
    t.equal(stolen.status(), 410, 'the download of another session answers nothing');
    t.notMatch(await stolen.text(), new RegExp(codes[0]!), 'and holds no code');
    clock.advance(11 * 60);
    const late = await page.request.post(`${security}/recovery-codes/download`, { form: { csrf: await csrfOf(page), sealed }, maxRedirects: 0 });
    clock.advance(-11 * 60);
    t.equal(late.status(), 410, 'ten minutes after generation the download has expired');
  });

  t.test('add an email factor with the code from the mail', async (t) => {
    const { user, page } = await signedIn(t, 'mail@example.com', { path: '/account/security/email/add' });
    await checkPage(t, page, 'account', 'security-email');
    const inbox = mailbox(smtp, 'factor@example.com');
    await page.getByLabel('Email address').fill('factor@example.com');
    await page.getByRole('button', { name: 'Send a code' }).click();
    await checkPage(t, page, 'account', 'security-code');
    await page.getByLabel('Code').fill(codeIn(await inbox.next()));
    await Promise.all([page.waitForURL(`${security}?done=email`), page.getByRole('button', { name: 'Confirm' }).click()]);
    t.ok((await factors.list(user.id)).some((f) => f.type === 'email' && f.active && f.label.includes('@')), 'the email factor is active');
  });

  t.test('add a phone with the code from the text message, then prefer it', async (t) => {
    const { user, page } = await signedIn(t, 'phone@example.com');
    await enrolTotpFor(server, user, clock);
    await page.goto(`${security}/sms/add`);
    await checkPage(t, page, 'account', 'security-sms');
    await page.getByLabel('Phone number').fill('+1 415 555 0100 x');
    await page.getByRole('button', { name: 'Send a code' }).click();
    t.match(await page.getByRole('alert').textContent(), /valid phone number/, 'a malformed number is refused on the form');
    const sent = twilio.messages.length;
    await page.getByLabel('Phone number').fill('+14155550123');
    await page.getByRole('button', { name: 'Send a code' }).click();
    await page.getByRole('status').waitFor();
    const sms = twilio.messages.slice(sent).find((m) => m.to === '+14155550123');
    await page.getByLabel('Code').fill(/(\d{6})/.exec(sms?.body ?? '')?.[1] ?? '');
    await Promise.all([page.waitForURL(`${security}?done=sms`), page.getByRole('button', { name: 'Confirm' }).click()]);
    const phone = (await factors.list(user.id)).find((f) => f.type === 'sms');
    t.ok(phone?.active && !phone.preferred, 'the phone is active, the authenticator still preferred');

    await Promise.all([page.waitForURL(`${security}?done=preferred`), page.getByRole('button', { name: /^Make Text message .* preferred$/ }).click()]);
    t.equal((await factors.list(user.id)).find((f) => f.preferred)?.type, 'sms', 'the phone is now the preferred factor');
  });

  for (const javaScriptEnabled of [true, false]) {
    t.test(`change the password (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`, async (t) => {
      const email = `password-${javaScriptEnabled ? 'on' : 'off'}@example.com`;
      const { page } = await signedIn(t, email, { javaScriptEnabled });
      t.match(await page.locator('#password-policy').textContent(), /at least \d+ characters/, 'the policy is described before submit');

      await page.getByLabel('Current password').fill('not-the-password-at-all');
      await page.getByLabel('New password').fill(NEW_PASSWORD);
      await page.getByRole('button', { name: 'Change password' }).click();
      t.match(await page.getByRole('alert').textContent(), /current password is not correct/, 'a wrong current password is refused');

      await page.getByLabel('Current password').fill(TEST_PASSWORD);
      await page.getByLabel('New password').fill('passwordpassword');
      await page.getByRole('button', { name: 'Change password' }).click();
      t.match(await page.getByRole('alert').textContent(), /not accepted: the password is too easy to guess/, 'the policy\'s answer is shown');

      await page.getByLabel('Current password').fill(TEST_PASSWORD);
      await page.getByLabel('New password').fill(NEW_PASSWORD);
      await Promise.all([page.waitForURL(`${security}/password-changed`), page.getByRole('button', { name: 'Change password' }).click()]);
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Your password was changed');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'password-changed');

      await page.goto(security);
      t.match(new URL(page.url()).pathname, /^\/interaction\//, 'this session ended with the others');
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(TEST_PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).click();
      t.match(new URL(page.url()).pathname, /^\/interaction\//, 'the old password is refused');
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill(NEW_PASSWORD);
      await Promise.all([page.waitForURL(security), page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
      t.pass('the new password signs in');
    });
  }

  t.test('a stale sign-in is asked again before a sensitive change', async (t) => {
    const { user, page } = await signedIn(t, 'stale@example.com');
    const totp = await enrolTotpFor(server, user, clock);
    const [factor] = await factors.list(user.id);
    await page.goto(security);
    const csrf = await csrfOf(page);
    // The provider stamps auth_time with the real time; the services' clock (which judges "recent") is moved
    // to just past RECENT_SIGN_IN_MAX_AGE after it.
    const stale = (Date.now() - clock().getTime()) / 1000 + 301;
    clock.advance(stale);
    const removal = await page.request.post(`${security}/factors/${factor!.id}/remove`, { form: { csrf }, maxRedirects: 0 });
    t.equal(removal.status(), 303);
    t.match(removal.headers().location, /^\/account\/login\?.*reauth=1/, 'a stale removal is sent to sign in again');
    t.equal((await factors.list(user.id)).length, 1, 'and removed nothing');
    await t.rejects(factors.remove(user, factor!.id, { providerSignIn: { at: new Date(clock().getTime() - 301_000), amr: ['pwd'] } }), { code: 'reauthentication_required' }, 'the service itself refuses a stale provider sign-in as proof');
    t.equal((await factors.list(user.id)).length, 1, 'and removes nothing');

    await page.goto(`${security}/recovery-codes`);
    t.match(new URL(page.url()).pathname, /^\/interaction\//, 'the page asks for the password again');
    clock.advance(-stale);
    if (await page.getByLabel('Email').isVisible()) await page.getByLabel('Email').fill('stale@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel('Code').fill(await totp());
    await Promise.all([page.waitForURL(`${security}/recovery-codes`), page.getByRole('button', { name: /verify/i }).click()]);
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Recovery codes', 'after signing in again (with the factor) the page opens');
  });

  t.test('another user\'s factor id answers 404 and changes nothing', async (t) => {
    const victim = await seedAuthUser(server, 'victim@example.com');
    await enrolTotpFor(server, victim, clock);
    const [theirs] = await factors.list(victim.id);
    const { page } = await signedIn(t, 'mallory@example.com');
    const csrf = await csrfOf(page);
    t.equal((await page.request.get(`${security}/factors/${theirs!.id}/remove`)).status(), 404, 'the confirmation page');
    t.equal((await page.request.post(`${security}/factors/${theirs!.id}/remove`, { form: { csrf }, maxRedirects: 0 })).status(), 404, 'the removal');
    t.equal((await page.request.post(`${security}/factors/${theirs!.id}/preferred`, { form: { csrf }, maxRedirects: 0 })).status(), 404, 'making it preferred');
    t.equal((await page.request.post(`${security}/totp/confirm`, { form: { csrf, factor_id: theirs!.id, code: '123456' }, maxRedirects: 0 })).status(), 404, 'confirming it');
    t.same(await factors.list(victim.id), [theirs], 'the victim\'s factor is unchanged');
  });

  t.test('forms without their CSRF token are refused', async (t) => {
    const { user, page } = await signedIn(t, 'csrf@example.com');
    await enrolTotpFor(server, user, clock);
    const [factor] = await factors.list(user.id);
    const posts: Array<[string, Record<string, string>]> = [
      ['password', { current_password: TEST_PASSWORD, new_password: NEW_PASSWORD }],
      [`factors/${factor!.id}/remove`, {}],
      ['recovery-codes', {}],
      ['totp', {}],
    ];
    for (const [path, form] of posts) {
      for (const csrf of [undefined, 'forged']) {
        const answer = await page.request.post(`${security}/${path}`, { form: csrf === undefined ? form : { ...form, csrf }, maxRedirects: 0 });
        t.equal(answer.status(), 403, `${path}: ${csrf === undefined ? 'no' : 'a wrong'} CSRF token is refused`);
      }
    }
    t.same((await factors.list(user.id)).map((f) => f.id), [factor!.id], 'no factor was added or removed');
    t.ok(await server.app.keryu.services.users.verifyPassword(user.id, TEST_PASSWORD), 'the password is unchanged');
  });
});
