/**
 * RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): the end-session page asks for
 * confirmation (with an xsrf token), then destroys the session server-side, clears the cookie and
 * redirects only to a registered post_logout_redirect_uri.
 *
 * Token behaviour verified here (oidc-provider's model): a grant without offline_access ends with the
 * session (its tokens are revoked at logout); a grant with offline_access is meant to outlive the
 * browser session (OIDC Core §11), so its refresh token keeps working after logout.
 */
import t from 'tap';
import * as client from 'openid-client';
import { cookieNames } from '../../src/oidc/provider.js';
import { pageSecurityHeaders } from '../../src/views/render.js';
import { Browser, discover, hiddenField, loginWithCode, oauthError, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { startServer, type TestServer } from '../helpers/server.js';

const POST_LOGOUT = 'http://127.0.0.1:9/';

function formAction(html: string, formId: string): string {
  const match = new RegExp(`<form id="${formId.replace('.', '\\.')}"[^>]*action="([^"]+)"`).exec(html);
  if (!match?.[1]) throw new Error(`no form ${formId} in page:\n${html.slice(0, 500)}`);
  return match[1];
}

/** A silent authorization request (prompt=none) in `browser`; returns the callback URL it redirects to. */
async function silentAuthorize(config: client.Configuration, browser: Browser, cookie?: string) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    prompt: 'none',
    state,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  let res = cookie ? await fetch(url, { headers: { cookie }, redirect: 'manual' }) : await browser.fetch(url);
  let location = new URL(res.headers.get('location') ?? '', url);
  // The provider may resume itself once (…/auth/:uid) before answering the client.
  for (let i = 0; i < 3 && !location.toString().startsWith(REDIRECT_URI); i++) {
    res = cookie ? await fetch(location, { headers: { cookie }, redirect: 'manual' }) : await browser.fetch(location);
    location = new URL(res.headers.get('location') ?? '', location);
  }
  return { callback: location, verifier, state };
}

async function openLogoutPage(server: TestServer, config: client.Configuration, browser: Browser, idToken: string) {
  const url = client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT, state: 'bye' });
  const page = await browser.fetch(url);
  const html = await page.text();
  return { page, html, xsrf: hiddenField(html, 'xsrf'), action: new URL(formAction(html, 'op.logoutForm'), server.issuer) };
}

t.test('RP-initiated logout', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  await seedUser(server);
  const names = cookieNames(false);

  t.test('logout=yes: session destroyed, cookie cleared, redirect to the registered URI', async (t) => {
    const offline = await discover(server, await seedClient(server));
    const online = await discover(server, await seedClient(server));
    const browser = new Browser();
    const a = await loginWithCode(server, offline, { browser, scope: 'openid offline_access' });
    const b = await loginWithCode(server, online, { browser, scope: 'openid' });
    t.ok(a.tokens.refresh_token, 'offline client has a refresh token');
    t.equal(b.tokens.refresh_token, undefined, 'online client has none');
    t.ok(browser.jar.has(names.session), 'session cookie set');
    const sessionCookie = browser.jar.header();

    const silent = await silentAuthorize(online, browser);
    t.ok(silent.callback.searchParams.get('code'), 'before logout, prompt=none succeeds (a live session)');

    const logout = await openLogoutPage(server, offline, browser, a.tokens.id_token!);
    t.equal(logout.page.status, 200, 'confirmation page');
    t.match(logout.page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, 'not frameable');
    t.equal(logout.page.headers.get('content-security-policy'), pageSecurityHeaders['content-security-policy'], "the provider's page: the same policy as ours");
    t.equal(logout.page.headers.get('cache-control'), 'no-store', "the provider's page is not cached");
    t.match(logout.html, 'Sign out?');

    const confirmed = await browser.postForm(logout.action, { xsrf: logout.xsrf, logout: 'yes' });
    t.equal(confirmed.status, 303);
    const target = new URL(confirmed.headers.get('location') ?? 'http://invalid/');
    t.equal(`${target.origin}${target.pathname}`, POST_LOGOUT, 'redirects to post_logout_redirect_uri');
    t.equal(target.searchParams.get('state'), 'bye', 'with the state');
    t.notOk(browser.jar.has(names.session), 'session cookie cleared');

    const after = await silentAuthorize(online, browser);
    const afterError = await oauthError(client.authorizationCodeGrant(online, after.callback, { pkceCodeVerifier: after.verifier, expectedState: after.state }));
    t.equal(afterError.error, 'login_required', 'prompt=none: login_required');

    const replayed = await silentAuthorize(online, new Browser(), sessionCookie);
    const replayedError = await oauthError(
      client.authorizationCodeGrant(online, replayed.callback, { pkceCodeVerifier: replayed.verifier, expectedState: replayed.state }),
    );
    t.equal(replayedError.error, 'login_required', 'the old session cookie replayed: login_required (destroyed server-side)');

    t.equal((await client.tokenIntrospection(online, b.tokens.access_token)).active, false, 'session-bound grant: access token revoked');
    t.equal((await client.tokenIntrospection(offline, a.tokens.refresh_token!)).active, true, 'offline_access grant: refresh token survives');
    const refreshed = await client.refreshTokenGrant(offline, a.tokens.refresh_token!);
    t.ok(refreshed.access_token, 'offline_access refresh still works after logout');
  });

  t.test('"No, stay signed in": the session stays; only this client is signed out', async (t) => {
    const first = await discover(server, await seedClient(server));
    const second = await discover(server, await seedClient(server));
    const browser = new Browser();
    const { tokens } = await loginWithCode(server, first, { browser, scope: 'openid' });
    await loginWithCode(server, second, { browser, scope: 'openid' });
    const logout = await openLogoutPage(server, first, browser, tokens.id_token!);
    const declined = await browser.postForm(logout.action, { xsrf: logout.xsrf });
    t.equal(declined.status, 303);
    t.ok(browser.jar.has(names.session), 'session cookie kept');
    const other = await silentAuthorize(second, browser);
    t.ok(other.callback.searchParams.get('code'), 'the other client: prompt=none still succeeds (session alive)');
    // oidc-provider drops the requesting client's authorization from the session and revokes its
    // session-bound grant, so that client alone needs the user again.
    const same = await silentAuthorize(first, browser);
    t.equal(same.callback.searchParams.get('code'), null, 'the requesting client: no silent code');
    t.equal(same.callback.searchParams.get('error'), 'consent_required', 'the requesting client: consent_required');
    t.equal((await client.tokenIntrospection(first, tokens.access_token)).active, false, "the requesting client's access token is revoked");
  });

  t.test('the confirmation needs its xsrf token', async (t) => {
    const config = await discover(server, await seedClient(server));
    const browser = new Browser();
    const { tokens } = await loginWithCode(server, config, { browser, scope: 'openid' });
    const logout = await openLogoutPage(server, config, browser, tokens.id_token!);
    for (const xsrf of [undefined, 'forged']) {
      const res = await browser.postForm(logout.action, xsrf === undefined ? { logout: 'yes' } : { xsrf, logout: 'yes' });
      t.equal(res.status, 400, `${xsrf ?? 'missing'} xsrf: 400`);
      t.equal(res.headers.get('location'), null, 'no redirect');
    }
    t.ok(browser.jar.has(names.session), 'session cookie kept');
    const silent = await silentAuthorize(config, browser);
    t.ok(silent.callback.searchParams.get('code'), 'session still alive');
  });

  t.test('an unregistered post_logout_redirect_uri is refused without a redirect', async (t) => {
    const config = await discover(server, await seedClient(server));
    const browser = new Browser();
    const { tokens } = await loginWithCode(server, config, { browser, scope: 'openid' });
    for (const uri of ['https://attacker.example/', 'http://127.0.0.1:9/other', 'http://127.0.0.1:10/']) {
      const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: uri });
      const res = await browser.fetch(url);
      const html = await res.text();
      t.equal(res.status, 400, `${uri}: 400`);
      t.equal(res.headers.get('location'), null, `${uri}: no redirect`);
      t.notMatch(html, uri, `${uri}: not echoed into the page`);
    }
    // Without id_token_hint or client_id nobody can say whose URI it is: it is ignored, never redirected to.
    const bare = await browser.fetch(`${server.issuer}/session/end?post_logout_redirect_uri=${encodeURIComponent(POST_LOGOUT)}`);
    const bareHtml = await bare.text();
    t.equal(bare.headers.get('location'), null, 'no redirect from the end-session page');
    const confirmed = await browser.postForm(new URL(formAction(bareHtml, 'op.logoutForm'), server.issuer), { xsrf: hiddenField(bareHtml, 'xsrf'), logout: 'yes' });
    const location = new URL(confirmed.headers.get('location') ?? '', server.issuer);
    t.equal(location.origin, server.origin, "after confirming: the provider's own page, not the unverified URI");
    const done = await browser.fetch(location);
    t.match(await done.text(), 'You have been signed out.');
  });
});
