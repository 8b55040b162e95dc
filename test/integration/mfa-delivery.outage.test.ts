/**
 * When Twilio or the SMTP server is down, resend, enrolment and re-authentication answer
 * `503 {"error": "delivery_unavailable"}` with a plain message (not a masked 500), the failure is audited,
 * and sign-in still falls back to a method that needs no code. A re-authentication code is another purpose
 * than a sign-in code: it is not held back by the sign-in code's resend interval.
 */
import t from 'tap';
import { api } from '../helpers/auth.js';
import { auditLog, codeIn, enrolTotp, loginAs, mailbox, resend, seedWithSession, startMfaServer } from '../helpers/mfa.js';

t.test('SMTP down: enrolment, resend and re-authentication answer 503 delivery_unavailable; sign-in falls back', async (t) => {
  const env = await startMfaServer(t);
  const { server, smtp, clock } = env;
  const { user, pair } = await seedWithSession(server, 'alice@example.com');
  const box = mailbox(smtp, 'alice@example.com');
  await enrolTotp(server, pair.access_token, clock);
  await box.next(); // factor-change notice
  const enrolled = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/email/', { token: pair.access_token });
  await api(server, 'POST', `/api/auth/mfa/email/${enrolled.body.factor_id}/confirm/`, { token: pair.access_token, body: { code: codeIn(await box.next()) } });
  await api(server, 'PUT', `/api/auth/mfa/${enrolled.body.factor_id}/`, { token: pair.access_token, body: { preferred: true } });

  await smtp.close();
  const unavailable = { status: 503, body: { error: 'delivery_unavailable', message: /could not be sent right now/ } };
  const enrol = await api(server, 'POST', '/api/auth/mfa/email/', { token: pair.access_token, body: { email: 'alice.codes@example.org' } });
  t.match(enrol, unavailable, 'enrolment');
  t.same(Object.keys(enrol.body).sort(), ['error', 'message']);
  t.match(await api(server, 'POST', '/api/auth/mfa/reauthenticate/', { token: pair.access_token, body: { method: 'email' } }), unavailable, 're-authentication');

  const signIn = await loginAs(server, 'alice@example.com');
  t.match(signIn, { status: 200, body: { reason: 'mfa' } }, 'sign-in still answers its step');
  t.notOk(signIn.body.sent, 'without a code sent');
  t.ok(signIn.body.methods?.includes('totp'), 'the authenticator remains');
  clock.advance(31);
  t.match(await resend(server, { challenge_id: signIn.body.challenge_id, method: 'email' }), unavailable, 'resend');

  const failures = (await auditLog(server)).filter((e) => e.type === 'mfa.code_sent' && e.outcome === 'failure' && e.subjectId === user.id);
  t.ok(failures.length >= 3 && failures.every((e) => (e.details as { reason?: string }).reason === 'delivery_unavailable'), 'each failed send is audited once, with its reason');
});

t.test('Twilio down: SMS enrolment and resend answer 503 delivery_unavailable', async (t) => {
  const env = await startMfaServer(t);
  const { server, twilio, clock } = env;
  const { pair } = await seedWithSession(server, 'alice@example.com');
  await enrolTotp(server, pair.access_token, clock);
  const phone = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token: pair.access_token, body: { phone: '+14155552671' } });
  await api(server, 'POST', `/api/auth/mfa/sms/${phone.body.factor_id}/confirm/`, { token: pair.access_token, body: { code: await twilio.codeOf(1) } });

  await twilio.close();
  clock.advance(31);
  t.match(await api(server, 'POST', '/api/auth/mfa/sms/', { token: pair.access_token, body: { phone: '+14155550123' } }), { status: 503, body: { error: 'delivery_unavailable', message: /text message could not be sent/ } }, 'enrolment');
  const signIn = await loginAs(server, 'alice@example.com');
  t.equal(signIn.status, 200, 'sign-in answers its step (the authenticator needs no code)');
  clock.advance(31);
  t.match(await resend(server, { challenge_id: signIn.body.challenge_id, method: 'sms' }), { status: 503, body: { error: 'delivery_unavailable' } }, 'resend');
});

t.test('a re-authentication code right after a sign-in code is not held back by the sign-in\'s interval', async (t) => {
  const env = await startMfaServer(t, { OTP_RESEND_INTERVAL: '30' });
  const { server, twilio, clock } = env;
  const { pair } = await seedWithSession(server, 'alice@example.com');
  await enrolTotp(server, pair.access_token, clock);
  const phone = await api<{ factor_id: string }>(server, 'POST', '/api/auth/mfa/sms/', { token: pair.access_token, body: { phone: '+14155552671' } });
  await api(server, 'POST', `/api/auth/mfa/sms/${phone.body.factor_id}/confirm/`, { token: pair.access_token, body: { code: await twilio.codeOf(1) } });
  await api(server, 'PUT', `/api/auth/mfa/${phone.body.factor_id}/`, { token: pair.access_token, body: { preferred: true } });
  clock.advance(31);

  const signIn = await loginAs(server, 'alice@example.com');
  t.match(signIn.body, { sent: { method: 'sms' } }, 'a sign-in code went out');
  const reauth = await api(server, 'POST', '/api/auth/mfa/reauthenticate/', { token: pair.access_token, body: { method: 'sms' } });
  t.equal(reauth.status, 202, 'the re-authentication code goes out at once');
  t.match(await api(server, 'POST', '/api/auth/mfa/reauthenticate/', { token: pair.access_token, body: { method: 'sms' } }), { status: 429, body: { error: 'too_many_requests' } }, 'a second one waits its own interval');
  clock.advance(31);
  t.equal((await api(server, 'POST', '/api/auth/mfa/reauthenticate/', { token: pair.access_token, body: { method: 'sms' } })).status, 202);
});
