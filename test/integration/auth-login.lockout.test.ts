/**
 * Credential attacks on password login: progressive delay and lock per identifier (whether or not the
 * account exists), reset on success, unlock, the known-device exemption (device id and device cookie),
 * the per-IP limit, the same protection on the browser login form, and enumeration resistance in body
 * and time.
 */
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { api, manualClock, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { Browser, discover, hiddenField, REDIRECT_URI, seedClient } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';
import * as client from 'openid-client';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const attempt = (server: { origin: string }, email: string, password: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
  api<Record<string, unknown>>(server, 'POST', '/api/auth/login/', { body: { email, password, ...extra }, headers });

t.test('progressive delay, lock with doubling, reset on success, unlock', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: NO_RATE_LIMITS, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  for (let i = 0; i < 5; i++) t.equal((await attempt(server, 'alice@example.com', 'wrong password!')).status, 401);
  const delayed = await attempt(server, 'alice@example.com', TEST_PASSWORD);
  t.equal(delayed.status, 429, 'after 5 failures even the right password waits');
  t.same(delayed.body, { error: 'too_many_attempts', message: 'too many failed sign-in attempts; try again later', retry_after: 1 });
  t.equal(delayed.headers.get('retry-after'), '1');
  clock.advance(1);
  t.equal((await attempt(server, 'alice@example.com', 'wrong password!')).status, 401, 'allowed after the delay');
  t.equal((await attempt(server, 'Alice@Example.com', TEST_PASSWORD)).body.retry_after, 2, 'the delay grows (and the identifier is normalized)');
  clock.advance(2);
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD)).status, 200, 'success');
  for (let i = 0; i < 5; i++) t.equal((await attempt(server, 'alice@example.com', 'wrong password!')).status, 401, 'the count was reset by the success');

  for (let i = 5; i < 20; i++) {
    clock.advance(61);
    t.equal((await attempt(server, 'alice@example.com', 'wrong password!')).status, 401);
  }
  clock.advance(61);
  const locked = await attempt(server, 'alice@example.com', TEST_PASSWORD);
  t.equal(locked.status, 429, 'locked after 20 failures');
  t.equal(locked.body.retry_after, 900 - 61, '15 minutes');
  clock.advance(900);
  t.equal((await attempt(server, 'alice@example.com', 'wrong password!')).status, 401, 'the lock ends');
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD)).body.retry_after, 1800, 'the next lock is twice as long');

  t.equal(await server.app.keryu.services.bruteForce.unlock('alice@example.com'), 1, 'unlock clears the count');
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD)).status, 200, 'and the user signs in');

  await server.app.keryu.services.audit.flush();
  const events = await server.app.keryu.database.db.select().from(auditEvents);
  t.ok(events.some((e) => e.type === 'login.locked'), 'the lock is audited');
  t.ok(events.some((e) => e.type === 'login' && (e.details as { reason?: string }).reason === 'too_many_attempts'), 'refused attempts are audited');
});

t.test('a lock reveals nothing: unknown identifiers are counted and answered the same', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  for (let i = 0; i < 5; i++) {
    await attempt(server, 'alice@example.com', 'wrong password!');
    await attempt(server, 'nobody@example.com', 'wrong password!');
  }
  const known = await attempt(server, 'alice@example.com', 'wrong password!');
  const unknown = await attempt(server, 'nobody@example.com', 'wrong password!');
  t.equal(known.status, 429);
  t.equal(unknown.status, 429);
  t.same(unknown.body, known.body);
});

t.test('known devices keep their own count: an attacker cannot lock the user out', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: NO_RATE_LIMITS, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);

  const phone = await attempt(server, 'alice@example.com', TEST_PASSWORD, { device_id: 'alice-phone' });
  t.equal(phone.status, 200, 'the user signs in from their phone (its device token is now known)');
  const alicePhone = { device_id: 'alice-phone', device_token: (phone.body as { device_token?: string }).device_token };
  t.ok(alicePhone.device_token, 'an app gets a device token');
  const browser = await attempt(server, 'alice@example.com', TEST_PASSWORD);
  const cookie = (browser.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  t.match(cookie, /^keryu\.device=/, 'a browser gets a signed device cookie');
  t.match(browser.headers.get('set-cookie'), /HttpOnly/);

  for (let i = 0; i < 20; i++) {
    clock.advance(61);
    await attempt(server, 'alice@example.com', 'guess', { device_id: `attacker-${i}` }, { 'user-agent': 'attacker' });
  }
  clock.advance(61);
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD)).status, 429, 'unknown devices are locked out');
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD, { device_id: 'new-device' })).status, 429, 'a new device id too');
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD, alicePhone)).status, 200, 'the user\'s phone (its device token) still signs in');
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD, { device_id: 'alice-phone' })).status, 429, 'its device id alone does not');
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD, {}, { cookie })).status, 200, 'and so does the user\'s browser');
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD, {}, { cookie: 'keryu.device=forged.value' })).status, 429, 'a forged cookie does not');

  for (let i = 0; i < 5; i++) await attempt(server, 'alice@example.com', 'typo typo', alicePhone);
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD, alicePhone)).status, 429, 'a known device has its own limit');
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD, {}, { cookie })).status, 200, 'which does not affect the others');
});

t.test('per-IP limit across identifiers', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, TRUST_PROXY: 'true', LOGIN_IP_MAX_FAILURES: '10' } });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const ip = (a: string) => ({ 'x-forwarded-for': a });
  for (let i = 0; i < 10; i++) t.equal((await attempt(server, `user${i}@example.com`, 'wrong password!', {}, ip('10.0.0.5'))).status, 401);
  const refused = await attempt(server, 'alice@example.com', TEST_PASSWORD, {}, ip('10.0.0.5'));
  t.equal(refused.status, 429, 'the IP is refused, whatever the identifier');
  t.ok(Number(refused.headers.get('retry-after')) > 0);
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD, {}, ip('10.0.0.6'))).status, 200, 'other IPs are not');
});

t.test('the browser login form has the same protection', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const seeded = await seedClient(server);
  const config = await discover(server, seeded);
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: 'openid',
    code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
    code_challenge_method: 'S256',
  });
  const browser = new Browser();
  const first = await browser.fetch(url);
  const page = new URL(first.headers.get('location') ?? '', server.origin);
  const html = await (await browser.fetch(page)).text();
  const csrf = hiddenField(html, 'csrf');
  const post = (password: string) => browser.postForm(`${server.origin}${page.pathname}/login`, { csrf, email: 'alice@example.com', password });
  for (let i = 0; i < 5; i++) t.equal((await post('wrong password!')).status, 401);
  const refused = await post(TEST_PASSWORD);
  t.equal(refused.status, 429, 'the form is refused too');
  t.ok(refused.headers.get('retry-after'));
  t.match(await refused.text(), /Too many failed attempts/);
  t.equal((await attempt(server, 'alice@example.com', TEST_PASSWORD)).status, 429, 'one count for the API and the form');
});

t.test('unknown and known accounts take the same time to fail (medians over repeated tries)', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, LOGIN_DELAY_AFTER: '100000', LOGIN_LOCK_AFTER: '100000', LOGIN_IP_MAX_FAILURES: '100000' } });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const time = async (email: string) => {
    const start = process.hrtime.bigint();
    const res = await attempt(server, email, 'wrong password!');
    t.equal(res.status, 401);
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  await time('alice@example.com');
  await time('warmup@example.com');
  // Interleaved pairs, compared by the median of their differences: load from other processes slows both
  // members of a pair alike, while a systematic difference (a skipped hash) shows in every pair.
  const known: number[] = [];
  const unknown: number[] = [];
  const diffs: number[] = [];
  for (let i = 0; i < 21; i++) {
    const k = await time('alice@example.com');
    const u = await time(`nobody${i}@example.com`);
    known.push(k);
    unknown.push(u);
    diffs.push(k - u);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const [mk, mu, md] = [median(known), median(unknown), median(diffs)];
  const bound = Math.max(10, 0.25 * Math.min(mk, mu));
  t.ok(Math.abs(md) < bound, `median paired difference ${md.toFixed(1)} ms (known ${mk.toFixed(1)} ms, unknown ${mu.toFixed(1)} ms) is under ${bound.toFixed(1)} ms`);
  t.ok(mu > 0.5 * mk, 'an unknown account is not answered without hashing');
});
