/** Administrators reset a user's factors (a lost phone): POST /api/auth/users/{id}/mfa/reset/ (auth.users.manage, no escalation). */
import { eq } from 'drizzle-orm';
import { generate } from 'otplib';
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { api, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';
import { startSmtpServer } from '../helpers/smtp.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

t.test('an MFA reset removes every factor and trusted device, tells the user, and needs to outrank them', async (t) => {
  const smtp = await startSmtpServer();
  t.teardown(() => smtp.close());
  const server = await startServer({ env: { ...NO_RATE_LIMITS, SMTP_URL: smtp.url } });
  t.teardown(() => server.close());
  const user = await seedAuthUser(server);
  const { factors } = server.app.keryu.services;
  const enrolled = await factors.enrollTotp(user);
  await factors.confirm(user, 'totp', enrolled.factor_id, await generate({ secret: enrolled.secret }));
  await factors.generateRecoveryCodes(user);
  const login = () => api<{ mfa_required?: boolean; access_token?: string }>(server, 'POST', '/api/auth/login/', { body: { email: user.email, password: TEST_PASSWORD } });
  t.equal((await login()).body.mfa_required, true, 'a factor is needed before the reset');
  const mailsBefore = smtp.messages.length;

  const nobody = await userWithToken(server, 'nobody@example.com'); // every API scope, no permission
  const refused = await nobody.api('POST', `/api/auth/users/${user.id}/mfa/reset/`);
  t.match(refused, { status: 403, body: { required: 'auth.users.manage' } });
  t.equal((await factors.listActive(user.id)).length, 2, 'a refused reset removes nothing');

  const admin = await serviceAccount(server, ['admin']);
  t.equal((await admin.api('POST', '/api/auth/users/00000000-0000-4000-8000-000000000000/mfa/reset/')).status, 404, 'unknown user');
  const reset = await admin.api('POST', `/api/auth/users/${user.id}/mfa/reset/`);
  t.same(reset, { status: 200, body: { id: user.id, removed: 2, ended: 0 }, headers: reset.headers }, 'two factors removed; no sign-in was open to end');
  t.same(await factors.listActive(user.id), [], 'no factor left');
  t.ok((await login()).body.access_token, 'the password alone signs in again (no MFA required for this user)');
  const mail = await smtp.waitFor(mailsBefore + 1);
  t.match(mail.text, /removed from your account/, 'the user is told by email');
  t.match(mail.text, /\/security\/report\?token=/, 'with a "This wasn\'t me" link');

  await server.app.keryu.services.audit.flush();
  const events = await server.db.database.db.select().from(auditEvents).where(eq(auditEvents.type, 'mfa.factor_removed'));
  t.match(events, [{ outcome: 'success', actorType: 'client', subjectId: user.id, details: { all: true, count: 2, reset_by_admin: true } }], 'audited with the administrator as actor');
  const ended = await server.db.database.db.select().from(auditEvents).where(eq(auditEvents.type, 'session.revoked'));
  t.match(ended, [{ outcome: 'success', actorType: 'client', actorId: admin.clientId, subjectId: user.id, details: { reason: 'mfa_reset' } }], 'ending the sign-ins is audited with the administrator as actor');
});
