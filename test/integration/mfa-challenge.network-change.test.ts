/**
 * A sign-in survives a network change: its challenge is bound to the login (challenge id, user, device
 * id), not to the address. A verify or resend from another address is allowed, audited as
 * `login.ip_changed`, and judged by the new-network rule as if the sign-in came from there; with
 * SESSION_IP_BINDING=strict it is refused. Another device id answers `device_mismatch` and nothing else
 * about the challenge. The browser form's challenge follows the same rule (test/e2e/interaction-mfa).
 */
import t from 'tap';
import type { Effective } from '../../src/services/rbac/effective.js';
import type { Actor } from '../../src/services/rbac/service.js';
import { api, seedAuthUser } from '../helpers/auth.js';
import { auditLog, challengeFor, codeIn, enrolTotp, from, isPair, mailbox, resend, seedWithSession, startMfaServer, subjectOf, totpAt, verify } from '../helpers/mfa.js';

const wifi = from('203.0.113.7');
const mobile = from('198.51.100.20');

async function emailFactorUser(env: Awaited<ReturnType<typeof startMfaServer>>) {
  const { server, smtp } = env;
  const { user, pair } = await seedWithSession(server, 'alice@example.com', {}, wifi);
  const box = mailbox(smtp, 'alice@example.com');
  const enrolled = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token: pair.access_token });
  await api(server, 'POST', `/api/auth/mfa/email/${enrolled.body.factor_id}/confirm/`, { token: pair.access_token, body: { code: codeIn(await box.next()) } });
  await box.next(); // factor-change notice
  return { user, box };
}

t.test('a verify and a resend from another network are allowed and audited', async (t) => {
  const env = await startMfaServer(t, { IP_VERIFICATION: 'notify' });
  const { server } = env;
  const { user, box } = await emailFactorUser(env);
  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'phone' }, wifi);
  await box.next();
  env.clock.advance(31);
  const resent = await resend(server, { challenge_id: challenge.challenge_id, method: 'email', device_id: 'phone' }, mobile);
  t.equal(resent.status, 202, 'resend from mobile data');
  const done = await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code: codeIn(await box.next()), device_id: 'phone' }, mobile);
  t.ok(isPair(done.body), 'verify from mobile data completes the sign-in');

  const events = (await auditLog(server)).filter((e) => e.subjectId === user.id);
  const moved = events.filter((e) => e.type === 'login.ip_changed');
  t.equal(moved.length, 2, 'each use from the new address is audited');
  t.match(moved[0], { outcome: 'success', ip: '198.51.100.20', details: { from_network: '203.0.113.0/24', to_network: '198.51.100.0/24' } });
  t.ok(events.some((e) => e.type === 'login.new_ip' && (e.details as { network?: string }).network === '198.51.100.0/24'), 'the new-network rule judged the network it finished from');
  t.match(subjectOf(await box.next()), /new sign-in/, 'and (IP_VERIFICATION=notify) the user is told');
});

t.test('SESSION_IP_BINDING=strict: a sign-in finishes only where it started', async (t) => {
  const env = await startMfaServer(t, { SESSION_IP_BINDING: 'strict' });
  const { server, clock } = env;
  const { pair } = await seedWithSession(server, 'alice@example.com', {}, wifi);
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'phone' }, wifi);
  const body = { challenge_id: challenge.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'phone' };
  t.match(await verify(server, body, mobile), { status: 400, body: { error: 'invalid_challenge' } });
  t.match(await verify(server, body, from('203.0.113.8')), { status: 400, body: { error: 'invalid_challenge' } }, 'even in the same /24');
  t.ok(isPair((await verify(server, body, wifi)).body), 'the same address still works');
});

t.test('another device id: device_mismatch, revealing nothing else', async (t) => {
  const env = await startMfaServer(t);
  const { server, clock } = env;
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const { secret } = await enrolTotp(server, pair.access_token, clock);
  const open = await challengeFor(server, 'alice@example.com', { device_id: 'phone' });
  const withoutDevice = await challengeFor(server, 'alice@example.com');
  const done = await challengeFor(server, 'alice@example.com', { device_id: 'tablet' });
  t.ok(isPair((await verify(server, { challenge_id: done.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'tablet' })).body));

  const expect = { status: 400, body: { error: 'device_mismatch', message: String } };
  for (const [label, body] of [
    ['another device id', { challenge_id: open.challenge_id, device_id: 'laptop' }],
    ['no device id', { challenge_id: open.challenge_id }],
    ['a device id where the login had none', { challenge_id: withoutDevice.challenge_id, device_id: 'phone' }],
    ['a completed login from another device', { challenge_id: done.challenge_id, device_id: 'phone' }],
  ] as const) {
    const res = await verify(server, { method: 'totp', code: '123456', ...body });
    t.match(res, expect, label);
    t.same(Object.keys(res.body).sort(), ['error', 'message'], `${label}: no attempts, reason or state`);
    t.match(await resend(server, { method: 'email', ...body }), expect, `${label} (resend)`);
  }
  clock.advance(301);
  t.match(await verify(server, { challenge_id: open.challenge_id, device_id: 'laptop', method: 'totp', code: '123456' }), expect, 'an expired login from another device');
  t.match(await verify(server, { challenge_id: 'unknown', device_id: 'laptop', method: 'totp', code: '123456' }), { status: 400, body: { error: 'invalid_challenge' } }, 'an unknown challenge is still invalid_challenge');
});

t.test('the new-network rule: a login that proved nothing by code gets a new_ip step when it moves to a new network', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge', IP_VERIFICATION: 'challenge' });
  const { server, smtp, clock } = env;
  const user = await seedAuthUser(server, 'ops@example.com');
  const box = mailbox(smtp, 'ops@example.com');
  const first = await challengeFor(server, 'ops@example.com', { device_id: 'desk' }, wifi);
  const verified = await verify(server, { challenge_id: first.challenge_id, method: 'email', code: codeIn(await box.next()), device_id: 'desk' }, wifi);
  t.ok(isPair(verified.body), 'the device is verified and trusted');

  const superuser: Actor = {
    audit: { type: 'system' },
    effective: { subject: { kind: 'client', id: 'test' }, label: 'test', roles: new Map(), permissions: new Map(), grants: new Map(), level: 1_000_000, mfaRequired: false, superuser: true, validUntil: Infinity } satisfies Effective,
  };
  const { rbac } = server.app.keryu.services;
  await rbac.createRole({ name: 'secops', mfaRequired: true }, superuser);
  await rbac.assignRole(user.id, { role: 'secops' }, superuser);
  const step = await challengeFor(server, 'ops@example.com', { device_id: 'desk', device_token: verified.body.device_token }, wifi);
  t.match(step, { reason: 'enroll' }, 'from the known network the trusted device goes straight to enrolment');

  const during = { challenge_id: step.challenge_id, device_id: 'desk' };
  t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { body: during, headers: mobile }), { status: 400, body: { error: 'method_not_allowed' } }, 'from a new network: no enrolment before the network is verified');
  const mail = await box.next();
  t.match(subjectOf(mail), /new network/, 'a code for the new network went to the account');
  const next = await verify(server, { ...during, method: 'email', code: codeIn(mail) }, mobile);
  t.match(next.body, { reason: 'enroll' }, 'after it, enrolment');
  const started = await api<{ factor_id: string; secret: string }>(server, 'POST', '/api/auth/mfa/totp/', { body: during, headers: mobile });
  t.equal(started.status, 201);
  const confirmed = await api(server, 'POST', `/api/auth/mfa/totp/${started.body.factor_id}/confirm/`, { body: { ...during, code: await totpAt(started.body.secret, clock) }, headers: mobile });
  t.ok(isPair(confirmed.body as never), 'and the sign-in completes');
});
