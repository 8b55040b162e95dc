/**
 * With a stolen password the second factor cannot be guessed at scale: the account lock is checked at
 * every code (and every enrolment step of a sign-in), not only at the password step, so opening challenge
 * after challenge buys no guesses past the lock; a user has at most MAX_OPEN_CHALLENGES_PER_USER open
 * sign-ins (a new login from a device replaces that device's unfinished one); and the lock's doubling
 * still works after more than a thousand failures (no overflow, every failure counted and audited).
 */
import t from 'tap';
import { MAX_OPEN_CHALLENGES_PER_USER } from '../../src/services/login/index.js';
import { api, seedAuthUser } from '../helpers/auth.js';
import { auditLog, challengeFor, codeIn, enrolTotp, from, isPair, loginAs, mailbox, seedWithSession, startMfaServer, totpAt, verify, wrongCode } from '../helpers/mfa.js';

/** Delays off (they would outlast the challenges), a lock from 10 failures. */
const LOCK_AT_10 = { LOGIN_DELAY_AFTER: '5000', LOGIN_LOCK_AFTER: '10' };

t.test('many open challenges: at most a few stay open, and the lock stops every one of them', async (t) => {
  const { server, clock } = await startMfaServer(t, LOCK_AT_10);
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);

  // The thief opens 30 sign-ins from 30 device ids and several addresses.
  const opened: Array<{ device: string; ip: string; challenge_id: string }> = [];
  for (let i = 0; i < 30; i++, clock.advance(1)) opened.push({ device: `thief-${i}`, ip: `198.51.100.${i}`, ...(await challengeFor(server, 'alice@example.com', { device_id: `thief-${i}` }, from(`198.51.100.${i}`))) });
  const attempt = (c: (typeof opened)[number], code: string) => verify(server, { challenge_id: c.challenge_id, method: 'totp', code, device_id: c.device }, from(c.ip));

  const open = opened.slice(-MAX_OPEN_CHALLENGES_PER_USER);
  for (const old of opened.slice(0, -MAX_OPEN_CHALLENGES_PER_USER)) {
    t.match(await attempt(old, await totpAt(secret, clock)), { status: 400, body: { error: 'challenge_consumed' } }, `older challenge ${old.device} was closed`);
  }

  // Two wrong codes on each open challenge: the tenth wrong code locks the account.
  for (const c of open) {
    for (let i = 0; i < 2; i++) t.match(await attempt(c, wrongCode(await totpAt(secret, clock))), { status: 401, body: { error: 'invalid_code' } });
  }
  for (const c of open) {
    const res = await attempt(c, await totpAt(secret, clock));
    t.match(res, { status: 429, body: { error: 'too_many_attempts' } }, `locked: even the right code on ${c.device} is refused`);
    t.ok((res.body.retry_after ?? 0) > 0, 'with Retry-After');
  }
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'thief-new' }), { status: 429 }, 'and the password step agrees');

  // After the lock, a right code works again (the lock is the only thing that stopped it).
  clock.advance(901);
  const later = await challengeFor(server, 'alice@example.com', { device_id: 'owner' });
  t.ok(isPair((await verify(server, { challenge_id: later.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'owner' })).body), 'the owner signs in once the lock is over');

  const refused = (await auditLog(server)).filter((e) => e.type === 'login.challenge_failed' && e.subjectId === user.id && (e.details as { error?: string }).error === 'too_many_attempts');
  t.equal(refused.length, MAX_OPEN_CHALLENGES_PER_USER, 'each refused code is audited');
});

t.test('a new login from a device replaces that device\'s unfinished one', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  const first = await challengeFor(server, 'alice@example.com', { device_id: 'phone' });
  const other = await challengeFor(server, 'alice@example.com', { device_id: 'tablet' });
  const second = await challengeFor(server, 'alice@example.com', { device_id: 'phone' });
  t.match(await verify(server, { challenge_id: first.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'phone' }), { status: 400, body: { error: 'challenge_consumed' } });
  t.ok(isPair((await verify(server, { challenge_id: second.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'phone' })).body), 'the newer one completes');
  clock.advance(30);
  t.ok(isPair((await verify(server, { challenge_id: other.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'tablet' })).body), 'another device\'s sign-in is untouched');
});

t.test('enrolment at sign-in is refused while the account is locked', async (t) => {
  const { server, smtp, clock } = await startMfaServer(t, { ...LOCK_AT_10, MFA_REQUIRED: 'true' });
  await seedAuthUser(server, 'alice@example.com');
  const box = mailbox(smtp, 'alice@example.com');
  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'phone' });
  t.equal(challenge.reason, 'new_device');
  const next = await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code: codeIn(await box.next()), device_id: 'phone' });
  t.match(next.body, { reason: 'enroll' });
  const during = { challenge_id: challenge.challenge_id, device_id: 'phone' };
  const started = await api<{ factor_id: string; secret: string }>(server, 'POST', '/api/auth/mfa/totp/', { body: during });
  t.equal(started.status, 201, 'enrolment starts while not locked');

  for (let i = 0; i < 10; i++) t.equal((await loginAs(server, 'alice@example.com', { password: 'wrong password' })).status, 401);
  t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { body: during }), { status: 429, body: { error: 'too_many_attempts' } }, 'no new enrolment');
  t.match(
    await api(server, 'POST', `/api/auth/mfa/totp/${started.body.factor_id}/confirm/`, { body: { ...during, code: await totpAt(started.body.secret, clock) } }),
    { status: 429, body: { error: 'too_many_attempts' } },
    'no confirmation',
  );
});

t.test('more than a thousand failures: still counted, locked and audited (no overflow)', async (t) => {
  const { server, clock } = await startMfaServer(t, { LOGIN_DELAY_AFTER: '5000', LOGIN_LOCK_AFTER: '1', LOGIN_LOCK_DURATION: '1', LOGIN_LOCK_MAX: '60' });
  await seedAuthUser(server, 'alice@example.com');
  const { bruteForce } = server.app.keryu.services;
  // 1,020 failures recorded as the server records them (each a lock: 2^1020 s still fits a float8 ...).
  for (let i = 0; i < 1020; i++) await bruteForce.recordFailure({ identifier: 'alice@example.com' });
  // ... then wrong passwords over HTTP, each after the lock, past 2^1024.
  for (let i = 0; i < 10; i++) {
    clock.advance(61);
    t.match(await loginAs(server, 'alice@example.com', { password: 'wrong password' }), { status: 401, body: { error: 'invalid_credentials' } }, `failure ${1021 + i}`);
  }
  clock.advance(30);
  t.match(await loginAs(server, 'alice@example.com'), { status: 429, body: { error: 'too_many_attempts' } }, 'locked (for at most LOGIN_LOCK_MAX)');
  clock.advance(31);
  t.equal((await loginAs(server, 'alice@example.com')).status, 200, 'and free after LOGIN_LOCK_MAX');
  const locks = (await auditLog(server)).filter((e) => e.type === 'login.locked').map((e) => (e.details as { failures: number }).failures);
  t.ok(locks.includes(1030), 'the 1,030th failure locked and was audited');
});
