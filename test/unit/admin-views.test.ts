/**
 * The pure pieces the admin console's pages are built from: where each permission comes from (assigned
 * role, inheritance chain, object grant to the user or to a role), the one date format of every page, and
 * the cursor links of list pages.
 */
import t from 'tap';
import { pageLinks } from '../../src/lib/pagination.js';
import { grantKey, type Effective, type HeldRole } from '../../src/services/rbac/effective.js';
import { permissionSources } from '../../src/services/rbac/provenance.js';
import { dateView } from '../../src/views/date.js';

const role = (id: string, direct: boolean, via: string[] = []): HeldRole => ({ id, name: id, level: 0, mfaRequired: false, direct, via: new Set(via) });

t.test('each permission names its source: the assigned role, the chain it is inherited through, or a grant', async (t) => {
  // editor (assigned) inherits writer, which inherits viewer.
  const effective: Effective = {
    subject: { kind: 'user', id: 'u1' },
    label: 'bob@example.com',
    roles: new Map([
      ['editor', role('editor', true)],
      ['writer', role('writer', false, ['editor'])],
      ['viewer', role('viewer', false, ['writer'])],
    ]),
    permissions: new Map([
      ['documents.edit', 'editor'],
      ['documents.view', 'viewer'],
    ]),
    grants: new Map([
      [grantKey('documents.delete', 'document', '42'), { id: 'g1', roleId: null }],
      [grantKey('documents.share', 'folder', '7'), { id: 'g2', roleId: 'writer' }],
    ]),
    level: 0,
    mfaRequired: false,
    superuser: false,
    validUntil: Number.POSITIVE_INFINITY,
  };
  t.same(permissionSources(effective), [
    { permission: 'documents.delete', kind: 'grant', chain: [], object: { type: 'document', id: '42' }, grantId: 'g1' },
    { permission: 'documents.edit', kind: 'role', chain: ['editor'] },
    { permission: 'documents.share', kind: 'grant', chain: ['editor', 'writer'], object: { type: 'folder', id: '7' }, grantId: 'g2' },
    { permission: 'documents.view', kind: 'role', chain: ['editor', 'writer', 'viewer'] },
  ]);
});

t.test('dates on pages: UTC to the minute, with the exact value for <time datetime>', async (t) => {
  t.same(dateView(new Date('2026-12-03T14:05:59.999Z')), { iso: '2026-12-03T14:05:59.999Z', text: '2026-12-03 14:05 UTC' });
  t.same(dateView('2026-12-03T23:30:00+02:00'), { iso: '2026-12-03T21:30:00.000Z', text: '2026-12-03 21:30 UTC' }, 'any offset is shown in UTC');
  t.equal(dateView(null), undefined);
  t.equal(dateView(undefined), undefined);
});

t.test('list pages link to the next page and back to the first, keeping their filters', async (t) => {
  t.same(pageLinks('/admin/users', { q: 'bob', kind: undefined, empty: '' }, { next_cursor: 'abc' }, undefined), { first: undefined, next: '/admin/users?q=bob&cursor=abc' }, 'on the first page');
  t.same(pageLinks('/admin/users', { q: 'a b&c' }, { next_cursor: null }, 'abc'), { first: '/admin/users?q=a+b%26c', next: undefined }, 'on the last page; values encoded');
  t.same(pageLinks('/admin/users', {}, { next_cursor: null }, undefined), { first: undefined, next: undefined }, 'a single page');
});
