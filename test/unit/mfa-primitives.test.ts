/** The MFA building blocks on their own: TOTP steps and window, networks for the new-IP check, masking, SMS log transport. */
import { generate } from 'otplib';
import t from 'tap';
import { networkOf } from '../../src/lib/network.js';
import { maskDestination } from '../../src/services/mfa/codes.js';
import { normalizePhone } from '../../src/services/mfa/factors.js';
import { matchTotpStep, newTotpSecret, qrCodeDataUri, totpUri } from '../../src/services/mfa/totp.js';
import { createSmsSender } from '../../src/services/notify/sms.js';

t.test('TOTP: RFC 6238 defaults, a window of one step either side', async (t) => {
  const secret = newTotpSecret();
  t.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
  const now = new Date('2026-12-01T12:00:10Z');
  const epoch = Math.floor(now.getTime() / 1000);
  const code = await generate({ secret, epoch });
  const step = Math.floor(epoch / 30);
  t.equal(await matchTotpStep(secret, code, now), step, 'the current step');
  t.equal(await matchTotpStep(secret, code, new Date(now.getTime() + 30_000)), step, 'accepted one step later (drift)');
  t.equal(await matchTotpStep(secret, code, new Date(now.getTime() - 30_000)), step, 'and one step earlier');
  t.equal(await matchTotpStep(secret, code, new Date(now.getTime() + 60_000)), undefined, 'not two steps later');
  t.equal(await matchTotpStep(secret, '12345', now), undefined, 'five digits never match');
  t.equal(await matchTotpStep(secret, `${code} `, now), undefined, 'nor anything but six digits');
  const uri = totpUri('keryu-auth', 'alice@example.com', secret);
  t.match(uri, /^otpauth:\/\/totp\/keryu-auth:alice%40example\.com\?secret=[A-Z2-7]+&issuer=keryu-auth$/);
  const qr = await qrCodeDataUri(uri);
  t.match(qr, /^data:image\/svg\+xml;base64,/);
  t.match(Buffer.from(qr.split(',')[1]!, 'base64').toString('utf8'), /<svg[\s\S]*<\/svg>/, 'an SVG document');
});

t.test('networks: IPv4 /24, IPv6 /64, IPv4-mapped counts as IPv4', async (t) => {
  t.equal(networkOf('203.0.113.77'), '203.0.113.0/24');
  t.equal(networkOf('::ffff:203.0.113.9'), '203.0.113.0/24');
  t.equal(networkOf('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  t.equal(networkOf('2001:db8:1:2::9'), '2001:db8:1:2::/64');
  t.not(networkOf('2001:db8:1:3::1'), networkOf('2001:db8:1:2::1'));
  t.equal(networkOf('not an ip'), undefined);
  t.equal(networkOf(undefined), undefined);
});

t.test('phone numbers are E.164 and valid', async (t) => {
  t.equal(normalizePhone('+14155552671'), '+14155552671');
  t.equal(normalizePhone(' +1 415 555 2671 '), '+14155552671', 'spaces are dropped');
  for (const bad of ['4155552671', '+1555', '+999999999999', 'phone', '+1415555267100000']) t.throws(() => normalizePhone(bad), { code: 'invalid_request' }, bad);
});

t.test('destinations are masked in answers and audit events', async (t) => {
  t.equal(maskDestination('sms', '+14155552671'), '+1•••71');
  t.equal(maskDestination('email', 'alice@example.com'), 'a•••@example.com');
});

t.test('without Twilio, SMS go to the log; in production with the code redacted', async (t) => {
  const logged: Array<{ obj: object; msg: string }> = [];
  const log = { info: (obj: object, msg: string) => logged.push({ obj, msg }), warn: (obj: object, msg: string) => logged.push({ obj, msg }) };
  await createSmsSender({ showSecrets: true, warnWithoutTransport: false, log }).send({ to: '+14155552671', text: '123456 is your code' });
  t.match(logged.at(-1)?.obj, { sms: { to: '+14155552671', text: '123456 is your code' } }, 'development: the whole message');
  await createSmsSender({ showSecrets: false, warnWithoutTransport: true, log }).send({ to: '+14155552671', text: '123456 is your code' });
  t.match(logged.at(-1)?.obj, { sms: { text: '[code redacted] is your code' } }, 'production: no code in the log');
  t.ok(logged.some((l) => /TWILIO/.test(l.msg)), 'production warns that SMS only go to the log');
});
