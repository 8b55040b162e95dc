/**
 * The Users pages of the admin console in headless Chromium, as an administrator uses them: find a user by
 * name, unlock them, reset their MFA (their sessions end too), assign a role with an expiry (its inherited
 * permissions shown with their chain), end their sessions, disable and enable them, page through the list.
 * Every action is checked in the database and the audit log, not only on the page. Hostile: IDOR (unknown,
 * malformed and other users' ids answer 404 and change nothing). Access control and escalation are in
 * admin-users.access.test.ts.
 */
import tap from 'tap';
import { and, eq } from 'drizzle-orm';
import type { Page } from 'playwright-core';
import { auditEvents } from '../../src/db/schema/index.js';
import { api, login, seedAuthUser } from '../helpers/auth.js';
import { SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { csrfOf, postForm, startAdminConsole } from '../helpers/admin.js';
import { enrolTotpFor } from '../helpers/mfa.js';
import { operator } from '../helpers/rbac.js';

tap.test('admin console: the Users pages', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const c = await startAdminConsole(t);
  const { server, clock } = c;
  const { userAdmin, rbac, factors, bruteForce, audit } = server.app.keryu.services;
  const db = server.db.database.db;
  const main = async (page: Page) => (await page.textContent('main')) ?? '';
  const sessionWorks = async (token: string) => (await api(server, 'GET', '/api/auth/tokens/', { token })).status === 200;
  const eventsOf = async (type: string, subjectId: string) => {
    await audit.flush();
    return db.select().from(auditEvents).where(and(eq(auditEvents.type, type), eq(auditEvents.subjectId, subjectId)));
  };

  // Bob: a session from before, an authenticator, a lockout. Roles to assign: editor inherits viewer.
  const bob = await server.app.keryu.services.users.createUser({ email: 'bob@example.com', password: 'correct horse battery staple', name: 'Bob Builder', emailVerified: true }, { type: 'system' });
  const bobSession = await login(server, { email: bob.email });
  await enrolTotpFor(server, bob, clock);
  for (let i = 0; i < server.config.bruteForce.lockAfter; i++) await bruteForce.recordFailure({ identifier: bob.email });
  await rbac.createPermission({ codename: 'documents.view', name: 'Read documents' }, operator);
  await rbac.createPermission({ codename: 'documents.edit', name: 'Edit documents' }, operator);
  await rbac.createRole({ name: 'viewer', permissions: ['documents.view'] }, operator);
  await rbac.createRole({ name: 'editor', permissions: ['documents.edit'], parents: ['viewer'] }, operator);

  const page = await c.signIn(t, c.admin, { path: '/admin/users' });

  t.test('find a user by name', async (t) => {
    await page.goto(`${server.origin}/admin/users`);
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Users');
    await c.check(t, page, 'users-list');
    await page.getByLabel('Email or name').fill('builder');
    await page.getByRole('button', { name: 'Search' }).click();
    const rows = await page.locator('table.list tbody tr').allTextContents();
    t.equal(rows.length, 1, 'one user matches a part of the name');
    t.match(rows[0], /bob@example\.com/);
    await c.check(t, page, 'users-search');
    await page.getByRole('link', { name: 'bob@example.com' }).click();
    t.equal(new URL(page.url()).pathname, `/admin/users/${bob.id}`);
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'bob@example.com');
    t.match(await main(page), /Failed sign-ins counted\s*20/, 'the failed sign-ins are shown');
    t.match(await main(page), /Locked\s*Until/, 'and the lock');
    t.match(await main(page), /Authenticator app: Active/, 'and the factors');
    await c.check(t, page, 'user');
  });

  t.test('unlock', async (t) => {
    t.ok((await bruteForce.lockState(bob.email)).lockedUntil, 'locked before');
    await page.getByRole('button', { name: 'Unlock' }).click();
    t.match(await page.getByRole('status').textContent(), /Failed sign-ins were cleared/);
    t.same(await bruteForce.lockState(bob.email), { failures: 0, lockedUntil: undefined }, 'the lock and the count are gone');
    t.match(await main(page), /Failed sign-ins counted\s*0/);
    t.match(await eventsOf('user.unlocked', bob.id), [{ actorType: 'user', actorId: c.admin.user.id, outcome: 'success' }], 'audited with the administrator as actor');
  });

  t.test('reset MFA ends the sessions too', async (t) => {
    t.ok(await sessionWorks(bobSession.access_token), 'bob is signed in before');
    await page.getByRole('button', { name: 'Reset MFA' }).click();
    t.match(await page.getByRole('status').textContent(), /Every second factor was removed and every session ended/);
    t.same(await factors.list(bob.id), [], 'no factor left');
    t.notOk(await sessionWorks(bobSession.access_token), 'the session from before the reset is dead');
    t.match(await main(page), /No second factor/);
    t.match(await eventsOf('mfa.factor_removed', bob.id), [{ actorId: c.admin.user.id, details: { reset_by_admin: true } }]);
    t.match(await eventsOf('session.revoked', bob.id), [{ actorType: 'user', actorId: c.admin.user.id, details: { reason: 'mfa_reset' } }], 'ending the sessions is audited with the administrator as actor');
  });

  t.test('assign a role with an expiry; its inherited permissions show their chain', async (t) => {
    const expires = new Date(clock().getTime() + 7 * 86400_000);
    const local = expires.toISOString().slice(0, 16);
    await page.getByLabel('Role to assign').selectOption('editor');
    await page.getByLabel('Expires (UTC, optional)').fill(local);
    await page.getByRole('button', { name: 'Assign role' }).click();
    t.match(await page.getByRole('status').textContent(), /The role was assigned/);
    const [assignment] = await rbac.listUserRoles(bob.id);
    t.equal(assignment?.role, 'editor');
    t.equal(assignment?.expiresAt?.toISOString(), `${local}:00.000Z`, 'the expiry is the one typed, in UTC');
    const rows = await page.locator('section[aria-labelledby=permissions-heading] tbody tr').allTextContents();
    t.match(rows.join('\n'), /documents\.edit\s*Role editor \(assigned\)/, 'a permission of the assigned role');
    t.match(rows.join('\n'), /documents\.view\s*Inherited: editor → viewer/, 'a permission inherited through a parent, with its chain');
    t.match(await main(page), new RegExp(`editor\\s*${local.slice(0, 10)} ${local.slice(11)} UTC\\s*Active`), 'the roles list shows the expiry');
    t.match(await eventsOf('role.assigned', bob.id), [{ actorId: c.admin.user.id, details: { after: { role: 'editor', expires_at: `${local}:00.000Z` } } }]);
    await c.check(t, page, 'user-with-role');

    await page.getByRole('button', { name: 'Remove role editor' }).click();
    t.match(await page.getByRole('status').textContent(), /The role was removed/);
    t.same(await rbac.listUserRoles(bob.id), [], 'the assignment is gone');
  });

  t.test('end all sessions', async (t) => {
    const fresh = await login(server, { email: bob.email });
    t.ok(await sessionWorks(fresh.access_token));
    await page.getByRole('button', { name: 'End all sessions' }).click();
    t.match(await page.getByRole('status').textContent(), /Every session, token and application sign-in of the user was ended/);
    t.notOk(await sessionWorks(fresh.access_token), 'the session is dead');
    t.match(await main(page), /Not signed in anywhere/);
    t.equal((await eventsOf('session.revoked', bob.id)).filter((e) => (e.details as { reason?: string }).reason === 'admin_ended').length, 1, 'audited');
  });

  t.test('disable and enable (without JavaScript)', async (t) => {
    const noScript = await c.signIn(t, c.admin, { path: `/admin/users/${bob.id}`, javaScriptEnabled: false });
    await noScript.getByRole('button', { name: 'Disable this user' }).click();
    t.match(await noScript.getByRole('status').textContent(), /The user was disabled/);
    t.equal((await userAdmin.getUser(bob.id)).disabled, true);
    const refused = await api(server, 'POST', '/api/auth/login/', { body: { email: bob.email, password: 'correct horse battery staple' } });
    t.not(refused.status, 200, 'a disabled user cannot sign in');
    await noScript.getByRole('button', { name: 'Enable this user' }).click();
    t.equal((await userAdmin.getUser(bob.id)).disabled, false);
  });

  t.test('page through the list', async (t) => {
    for (let i = 0; i < 26; i++) await seedAuthUser(server, `many${String(i).padStart(2, '0')}@example.com`);
    await page.goto(`${server.origin}/admin/users?q=many`);
    t.equal(await page.locator('table.list tbody tr').count(), 25, 'a full first page');
    await page.getByRole('link', { name: 'Next page' }).click();
    const second = await page.locator('table.list tbody tr').allTextContents();
    t.equal(second.length, 1, 'the rest on the next page');
    t.match(second[0], /many25@example\.com/, 'oldest first: the last one created');
    t.match(page.url(), /q=many/, 'the search is carried to the next page');
    t.equal(await page.getByRole('link', { name: 'Next page' }).count(), 0, 'no next page after the last');
    await page.getByRole('link', { name: 'First page' }).click();
    t.equal(await page.locator('table.list tbody tr').count(), 25);
  });

  t.test('IDOR: unknown, malformed and other users\' ids answer 404 and change nothing', async (t) => {
    const unknown = '00000000-0000-4000-8000-000000000000';
    t.equal((await page.goto(`${server.origin}/admin/users/${unknown}`))?.status(), 404, 'an unknown user');
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Not found');
    await c.check(t, page, 'not-found');
    t.equal((await page.goto(`${server.origin}/admin/users/not-a-uuid`))?.status(), 404, 'a malformed id');
    await page.goto(`${server.origin}/admin/users/${bob.id}`);
    const csrf = await csrfOf(page);
    for (const action of ['unlock', 'mfa-reset', 'sessions-end']) {
      t.equal((await postForm(page, server, `/admin/users/${unknown}/${action}`, { csrf })).status, 404, `${action} of an unknown user`);
    }
    // Carol holds viewer; removing "Bob's" viewer assignment (he has none) must not touch hers.
    const carol = await seedAuthUser(server, 'carol@example.com');
    await rbac.assignRole(carol.id, { role: 'viewer' }, operator);
    const viewer = await rbac.findRole('viewer');
    const removed = await postForm(page, server, `/admin/users/${bob.id}/roles/${viewer?.id}/remove`, { csrf });
    t.equal(removed.status, 404, "removing an assignment the user does not have (another user's) answers 404");
    t.same((await rbac.listUserRoles(carol.id)).map((r) => r.role), ['viewer'], "and the other user's assignment stays");
    t.equal((await postForm(page, server, `/admin/users/${unknown}/roles`, { csrf, role: 'viewer' })).status, 404, 'assigning to an unknown user');
  });
});
