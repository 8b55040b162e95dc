/**
 * Signing in to the account pages in a browser, as a person does: /account/ sends the browser through the
 * provider's login page and back.
 */
import type { Browser, Page } from 'playwright-core';
import { TEST_PASSWORD } from './defaults.js';
import type { TestServer } from './server.js';

export async function accountPage(browser: Browser, t: { teardown(fn: () => unknown): void }, options: { javaScriptEnabled?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({ javaScriptEnabled: options.javaScriptEnabled ?? true });
  t.teardown(() => context.close());
  context.setDefaultTimeout(10_000);
  return context.newPage();
}

/** Opens `path` (default the overview) and signs in with the password when the login page is shown. */
export async function signInToAccount(page: Page, server: TestServer, options: { path?: string; email?: string; password?: string } = {}): Promise<void> {
  await page.goto(`${server.origin}${options.path ?? '/account/'}`);
  if (!new URL(page.url()).pathname.startsWith('/interaction/')) return;
  await page.getByLabel('Email').fill(options.email ?? 'alice@example.com');
  await page.getByLabel('Password').fill(options.password ?? TEST_PASSWORD);
  await Promise.all([page.waitForURL((url) => url.pathname.startsWith('/account/')), page.getByRole('button', { name: 'Sign in', exact: true }).click()]);
}
