/**
 * "This wasn't me": the link in new-device, new-IP and factor-change emails. GET only shows a confirm page
 * (a mail scanner changes nothing); the POST, with the page's CSRF field, ends every session and token of
 * the account, distrusts the reported device and requires a password reset before the next sign-in (the
 * right password answers 403 password_reset_required, a wrong one the usual 401). A reset makes sign-in
 * possible again. The link is single use and lives at most 7 days.
 */
import t from 'tap';
import { api, seedAuthUser } from '../helpers/auth.js';
import { hiddenField } from '../helpers/oidc.js';
import {
  auditLog,
  challengeFor,
  codeIn,
  enrolTotp,
  from,
  isPair,
  loginAs,
  mailbox,
  reportLinkIn,
  startMfaServer,
  subjectOf,
  verify,
  type MfaServer,
} from '../helpers/mfa.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const NEW_PASSWORD = 'purple elephants juggle quietly';

async function openReport(env: MfaServer, link: URL) {
  const res = await fetch(new URL(`${link.pathname}${link.search}`, env.server.origin));
  return { status: res.status, headers: res.headers, html: await res.text() };
}

function postReport(env: MfaServer, fields: Record<string, string>) {
  return fetch(`${env.server.origin}/security/report`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  }).then(async (r) => ({ status: r.status, html: await r.text() }));
}

async function deviceLogin(env: MfaServer, inbox: ReturnType<typeof mailbox>, deviceId: string) {
  const challenge = await challengeFor(env.server, 'alice@example.com', { device_id: deviceId });
  const mail = await inbox.next();
  const done = await verify(env.server, { challenge_id: challenge.challenge_id, method: 'email', code: codeIn(mail), device_id: deviceId });
  if (!isPair(done.body)) throw new Error(`device login failed: ${JSON.stringify(done.body)}`);
  // The device is known by the token its completed sign-in returned (the device id is only its label).
  return { pair: done.body, link: reportLinkIn(mail), mail, device: { device_id: deviceId, device_token: done.body.device_token } };
}

t.test('the link from a new-device email: GET changes nothing, POST secures the account, a reset reopens it', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge' });
  const { server, smtp } = env;
  const user = await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');

  const phone = await deviceLogin(env, inbox, 'phone');
  const laptop = await deviceLogin(env, inbox, 'laptop');
  const pat = (await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: laptop.pair.access_token, body: { name: 'ci' } })).body.token;
  const pending = await challengeFor(server, 'alice@example.com', { device_id: 'thief' });
  const pendingCode = codeIn(await inbox.next());
  const link = phone.link;
  const reportToken = link.searchParams.get('token')!;
  t.equal(Buffer.from(reportToken, 'base64url').length, 32, '256-bit link token');

  // GET: a page and a button, nothing else.
  const page = await openReport(env, link);
  t.equal(page.status, 200);
  t.match(page.html, /Secure my account/);
  t.match(page.headers.get('content-security-policy'), /frame-ancestors 'none'/);
  const csrf = hiddenField(page.html, 'csrf');
  t.equal(hiddenField(page.html, 'token'), reportToken);
  await openReport(env, link);
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: phone.pair.access_token })).status, 200, 'after GET the sessions still work');
  t.ok(isPair((await loginAs(server, 'alice@example.com', phone.device)).body), 'the device is still trusted and sign-in works');

  // A POST without the page's CSRF field is refused and changes nothing.
  t.equal((await postReport(env, { token: reportToken, csrf: 'forged' })).status, 403);
  t.equal((await postReport(env, { token: reportToken, csrf: hiddenField((await openReport(env, laptop.link)).html, 'csrf') })).status, 403, 'another link\'s CSRF value');
  t.equal((await postReport(env, { token: reportToken })).status, 403);
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: phone.pair.access_token })).status, 200, 'nothing changed');

  const secured = await postReport(env, { token: reportToken, csrf });
  t.equal(secured.status, 200);
  t.match(secured.html, /Your account is secured/);
  t.match(subjectOf(await inbox.next()), /your account was secured/, 'and an email confirms it');

  for (const token of [phone.pair.access_token, laptop.pair.access_token, pat]) t.equal((await api(server, 'GET', '/api/auth/tokens/', { token })).status, 401, 'every session and token ends');
  for (const [pair, device] of [[phone.pair, 'phone'], [laptop.pair, 'laptop']] as const) {
    t.equal((await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair.refresh_token, device_id: device } })).status, 401, 'refresh tokens too');
  }
  t.match(await verify(server, { challenge_id: pending.challenge_id, method: 'email', code: pendingCode, device_id: 'thief' }), { status: 400, body: { error: /^(invalid_challenge|challenge_consumed)$/ } }, 'a sign-in in progress cannot complete');
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'laptop' }), { status: 403, body: { error: 'password_reset_required' } }, 'the right password: reset first');
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'laptop', password: 'not the password' }), { status: 401, body: { error: 'invalid_credentials' } }, 'a wrong password: the usual answer');
  t.match(await loginAs(server, 'nobody@example.com'), { status: 401, body: { error: 'invalid_credentials' } });

  t.equal((await postReport(env, { token: reportToken, csrf })).status, 400, 'single use');
  t.equal((await openReport(env, link)).status, 400, 'the page says so');

  // The password reset makes sign-in possible again; the reported device must verify again.
  t.equal((await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'alice@example.com' } })).status, 202);
  const resetMail = await inbox.next();
  const resetToken = /password\/reset\?token=([A-Za-z0-9_%-]+)/.exec(resetMail.text)?.[1];
  t.ok(resetToken, 'a reset mail');
  t.equal((await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token: decodeURIComponent(resetToken!), new_password: NEW_PASSWORD } })).status, 204);
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'laptop' }), { status: 401 }, 'the old password is gone');
  const stale = await verify(server, { challenge_id: pending.challenge_id, method: 'email', code: pendingCode, device_id: 'thief' });
  t.equal(stale.status, 400, 'the sign-in that was in progress with the old password stays dead after the reset');
  t.notOk(isPair(stale.body));
  const afterReset = await loginAs(server, 'alice@example.com', { ...laptop.device, password: NEW_PASSWORD });
  t.ok(isPair(afterReset.body), 'the laptop (not reported) signs in with the new password');
  const again = await loginAs(server, 'alice@example.com', { ...phone.device, password: NEW_PASSWORD });
  t.match(again.body, { reason: 'new_device' }, 'the reported device was distrusted');
  const devices = await api<{ items: Array<{ device_info: { device_id?: string } }> }>(server, 'GET', '/api/auth/devices/', { token: afterReset.body.access_token! });
  t.notOk(devices.body.items.some((d) => d.device_info.device_id === 'phone'));

  const events = await auditLog(server);
  const reported = events.filter((e) => e.type === 'account.compromise_reported');
  t.ok(reported.some((e) => e.outcome === 'success' && e.subjectId === user.id && (e.details as { device_distrusted?: boolean }).device_distrusted === true));
  t.ok(reported.some((e) => e.outcome === 'failure'), 'the second use is audited as a failure');
  t.notOk(JSON.stringify(events).includes(reportToken), 'the link token is not in the audit log');
  t.ok(events.some((e) => e.type === 'session.revoked'));
});

t.test('the link expires: at most 7 days', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge', REFRESH_TOKEN_ABSOLUTE_TTL: String(90 * 86400), ACCESS_TOKEN_TTL: String(30 * 86400) });
  const { server, smtp, clock } = env;
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const { pair, link, device } = await deviceLogin(env, inbox, 'phone');
  clock.advance(7 * 86400 - 60);
  const page = await openReport(env, link);
  t.equal(page.status, 200, 'usable within 7 days');
  clock.advance(61);
  t.equal((await openReport(env, link)).status, 400, 'not after 7 days, although the session lives 90');
  t.equal((await postReport(env, { token: link.searchParams.get('token')!, csrf: hiddenField(page.html, 'csrf') })).status, 400);
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: pair.access_token })).status, 200, 'an expired link changes nothing');
  t.ok(isPair((await loginAs(server, 'alice@example.com', device)).body));
});

t.test('a link lives no longer than the session it reports on', async (t) => {
  const env = await startMfaServer(t, { DEVICE_VERIFICATION: 'challenge', REFRESH_TOKEN_ABSOLUTE_TTL: String(86400) });
  const { server, smtp, clock } = env;
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const { link } = await deviceLogin(env, inbox, 'phone');
  clock.advance(86400 + 1);
  t.equal((await openReport(env, link)).status, 400);
});

t.test('new-IP notices and factor-change emails carry a working link too', async (t) => {
  const env = await startMfaServer(t, { IP_VERIFICATION: 'notify' });
  const { server, smtp, clock } = env;
  await seedAuthUser(server);
  const inbox = mailbox(smtp, 'alice@example.com');
  const first = await loginAs(server, 'alice@example.com', { device_id: 'phone' }, from('192.0.2.1'));
  t.ok(isPair(first.body));
  const notice = await inbox.next();
  t.match(subjectOf(notice), /new sign-in from/);

  const { factorId } = await enrolTotp(server, first.body.access_token!, clock);
  t.ok(factorId);
  const factorMail = await inbox.next();
  t.match(subjectOf(factorMail), /your sign-in methods changed/);
  t.match(factorMail.text, /An authenticator app was added to your account/);
  const link = reportLinkIn(factorMail);
  const page = await openReport(env, link);
  t.equal((await postReport(env, { token: link.searchParams.get('token')!, csrf: hiddenField(page.html, 'csrf') })).status, 200);
  t.equal((await api(server, 'GET', '/api/auth/mfa/', { token: first.body.access_token! })).status, 401, 'signed out');
  t.match(await loginAs(server, 'alice@example.com', {}, from('192.0.2.1')), { status: 403, body: { error: 'password_reset_required' } });

  // The new-IP notice's link, still unused, is another link to the same account: it works once as well.
  const ipLink = reportLinkIn(notice);
  const ipPage = await openReport(env, ipLink);
  t.equal(ipPage.status, 200);
  t.equal((await postReport(env, { token: ipLink.searchParams.get('token')!, csrf: hiddenField(ipPage.html, 'csrf') })).status, 200);
  t.match(await loginAs(server, 'alice@example.com', { device_id: 'phone', password: TEST_PASSWORD }, from('192.0.2.1')), { status: 403 });
});
