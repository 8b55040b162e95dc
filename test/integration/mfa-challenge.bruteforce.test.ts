/**
 * Guessing the 6-digit second factor with a stolen password: a challenge dies after five wrong codes, and
 * wrong codes feed the same brute-force counters as wrong passwords, so opening new challenges is soon
 * refused (429 at the password step, then a lock). A right password never resets the count (only a
 * completed sign-in does), and fresh device ids or device cookies, which a right password alone hands
 * out, do not buy fresh counts.
 */
import t, { type Test } from 'tap';
import { api, seedAuthUser } from '../helpers/auth.js';
import { auditLog, challengeFor, codeIn, mailbox, enrolTotp, from, isPair, loginAs, seedWithSession, startMfaServer, totpAt, verify, wrongCode, type MfaServer } from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

async function totpUser(env: MfaServer) {
  const { server, clock } = env;
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  return { user, code: () => totpAt(secret, clock) };
}

/** Five wrong codes on a fresh challenge (the challenge is then dead). */
async function burnChallenge(t: Test, env: MfaServer, right: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  const challenge = await challengeFor(env.server, 'alice@example.com', extra, headers);
  for (let i = 0; i < 5; i++) {
    const res = await verify(env.server, { challenge_id: challenge.challenge_id, method: 'totp', code: wrongCode(right), ...(extra.device_id ? { device_id: extra.device_id } : {}) }, headers);
    t.equal(res.status, 401);
  }
  return challenge;
}

t.test('wrong codes feed the brute-force count; a right password does not reset it; 20 lock the account', async (t) => {
  const env = await startMfaServer(t);
  const { server, clock } = env;
  const alice = await totpUser(env);

  await burnChallenge(t, env, await alice.code());
  const delayed = await loginAs(server, 'alice@example.com');
  t.match(delayed, { status: 429, body: { error: 'too_many_attempts', retry_after: 1 } }, 'five wrong codes: even the right password waits');
  t.equal(delayed.headers.get('retry-after'), '1');

  clock.advance(1);
  const next = await challengeFor(server, 'alice@example.com');
  t.ok(next.challenge_id, 'after the delay the password opens a challenge...');
  t.equal((await verify(server, { challenge_id: next.challenge_id, method: 'totp', code: wrongCode(await alice.code()) })).status, 401);
  t.match(await loginAs(server, 'alice@example.com'), { status: 429, body: { retry_after: 2 } }, '...but did not reset the count: one more wrong code and the delay doubles');

  // Up to the lock: the delays are waited out, the password is always right, every code is wrong. The
  // delay holds for codes too: a second wrong code right after the first waits like a password would.
  for (let failures = 6; failures < 20; failures++) {
    clock.advance(61);
    const challenge = await challengeFor(server, 'alice@example.com');
    t.equal((await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: wrongCode(await alice.code()) })).status, 401);
    t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: await alice.code() }), { status: 429, body: { error: 'too_many_attempts' } }, 'even the right code waits');
  }
  clock.advance(61);
  const locked = await loginAs(server, 'alice@example.com');
  t.equal(locked.status, 429, 'locked after 20 wrong codes');
  t.ok((locked.body.retry_after ?? 0) > 600, `a lock, not a delay (${locked.body.retry_after} s)`);
  t.match(await loginAs(server, 'alice@example.com', { password: 'wrong password' }), { status: 429 }, 'the same for a wrong password');

  const events = await auditLog(server);
  t.ok(events.some((e) => e.type === 'login.locked'), 'the lock is audited');
  const codeFailures = events.filter((e) => e.type === 'login.challenge_failed');
  t.equal(codeFailures.filter((e) => !(e.details as { error?: string }).error).length, 20, 'every wrong code is audited');
  t.equal(codeFailures.filter((e) => (e.details as { error?: string }).error === 'too_many_attempts').length, 14, 'and every code refused by the delay');
  t.ok(events.some((e) => e.type === 'login' && e.outcome === 'failure' && (e.details as { reason?: string }).reason === 'too_many_attempts'));
});

t.test('a completed sign-in resets the count (a user\'s typos are forgiven once they get in)', async (t) => {
  const env = await startMfaServer(t);
  const { server, clock } = env;
  const alice = await totpUser(env);
  const challenge = await challengeFor(server, 'alice@example.com');
  for (let i = 0; i < 4; i++) await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: wrongCode(await alice.code()) });
  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: await alice.code() })).body));
  clock.advance(30);
  const again = await challengeFor(server, 'alice@example.com');
  for (let i = 0; i < 4; i++) await verify(server, { challenge_id: again.challenge_id, method: 'totp', code: wrongCode(await alice.code()) });
  t.equal((await loginAs(server, 'alice@example.com')).status, 200, 'four failures after the reset: no delay');
});

t.test('new device ids, new IPs or device cookies from a half-finished sign-in do not buy fresh counts', async (t) => {
  const env = await startMfaServer(t);
  const { server } = env;
  const alice = await totpUser(env);

  // With the stolen password, the attacker first opens (and abandons) sign-ins from many "devices".
  const devices = ['d1', 'd2', 'd3'];
  for (const d of devices) await challengeFor(server, 'alice@example.com', { device_id: d });
  const cookies: string[] = [];
  for (let i = 0; i < 2; i++) {
    const res = await loginAs(server, 'alice@example.com');
    cookies.push((res.headers.get('set-cookie') ?? '').split(';')[0] ?? '');
  }

  await burnChallenge(t, env, await alice.code(), { device_id: 'd1' });
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'd1' }), { status: 429 }, 'the device is refused');
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'd2' }), { status: 429 }, 'and so is another device id that only ever passed the password');
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'd9' }), { status: 429 }, 'and a new one');
  for (const cookie of cookies.filter(Boolean)) {
    t.match(await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: TEST_PASSWORD }, headers: { cookie } }), { status: 429 }, 'and a device cookie handed out at the password step');
  }
  t.match(await loginAs(server, 'alice@example.com', {}, from('198.51.100.23')), { status: 429 }, 'and another IP address');
});

t.test('the user\'s own device, verified at a completed sign-in, keeps its own count', async (t) => {
  const env = await startMfaServer(t);
  const { server, clock } = env;
  const alice = await totpUser(env);
  const own = await challengeFor(server, 'alice@example.com', { device_id: 'alice-phone' });
  const first = await verify(server, { challenge_id: own.challenge_id, method: 'totp', code: await alice.code(), device_id: 'alice-phone' });
  t.ok(isPair(first.body));
  clock.advance(30);

  await burnChallenge(t, env, await alice.code(), { device_id: 'attacker' });
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'attacker' }), { status: 429 }, 'the attacker is slowed down');
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'alice-phone' }), { status: 429 }, 'and so is anyone naming the user\'s device id');
  const mine = await challengeFor(server, 'alice@example.com', { device_id: 'alice-phone', device_token: first.body.device_token });
  t.ok(isPair((await verify(server, { challenge_id: mine.challenge_id, method: 'totp', code: await alice.code(), device_id: 'alice-phone' })).body), 'the user\'s phone still signs in');
});

t.test('an account without MFA but with a new-device check: wrong emailed codes count the same', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  const { server } = env;
  await seedAuthUser(server);
  const inbox = mailbox(env.smtp, 'alice@example.com');
  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'thief' });
  t.equal(challenge.reason, 'new_device');
  const code = codeIn(await inbox.next());
  for (let left = 4; left >= 0; left--) {
    t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code: wrongCode(code), device_id: 'thief' }), { status: 401, body: { attempts_left: left } });
  }
  t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code, device_id: 'thief' }), { status: 429 }, 'the right code no longer helps');
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'thief' }), { status: 429, body: { error: 'too_many_attempts' } });
});
