/**
 * Flooding a phone or a mailbox with codes: a resend within OTP_RESEND_INTERVAL answers 429 with
 * Retry-After; OTP_SENDS_PER_HOUR caps the sends per user and per destination (another account cannot
 * flood the same number), enrolment and re-authentication sends count too, and refused sends send
 * nothing. The first code of a sign-in skips the interval, so a user is never kept waiting for it.
 */
import t from 'tap';
import { api, seedAuthUser } from '../helpers/auth.js';
import { auditLog, challengeFor, codeIn, enrolTotp, isPair, loginAs, mailbox, resend, seedWithSession, startMfaServer, totpAt, verify, type MfaServer } from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

async function smsUser(env: MfaServer, email: string, phone = '+14155552671') {
  const { server, twilio } = env;
  const { user, pair } = await seedWithSession(server, email);
  const sent = twilio.messages.length;
  const enrolled = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token: pair.access_token, body: { phone } });
  if (enrolled.status !== 201) throw new Error(`sms enrolment: ${enrolled.status} ${JSON.stringify(enrolled.body)}`);
  const confirmed = await api(server, 'POST', `/api/auth/mfa/sms/${enrolled.body.factor_id}/confirm/`, { token: pair.access_token, body: { code: await twilio.codeOf(sent + 1) } });
  if (confirmed.status !== 200) throw new Error('sms confirmation failed');
  return { user, pair };
}

t.test('resend: 429 with Retry-After within the interval, then a new code that voids the old one', async (t) => {
  const env = await startMfaServer(t, { OTP_RESEND_INTERVAL: '30', OTP_SENDS_PER_HOUR: '100' });
  const { server, twilio, clock } = env;
  await smsUser(env, 'alice@example.com');
  clock.advance(3600);

  const challenge = await challengeFor(server, 'alice@example.com');
  t.match(challenge, { reason: 'mfa', sent: { method: 'sms' } });
  const sentBefore = twilio.messages.length;
  const first = await twilio.codeOf(sentBefore);

  const flood = await Promise.all(Array.from({ length: 10 }, () => resend(server, { challenge_id: challenge.challenge_id, method: 'sms' })));
  for (const res of flood) {
    t.equal(res.status, 429, 'within the interval: refused');
    t.match(res.body, { error: 'too_many_requests', retry_after: Number });
    t.equal(res.headers.get('retry-after'), String(res.body.retry_after));
  }
  t.ok((flood[0]!.body.retry_after ?? 0) > 0 && (flood[0]!.body.retry_after ?? 99) <= 30, 'says when the interval ends');
  t.equal(twilio.messages.length, sentBefore, 'a refused resend sends nothing');

  clock.advance(29);
  t.equal((await resend(server, { challenge_id: challenge.challenge_id, method: 'sms' })).status, 429, 'still within the interval at 29 s');
  clock.advance(1);
  const again = await resend(server, { challenge_id: challenge.challenge_id, method: 'sms' });
  t.match(again, { status: 202, body: { method: 'sms', destination: '+1•••71', expires_in: 300 } }, 'at 30 s a new code is sent');
  t.equal(twilio.messages.length, sentBefore + 1, 'exactly one more message');
  const second = await twilio.codeOf(sentBefore + 1);
  t.equal((await resend(server, { challenge_id: challenge.challenge_id, method: 'sms' })).status, 429, 'and the interval starts again');

  if (first !== second) t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'sms', code: first }), { status: 401, body: { error: 'invalid_code' } }, 'the earlier code is void');
  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'sms', code: second })).body));
  t.match(await resend(server, { challenge_id: challenge.challenge_id, method: 'sms' }), { status: 400, body: { error: 'challenge_consumed' } }, 'nothing is sent for a completed sign-in');
});

t.test('the first code of a sign-in is never held back by the interval', async (t) => {
  const env = await startMfaServer(t, { OTP_RESEND_INTERVAL: '60', OTP_SENDS_PER_HOUR: '100' });
  const { server, twilio, clock } = env;
  await smsUser(env, 'alice@example.com');
  clock.advance(3600);
  const before = twilio.messages.length;
  const one = await challengeFor(server, 'alice@example.com');
  const two = await challengeFor(server, 'alice@example.com');
  t.match(one, { sent: { method: 'sms' } });
  t.match(two, { sent: { method: 'sms' } }, 'a second sign-in a moment later gets its code at once');
  t.equal(twilio.messages.length, before + 2);
  t.ok(isPair((await verify(server, { challenge_id: two.challenge_id, method: 'sms', code: await twilio.codeOf(before + 2) })).body));
});

t.test('OTP_SENDS_PER_HOUR per user and per destination; enrolment and re-authentication count too', async (t) => {
  const env = await startMfaServer(t, { OTP_RESEND_INTERVAL: '30', OTP_SENDS_PER_HOUR: '3', ACCESS_TOKEN_TTL: String(86400) });
  const { server, twilio, clock } = env;
  const alice = await smsUser(env, 'alice@example.com');
  clock.advance(3601);

  // Per user: a sign-in and two resends use up the hour.
  const challenge = await challengeFor(server, 'alice@example.com');
  clock.advance(30);
  t.equal((await resend(server, { challenge_id: challenge.challenge_id, method: 'sms' })).status, 202);
  clock.advance(30);
  t.equal((await resend(server, { challenge_id: challenge.challenge_id, method: 'sms' })).status, 202);
  clock.advance(30);
  const capped = await resend(server, { challenge_id: challenge.challenge_id, method: 'sms' });
  t.match(capped, { status: 429, body: { error: 'too_many_requests' } }, 'the fourth send in an hour is refused');
  const wait = Number(capped.headers.get('retry-after'));
  t.ok(wait > 3000 && wait <= 3600, `until the hour is over (${wait} s)`);
  const sent = twilio.messages.length;
  const next = await loginAs(server, 'alice@example.com');
  t.match(next, { status: 429, body: { error: 'too_many_requests' } }, 'the first code of a new sign-in is not sent over the hourly cap either');
  t.ok(Number(next.headers.get('retry-after')) > 0);
  t.equal(twilio.messages.length, sent, 'nothing was sent');
  t.match(await api(server, 'POST', '/api/auth/mfa/sms/', { token: alice.pair.access_token, body: { phone: '+14155550123', password: TEST_PASSWORD } }), { status: 429 }, 'an enrolment to another number counts against the user');
  t.match(await api(server, 'POST', '/api/auth/mfa/reauthenticate/', { token: alice.pair.access_token, body: { method: 'sms' } }), { status: 429 }, 'and a re-authentication code');
  t.equal(twilio.messages.length, sent);

  clock.advance(wait);
  t.match(await resend(server, { challenge_id: challenge.challenge_id, method: 'sms' }), { status: 400, body: { error: 'challenge_consumed' } }, 'the old sign-in was replaced by the newer one from the same device');
  const later = await challengeFor(server, 'alice@example.com');
  t.match(later, { sent: { method: 'sms' } }, 'after the hour codes are sent again');

  // Per destination: another account cannot send more to the same number.
  clock.advance(3601);
  const { pair: bob } = await seedWithSession(server, 'bob@example.com');
  const enrolSends: number[] = [];
  for (let i = 0; i < 4; i++) {
    enrolSends.push((await api(server, 'POST', '/api/auth/mfa/sms/', { token: bob.access_token, body: { phone: '+14155559999' } })).status);
  }
  t.same(enrolSends, [201, 201, 201, 429], 'repeated enrolments are capped as well');
  const { pair: carol } = await seedWithSession(server, 'carol@example.com');
  const flooded = await api(server, 'POST', '/api/auth/mfa/sms/', { token: carol.access_token, body: { phone: '+1 415 555 9999' } });
  t.match(flooded, { status: 429, body: { error: 'too_many_requests' } }, 'another user sending to the same number is refused: the destination is capped');
  t.ok(Number(flooded.headers.get('retry-after')) > 0);
  for (let i = 0; i < 2; i++) t.equal((await api(server, 'POST', '/api/auth/mfa/sms/', { token: carol.access_token, body: { phone: '+14155559999' } })).status, 429);
  t.equal((await api(server, 'POST', '/api/auth/mfa/sms/', { token: carol.access_token, body: { phone: '+14155558888' } })).status, 201, 'three refusals did not use up her own count');
});

t.test('new-device codes by email: the interval, the cap, the binding', async (t) => {
  const env = await startMfaServer(t, { OTP_RESEND_INTERVAL: '30', OTP_SENDS_PER_HOUR: '2', DEVICE_VERIFICATION: 'challenge' });
  const { server, smtp, clock } = env;
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'laptop' });
  t.equal(challenge.reason, 'new_device');
  await inbox.next();
  t.match(await resend(server, { challenge_id: challenge.challenge_id, method: 'email', device_id: 'laptop' }), { status: 429 }, 'interval');
  t.match(await resend(server, { challenge_id: challenge.challenge_id, method: 'email' }), { status: 400, body: { error: 'device_mismatch' } }, 'a resend from another device is not this login');
  t.match(await resend(server, { challenge_id: challenge.challenge_id, method: 'sms', device_id: 'laptop' }), { status: 400, body: { error: 'method_not_allowed' } }, 'no phone: no SMS');
  clock.advance(30);
  t.equal((await resend(server, { challenge_id: challenge.challenge_id, method: 'email', device_id: 'laptop' })).status, 202);
  const code = codeIn(await inbox.next());
  clock.advance(30);
  t.match(await resend(server, { challenge_id: challenge.challenge_id, method: 'email', device_id: 'laptop' }), { status: 429 }, 'cap of two');
  t.equal(inbox.unread().length, 0);
  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code, device_id: 'laptop' })).body), 'the last code still works');
  clock.advance(301);
  const capped = await loginAs(server, 'alice@example.com', { device_id: 'tablet' });
  t.match(capped, { status: 429, body: { error: 'too_many_requests' } }, 'a new device sign-in cannot get a code over the cap');
  t.notOk(capped.body.challenge_id, 'nor a challenge it could pass without one');
  t.equal(inbox.unread().length, 0, 'and nothing was mailed');
});

t.test('resend refuses what sends no code', async (t) => {
  const env = await startMfaServer(t);
  const { server, clock } = env;
  const { pair } = await seedWithSession(server, 'alice@example.com');
  await enrolTotp(server, pair.access_token, clock);
  const challenge = await challengeFor(server, 'alice@example.com');
  for (const method of ['totp', 'recovery_code', 'sms', 'email', 'nope']) {
    t.match(await resend(server, { challenge_id: challenge.challenge_id, method }), { status: 400, body: { error: 'method_not_allowed' } }, method);
  }
  t.match(await resend(server, { challenge_id: 'unknown', method: 'sms' }), { status: 400, body: { error: 'invalid_challenge' } });
  clock.advance(301);
  t.match(await resend(server, { challenge_id: challenge.challenge_id, method: 'email' }), { status: 400, body: { error: 'challenge_expired' } });
});

t.test('a code that cannot be sent does not lock out a user who has an authenticator', async (t) => {
  const env = await startMfaServer(t, { OTP_RESEND_INTERVAL: '30', OTP_SENDS_PER_HOUR: '3', ACCESS_TOKEN_TTL: String(86400) });
  const { server, twilio, clock } = env;
  const victim = await smsUser(env, 'victim@example.com');
  const { secret } = await enrolTotp(server, victim.pair.access_token, clock);
  t.equal((await api(server, 'PUT', `/api/auth/mfa/${(await api<{ items: Array<{ id: string; type: string }> }>(server, 'GET', '/api/auth/mfa/', { token: victim.pair.access_token })).body.items.find((f) => f.type === 'sms')!.id}/`, { token: victim.pair.access_token, body: { preferred: true } })).status, 200, 'SMS preferred, TOTP as a backup');
  clock.advance(3601);

  // An attacker with an account of their own sends the victim's number as many codes as the cap allows...
  const { pair: attacker } = await seedWithSession(server, 'attacker@example.com');
  for (let i = 0; i < 3; i++) t.equal((await api(server, 'POST', '/api/auth/mfa/sms/', { token: attacker.access_token, body: { phone: '+14155552671' } })).status, 201);
  t.match(await api(server, 'POST', '/api/auth/mfa/sms/', { token: attacker.access_token, body: { phone: '+14155552671' } }), { status: 429 }, 'then the number is capped for enrolments');
  // ...but sign-in codes have their own destination count: the victim's sign-in is not blocked.
  const sent = twilio.messages.length;
  const signIn = await loginAs(server, 'victim@example.com');
  t.match(signIn.body, { reason: 'mfa', sent: { method: 'sms' } }, 'the victim\'s code is still sent');
  t.equal(twilio.messages.length, sent + 1);
  t.ok(isPair((await verify(server, { challenge_id: signIn.body.challenge_id, method: 'sms', code: await twilio.codeOf(sent + 1) })).body), 'and signs in');

  // The victim's own cap used up: the step stands without a code, and the authenticator still works.
  clock.advance(30);
  const first = await loginAs(server, 'victim@example.com');
  for (let i = 0; i < 2; i++) {
    clock.advance(30);
    await resend(server, { challenge_id: first.body.challenge_id, method: 'sms' });
  }
  clock.advance(30);
  const before = twilio.messages.length;
  const capped = await loginAs(server, 'victim@example.com');
  t.equal(capped.status, 200, 'the victim still gets the step');
  t.match(capped.body, { reason: 'mfa', challenge_id: String });
  t.ok(capped.body.methods?.includes('totp'));
  t.notOk(capped.body.sent, 'no code was sent');
  t.equal(twilio.messages.length, before);
  t.match(await resend(server, { challenge_id: capped.body.challenge_id, method: 'sms' }), { status: 429 }, 'asking for the SMS says why');
  t.ok(isPair((await verify(server, { challenge_id: capped.body.challenge_id, method: 'totp', code: await totpAt(secret, clock) })).body), 'and the authenticator signs in');

  // The SMS provider is down.
  clock.advance(3601);
  await twilio.close();
  const down = await loginAs(server, 'victim@example.com');
  t.equal(down.status, 200, 'a provider outage does not fail the sign-in either');
  t.notOk(down.body.sent);
  clock.advance(30);
  t.ok(isPair((await verify(server, { challenge_id: down.body.challenge_id, method: 'totp', code: await totpAt(secret, clock) })).body));
  const events = await auditLog(server);
  t.ok(events.some((e) => e.type === 'mfa.code_sent' && e.outcome === 'failure'), 'the failed send is audited');
});
