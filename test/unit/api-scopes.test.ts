/**
 * The API scope rules on their own: which permissions a scope set allows, and the scoped view of a subject's
 * permissions that services compare against (no-escalation), including object grants and auth.superuser.
 */
import t from 'tap';
import { apiScopesHeldBy, describeScope, isApiScope, restrictToScopes, scopeAllows } from '../../src/services/api-scopes.js';
import { decide, grantKey, holds, type Effective } from '../../src/services/rbac/effective.js';

function effective(permissions: string[], options: { superuser?: boolean; grants?: string[] } = {}): Effective {
  return {
    subject: { kind: 'user', id: 'u1' },
    label: 'alice@example.com',
    roles: new Map([['r1', { id: 'r1', name: 'role', level: 10, mfaRequired: false, direct: true, via: new Set<string>() }]]),
    permissions: new Map(permissions.map((p) => [p, 'r1'])),
    grants: new Map((options.grants ?? []).map((p) => [grantKey(p, 'doc', '1'), { id: `g-${p}`, roleId: null }])),
    level: 10,
    mfaRequired: false,
    superuser: options.superuser ?? false,
    validUntil: Infinity,
  };
}

t.test('scopeAllows: the permission itself, or auth.superuser for auth.* only', async (t) => {
  t.ok(scopeAllows(new Set(['auth.users.manage']), 'auth.users.manage'));
  t.notOk(scopeAllows(new Set(['auth.users.manage']), 'auth.roles.manage'));
  t.ok(scopeAllows(new Set(['auth.superuser']), 'auth.roles.manage'));
  t.notOk(scopeAllows(new Set(['auth.superuser']), 'documents.edit'), 'not product permissions');
  t.notOk(scopeAllows(new Set(), 'auth.check'));
});

t.test('the vocabulary is the auth.* permissions, exactly', async (t) => {
  t.ok(isApiScope('auth.audit.read'));
  t.notOk(isApiScope('auth.Audit.read'));
  t.notOk(isApiScope('toString'), 'no prototype names');
  t.notOk(isApiScope('openid'));
  t.same(apiScopesHeldBy(effective(['auth.check', 'documents.edit'])), ['auth.check']);
  t.ok(apiScopesHeldBy(effective(['auth.superuser'], { superuser: true })).includes('auth.users.manage'), 'a superuser holds every scope');
});

t.test('restrictToScopes keeps what the scopes name and product permissions; drops the rest', async (t) => {
  const full = effective(['auth.users.manage', 'auth.roles.manage', 'documents.edit'], { grants: ['auth.grants.manage', 'documents.view'] });
  const scoped = restrictToScopes(full, new Set(['auth.users.manage']));
  t.ok(holds(scoped, 'auth.users.manage'));
  t.notOk(holds(scoped, 'auth.roles.manage'));
  t.ok(holds(scoped, 'documents.edit'), 'product permissions stay (no-escalation compares them)');
  t.notOk(decide(scoped, { permission: 'auth.grants.manage', object: { type: 'doc', id: '1' } }).allowed, 'an object grant of an unscoped auth.* permission is dropped');
  t.ok(decide(scoped, { permission: 'documents.view', object: { type: 'doc', id: '1' } }).allowed, 'a product grant stays');
  t.ok(holds(full, 'auth.roles.manage'), 'the cached original is untouched');
});

t.test('a superuser scoped below auth.superuser is not a superuser', async (t) => {
  const root = effective(['auth.superuser'], { superuser: true });
  const scoped = restrictToScopes(root, new Set(['auth.roles.manage']));
  t.equal(scoped.superuser, false);
  t.ok(holds(scoped, 'auth.roles.manage'), 'what the superuser implied, within the scopes');
  t.notOk(holds(scoped, 'auth.users.manage'));
  t.notOk(holds(scoped, 'auth.superuser'));
  t.equal(restrictToScopes(root, new Set(['auth.superuser'])).superuser, true);
});

t.test('consent words', async (t) => {
  t.equal(describeScope('auth.users.manage'), 'Act as you in keryu-auth: manage users');
  t.equal(describeScope('openid'), 'Sign you in');
  t.equal(describeScope('orders.read'), 'orders.read', "a resource server's own scope by its name");
});
