/**
 * The "done when": a user with TOTP, a user with SMS, a user with only an email factor and an admin
 * whose role requires MFA each complete the API sign-in; a stolen password alone gets nowhere; every
 * challenge issued, passed, failed and expired and every factor enrolled, activated and removed is in the
 * audit log, whose details hold no code, secret, password or token.
 */
import t from 'tap';
import type { Actor } from '../../src/services/rbac/service.js';
import { api, seedAuthUser } from '../helpers/auth.js';
import {
  auditLog,
  challengeFor,
  codeIn,
  enrolTotp,
  isPair,
  loginAs,
  mailbox,
  startMfaServer,
  totpAt,
  verify,
  wrongCode,
  type LoginAnswer,
} from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const superuser: Actor = {
  audit: { type: 'system' },
  effective: { subject: { kind: 'client', id: 'test' }, label: 'test', roles: new Map(), permissions: new Map(), grants: new Map(), level: 1_000_000, mfaRequired: false, superuser: true, validUntil: Infinity },
};

t.test('four kinds of account sign in; a stolen password gets nowhere; everything is audited without secrets', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge', IP_VERIFICATION: 'notify', OTP_SENDS_PER_HOUR: '100' });
  const { server, smtp, twilio, clock } = env;
  /** Everything secret seen in this test: none of it may appear in the audit log. */
  const secrets: string[] = [TEST_PASSWORD];
  const keep = <T extends string | undefined>(value: T): T => {
    if (value) secrets.push(value);
    return value;
  };
  const keepPair = (answer: LoginAnswer) => {
    keep(answer.access_token);
    keep(answer.refresh_token);
    keep(answer.challenge_id);
    return answer;
  };

  // Set-up through the API: each user signs in once from a verified device and enrols a factor.
  const setUp = async (email: string) => {
    const inbox = mailbox(smtp, email);
    await seedAuthUser(server, email);
    const c = keepPair(await challengeFor(server, email, { device_id: `${email}-own` }));
    const pair = keepPair((await verify(server, { challenge_id: c.challenge_id, method: 'email', code: keep(codeIn(await inbox.next())), device_id: `${email}-own` })).body);
    return { inbox, token: pair.access_token! };
  };

  const totpUser = await setUp('totp@example.com');
  const { secret } = await enrolTotp(server, totpUser.token, clock);
  keep(secret);

  const smsUser = await setUp('sms@example.com');
  const sms = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token: smsUser.token, body: { phone: '+14155552671' } });
  t.equal((await api(server, 'POST', `/api/auth/mfa/sms/${sms.body.factor_id}/confirm/`, { token: smsUser.token, body: { code: keep(await twilio.codeOf(twilio.messages.length)) } })).status, 200);

  const emailUser = await setUp('email@example.com');
  const emailFactor = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token: emailUser.token });
  t.equal((await api(server, 'POST', `/api/auth/mfa/email/${emailFactor.body.factor_id}/confirm/`, { token: emailUser.token, body: { code: keep(codeIn(await emailUser.inbox.next())) } })).status, 200);

  const admin = await seedAuthUser(server, 'admin@example.com');
  await server.app.keryu.services.rbac.createRole({ name: 'secops', mfaRequired: true }, superuser);
  await server.app.keryu.services.rbac.assignRole(admin.id, { role: 'secops' }, superuser);
  clock.advance(30);

  // A stolen password alone, from the thief's device, for each account.
  for (const email of ['totp@example.com', 'sms@example.com', 'email@example.com', 'admin@example.com']) {
    const stolen = keepPair((await loginAs(server, email, { device_id: 'thief' })).body);
    t.notOk(isPair(stolen), `${email}: no tokens for the password alone`);
    t.ok(stolen.challenge_id, `${email}: a step (${stolen.reason})`);
    const guess = await verify(server, { challenge_id: stolen.challenge_id, method: stolen.methods![0], code: '000000', device_id: 'thief' });
    t.equal(guess.status, 401, `${email}: a guess fails`);
    t.match(await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: stolen.challenge_id, device_id: 'thief' } }), { status: 401 });
    t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { body: { challenge_id: stolen.challenge_id, device_id: 'thief' } }), { status: 400 }, `${email}: no enrolment of the thief's authenticator`);
  }
  t.match((await loginAs(server, 'admin@example.com', { device_id: 'thief' })).body, { reason: 'new_device' }, 'the admin without a factor: the mailbox first, not enrolment');
  clock.advance(30);

  // Each owner completes the sign-in.
  const totpLogin = await challengeFor(server, 'totp@example.com', { device_id: 'totp-phone' });
  t.match(totpLogin, { reason: 'mfa', methods: ['totp'] });
  t.ok(isPair(keepPair((await verify(server, { challenge_id: totpLogin.challenge_id, method: 'totp', code: keep(await totpAt(secret, clock)), device_id: 'totp-phone' })).body)), 'the TOTP user signs in');

  const smsLogin = keepPair(await challengeFor(server, 'sms@example.com', { device_id: 'sms-phone' }));
  t.match(smsLogin, { reason: 'mfa', methods: ['sms'], sent: { method: 'sms' } });
  t.ok(isPair(keepPair((await verify(server, { challenge_id: smsLogin.challenge_id!, method: 'sms', code: keep(await twilio.codeOf(twilio.messages.length)), device_id: 'sms-phone' })).body)), 'the SMS user signs in');

  const emailLogin = keepPair(await challengeFor(server, 'email@example.com', { device_id: 'mail-laptop' }));
  t.match(emailLogin, { reason: 'mfa', methods: ['email'] });
  const emailCodeMail = smtp.messages.filter((m) => m.to.includes('email@example.com')).at(-1)!;
  t.ok(isPair(keepPair((await verify(server, { challenge_id: emailLogin.challenge_id!, method: 'email', code: keep(codeIn(emailCodeMail)), device_id: 'mail-laptop' })).body)), 'the email-only user signs in');

  const adminLogin = keepPair(await challengeFor(server, 'admin@example.com', { device_id: 'adm' }));
  t.equal(adminLogin.reason, 'new_device');
  const adminMails = smtp.messages.filter((m) => m.to.includes('admin@example.com'));
  const adminStep = keepPair((await verify(server, { challenge_id: adminLogin.challenge_id!, method: 'email', code: keep(codeIn(adminMails.at(-1)!)), device_id: 'adm' })).body);
  t.equal(adminStep.reason, 'enroll');
  const adminTotp = await api<{ factor_id: string; secret: string }>(server, 'POST', '/api/auth/mfa/totp/', { body: { challenge_id: adminLogin.challenge_id, device_id: 'adm' } });
  keep(adminTotp.body.secret);
  const adminDone = keepPair(
    (await api<LoginAnswer>(server, 'POST', `/api/auth/mfa/totp/${adminTotp.body.factor_id}/confirm/`, { body: { code: keep(await totpAt(adminTotp.body.secret, clock)), challenge_id: adminLogin.challenge_id, device_id: 'adm' } })).body,
  );
  t.ok(isPair(adminDone), 'the admin enrols and signs in');

  // An expired challenge and a removed factor, for the log.
  const expiring = keepPair(await challengeFor(server, 'totp@example.com', { device_id: 'totp-phone' }));
  clock.advance(301);
  t.match(await verify(server, { challenge_id: expiring.challenge_id!, method: 'totp', code: wrongCode('123456'), device_id: 'totp-phone' }), { status: 400, body: { error: 'challenge_expired' } });
  const list = await api<{ items: Array<{ id: string }> }>(server, 'GET', '/api/auth/mfa/', { token: adminDone.access_token! });
  t.equal((await api(server, 'DELETE', `/api/auth/mfa/${list.body.items[0]!.id}/`, { token: adminDone.access_token!, body: { password: TEST_PASSWORD } })).status, 204);

  // The log.
  const events = await auditLog(server);
  const has = (type: string, outcome: 'success' | 'failure', details: Record<string, unknown> = {}) =>
    events.some((e) => e.type === type && e.outcome === outcome && Object.entries(details).every(([k, v]) => (e.details as Record<string, unknown>)[k] === v));
  for (const reason of ['mfa', 'new_device']) t.ok(has('login.challenge', 'success', { reason }), `challenge issued (${reason})`);
  for (const reason of ['mfa', 'new_device', 'enroll']) t.ok(has('login.challenge_passed', 'success', { reason }), `challenge passed (${reason})`);
  t.ok(has('login.challenge_failed', 'failure', { reason: 'mfa' }), 'challenge failed');
  t.ok(has('login.challenge_failed', 'failure', { reason: 'new_device' }));
  t.ok(has('login.challenge_expired', 'failure'), 'challenge expired');
  for (const type of ['totp', 'sms', 'email']) {
    t.ok(has('mfa.factor_enrolled', 'success', { type }), `${type} enrolled`);
    t.ok(has('mfa.factor_activated', 'success', { type }), `${type} activated`);
  }
  t.ok(has('mfa.factor_removed', 'success', { type: 'totp' }), 'factor removed');
  t.ok(has('mfa.code_sent', 'success', { channel: 'sms' }) && has('mfa.code_sent', 'success', { channel: 'email' }), 'codes sent');
  t.ok(has('device.trusted', 'success'), 'device trusted');
  t.ok(has('login', 'success') && has('session.created', 'success'), 'sign-ins');
  for (const e of events.filter((x) => x.type.startsWith('login.') || x.type.startsWith('mfa.'))) {
    t.ok(e.ip && e.requestId, `${e.type}: IP and request id recorded`);
  }

  const dump = JSON.stringify(events);
  const details = JSON.stringify(events.map((e) => e.details));
  // Six-digit codes are looked for as whole numbers in the details (ids and addresses could contain the digits by chance).
  const leaked = [...new Set(secrets)].filter((s) => (/^\d{6}$/.test(s) ? new RegExp(`(^|\\D)${s}(\\D|$)`).test(details) : dump.includes(s)));
  t.same(leaked, [], `none of ${new Set(secrets).size} secrets (codes, TOTP seeds, tokens, challenge ids, the password) is in the audit log`);
  t.notOk(dump.includes('4155552671'), 'the phone number only masked');
});
