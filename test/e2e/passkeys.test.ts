/**
 * Passkeys in a real headless Chromium with the DevTools Protocol's virtual authenticator (a CTAP2 platform
 * authenticator with discoverable credentials and user verification): adding one from the account pages,
 * a passwordless sign-in (button and autofill), the passkey as the second factor after the password, a
 * second device's passkey, enrolment of one at sign-in when MFA is required, rename and removal; each
 * authorization completed by openid-client with `amr` read from the ID token (RFC 8176). Without JavaScript
 * the passkey parts stay hidden and the password works as before. Hostile cases: passkeys.hostile.test.ts.
 */
import tap from 'tap';
import { SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';
import { codeIn, mailbox } from '../helpers/mfa.js';
import { authorizationRequest, seedUser } from '../helpers/oidc.js';
import { checkPage, screenshots } from '../helpers/pages.js';
import { startPasskeyBrowser } from '../helpers/passkey-browser.js';
import { operator } from '../helpers/rbac.js';
import { signInToAccount } from '../helpers/account.js';

tap.test('passkeys in a real browser', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const { server, smtp, config, device, heading, addPasskey, openLogin, finish, passkeyButton, userWithPasskey } = await startPasskeyBrowser(t);
  const { factors, rbac } = server.app.keryu.services;


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


  t.test('without JavaScript: no passkey button, the password works', async (t) => {
    await seedUser(server, 'nojs@example.com');
    const { page } = await device(t, { javaScriptEnabled: false });
    const request = await openLogin(page);
    t.notOk(await page.getByRole('button', { name: 'Sign in with a passkey' }).isVisible(), 'the passkey button stays hidden');
    await page.getByLabel('Email').fill('nojs@example.com');
    await page.getByLabel('Password').fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    t.same((await finish(page, request)).amr, ['pwd'], 'signed in with the password');

    await signInToAccount(page, server, { email: 'nojs@example.com', path: '/account/security/passkeys/add' });
    t.ok(await page.getByText('This browser cannot create a passkey here').isVisible(), 'the add page says what is missing');
    t.notOk(await page.getByRole('button', { name: 'Create a passkey' }).isVisible(), 'and shows no form that cannot work');
    // Screenshots only: axe-core runs as a script, which this profile does not run.
    await screenshots(page, 'passkeys', 'account-passkey-add-no-javascript');
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
