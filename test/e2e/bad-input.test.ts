/**
 * Hostile and malformed input at the authorization, token and login endpoints (RFC 9700 §2.1, §4.1; RFC 6749 §10):
 * exact redirect URIs and no redirect to an unverified one, PKCE S256 only, single-use short-lived codes,
 * no implicit or password grant, OAuth error JSON for broken token requests, generic login failures,
 * CSRF on the login form, 303 after a login POST.
 */
import t from 'tap';
import { and, eq } from 'drizzle-orm';
import * as client from 'openid-client';
import { oidcPayloads } from '../../src/db/schema/index.js';
import { createUserQueries } from '../../src/queries/users.js';
import {
  authorizeThroughForms,
  Browser,
  discover,
  hiddenField,
  oauthError,
  REDIRECT_URI,
  recordResponses,
  seedClient,
  seedUser,
  type SeededClient,
} from '../helpers/oidc.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const ALICE = { email: 'alice@example.com', password: TEST_PASSWORD };

/** The type of a subtest's `t` (the last overload of t.test takes only the callback). */
type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** An authorization URL built by hand: openid-client would not send most of these requests. */
function authUrl(server: TestServer, params: Record<string, string>): string {
  return `${server.issuer}/auth?${new URLSearchParams(params).toString()}`;
}

async function pkce() {
  const verifier = client.randomPKCECodeVerifier();
  return { verifier, challenge: await client.calculatePKCECodeChallenge(verifier) };
}

/** A request with a valid client and redirect URI must answer with an error page: 400, HTML, no Location. */
async function assertErrorPage(t: Test, url: string, error: string) {
  const res = await fetch(url, { redirect: 'manual' });
  const body = await res.text();
  t.equal(res.status, 400, 'HTTP 400');
  t.equal(res.headers.get('location'), null, 'no Location header');
  t.match(res.headers.get('content-type') ?? '', /text\/html/, 'an HTML error page');
  t.match(body, `Error: ${error}`, `names ${error}`);
  t.notMatch(body, REDIRECT_URI, 'the page does not link to the redirect URI');
  t.notMatch(body, /\bat [\w.<>]+ \(/, 'no stack trace');
}

/** Follows a valid authorization request to the callback without redeeming the code. */
async function codeFor(server: TestServer, config: client.Configuration, scope = 'openid offline_access') {
  const { verifier, challenge } = await pkce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    prompt: 'consent',
  });
  const callback = await authorizeThroughForms(server, url, ALICE);
  return { callback, verifier };
}

/** The redirect an authorization request answers with, parsed by openid-client as an error response. */
async function authorizationError(config: client.Configuration, url: string, expectedState?: string) {
  const res = await fetch(url, { redirect: 'manual' });
  const location = res.headers.get('location');
  if (res.status !== 303 || !location) throw new Error(`expected a redirect, got ${res.status}`);
  const callback = new URL(location);
  const failure = await oauthError(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: 'x'.repeat(43), expectedState }));
  return { callback, error: failure.error, description: failure.description };
}

t.test('bad input', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  await seedUser(server);
  const web: SeededClient = await seedClient(server);
  const webConfig = await discover(server, web);
  const spa: SeededClient = await seedClient(server, { token_endpoint_auth_method: 'none' });
  const spaConfig = await discover(server, spa);

  t.test('redirect_uri must match exactly; a mismatch never redirects', async (t) => {
    const { challenge } = await pkce();
    const base = { client_id: web.clientId, response_type: 'code', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256', state: 's' };
    const variants = [
      'https://attacker.example/callback',
      'http://127.0.0.1:9/callback/',
      'http://127.0.0.1:9/callback?x=1',
      'http://127.0.0.1:9/CALLBACK',
      'http://127.0.0.1:9/callback/../other',
      'http://127.0.0.1:10/callback',
      'http://localhost:9/callback',
      'https://127.0.0.1:9/callback',
    ];
    for (const redirect_uri of variants) {
      await t.test(redirect_uri, (t) => assertErrorPage(t, authUrl(server, { ...base, redirect_uri }), 'invalid_redirect_uri'));
    }
    await t.test('missing redirect_uri (no omission even with a single registered URI)', async (t) => {
      const res = await fetch(authUrl(server, base), { redirect: 'manual' });
      t.equal(res.status, 400);
      t.equal(res.headers.get('location'), null, 'no Location header');
    });
  });

  t.test('the loopback port exception applies to native clients only', async (t) => {
    const { challenge } = await pkce();
    const native = await seedClient(server, {
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/callback'],
      post_logout_redirect_uris: [],
    });
    const res = await fetch(
      authUrl(server, {
        client_id: native.clientId,
        redirect_uri: 'http://127.0.0.1:51234/callback',
        response_type: 'code',
        scope: 'openid',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      }),
      { redirect: 'manual' },
    );
    t.equal(res.status, 303, 'a native client may use any loopback port');
    t.match(res.headers.get('location') ?? '', /^\/oidc\/interaction\/|\/interaction\//, 'on to the login interaction');

    await t.test('a native client still cannot change host or path', (t) =>
      assertErrorPage(
        t,
        authUrl(server, {
          client_id: native.clientId,
          redirect_uri: 'http://127.0.0.1:51234/other',
          response_type: 'code',
          scope: 'openid',
          code_challenge: challenge,
          code_challenge_method: 'S256',
        }),
        'invalid_redirect_uri',
      ),
    );
  });

  t.test('unknown client_id: error page, no redirect', async (t) => {
    const { challenge } = await pkce();
    await assertErrorPage(
      t,
      authUrl(server, { client_id: 'no-such-client', redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' }),
      'invalid_client',
    );
    await t.test('missing client_id', async (t) => {
      const res = await fetch(authUrl(server, { redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid' }), { redirect: 'manual' });
      t.equal(res.status, 400);
      t.equal(res.headers.get('location'), null, 'no Location header');
    });
  });

  t.test('PKCE is required for public and confidential clients', async (t) => {
    for (const [name, seeded, config] of [
      ['public', spa, spaConfig],
      ['confidential', web, webConfig],
    ] as const) {
      const err = await authorizationError(
        config,
        authUrl(server, { client_id: seeded.clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid', state: 'st' }),
        'st',
      );
      t.equal(err.error, 'invalid_request', `${name}: no code_challenge is invalid_request`);
      t.match(err.description ?? '', /PKCE/, `${name}: names PKCE`);
      t.equal(err.callback.searchParams.get('iss'), server.issuer, `${name}: the error response carries iss`);
      t.equal(err.callback.searchParams.get('code'), null, `${name}: no code`);
    }
  });

  t.test('code_challenge_method=plain is refused', async (t) => {
    const verifier = client.randomPKCECodeVerifier();
    for (const [name, seeded, config] of [
      ['public', spa, spaConfig],
      ['confidential', web, webConfig],
    ] as const) {
      const err = await authorizationError(
        config,
        authUrl(server, {
          client_id: seeded.clientId,
          redirect_uri: REDIRECT_URI,
          response_type: 'code',
          scope: 'openid',
          code_challenge: verifier,
          code_challenge_method: 'plain',
        }),
      );
      t.equal(err.error, 'invalid_request', `${name}: plain refused`);
      t.equal(err.callback.searchParams.get('code'), null, `${name}: no code`);
    }
    const discovered = webConfig.serverMetadata().code_challenge_methods_supported;
    t.same(discovered, ['S256'], 'discovery advertises S256 only');
  });

  t.test('a wrong code_verifier at the token endpoint is invalid_grant', async (t) => {
    for (const [name, config] of [
      ['public', spaConfig],
      ['confidential', webConfig],
    ] as const) {
      const { callback } = await codeFor(server, config);
      const err = await oauthError(client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: client.randomPKCECodeVerifier() }));
      t.equal(err.error, 'invalid_grant', `${name}: wrong verifier`);
    }
    const { callback } = await codeFor(server, webConfig);
    // openid-client always sends the verifier it is given; send none by hand.
    const res = await fetch(`${server.issuer}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${web.clientId}:${web.clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code') ?? '', redirect_uri: REDIRECT_URI }),
    });
    t.equal(res.status, 400, 'a missing verifier is refused');
    t.equal(((await res.json()) as { error?: string }).error, 'invalid_grant');
  });

  t.test('a reused authorization code is invalid_grant and revokes what the first redemption issued', async (t) => {
    const { callback, verifier } = await codeFor(server, webConfig);
    const first = await client.authorizationCodeGrant(webConfig, callback, { pkceCodeVerifier: verifier });
    t.ok(first.access_token && first.refresh_token, 'first redemption issues tokens');
    t.equal((await client.tokenIntrospection(webConfig, first.access_token)).active, true, 'active before the replay');

    const second = await oauthError(client.authorizationCodeGrant(webConfig, callback, { pkceCodeVerifier: verifier }));
    t.equal(second.error, 'invalid_grant', 'second redemption refused');

    t.equal((await client.tokenIntrospection(webConfig, first.access_token)).active, false, 'first access token revoked');
    t.equal((await client.tokenIntrospection(webConfig, first.refresh_token!)).active, false, 'first refresh token revoked');
    t.equal((await oauthError(client.refreshTokenGrant(webConfig, first.refresh_token!))).error, 'invalid_grant', 'the refresh token no longer works');
  });

  t.test('an expired authorization code is invalid_grant', async (t) => {
    t.ok(server.config.ttl.authorizationCode <= 60, 'code lifetime at most 60 s');
    const { callback, verifier } = await codeFor(server, webConfig);
    const { db } = server.app.keryu.database;
    const codeRows = await db
      .select({ id: oidcPayloads.id, expiresAt: oidcPayloads.expiresAt })
      .from(oidcPayloads)
      .where(and(eq(oidcPayloads.model, 'AuthorizationCode'), eq(oidcPayloads.id, callback.searchParams.get('code') ?? '')));
    const row = codeRows[0];
    t.ok(row, 'the code is stored under its value');
    if (row?.expiresAt) t.ok(row.expiresAt.getTime() - Date.now() <= 60_000, 'stored expiry at most 60 s away');

    const expired = await db
      .update(oidcPayloads)
      .set({ expiresAt: new Date(Date.now() - 1000) })
      .where(and(eq(oidcPayloads.model, 'AuthorizationCode'), eq(oidcPayloads.id, callback.searchParams.get('code') ?? '')))
      .returning({ id: oidcPayloads.id });
    t.equal(expired.length, 1, 'code expired in the database');
    const err = await oauthError(client.authorizationCodeGrant(webConfig, callback, { pkceCodeVerifier: verifier }));
    t.equal(err.error, 'invalid_grant');
  });

  t.test('implicit and hybrid response types are refused', async (t) => {
    t.same(webConfig.serverMetadata().response_types_supported, ['code'], 'discovery advertises code only');
    const { challenge } = await pkce();
    for (const response_type of ['token', 'id_token', 'id_token token', 'code id_token', 'code token']) {
      const res = await fetch(
        authUrl(server, {
          client_id: web.clientId,
          redirect_uri: REDIRECT_URI,
          response_type,
          scope: 'openid',
          nonce: 'n',
          code_challenge: challenge,
          code_challenge_method: 'S256',
        }),
        { redirect: 'manual' },
      );
      const location = new URL(res.headers.get('location') ?? 'http://invalid/');
      const params = new URLSearchParams(location.hash.slice(1) || location.search.slice(1));
      t.equal(params.get('error'), 'unsupported_response_type', `${response_type}: unsupported_response_type`);
      t.notOk(params.get('access_token') || params.get('id_token') || params.get('code'), `${response_type}: no token or code`);
    }
  });

  t.test('grant_type=password is unsupported_grant_type', async (t) => {
    const err = await oauthError(client.genericGrantRequest(webConfig, 'password', { username: ALICE.email, password: ALICE.password, scope: 'openid' }));
    t.equal(err.error, 'unsupported_grant_type');
    t.equal(err.status, 400);
    t.notOk(webConfig.serverMetadata().grant_types_supported?.includes('password'), 'not advertised');
    const implicit = await oauthError(client.genericGrantRequest(webConfig, 'implicit', {}));
    t.equal(implicit.error, 'unsupported_grant_type', 'grant_type=implicit too');
  });

  t.test('malformed token requests get OAuth error JSON, never a stack trace', async (t) => {
    const basic = `Basic ${Buffer.from(`${web.clientId}:${web.clientSecret}`).toString('base64')}`;
    const cases: Array<[string, RequestInit, string]> = [
      ['JSON body', { headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials' }) }, 'invalid_request'],
      ['text body', { headers: { 'content-type': 'text/plain' }, body: 'grant_type=client_credentials' }, 'invalid_request'],
      ['no content type', { body: new Uint8Array(Buffer.from('grant_type=refresh_token')) }, 'invalid_request'],
      ['missing grant_type', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'scope=openid' }, 'invalid_request'],
      ['empty body', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '' }, 'invalid_request'],
      ['duplicate grant_type', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&grant_type=refresh_token' }, 'invalid_request'],
      ['broken percent-encoding', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=%E0%A4%A&x=%%%' }, 'unsupported_grant_type'],
      [
        'huge body (2 MB)',
        { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=refresh_token&refresh_token=${'a'.repeat(2_000_000)}` },
        'invalid_request',
      ],
      ['missing refresh_token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token' }, 'invalid_request'],
      ['garbage refresh_token', { headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&refresh_token=%00%ff' }, 'invalid_grant'],
    ];
    for (const [name, init, error] of cases) {
      const res = await fetch(`${server.issuer}/token`, { method: 'POST', ...init, headers: { authorization: basic, ...(init.headers as Record<string, string>) } });
      const text = await res.text();
      t.equal(res.status, 400, `${name}: 400`);
      t.match(res.headers.get('content-type') ?? '', /^application\/json/, `${name}: JSON`);
      t.match(res.headers.get('cache-control') ?? '', /no-store/, `${name}: no-store`);
      const body = JSON.parse(text) as Record<string, unknown>;
      t.equal(body.error, error, `${name}: ${error}`);
      t.notMatch(text, /\bat [\w.<>]+ \(|node_modules|\.js:\d+/, `${name}: no stack trace`);
      t.ok(Object.keys(body).every((k) => k === 'error' || k === 'error_description'), `${name}: only error and error_description`);
    }
  });

  t.test('NUL characters (which PostgreSQL cannot store) are client errors, not 500s', async (t) => {
    const basic = `Basic ${Buffer.from(`${web.clientId}:${web.clientSecret}`).toString('base64')}`;
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const post = (path: string, body: string, headers: Record<string, string> = { ...form, authorization: basic }) =>
      fetch(`${server.issuer}${path}`, { method: 'POST', headers, body });
    const expectJson = async (name: string, res: Response, status: number, error?: string) => {
      const text = await res.text();
      t.equal(res.status, status, `${name}: ${status}`);
      if (error) t.equal((JSON.parse(text) as { error?: string }).error, error, `${name}: ${error}`);
    };
    await expectJson('refresh_token', await post('/token', 'grant_type=refresh_token&refresh_token=a%00b'), 400, 'invalid_grant');
    await expectJson(
      'code',
      await post('/token', `grant_type=authorization_code&code=a%00b&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_verifier=${'a'.repeat(43)}`),
      400,
      'invalid_grant',
    );
    await expectJson('client_id', await post('/token', 'grant_type=client_credentials&client_id=a%00b&client_secret=x', form), 401, 'invalid_client');
    await expectJson('introspection', await post('/token/introspection', 'token=a%00b'), 200);
    await expectJson('revocation', await post('/token/revocation', 'token=a%00b'), 200);
    await expectJson('userinfo', await post('/me', 'access_token=a%00b', form), 401, 'invalid_token');
    await expectJson('device authorization', await post('/device/auth', 'client_id=a%00b', form), 401, 'invalid_client');

    const unknownClient = await fetch(authUrl(server, { client_id: 'a\u0000b', redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid' }), { redirect: 'manual' });
    t.equal(unknownClient.status, 400, 'authorization with a NUL client_id: 400');
    t.equal(unknownClient.headers.get('location'), null, 'and no redirect');

    const { challenge } = await pkce();
    for (const param of ['state', 'nonce', 'login_hint']) {
      const err = await authorizationError(
        webConfig,
        authUrl(server, { client_id: web.clientId, redirect_uri: REDIRECT_URI, response_type: 'code', scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256', [param]: 'a\u0000b' }),
        param === 'state' ? 'a\u0000b' : undefined,
      );
      t.equal(err.error, 'invalid_request', `authorization with a NUL in ${param}: invalid_request to the client`);
    }
  });

  t.test('token responses and errors from openid-client calls carry Cache-Control: no-store', async (t) => {
    const config = await discover(server, web);
    const seen = recordResponses(config);
    const { callback, verifier } = await codeFor(server, webConfig);
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier });
    await client.refreshTokenGrant(config, tokens.refresh_token!);
    await oauthError(client.refreshTokenGrant(config, 'garbage'));
    const tokenResponses = seen.filter((s) => s.url.endsWith('/token'));
    t.equal(tokenResponses.length, 3);
    for (const { response } of tokenResponses) t.match(response.headers.get('cache-control') ?? '', /no-store/, `${response.status}: no-store`);
  });

  t.test('login form', async (t) => {
    /** Opens a login page for a fresh authorization request in `browser`. */
    async function openLogin(browser = new Browser()) {
      const { challenge } = await pkce();
      const url = client.buildAuthorizationUrl(webConfig, { redirect_uri: REDIRECT_URI, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256' });
      const start = await browser.fetch(url);
      const interactionUrl = new URL(start.headers.get('location') ?? '', url);
      const page = await browser.fetch(interactionUrl);
      const html = await page.text();
      const uid = interactionUrl.pathname.split('/').pop() ?? '';
      return { browser, uid, html, page, csrf: hiddenField(html, 'csrf'), action: `${server.origin}/interaction/${uid}/login` };
    }

    await t.test('the login page is not frameable and not cached', async (t) => {
      const { page, html } = await openLogin();
      t.equal(page.status, 200);
      t.match(page.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      t.equal(page.headers.get('x-frame-options'), 'DENY');
      t.match(page.headers.get('cache-control') ?? '', /no-store/);
      t.match(html, 'name="csrf"', 'the form carries a CSRF token');
    });

    await t.test('wrong password, unknown email and disabled account look the same', async (t) => {
      const disabled = await seedUser(server, 'mallory@example.com');
      await createUserQueries(server.app.keryu.database.db).updateUser(disabled.id, { disabled: true });
      const login = await openLogin();

      const attempt = async (email: string, password: string) => {
        const res = await login.browser.postForm(login.action, { csrf: login.csrf, email, password });
        const body = await res.text();
        const normalized = body.replaceAll(`value="${email}"`, 'value="EMAIL"').replaceAll(login.csrf, 'CSRF');
        return { res, body, normalized };
      };
      const wrongPassword = await attempt('alice@example.com', 'not the right password');
      const unknown = await attempt('nobody@example.com', 'not the right password');
      const locked = await attempt('mallory@example.com', TEST_PASSWORD);

      t.equal(wrongPassword.res.status, 401, 'wrong password: 401');
      t.equal(unknown.res.status, wrongPassword.res.status, 'unknown email: same status');
      t.equal(locked.res.status, wrongPassword.res.status, 'disabled account: same status');
      t.match(wrongPassword.body, 'The email or password is incorrect.', 'a generic message');
      t.equal(unknown.normalized, wrongPassword.normalized, 'unknown email: same body apart from the echoed email');
      t.equal(locked.normalized, wrongPassword.normalized, 'disabled account: same body apart from the echoed email');
      t.match(unknown.body, 'value="nobody@example.com"', 'the email is echoed back into the form');
      for (const header of ['content-type', 'cache-control', 'content-security-policy']) {
        t.equal(unknown.res.headers.get(header), wrongPassword.res.headers.get(header), `unknown email: same ${header}`);
      }
      t.notMatch(unknown.body, /not found|no such|unknown|disabled|locked/i, 'no hint that the account does not exist');
      const nul = await attempt('a\u0000b@example.com', 'not the right password');
      t.equal(nul.res.status, wrongPassword.res.status, 'an email with a NUL character: the same generic failure, not a 500');
    });

    await t.test('a login POST without or with a wrong CSRF token is 403', async (t) => {
      const login = await openLogin();
      const missing = await login.browser.postForm(login.action, { email: ALICE.email, password: ALICE.password });
      t.equal(missing.status, 403, 'no csrf field');
      t.equal(missing.headers.get('location'), null);
      const wrong = await login.browser.postForm(login.action, { csrf: `${login.csrf.slice(0, -1)}${login.csrf.endsWith('A') ? 'B' : 'A'}`, ...ALICE });
      t.equal(wrong.status, 403, 'wrong csrf value');
      const other = await openLogin();
      const crossed = await login.browser.postForm(login.action, { csrf: other.csrf, ...ALICE });
      t.equal(crossed.status, 403, "another interaction's csrf value");
      const json = await login.browser.fetch(login.action, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ALICE) });
      t.equal(json.status, 403, 'a JSON body without csrf');

      // None of the refused attempts consumed the interaction: the real form still signs in.
      const ok = await login.browser.postForm(login.action, { csrf: login.csrf, ...ALICE });
      t.equal(ok.status, 303);
    });

    await t.test('a successful login answers 303, never 307', async (t) => {
      const login = await openLogin();
      const res = await login.browser.postForm(login.action, { csrf: login.csrf, ...ALICE });
      t.equal(res.status, 303);
      t.ok(res.headers.get('location'), 'with a Location');
      t.match(res.headers.get('cache-control') ?? '', /no-store/);
      // The consent POST answers 303 too.
      const resumed = await login.browser.fetch(new URL(res.headers.get('location') ?? '', login.action));
      const consentUrl = new URL(resumed.headers.get('location') ?? '', login.action);
      const consentPage = await login.browser.fetch(consentUrl);
      const csrf = hiddenField(await consentPage.text(), 'csrf');
      const consentUid = consentUrl.pathname.split('/').pop() ?? '';
      const confirm = await login.browser.postForm(`${server.origin}/interaction/${consentUid}/confirm`, { csrf });
      t.equal(confirm.status, 303, 'consent POST: 303');
    });
  });
});
