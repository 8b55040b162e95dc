/**
 * Replay of second-factor proofs: a TOTP time step is accepted once (in the same login, in a second login,
 * after the step that confirmed the factor, and an older step after a newer one); SMS and email codes and
 * recovery codes are single use, also when presented concurrently; a completed challenge cannot be
 * completed again, and a resent code voids the one before it.
 */
import t from 'tap';
import { api, seedAuthUser, type JsonResponse } from '../helpers/auth.js';
import {
  challengeFor,
  codeIn,
  enrolTotp,
  isPair,
  mailbox,
  seedWithSession,
  startMfaServer,
  totpAt,
  verify,
  type LoginAnswer,
} from '../helpers/mfa.js';

const statuses = (answers: Array<JsonResponse<LoginAnswer>>) => answers.map((a) => a.status).sort();

t.test('a TOTP step is accepted once: not in a second login, not an older step after a newer one', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);

  const code = await totpAt(secret, clock);
  const first = await challengeFor(server, 'alice@example.com');
  t.ok(isPair((await verify(server, { challenge_id: first.challenge_id, method: 'totp', code })).body), 'accepted once');
  const second = await challengeFor(server, 'alice@example.com');
  t.match(await verify(server, { challenge_id: second.challenge_id, method: 'totp', code }), { status: 401, body: { error: 'invalid_code', attempts_left: 4 } }, 'the same code in a second login is refused');

  clock.advance(30);
  const older = await totpAt(secret, clock);
  clock.advance(30);
  const newer = await totpAt(secret, clock);
  t.not(older, newer);
  t.ok(isPair((await verify(server, { challenge_id: second.challenge_id, method: 'totp', code: newer })).body), 'the current step passes');
  const third = await challengeFor(server, 'alice@example.com');
  t.match(await verify(server, { challenge_id: third.challenge_id, method: 'totp', code: older }), { status: 401, body: { error: 'invalid_code' } }, 'an older step, never used but within the drift window, is refused after a newer one');

  clock.advance(30);
  const fresh = await totpAt(secret, clock);
  // Two devices (one device's new login would end its previous one).
  const [a, b] = await Promise.all([challengeFor(server, 'alice@example.com', { device_id: 'a' }), challengeFor(server, 'alice@example.com', { device_id: 'b' })]);
  const raced = await Promise.all([verify(server, { challenge_id: a!.challenge_id, method: 'totp', code: fresh, device_id: 'a' }), verify(server, { challenge_id: b!.challenge_id, method: 'totp', code: fresh, device_id: 'b' })]);
  t.same(statuses(raced), [200, 401], 'the same code presented concurrently to two logins passes one of them');
});

t.test('the code that confirmed an authenticator cannot sign in', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const started = await api<{ factor_id: string; secret: string }>(server, 'POST', '/api/auth/mfa/totp/', { token: pair.access_token });
  const code = await totpAt(started.body.secret, clock);
  t.equal((await api(server, 'POST', `/api/auth/mfa/totp/${started.body.factor_id}/confirm/`, { token: pair.access_token, body: { code } })).status, 200);
  const challenge = await challengeFor(server, 'alice@example.com');
  t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code }), { status: 401, body: { error: 'invalid_code' } });
  clock.advance(30);
  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: await totpAt(started.body.secret, clock) })).body), 'the next step does');
});

t.test('a completed challenge cannot be completed again, even concurrently', async (t) => {
  const { server, smtp } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const inbox = mailbox(smtp, 'alice@example.com');
  const enrolled = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token: pair.access_token });
  await api(server, 'POST', `/api/auth/mfa/email/${enrolled.body.factor_id}/confirm/`, { token: pair.access_token, body: { code: codeIn(await inbox.next()) } });
  await inbox.next(); // the factor-change notice

  const challenge = await challengeFor(server, 'alice@example.com');
  const code = codeIn(await inbox.next());
  const raced = await Promise.all(Array.from({ length: 5 }, () => verify(server, { challenge_id: challenge.challenge_id, method: 'email', code })));
  t.equal(raced.filter((r) => r.status === 200).length, 1, 'five concurrent uses of one code: one session');
  t.equal(raced.filter((r) => isPair(r.body)).length, 1);
  for (const r of raced.filter((x) => x.status !== 200)) t.ok(['invalid_code', 'challenge_consumed'].includes(r.body.error ?? ''), `the others fail (${r.body.error})`);
  t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code }), { status: 400, body: { error: 'challenge_consumed' } }, 'afterwards: consumed');

  const next = await challengeFor(server, 'alice@example.com');
  await inbox.next();
  t.match(await verify(server, { challenge_id: next.challenge_id, method: 'email', code }), { status: 401, body: { error: 'invalid_code' } }, 'a used code does not pass another login');
});

t.test('a resent code voids the one before it', async (t) => {
  const { server, smtp, clock } = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'phone' });
  t.equal(challenge.reason, 'new_device');
  const before = codeIn(await inbox.next());
  clock.advance(31);
  t.equal((await api(server, 'POST', '/api/auth/verify/resend/', { body: { challenge_id: challenge.challenge_id, method: 'email', device_id: 'phone' } })).status, 202);
  const after = codeIn(await inbox.next());
  if (before !== after) {
    t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code: before, device_id: 'phone' }), { status: 401, body: { error: 'invalid_code' } }, 'the earlier code is void');
  }
  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code: after, device_id: 'phone' })).body), 'the newest code passes');
});

t.test('recovery codes are single use, also concurrently', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  await enrolTotp(server, pair.access_token, clock);
  const { codes } = (await api<{ codes: string[] }>(server, 'POST', '/api/auth/mfa/recovery-codes/', { token: pair.access_token })).body;
  // Three devices (one device's new login would end its previous one).
  const challenges = await Promise.all(Array.from({ length: 3 }, (_, i) => challengeFor(server, 'alice@example.com', { device_id: `device-${i}` })));
  const raced = await Promise.all(challenges.map((c, i) => verify(server, { challenge_id: c.challenge_id, method: 'recovery_code', code: codes[0], device_id: `device-${i}` })));
  t.same(statuses(raced), [200, 401, 401], 'one login per recovery code');
  const listed = await api<{ items: Array<{ type: string; remaining?: number }> }>(server, 'GET', '/api/auth/mfa/', { token: pair.access_token });
  t.equal(listed.body.items.find((f) => f.type === 'recovery_code')?.remaining, 9);
});
