/**
 * App device trust rests on a secret the server issued, never on the client-chosen `device_id` label: a
 * completed sign-in returns a signed `device_token`; only a later login that sends it skips the new-device
 * check, keeps the device's own brute-force count, and goes straight to enrolment when MFA is required.
 * Someone with the password and the (public) device id gets none of that.
 */
import t from 'tap';
import type { Effective } from '../../src/services/rbac/effective.js';
import type { Actor } from '../../src/services/rbac/service.js';
import { seedAuthUser } from '../helpers/auth.js';
import { challengeFor, codeIn, isPair, loginAs, mailbox, startMfaServer, verify } from '../helpers/mfa.js';

const VERIFY_DEVICES = { DEVICE_VERIFICATION: 'challenge', IP_VERIFICATION: 'off' };

async function verifiedPhone(env: Awaited<ReturnType<typeof startMfaServer>>, email = 'alice@example.com') {
  const box = mailbox(env.smtp, email);
  const first = await challengeFor(env.server, email, { device_id: 'phone' });
  t.equal(first.reason, 'new_device');
  const done = await verify(env.server, { challenge_id: first.challenge_id, method: 'email', code: codeIn(await box.next()), device_id: 'phone' });
  t.ok(isPair(done.body), 'the owner verifies the phone');
  const token = done.body.device_token as string | undefined;
  t.match(token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, 'and gets a device token');
  return { box, token: token ?? '' };
}

t.test('only the device token makes a device trusted; its device_id does not', async (t) => {
  const env = await startMfaServer(t, VERIFY_DEVICES);
  const { server } = env;
  await seedAuthUser(server, 'alice@example.com');
  await seedAuthUser(server, 'bob@example.com');
  const { token } = await verifiedPhone(env);

  const owner = await loginAs(server, 'alice@example.com', { device_id: 'phone', device_token: token });
  t.ok(isPair(owner.body), 'the token skips the new-device check');
  t.notOk(owner.body.device_token, 'and no new token is issued to a device that proved one');
  t.ok(isPair((await loginAs(server, 'alice@example.com', { device_id: 'renamed', device_token: token })).body), 'whatever the label says');

  t.match(await loginAs(server, 'alice@example.com', { device_id: 'phone' }), { status: 200, body: { reason: 'new_device' } }, 'the password and the device id: verified again');
  const forgeries: Array<[string, string]> = [
    ['a forged token', 'forged.value'],
    ['a token with its signature altered', `${token.split('.')[0]}.${'A'.repeat(43)}`],
    ['a truncated token', token.slice(0, -2)],
  ];
  for (const [label, forged] of forgeries) {
    t.match(await loginAs(server, 'alice@example.com', { device_id: 'phone', device_token: forged }), { status: 200, body: { reason: 'new_device' } }, label);
  }
  const bobBox = mailbox(env.smtp, 'bob@example.com');
  const bobFirst = await challengeFor(server, 'bob@example.com', { device_id: 'phone' });
  const bobDone = await verify(server, { challenge_id: bobFirst.challenge_id, method: 'email', code: codeIn(await bobBox.next()), device_id: 'phone' });
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'phone', device_token: bobDone.body.device_token }), { body: { reason: 'new_device' } }, 'another account\'s token');
});

t.test('the device\'s own brute-force count needs the token', async (t) => {
  const env = await startMfaServer(t, { ...VERIFY_DEVICES, LOGIN_LOCK_AFTER: '5', LOGIN_DELAY_AFTER: '5000' });
  const { server } = env;
  await seedAuthUser(server, 'alice@example.com');
  const { token } = await verifiedPhone(env);
  for (let i = 0; i < 5; i++) t.equal((await loginAs(server, 'alice@example.com', { password: 'wrong password', device_id: 'phone' })).status, 401);
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'phone' }), { status: 429 }, 'the device id shares the identifier\'s count: locked');
  t.ok(isPair((await loginAs(server, 'alice@example.com', { device_id: 'phone', device_token: token })).body), 'the token keeps its own count: the owner gets in');
});

t.test('MFA required: enrolment without a code to the account only for a device that proves its token', async (t) => {
  const env = await startMfaServer(t, VERIFY_DEVICES);
  const { server } = env;
  const user = await seedAuthUser(server, 'alice@example.com');
  const { token } = await verifiedPhone(env);
  const superuser: Actor = {
    audit: { type: 'system' },
    effective: { subject: { kind: 'client', id: 'test' }, label: 'test', roles: new Map(), permissions: new Map(), grants: new Map(), level: 1_000_000, mfaRequired: false, superuser: true, validUntil: Infinity } satisfies Effective,
  };
  const { rbac } = server.app.keryu.services;
  await rbac.createRole({ name: 'secops', mfaRequired: true }, superuser);
  await rbac.assignRole(user.id, { role: 'secops' }, superuser);

  const thief = await challengeFor(server, 'alice@example.com', { device_id: 'phone' });
  t.match(thief, { reason: 'new_device' }, 'the device id alone: a code to the account first, so the thief cannot enrol');
  t.match(await challengeFor(server, 'alice@example.com', { device_id: 'phone', device_token: token }), { reason: 'enroll' }, 'the token: straight to enrolment');
});
