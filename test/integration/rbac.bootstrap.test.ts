/** The bootstrap file's authorization keys: applied idempotently, references checked with entry-named errors. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BootstrapError, readBootstrapFile } from '../../src/services/bootstrap.js';
import { serviceAccount } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('bootstrap permissions, roles, assignments and grants', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'keryu-rbac-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = await startServer();
  t.teardown(() => server.close());
  const { bootstrap } = server.app.keryu.services;

  const example = await readBootstrapFile('config/bootstrap.example.yaml');
  const first = await bootstrap.applyBootstrap(example, { type: 'system' }, 'example');
  t.same(first.authorization?.roles, { viewer: 'created', editor: 'created', admin: 'unchanged' });
  t.equal(first.authorization?.assignments, 2, 'alice → editor, reporting-job → viewer');
  t.equal(first.authorization?.grants, 1);
  const again = await bootstrap.applyBootstrap(example, { type: 'system' }, 'example');
  t.same(again.authorization, { permissions: { 'documents.view': 'unchanged', 'documents.edit': 'unchanged' }, roles: { viewer: 'unchanged', editor: 'unchanged', admin: 'unchanged' }, assignments: 0, grants: 0 }, 'idempotent');

  const { api } = await serviceAccount(server, ['admin']);
  const alice = (await api('GET', '/api/auth/users/?email=alice@')).body.items[0];
  const perms = await api('GET', `/api/auth/users/${alice.id}/permissions/`);
  t.same(perms.body.permissions, ['documents.edit', 'documents.view']);
  t.same(perms.body.grants, [{ permission: 'documents.edit', object: { type: 'document', id: '17' } }]);
  const admin = (await api('GET', '/api/auth/roles/?name=admin')).body.items[0];
  t.same(admin.permissions, ['auth.superuser'], 'admin keeps auth.superuser');

  const bad = join(dir, 'bad.yaml');
  await writeFile(
    bad,
    `roles:\n  - name: a\n    parents: [b]\n  - name: b\n    parents: [a]\n  - name: c\n    permissions: [no.such]\ngrants:\n  - role: a\n    permission: documents.view\n    object: { type: doc, id: "1" }\n`,
  );
  const err = await bootstrap.applyBootstrap(await readBootstrapFile(bad), { type: 'system' }, bad).catch((e: unknown) => e);
  t.ok(err instanceof BootstrapError);
  t.match((err as Error).message, /roles\[2\] \(c\)\.permissions: unknown permission no\.such/);
  t.equal((await api('GET', '/api/auth/roles/?name=a')).body.items.filter((r: { name: string }) => r.name === 'a').length, 0, 'nothing written');

  await writeFile(bad, `roles:\n  - name: a\n    parents: [b]\n  - name: b\n    parents: [a]\n`);
  const cycle = await bootstrap.applyBootstrap(await readBootstrapFile(bad), { type: 'system' }, bad).catch((e: unknown) => e);
  t.match((cycle as Error).message, /roles\[\d\] \([ab]\)\.parents: would create a cycle/);

  await writeFile(bad, `roles:\n  - name: ${'x'.repeat(101)}\n`);
  const invalid = await readBootstrapFile(bad).catch((e: unknown) => e);
  t.match((invalid as Error).message, /roles\[0\].*name: must be at most 100 characters/);
  await writeFile(bad, `grants:\n  - user: a@example.com\n    role: r\n    permission: a.b\n    object: { type: t, id: "1" }\n`);
  t.match(((await readBootstrapFile(bad).catch((e: unknown) => e)) as Error).message, /grants\[0\]\.user: give exactly one of user and role/);
});
