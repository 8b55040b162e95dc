/**
 * Outranking in user administration: changing, re-enabling, deleting, unlocking, resetting the factors of or
 * ending the sessions of a user needs every permission and object grant they hold and a level at least theirs; a disabled user is
 * compared by what they would hold if enabled.
 */
import t from 'tap';
import { seedUser } from '../helpers/oidc.js';
import { assignRoles, serviceAccount, userWithToken, type Api } from '../helpers/rbac.js';
import { startServer, type TestServer } from '../helpers/server.js';

async function userWithRoles(server: TestServer, email: string, roles: string[]) {
  const user = await seedUser(server, email);
  await assignRoles(server, user.id, roles);
  return user;
}

/** Every administrative action on a user, with the status each answers. */
async function actions(api: Api, id: string) {
  return {
    change: (await api('PATCH', `/api/auth/users/${id}/`, { name: 'Renamed' })).status,
    enable: (await api('PATCH', `/api/auth/users/${id}/`, { disabled: false })).status,
    unlock: (await api('POST', `/api/auth/users/${id}/unlock/`)).status,
    mfaReset: (await api('POST', `/api/auth/users/${id}/mfa/reset/`)).status,
    endSessions: (await api('POST', `/api/auth/users/${id}/sessions/end/`)).status,
    remove: (await api('DELETE', `/api/auth/users/${id}/`)).status,
  };
}
const refusedAll = { change: 403, enable: 403, unlock: 403, mfaReset: 403, endSessions: 403, remove: 403 };

t.test('a lesser administrator cannot act on users who outrank them', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const root = await serviceAccount(server, ['admin']);
  for (const codename of ['documents.view', 'documents.edit']) t.equal((await root.api('POST', '/api/auth/permissions/', { name: codename, codename })).status, 201);
  t.equal((await root.api('POST', '/api/auth/roles/', { name: 'user-manager', permissions: ['auth.users.manage', 'documents.view'], level: 30 })).status, 201);
  t.equal((await root.api('POST', '/api/auth/roles/', { name: 'viewer', permissions: ['documents.view'], level: 10 })).status, 201);
  t.equal((await root.api('POST', '/api/auth/roles/', { name: 'senior-viewer', permissions: ['documents.view'], level: 50 })).status, 201);
  t.equal((await root.api('POST', '/api/auth/roles/', { name: 'doc-1-editor', permissions: [], level: 0 })).status, 201);
  t.equal((await root.api('POST', '/api/auth/grants/', { role: 'doc-1-editor', permission: 'documents.edit', object: { type: 'document', id: '1' } })).status, 201);
  const mallory = await userWithToken(server, 'mallory@example.com', ['user-manager']);

  const superuser = await userWithRoles(server, 'root-admin@example.com', ['admin']);
  t.equal((await root.api('PATCH', `/api/auth/users/${superuser.id}/`, { disabled: true })).status, 200, 'the superuser is disabled');
  const disabledSuperuser = await mallory.api('PATCH', `/api/auth/users/${superuser.id}/`, { disabled: false });
  t.equal(disabledSuperuser.status, 403, 'a disabled superuser cannot be re-enabled by a lesser admin');
  t.same({ error: disabledSuperuser.body.error, required: disabledSuperuser.body.required }, { error: 'forbidden', required: 'auth.superuser' });
  t.same(await actions(mallory.api, superuser.id), refusedAll, 'nor changed, unlocked, MFA-reset, signed out or deleted');
  t.equal((await root.api('GET', `/api/auth/users/${superuser.id}/`)).body.disabled, true, 'still disabled');

  const senior = await userWithRoles(server, 'senior@example.com', ['senior-viewer']);
  const higher = await mallory.api('PATCH', `/api/auth/users/${senior.id}/`, { name: 'x' });
  t.equal(higher.status, 403, 'a target with a higher level (same permissions) outranks');
  t.match(higher.body.message, /level 50, above your level 30/);
  t.same(await actions(mallory.api, senior.id), refusedAll);

  const editor = await userWithRoles(server, 'editor@example.com', ['viewer', 'doc-1-editor']);
  const viaRole = await mallory.api('POST', `/api/auth/users/${editor.id}/unlock/`);
  t.equal(viaRole.status, 403, 'an object grant (through a role) the caller lacks outranks');
  t.equal(viaRole.body.required, 'documents.edit');
  const direct = await userWithRoles(server, 'direct@example.com', ['viewer']);
  t.equal((await root.api('POST', '/api/auth/grants/', { user_id: direct.id, permission: 'documents.edit', object: { type: 'document', id: '2' } })).status, 201);
  t.equal((await root.api('PATCH', `/api/auth/users/${direct.id}/`, { disabled: true })).status, 200);
  t.same(await actions(mallory.api, direct.id), refusedAll, 'a disabled user with a direct object grant the caller lacks');

  // The same grant held by the caller is enough; so is a lower or equal level with fewer permissions.
  t.equal((await root.api('POST', '/api/auth/grants/', { user_id: mallory.user.id, permission: 'documents.edit', object: { type: 'document', id: '1' } })).status, 201);
  t.equal((await mallory.api('POST', `/api/auth/users/${editor.id}/unlock/`)).status, 200, 'holding the same object grant');
  const plain = await userWithRoles(server, 'plain@example.com', ['viewer']);
  t.equal((await root.api('PATCH', `/api/auth/users/${plain.id}/`, { disabled: true })).status, 200);
  t.same(await actions(mallory.api, plain.id), { change: 200, enable: 200, unlock: 200, mfaReset: 200, endSessions: 200, remove: 204 }, 'a user the caller outranks, disabled or not');

  t.same(await actions(root.api, superuser.id), { change: 200, enable: 200, unlock: 200, mfaReset: 200, endSessions: 200, remove: 204 }, 'auth.superuser outranks everyone');
});
