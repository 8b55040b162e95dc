/**
 * Risk-based steps for accounts with and without factors. DEVICE_VERIFICATION=challenge: a device that
 * has not verified asks for an emailed code, then is trusted (listed, distrustable, for DEVICE_TRUST_TTL);
 * passing a factor trusts it too, in one step. IP_VERIFICATION: notify mails on a new network (/24, /64)
 * only, challenge asks for a code, off does neither.
 */
import t from 'tap';
import { api, seedAuthUser } from '../helpers/auth.js';
import {
  auditLog,
  challengeFor,
  codeIn,
  enrolTotp,
  from,
  isPair,
  loginAs,
  mailbox,
  pairFor,
  reportLinkIn,
  startMfaServer,
  subjectOf,
  totpAt,
  verify,
  wrongCode,
} from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

interface Device {
  id: string;
  device_info: Record<string, string>;
  ip_address: string | null;
  trusted_until: string;
}
const devicesOf = async (server: Parameters<typeof api>[0], token: string) => (await api<{ items: Device[] }>(server, 'GET', '/api/auth/devices/', { token })).body.items;

t.test('DEVICE_VERIFICATION=challenge: a new device needs an emailed code, then is trusted until distrusted', async (t) => {
  const { server, smtp, clock } = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge', DEVICE_TRUST_TTL: String(10 * 86400), ACCESS_TOKEN_TTL: String(30 * 86400) });
  await seedAuthUser(server);
  await seedAuthUser(server, 'bob@example.com');
  const inbox = mailbox(smtp, 'alice@example.com');
  const ua = { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1' };

  const first = await challengeFor(server, 'alice@example.com', { device_id: 'phone', device_name: 'Alice\'s phone' }, from('203.0.113.5', ua));
  t.match(first, { reason: 'new_device', methods: ['email'], sent: { method: 'email', destination: 'a•••@example.com' } }, 'no factor, yet a code by email');
  t.notOk('access_token' in first, 'no token');
  const mail = await inbox.next();
  t.match(subjectOf(mail), /sign-in code for a new device/);
  t.match(mail.text, /device we have not seen before/);
  t.match(mail.text, /Device: Alice's phone/);
  t.match(mail.text, /IP address: 203\.0\.113\.5/);
  t.ok(reportLinkIn(mail), 'with a "This wasn\'t me" link');
  t.match(await verify(server, { challenge_id: first.challenge_id, method: 'email', code: wrongCode(codeIn(mail)), device_id: 'phone' }, from('203.0.113.5', ua)), { status: 401, body: { error: 'invalid_code' } });
  const done = await verify(server, { challenge_id: first.challenge_id, method: 'email', code: codeIn(mail), device_id: 'phone' }, from('203.0.113.5', ua));
  t.ok(isPair(done.body), 'the code signs in');
  const token = done.body.access_token!;
  const phone = { device_id: 'phone', device_token: done.body.device_token };
  t.ok(phone.device_token, 'and answers the device token that makes the device known');

  const listed = await devicesOf(server, token);
  t.equal(listed.length, 1, 'the device is trusted');
  t.match(listed[0], { device_info: { device_id: 'phone', device_name: 'Alice\'s phone', os: /iOS/ }, ip_address: '203.0.113.5' });
  t.equal(new Date(listed[0]!.trusted_until).getTime() - clock().getTime(), 10 * 86400_000, 'for DEVICE_TRUST_TTL');

  t.ok(isPair((await loginAs(server, 'alice@example.com', phone, from('198.51.100.9'))).body), 'the trusted device signs in directly, from anywhere');
  t.equal(inbox.unread().length, 0, 'without a mail');
  t.match(await challengeFor(server, 'alice@example.com', { device_id: 'tablet' }), { reason: 'new_device' }, 'another device id is asked');
  await inbox.next();
  t.match(await challengeFor(server, 'alice@example.com'), { reason: 'new_device' }, 'so is a client naming no device');
  await inbox.next();

  // Distrust: another user's device id is not found and changes nothing.
  const bobBox = mailbox(smtp, 'bob@example.com');
  const bob = await challengeFor(server, 'bob@example.com', { device_id: 'bob-pc' });
  const bobPair = await verify(server, { challenge_id: bob.challenge_id, method: 'email', code: codeIn(await bobBox.next()), device_id: 'bob-pc' });
  t.ok(isPair(bobPair.body));
  const deviceId = listed[0]!.id;
  t.match(await api(server, 'DELETE', `/api/auth/devices/${deviceId}/`, { token: bobPair.body.access_token! }), { status: 404, body: { error: 'not_found' } }, 'another user\'s device: 404');
  t.match(await api(server, 'DELETE', '/api/auth/devices/not-a-uuid/', { token }), { status: 404 });
  t.match(await api(server, 'DELETE', '/api/auth/devices/00000000-0000-0000-0000-000000000000/', { token }), { status: 404 });
  t.equal((await devicesOf(server, token)).length, 1, 'still trusted');
  t.equal((await devicesOf(server, bobPair.body.access_token!)).length, 1, 'bob sees only his own device');
  t.notOk(JSON.stringify(await devicesOf(server, bobPair.body.access_token!)).includes(deviceId));

  t.equal((await api(server, 'DELETE', `/api/auth/devices/${deviceId}/`, { token })).status, 204);
  t.equal((await devicesOf(server, token)).length, 0);
  t.match(await api(server, 'DELETE', `/api/auth/devices/${deviceId}/`, { token }), { status: 404 }, 'once');
  const asked = await challengeFor(server, 'alice@example.com', phone);
  t.match(asked, { reason: 'new_device' }, 'a distrusted device is asked again');
  const retrust = await verify(server, { challenge_id: asked.challenge_id, method: 'email', code: codeIn(await inbox.next()), device_id: 'phone' });
  t.ok(isPair(retrust.body), 'verified again');

  // Trust lasts DEVICE_TRUST_TTL.
  clock.advance(10 * 86400 - 60);
  t.ok(isPair((await loginAs(server, 'alice@example.com', phone)).body), 'trusted just before the end');
  clock.advance(61);
  t.match(await challengeFor(server, 'alice@example.com', phone), { reason: 'new_device' }, 'and asked again after it');

  const events = await auditLog(server);
  t.ok(events.some((e) => e.type === 'device.trusted'));
  t.ok(events.some((e) => e.type === 'device.distrusted'));
});

t.test('DEVICE_VERIFICATION=off: no device step', async (t) => {
  const { server, smtp } = await startMfaServer(t, { DEVICE_VERIFICATION: 'off' });
  await seedAuthUser(server);
  t.ok(isPair((await loginAs(server, 'alice@example.com', { device_id: 'anything' })).body));
  t.ok(isPair((await loginAs(server, 'alice@example.com')).body));
  t.equal(smtp.messages.length, 0, 'no mail');
});

t.test('with a factor and device verification: one step, and passing it trusts the device', async (t) => {
  const { server, smtp, clock } = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge', IP_VERIFICATION: 'challenge' });
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const boot = await challengeFor(server, 'alice@example.com', { device_id: 'laptop' });
  const pair = await verify(server, { challenge_id: boot.challenge_id, method: 'email', code: codeIn(await inbox.next()), device_id: 'laptop' });
  const { secret, factorId } = await enrolTotp(server, pair.body.access_token!, clock);
  await inbox.next(); // factor added notice

  const fromPhone = await challengeFor(server, 'alice@example.com', { device_id: 'phone' }, from('198.51.100.77'));
  t.match(fromPhone, { reason: 'mfa', methods: ['totp'] }, 'a new device on a new network with a factor: only the factor is asked');
  t.notOk(fromPhone.sent, 'no emailed code on top');
  const done = await verify(server, { challenge_id: fromPhone.challenge_id, method: 'totp', code: await totpAt(secret, clock), device_id: 'phone' }, from('198.51.100.77'));
  const phone = { device_id: 'phone', device_token: done.body.device_token };
  t.ok(isPair(done.body), 'one step, then tokens');
  t.ok((await devicesOf(server, done.body.access_token!)).some((d) => d.device_info.device_id === 'phone'), 'the factor trusted the device');
  const notice = await inbox.next();
  t.match(subjectOf(notice), /new sign-in from/, 'a device that got in with a factor is reported by email (its code went to the factor)');
  t.match(notice.text, /signed in to from a new device\./);
  t.match(notice.text, /\/security\/report\?token=/, 'with a "This wasn\'t me" link');

  t.equal((await api(server, 'DELETE', `/api/auth/mfa/${factorId}/`, { token: done.body.access_token!, body: { password: TEST_PASSWORD } })).status, 204);
  t.ok(isPair((await loginAs(server, 'alice@example.com', phone, from('198.51.100.78'))).body), 'without the factor, the device it trusted signs in directly');
  t.match(await challengeFor(server, 'alice@example.com', { device_id: 'other' }, from('198.51.100.78')), { reason: 'new_device' });
});

t.test('IP_VERIFICATION=notify: a mail for a new network, not for another address in the same one', async (t) => {
  const { server, smtp, clock } = await startMfaServer(t, { IP_VERIFICATION: 'notify', IP_VERIFICATION_PERIOD: String(30 * 86400) });
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const ua = { 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36' };

  t.ok(isPair((await loginAs(server, 'alice@example.com', {}, from('192.0.2.10', ua))).body), 'signed in, no step');
  const firstMail = await inbox.next();
  t.match(subjectOf(firstMail), /^keryu-auth: new sign-in from Chrome/);
  t.match(firstMail.text, /IP address: 192\.0\.2\.10/);
  t.ok(reportLinkIn(firstMail));

  t.ok(isPair((await loginAs(server, 'alice@example.com', {}, from('192.0.2.200', ua))).body));
  t.equal(inbox.unread().length, 0, 'the same /24: no mail');
  t.ok(isPair((await loginAs(server, 'alice@example.com', {}, from('192.0.3.10', ua))).body));
  t.match((await inbox.next()).text, /IP address: 192\.0\.3\.10/, 'the next /24: a mail');

  t.ok(isPair((await loginAs(server, 'alice@example.com', {}, from('2001:db8:1:2::1'))).body));
  await inbox.next();
  t.ok(isPair((await loginAs(server, 'alice@example.com', {}, from('2001:db8:1:2:ffff::9'))).body));
  t.equal(inbox.unread().length, 0, 'the same IPv6 /64: no mail');
  t.ok(isPair((await loginAs(server, 'alice@example.com', {}, from('2001:db8:1:3::1'))).body));
  t.match((await inbox.next()).text, /IP address: 2001:db8:1:3::1/, 'another /64: a mail');

  clock.advance(31 * 86400);
  t.ok(isPair((await loginAs(server, 'alice@example.com', {}, from('192.0.2.10'))).body));
  t.match((await inbox.next()).text, /192\.0\.2\.10/, 'a network not seen within IP_VERIFICATION_PERIOD is new again');

  const events = await auditLog(server);
  t.ok(events.filter((e) => e.type === 'login.new_ip').length >= 4, 'audited');
});

t.test('IP_VERIFICATION=challenge: a code for a new network; off: nothing', async (t) => {
  const { server, smtp } = await startMfaServer(t, { IP_VERIFICATION: 'challenge' });
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const here = from('192.0.2.10');

  const first = await challengeFor(server, 'alice@example.com', {}, here);
  t.match(first, { reason: 'new_ip', methods: ['email'], sent: { method: 'email' } });
  const mail = await inbox.next();
  t.match(subjectOf(mail), /sign-in code for a new network/);
  t.match(mail.text, /from a new network/);
  t.ok(reportLinkIn(mail));
  // A sign-in may finish from another address (mfa-challenge.network-change.test.ts): here one in the same /24.
  t.ok(isPair((await verify(server, { challenge_id: first.challenge_id, method: 'email', code: codeIn(mail) }, from('192.0.2.11'))).body));
  t.equal(inbox.unread().length, 0, 'no extra new-sign-in notice after a verified network');

  t.ok(isPair((await loginAs(server, 'alice@example.com', {}, from('192.0.2.99'))).body), 'the network is now known');
  t.match(await challengeFor(server, 'alice@example.com', {}, from('192.0.5.1')), { reason: 'new_ip' }, 'another one is not');

  const off = await startMfaServer(t, { IP_VERIFICATION: 'off' });
  await seedAuthUser(off.server);
  for (const ip of ['192.0.2.1', '198.51.100.1', '2001:db8::1']) t.ok(isPair((await loginAs(off.server, 'alice@example.com', {}, from(ip))).body), `off: ${ip} signs in`);
  t.equal(off.smtp.messages.length, 0, 'off: no mail');
  t.notOk((await auditLog(off.server)).some((e) => e.type === 'login.new_ip'));
});

t.test('device and network checks together: a new device is one step; a trusted device on a new network is asked for the network', async (t) => {
  const { server, smtp } = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge', IP_VERIFICATION: 'challenge' });
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const first = await challengeFor(server, 'alice@example.com', { device_id: 'phone' }, from('192.0.2.10'));
  t.equal(first.reason, 'new_device');
  const done = await verify(server, { challenge_id: first.challenge_id, method: 'email', code: codeIn(await inbox.next()), device_id: 'phone' }, from('192.0.2.10'));
  t.ok(isPair(done.body), 'one step for both');
  const phone = { device_id: 'phone', device_token: done.body.device_token };
  t.ok(await pairFor(server, 'alice@example.com', phone, from('192.0.2.10')), 'known device, known network');
  const moved = await challengeFor(server, 'alice@example.com', phone, from('203.0.113.1'));
  t.equal(moved.reason, 'new_ip', 'the trusted device on a new network');
  t.ok(isPair((await verify(server, { challenge_id: moved.challenge_id, method: 'email', code: codeIn(await inbox.next()), device_id: 'phone' }, from('203.0.113.1'))).body));
});
