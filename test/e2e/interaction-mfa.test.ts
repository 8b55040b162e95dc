/**
 * The login interaction's further steps, at the HTTP level (a cookie-keeping fetch agent): while a second
 * factor is pending nothing signs the browser in (no consent, no code at the callback, no session for the
 * account, nothing at the token endpoint); every step form needs its CSRF token; malformed bodies get a 4xx
 * page, never a 500; five wrong codes end the login; and an SSO session that no longer satisfies the
 * account's MFA requirement (a factor enrolled, or a role requiring MFA, after it began) is asked to sign
 * in again by the interaction policy.
 */
import { and, eq } from 'drizzle-orm';
import { generate } from 'otplib';
import * as client from 'openid-client';
import t from 'tap';
import { auditEvents, oidcPayloads, users } from '../../src/db/schema/index.js';
import { manualClock, NO_RATE_LIMITS } from '../helpers/auth.js';
import { authorizationRequest, authorizeThroughForms, Browser, discover, hiddenField, oauthError, REDIRECT_URI, seedClient, seedUser } from '../helpers/oidc.js';
import { enrolTotpFor } from '../helpers/mfa.js';
import { operator } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

type UserRow = Awaited<ReturnType<typeof seedUser>>;

interface Page {
  url: string;
  status: number;
  html: string;
  headers: Headers;
}

/** Follows redirects from `url` until a page answers or the browser is sent to the relying party. */
async function follow(browser: Browser, url: string, max = 12): Promise<Page> {
  let current = url;
  for (let i = 0; i < max; i++) {
    if (current.startsWith(REDIRECT_URI)) return { url: current, status: 0, html: '', headers: new Headers() };
    const res = await browser.fetch(current);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer();
      current = new URL(location, current).toString();
      continue;
    }
    return { url: current, status: res.status, html: await res.text(), headers: res.headers };
  }
  throw new Error('too many redirects');
}

/** Submits a form and follows where it leads (a 303 to the next page, or a page rendered by the POST). */
async function submit(browser: Browser, origin: string, path: string, fields: Record<string, string>): Promise<Page & { postStatus: number }> {
  const res = await browser.postForm(`${origin}${path}`, fields);
  const location = res.headers.get('location');
  if (res.status === 303 && location) {
    await res.arrayBuffer();
    return { ...(await follow(browser, new URL(location, origin).toString())), postStatus: 303 };
  }
  return { url: `${origin}${path}`, status: res.status, html: await res.text(), headers: res.headers, postStatus: res.status };
}

const alertOf = (html: string) => /role="alert">([^<]*)</.exec(html)?.[1]?.trim();

t.test('the interaction after the password', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: NO_RATE_LIMITS, clock });
  t.teardown(() => server.close());
  const { factors } = server.app.keryu.services;
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);

  /** A user with an authenticator app; `totp()` is the code it shows now. */
  async function totpUser(email: string) {
    const user = await seedUser(server, email);
    return { user, totp: await enrolTotpFor(server, user, clock) };
  }

  const authorization = async (extra: Record<string, string> = {}) => {
    const request = await authorizationRequest(config, { scope: 'openid email', ...extra });
    return { ...request, url: request.url.toString() };
  };

  /** Starts an authorization and passes the password step; answers the interaction and its step page. */
  async function pastPassword(browser: Browser, email: string) {
    const request = await authorization();
    const loginPage = await follow(browser, request.url);
    const uid = new URL(loginPage.url).pathname.split('/').pop() ?? '';
    const csrf = hiddenField(loginPage.html, 'csrf');
    const res = await browser.postForm(`${server.origin}/interaction/${uid}/login`, { csrf, email, password: TEST_PASSWORD });
    if (res.status !== 303) throw new Error(`password step answered ${res.status}`);
    const location = new URL(res.headers.get('location') ?? '', server.origin);
    return { request, uid, csrf, location, page: await follow(browser, location.toString()) };
  }

  async function artefactsOf(user: UserRow) {
    return server.db.database.db.select({ model: oidcPayloads.model }).from(oidcPayloads).where(eq(oidcPayloads.accountId, user.id));
  }

  async function loginEvents(user: UserRow) {
    await server.app.keryu.services.audit.flush();
    return server.db.database.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.type, 'login'), eq(auditEvents.outcome, 'success'), eq(auditEvents.subjectId, user.id)));
  }

  t.test('nothing signs the browser in while the second factor is pending', async (t) => {
    const { user, totp } = await totpUser('pending@example.com');
    const browser = new Browser();
    const { request, uid, csrf, location, page } = await pastPassword(browser, 'pending@example.com');

    t.equal(location.pathname, `/interaction/${uid}`, 'the password POST answers 303 back to the interaction');
    t.equal(page.status, 200, 'which shows the next step');
    t.match(page.html, '<label for="code">Code</label>', 'a field labelled Code');
    t.match(page.html, 'autocomplete="one-time-code"');
    t.match(page.html, 'inputmode="numeric"');
    t.match(page.html, '>Verify</button>', 'a Verify button');
    t.match(page.html, 'authenticator app', 'says where the code comes from');
    t.notMatch(page.html, 'name="password"', 'not the password form again');
    t.same(await artefactsOf(user), [], 'no session, grant, code or token exists for the account');

    // (a) consent cannot be given while the login is not done.
    const consent = await browser.postForm(`${server.origin}/interaction/${uid}/confirm`, { csrf });
    t.equal(consent.status, 403, 'consent is refused');
    t.equal(consent.headers.get('location'), null, 'and redirects nowhere');

    // (c) there is no code to redeem; a made-up one fails.
    const forged = new URL(REDIRECT_URI);
    forged.searchParams.set('code', 'made-up-code');
    forged.searchParams.set('state', request.state);
    forged.searchParams.set('iss', server.issuer);
    const failure = await oauthError(client.authorizationCodeGrant(config, forged, { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce }));
    t.equal(failure.error, 'invalid_grant', 'the token endpoint refuses any code');

    // Another browser (no interaction cookie) cannot use this interaction's challenge.
    const stranger = await new Browser().postForm(`${server.origin}/interaction/${uid}/verify`, { csrf, method: 'totp', code: await totp() });
    t.equal(stranger.status, 400, 'without the interaction cookie the step is not reachable');

    // (b) the provider's resume URL carries no login: it only starts a new interaction.
    const resumed = await follow(browser, `${server.issuer}/auth/${uid}`);
    t.notOk(resumed.url.startsWith(REDIRECT_URI), 'resuming the authorization does not reach the callback');
    t.match(new URL(resumed.url).pathname, /^\/interaction\/[\w-]+$/, 'it lands on an interaction page');
    t.not(new URL(resumed.url).pathname, `/interaction/${uid}`, 'a new one');
    t.match(resumed.html, 'name="password"', 'which asks for the password');
    t.same(await artefactsOf(user), [], 'still nothing for the account');
    t.same(await loginEvents(user), [], 'and no login was recorded');

    // The whole login, done properly, still works.
    const next = new URL(resumed.url).pathname.split('/').pop() ?? '';
    const nextCsrf = hiddenField(resumed.html, 'csrf');
    const codePage = await submit(browser, server.origin, `/interaction/${next}/login`, { csrf: nextCsrf, email: 'pending@example.com', password: TEST_PASSWORD });
    t.match(codePage.html, '<label for="code">Code</label>');
    const consentPage = await submit(browser, server.origin, `/interaction/${next}/verify`, { csrf: nextCsrf, method: 'totp', code: await totp() });
    t.equal(consentPage.postStatus, 303, 'the right code answers 303');
    t.match(consentPage.html, 'Allow access?', 'and consent follows');
    const consentUid = new URL(consentPage.url).pathname.split('/').pop() ?? '';
    const callback = await submit(browser, server.origin, `/interaction/${consentUid}/confirm`, { csrf: hiddenField(consentPage.html, 'csrf') });
    t.ok(callback.url.startsWith(REDIRECT_URI), 'the callback is reached');
    // The state of the first request: the resumed authorization kept its parameters.
    const tokens = await client.authorizationCodeGrant(config, new URL(callback.url), { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
    t.match(tokens.claims()?.amr, ['pwd', 'otp', 'mfa'], 'the ID token says: password, one-time code, multi-factor');
    const events = await loginEvents(user);
    t.equal(events.length, 1, 'exactly one login success event');
    t.match(events[0]?.details, { method: 'pwd+otp+mfa', channel: 'form' });
  });

  t.test('every step form needs its CSRF token, and malformed input gets a page, not a 500', async (t) => {
    await totpUser('csrf@example.com');
    const browser = new Browser();
    const { uid, csrf } = await pastPassword(browser, 'csrf@example.com');
    const factorId = '00000000-0000-4000-8000-000000000000';
    const forms: Array<[string, Record<string, string>]> = [
      ['verify', { method: 'totp', code: '123456' }],
      ['resend', { method: 'email' }],
      ['enroll/totp', {}],
      ['enroll/sms', { phone: '+14155552671' }],
      ['enroll/email', { email: 'csrf@example.com' }],
      ['enroll/totp/confirm', { factor_id: factorId, code: '123456' }],
      ['enroll/sms/confirm', { factor_id: factorId, code: '123456' }],
    ];
    for (const [path, fields] of forms) {
      const missing = await browser.postForm(`${server.origin}/interaction/${uid}/${path}`, fields);
      t.equal(missing.status, 403, `${path}: no CSRF token → 403`);
      t.match(await missing.text(), 'Request refused');
      const wrong = await browser.postForm(`${server.origin}/interaction/${uid}/${path}`, { ...fields, csrf: `${csrf.slice(0, -2)}xx` });
      t.equal(wrong.status, 403, `${path}: a wrong CSRF token → 403`);
      await wrong.arrayBuffer();
      const other = await browser.postForm(`${server.origin}/interaction/${uid}/${path}`, { ...fields, csrf: [csrf, csrf] as unknown as string });
      t.equal(other.status, 403, `${path}: a CSRF field sent twice → 403`);
      await other.arrayBuffer();
    }

    const post = (path: string, body: string, type = 'application/x-www-form-urlencoded') =>
      browser.fetch(`${server.origin}/interaction/${uid}/${path}`, { method: 'POST', headers: { 'content-type': type }, body });
    const form = (fields: Record<string, string | string[]>) => {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) params.append(k, one);
      return params.toString();
    };
    const cases: Array<[string, string, string, string?]> = [
      ['no code', 'verify', form({ csrf, method: 'totp' })],
      ['an empty code', 'verify', form({ csrf, method: 'totp', code: '   ' })],
      ['an unknown method', 'verify', form({ csrf, method: 'carrier-pigeon', code: '123456' })],
      ['a method sent twice', 'verify', form({ csrf, method: ['totp', 'sms'], code: '123456' })],
      ['a huge code', 'verify', form({ csrf, method: 'totp', code: '1'.repeat(500) })],
      ['a method this step does not offer', 'verify', form({ csrf, method: 'sms', code: '123456' })],
      ['resend for TOTP', 'resend', form({ csrf, method: 'totp' })],
      ['resend for a method not offered', 'resend', form({ csrf, method: 'sms' })],
      ['enrolment when the step is not enrolment', 'enroll/totp', form({ csrf })],
      ['a phone number that is not one', 'enroll/sms', form({ csrf, phone: 'call me' })],
      ['an address that is not one', 'enroll/email', form({ csrf, email: 'not an address' })],
      ['a factor id that is not one', 'enroll/totp/confirm', form({ csrf, factor_id: 'nope', code: '123456' })],
      ['someone else\'s factor', 'enroll/sms/confirm', form({ csrf, factor_id: factorId, code: '123456' })],
      ['an unknown factor type', 'enroll/carrier-pigeon/confirm', form({ csrf, factor_id: factorId, code: '123456' })],
      ['JSON instead of a form', 'verify', JSON.stringify({ csrf, method: 'totp', code: 123456 }), 'application/json'],
      ['broken JSON', 'verify', '{"csrf":', 'application/json'],
      ['plain text', 'verify', 'hello', 'text/plain'],
      ['a body too large', 'verify', form({ csrf, method: 'totp', code: '1', pad: 'x'.repeat(10_000) })],
      ['percent-encoding that is not', 'verify', 'csrf=%E0%A4%A&method=totp&code=1'],
    ];
    for (const [what, path, body, type] of cases) {
      const res = await post(path, body, type);
      const html = await res.text();
      t.ok(res.status >= 400 && res.status < 500, `${what}: ${res.status} is a 4xx`);
      t.match(res.headers.get('content-type') ?? '', /text\/html/, `${what}: an HTML page`);
      t.notMatch(html, /\bat [\w.<>]+ \(/, `${what}: no stack trace`);
    }
    t.match(alertOf((await (await post('verify', form({ csrf, method: 'totp' }))).text()) ?? ''), 'Enter the code.', 'a missing code says so');

    const odd = await browser.fetch(`${server.origin}/interaction/${uid}?method=sms&method=totp&enroll=fax&factor=x&sent=yes`);
    t.equal(odd.status, 200, 'a strange query string is ignored');
    t.match(await odd.text(), '<label for="code">Code</label>');
  });

  t.test('five wrong codes end the login', async (t) => {
    const { totp } = await totpUser('guess@example.com');
    const browser = new Browser();
    const { uid, csrf } = await pastPassword(browser, 'guess@example.com');
    const right = await totp();
    const wrong = `${(Number(right[0]) + 5) % 10}${right.slice(1)}`;
    for (let i = 1; i <= 4; i++) {
      const res = await browser.postForm(`${server.origin}/interaction/${uid}/verify`, { csrf, method: 'totp', code: wrong });
      t.equal(res.status, 401, `wrong code ${i}: 401`);
      const html = await res.text();
      t.equal(alertOf(html), `That code is not correct. ${5 - i === 1 ? 'You have 1 more try.' : `You have ${5 - i} more tries.`}`, `wrong code ${i}: says so in plain words`);
      t.match(html, '<label for="code">Code</label>', 'and asks again');
    }
    const fifth = await browser.postForm(`${server.origin}/interaction/${uid}/verify`, { csrf, method: 'totp', code: wrong });
    t.equal(fifth.status, 429, 'the fifth wrong code ends the login');
    const ended = await fifth.text();
    t.match(ended, 'Too many wrong codes');
    t.match(ended, 'start again', 'the page says to start again');
    t.match(ended, `action="/interaction/${uid}/abort"`, 'with a way back to the application');

    const late = await browser.postForm(`${server.origin}/interaction/${uid}/verify`, { csrf, method: 'totp', code: right });
    t.equal(late.status, 429, 'the right code no longer helps');
    t.match(await late.text(), 'start again');
    const again = await browser.fetch(`${server.origin}/interaction/${uid}`);
    t.equal(again.status, 429, 'the page stays ended');
    await again.arrayBuffer();

    const back = await browser.postForm(`${server.origin}/interaction/${uid}/abort`, { csrf });
    t.equal(back.status, 303);
    const callback = await follow(browser, new URL(back.headers.get('location') ?? '', server.origin).toString());
    t.ok(callback.url.startsWith(REDIRECT_URI), 'back to the application');
    t.equal(new URL(callback.url).searchParams.get('error'), 'access_denied', 'with access_denied, and no code');
    t.equal(new URL(callback.url).searchParams.get('code'), null);
  });

  t.test('an expired step shows the password page again, and a new password starts over', async (t) => {
    const { totp } = await totpUser('slow@example.com');
    const browser = new Browser();
    const { uid, csrf } = await pastPassword(browser, 'slow@example.com');
    clock.advance(301);
    const late = await submit(browser, server.origin, `/interaction/${uid}/verify`, { csrf, method: 'totp', code: await totp() });
    t.equal(late.status, 400, 'a code after the step expired: 400');
    t.equal(alertOf(late.html), 'This sign-in took too long and has expired. Enter your password again.', 'in plain words');
    t.match(late.html, 'name="password"', 'with the password form');
    const page = await follow(browser, `${server.origin}/interaction/${uid}`);
    t.equal(page.status, 200);
    t.match(page.html, 'name="password"', 'the interaction shows the password page again');

    const again = await submit(browser, server.origin, `/interaction/${uid}/login`, { csrf, email: 'slow@example.com', password: TEST_PASSWORD });
    t.match(again.html, '<label for="code">Code</label>', 'a new password attempt opens a new step');
    const done = await submit(browser, server.origin, `/interaction/${uid}/verify`, { csrf, method: 'totp', code: await totp() });
    t.match(done.html, 'Allow access?', 'which completes');
  });

  t.test('an account that must reset its password is told so after the right password', async (t) => {
    const user = await seedUser(server, 'reset@example.com');
    await server.db.database.db.update(users).set({ passwordResetRequired: true }).where(eq(users.id, user.id));
    const browser = new Browser();
    const loginPage = await follow(browser, (await authorization()).url);
    const uid = new URL(loginPage.url).pathname.split('/').pop() ?? '';
    const res = await browser.postForm(`${server.origin}/interaction/${uid}/login`, { csrf: hiddenField(loginPage.html, 'csrf'), email: 'reset@example.com', password: TEST_PASSWORD });
    t.equal(res.status, 403);
    const html = await res.text();
    t.match(html, 'Reset your password to sign in');
    t.notMatch(html, /<a /, 'and links nowhere');
    t.same(await artefactsOf(user), [], 'nothing signs the account in');
  });

  t.test('an SSO session that no longer satisfies MFA signs in again', async (t) => {
    const user = await seedUser(server, 'sso@example.com');
    const browser = new Browser();
    const first = await authorization({ prompt: 'consent' });
    const callback = await authorizeThroughForms(server, first.url, { email: 'sso@example.com', password: TEST_PASSWORD }, browser);
    const tokens = await client.authorizationCodeGrant(config, callback, { pkceCodeVerifier: first.verifier, expectedState: first.state, expectedNonce: first.nonce });
    t.same(tokens.claims()?.amr, ['pwd'], 'no factor yet: a password login');

    const silent = async () => {
      const request = await authorization({ prompt: 'none' });
      return new URL((await follow(browser, request.url)).url);
    };
    const before = await silent();
    t.ok(before.searchParams.get('code'), 'the SSO session answers prompt=none with a code');

    const enrolled = await factors.enrollTotp(user);
    const totp = () => generate({ secret: enrolled.secret, epoch: Math.floor(clock().getTime() / 1000) });
    await factors.confirm(user, 'totp', enrolled.factor_id, await totp());
    clock.advance(30);

    const after = await silent();
    t.equal(after.searchParams.get('code'), null, 'after a factor was enrolled, no silent code');
    t.equal(after.searchParams.get('error'), 'login_required', 'but login_required');

    const request = await authorization();
    const page = await follow(browser, request.url);
    t.match(new URL(page.url).pathname, /^\/interaction\//, 'an interactive authorization stops at the interaction');
    t.match(page.html, 'name="password"', 'which asks for the password again');
    const uid = new URL(page.url).pathname.split('/').pop() ?? '';
    const csrf = hiddenField(page.html, 'csrf');
    const codePage = await submit(browser, server.origin, `/interaction/${uid}/login`, { csrf, email: 'sso@example.com', password: TEST_PASSWORD });
    t.match(codePage.html, '<label for="code">Code</label>', 'then for the code');
    const done = await submit(browser, server.origin, `/interaction/${uid}/verify`, { csrf, method: 'totp', code: await totp() });
    t.ok(done.url.startsWith(REDIRECT_URI), 'consent was given before: straight to the callback');
    const stepped = await client.authorizationCodeGrant(config, new URL(done.url), { pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce });
    t.match(stepped.claims()?.amr, ['pwd', 'otp', 'mfa'], 'the new session has mfa');
    t.ok((await silent()).searchParams.get('code'), 'and satisfies the policy again');
  });

  t.test('a role that starts requiring MFA re-checks the SSO session', async (t) => {
    const user = await seedUser(server, 'role@example.com');
    const browser = new Browser();
    const first = await authorization({ prompt: 'consent' });
    const callback = await authorizeThroughForms(server, first.url, { email: 'role@example.com', password: TEST_PASSWORD }, browser);
    t.ok(callback.searchParams.get('code'));
    const silent = async () => new URL((await follow(browser, (await authorization({ prompt: 'none' })).url)).url);
    t.ok((await silent()).searchParams.get('code'), 'SSO before the role');

    const { rbac } = server.app.keryu.services;
    await rbac.createRole({ name: 'auditors-mfa', description: '', level: 0, mfaRequired: true }, operator);
    await rbac.assignRole(user.id, { role: 'auditors-mfa' }, operator);
    const after = await silent();
    t.equal(after.searchParams.get('error'), 'login_required', 'a role requiring MFA: the session must sign in again');
  });
});
