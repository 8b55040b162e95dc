/**
 * The RBAC decision rules on their own, without a database: `decide` (the check API's hot path), `holds`,
 * `outrankGap` (no-escalation) and `flatten`, applied to hand-built effective permissions.
 */
import t from 'tap';
import { decide, flatten, grantKey, holds, outrankGap, type Effective, type HeldRole } from '../../src/services/rbac/effective.js';

function role(id: string, level: number, options: { direct?: boolean; via?: string[] } = {}): HeldRole {
  return { id, name: id, level, mfaRequired: false, direct: options.direct ?? true, via: new Set(options.via ?? []) };
}

/**
 * alice holds `editor` directly; `viewer` is editor's parent (held through it). editor gives documents.edit,
 * viewer documents.view; alice has a grant of documents.delete on doc:1 herself and one of documents.share on
 * doc:2 through editor.
 */
function alice(overrides: Partial<Effective> = {}): Effective {
  return {
    subject: { kind: 'user', id: 'u-alice' },
    label: 'alice@example.com',
    roles: new Map([
      ['editor', role('editor', 20)],
      ['viewer', role('viewer', 10, { direct: false, via: ['editor'] })],
    ]),
    permissions: new Map([
      ['documents.edit', 'editor'],
      ['documents.view', 'viewer'],
    ]),
    grants: new Map([
      [grantKey('documents.delete', 'doc', '1'), { id: 'g1', roleId: null }],
      [grantKey('documents.share', 'doc', '2'), { id: 'g2', roleId: 'editor' }],
    ]),
    level: 20,
    mfaRequired: false,
    superuser: false,
    validUntil: Infinity,
    ...overrides,
  };
}

function superuser(): Effective {
  return alice({
    label: 'root@example.com',
    roles: new Map([['admin', role('admin', 100)]]),
    permissions: new Map([['auth.superuser', 'admin']]),
    grants: new Map(),
    level: 100,
    superuser: true,
  });
}

t.test('an unknown or disabled subject is denied everything, before any other rule', async (t) => {
  const nobody = alice({ label: undefined });
  t.same(decide(nobody, { permission: 'documents.view' }), { allowed: false, reason: 'unknown_subject' });
  t.same(decide(nobody, {}), { allowed: false, reason: 'unknown_subject' }, 'even a level-only check');
  t.same(decide(alice({ label: undefined, superuser: true }), { permission: 'auth.users.manage' }), { allowed: false, reason: 'unknown_subject' }, 'even a superuser flag');
  t.same(decide(nobody, { permission: 'documents.view', explain: true }), { allowed: false, reason: 'unknown_subject', explanation: 'u-alice is not a known, enabled subject' });
});

t.test('min_level is checked before the permission', async (t) => {
  t.same(decide(alice(), { permission: 'documents.view', min_level: 21 }), { allowed: false, reason: 'level_too_low' });
  t.same(decide(alice(), { permission: 'documents.view', min_level: 21, explain: true }), {
    allowed: false,
    reason: 'level_too_low',
    explanation: 'alice@example.com has level 20, below the required 21',
  });
  t.same(decide(alice(), { permission: 'documents.view', min_level: 20 }), { allowed: true, reason: 'role' }, 'a level equal to the minimum is enough');
  t.same(decide(alice(), { min_level: 20 }), { allowed: true, reason: 'level' }, 'no permission asked: the level decides');
  t.same(decide(alice(), { explain: true }), { allowed: true, reason: 'level', explanation: 'alice@example.com has level 20' });
});

t.test('a permission of a held role allows, and the explanation names the shortest role chain', async (t) => {
  t.same(decide(alice(), { permission: 'documents.edit' }), { allowed: true, reason: 'role' });
  t.same(decide(alice(), { permission: 'documents.view', explain: true }), {
    allowed: true,
    reason: 'role',
    chain: ['alice@example.com', 'editor', 'viewer', 'documents.view'],
    explanation: 'alice@example.com → editor → viewer → documents.view',
  });
  t.same(decide(alice(), { permission: 'documents.edit', object: { type: 'doc', id: '99' } }), { allowed: true, reason: 'role' }, 'a global permission covers every object');
});

t.test('a missing permission is denied, and the explanation lists the roles held', async (t) => {
  t.same(decide(alice(), { permission: 'documents.publish' }), { allowed: false, reason: 'missing_permission' });
  t.same(decide(alice(), { permission: 'documents.publish', explain: true }), {
    allowed: false,
    reason: 'missing_permission',
    explanation: 'alice@example.com lacks documents.publish: none of its roles (editor, viewer) holds it',
  });
  const bare = alice({ roles: new Map(), permissions: new Map(), grants: new Map(), level: 0 });
  t.same(decide(bare, { permission: 'documents.view', object: { type: 'doc', id: '1' }, explain: true }), {
    allowed: false,
    reason: 'missing_permission',
    explanation: 'alice@example.com lacks documents.view: none of its roles (none) holds it and no grant of it on doc:1',
  });
});

t.test('auth.superuser implies every auth.* permission, never a product permission', async (t) => {
  const root = superuser();
  t.same(decide(root, { permission: 'auth.users.manage' }), { allowed: true, reason: 'superuser' });
  t.same(decide(root, { permission: 'auth.users.manage', explain: true }), {
    allowed: true,
    reason: 'superuser',
    chain: ['root@example.com', 'admin', 'auth.superuser', 'auth.users.manage'],
    explanation: 'root@example.com → admin → auth.superuser → auth.users.manage',
  });
  t.same(decide(root, { permission: 'documents.view' }), { allowed: false, reason: 'missing_permission' }, 'product permissions are modelled explicitly');
  t.same(decide(root, { permission: 'authx.users' }), { allowed: false, reason: 'missing_permission' }, 'only the auth. prefix, not a name starting with auth');
  t.same(decide(root, { permission: 'auth.users.manage', min_level: 101 }), { allowed: false, reason: 'level_too_low' }, 'the level still counts');
});

t.test('an object grant allows that permission on that exact object only', async (t) => {
  t.same(decide(alice(), { permission: 'documents.delete', object: { type: 'doc', id: '1' } }), { allowed: true, reason: 'grant' });
  t.same(decide(alice(), { permission: 'documents.delete', object: { type: 'doc', id: '2' } }), { allowed: false, reason: 'missing_permission' }, 'another id');
  t.same(decide(alice(), { permission: 'documents.delete', object: { type: 'folder', id: '1' } }), { allowed: false, reason: 'missing_permission' }, 'another type');
  t.same(decide(alice(), { permission: 'documents.delete' }), { allowed: false, reason: 'missing_permission' }, 'no object: a grant is not a global permission');
  t.same(decide(alice(), { permission: 'documents.share', object: { type: 'doc', id: '1' } }), { allowed: false, reason: 'missing_permission' }, 'a grant of another permission on the object');
  t.same(decide(alice(), { permission: 'documents.delete', object: { type: 'doc', id: '1' }, explain: true }), {
    allowed: true,
    reason: 'grant',
    grant: { id: 'g1', to: 'alice@example.com', permission: 'documents.delete', object: { type: 'doc', id: '1' } },
    explanation: 'alice@example.com was granted documents.delete on doc:1 (grant g1)',
  });
  t.same(decide(alice(), { permission: 'documents.share', object: { type: 'doc', id: '2' }, explain: true }), {
    allowed: true,
    reason: 'grant',
    grant: { id: 'g2', to: 'alice@example.com → editor', permission: 'documents.share', object: { type: 'doc', id: '2' } },
    explanation: 'alice@example.com → editor was granted documents.share on doc:2 (grant g2)',
  });
});

t.test('holds: global permissions, and auth.* through auth.superuser; grants do not count', async (t) => {
  t.ok(holds(alice(), 'documents.view'));
  t.notOk(holds(alice(), 'documents.delete'), 'an object grant is not held globally');
  t.ok(holds(superuser(), 'auth.roles.manage'));
  t.notOk(holds(superuser(), 'documents.view'));
});

t.test('outrankGap: an actor must hold everything the target holds, and a level at least theirs', async (t) => {
  const target = alice();
  t.equal(outrankGap(superuser(), target), undefined, 'a superuser outranks everyone');
  t.equal(outrankGap(alice(), target), undefined, 'an equal outranks');
  t.same(outrankGap(alice({ permissions: new Map([['documents.edit', 'editor']]) }), target), {
    required: 'documents.view',
    reason: 'documents.view, which they hold and you do not',
  });
  const withoutGrant = alice({ grants: new Map([[grantKey('documents.share', 'doc', '2'), { id: 'g2', roleId: 'editor' }]]) });
  t.same(outrankGap(withoutGrant, target), { required: 'documents.delete', reason: 'documents.delete on doc:1, which they were granted and you were not' });
  const globalDelete = alice({ grants: new Map(), permissions: new Map([...target.permissions, ['documents.delete', 'editor'], ['documents.share', 'editor']]) });
  t.equal(outrankGap(globalDelete, target), undefined, 'the permission held globally covers the target\'s grant');
  t.same(outrankGap(alice({ level: 19 }), target), { required: 'auth.superuser', reason: 'level 20, above your level 19' });
});

t.test('flatten lists permissions and object grants for diffs', async (t) => {
  t.same([...flatten(alice())].sort(), ['documents.delete on doc:1', 'documents.edit', 'documents.share on doc:2', 'documents.view']);
});
