/**
 * POST /api/auth/users/{id}/sessions/end/ (auth.users.manage): every sign-in of the user ends (first-party
 * sessions and personal tokens included), audited with the administrator as actor; without the permission
 * 403 and nothing ends; an unknown id 404.
 */
import t from 'tap';
import { and, eq } from 'drizzle-orm';
import { auditEvents } from '../../src/db/schema/index.js';
import { api, login, seedAuthUser } from '../helpers/auth.js';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('an administrator ends every sign-in of a user', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const user = await seedAuthUser(server, 'bob@example.com');
  const first = await login(server, { email: user.email });
  const second = await login(server, { email: user.email });
  const works = async (token: string) => (await api(server, 'GET', '/api/auth/tokens/', { token })).status === 200;
  t.ok((await works(first.access_token)) && (await works(second.access_token)), 'two sessions before');

  const nobody = await userWithToken(server, 'nobody@example.com');
  t.match(await nobody.api('POST', `/api/auth/users/${user.id}/sessions/end/`), { status: 403, body: { required: 'auth.users.manage' } });
  t.ok(await works(first.access_token), 'a refused request ends nothing');

  const admin = await serviceAccount(server, ['admin']);
  t.equal((await admin.api('POST', '/api/auth/users/00000000-0000-4000-8000-000000000000/sessions/end/')).status, 404, 'unknown user');
  const ended = await admin.api('POST', `/api/auth/users/${user.id}/sessions/end/`);
  t.equal(ended.status, 200);
  t.same(ended.body, { id: user.id, ended: 2 }, 'both sessions counted');
  t.notOk(await works(first.access_token), 'the first session is dead');
  t.notOk(await works(second.access_token), 'and the second');
  t.equal((await api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: first.refresh_token } })).status, 401, 'its refresh token too');

  await server.app.keryu.services.audit.flush();
  const events = await server.db.database.db.select().from(auditEvents).where(and(eq(auditEvents.type, 'session.revoked'), eq(auditEvents.subjectId, user.id)));
  t.match(events, [{ outcome: 'success', actorType: 'client', actorId: admin.clientId, details: { reason: 'admin_ended', count: 2 } }], 'audited with the administrator as actor');
});
