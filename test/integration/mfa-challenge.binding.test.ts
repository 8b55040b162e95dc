/**
 * Every failure of POST /api/auth/verify/ (invalid_code with attempts_left, challenge_expired,
 * challenge_consumed, too_many_attempts, method_not_allowed, invalid_challenge), and the binding of a
 * challenge to its login: another user's code, another device id or another user's challenge never
 * completes it, and never yields the other user's session.
 */
import { decodeJwt } from 'jose';
import t from 'tap';
import { api } from '../helpers/auth.js';
import {
  auditLog,
  challengeFor,
  codeIn,
  enrolTotp,
  from,
  isPair,
  mailbox,
  seedWithSession,
  startMfaServer,
  totpAt,
  verify,
  wrongCode,
} from '../helpers/mfa.js';

t.test('each failure code of /verify/', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  const attempt = (challengeId: string, code: string, method = 'totp') => verify(server, { challenge_id: challengeId, method, code });

  // invalid_code, counting down; the fifth wrong code ends the challenge even for the right code.
  const limited = await challengeFor(server, 'alice@example.com');
  const right = await totpAt(secret, clock);
  for (let left = 4; left >= 0; left--) {
    const res = await attempt(limited.challenge_id, wrongCode(right));
    t.equal(res.status, 401);
    t.same(Object.keys(res.body).sort(), ['attempts_left', 'error', 'message']);
    t.match(res.body, { error: 'invalid_code', attempts_left: left });
  }
  const exhausted = await attempt(limited.challenge_id, right);
  t.match(exhausted, { status: 429, body: { error: 'too_many_attempts' } }, 'dead after five wrong codes, even with the right one');
  t.ok(exhausted.headers.get('retry-after') !== null, '429 says when to come back');
  t.match(await attempt(limited.challenge_id, right), { status: 429 }, 'and stays dead');
  t.match(await attempt(limited.challenge_id, 'x'.repeat(64)), { status: 429 }, 'whatever is sent');

  // method_not_allowed: not counted as an attempt.
  clock.advance(30);
  const methods = await challengeFor(server, 'alice@example.com');
  for (const method of ['sms', 'email', 'recovery_code', 'password', 'pwd', '', 'TOTP']) {
    t.match(await attempt(methods.challenge_id, await totpAt(secret, clock), method), { status: 400, body: { error: 'method_not_allowed', methods: ['totp'] } }, `method ${JSON.stringify(method)}`);
  }
  t.ok(isPair((await attempt(methods.challenge_id, await totpAt(secret, clock))).body), 'refused methods did not use up the attempts');

  // challenge_consumed
  t.match(await attempt(methods.challenge_id, await totpAt(secret, clock)), { status: 400, body: { error: 'challenge_consumed' } });
  t.match(await attempt(methods.challenge_id, 'whatever'), { status: 400, body: { error: 'challenge_consumed' } });

  // challenge_expired: after 300 s, even with the right code.
  clock.advance(30);
  const late = await challengeFor(server, 'alice@example.com');
  clock.advance(299);
  t.match(await attempt(late.challenge_id, wrongCode(await totpAt(secret, clock))), { status: 401, body: { error: 'invalid_code' } }, 'still open at 299 s');
  clock.advance(2);
  t.match(await attempt(late.challenge_id, await totpAt(secret, clock)), { status: 400, body: { error: 'challenge_expired' } }, 'expired at 301 s');

  // invalid_challenge
  for (const id of ['', 'unknown', limited.challenge_id.slice(0, -1), `${limited.challenge_id}x`, limited.challenge_id.toUpperCase()]) {
    t.match(await attempt(id, '123456'), { status: 400, body: { error: 'invalid_challenge' } }, `challenge id ${JSON.stringify(id.slice(0, 12))}`);
  }

  const events = (await auditLog(server)).filter((e) => e.subjectId === user.id);
  t.ok(events.some((e) => e.type === 'login.challenge_failed' && e.outcome === 'failure' && (e.details as { attempts_left?: number }).attempts_left === 0));
  t.ok(events.some((e) => e.type === 'login.challenge_expired' && e.outcome === 'failure'));
  t.ok(events.some((e) => e.type === 'login.challenge_passed' && e.outcome === 'success'));
});

t.test('a challenge answers only to its own login: device, IP address, user', async (t) => {
  const { server, smtp } = await startMfaServer(t);
  const alice = await seedWithSession(server, 'alice@example.com');
  const bob = await seedWithSession(server, 'bob@example.com');
  const aliceBox = mailbox(smtp, 'alice@example.com');
  const bobBox = mailbox(smtp, 'bob@example.com');
  for (const [who, box] of [[alice, aliceBox], [bob, bobBox]] as const) {
    const enrolled = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token: who.pair.access_token });
    t.equal((await api(server, 'POST', `/api/auth/mfa/email/${enrolled.body.factor_id}/confirm/`, { token: who.pair.access_token, body: { code: codeIn(await box.next()) } })).status, 200);
    await box.next(); // factor-change notice
  }

  const here = from('203.0.113.7');
  const a = await challengeFor(server, 'alice@example.com', { device_id: 'alice-phone' }, here);
  const aliceCode = codeIn(await aliceBox.next());
  const b = await challengeFor(server, 'bob@example.com', { device_id: 'bob-phone' }, here);
  const bobCode = codeIn(await bobBox.next());
  const tryA = (body: Record<string, unknown>, headers = here) => verify(server, { challenge_id: a.challenge_id, method: 'email', code: aliceCode, device_id: 'alice-phone', ...body }, headers);

  // Another address is allowed (a network change, see mfa-challenge.network-change.test.ts); another device is not.
  t.match(await tryA({ device_id: 'bob-phone' }), { status: 400, body: { error: 'device_mismatch' } }, 'another device id');
  t.match(await tryA({ device_id: undefined }), { status: 400, body: { error: 'device_mismatch' } }, 'no device id');
  t.match(await tryA({ challenge_id: b.challenge_id }), { status: 400, body: { error: 'device_mismatch' } }, 'bob\'s challenge with alice\'s device');
  t.match(await tryA({ challenge_id: b.challenge_id, device_id: 'bob-phone' }), { status: 401, body: { error: 'invalid_code' } }, 'alice\'s code does not complete bob\'s challenge');
  t.match(await tryA({ code: bobCode }), { status: 401, body: { error: 'invalid_code' } }, 'bob\'s code does not complete alice\'s challenge');

  const aliceDone = await tryA({ email: 'bob@example.com' });
  t.ok(isPair(aliceDone.body), 'alice completes her own login');
  t.equal(decodeJwt(aliceDone.body.access_token ?? '').sub, alice.user.id, 'as alice, whatever else the body names');
  const bobDone = await verify(server, { challenge_id: b.challenge_id, method: 'email', code: bobCode, device_id: 'bob-phone' }, here);
  t.equal(bobDone.status, 200);
  t.match(bobDone.body, { session_id: String });
  t.equal(decodeJwt(bobDone.body.access_token ?? '').sub, bob.user.id, 'bob as bob (one wrong code earlier did not end his challenge)');
});
