/**
 * Personal tokens are not administrator credentials (issue 9 M3): a `kpat_` token may use a permission only when
 * one of its scopes (the Authorization API's, named after the auth.* permissions) names it and its owner holds
 * it at the time; unknown scopes are refused at creation; creating one needs a recent sign-in; a revoked one never
 * comes back; "log out all" and a password change end them (a reset and a compromise report already did).
 */
import t from 'tap';
import { api, login, manualClock, NO_RATE_LIMITS, seedAuthUser, type Pair } from '../helpers/auth.js';
import { createRbacQueries } from '../../src/queries/rbac.js';
import { assignRoles } from '../helpers/rbac.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

async function adminUser(server: TestServer, email = 'alice@example.com') {
  const user = await seedAuthUser(server, email);
  const rbac = server.app.keryu.services.rbac;
  const adminRole = (await rbac.findRole('admin'))!;
  await assignRoles(server, user.id, ['admin']);
  return { user, adminRoleId: adminRole.id };
}

const createPat = (server: TestServer, session: Pair, body: Record<string, unknown>) =>
  api<{ id: string; token: string; scopes: string[] }>(server, 'POST', '/api/auth/tokens/', { token: session.access_token, body: { name: 'ci', ...body } });

t.test('a personal token may do only what its scopes name, while its owner holds it', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const { user, adminRoleId } = await adminUser(server);
  const bob = await seedAuthUser(server, 'bob@example.com');
  const session = await login(server);

  const users = await createPat(server, session, { scopes: ['auth.users.manage'] });
  t.equal(users.status, 201);
  t.same(users.body.scopes, ['auth.users.manage']);
  const pat = users.body.token;
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: pat })).status, 200, 'the scope it names');
  const roles = await api(server, 'GET', '/api/auth/roles/', { token: pat });
  t.match(roles, { status: 403, body: { error: 'insufficient_scope', required: 'auth.roles.manage' } }, 'not another permission its owner holds');
  t.equal((await api(server, 'POST', `/api/auth/users/${bob.id}/roles/`, { token: pat, body: { role: 'admin' } })).status, 403, 'nor assign roles');
  t.equal((await api(server, 'GET', '/api/auth/roles/', { token: session.access_token })).status, 200, 'the session itself keeps full access');

  const none = await createPat(server, session, {});
  t.same(none.body.scopes, [], 'no scopes by default');
  t.match(await api(server, 'GET', '/api/auth/users/', { token: none.body.token }), { status: 403, body: { error: 'insufficient_scope' } }, 'a token without scopes administers nothing');

  const rolesOnly = await createPat(server, session, { scopes: ['auth.roles.manage'] });
  const escalate = await api(server, 'POST', `/api/auth/users/${bob.id}/roles/`, { token: rolesOnly.body.token, body: { role: 'admin' } });
  t.match(escalate, { status: 403, body: { error: 'forbidden', required: 'auth.superuser' } }, "a superuser's roles-only token cannot hand out admin");

  const everything = await createPat(server, session, { scopes: ['auth.superuser'] });
  t.equal((await api(server, 'GET', '/api/auth/roles/', { token: everything.body.token })).status, 200, 'auth.superuser stands for every auth.* scope');

  // The owner loses the permission: the token loses it with them.
  await createRbacQueries(server.app.keryu.database.db).deleteUserRole(user.id, adminRoleId);
  await server.app.keryu.services.rbac.notifyChanged();
  t.match(await api(server, 'GET', '/api/auth/users/', { token: pat }), { status: 403, body: { error: 'forbidden', required: 'auth.users.manage' } }, 'scope without permission is nothing');
  t.equal((await api(server, 'GET', '/api/auth/roles/', { token: everything.body.token })).status, 403);
});

t.test('scopes are checked at creation', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await adminUser(server);
  const session = await login(server);
  const bad = await createPat(server, session, { scopes: ['auth.users.manage', 'deploy'] });
  t.match(bad, { status: 400, body: { error: 'invalid_scope' } });
  t.match(bad.body, { message: /deploy/ }, 'names the unknown scope');
  t.match(await createPat(server, session, { scopes: ['Auth.Users.Manage'] }), { status: 400, body: { error: 'invalid_scope' } }, 'exact names only');
  const list = await api<{ items: unknown[] }>(server, 'GET', '/api/auth/tokens/', { token: session.access_token });
  t.equal(list.body.items.length, 1, 'nothing was created');
});

t.test('creating a personal token needs a recent sign-in', async (t) => {
  const clock = manualClock();
  const server = await startServer({ env: { ...NO_RATE_LIMITS, ACCESS_TOKEN_TTL: '3600' }, clock });
  t.teardown(() => server.close());
  await adminUser(server);
  const session = await login(server);
  clock.advance(299);
  t.equal((await createPat(server, session, { scopes: ['auth.users.manage'] })).status, 201, 'within five minutes of signing in');

  clock.advance(2);
  const stale = await createPat(server, session, { scopes: ['auth.users.manage'] });
  t.match(stale, { status: 403, body: { error: 'reauthentication_required', max_age: 300 } }, 'an older session must sign in again');
  const refreshed = await api<Pair>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: session.refresh_token } });
  t.equal(refreshed.status, 200);
  t.match(await createPat(server, refreshed.body, {}), { status: 403, body: { error: 'reauthentication_required' } }, 'a refresh is not a sign-in');

  const again = await login(server);
  t.equal((await createPat(server, again, {})).status, 201, 'a new sign-in may');
});

t.test('a revoked personal token never comes back', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await adminUser(server);
  const session = await login(server);
  const pat = (await createPat(server, session, { scopes: ['auth.users.manage'] })).body;
  t.match(await api(server, 'PUT', `/api/auth/tokens/${pat.id}/`, { token: session.access_token, body: { is_active: false } }), { status: 200, body: { is_active: false } });
  const back = await api(server, 'PUT', `/api/auth/tokens/${pat.id}/`, { token: session.access_token, body: { is_active: true } });
  t.match(back, { status: 409, body: { error: 'conflict' } });
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: pat.token })).status, 401, 'still refused');
  t.equal((await api(server, 'PUT', `/api/auth/tokens/${pat.id}/`, { token: session.access_token, body: { is_active: true, name: 'renamed' } })).status, 409, 'not with other changes either');
});

t.test('"log out all" and a password change end personal tokens', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  await adminUser(server);

  let session = await login(server);
  let pat = (await createPat(server, session, { scopes: ['auth.users.manage'] })).body.token;
  t.equal((await api(server, 'POST', '/api/auth/logout/', { token: session.access_token, body: { all_sessions: true } })).status, 204);
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: pat })).status, 401, 'log out all ends them');

  session = await login(server);
  pat = (await createPat(server, session, { scopes: ['auth.users.manage'] })).body.token;
  const changed = await api(server, 'POST', '/api/auth/password/change/', {
    token: session.access_token,
    body: { current_password: TEST_PASSWORD, new_password: 'an entirely different passphrase 42' },
  });
  t.equal(changed.status, 204);
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: pat })).status, 401, 'a password change ends them');
  t.equal((await api(server, 'GET', '/api/auth/users/', { token: session.access_token })).status, 200, 'the session that changed it stays');
});
