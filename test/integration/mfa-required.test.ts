/**
 * MFA required (a role with mfa_required, or MFA_REQUIRED=true) for a user with no factor: the sign-in
 * first proves the mailbox on an untrusted device (so a stolen password cannot enrol the thief's
 * authenticator), then asks to enrol (`enroll`); the enrolment endpoints take that login's challenge
 * instead of a Bearer token, and confirming the factor completes the login. A challenge whose current step
 * is not enrolment enrols nothing.
 */
import { decodeJwt } from 'jose';
import t from 'tap';
import type { Effective } from '../../src/services/rbac/effective.js';
import type { Actor } from '../../src/services/rbac/service.js';
import { api, seedAuthUser } from '../helpers/auth.js';
import {
  auditLog,
  challengeFor,
  codeIn,
  from,
  isPair,
  loginAs,
  mailbox,
  startMfaServer,
  totpAt,
  verify,
  wrongCode,
  type LoginAnswer,
  type MfaServer,
} from '../helpers/mfa.js';

const superuser: Actor = {
  audit: { type: 'system' },
  effective: {
    subject: { kind: 'client', id: 'test-bootstrap' },
    label: 'test',
    roles: new Map(),
    permissions: new Map(),
    grants: new Map(),
    level: 1_000_000,
    mfaRequired: false,
    superuser: true,
    validUntil: Infinity,
  } satisfies Effective,
};

async function adminWithMfaRole(env: MfaServer, email: string) {
  const { rbac } = env.server.app.keryu.services;
  const user = await seedAuthUser(env.server, email);
  if (!(await rbac.findRole('secops'))) await rbac.createRole({ name: 'secops', description: 'security operations', mfaRequired: true }, superuser);
  await rbac.assignRole(user.id, { role: 'secops' }, superuser);
  return user;
}

const enrol = (env: MfaServer, type: 'totp' | 'sms' | 'email', body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  api<{ factor_id?: string; secret?: string; error?: string }>(env.server, 'POST', `/api/auth/mfa/${type}/`, { body, headers });
const confirm = (env: MfaServer, type: 'totp' | 'sms' | 'email', factorId: string, body: Record<string, unknown>, headers: Record<string, string> = {}) =>
  api<LoginAnswer & { active?: boolean }>(env.server, 'POST', `/api/auth/mfa/${type}/${factorId}/confirm/`, { body, headers });

t.test('an admin whose role requires MFA: mailbox first, then TOTP enrolment with the challenge, then tokens', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'off' });
  const { server, smtp, clock } = env;
  const admin = await adminWithMfaRole(env, 'admin@example.com');
  const inbox = mailbox(smtp, 'admin@example.com');
  const here = from('203.0.113.50');

  const start = await challengeFor(server, 'admin@example.com', { device_id: 'adm' }, here);
  t.match(start, { reason: 'new_device', methods: ['email'], sent: { method: 'email' } }, 'even with DEVICE_VERIFICATION=off, the mailbox is proven first');
  const id = start.challenge_id;
  const during = { challenge_id: id, device_id: 'adm' };
  t.match(await enrol(env, 'totp', during, here), { status: 400, body: { error: 'method_not_allowed' } }, 'a stolen password alone cannot enrol');
  t.match(await enrol(env, 'sms', { ...during, phone: '+14155552671' }, here), { status: 400, body: { error: 'method_not_allowed' } });
  t.match(await enrol(env, 'email', { ...during, email: 'thief@example.net' }, here), { status: 400, body: { error: 'method_not_allowed' } });
  t.equal(env.twilio.messages.length + smtp.messages.filter((m) => m.to.includes('thief@example.net')).length, 0, 'nothing was sent to the thief');

  const code = codeIn(await inbox.next());
  const next = await verify(server, { challenge_id: id, method: 'email', code, device_id: 'adm' }, here);
  t.equal(next.status, 200);
  t.match(next.body, { mfa_required: true, challenge_id: id, reason: 'enroll', methods: ['totp', 'sms', 'email'] }, 'then: enrol a factor');
  t.notOk(isPair(next.body), 'no tokens yet');
  t.match(await verify(server, { challenge_id: id, method: 'email', code, device_id: 'adm' }, here), { status: 400, body: { error: 'method_not_allowed' } }, 'the enrol step is not passed with a code');
  t.match(await api(server, 'POST', '/api/auth/verify/resend/', { body: { challenge_id: id, method: 'email', device_id: 'adm' }, headers: here }), { status: 400, body: { error: 'method_not_allowed' } });

  // Another address may continue the login (mfa-challenge.network-change.test.ts); another device may not.
  t.match(await enrol(env, 'totp', { challenge_id: id, device_id: 'other' }, here), { status: 400, body: { error: 'device_mismatch' } }, 'another device');
  t.match(await enrol(env, 'totp', { challenge_id: id }, here), { status: 400, body: { error: 'device_mismatch' } }, 'no device');
  t.match(await enrol(env, 'totp', { challenge_id: 'made-up', device_id: 'adm' }, here), { status: 400, body: { error: 'invalid_challenge' } });

  const started = await enrol(env, 'totp', during, here);
  t.equal(started.status, 201, 'enrolment with the challenge and no Bearer token');
  const factorId = started.body.factor_id!;
  const secret = started.body.secret!;
  const right = await totpAt(secret, clock);
  t.match(await confirm(env, 'totp', factorId, { code: wrongCode(right), ...during }, here), { status: 401, body: { error: 'invalid_code' } });
  t.match(await confirm(env, 'totp', factorId, { code: right, challenge_id: id, device_id: 'other' }, here), { status: 400, body: { error: 'device_mismatch' } });
  const done = await confirm(env, 'totp', factorId, { code: right, ...during }, here);
  t.equal(done.status, 200);
  t.ok(isPair(done.body), 'confirming the factor completes the login');
  t.equal(decodeJwt(done.body.access_token!).sub, admin.id);
  t.match(await api(server, 'GET', '/api/auth/mfa/', { token: done.body.access_token! }), { body: { items: [{ id: factorId, type: 'totp', active: true }] } });
  t.match(await enrol(env, 'totp', during, here), { status: 400, body: { error: 'challenge_consumed' } }, 'the challenge is used up');

  clock.advance(30);
  const later = await challengeFor(server, 'admin@example.com', { device_id: 'adm' }, here);
  t.match(later, { reason: 'mfa', methods: ['totp'] }, 'from now on: the factor');
  t.ok(isPair((await verify(server, { challenge_id: later.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'adm' }, here)).body));

  const events = (await auditLog(server)).filter((e) => e.subjectId === admin.id);
  const passed = events.filter((e) => e.type === 'login.challenge_passed').map((e) => (e.details as { reason: string }).reason);
  t.same(passed.slice(0, 2), ['new_device', 'enroll'], 'both steps audited in order');
  t.ok(events.some((e) => e.type === 'mfa.factor_enrolled'));
  t.ok(events.some((e) => e.type === 'mfa.factor_activated' && e.outcome === 'success'));
});

t.test('a trusted device goes straight to enrolment when a role starts requiring MFA', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  const { server, smtp, clock } = env;
  const user = await seedAuthUser(server, 'ops@example.com');
  const inbox = mailbox(smtp, 'ops@example.com');
  const first = await challengeFor(server, 'ops@example.com', { device_id: 'desk' });
  const verified = await verify(server, { challenge_id: first.challenge_id, method: 'email', code: codeIn(await inbox.next()), device_id: 'desk' });
  t.ok(isPair(verified.body));
  const desk = { device_id: 'desk', device_token: verified.body.device_token };

  const { rbac } = server.app.keryu.services;
  await rbac.createRole({ name: 'secops', mfaRequired: true }, superuser);
  await rbac.assignRole(user.id, { role: 'secops' }, superuser);
  const step = await challengeFor(server, 'ops@example.com', desk);
  t.match(step, { reason: 'enroll' }, 'the trusted device (its device token) skips the mailbox step');
  t.notOk(step.sent);
  const started = await enrol(env, 'totp', { challenge_id: step.challenge_id, device_id: 'desk' });
  t.ok(isPair((await confirm(env, 'totp', started.body.factor_id!, { code: await totpAt(started.body.secret!, clock), challenge_id: step.challenge_id, device_id: 'desk' })).body));

  t.match(await challengeFor(server, 'ops@example.com', { device_id: 'elsewhere' }), { reason: 'mfa' }, 'another device: the factor, not enrolment');
});

t.test('MFA_REQUIRED=true: every user without a factor enrols (SMS or email) at the next sign-in', async (t) => {
  const env = await startMfaServer(t, { MFA_REQUIRED: 'true', DEVICE_VERIFICATION: 'off' });
  const { server, smtp, twilio } = env;
  await seedAuthUser(server, 'sam@example.com');
  await seedAuthUser(server, 'emma@example.com');
  const sam = mailbox(smtp, 'sam@example.com');
  const emma = mailbox(smtp, 'emma@example.com');

  // SMS
  const s = await challengeFor(server, 'sam@example.com', { device_id: 'sam-phone' });
  t.equal(s.reason, 'new_device');
  const enrolStep = await verify(server, { challenge_id: s.challenge_id, method: 'email', code: codeIn(await sam.next()), device_id: 'sam-phone' });
  t.match(enrolStep.body, { reason: 'enroll' });
  for (const phone of ['555-0100', '+1 555']) {
    t.match(await enrol(env, 'sms', { phone, challenge_id: s.challenge_id, device_id: 'sam-phone' }), { status: 400, body: { error: 'invalid_request' } }, 'E.164 applies here too');
  }
  const smsFactor = await enrol(env, 'sms', { phone: '+14155552671', challenge_id: s.challenge_id, device_id: 'sam-phone' });
  t.equal(smsFactor.status, 201);
  const smsCode = await twilio.codeOf(1);
  t.equal(twilio.messages[0]?.to, '+14155552671');
  const samDone = await confirm(env, 'sms', smsFactor.body.factor_id!, { code: smsCode, challenge_id: s.challenge_id, device_id: 'sam-phone' });
  t.ok(isPair(samDone.body), 'sam signs in after confirming his phone');

  // Email (the account address)
  const e = await challengeFor(server, 'emma@example.com');
  await verify(server, { challenge_id: e.challenge_id, method: 'email', code: codeIn(await emma.next()) });
  const emailFactor = await enrol(env, 'email', { challenge_id: e.challenge_id });
  t.equal(emailFactor.status, 201);
  const emmaDone = await confirm(env, 'email', emailFactor.body.factor_id!, { code: codeIn(await emma.next()), challenge_id: e.challenge_id });
  t.ok(isPair(emmaDone.body), 'emma signs in after confirming her address');
  const again = await challengeFor(server, 'emma@example.com');
  t.match(again, { reason: 'mfa', methods: ['email'], sent: { method: 'email' } });
  await emma.next(); // factor-change notice
  t.ok(isPair((await verify(server, { challenge_id: again.challenge_id, method: 'email', code: codeIn(await emma.next()) })).body));
});

t.test('a challenge whose step is not enrolment enrols nothing', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  const { server, smtp } = env;
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const c = await challengeFor(server, 'alice@example.com', { device_id: 'd' });
  t.equal(c.reason, 'new_device');
  for (const type of ['totp', 'sms', 'email'] as const) {
    t.match(await enrol(env, type, { challenge_id: c.challenge_id, device_id: 'd', phone: '+14155552671' }), { status: 400, body: { error: 'method_not_allowed' } }, type);
  }
  t.match(await confirm(env, 'totp', '00000000-0000-0000-0000-000000000000', { code: '123456', challenge_id: c.challenge_id, device_id: 'd' }), { status: 400, body: { error: 'method_not_allowed' } });
  await inbox.next();
  t.match(await loginAs(server, 'nobody@example.com'), { status: 401, body: { error: 'invalid_credentials' } }, 'unknown accounts get nothing either');
});
