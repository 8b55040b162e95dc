/**
 * Decisions: inheritance through several levels and diamonds, levels, expiring assignments, object grants to
 * users and to roles (reaching holders through inheritance), the check API with batch and explain, another
 * subject's check, dry runs, deleting a role in use, token claims.
 */
import t from 'tap';
import * as client from 'openid-client';
import { decodeJwt } from 'jose';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { manualClock } from '../helpers/auth.js';
import { discover, loginWithCode, seedClient } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

t.test('inheritance, grants, the check API and dry runs', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const { api } = await serviceAccount(server, ['admin']);

  for (const codename of ['documents.view', 'documents.edit', 'documents.delete', 'projects.view', 'reports.run']) {
    t.equal((await api('POST', '/api/auth/permissions/', { name: codename, codename })).status, 201);
  }
  // A diamond: top ← left, right ← bottom; plus a chain viewer ← editor ← chief (levels 10, 20, 30).
  const mk = async (body: Record<string, unknown>) => {
    const res = await api('POST', '/api/auth/roles/', body);
    t.equal(res.status, 201, `create ${String(body.name)}: ${JSON.stringify(res.body)}`);
    return res.body as { id: string };
  };
  const viewer = await mk({ name: 'viewer', permissions: ['documents.view'], level: 10 });
  await mk({ name: 'editor', permissions: ['documents.edit'], parents: ['viewer'], level: 20 });
  await mk({ name: 'chief', permissions: [], parents: ['editor'], level: 5 });
  await mk({ name: 'top', permissions: ['reports.run'] });
  await mk({ name: 'left', parents: ['top'] });
  await mk({ name: 'right', parents: ['top'], permissions: ['projects.view'] });
  const bottom = await mk({ name: 'bottom', parents: ['left', 'right'] });

  const alice = await userWithToken(server, 'alice@example.com', ['chief']);
  const bob = await userWithToken(server, 'bob@example.com', ['bottom']);

  // Asking about oneself needs no permission.
  let res = await alice.api('POST', '/api/auth/check/', { permission: 'documents.view', explain: true });
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.equal(res.body.allowed, true, 'three levels up');
  t.equal(res.body.explanation, 'alice@example.com → chief → editor → viewer → documents.view');
  res = await alice.api('POST', '/api/auth/check/', { permission: 'documents.delete', explain: true });
  t.same({ allowed: res.body.allowed, reason: res.body.reason }, { allowed: false, reason: 'missing_permission' });
  t.match(res.body.explanation, /lacks documents\.delete/);
  t.same((await alice.api('POST', '/api/auth/check/', { permission: 'documents.view', min_level: 20 })).body, { allowed: true, reason: 'role' }, 'level is the max over inherited roles');
  t.same((await alice.api('POST', '/api/auth/check/', { permission: 'documents.view', min_level: 21 })).body, { allowed: false, reason: 'level_too_low' });

  res = await bob.api('POST', '/api/auth/check/', { checks: [{ permission: 'reports.run' }, { permission: 'projects.view' }, { permission: 'documents.view' }] });
  t.same(
    res.body.results.map((r: { allowed: boolean }) => r.allowed),
    [true, true, false],
    'diamond: both branches and the shared ancestor',
  );

  // Another subject: needs auth.check.
  res = await alice.api('POST', '/api/auth/check/', { subject: bob.user.id, permission: 'reports.run' });
  t.equal(res.status, 403);
  t.same({ error: res.body.error, required: res.body.required }, { error: 'forbidden', required: 'auth.check' });
  await mk({ name: 'checker', permissions: ['auth.check'] });
  const rs = await serviceAccount(server, ['checker']);
  t.same((await rs.api('POST', '/api/auth/check/', { subject: bob.user.id, permission: 'reports.run' })).body, { allowed: true, reason: 'role' }, 'a relying service with auth.check');
  t.same((await rs.api('POST', '/api/auth/check/', { subject: '00000000-0000-0000-0000-000000000000', permission: 'reports.run' })).body, { allowed: false, reason: 'unknown_subject' });
  t.equal((await rs.api('POST', '/api/auth/check/', { permission: 'Not A Codename' })).status, 400, 'malformed codename');
  t.equal((await rs.api('POST', '/api/auth/check/', {})).status, 400, 'no question');

  // Object grants: to a user, and to a role reaching holders through inheritance.
  res = await api('POST', '/api/auth/grants/', { user_id: alice.user.id, permission: 'documents.delete', object: { type: 'document', id: '17' } });
  t.equal(res.status, 201, JSON.stringify(res.body));
  const aliceGrant = res.body.id as string;
  t.equal((await api('POST', '/api/auth/grants/', { user_id: alice.user.id, permission: 'documents.delete', object: { type: 'document', id: '17' } })).status, 409, 'duplicate grant');
  res = await api('POST', '/api/auth/grants/', { role: 'top', permission: 'documents.edit', object: { type: 'project', id: 'apollo' } });
  t.equal(res.status, 201);
  t.equal((await api('POST', '/api/auth/grants/', { role: 'top', user_id: alice.user.id, permission: 'documents.edit', object: { type: 'p', id: '1' } })).status, 400, 'one subject only');
  t.equal((await api('POST', '/api/auth/grants/', { role: 'nope', permission: 'documents.edit', object: { type: 'p', id: '1' } })).status, 400, 'unknown role');

  res = await alice.api('POST', '/api/auth/check/', { permission: 'documents.delete', object: { type: 'document', id: '17' }, explain: true });
  t.equal(res.body.allowed, true);
  t.equal(res.body.reason, 'grant');
  t.equal(res.body.grant.id, aliceGrant);
  t.equal((await alice.api('POST', '/api/auth/check/', { permission: 'documents.delete', object: { type: 'document', id: '18' } })).body.allowed, false, 'another object');
  t.equal((await alice.api('POST', '/api/auth/check/', { permission: 'documents.delete' })).body.allowed, false, 'no object: grants do not count');
  res = await bob.api('POST', '/api/auth/check/', { permission: 'documents.edit', object: { type: 'project', id: 'apollo' }, explain: true });
  t.equal(res.body.allowed, true, 'a grant to an ancestor role reaches the holder');
  t.equal(res.body.grant.to, 'bob@example.com → bottom → left → top');

  t.equal((await api('GET', `/api/auth/grants/?user_id=${alice.user.id}`)).body.items.length, 1, 'filter by user');
  t.equal((await api('GET', '/api/auth/grants/?role=top')).body.items.length, 1, 'filter by role');
  t.equal((await api('GET', '/api/auth/grants/?object_type=project&object_id=apollo')).body.items.length, 1, 'filter by object');

  // Effective permissions of a user.
  res = await api('GET', `/api/auth/users/${bob.user.id}/permissions/`);
  t.same(res.body.permissions, ['projects.view', 'reports.run']);
  t.equal(res.body.roles.length, 4);
  t.equal((await api('GET', '/api/auth/users/00000000-0000-0000-0000-000000000000/permissions/')).status, 404);

  // Dry run of a role edit deep in the hierarchy: viewer loses documents.view, gains documents.delete.
  res = await api('PUT', `/api/auth/roles/${viewer.id}/?dry_run=true`, { name: 'viewer', permissions: ['documents.delete'], level: 10 });
  t.equal(res.status, 200, JSON.stringify(res.body));
  t.same(res.body, {
    dry_run: true,
    changes: [{ user_id: alice.user.id, email: 'alice@example.com', gained: ['documents.delete'], lost: ['documents.view'], level_before: 20, level_after: 20 }],
  });
  t.equal((await alice.api('POST', '/api/auth/check/', { permission: 'documents.view' })).body.allowed, true, 'dry run changed nothing');
  res = await api('POST', `/api/auth/users/${bob.user.id}/roles/?dry_run=true`, { role: 'editor' });
  t.same(res.body.changes[0].gained, ['documents.edit', 'documents.view']);
  res = await api('DELETE', `/api/auth/grants/${aliceGrant}/?dry_run=true`);
  t.same(res.body.changes[0].lost, ['documents.delete on document:17']);
  t.equal((await api('GET', `/api/auth/grants/?user_id=${alice.user.id}`)).body.items.length, 1, 'still there');

  // Revocation takes effect at once on this replica.
  t.equal((await api('DELETE', `/api/auth/grants/${aliceGrant}/`)).status, 204);
  t.equal((await alice.api('POST', '/api/auth/check/', { permission: 'documents.delete', object: { type: 'document', id: '17' } })).body.allowed, false);

  // Deleting a role in use removes its assignments and inheritance links.
  const chief = (await api('GET', '/api/auth/roles/?name=chief')).body.items[0];
  t.equal((await api('DELETE', `/api/auth/roles/${chief.id}/`)).status, 204);
  t.equal((await alice.api('POST', '/api/auth/check/', { permission: 'documents.view' })).body.allowed, false, 'holders lose it at once');
  t.same((await api('GET', `/api/auth/users/${alice.user.id}/roles/`)).body.items, []);
  t.equal((await api('DELETE', `/api/auth/roles/${chief.id}/`)).status, 404);
  void bottom;
});

t.test('expiring assignments stop counting without a job', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const { api } = await serviceAccount(server, ['admin']);
  await api('POST', '/api/auth/permissions/', { name: 'Deploy', codename: 'prod.deploy' });
  await api('POST', '/api/auth/roles/', { name: 'deployer', permissions: ['prod.deploy'] });
  const carol = await userWithToken(server, 'carol@example.com');
  t.equal((await api('POST', `/api/auth/users/${carol.user.id}/roles/`, { role: 'deployer', expires_at: new Date(Date.now() - 1000).toISOString() })).status, 400, 'past expiry');
  const res = await api('POST', `/api/auth/users/${carol.user.id}/roles/`, { role: 'deployer', expires_at: new Date(Date.now() + 1500).toISOString() });
  t.equal(res.status, 201, JSON.stringify(res.body));
  t.equal((await carol.api('POST', '/api/auth/check/', { permission: 'prod.deploy' })).body.allowed, true, 'while it lasts (now cached)');
  await new Promise((r) => setTimeout(r, 1700));
  t.equal((await carol.api('POST', '/api/auth/check/', { permission: 'prod.deploy' })).body.allowed, false, 'after it expired, with no job and no notification');
  const list = await api('GET', `/api/auth/users/${carol.user.id}/roles/`);
  t.equal(list.body.items[0].active, false, 'listed as inactive');
  t.equal((await api('POST', `/api/auth/users/${carol.user.id}/roles/`, { role: 'deployer', expires_at: 'tomorrow' })).status, 400, 'malformed time');
  t.equal((await api('POST', '/api/auth/users/00000000-0000-0000-0000-000000000000/roles/', { role: 'deployer' })).status, 404, 'unknown user');
});

t.test('expiry is judged by the injected clock: an assignment stops counting when the clock passes it', async (t) => {
  const clock = manualClock();
  const server = await startServer({ clock });
  t.teardown(() => server.close());
  const { api } = await serviceAccount(server, ['admin']);
  await api('POST', '/api/auth/permissions/', { name: 'Deploy', codename: 'prod.deploy' });
  await api('POST', '/api/auth/roles/', { name: 'deployer', permissions: ['prod.deploy'] });
  const dave = await userWithToken(server, 'dave@example.com');
  const expiresAt = new Date(clock().getTime() + 3600_000);
  t.equal((await api('POST', `/api/auth/users/${dave.user.id}/roles/`, { role: 'deployer', expires_at: expiresAt.toISOString() })).status, 201);
  const check = async () => (await api('POST', '/api/auth/check/', { subject: dave.user.id, permission: 'prod.deploy' })).body.allowed;
  t.equal(await check(), true, 'before the expiry (now cached)');
  clock.advance(3599);
  t.equal(await check(), true, 'a second before it');
  t.equal((await api('GET', `/api/auth/users/${dave.user.id}/roles/`)).body.items[0].active, true);
  clock.advance(2);
  t.equal(await check(), false, 'once the clock passes it: the cached entry and the query both follow the clock');
  t.equal((await api('GET', `/api/auth/users/${dave.user.id}/roles/`)).body.items[0].active, false, 'listed as inactive');
  t.same((await api('GET', `/api/auth/users/${dave.user.id}/permissions/`)).body.permissions, [], 'and not among the effective permissions');
  const past = new Date(clock().getTime() - 1000).toISOString();
  t.equal((await api('POST', `/api/auth/users/${dave.user.id}/roles/`, { role: 'deployer', expires_at: past })).status, 400, 'a time before the clock is in the past');
});

t.test('roles and permissions claims in access tokens, per resource server', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const { api } = await serviceAccount(server, ['admin']);
  await api('POST', '/api/auth/permissions/', { name: 'Read orders', codename: 'orders.read' });
  await api('POST', '/api/auth/roles/', { name: 'clerk', permissions: ['orders.read'] });
  const { createClientQueries } = await import('../../src/queries/clients.js');
  const clients = createClientQueries(server.app.keryu.database.db);
  await clients.upsertResourceServer({ identifier: 'https://orders.example.com', scope: 'orders', accessTokenFormat: 'jwt', authorizationClaims: true });
  await clients.upsertResourceServer({ identifier: 'https://plain.example.com', scope: 'orders', accessTokenFormat: 'jwt', authorizationClaims: false });
  const dave = await userWithToken(server, 'dave@example.com', ['clerk']);
  void dave;
  const seeded = await seedClient(server, { scope: 'openid offline_access' });
  const config = await discover(server, seeded);
  const { tokens } = await loginWithCode(server, config, { email: 'dave@example.com', scope: 'openid orders', resource: 'https://orders.example.com' });
  const claims = decodeJwt(tokens.access_token);
  t.same(claims.roles, ['clerk']);
  t.same(claims.permissions, ['orders.read']);
  const plain = await loginWithCode(server, config, { email: 'dave@example.com', scope: 'openid orders', resource: 'https://plain.example.com' });
  t.equal(decodeJwt(plain.tokens.access_token).permissions, undefined, 'not for a resource server that did not ask');

  // A service account's client-credentials JWT carries its own permissions.
  const bot = await serviceAccount(server, ['clerk'], { resource: 'https://orders.example.com' });
  t.same(decodeJwt(bot.token).permissions, ['orders.read']);
  void client;
});

t.test('a cycle that slipped into the data cannot hang a check', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const { api } = await serviceAccount(server, ['admin']);
  await api('POST', '/api/auth/permissions/', { name: 'p', codename: 'loop.p' });
  const a = (await api('POST', '/api/auth/roles/', { name: 'a', permissions: ['loop.p'] })).body as { id: string };
  const b = (await api('POST', '/api/auth/roles/', { name: 'b', parents: ['a'] })).body as { id: string };
  // Bypass the API's cycle refusal: a → b → a.
  const { roleParents } = await import('../../src/db/schema/index.js');
  await server.app.keryu.database.db.insert(roleParents).values({ roleId: a.id, parentId: b.id });
  await server.app.keryu.services.rbac.notifyChanged();
  const user = await userWithToken(server, 'loop@example.com', ['b']);
  const started = Date.now();
  const res = await user.api('POST', '/api/auth/check/', { permission: 'loop.p', explain: true });
  t.equal(res.body.allowed, true);
  t.equal(res.body.explanation, 'loop@example.com → b → a → loop.p');
  t.ok(Date.now() - started < 2000, 'answered promptly');
  t.equal((await api('GET', `/api/auth/roles/${a.id}/`)).status, 200, 'role closure terminates too');
});
