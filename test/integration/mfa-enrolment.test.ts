/**
 * Enrolling second factors through the JSON API: TOTP (secret shown once, encrypted at rest, inactive until
 * confirmed), SMS through the real Twilio SDK (E.164 only), email codes through SMTP, and recovery codes
 * (ten, single use, stored as digests, regenerating voids the old set). Each factor then signs in.
 */
import { eq } from 'drizzle-orm';
import t from 'tap';
import { mfaFactors, mfaRecoveryCodes } from '../../src/db/schema/index.js';
import { api } from '../helpers/auth.js';
import { TWILIO_FROM } from '../helpers/twilio.js';
import {
  auditLog,
  challengeFor,
  codeIn,
  enrolTotp,
  isPair,
  mailbox,
  seedWithSession,
  startMfaServer,
  subjectOf,
  totpAt,
  verify,
  wrongCode,
  type LoginAnswer,
} from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

interface FactorItem {
  id: string;
  type: string;
  label: string;
  active: boolean;
  preferred: boolean;
  remaining?: number;
}
const listFactors = async (server: Parameters<typeof api>[0], token: string) => (await api<{ items: FactorItem[] }>(server, 'GET', '/api/auth/mfa/', { token })).body.items;

/** RFC 4648 base32 → bytes, to look for the raw seed (hex) in the stored column as well. */
function base32Bytes(secret: string): Buffer {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of secret.replace(/=+$/, '')) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  return Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
}

t.test('TOTP: shown once, inactive until confirmed with a code, encrypted at rest, then required at sign-in', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const token = pair.access_token;

  t.match(await api(server, 'POST', '/api/auth/mfa/totp/'), { status: 401 }, 'no bearer and no challenge: refused');
  const started = await api<{ factor_id: string; secret: string; otpauth_uri: string; qr_code: string }>(server, 'POST', '/api/auth/mfa/totp/', { token });
  t.equal(started.status, 201);
  t.equal(started.headers.get('cache-control'), 'no-store', 'the secret is not cached');
  const { factor_id: factorId, secret } = started.body;
  t.match(factorId, /^[0-9a-f-]{36}$/);
  t.match(secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
  const uri = new URL(started.body.otpauth_uri);
  t.equal(uri.protocol, 'otpauth:');
  t.equal(uri.host, 'totp');
  t.equal(uri.searchParams.get('secret'), secret);
  t.equal(uri.searchParams.get('issuer'), 'keryu-auth');
  t.match(decodeURIComponent(uri.pathname), /alice@example\.com/);
  t.match(started.body.qr_code, /^data:image\/svg\+xml;base64,/);
  t.match(Buffer.from(started.body.qr_code.split(',')[1] ?? '', 'base64').toString('utf8'), /<svg/, 'an SVG QR code');

  const pending = await listFactors(server, token);
  t.match(pending, [{ id: factorId, type: 'totp', active: false }], 'listed, inactive');
  const listing = await api(server, 'GET', '/api/auth/mfa/', { token });
  t.notOk(JSON.stringify(listing.body).includes(secret), 'GET never shows the secret');
  t.notOk(JSON.stringify(listing.body).toLowerCase().includes('secret'), 'nor any secret field');

  const [stored] = await server.app.keryu.database.db.select().from(mfaFactors).where(eq(mfaFactors.id, factorId));
  t.ok(stored?.secret, 'the seed is stored');
  t.notOk(stored?.secret?.includes(secret), 'not as its base32 text');
  t.notOk(stored?.secret?.toLowerCase().includes(base32Bytes(secret).toString('hex')), 'nor as hex');
  t.notOk(stored?.secret?.includes(base32Bytes(secret).toString('base64').slice(0, 20)), 'nor as base64');

  t.ok(isPair((await api<LoginAnswer>(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: TEST_PASSWORD } })).body), 'an unconfirmed factor asks nothing at sign-in');

  const code = await totpAt(secret, clock);
  t.match(await api(server, 'POST', `/api/auth/mfa/totp/${factorId}/confirm/`, { token, body: { code: wrongCode(code) } }), { status: 401, body: { error: 'invalid_code' } }, 'a wrong code is refused');
  t.match(await api(server, 'POST', `/api/auth/mfa/totp/${factorId}/confirm/`, { token, body: { code: 'abcdef' } }), { status: 401, body: { error: 'invalid_code' } });
  t.match(await api(server, 'POST', `/api/auth/mfa/sms/${factorId}/confirm/`, { token, body: { code } }), { status: 404 }, 'the factor under another type is not found');
  t.match(await listFactors(server, token), [{ id: factorId, active: false }], 'still inactive');

  const confirmed = await api<FactorItem>(server, 'POST', `/api/auth/mfa/totp/${factorId}/confirm/`, { token, body: { code } });
  t.equal(confirmed.status, 200);
  t.match(confirmed.body, { id: factorId, type: 'totp', active: true, preferred: true });
  t.notOk(JSON.stringify(confirmed.body).includes(secret));
  clock.advance(30);
  t.match(await api(server, 'POST', `/api/auth/mfa/totp/${factorId}/confirm/`, { token, body: { code: await totpAt(secret, clock) } }), { status: 409 }, 'confirmed once');

  const challenge = await challengeFor(server, 'alice@example.com');
  t.match(challenge, { reason: 'mfa', methods: ['totp'] });
  t.notOk(challenge.sent, 'nothing is sent for an authenticator');
  const done = await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: await totpAt(secret, clock) });
  t.equal(done.status, 200);
  t.ok(isPair(done.body), 'signed in with the authenticator');

  const events = await auditLog(server);
  t.ok(events.some((e) => e.type === 'mfa.factor_enrolled' && e.outcome === 'success' && e.subjectId === user.id));
  t.ok(events.some((e) => e.type === 'mfa.factor_activated' && e.outcome === 'failure'), 'a wrong confirmation code is audited');
  t.ok(events.some((e) => e.type === 'mfa.factor_activated' && e.outcome === 'success'));
  t.notOk(JSON.stringify(events).includes(secret), 'the secret is never in the audit log');
});

t.test('a new TOTP enrolment replaces an abandoned one; another user cannot confirm it', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const alice = await seedWithSession(server, 'alice@example.com');
  const bob = await seedWithSession(server, 'bob@example.com');
  const first = await api<{ factor_id: string; secret: string }>(server, 'POST', '/api/auth/mfa/totp/', { token: alice.pair.access_token });
  const second = await api<{ factor_id: string; secret: string }>(server, 'POST', '/api/auth/mfa/totp/', { token: alice.pair.access_token });
  t.not(second.body.secret, first.body.secret, 'a new secret each time');
  t.match(await listFactors(server, alice.pair.access_token), [{ id: second.body.factor_id }], 'the abandoned enrolment is gone');
  t.equal((await listFactors(server, alice.pair.access_token)).length, 1);
  t.match(await api(server, 'POST', `/api/auth/mfa/totp/${first.body.factor_id}/confirm/`, { token: alice.pair.access_token, body: { code: await totpAt(first.body.secret, clock) } }), { status: 404 }, 'the abandoned one cannot be confirmed');
  t.match(
    await api(server, 'POST', `/api/auth/mfa/totp/${second.body.factor_id}/confirm/`, { token: bob.pair.access_token, body: { code: await totpAt(second.body.secret, clock) } }),
    { status: 404 },
    'another user\'s factor id answers 404',
  );
  t.match(await listFactors(server, alice.pair.access_token), [{ active: false }], 'and changes nothing');
  t.equal((await listFactors(server, bob.pair.access_token)).length, 0);
});

t.test('SMS: E.164 numbers only, the code goes through the Twilio API, confirmed, then signs in', async (t) => {
  const { server, twilio } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const token = pair.access_token;
  const enrol = (body: unknown) => api<{ factor_id: string; error?: string; message?: string }>(server, 'POST', '/api/auth/mfa/sms/', { token, body });

  const refused = ['12345', '+1', 'not a phone', '+1 555 0100', '+99912345678', '', '14155552671', '+14155552671; DROP TABLE users', '+14155552671 ext. 1234', 'tel:+14155552671', '+1415555267\uff11'];
  for (const phone of refused) {
    const res = await enrol({ phone });
    t.equal(res.status, 400, `${JSON.stringify(phone)} refused`);
    t.match(res.body, { error: 'invalid_request', message: /phone/ });
  }
  t.match(await enrol({}), { status: 400, body: { error: 'invalid_request' } }, 'phone missing');
  t.match(await enrol({ phone: 14155552671 }), { status: 400 }, 'not a string');
  t.match(await enrol({ phone: `+1${'5'.repeat(40)}` }), { status: 400 }, 'too long');
  t.equal(twilio.messages.length, 0, 'nothing was sent for a refused number');

  const started = await enrol({ phone: '+1 (415) 555-2671' });
  t.equal(started.status, 201);
  const factorId = started.body.factor_id;
  const code = await twilio.codeOf(1);
  const sms = twilio.messages[0]!;
  t.equal(sms.to, '+14155552671', 'sent to the number in E.164 form');
  t.equal(sms.from, TWILIO_FROM, 'from the configured sender');
  t.match(sms.body, /^\d{6} is your keryu-auth verification code\. It expires in 5 minutes\. Never share it\.$/);

  const listed = await api(server, 'GET', '/api/auth/mfa/', { token });
  t.match(listed.body, { items: [{ id: factorId, type: 'sms', active: false, label: /^\+1•••71$/ }] });
  t.notOk(JSON.stringify(listed.body).includes('4155552671'), 'the number is shown masked');

  t.match(await api(server, 'POST', `/api/auth/mfa/sms/${factorId}/confirm/`, { token, body: { code: wrongCode(code) } }), { status: 401, body: { error: 'invalid_code', attempts_left: 4 } });
  t.match(await api(server, 'POST', `/api/auth/mfa/sms/${factorId}/confirm/`, { token, body: { code } }), { status: 200, body: { active: true, type: 'sms' } });
  t.match(await enrol({ phone: '+14155552671' }), { status: 409 }, 'the same number twice');

  const challenge = await challengeFor(server, 'alice@example.com');
  t.match(challenge, { reason: 'mfa', methods: ['sms'], sent: { method: 'sms', destination: '+1•••71' } }, 'the code is sent at once');
  const loginCode = await twilio.codeOf(2);
  t.equal(twilio.messages[1]?.to, '+14155552671');
  t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'sms', code: wrongCode(loginCode) }), { status: 401, body: { error: 'invalid_code', attempts_left: 4 } });
  t.match(await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code: loginCode }), { status: 400, body: { error: 'method_not_allowed' } }, 'email is not a factor of this user');
  const done = await verify(server, { challenge_id: challenge.challenge_id, method: 'sms', code: loginCode });
  t.ok(isPair(done.body), 'signed in with the SMS code');

  const again = await challengeFor(server, 'alice@example.com');
  await twilio.codeOf(3);
  t.match(await verify(server, { challenge_id: again.challenge_id, method: 'sms', code: loginCode }), { status: 401, body: { error: 'invalid_code' } }, 'an earlier login\'s code does not pass this one');

  const events = await auditLog(server);
  t.notOk(JSON.stringify(events).includes(code), 'no code in the audit log');
  t.notOk(JSON.stringify(events).includes('4155552671'), 'the number only masked');
  t.ok(events.some((e) => e.type === 'mfa.code_sent' && (e.details as { channel?: string }).channel === 'sms'));
});

t.test('email factor: the account address by default or another address, by SMTP, then signs in', async (t) => {
  const { server, smtp } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const token = pair.access_token;
  const alice = mailbox(smtp, 'alice@example.com');
  const other = mailbox(smtp, 'alice.codes@example.org');

  for (const email of ['not-an-address', '', 'a@', '@example.com', `${'a'.repeat(250)}@example.com`]) {
    t.match(await api(server, 'POST', '/api/auth/mfa/email/', { token, body: { email } }), { status: 400, body: { error: 'invalid_request', message: String } }, `${JSON.stringify(email).slice(0, 30)} refused`);
  }
  t.equal(smtp.messages.length, 0);

  const own = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token });
  t.equal(own.status, 201, 'no body: the account address');
  const ownMail = await alice.next();
  t.match(subjectOf(ownMail), /^Your keryu-auth verification code: \d{6}$/);
  t.match(await api(server, 'POST', `/api/auth/mfa/email/${own.body.factor_id}/confirm/`, { token, body: { code: codeIn(ownMail) } }), { status: 200, body: { type: 'email', active: true, preferred: true } });
  t.match(subjectOf(await alice.next()), /sign-in methods changed/, 'a factor-change notice');

  const elsewhere = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token, body: { email: ' Alice.Codes@Example.org ' } });
  t.equal(elsewhere.status, 201, 'another address');
  const otherMail = await other.next();
  t.same(otherMail.to, ['alice.codes@example.org'], 'normalized');
  t.match(await api(server, 'POST', `/api/auth/mfa/email/${elsewhere.body.factor_id}/confirm/`, { token, body: { code: wrongCode(codeIn(otherMail)) } }), { status: 401, body: { error: 'invalid_code', attempts_left: 4 } });
  t.match(await api(server, 'POST', `/api/auth/mfa/email/${elsewhere.body.factor_id}/confirm/`, { token, body: { code: codeIn(otherMail) } }), { status: 200, body: { active: true, preferred: false } });
  t.match(await api(server, 'POST', '/api/auth/mfa/email/', { token, body: { email: 'alice.codes@example.org' } }), { status: 409 }, 'the same address twice');
  await alice.next(); // factor-change notice

  const challenge = await challengeFor(server, 'alice@example.com');
  t.match(challenge, { reason: 'mfa', methods: ['email'], sent: { method: 'email', destination: 'a•••@example.com' } }, 'the preferred address first');
  const code = codeIn(await alice.next());
  t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'email', code })).body), 'signed in with the emailed code');
});

t.test('an enrolment code: five wrong tries end it, it expires after five minutes, it is used once', async (t) => {
  const { server, twilio, clock } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const token = pair.access_token;
  const confirm = (id: string, code: string) => api(server, 'POST', `/api/auth/mfa/sms/${id}/confirm/`, { token, body: { code } });

  const first = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token, body: { phone: '+14155552671' } });
  const code = await twilio.codeOf(1);
  for (let left = 4; left >= 0; left--) t.match(await confirm(first.body.factor_id, wrongCode(code)), { status: 401, body: { error: 'invalid_code', attempts_left: left } });
  t.match(await confirm(first.body.factor_id, code), { status: 429, body: { error: 'too_many_attempts' } }, 'the right code after five wrong ones is refused');

  clock.advance(31);
  const second = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token, body: { phone: '+14155552671' } });
  const late = await twilio.codeOf(2);
  clock.advance(301);
  t.match(await confirm(second.body.factor_id, late), { status: 400, body: { error: 'challenge_expired' } }, 'expired after five minutes');

  // The session signed in more than five minutes ago: adding a factor now needs the password (mfa-add-factor.reauth.test.ts).
  const third = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token, body: { phone: '+14155552671', password: TEST_PASSWORD } });
  const good = await twilio.codeOf(3);
  t.match(await confirm(second.body.factor_id, good), { status: 404 }, 'a replaced enrolment is gone');
  t.match(await confirm(third.body.factor_id, good), { status: 200, body: { active: true } });
  t.match(await confirm(third.body.factor_id, good), { status: 409 }, 'once');
  t.match(await listFactors(server, token), [{ type: 'sms', active: true }]);
});

t.test('recovery codes: ten, single use, stored as digests, regenerating voids the old set', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const token = pair.access_token;
  await enrolTotp(server, token, clock);

  const generated = await api<{ codes: string[] }>(server, 'POST', '/api/auth/mfa/recovery-codes/', { token });
  t.equal(generated.status, 201);
  t.equal(generated.headers.get('cache-control'), 'no-store');
  const codes = generated.body.codes;
  t.equal(codes.length, 10);
  t.equal(new Set(codes).size, 10, 'all different');
  for (const c of codes) t.match(c, /^[a-z2-9]{4}(-[a-z2-9]{4}){6}$/, 'seven groups of four (140 bits)');
  t.match(await listFactors(server, token), [{ type: 'totp' }, { type: 'recovery_code', remaining: 10, active: true }]);

  const rows = await server.app.keryu.database.db.select().from(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, user.id));
  t.equal(rows.length, 10);
  const dump = JSON.stringify(rows);
  for (const c of codes) {
    t.notOk(dump.includes(c), 'no code in clear');
    t.notOk(dump.includes(c.replaceAll('-', '')), 'nor without its dashes');
  }

  const useCode = async (code: string) => {
    const challenge = await challengeFor(server, 'alice@example.com');
    t.ok(challenge.methods?.includes('recovery_code'), 'recovery codes are offered');
    return verify(server, { challenge_id: challenge.challenge_id, method: 'recovery_code', code });
  };
  t.ok(isPair((await useCode(codes[0]!)).body), 'signs in with a recovery code');
  t.match(await useCode(codes[0]!), { status: 401, body: { error: 'invalid_code' } }, 'a used code is refused');
  t.ok(isPair((await useCode(codes[1]!.toUpperCase().replaceAll('-', ' '))).body), 'case and separators do not matter');
  t.match(await listFactors(server, token), [{ type: 'totp' }, { type: 'recovery_code', remaining: 8 }]);

  const regenerated = await api<{ codes: string[] }>(server, 'POST', '/api/auth/mfa/recovery-codes/', { token });
  t.equal(regenerated.body.codes.length, 10);
  t.match(await useCode(codes[2]!), { status: 401, body: { error: 'invalid_code' } }, 'the old set stops working');
  t.ok(isPair((await useCode(regenerated.body.codes[0]!)).body), 'the new set works');
  t.equal((await server.app.keryu.database.db.select().from(mfaRecoveryCodes).where(eq(mfaRecoveryCodes.userId, user.id))).length, 10, 'the old rows are gone');

  const events = await auditLog(server);
  t.ok(events.some((e) => e.type === 'mfa.recovery_codes_generated'));
  const all = JSON.stringify(events);
  for (const c of [...codes, ...regenerated.body.codes]) t.notOk(all.includes(c), 'no recovery code in the audit log');
});

t.test('personal tokens read factors but cannot enrol, confirm or change them', async (t) => {
  const { server, clock } = await startMfaServer(t);
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const totp = await enrolTotp(server, pair.access_token, clock);
  const pat = (await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: pair.access_token, body: { name: 'ci' } })).body.token;
  t.equal((await api(server, 'GET', '/api/auth/mfa/', { token: pat })).status, 200, 'listing is allowed');
  t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { token: pat }), { status: 403, body: { error: 'forbidden' } });
  t.match(await api(server, 'POST', '/api/auth/mfa/sms/', { token: pat, body: { phone: '+14155552671' } }), { status: 403 });
  t.match(await api(server, 'POST', '/api/auth/mfa/email/', { token: pat }), { status: 403 });
  t.match(await api(server, 'POST', '/api/auth/mfa/recovery-codes/', { token: pat }), { status: 403 });
  t.match(await api(server, 'PUT', `/api/auth/mfa/${totp.factorId}/`, { token: pat, body: { preferred: true } }), { status: 403 });
  t.match(await api(server, 'DELETE', `/api/auth/mfa/${totp.factorId}/`, { token: pat, body: { password: TEST_PASSWORD } }), { status: 403 });
  t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { token: pat, body: { challenge_id: 'x' } }), { status: 403 }, 'a challenge id next to a token does not bypass the token check');
  t.equal((await listFactors(server, pair.access_token)).length, 1, 'nothing changed');
});
