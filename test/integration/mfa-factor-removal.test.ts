/**
 * Managing factors after sign-in: removal needs re-authentication (the password, or a code from an active
 * factor, which is then spent), another user's factor id answers 404 and changes nothing, the preferred
 * factor decides which code is sent first, and every change mails a factor-change notice.
 */
import t from 'tap';
import { api } from '../helpers/auth.js';
import {
  loginAs,
  auditLog,
  challengeFor,
  codeIn,
  enrolTotp,
  isPair,
  mailbox,
  pairFor,
  seedWithSession,
  startMfaServer,
  subjectOf,
  totpAt,
  verify,
  wrongCode,
  type MfaServer,
} from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

interface FactorItem {
  id: string;
  type: string;
  preferred: boolean;
  active: boolean;
}

async function aliceWithFactors(env: MfaServer) {
  const { server, twilio, clock, smtp } = env;
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const token = pair.access_token;
  const inbox = mailbox(smtp, 'alice@example.com');
  const totp = await enrolTotp(server, token, clock);
  const sms = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token, body: { phone: '+14155552671' } });
  await api(server, 'POST', `/api/auth/mfa/sms/${sms.body.factor_id}/confirm/`, { token, body: { code: await twilio.codeOf(1) } });
  const { codes } = (await api<{ codes: string[] }>(server, 'POST', '/api/auth/mfa/recovery-codes/', { token })).body;
  for (let i = 0; i < 3; i++) await inbox.next(); // three factor-change notices
  // Factors made in the same instant (the manual clock) come in no particular order: compare them by type.
  const rank = ['totp', 'sms', 'email', 'recovery_code'];
  const list = async () => (await api<{ items: FactorItem[] }>(server, 'GET', '/api/auth/mfa/', { token })).body.items.sort((a, b) => rank.indexOf(a.type) - rank.indexOf(b.type));
  const recoveryId = (await list()).find((f) => f.type === 'recovery_code')!.id;
  return { user, token, inbox, totp, smsId: sms.body.factor_id, codes, recoveryId, list };
}

t.test('preferred factor: chosen with PUT, it decides what is sent first', async (t) => {
  const env = await startMfaServer(t, { OTP_SENDS_PER_HOUR: '100' });
  const { server, twilio } = env;
  const alice = await aliceWithFactors(env);
  const { pair: bob } = await seedWithSession(server, 'bob@example.com');

  t.match(await alice.list(), [{ type: 'totp', preferred: true }, { type: 'sms', preferred: false }, { type: 'recovery_code', preferred: false }], 'the first factor is preferred');
  const totpFirst = await challengeFor(server, 'alice@example.com');
  t.match(totpFirst, { reason: 'mfa' });
  t.same([...(totpFirst.methods ?? [])].sort(), ['recovery_code', 'sms', 'totp']);
  t.notOk(totpFirst.sent, 'preferred TOTP: nothing is sent');

  t.match(await api(server, 'PUT', `/api/auth/mfa/${alice.smsId}/`, { token: alice.token, body: { preferred: true } }), { status: 200, body: { id: alice.smsId, preferred: true } });
  t.match(await alice.list(), [{ type: 'totp', preferred: false }, { type: 'sms', preferred: true }, { type: 'recovery_code' }], 'one preferred factor');
  const smsFirst = await challengeFor(server, 'alice@example.com');
  t.match(smsFirst, { sent: { method: 'sms' } }, 'preferred SMS: the code is sent at once');
  t.equal(twilio.messages.length, 2);
  t.ok(isPair((await verify(server, { challenge_id: smsFirst.challenge_id, method: 'totp', code: await totpAt(alice.totp.secret, env.clock) })).body), 'any offered method still passes');

  t.match(await api(server, 'PUT', `/api/auth/mfa/${alice.recoveryId}/`, { token: alice.token, body: { preferred: true } }), { status: 400 }, 'recovery codes cannot be preferred');
  t.match(await api(server, 'PUT', `/api/auth/mfa/${alice.smsId}/`, { token: alice.token, body: { preferred: false } }), { status: 400 }, 'only preferred: true');
  t.match(await api(server, 'PUT', `/api/auth/mfa/${alice.smsId}/`, { token: bob.access_token, body: { preferred: true } }), { status: 404, body: { error: 'not_found' } }, 'another user\'s factor: 404');
  t.match(await api(server, 'PUT', '/api/auth/mfa/not-a-uuid/', { token: alice.token, body: { preferred: true } }), { status: 404 });
  const pending = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/totp/', { token: alice.token });
  t.match(await api(server, 'PUT', `/api/auth/mfa/${pending.body.factor_id}/`, { token: alice.token, body: { preferred: true } }), { status: 400 }, 'an unconfirmed factor cannot be preferred');
});

t.test('removal: re-authentication required, another user\'s id is 404, the notice is sent', async (t) => {
  // Many wrong answers on purpose: the brute-force delay they cause is the subject of the last test.
  const env = await startMfaServer(t, { OTP_SENDS_PER_HOUR: '100', LOGIN_DELAY_AFTER: '50' });
  const { server, twilio, clock } = env;
  const alice = await aliceWithFactors(env);
  const { pair: bob } = await seedWithSession(server, 'bob@example.com');
  const remove = (id: string, body: unknown, token = alice.token) => api(server, 'DELETE', `/api/auth/mfa/${id}/`, { token, body });

  t.match(await remove(alice.totp.factorId, { password: 'not the password' }), { status: 401, body: { error: 'invalid_credentials' } }, 'wrong password');
  t.match(await remove(alice.totp.factorId, { method: 'totp', code: wrongCode(await totpAt(alice.totp.secret, clock)) }), { status: 401, body: { error: 'invalid_credentials' } }, 'wrong code');
  t.match(await remove(alice.totp.factorId, { method: 'recovery_code', code: 'aaaa-bbbb-cccc' }), { status: 401 }, 'wrong recovery code');
  t.match(await remove(alice.totp.factorId, { method: 'sms', code: '123456' }), { status: 401 }, 'an SMS code nobody asked for');
  t.match(await remove(alice.totp.factorId, {}), { status: 400 }, 'no re-authentication at all');
  t.match(await remove(alice.totp.factorId, { password: TEST_PASSWORD, method: 'totp', code: '123456' }), { status: 400 }, 'not both');
  t.match(await remove(alice.totp.factorId, { method: 'password', code: TEST_PASSWORD }), { status: 400 });
  t.match(await remove(alice.totp.factorId, { password: TEST_PASSWORD }, bob.access_token), { status: 404, body: { error: 'not_found' } }, 'bob, with his own right password, cannot remove alice\'s factor');
  t.match(await remove('00000000-0000-0000-0000-000000000000', { password: TEST_PASSWORD }), { status: 404 });
  t.equal((await alice.list()).length, 3, 'nothing was removed');

  // With a TOTP code (spent: the same code cannot sign in afterwards).
  const code = await totpAt(alice.totp.secret, clock);
  t.equal((await remove(alice.smsId, { method: 'totp', code })).status, 204, 'removed with a TOTP code');
  t.match(subjectOf(await alice.inbox.next()), /sign-in methods changed/, 'a factor-change notice');
  const challenge = await challengeFor(server, 'alice@example.com');
  t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code }), { status: 401 }, 'the re-authentication code was spent');
  t.notOk(challenge.methods?.includes('sms'), 'the removed factor is no longer offered');

  // With a recovery code (spent too).
  t.equal((await remove(alice.recoveryId, { method: 'recovery_code', code: alice.codes[0] })).status, 204);
  t.match((await alice.inbox.next()).text, /removed from your account/);
  t.same((await alice.list()).map((f) => f.type), ['totp']);

  // With an SMS code from /reauthenticate/ (needs an active SMS factor).
  t.match(await api(server, 'POST', '/api/auth/mfa/reauthenticate/', { token: alice.token, body: { method: 'sms' } }), { status: 400, body: { error: 'method_not_allowed' } }, 'no SMS factor left');
  clock.advance(30);
  const sms = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token: alice.token, body: { phone: '+14155552671' } });
  await api(server, 'POST', `/api/auth/mfa/sms/${sms.body.factor_id}/confirm/`, { token: alice.token, body: { code: await twilio.codeOf(twilio.messages.length) } });
  await alice.inbox.next();
  clock.advance(30);
  t.match(await api(server, 'POST', '/api/auth/mfa/reauthenticate/', { token: alice.token, body: { method: 'sms' } }), { status: 202, body: { expires_in: 300 } });
  const reauth = await twilio.codeOf(twilio.messages.length);
  t.match(await remove(alice.totp.factorId, { method: 'sms', code: wrongCode(reauth) }), { status: 401 });
  t.equal((await remove(alice.totp.factorId, { method: 'sms', code: reauth })).status, 204, 'removed with an SMS code');
  await alice.inbox.next();
  t.match(await remove(sms.body.factor_id, { method: 'sms', code: reauth }), { status: 401 }, 'the SMS code was spent');

  // With the password.
  t.equal((await remove(sms.body.factor_id, { password: TEST_PASSWORD })).status, 204, 'removed with the password');
  t.match(await remove(sms.body.factor_id, { password: TEST_PASSWORD }), { status: 404 }, 'once');
  await alice.inbox.next();
  t.same(await alice.list(), []);
  t.ok(await pairFor(server, 'alice@example.com'), 'no factor left: the password signs in again');

  const events = (await auditLog(server)).filter((e) => e.type === 'mfa.factor_removed');
  t.equal(events.filter((e) => e.outcome === 'success').length, 4);
  t.ok(events.filter((e) => e.outcome === 'failure').length >= 4, 'failed re-authentications are audited');
  const dump = JSON.stringify(events);
  t.notOk(dump.includes(TEST_PASSWORD) || dump.includes(code) || dump.includes(reauth) || dump.includes(alice.codes[0]!), 'no password or code in the audit log');
});

t.test('an emailed re-authentication code removes a factor', async (t) => {
  const env = await startMfaServer(t);
  const { server, smtp, clock } = env;
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const inbox = mailbox(smtp, 'alice@example.com');
  const token = pair.access_token;
  const email = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token });
  await api(server, 'POST', `/api/auth/mfa/email/${email.body.factor_id}/confirm/`, { token, body: { code: codeIn(await inbox.next()) } });
  await inbox.next();
  clock.advance(30);
  t.equal((await api(server, 'POST', '/api/auth/mfa/reauthenticate/', { token, body: { method: 'email' } })).status, 202);
  const code = codeIn(await inbox.next());
  t.equal((await api(server, 'DELETE', `/api/auth/mfa/${email.body.factor_id}/`, { token, body: { method: 'email', code } })).status, 204);
  t.match((await inbox.next()).text, /An email address for codes was removed from your account/);
});

t.test('re-authentication counts against the brute-force limits: a stolen session cannot guess the password here', async (t) => {
  const env = await startMfaServer(t, { LOGIN_DELAY_AFTER: '3', LOGIN_LOCK_AFTER: '1000' });
  const { server, clock } = env;
  const alice = await aliceWithFactors(env);
  const remove = (body: unknown) => api<{ error?: string }>(server, 'DELETE', `/api/auth/mfa/${alice.totp.factorId}/`, { token: alice.token, body });
  for (let i = 0; i < 3; i++) t.equal((await remove({ password: `guess number ${i}` })).status, 401);
  const slowed = await remove({ password: TEST_PASSWORD });
  t.match(slowed, { status: 429, body: { error: 'too_many_attempts' } }, 'after three failures even the right password waits');
  t.ok(Number(slowed.headers.get('retry-after')) > 0, 'with Retry-After');
  t.equal((await alice.list()).length, 3, 'nothing was removed');
  t.equal((await loginAs(server, 'alice@example.com')).status, 429, 'the failures count for sign-ins of that identifier too');
  clock.advance(2);
  t.equal((await remove({ password: TEST_PASSWORD })).status, 204, 'after the delay the right password works');
});
