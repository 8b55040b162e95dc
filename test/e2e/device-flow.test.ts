/**
 * Device authorization grant (RFC 8628): the device asks for codes and polls; the user enters the code on
 * the verification page, confirms it, signs in and consents; the device then receives its tokens once.
 */
import t from 'tap';
import * as client from 'openid-client';
import { Browser, discover, hiddenField, oauthError, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const ALICE = { email: 'alice@example.com', password: TEST_PASSWORD };

function formAction(html: string, formId: string): string {
  const match = new RegExp(`<form id="${formId.replace('.', '\\.')}"[^>]*action="([^"]+)"`).exec(html);
  if (!match?.[1]) throw new Error(`no form ${formId} in page:\n${html.slice(0, 500)}`);
  return match[1];
}

/** One poll, without waiting: the device's view right now. */
function pollOnce(config: client.Configuration, deviceCode: string) {
  return client.genericGrantRequest(config, DEVICE_GRANT, { device_code: deviceCode });
}

/** Enters the user code on the verification page; returns the confirmation page. */
async function enterUserCode(browser: Browser, verificationUri: string, userCode: string) {
  const input = await browser.fetch(verificationUri);
  const inputHtml = await input.text();
  if (input.status !== 200) throw new Error(`verification page answered ${input.status}`);
  const xsrf = hiddenField(inputHtml, 'xsrf');
  const action = new URL(formAction(inputHtml, 'op.deviceInputForm'), verificationUri);
  const confirm = await browser.postForm(action, { xsrf, user_code: userCode });
  return { input, inputHtml, confirm, confirmHtml: await confirm.text(), action };
}

/**
 * Confirms the code and follows the redirects through the login and consent pages until the provider
 * renders its final page (success or error); returns that page.
 */
async function confirmAndSignIn(server: TestServer, browser: Browser, confirmHtml: string, base: URL, credentials = ALICE) {
  const action = new URL(formAction(confirmHtml, 'op.deviceConfirmForm'), base);
  let res = await browser.postForm(action, {
    xsrf: hiddenField(confirmHtml, 'xsrf'),
    user_code: hiddenField(confirmHtml, 'user_code'),
    confirm: 'yes',
  });
  let url = action.toString();
  const pages: string[] = [];
  for (let step = 0; step < 12; step++) {
    if (res.status === 302 || res.status === 303) {
      url = new URL(res.headers.get('location') ?? '', url).toString();
      res = await browser.fetch(url);
      continue;
    }
    const html = await res.text();
    pages.push(new URL(url).pathname);
    if (!new URL(url).pathname.startsWith('/interaction/')) return { status: res.status, html, pages, headers: res.headers };
    const uid = new URL(url).pathname.split('/').pop() ?? '';
    const csrf = hiddenField(html, 'csrf');
    res = html.includes('name="password"')
      ? await browser.postForm(`${server.origin}/interaction/${uid}/login`, { csrf, ...credentials })
      : await browser.postForm(`${server.origin}/interaction/${uid}/confirm`, { csrf });
    if (res.status !== 303) throw new Error(`interaction form answered ${res.status}`);
  }
  throw new Error('too many redirects');
}

t.test('device authorization grant', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const user = await seedUser(server);
  const device = await seedClient(server, {
    client_name: 'Living-room TV',
    token_endpoint_auth_method: 'none',
    grant_types: [DEVICE_GRANT, 'refresh_token'],
    redirect_uris: [],
    post_logout_redirect_uris: [],
  });
  const config = await discover(server, device);

  t.test('pending, then approved through the verification page, then tokens once', async (t) => {
    const auth = await client.initiateDeviceAuthorization(config, { scope: 'openid email offline_access' });
    t.ok(auth.device_code, 'device_code');
    t.match(auth.user_code, /^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/, 'user_code in the base-20 ****-**** mask');
    t.equal(auth.verification_uri, `${server.issuer}/device`);
    t.ok(auth.expires_in > 0 && auth.expires_in <= server.config.ttl.deviceCode, 'expires_in within the configured TTL');

    const pending = await oauthError(pollOnce(config, auth.device_code));
    t.equal(pending.error, 'authorization_pending', 'before the user acts: authorization_pending');
    t.equal(pending.status, 400);

    const browser = new Browser();
    const entered = await enterUserCode(browser, auth.verification_uri, auth.user_code);
    t.equal(entered.input.status, 200, 'verification page');
    t.match(entered.input.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, 'verification page is not frameable');
    t.equal(entered.confirm.status, 200, 'confirmation page');
    t.match(entered.confirmHtml, 'Living-room TV', 'names the client');
    t.match(entered.confirmHtml, auth.user_code, 'shows the code to compare');

    t.equal((await oauthError(pollOnce(config, auth.device_code))).error, 'authorization_pending', 'entering the code alone approves nothing');

    const done = await confirmAndSignIn(server, browser, entered.confirmHtml, entered.action);
    t.equal(done.status, 200, 'success page');
    t.match(done.html, 'Device connected');
    t.ok(done.pages.some((p) => p.startsWith('/interaction/')), 'went through the login interaction');

    const tokens = await client.pollDeviceAuthorizationGrant(config, auth);
    t.ok(tokens.access_token, 'access token');
    t.ok(tokens.refresh_token, 'refresh token (offline_access)');
    t.equal(tokens.claims()?.sub, user.id, 'ID token for the user who approved');
    t.equal((await client.fetchUserInfo(config, tokens.access_token, user.id)).email, ALICE.email);

    const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
    t.not(refreshed.refresh_token, tokens.refresh_token, 'refresh token rotates for the device client');

    // A replayed device code is treated like a replayed authorization code: refused, and the grant revoked.
    const again = await oauthError(pollOnce(config, auth.device_code));
    t.equal(again.error, 'invalid_grant', 'the device code is single use');
    t.equal((await client.tokenIntrospection(config, refreshed.access_token)).active, false, 'the replay revoked the access token');
    t.equal((await oauthError(client.refreshTokenGrant(config, refreshed.refresh_token!))).error, 'invalid_grant', 'and the refresh token');
  });

  t.test('a user code is used once: entering it again is refused', async (t) => {
    const auth = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    const browser = new Browser();
    const entered = await enterUserCode(browser, auth.verification_uri, auth.user_code);
    await confirmAndSignIn(server, browser, entered.confirmHtml, entered.action);
    const reuse = await enterUserCode(new Browser(), auth.verification_uri, auth.user_code);
    t.notMatch(reuse.confirmHtml, 'op.deviceConfirmForm', 'no confirmation form for a used code');
    t.match(reuse.confirmHtml, 'op.deviceInputForm', 'back to the input form, with an error');
  });

  t.test('the user aborts on the confirmation page: the device gets access_denied', async (t) => {
    const auth = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    const browser = new Browser();
    const entered = await enterUserCode(browser, auth.verification_uri, auth.user_code);
    const abort = await browser.postForm(new URL(formAction(entered.confirmHtml, 'op.deviceConfirmForm'), entered.action), {
      xsrf: hiddenField(entered.confirmHtml, 'xsrf'),
      user_code: hiddenField(entered.confirmHtml, 'user_code'),
      abort: 'yes',
    });
    t.notOk(abort.headers.get('location')?.includes('/interaction/'), 'no login after an abort');
    const denied = await oauthError(pollOnce(config, auth.device_code));
    t.equal(denied.error, 'access_denied');
  });

  t.test('a wrong user code re-renders the input form with a generic error', async (t) => {
    const browser = new Browser();
    const entered = await enterUserCode(browser, `${server.issuer}/device`, 'BCDF-GHJK');
    t.match(entered.confirmHtml, 'That code is not valid.', 'generic message');
    t.match(entered.confirmHtml, 'op.deviceInputForm', 'the input form again');
    t.notMatch(entered.confirmHtml, 'op.deviceConfirmForm');
  });

  t.test('the verification form needs its xsrf token', async (t) => {
    const auth = await client.initiateDeviceAuthorization(config, { scope: 'openid' });
    const browser = new Browser();
    const page = await browser.fetch(auth.verification_uri);
    const action = new URL(formAction(await page.text(), 'op.deviceInputForm'), auth.verification_uri);
    const forged = await browser.postForm(action, { xsrf: 'forged', user_code: auth.user_code });
    const html = await forged.text();
    t.notMatch(html, 'op.deviceConfirmForm', 'wrong xsrf: no confirmation form');
    t.ok(forged.status >= 400 && forged.status < 500, `wrong xsrf: a client error (${forged.status})`);

    // A POST with no session cookie at all (a cross-site form, or a browser without cookies).
    const anonymous = await fetch(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf: 'forged', user_code: auth.user_code }).toString(),
    });
    const anonymousBody = await anonymous.text();
    t.notMatch(anonymousBody, 'op.deviceConfirmForm', 'no session: no confirmation form');
    t.notMatch(anonymousBody, /\bat [\w.<>]+ \(|node_modules/, 'no session: no stack trace');
    t.equal(anonymous.status, 400, 'no session: a client error, not a 500');
    t.match(anonymousBody, `href="${auth.verification_uri}"`, 'no session: a way to start again at the device page');
    const restart = await new Browser().fetch(auth.verification_uri);
    t.match(await restart.text(), 'op.deviceInputForm', 'which opens a working input form');
    t.equal((await oauthError(pollOnce(config, auth.device_code))).error, 'authorization_pending', 'nothing was approved');
  });

  t.test('an unknown client cannot start a device authorization', async (t) => {
    const stranger = await discover(server, { clientId: 'no-such-device', clientSecret: undefined });
    const err = await oauthError(client.initiateDeviceAuthorization(stranger, { scope: 'openid' }));
    t.equal(err.error, 'invalid_client');
  });
});
