/**
 * A stolen session cannot become a lasting second factor: adding a factor or regenerating recovery codes
 * needs a sign-in within the last 5 minutes, or the current password or a code from an existing factor
 * (counted against the brute-force limits). A "This wasn't me" report removes the factors added since the
 * reported sign-in (and the one a factor-change email reported), and its email and page say so.
 */
import t from 'tap';
import { api, seedAuthUser } from '../helpers/auth.js';
import { hiddenField } from '../helpers/oidc.js';
import { challengeFor, codeIn, enrolTotp, enrolTotpFor, isPair, mailbox, reportLinkIn, seedWithSession, startMfaServer, subjectOf, totpAt, verify, type MfaServer } from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const listTypes = async (env: MfaServer, token: string) =>
  (await api<{ items: Array<{ type: string }> }>(env.server, 'GET', '/api/auth/mfa/', { token })).body.items.map((f) => f.type).sort();

async function secure(env: MfaServer, link: URL) {
  const page = await fetch(new URL(`${link.pathname}${link.search}`, env.server.origin)).then((r) => r.text());
  const res = await fetch(`${env.server.origin}/security/report`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: link.searchParams.get('token')!, csrf: hiddenField(page, 'csrf') }).toString(),
  });
  return { status: res.status, html: await res.text() };
}

t.test('after 5 minutes a session adds no factor and regenerates no codes without re-authentication', async (t) => {
  const env = await startMfaServer(t);
  const { server, clock } = env;
  const { pair } = await seedWithSession(server, 'alice@example.com');
  const token = pair.access_token;
  const { secret } = await enrolTotp(server, token, clock);
  t.equal((await api(server, 'POST', '/api/auth/mfa/recovery-codes/', { token })).status, 201, 'within 5 minutes of the sign-in: allowed');

  clock.advance(301);
  const refreshed = await api<{ access_token: string }>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token } });
  const stolen = refreshed.body.access_token;
  const attempts: Array<[string, string, Record<string, unknown>]> = [
    ['an authenticator', '/api/auth/mfa/totp/', {}],
    ['a phone', '/api/auth/mfa/sms/', { phone: '+14155552671' }],
    ['an address', '/api/auth/mfa/email/', { email: 'thief@example.org' }],
    ['recovery codes', '/api/auth/mfa/recovery-codes/', {}],
  ];
  for (const [what, path, body] of attempts) {
    t.match(await api(server, 'POST', path, { token: stolen, body }), { status: 403, body: { error: 'reauthentication_required' } }, `${what}: a refreshed session is not a recent sign-in`);
    t.match(await api(server, 'POST', path, { token: stolen, body: { ...body, password: 'not the password' } }), { status: 401, body: { error: 'invalid_credentials' } }, `${what}: a wrong password`);
  }
  t.equal(env.twilio.messages.length, 0, 'no code went to the thief\'s phone');
  t.match(await listTypes(env, token), ['recovery_code', 'totp'], 'nothing was added');

  t.equal((await api(server, 'POST', '/api/auth/mfa/email/', { token: stolen, body: { email: 'alice.codes@example.org', password: TEST_PASSWORD } })).status, 201, 'the password re-authenticates');
  t.equal((await api(server, 'POST', '/api/auth/mfa/recovery-codes/', { token: stolen, body: { method: 'totp', code: await totpAt(secret, clock) } })).status, 201, 'so does a code from a factor');
  clock.advance(30);
  t.match(await api(server, 'POST', '/api/auth/mfa/totp/', { token: stolen, body: { method: 'totp', code: '000000' } }), { status: 401 }, 'a wrong code does not');

  clock.advance(61);
  const fresh = await api<{ access_token: string }>(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: TEST_PASSWORD } });
  const next = await verify(server, { challenge_id: (fresh.body as unknown as { challenge_id: string }).challenge_id, method: 'totp', code: await totpAt(secret, clock) });
  t.ok(isPair(next.body));
  t.equal((await api(server, 'POST', '/api/auth/mfa/totp/', { token: next.body.access_token })).status, 201, 'a new sign-in is recent again');
});

t.test('"This wasn\'t me" removes the factors added since the reported sign-in, and says so', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  const { server, smtp, clock } = env;
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const own = await challengeFor(server, 'alice@example.com', { device_id: 'phone' });
  const ownPair = await verify(server, { challenge_id: own.challenge_id, method: 'email', code: codeIn(await inbox.next()), device_id: 'phone' });
  await enrolTotp(server, ownPair.body.access_token!, clock);
  await inbox.next(); // factor-change notice

  // Later, someone holding that session (stolen) adds an address of their own.
  clock.advance(120);
  const stolen = ownPair.body.access_token!;
  const thiefBox = mailbox(smtp, 'thief@example.org');
  const added = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token: stolen, body: { email: 'thief@example.org', password: TEST_PASSWORD } });
  await api(server, 'POST', `/api/auth/mfa/email/${added.body.factor_id}/confirm/`, { token: stolen, body: { code: codeIn(await thiefBox.next()) } });
  const notice = await inbox.next();
  t.match(subjectOf(notice), /sign-in methods changed/);
  t.match(await listTypes(env, stolen), ['email', 'totp']);

  const secured = await secure(env, reportLinkIn(notice));
  t.equal(secured.status, 200);
  t.match(secured.html, /were removed: email address for codes/);
  const mail = await inbox.next();
  t.match(subjectOf(mail), /your account was secured/);
  t.match(mail.text, /These sign-in methods, added since, were removed: email address for codes\./);
  const factors = await server.app.keryu.services.factors.listActive((await server.app.keryu.services.users.findUserByEmail('alice@example.com'))!.id);
  t.same(factors.map((f) => f.type), ['totp'], 'the reported factor is gone; the owner\'s authenticator, added before, stays');
});

t.test('a new-sign-in report removes what was added after that sign-in, not before', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  const { server, smtp, clock } = env;
  const user = await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const totp = await enrolTotpFor(server, user, clock);
  await inbox.next(); // factor-change notice
  clock.advance(60);

  // A sign-in from a device never seen: its code went to the authenticator, so an email reports it.
  const challenge = await challengeFor(server, 'alice@example.com', { device_id: 'tablet' });
  const pair = await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: await totp(), device_id: 'tablet' });
  t.ok(isPair(pair.body));
  const report = await inbox.next();
  t.match(subjectOf(report), /new sign-in/);

  // That session adds a phone within its first minutes (no re-authentication needed yet).
  clock.advance(60);
  const added = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token: pair.body.access_token!, body: { phone: '+14155552671' } });
  await api(server, 'POST', `/api/auth/mfa/sms/${added.body.factor_id}/confirm/`, { token: pair.body.access_token!, body: { code: await env.twilio.codeOf(1) } });
  t.match(await listTypes(env, pair.body.access_token!), ['sms', 'totp']);

  const secured = await secure(env, reportLinkIn(report));
  t.match(secured.html, /were removed: phone number/);
  const factors = await server.app.keryu.services.factors.listActive(user.id);
  t.same(factors.map((f) => f.type), ['totp'], 'the phone added after the reported sign-in is gone; the authenticator from before stays');
});
