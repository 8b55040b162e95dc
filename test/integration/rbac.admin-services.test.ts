/**
 * The rbac services the admin pages stand on: grant pages keyed by microsecond times (rows in the same
 * millisecond are neither repeated nor skipped), bulk assignment (preview, unknown emails, one transaction,
 * no escalation), what depends on a permission and who holds a role, and the blast radius in words.
 */
import { sql } from 'drizzle-orm';
import t from 'tap';
import { auditEvents, userRoles } from '../../src/db/schema/index.js';
import { createRbacQueries } from '../../src/queries/rbac.js';
import { blastRadius, type Actor } from '../../src/services/rbac/service.js';
import { seedUser } from '../helpers/oidc.js';
import { assignRoles, operator } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('admin rbac services', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const rbac = server.app.keryu.services.rbac;
  const db = server.app.keryu.database.db;

  await rbac.createPermission({ name: 'View documents', codename: 'documents.view' }, operator);
  await rbac.createPermission({ name: 'Delete documents', codename: 'documents.delete' }, operator);
  await rbac.createPermission({ name: 'View billing', codename: 'billing.view' }, operator);
  const viewer = await rbac.createRole({ name: 'viewer', permissions: ['documents.view'], level: 10 }, operator);
  await rbac.createRole({ name: 'editor', permissions: ['documents.delete'], parents: ['viewer'], level: 20 }, operator);
  await rbac.createRole({ name: 'billing', permissions: ['billing.view'] }, operator);

  const alice = await seedUser(server, 'alice@example.com');
  await seedUser(server, 'bob@example.com');
  const carol = await seedUser(server, 'carol@example.com');

  t.test('grant pages keep rows created in the same millisecond', async (t) => {
    // Five grants whose created_at differ only in microseconds, all within one millisecond.
    for (let i = 0; i < 5; i++) await rbac.createGrant({ userId: alice.id, permission: 'documents.view', object: { type: 'doc', id: `same-ms-${i}` } }, operator);
    await db.execute(sql`update object_grants set created_at = '2026-01-01T00:00:00.000100Z'::timestamptz + right(object_id, 1)::int * interval '1 microsecond' where object_type = 'doc' and object_id like 'same-ms-%'`);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await rbac.listGrants({ limit: 2, cursor, objectType: 'doc' });
      seen.push(...page.items.map((g) => g.objectId));
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    t.same(seen, ['same-ms-0', 'same-ms-1', 'same-ms-2', 'same-ms-3', 'same-ms-4'], 'each grant once, in order');
    await t.rejects(rbac.listGrants({ limit: 2, cursor: Buffer.from(JSON.stringify(['2026-01-01T00:00:00.000Z', 'x'])).toString('base64url') }), { code: 'invalid_request' }, 'a millisecond cursor is not ours');
  });

  t.test('bulk assignment: preview, unknown emails, apply in one transaction', async (t) => {
    const preview = await rbac.previewBulkAssignment({ emails: ['Alice@Example.com', 'bob@example.com', 'nobody@example.com', 'alice@example.com'], role: 'editor' }, operator);
    t.same(preview.users.map((u) => u.email), ['alice@example.com', 'bob@example.com']);
    t.same(preview.unknown, ['nobody@example.com'], 'unknown email listed');
    t.same(blastRadius(preview.dryRun).summary, '2 users gain documents.delete, 2 gain documents.view, 2 users change level.');
    t.equal((await db.select().from(userRoles)).length, 0, 'the preview wrote nothing');

    const applied = await rbac.applyBulkAssignment({ emails: ['alice@example.com', 'bob@example.com', 'nobody@example.com'], role: 'editor', expiresAt: new Date(Date.now() + 86_400_000) }, operator);
    t.same(applied.assigned.map((u) => u.email), ['alice@example.com', 'bob@example.com']);
    t.same(applied.unknown, ['nobody@example.com']);
    t.equal((await db.select().from(userRoles)).length, 2);
    const events = await db.select().from(auditEvents).where(sql`${auditEvents.type} = 'role.assigned'`);
    t.equal(events.length, 2, 'one role.assigned per user');
    t.match(events[0]?.details, { bulk: true, after: { role: 'editor' } });

    await t.rejects(rbac.previewBulkAssignment({ emails: [], role: 'editor' }, operator), { code: 'invalid_request' });
    await t.rejects(rbac.applyBulkAssignment({ emails: Array.from({ length: 501 }, (_, i) => `u${i}@example.com`), role: 'editor' }, operator), { code: 'invalid_request' }, 'capped');
    await t.rejects(rbac.applyBulkAssignment({ emails: ['carol@example.com'], role: 'nope' }, operator), { code: 'invalid_request' });
    await t.rejects(rbac.applyBulkAssignment({ emails: ['carol@example.com'], role: 'viewer', expiresAt: new Date(Date.now() - 1000) }, operator), { code: 'invalid_request' }, 'expiry in the past');
  });

  t.test('bulk assignment: a delegated admin cannot assign more than she holds, and nothing is written', async (t) => {
    await rbac.createRole({ name: 'delegate', permissions: ['auth.roles.manage', 'documents.view'], level: 50 }, operator);
    await assignRoles(server, carol.id, ['delegate']);
    const effective = await rbac.effectiveOf({ kind: 'user', id: carol.id });
    const delegate: Actor = { audit: { type: 'user', id: carol.id }, effective };
    const before = (await db.select().from(userRoles)).length;
    await t.rejects(rbac.applyBulkAssignment({ emails: ['alice@example.com', 'bob@example.com'], role: 'billing' }, delegate), { code: 'forbidden' });
    await t.rejects(rbac.previewBulkAssignment({ emails: ['alice@example.com'], role: 'billing' }, delegate), { code: 'forbidden' });
    t.equal((await db.select().from(userRoles)).length, before, 'nothing written');
    const ok = await rbac.applyBulkAssignment({ emails: ['alice@example.com'], role: 'viewer' }, delegate);
    t.same(ok.assigned.map((u) => u.email), ['alice@example.com'], 'a role within what she holds is fine');
  });

  t.test('what depends on a permission, who holds a role', async (t) => {
    const perm = await rbac.findPermission('documents.view');
    if (!perm) throw new Error('seeded');
    const dependents = await rbac.permissionDependents(perm.id);
    t.same(dependents.roles.map((r) => r.name), ['delegate', 'viewer']);
    t.equal(dependents.grants, 5);
    const radius = blastRadius(await rbac.deletePermission(perm.id, operator, { dryRun: true }) as Parameters<typeof blastRadius>[0]);
    t.match(radius.summary, /^3 users lose documents\.view, 1 loses documents\.view on doc:same-ms-0, /, 'alice, bob (through editor → viewer) and carol; alice her grants');
    t.ok(await rbac.findPermission('documents.view'), 'the dry run deleted nothing');
    await t.rejects(rbac.permissionDependents('00000000-0000-0000-0000-000000000000'), { code: 'not_found' });

    const holders = await rbac.roleHolders(viewer.id, 50);
    t.same(holders.users.map((u) => u.email), ['alice@example.com']);
    t.same(holders.children.map((c) => c.name), ['editor']);
    t.match(holders.counts, { users: 1, children: 1 });
    const counts = await rbac.holderCounts([viewer.id]);
    t.equal(counts.get(viewer.id), 1);
    await t.rejects(rbac.roleHolders('not-a-uuid', 50), { code: 'not_found' });
  });

  t.test('a cycle is refused in plain words', async (t) => {
    const publisher = await rbac.createRole({ name: 'publisher', parents: ['editor'] }, operator);
    t.ok(publisher);
    await t.rejects(rbac.updateRole(viewer.id, { name: 'viewer', permissions: ['documents.view'], parents: ['publisher'], level: 10 }, operator), {
      code: 'role_cycle',
      message: 'viewer cannot inherit from publisher, because publisher already inherits from viewer: the roles would inherit from each other in a loop',
    });
    await t.rejects(rbac.updateRole(viewer.id, { name: 'viewer', parents: ['viewer'] }, operator), { message: 'viewer cannot inherit from itself' });
    t.same((await createRbacQueries(db).findRoleLinks([viewer.id])).get(viewer.id)?.parents, [], 'unchanged');
  });
});

t.test('blast radius words', async (t) => {
  const change = (gained: string[], lost: string[], levelBefore = 0, levelAfter = 0) => ({ userId: 'u', email: null, gained, lost, levelBefore, levelAfter });
  const changes = [...Array.from({ length: 12 }, () => change(['documents.delete'], [])), ...Array.from({ length: 3 }, () => change([], ['billing.view']))];
  t.equal(blastRadius({ dryRun: true, changes }).summary, '12 users gain documents.delete, 3 lose billing.view.');
  t.equal(blastRadius({ dryRun: true, changes: [change([], ['a.b'], 5, 0)] }).summary, '1 user loses a.b, 1 user changes level.');
  t.equal(blastRadius({ dryRun: true, changes: [] }).summary, 'No user gains or loses anything.');
});
