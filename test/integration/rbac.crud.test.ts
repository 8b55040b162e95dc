/** The roles and permissions API contract: CRUD, validation errors, 404s, conflicts, cycles, 401/403/405, audit. */
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { apiClient, serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('permissions and roles CRUD', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const { api } = await serviceAccount(server, ['admin']);

  const created = await api('POST', '/api/auth/permissions/', { name: 'View documents', codename: 'documents.view', description: 'Read' });
  t.equal(created.status, 201, JSON.stringify(created.body));
  t.match(created.body, { codename: 'documents.view', name: 'View documents', builtin: false });
  t.match(created.body.created_at, /^\d{4}-\d\d-\d\dT/, 'RFC 3339');
  const edit = await api('POST', '/api/auth/permissions/', { name: 'Edit documents', codename: 'documents.edit' });
  t.equal(edit.status, 201);

  t.equal((await api('POST', '/api/auth/permissions/', { name: 'Other', codename: 'documents.view' })).status, 409, 'duplicate codename');
  t.equal((await api('POST', '/api/auth/permissions/', { name: 'View documents', codename: 'documents.other' })).status, 409, 'duplicate name');
  const long = await api('POST', '/api/auth/permissions/', { name: 'x'.repeat(101), codename: 'a.b' });
  t.equal(long.status, 400, 'over-long name');
  t.equal(long.body.error, 'invalid_request');
  t.equal((await api('POST', '/api/auth/permissions/', { name: 'ok', codename: `a.${'b'.repeat(100)}` })).status, 400, 'over-long codename');
  t.equal((await api('POST', '/api/auth/permissions/', { name: 'ok' })).status, 400, 'missing codename');
  t.equal((await api('POST', '/api/auth/permissions/', '{"name":')).status, 400, 'malformed JSON');
  t.equal((await api('POST', '/api/auth/permissions/', { name: 'ok', codename: 'a.b', extra: 1 })).status, 400, 'unknown field');

  const list = await api('GET', '/api/auth/permissions/?limit=2');
  t.equal(list.status, 200);
  t.equal(list.body.items.length, 2);
  t.type(list.body.next_cursor, 'string');
  const next = await api('GET', `/api/auth/permissions/?limit=2&cursor=${list.body.next_cursor}`);
  t.notSame(next.body.items[0].id, list.body.items[0].id, 'second page');
  t.equal((await api('GET', '/api/auth/permissions/?limit=201')).status, 400, 'limit capped at 200');
  t.equal((await api('GET', '/api/auth/permissions/?codename=documents.')).body.items.length, 2, 'filter by codename');

  const id = created.body.id as string;
  t.equal((await api('GET', `/api/auth/permissions/${id}/`)).body.codename, 'documents.view');
  t.equal((await api('GET', '/api/auth/permissions/00000000-0000-0000-0000-000000000000/')).status, 404, 'unknown id');
  t.equal((await api('GET', '/api/auth/permissions/not-a-uuid/')).status, 404, 'malformed id is unknown');
  const renamed = await api('PUT', `/api/auth/permissions/${id}/`, { name: 'Read documents', codename: 'documents.view' });
  t.equal(renamed.body.name, 'Read documents');
  t.equal((await api('PUT', `/api/auth/permissions/${id}/`, { name: 'Edit documents', codename: 'documents.view' })).status, 409, 'rename onto another name');

  // roles
  const viewer = await api('POST', '/api/auth/roles/', { name: 'viewer', permissions: ['documents.view'], level: 10 });
  t.equal(viewer.status, 201, JSON.stringify(viewer.body));
  t.same(viewer.body.permissions, ['documents.view']);
  const editor = await api('POST', '/api/auth/roles/', { name: 'editor', description: 'Edits', permissions: ['documents.edit'], parents: ['viewer'], level: 20 });
  t.equal(editor.status, 201);
  t.same(editor.body.parents, ['viewer']);
  t.equal((await api('POST', '/api/auth/roles/', { name: 'viewer' })).status, 409, 'duplicate role name');
  t.equal((await api('POST', '/api/auth/roles/', { name: 'r'.repeat(101) })).status, 400, 'over-long role name');
  t.equal((await api('POST', '/api/auth/roles/', { name: 'x', permissions: ['nope.nope'] })).status, 400, 'unknown permission');
  t.equal((await api('POST', '/api/auth/roles/', { name: 'x', parents: ['nope'] })).status, 400, 'unknown parent');
  t.equal((await api('POST', '/api/auth/roles/', { name: 'x', level: 'high' })).status, 400, 'malformed level');

  const shown = await api('GET', `/api/auth/roles/${editor.body.id}/`);
  t.same(shown.body.effective_permissions, ['documents.edit', 'documents.view'], 'effective permissions include inherited ones');
  t.equal(shown.body.effective_level, 20);
  t.equal((await api('GET', '/api/auth/roles/?name=edit')).body.items.length, 1, 'filter by name');
  t.equal((await api('GET', '/api/auth/roles/00000000-0000-0000-0000-000000000000/')).status, 404);

  // cycles: viewer ← editor ← publisher; making publisher a parent of viewer closes a loop
  const publisher = await api('POST', '/api/auth/roles/', { name: 'publisher', parents: ['editor'] });
  const cycle = await api('PUT', `/api/auth/roles/${viewer.body.id}/`, { name: 'viewer', permissions: ['documents.view'], parents: ['publisher'] });
  t.equal(cycle.status, 409);
  t.equal(cycle.body.error, 'role_cycle');
  t.equal((await api('PUT', `/api/auth/roles/${viewer.body.id}/`, { name: 'viewer', parents: ['viewer'] })).body.error, 'role_cycle', 'self-parent');
  t.same((await api('GET', `/api/auth/roles/${publisher.body.id}/`)).body.effective_permissions, ['documents.edit', 'documents.view']);

  // built-ins
  const admin = (await api('GET', '/api/auth/roles/?name=admin')).body.items[0];
  t.same(admin.permissions, ['auth.superuser'], 'admin exists from the first start');
  t.equal((await api('DELETE', `/api/auth/roles/${admin.id}/`)).status, 409, 'admin cannot be deleted');
  const builtins = (await api('GET', '/api/auth/permissions/?codename=auth.')).body.items.map((p: { codename: string }) => p.codename);
  t.same(builtins.sort(), ['auth.audit.read', 'auth.check', 'auth.clients.manage', 'auth.grants.manage', 'auth.permissions.manage', 'auth.roles.manage', 'auth.superuser', 'auth.tokens.manage', 'auth.users.manage']);

  // deleting a permission removes it from roles
  t.equal((await api('DELETE', `/api/auth/permissions/${edit.body.id}/`)).status, 204);
  t.same((await api('GET', `/api/auth/roles/${editor.body.id}/`)).body.permissions, []);
  t.equal((await api('DELETE', `/api/auth/permissions/${edit.body.id}/`)).status, 404, 'second delete: 404');

  // audit with before and after
  await server.app.keryu.services.audit.flush();
  const events = await server.app.keryu.database.db.select().from(auditEvents);
  const updated = events.find((e) => e.type === 'permission.updated');
  t.match(updated?.details, { before: { name: 'View documents' }, after: { name: 'Read documents' } }, 'update audited with before and after');
  t.ok(events.some((e) => e.type === 'role.created'), 'role creation audited');
  t.ok(events.some((e) => e.type === 'permission.deleted'), 'deletion audited');

  // OpenAPI
  const doc = await apiClient(server.origin, undefined)('GET', '/docs/json');
  t.ok(doc.body.paths['/api/auth/roles/{id}/'], 'roles in OpenAPI');
  t.ok(doc.body.paths['/api/auth/check/'], 'check in OpenAPI');
});

t.test('401, 403 and 405', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const anonymous = apiClient(server.origin, undefined);
  const missing = await anonymous('GET', '/api/auth/roles/');
  t.equal(missing.status, 401);
  t.equal(missing.headers.get('www-authenticate'), 'Bearer');
  t.equal((await apiClient(server.origin, 'not-a-token')('GET', '/api/auth/roles/')).status, 401, 'unknown token');

  const { api } = await userWithToken(server, 'nobody@example.com'); // every API scope, no permission
  for (const [method, path, required] of [
    ['GET', '/api/auth/roles/', 'auth.roles.manage'],
    ['GET', '/api/auth/permissions/', 'auth.permissions.manage'],
    ['GET', '/api/auth/grants/', 'auth.grants.manage'],
    ['GET', '/api/auth/users/', 'auth.users.manage'],
    ['POST', '/api/auth/roles/', 'auth.roles.manage'],
  ] as const) {
    const res = await api(method, path, method === 'POST' ? { name: 'x' } : undefined);
    t.equal(res.status, 403, `${method} ${path}`);
    t.same({ error: res.body.error, required: res.body.required }, { error: 'forbidden', required });
  }
  const wrong = await api('PATCH', '/api/auth/roles/');
  t.equal(wrong.status, 405);
  t.match(wrong.headers.get('allow'), /GET, POST/);
});
