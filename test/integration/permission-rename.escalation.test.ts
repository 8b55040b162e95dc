/**
 * Renaming a permission's codename hands the new codename to every role and grant holding it, so it is a
 * grant of the new codename: only someone who may grant that codename (auth.superuser, for a codename nobody
 * holds yet) may rename. Changing the display name or description keeps the old rules.
 */
import t from 'tap';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('a codename change is a grant of the new codename', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const root = await serviceAccount(server, ['admin']);
  const created = await root.api('POST', '/api/auth/permissions/', { name: 'View documents', codename: 'documents.view' });
  t.equal(created.status, 201);
  const id = created.body.id as string;
  t.equal((await root.api('POST', '/api/auth/roles/', { name: 'viewer', permissions: ['documents.view'] })).status, 201);
  t.equal((await root.api('POST', '/api/auth/roles/', { name: 'permission-manager', permissions: ['auth.permissions.manage', 'documents.view'] })).status, 201);
  const manager = await userWithToken(server, 'manager@example.com', ['permission-manager']);
  const holder = await userWithToken(server, 'holder@example.com', ['viewer']);

  const renamed = await manager.api('PUT', `/api/auth/permissions/${id}/`, { name: 'View documents', codename: 'billing.refund' });
  t.equal(renamed.status, 403, 'renaming to a codename one cannot grant');
  t.same({ error: renamed.body.error, required: renamed.body.required }, { error: 'forbidden', required: 'billing.refund' });
  t.equal((await holder.api('POST', '/api/auth/check/', { permission: 'billing.refund' })).body.allowed, false, 'the holders did not get it');
  t.equal((await root.api('GET', `/api/auth/permissions/${id}/`)).body.codename, 'documents.view', 'nothing changed');

  const relabelled = await manager.api('PUT', `/api/auth/permissions/${id}/`, { name: 'Read documents', codename: 'documents.view', description: 'read' });
  t.equal(relabelled.status, 200, 'the name and description of a held permission may change');

  t.equal((await root.api('PUT', `/api/auth/permissions/${id}/`, { name: 'Read documents', codename: 'documents.read' })).status, 200, 'auth.superuser may rename');
  t.equal((await holder.api('POST', '/api/auth/check/', { permission: 'documents.read' })).body.allowed, true, 'and the holders hold the new codename');
});
