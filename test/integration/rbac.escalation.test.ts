/**
 * No escalation: nobody grants a permission, assigns a role or creates a grant giving more than they hold,
 * unless they hold auth.superuser; nobody edits a role or a user who holds more than they do.
 */
import t from 'tap';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('escalation attempts are refused', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const root = await serviceAccount(server, ['admin']);
  for (const codename of ['documents.view', 'documents.edit', 'billing.refund']) await root.api('POST', '/api/auth/permissions/', { name: codename, codename });
  await root.api('POST', '/api/auth/roles/', { name: 'viewer', permissions: ['documents.view'], level: 10 });
  await root.api('POST', '/api/auth/roles/', { name: 'finance', permissions: ['billing.refund'], level: 50 });
  await root.api('POST', '/api/auth/roles/', {
    name: 'role-manager',
    permissions: ['auth.roles.manage', 'auth.grants.manage', 'auth.users.manage', 'auth.permissions.manage', 'documents.view', 'documents.edit'],
    level: 30,
  });
  const mallory = await userWithToken(server, 'mallory@example.com', ['role-manager']);
  const victim = await userWithToken(server, 'victim@example.com', ['viewer']);
  const boss = await userWithToken(server, 'boss@example.com', ['finance']);
  const admin = (await root.api('GET', '/api/auth/roles/?name=admin')).body.items[0];

  // Assigning oneself admin.
  let res = await mallory.api('POST', `/api/auth/users/${mallory.user.id}/roles/`, { role: 'admin' });
  t.equal(res.status, 403, 'cannot assign oneself admin');
  t.same({ error: res.body.error, required: res.body.required }, { error: 'forbidden', required: 'auth.superuser' });
  t.equal((await mallory.api('POST', `/api/auth/users/${mallory.user.id}/roles/`, { role: 'finance' })).status, 403, 'nor a role with a permission one lacks');
  t.equal((await mallory.api('POST', `/api/auth/users/${victim.user.id}/roles/`, { role: 'viewer' })).status, 201, 'a role within one’s own permissions is fine');

  // Granting a permission one lacks: in a role, or as an object grant.
  res = await mallory.api('POST', '/api/auth/roles/', { name: 'sneaky', permissions: ['billing.refund'] });
  t.equal(res.status, 403, 'creating a role with a permission one lacks');
  t.equal(res.body.required, 'billing.refund');
  t.equal((await mallory.api('POST', '/api/auth/roles/', { name: 'sneaky', parents: ['finance'] })).status, 403, 'or inheriting it');
  t.equal((await mallory.api('POST', '/api/auth/roles/', { name: 'sneaky', parents: ['admin'] })).status, 403, 'or inheriting admin');
  t.equal((await mallory.api('POST', '/api/auth/roles/', { name: 'high', level: 99 })).status, 403, 'or a level above one’s own');
  t.equal((await mallory.api('POST', '/api/auth/grants/', { user_id: mallory.user.id, permission: 'billing.refund', object: { type: 'invoice', id: '1' } })).status, 403, 'object grant of a permission one lacks');
  t.equal((await mallory.api('POST', '/api/auth/grants/', { role: 'viewer', permission: 'auth.superuser', object: { type: 'x', id: '1' } })).status, 403);
  t.equal((await mallory.api('POST', '/api/auth/grants/', { user_id: victim.user.id, permission: 'documents.edit', object: { type: 'document', id: '1' } })).status, 201, 'a grant of a held permission is fine');

  // Editing a role one may not manage.
  const finance = (await root.api('GET', '/api/auth/roles/?name=finance')).body.items[0];
  t.equal((await mallory.api('PUT', `/api/auth/roles/${finance.id}/`, { name: 'finance', permissions: [] })).status, 403, 'editing a role holding more');
  t.equal((await mallory.api('DELETE', `/api/auth/roles/${finance.id}/`)).status, 403, 'deleting it');
  t.equal((await mallory.api('PUT', `/api/auth/roles/${admin.id}/`, { name: 'admin', permissions: ['auth.superuser', 'documents.view'] })).status, 403, 'editing admin');
  t.equal((await mallory.api('DELETE', `/api/auth/users/${boss.user.id}/roles/${finance.id}/`)).status, 403, 'stripping a role one may not manage');
  const ownRole = (await root.api('GET', '/api/auth/roles/?name=role-manager')).body.items[0];
  t.equal(
    (await mallory.api('PUT', `/api/auth/roles/${ownRole.id}/`, { name: 'role-manager', permissions: ['auth.roles.manage', 'billing.refund'], level: 30 })).status,
    403,
    'adding a permission to one’s own role',
  );
  const perms = (await root.api('GET', '/api/auth/permissions/?codename=billing')).body.items[0];
  t.equal((await mallory.api('DELETE', `/api/auth/permissions/${perms.id}/`)).status, 403, 'deleting a permission one lacks');

  // Users: no disabling or deleting someone who holds more.
  t.equal((await mallory.api('PATCH', `/api/auth/users/${boss.user.id}/`, { disabled: true })).status, 403, 'disabling a user with more');
  t.equal((await mallory.api('DELETE', `/api/auth/users/${boss.user.id}/`)).status, 403, 'deleting one');

  // auth.superuser may do all of it.
  t.equal((await root.api('POST', `/api/auth/users/${mallory.user.id}/roles/`, { role: 'finance' })).status, 201, 'superuser assigns anything');
  t.equal((await mallory.api('POST', '/api/auth/check/', { permission: 'billing.refund' })).body.allowed, true);
  t.equal((await mallory.api('POST', '/api/auth/check/', { permission: 'auth.superuser' })).body.allowed, false, 'still not superuser');
});

t.test('user administration', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const root = await serviceAccount(server, ['admin']);
  const res = await root.api('POST', '/api/auth/users/', { email: 'New@Example.com', name: 'New', password: 'a long enough password' });
  t.equal(res.status, 201, JSON.stringify(res.body));
  t.equal(res.body.email, 'new@example.com');
  t.notOk('password' in res.body);
  const id = res.body.id as string;
  t.equal((await root.api('POST', '/api/auth/users/', { email: 'new@example.com' })).status, 409, 'duplicate email');
  t.equal((await root.api('POST', '/api/auth/users/', { email: 'not an email' })).status, 400);
  t.equal((await root.api('GET', `/api/auth/users/${id}/`)).body.email, 'new@example.com');
  t.equal((await root.api('GET', '/api/auth/users/?email=new@')).body.items.length, 1);
  const disabled = await root.api('PATCH', `/api/auth/users/${id}/`, { disabled: true });
  t.equal(disabled.body.disabled, true);
  t.equal((await root.api('PATCH', `/api/auth/users/${id}/`, { disabled: false })).body.disabled, false, 'enable again');
  t.equal((await root.api('PATCH', `/api/auth/users/${id}/`, { email: 'x@example.com' })).status, 400, 'email is not updatable here');
  t.equal((await root.api('DELETE', `/api/auth/users/${id}/`)).status, 204);
  t.equal((await root.api('GET', `/api/auth/users/${id}/`)).status, 404);

  // A disabled user holds nothing.
  await root.api('POST', '/api/auth/permissions/', { name: 'p', codename: 'p.q' });
  await root.api('POST', '/api/auth/roles/', { name: 'r', permissions: ['p.q'] });
  const erin = await userWithToken(server, 'erin@example.com', ['r']);
  t.equal((await erin.api('POST', '/api/auth/check/', { permission: 'p.q' })).body.allowed, true);
  await root.api('PATCH', `/api/auth/users/${erin.user.id}/`, { disabled: true });
  t.equal((await erin.api('POST', '/api/auth/check/', { permission: 'p.q' })).body.allowed, false, 'disabled: nothing allowed');
});
