/**
 * Password reset by email (read from a real SMTP server on loopback) and password change: the link is
 * single use and expires; reset revokes every session, change revokes the others; the policy applies.
 */
import t from 'tap';
import { auditEvents, passwordResetTokens } from '../../src/db/schema/index.js';
import { api, login, manualClock, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { hiddenField } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';
import { startSmtpServer } from '../helpers/smtp.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const NEW_PASSWORD = 'purple elephants juggle quietly';

function linkIn(text: string): URL {
  const match = /(http:\/\/\S+\/password\/reset\?token=[A-Za-z0-9_%-]+)/.exec(text);
  if (!match?.[1]) throw new Error(`no link in mail:\n${text}`);
  return new URL(match[1]);
}

t.test('reset by emailed link: single use, every session revoked', async (t) => {
  const smtp = await startSmtpServer();
  t.teardown(() => smtp.close());
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, SMTP_URL: smtp.url, MAIL_FROM: 'keryu <auth@example.com>' }, clock });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const before = await login(server);
  const pat = await api<{ token: string }>(server, 'POST', '/api/auth/tokens/', { token: before.access_token, body: { name: 'ci' } });

  const unknown = await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'nobody@example.com' } });
  const known = await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'Alice@Example.com' } });
  t.equal(unknown.status, 202);
  t.equal(known.status, 202, 'the same answer either way');
  t.equal(unknown.body, known.body);

  const mail = await smtp.waitFor(1);
  t.same(mail.to, ['alice@example.com']);
  t.match(mail.raw, /From: keryu <auth@example.com>/);
  const link = linkIn(mail.text);
  const token = link.searchParams.get('token')!;
  t.equal(Buffer.from(token, 'base64url').length, 32, '256-bit token');
  const stored = await server.app.keryu.database.db.select().from(passwordResetTokens);
  t.equal(stored.length, 1, 'one link, for the existing account only');
  t.not(stored[0]?.tokenHash, token, 'stored hashed');

  // The page the link opens (from a mail client: no app needed).
  const page = await fetch(new URL(`${link.pathname}${link.search}`, server.origin));
  t.equal(page.status, 200);
  t.equal(page.headers.get('referrer-policy'), 'no-referrer');
  const html = await page.text();
  const csrf = hiddenField(html, 'csrf');

  t.match(await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token, new_password: 'password123' } }), { status: 400, body: { error: 'weak_password' } }, 'policy applies');
  t.match(await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token, new_password: 'alice@example.com!' } }), { status: 400, body: { error: 'weak_password' } }, 'the email as context');

  const form = await fetch(`${server.origin}/password/reset`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, csrf, new_password: NEW_PASSWORD }).toString(),
    redirect: 'manual',
  });
  t.equal(form.status, 303, 'the form answers 303');
  t.equal(form.headers.get('location'), '/password/reset/done');

  t.match(await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token, new_password: 'another fine passphrase here' } }), { status: 400, body: { error: 'invalid_reset_token' } }, 'single use');
  t.equal((await fetch(`${server.origin}${link.pathname}${link.search}`)).status, 400, 'the page says the link is used');

  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: before.access_token })).status, 401, 'every session revoked');
  t.equal((await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: before.refresh_token } })).status, 401);
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: pat.body.token })).status, 401, 'personal tokens too');
  t.equal((await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: TEST_PASSWORD } })).status, 401, 'the old password is gone');
  t.equal((await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: NEW_PASSWORD } })).status, 200, 'the new one works');

  // Expiry, with the injected clock (past the per-account resend interval first).
  clock.advance(61);
  await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'alice@example.com' } });
  const late = linkIn((await smtp.waitFor(2)).text).searchParams.get('token')!;
  clock.advance(30 * 60 + 1);
  t.match(await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token: late, new_password: 'yet another fine passphrase' } }), { status: 400, body: { error: 'invalid_reset_token' } }, 'expired after 30 minutes');

  // A newer link leaves the older one valid; a completed reset voids the rest.
  await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'alice@example.com' } });
  const older = linkIn((await smtp.waitFor(3)).text).searchParams.get('token')!;
  clock.advance(61);
  await api(server, 'POST', '/api/auth/password/reset/', { body: { email: 'alice@example.com' } });
  const newer = linkIn((await smtp.waitFor(4)).text).searchParams.get('token')!;
  t.equal((await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token: older, new_password: 'yet another fine passphrase' } })).status, 204, 'the older link still works');
  t.equal((await api(server, 'POST', '/api/auth/password/reset/confirm/', { body: { token: newer, new_password: 'yet another fine passphrase' } })).status, 400, 'the newer one is void after the reset');

  await server.app.keryu.services.audit.flush();
  const events = await server.app.keryu.database.db.select().from(auditEvents);
  t.ok(events.some((e) => e.type === 'password.reset_requested' && e.outcome === 'success'));
  t.ok(events.some((e) => e.type === 'password.reset' && e.outcome === 'success'));
  t.notOk(JSON.stringify(events).includes(token), 'no reset token in the audit log');
});

t.test('password change revokes the other sessions', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const current = await login(server);
  const other = await login(server);
  const change = (body: Record<string, unknown>, token = current.access_token) => api(server, 'POST', '/api/auth/password/change/', { token, body });

  t.match(await change({ current_password: 'wrong password!', new_password: NEW_PASSWORD }), { status: 401, body: { error: 'invalid_credentials' } });
  t.match(await change({ current_password: TEST_PASSWORD, new_password: 'short' }), { status: 400, body: { error: 'weak_password' } });
  t.match(await change({ current_password: TEST_PASSWORD, new_password: 'aaaaaaaaaaaaaaaa' }), { status: 400, body: { error: 'weak_password' } }, 'weak');
  t.match(await change({ current_password: TEST_PASSWORD, new_password: NEW_PASSWORD }, 'garbage'), { status: 401 });
  t.equal((await change({ current_password: TEST_PASSWORD, new_password: NEW_PASSWORD })).status, 204);
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: current.access_token })).status, 200, 'this session stays');
  t.equal((await api(server, 'GET', '/api/auth/tokens/', { token: other.access_token })).status, 401, 'the other is revoked');
  t.equal((await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: NEW_PASSWORD } })).status, 200);
});

t.test('the current password of a change is checked under the brute-force limits', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, LOGIN_DELAY_AFTER: '3' } });
  t.teardown(() => server.close());
  await seedAuthUser(server);
  const current = await login(server);
  const change = (currentPassword: string) => api(server, 'POST', '/api/auth/password/change/', { token: current.access_token, body: { current_password: currentPassword, new_password: NEW_PASSWORD } });
  for (let i = 0; i < 3; i++) t.equal((await change(`guess number ${i}`)).status, 401);
  const slowed = await change(TEST_PASSWORD);
  t.match(slowed, { status: 429, body: { error: 'too_many_attempts' } }, 'a stolen session cannot guess the password at the request rate');
  t.ok(Number(slowed.headers.get('retry-after')) > 0);
});

t.test('without SMTP_URL the development transport logs the message', async (t) => {
  const { createMailer } = await import('../../src/services/notify/mailer.js');
  const logged: Array<Record<string, unknown>> = [];
  const log = { info: (obj: object) => void logged.push(obj as Record<string, unknown>), warn: () => {} };
  const text = 'Open https://id.example.com/password/reset?token=secret-value to continue';
  await createMailer({ from: 'x@example.com', showSecrets: true, warnWithoutTransport: false, log }).send({ to: 'a@example.com', subject: 's', text });
  await createMailer({ from: 'x@example.com', showSecrets: false, warnWithoutTransport: true, log }).send({ to: 'a@example.com', subject: 's', text });
  t.match(JSON.stringify(logged[0]), /secret-value/, 'development: whole, so the flow works locally');
  t.notMatch(JSON.stringify(logged[1]), /secret-value/, 'production: the link never reaches a log');
});

t.test('the expired-link page states the configured PASSWORD_RESET_TTL, not a fixed figure', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, PASSWORD_RESET_TTL: '600' } });
  t.teardown(() => server.close());
  const page = await fetch(`${server.origin}/password/reset?token=not-a-token`);
  t.equal(page.status, 400);
  const html = await page.text();
  t.match(html, 'Reset links work once and for 10 minutes.');
  t.notMatch(html, '30 minutes');
});
