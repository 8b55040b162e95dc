/**
 * The admin console's door and the Users pages' hostile cases, in headless Chromium: signing in through the
 * account sign-in comes back to the admin page asked for (return_to stays on the site); the navigation lists
 * only the pages one's roles allow, and a page or action outside them answers 403 when typed in or posted
 * (audited, nothing changed); someone with no admin permission gets 403 on /admin/; a delegated user manager
 * cannot assign herself `admin` through the form nor act on an administrator; a form without its CSRF token
 * (or with another session's) is refused and changes nothing; a role that requires MFA refuses a sign-in
 * without a second factor.
 */
import tap from 'tap';
import { and, eq } from 'drizzle-orm';
import type { Page } from 'playwright-core';
import { auditEvents } from '../../src/db/schema/index.js';
import { safeReturnTo } from '../../src/services/account/relying-party.js';
import { SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { csrfOf, postForm, startAdminConsole } from '../helpers/admin.js';
import { operator } from '../helpers/rbac.js';

tap.test('return_to after the account sign-in: same-site paths of the account pages and the console only', async (t) => {
  t.equal(safeReturnTo('/admin/users?q=bob'), '/admin/users?q=bob');
  t.equal(safeReturnTo('/account/tokens'), '/account/tokens');
  for (const hostile of ['//evil.example/admin/', 'https://evil.example/admin/', '/administrator', '/admin\\..\\x', '/admin/\\evil', '/admin/\u0000', 'admin/users', '/oidc/auth']) {
    t.equal(safeReturnTo(hostile), '/account/', `refused: ${JSON.stringify(hostile)}`);
  }
});

tap.test('admin console: sign-in, navigation and permission per page and action', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const c = await startAdminConsole(t);
  const { server, admin } = c;
  const { rbac, bruteForce, audit, factors } = server.app.keryu.services;
  const db = server.db.database.db;
  const heading = async (page: Page) => page.getByRole('heading', { level: 1 }).textContent();
  const navLinks = async (page: Page) => page.locator('nav[aria-label="Admin console"] a').allTextContents();
  const denials = async (actorId: string) => {
    await audit.flush();
    return db.select().from(auditEvents).where(and(eq(auditEvents.type, 'access.denied'), eq(auditEvents.actorId, actorId)));
  };

  const target = await c.user('target@example.com');
  const lock = async () => {
    for (let i = 0; i < server.config.bruteForce.lockAfter; i++) await bruteForce.recordFailure({ identifier: target.email });
  };
  await lock();
  const stillLocked = async () => Boolean((await bruteForce.lockState(target.email)).lockedUntil);

  t.test('a visitor who is not signed in is sent to the account sign-in, to come back to the page', async (t) => {
    const res = await fetch(`${server.origin}/admin/users?q=x`, { redirect: 'manual' });
    t.equal(res.status, 303);
    t.equal(res.headers.get('location'), `/account/login?${new URLSearchParams({ return_to: '/admin/users?q=x' }).toString()}`);
    const post = await fetch(`${server.origin}/admin/users/${target.user.id}/unlock`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'csrf=x' });
    t.equal(post.status, 303, 'a POST without a session changes nothing and goes to sign in');
    t.ok(await stillLocked());
  });

  t.test('an administrator signs in through the account sign-in and comes back to the admin page', async (t) => {
    const page = await c.signIn(t, admin, { path: '/admin/users?q=target' });
    t.equal(new URL(page.url()).pathname + new URL(page.url()).search, '/admin/users?q=target', 'back on the page asked for');
    await page.goto(`${server.origin}/admin/`);
    t.equal(await heading(page), 'Admin console');
    t.same(await navLinks(page), ['Users', 'Roles', 'Permissions', 'Bulk assignment', 'Object grants', 'Clients', 'Audit log'], 'the navigation lists the pages');
    await c.check(t, page, 'home');
  });

  t.test('someone without any admin permission gets 403 on /admin/ and no navigation', async (t) => {
    const plain = await c.user('plain@example.com');
    const page = await c.signIn(t, plain, { path: '/admin/' });
    const response = await page.goto(`${server.origin}/admin/`);
    t.equal(response?.status(), 403);
    t.equal(await heading(page), 'Not allowed');
    t.same(await navLinks(page), [], 'no admin navigation');
    await c.check(t, page, 'not-allowed');
    t.equal((await page.goto(`${server.origin}/admin/users`))?.status(), 403, 'nor any page');
  });

  t.test('a delegated admin without auth.users.manage: no Users entry, 403 on its pages and actions, audited', async (t) => {
    const auditor = await c.delegatedAdmin('auditor@example.com', ['auth.audit.read', 'auth.roles.manage']);
    const page = await c.signIn(t, auditor, { path: '/admin/' });
    t.notOk((await navLinks(page)).includes('Users'), 'no Users entry in the navigation');
    t.equal((await page.goto(`${server.origin}/admin/users`))?.status(), 403, 'the list typed in: 403');
    t.equal((await page.goto(`${server.origin}/admin/users/${target.user.id}`))?.status(), 403, "a user's page typed in: 403");
    const csrf = await csrfOf(page); // the sign-out form's token: valid for her session
    const unlock = await postForm(page, server, `/admin/users/${target.user.id}/unlock`, { csrf });
    t.equal(unlock.status, 403, 'an action posted with a valid CSRF token: 403');
    t.ok(await stillLocked(), 'and nothing changed');
    t.equal((await postForm(page, server, `/admin/users/${target.user.id}/mfa-reset`, { csrf })).status, 403);
    t.equal((await postForm(page, server, `/admin/users/${target.user.id}/disabled`, { csrf, disabled: 'true' })).status, 403);
    t.equal((await c.server.app.keryu.services.userAdmin.getUser(target.user.id)).disabled, false);
    // (/admin/ itself is hers once a page she may use is in the navigation: only the Users refusals count here.)
    const refusals = (await denials(auditor.user.id)).filter((e) => (e.details as { route: string }).route.startsWith('/admin/users'));
    t.same(refusals.map((e) => (e.details as { route: string }).route).sort(), ['/admin/users', '/admin/users/:id', '/admin/users/:id/disabled', '/admin/users/:id/mfa-reset', '/admin/users/:id/unlock'], 'every refusal is audited');
    t.match(refusals[0], { outcome: 'failure', details: { required: 'auth.users.manage', reason: 'missing_permission' } });
  });

  t.test('a delegated user manager cannot assign herself admin through the form, nor act on an administrator', async (t) => {
    const support = await c.delegatedAdmin('support@example.com', ['auth.users.manage', 'auth.roles.manage']);
    const page = await c.signIn(t, support, { path: `/admin/users/${support.user.id}` });
    await page.getByLabel('Role to assign').selectOption('admin');
    await page.getByRole('button', { name: 'Assign role' }).click();
    t.equal(await heading(page), 'Not allowed', 'the service refuses: nobody confers what they do not hold');
    t.match(await page.textContent('main'), /auth\.superuser/, 'and says what she lacks');
    t.same((await rbac.listUserRoles(support.user.id)).map((r) => r.role), ['delegate-support'], 'her roles are unchanged');

    await page.goto(`${server.origin}/admin/users/${admin.user.id}`);
    await page.getByRole('button', { name: 'Reset MFA' }).click();
    t.equal(await heading(page), 'Not allowed', "resetting an administrator's factors needs outranking her");
    t.equal((await factors.list(admin.user.id)).length, 1, "the administrator's authenticator stays");
    await c.check(t, page, 'refused');
  });

  t.test('CSRF: a form without its token, or with another session\'s, is refused and changes nothing', async (t) => {
    const page = await c.signIn(t, admin, { path: `/admin/users/${target.user.id}` });
    const other = await c.signIn(t, admin, { path: `/admin/users/${target.user.id}` });
    const otherSessionToken = await csrfOf(other);
    t.not(otherSessionToken, await csrfOf(page), 'tokens are bound to their session');
    for (const [label, fields] of [['missing', {}], ['wrong', { csrf: 'x'.repeat(43) }], ["another session's", { csrf: otherSessionToken }]] as const) {
      const answer = await postForm(page, server, `/admin/users/${target.user.id}/unlock`, fields);
      t.equal(answer.status, 403, `${label} token: 403`);
      t.match(answer.text, /Request refused/);
    }
    t.ok(await stillLocked(), 'the user is still locked');
    t.equal((await postForm(page, server, `/admin/users/${target.user.id}/roles`, { role: 'admin' })).status, 403, 'a role assignment without a token');
    t.same(await rbac.listUserRoles(target.user.id), [], 'no role assigned');
    await page.getByRole('button', { name: 'Unlock' }).click();
    t.notOk(await stillLocked(), 'the form itself works');
  });

  t.test('a role that requires MFA refuses a session whose sign-in had no second factor', async (t) => {
    const manager = await c.delegatedAdmin('manager@example.com', ['auth.users.manage'], { role: 'user-managers' });
    const page = await c.signIn(t, manager, { path: '/admin/users' });
    t.equal(await heading(page), 'Users', 'usable before the role requires MFA');
    await rbac.updateRole((await rbac.findRole('user-managers'))!.id, { name: 'user-managers', permissions: ['auth.users.manage'], mfaRequired: true }, operator);
    const response = await page.goto(`${server.origin}/admin/users`);
    t.equal(response?.status(), 403);
    t.equal(await heading(page), 'Sign in with a second factor');
    t.match(await page.getByRole('link', { name: 'Sign in again' }).getAttribute('href'), /^\/account\/login\?return_to=%2Fadmin%2Fusers&reauth=1$/);
    await c.check(t, page, 'mfa-required');
    await lock();
    t.equal((await postForm(page, server, `/admin/users/${target.user.id}/unlock`, { csrf: await csrfOf(page) })).status, 403, 'actions too');
    t.ok(await stillLocked());
    t.match(await denials(manager.user.id), [{ details: { reason: 'mfa_required' } }, { details: { reason: 'mfa_required' } }]);
  });
});
