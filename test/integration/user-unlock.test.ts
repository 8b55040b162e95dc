/** Admins end a brute-force lockout through the API: POST /api/auth/users/{id}/unlock/ (auth.users.manage). */
import t from 'tap';
import { api, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

t.test('unlock through the admin API', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, LOGIN_DELAY_AFTER: '1000', LOGIN_LOCK_AFTER: '3' } });
  t.teardown(() => server.close());
  const user = await seedAuthUser(server);
  const login = () => api(server, 'POST', '/api/auth/login/', { body: { email: user.email, password: TEST_PASSWORD } });

  for (let i = 0; i < 3; i++) await api(server, 'POST', '/api/auth/login/', { body: { email: user.email, password: 'wrong password!' } });
  t.equal((await login()).status, 429, 'locked');

  const nobody = await userWithToken(server, 'nobody@example.com'); // every API scope, no permission
  const refused = await nobody.api('POST', `/api/auth/users/${user.id}/unlock/`);
  t.equal(refused.status, 403);
  t.equal(refused.body.required, 'auth.users.manage');
  t.equal((await login()).status, 429, 'still locked after a refused unlock');

  const admin = await serviceAccount(server, ['admin']);
  t.equal((await admin.api('POST', '/api/auth/users/00000000-0000-4000-8000-000000000000/unlock/')).status, 404, 'unknown user');
  const unlocked = await admin.api('POST', `/api/auth/users/${user.id}/unlock/`);
  t.equal(unlocked.status, 200);
  t.same(unlocked.body, { id: user.id, cleared: 1 });
  t.equal((await login()).status, 200, 'the user signs in again');
  t.equal((await admin.api('GET', `/api/auth/users/${user.id}/unlock/`)).status, 405, 'only POST');
});
