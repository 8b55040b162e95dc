/**
 * The authorization pages of the admin console in headless Chromium, as an administrator uses them: edit a
 * role deep in a hierarchy and read the blast radius before saving (cancel leaves it as it was), a cycle
 * refused in plain words, delete a role after seeing its holders, bulk-assign with an unknown email listed,
 * create and delete a permission and an object grant. Hostile: a delegated administrator cannot edit a role
 * to hold more than she holds (refused, nothing written), cannot reach pages outside her permissions (403,
 * absent from the navigation); forms without their CSRF token are refused; unknown ids answer 404.
 * axe-core and screenshots (desktop and phone) of every page.
 */
import { eq } from 'drizzle-orm';
import type { Page } from 'playwright-core';
import tap from 'tap';
import { auditEvents, userRoles } from '../../src/db/schema/index.js';
import { csrfOf, postForm, startAdminConsole } from '../helpers/admin.js';
import { SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { assignRoles, operator } from '../helpers/rbac.js';

const UNKNOWN_ID = '00000000-0000-4000-8000-000000000000';

tap.test('admin console: roles, permissions, bulk assignment, object grants', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const c = await startAdminConsole(t);
  const { server } = c;
  const { rbac } = server.app.keryu.services;
  const db = server.app.keryu.database.db;
  const heading = (page: Page) => page.getByRole('heading', { level: 1 }).textContent();
  const navLinks = (page: Page) => page.locator('nav[aria-label="Admin console"] a').allTextContents();
  const permissionsOf = async (name: string) => (await rbac.findRole(name))?.permissions;

  // A hierarchy four deep: base ← editor ← senior ← lead.
  for (const [codename, name] of [
    ['documents.view', 'View documents'],
    ['documents.edit', 'Edit documents'],
    ['documents.delete', 'Delete documents'],
    ['billing.view', 'View billing'],
  ] as const) {
    await rbac.createPermission({ name, codename }, operator);
  }
  await rbac.createRole({ name: 'base', permissions: ['documents.view'] }, operator);
  await rbac.createRole({ name: 'editor', permissions: ['documents.edit', 'billing.view'], parents: ['base'], level: 10 }, operator);
  await rbac.createRole({ name: 'senior', parents: ['editor'] }, operator);
  await rbac.createRole({ name: 'lead', parents: ['senior'], level: 30 }, operator);
  const editorHolder = await c.user('erin@example.com', ['editor']);
  await c.user('lea@example.com', ['lead']);
  await c.user('leo@example.com', ['lead']);
  const newcomer = await c.user('nina@example.com');

  const page = await c.signIn(t, c.admin, { path: '/admin/roles' });

  t.test('the role list shows level, MFA requirement and holders', async (t) => {
    t.equal(await heading(page), 'Roles');
    t.same(await navLinks(page), ['Users', 'Roles', 'Permissions', 'Bulk assignment', 'Object grants', 'Clients', 'Audit log']);
    const editorRow = page.locator('tr', { has: page.getByRole('link', { name: 'editor', exact: true }) });
    t.same(await editorRow.locator('td').allTextContents().then((cells) => cells.slice(1, 4)), ['10', 'No', '1'], 'level 10, no MFA, one holder');
    await c.check(t, page, 'roles-list');
  });

  t.test('edit a role deep in the hierarchy: the preview shows the blast radius; cancel changes nothing', async (t) => {
    await page.getByRole('link', { name: 'editor', exact: true }).click();
    t.equal(await heading(page), 'Role editor');
    t.ok(await page.getByRole('group', { name: 'documents.*' }).isVisible(), 'permissions grouped by prefix');
    await c.check(t, page, 'roles-edit');
    await page.locator('input[name=permissions][value="billing.view"]').uncheck();
    await page.locator('input[name=permissions][value="documents.delete"]').check();
    await page.getByRole('button', { name: 'Preview changes' }).click();
    t.equal(await heading(page), 'Save role editor?');
    // erin holds editor; lea and leo hold lead, which inherits from it through senior.
    t.equal(await page.getByRole('status').textContent(), 'Blast radius: 3 users gain documents.delete, 3 lose billing.view.');
    t.ok(await page.getByRole('cell', { name: 'leo@example.com' }).isVisible(), 'a holder deep in the hierarchy is listed');
    await c.check(t, page, 'roles-preview');
    t.same(await permissionsOf('editor'), ['billing.view', 'documents.edit'], 'the preview wrote nothing');

    await page.getByRole('link', { name: /Cancel/ }).click();
    t.equal(await heading(page), 'Role editor');
    t.same(await permissionsOf('editor'), ['billing.view', 'documents.edit'], 'cancel left it unchanged');
    t.ok(await page.locator('input[name=permissions][value="billing.view"]').isChecked(), 'the form shows the role as it is');

    await page.locator('input[name=permissions][value="billing.view"]').uncheck();
    await page.locator('input[name=permissions][value="documents.delete"]').check();
    await page.getByRole('button', { name: 'Preview changes' }).click();
    await page.getByRole('button', { name: 'Save role' }).click();
    t.equal(await page.getByRole('status').textContent(), 'The role was saved.');
    t.same(await permissionsOf('editor'), ['documents.delete', 'documents.edit'], 'saved as previewed');
    t.match(await rbac.findRole('editor'), { parents: ['base'], level: 10, mfaRequired: false }, 'the rest of the role carried through the confirmation');
    const effective = await rbac.userPermissions(editorHolder.user.id);
    t.ok(effective?.permissions.has('documents.delete'), 'the holder has it now');
    t.equal((await db.select().from(auditEvents).where(eq(auditEvents.type, 'role.updated'))).length, 1, 'audited once');
  });

  t.test('a cycle is refused in plain words', async (t) => {
    const base = await rbac.findRole('base');
    await page.goto(`${server.origin}/admin/roles/${base?.id}`);
    await page.locator('input[name=parents][value="lead"]').check();
    await page.getByRole('button', { name: 'Preview changes' }).click();
    t.equal(await heading(page), 'Not saved');
    t.match(await page.locator('main').textContent(), 'base cannot inherit from lead, because lead already inherits from base');
    t.same((await rbac.findRole('base'))?.parents, [], 'unchanged');
    await c.check(t, page, 'roles-cycle');
  });

  t.test('delete a role after seeing its holders', async (t) => {
    await rbac.createRole({ name: 'temporary', permissions: ['documents.view'] }, operator);
    await assignRoles(server, newcomer.user.id, ['temporary']);
    await page.goto(`${server.origin}/admin/roles`);
    await page.getByRole('link', { name: 'Delete temporary' }).click();
    t.equal(await heading(page), 'Delete role temporary?');
    t.ok(await page.getByText('nina@example.com').isVisible(), 'the holder is shown first');
    await c.check(t, page, 'roles-delete');
    await page.getByRole('button', { name: 'Delete role' }).click();
    t.equal(await page.getByRole('status').textContent(), 'The role was deleted.');
    t.equal(await rbac.findRole('temporary'), undefined);
  });

  t.test('bulk assignment: preview lists unknown emails, then applies', async (t) => {
    await page.goto(`${server.origin}/admin/assignments`);
    await c.check(t, page, 'assignments');
    await page.getByLabel('Emails').fill('nina@example.com\nNobody@Example.com, lea@example.com');
    await page.getByLabel('Role', { exact: true }).selectOption('senior');
    await page.getByLabel('Expires (UTC, optional)').fill('2035-06-30T12:00');
    await page.getByRole('button', { name: 'Preview' }).click();
    t.equal(await heading(page), 'Assign senior?');
    t.same(await page.locator('section', { has: page.getByRole('heading', { name: 'Emails that name nobody' }) }).getByRole('listitem').allTextContents(), ['nobody@example.com']);
    t.match(await page.getByRole('status').textContent(), /^Blast radius: 1 user gains documents\.delete, /, 'only nina gains anything (lea holds lead)');
    t.equal((await db.select().from(userRoles).where(eq(userRoles.userId, newcomer.user.id))).length, 0, 'the preview wrote nothing');
    await c.check(t, page, 'assignments-preview');
    await page.getByRole('button', { name: 'Assign to 2 people' }).click();
    t.equal(await page.getByRole('status').textContent(), 'senior was assigned to 2 users.');
    const [assigned] = await db.select().from(userRoles).where(eq(userRoles.userId, newcomer.user.id));
    t.equal(assigned?.expiresAt?.toISOString(), '2035-06-30T12:00:00.000Z', 'with its expiry, in UTC');
  });

  t.test('permissions: create, then delete after seeing what depends on it', async (t) => {
    await page.goto(`${server.origin}/admin/permissions`);
    await c.check(t, page, 'permissions');
    await page.getByRole('link', { name: 'New permission' }).click();
    await page.getByLabel('Name', { exact: true }).fill('View reports');
    await page.getByLabel('Codename').fill('reports.view');
    await page.getByRole('button', { name: 'Create permission' }).click();
    t.equal(await page.getByRole('status').textContent(), 'The permission was created.');
    await rbac.createRole({ name: 'reporter', permissions: ['reports.view'] }, operator);
    await assignRoles(server, newcomer.user.id, ['reporter']);
    await page.getByRole('link', { name: 'Delete reports.view' }).click();
    t.match(await page.locator('dl.facts').textContent(), /Roles holding it\s*reporter/);
    t.match(await page.locator('dl.facts').textContent(), /1 user loses reports\.view\./);
    await c.check(t, page, 'permissions-delete');
    await page.getByRole('button', { name: 'Delete permission' }).click();
    t.equal(await page.getByRole('status').textContent(), 'The permission was deleted.');
    t.equal(await rbac.findPermission('reports.view'), undefined);
  });

  t.test('object grants: create, filter, delete', async (t) => {
    await page.goto(`${server.origin}/admin/grants/new`);
    await c.check(t, page, 'grants-new');
    await page.getByLabel("User's email").fill('nina@example.com');
    await page.getByLabel('Permission', { exact: true }).selectOption('documents.edit');
    await page.getByLabel('Object type').fill('document');
    await page.getByLabel('Object id').fill('42');
    await page.getByRole('button', { name: 'Create grant' }).click();
    t.equal(await page.getByRole('status').textContent(), 'The grant was created.');
    t.ok(await page.getByRole('cell', { name: 'User nina@example.com' }).isVisible());
    await c.check(t, page, 'grants');
    await page.goto(`${server.origin}/admin/grants?object_type=other`);
    t.ok(await page.getByText('No grant matches.').isVisible(), 'filtered out');
    await page.goto(`${server.origin}/admin/grants?user=NINA@example.com&object_id=42`);
    await page.getByRole('link', { name: /^Delete/ }).click();
    t.equal(await heading(page), 'Delete object grant?');
    await c.check(t, page, 'grants-delete');
    await page.getByRole('button', { name: 'Delete grant' }).click();
    t.equal(await page.getByRole('status').textContent(), 'The grant was deleted.');
    t.equal((await rbac.listGrants({ limit: 10, objectType: 'document' })).items.length, 0);
  });

  t.test('CSRF: a form without its token is refused and changes nothing', async (t) => {
    const base = await rbac.findRole('base');
    for (const csrf of ['', 'forged']) {
      const res = await postForm(page, server, `/admin/roles/${base?.id}/delete`, { csrf });
      t.equal(res.status, 403, `csrf ${JSON.stringify(csrf)}`);
    }
    const res = await postForm(page, server, '/admin/assignments', { emails: 'nina@example.com', role: 'lead' });
    t.equal(res.status, 403, 'no csrf field at all');
    t.ok(await rbac.findRole('base'), 'not deleted');
    t.notOk((await rbac.listUserRoles(newcomer.user.id)).some((a) => a.role === 'lead'), 'not assigned');
  });

  t.test('IDOR: unknown and malformed ids answer 404', async (t) => {
    for (const path of [`/admin/roles/${UNKNOWN_ID}`, '/admin/roles/not-a-uuid', `/admin/roles/${UNKNOWN_ID}/delete`, `/admin/permissions/${UNKNOWN_ID}`, `/admin/permissions/${UNKNOWN_ID}/delete`, `/admin/grants/${UNKNOWN_ID}/delete`]) {
      t.equal((await page.goto(`${server.origin}${path}`))?.status(), 404, path);
    }
    await page.goto(`${server.origin}/admin/roles`);
    const csrf = await csrfOf(page);
    for (const path of [`/admin/roles/${UNKNOWN_ID}/delete`, `/admin/permissions/${UNKNOWN_ID}/delete`, `/admin/grants/${UNKNOWN_ID}/delete`]) {
      t.equal((await postForm(page, server, path, { csrf })).status, 404, `POST ${path}`);
    }
  });

  t.test('a delegated administrator cannot escalate or reach pages outside her permissions', async (t) => {
    const delegate = await c.delegatedAdmin('dana@example.com', ['auth.roles.manage', 'documents.view'], { level: 10 });
    const dpage = await c.signIn(t, delegate, { path: '/admin/roles' });
    t.same(await navLinks(dpage), ['Roles', 'Bulk assignment'], 'only the pages she may use');
    for (const path of ['/admin/permissions', '/admin/permissions/new', '/admin/grants', '/admin/grants/new']) {
      t.equal((await dpage.goto(`${server.origin}${path}`))?.status(), 403, path);
    }
    await c.check(t, dpage, 'not-allowed-grants');

    // base confers only documents.view, which she holds: she may edit it, but not to confer more.
    const base = await rbac.findRole('base');
    await dpage.goto(`${server.origin}/admin/roles/${base?.id}`);
    await dpage.locator('input[name=permissions][value="documents.delete"]').check();
    const preview = dpage.waitForResponse((r) => r.url().endsWith('/preview'));
    await dpage.getByRole('button', { name: 'Preview changes' }).click();
    t.equal((await preview).status(), 403);
    t.equal(await heading(dpage), 'Not allowed');
    t.match(await dpage.locator('main').textContent(), 'would confer documents.delete, which you do not hold');

    // Posting the save form directly (skipping the preview) is refused the same way.
    await dpage.goto(`${server.origin}/admin/roles/${base?.id}`);
    const csrf = await csrfOf(dpage);
    const saved = await postForm(dpage, server, `/admin/roles/${base?.id}`, { csrf, name: 'base', level: '0', permissions: 'auth.superuser' });
    t.equal(saved.status, 403, 'saving a role with more than she holds');
    const bulk = await postForm(dpage, server, '/admin/assignments', { csrf, emails: 'dana@example.com', role: 'lead' });
    t.equal(bulk.status, 403, 'assigning herself a role with more than she holds');
    t.same(await permissionsOf('base'), ['documents.view'], 'nothing written');
    t.notOk((await rbac.listUserRoles(delegate.user.id)).some((a) => a.role === 'lead'), 'not assigned');
  });
});
