/**
 * Passkeys against a hostile browser or page, in headless Chromium with the DevTools Protocol's virtual
 * authenticator: user verification failing (`setUserVerified`), a UV flag and a signature forged after
 * signing (`setResponseOverrideBits`), an assertion made on another origin (a phishing page on the same RP
 * id) relayed to us, another user's passkey id (404), passkey forms and options requests without their CSRF
 * token, and a sign-in too old to add or remove a passkey.
 */
import tap from 'tap';
import type { Page } from 'playwright-core';
import { SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { startPasskeyBrowser } from '../helpers/passkey-browser.js';
import { freePort } from '../helpers/ports.js';

tap.test('passkeys against a hostile browser or page', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const { server, clock, heading, passkeyError, openLogin, passkeyButton, userWithPasskey } = await startPasskeyBrowser(t);

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
});
