/**
 * The admin console in headless Chromium, as an administrator uses it: a real server (manual clock), the
 * built-in `admin` role given to admin@example.com (with an authenticator, so her sign-in uses a second
 * factor), delegated administrators holding a custom role with only some auth.* permissions, and browser
 * profiles signed in through the account sign-in (password, then the authenticator's code when asked).
 * Page checks (axe-core, screenshots at desktop and phone width) go to test-output/screenshots/admin/.
 */
import type { Browser, Page } from 'playwright-core';
import type { Test } from 'tap';
import type { UserRow } from '../../src/queries/users.js';
import { manualClock, NO_RATE_LIMITS, seedAuthUser } from './auth.js';
import { launchChromium } from './chromium.js';
import { TEST_PASSWORD } from './defaults.js';
import { enrolTotpFor } from './mfa.js';
import { checkPage } from './pages.js';
import { assignRoles, operator } from './rbac.js';
import { startServer, type TestServer } from './server.js';

export const ADMIN_EMAIL = 'admin@example.com';

/** A user who can sign in, and their authenticator (undefined without one): the code of the next time step. */
export interface ConsoleUser {
  user: UserRow;
  email: string;
  totp: (() => Promise<string>) | undefined;
}

export async function startAdminConsole(t: Test, options: { env?: Record<string, string> } = {}) {
  const clock = manualClock();
  const server: TestServer = await startServer({ env: { ...NO_RATE_LIMITS, ...options.env }, clock });
  t.teardown(() => server.close());
  const browser: Browser = await launchChromium();
  t.teardown(() => browser.close());
  const { rbac } = server.app.keryu.services;

  /** A user with a password (and an authenticator when `totp`), holding `roles`. */
  async function user(email: string, roles: string[] = [], opts: { totp?: boolean } = {}): Promise<ConsoleUser> {
    const row = await seedAuthUser(server, email);
    if (roles.length) await assignRoles(server, row.id, roles);
    const code = opts.totp ? await enrolTotpFor(server, row, clock) : undefined;
    // A TOTP step is accepted once: each sign-in moves the clock to the next step first.
    const totp = code ? () => (clock.advance(30), code()) : undefined;
    return { user: row, email, totp };
  }

  const admin = await user(ADMIN_EMAIL, ['admin'], { totp: true });

  return {
    server,
    browser,
    clock,
    admin,
    user,

    /**
     * A delegated administrator: a custom role `role` (created if new) holding exactly `permissions` at
     * `level`, given to a new user `email`.
     */
    async delegatedAdmin(email: string, permissions: string[], opts: { role?: string; level?: number; mfaRequired?: boolean; totp?: boolean } = {}): Promise<ConsoleUser> {
      const role = opts.role ?? `delegate-${email.split('@')[0]}`;
      if (!(await rbac.findRole(role))) await rbac.createRole({ name: role, permissions, level: opts.level ?? 0, mfaRequired: opts.mfaRequired ?? false }, operator);
      return user(email, [role], { totp: opts.totp });
    },

    /** A new browser profile (closed at teardown) signed in as `who`, showing `path` (default /admin/). */
    async signIn(t: Test, who: ConsoleUser, opts: { path?: string; javaScriptEnabled?: boolean } = {}): Promise<Page> {
      const context = await browser.newContext({ javaScriptEnabled: opts.javaScriptEnabled ?? true });
      t.teardown(() => context.close());
      context.setDefaultTimeout(15_000);
      const page = await context.newPage();
      await signInAt(page, server, who, opts.path ?? '/admin/');
      return page;
    },

    /** axe-core (no serious or critical violation) and screenshots of the page as it is now. */
    check: (t: Test, page: Page, name: string) => checkPage(t, page, 'admin', name),
  };
}
export type AdminConsole = Awaited<ReturnType<typeof startAdminConsole>>;

/** Opens `path` and, when the provider's login page is shown, signs in as `who` (with the code when asked). */
export async function signInAt(page: Page, server: TestServer, who: ConsoleUser, path: string): Promise<void> {
  await page.goto(`${server.origin}${path}`);
  if (!new URL(page.url()).pathname.startsWith('/interaction/')) return;
  if (await page.getByLabel('Email').isVisible()) await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(TEST_PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.waitForLoadState();
  if (who.totp && new URL(page.url()).pathname.startsWith('/interaction/')) {
    await page.getByLabel('Code').fill(await who.totp());
    await page.getByRole('button', { name: /verify/i }).click();
  }
  await page.waitForURL((url) => !url.pathname.startsWith('/interaction/') && !url.pathname.startsWith('/oidc/') && !url.pathname.startsWith('/account/callback'));
}

/**
 * A form POST made with the page's cookies but not through its form (what a forged cross-site form or a
 * replayed request sends): answers the status and the page's text. No redirects are followed.
 */
export async function postForm(page: Page, server: TestServer, path: string, fields: Record<string, string>): Promise<{ status: number; text: string; location: string | undefined }> {
  const response = await page.request.post(`${server.origin}${path}`, { form: fields, maxRedirects: 0 });
  return { status: response.status(), text: await response.text(), location: response.headers().location };
}

/** The CSRF token of the first form on the page (to build a request that differs from the form in one field only). */
export async function csrfOf(page: Page): Promise<string> {
  return page.locator('input[name=csrf]').first().inputValue();
}
