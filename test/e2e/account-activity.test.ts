/**
 * The activity page in headless Chromium, JavaScript on and off: after signing in and changing the name, the
 * page shows the sign-in in plain words with the browser and IP, filters by kind, pages by cursor with a small
 * page size, and "This wasn't me" next to a sign-in leads to the report flow of the security emails, which
 * secures the account. Another user's event, or a form without its CSRF token, is refused.
 */
import tap from 'tap';
import type { Page } from 'playwright-core';
import { accountPage, signInToAccount } from '../helpers/account.js';
import { launchChromium, SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { checkPage } from '../helpers/pages.js';
import { seedUser } from '../helpers/oidc.js';
import { startServer } from '../helpers/server.js';

tap.test('account pages: activity', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const browser = await launchChromium();
  t.teardown(() => browser.close());

  async function saveName(page: Page, name: string) {
    await page.goto(`${server.origin}/account/`);
    await page.getByLabel('Name').fill(name);
    await Promise.all([page.waitForURL(`${server.origin}/account/?saved=1`), page.getByRole('button', { name: 'Save name' }).click()]);
  }
  const eventTexts = (page: Page) => page.locator('ol.events p.event').allTextContents();

  for (const javaScriptEnabled of [true, false]) {
    t.test(`read, filter, page, report (JavaScript ${javaScriptEnabled ? 'on' : 'off'})`, async (t) => {
      const email = `activity-${javaScriptEnabled ? 'on' : 'off'}@example.com`;
      const user = await seedUser(server, email);
      const page = await accountPage(browser, t, { javaScriptEnabled });
      await signInToAccount(page, server, { email });
      await saveName(page, 'Alice One');

      await page.goto(`${server.origin}/account/activity`);
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Activity');
      t.equal(await page.locator('nav[aria-label="Account"] a[aria-current="page"]').textContent(), 'Activity', 'the navigation marks the page');
      const all = await eventTexts(page);
      t.equal(all[0], 'Profile changed: name', 'newest first: the name change');
      t.ok(
        all.some((line) => /^Signed in from Chrome[^,]* on Linux[^,]*, 127\.0\.0\.1$/.test(line)),
        `the sign-in in plain words, with the browser, system and IP (${all.join(' | ')})`,
      );
      t.notOk(all.some((line) => line.startsWith('oidc.')), 'no protocol bookkeeping in the list');
      t.match(await page.textContent('main'), /With password/, 'how the sign-in was made');
      if (javaScriptEnabled) await checkPage(t, page, 'account', 'activity');

      // Filter by kind: a GET form with a select.
      await page.getByLabel('Show').selectOption('profile');
      await Promise.all([page.waitForURL((url) => url.searchParams.get('kind') === 'profile'), page.getByRole('button', { name: 'Show', exact: true }).click()]);
      t.same(await eventTexts(page), ['Profile changed: name'], 'only profile changes');
      await page.getByLabel('Show').selectOption('sign_ins');
      await Promise.all([page.waitForURL((url) => url.searchParams.get('kind') === 'sign_ins'), page.getByRole('button', { name: 'Show', exact: true }).click()]);
      const signIns = await eventTexts(page);
      t.ok(signIns.length >= 1 && signIns.every((line) => line.startsWith('Signed in')), `only sign-ins (${signIns.join(' | ')})`);

      // Paging: five name changes, pages of two.
      for (const name of ['Alice Two', 'Alice Three', 'Alice Four', 'Alice Five']) await saveName(page, name);
      await page.goto(`${server.origin}/account/activity?kind=profile&limit=2`);
      const seen: string[][] = [];
      for (let i = 0; i < 5; i++) {
        seen.push(await page.locator('ol.events time').evaluateAll((nodes) => nodes.map((n) => n.getAttribute('datetime') ?? '')));
        const older = page.getByRole('link', { name: 'Older' });
        if (!(await older.count())) break;
        await Promise.all([page.waitForURL((url) => url.searchParams.has('cursor')), older.click()]);
        t.equal(new URL(page.url()).searchParams.get('kind'), 'profile', 'the next page keeps the filter');
      }
      t.same(seen.map((p) => p.length), [2, 2, 1], 'five events on pages of 2, 2 and 1');
      const times = seen.flat();
      t.same([...times].sort().reverse(), times, 'newest first across pages');
      t.equal(new Set(times).size, 5, 'no event twice');
      t.ok(await page.getByRole('link', { name: 'Newest' }).count(), 'a way back to the newest');

      // "This wasn't me" leads to the report flow, and the report secures the account.
      await page.goto(`${server.origin}/account/activity?kind=sign_ins`);
      await Promise.all([page.waitForURL((url) => url.pathname === '/security/report'), page.getByRole('button', { name: /This wasn't me/ }).first().click()]);
      t.equal(await page.getByRole('heading', { level: 1 }).textContent(), "Wasn't you?", 'the report page of the security emails');
      await page.getByRole('button', { name: 'Secure my account' }).click();
      await page.getByRole('heading', { name: 'Your account is secured' }).waitFor();
      t.equal((await server.app.keryu.services.users.findUserById(user.id))?.passwordResetRequired, true, 'a new password is required');
      await page.goto(`${server.origin}/account/`);
      t.match(new URL(page.url()).pathname, /^\/interaction\//, 'every session ended, the account pages too');
    });
  }

  t.test('hostile reports: another user\'s event, a missing CSRF token', async (t) => {
    const mallory = 'mallory@example.com';
    await seedUser(server, mallory);
    const victim = await seedUser(server, 'victim@example.com');
    const victimPage = await accountPage(browser, t);
    await signInToAccount(victimPage, server, { email: 'victim@example.com' });
    const victimSignIn = (await server.app.keryu.services.activity.listUserActivity(victim.id, { limit: 10 }, 'sign_ins')).items[0];
    t.ok(victimSignIn, 'the victim signed in');

    const page = await accountPage(browser, t);
    await signInToAccount(page, server, { email: mallory, path: '/account/activity' });
    const csrf = await page.locator('input[name="csrf"]').first().inputValue();
    const other = await page.request.post(`${server.origin}/account/activity/report`, { form: { csrf, event: victimSignIn!.id }, maxRedirects: 0 });
    t.equal(other.status(), 404, 'another user\'s sign-in is not found');
    const junk = await page.request.post(`${server.origin}/account/activity/report`, { form: { csrf, event: 'not-an-id' }, maxRedirects: 0 });
    t.equal(junk.status(), 404, 'a malformed id is not found');
    const own = (await server.app.keryu.services.activity.listUserActivity((await server.app.keryu.services.users.findUserByEmail(mallory))!.id, { limit: 10 }, 'sign_ins')).items[0]!;
    const forged = await page.request.post(`${server.origin}/account/activity/report`, { form: { csrf: 'forged', event: own.id }, maxRedirects: 0 });
    t.equal(forged.status(), 403, 'a wrong CSRF token is refused');
    const reported = await page.request.post(`${server.origin}/account/activity/report`, { form: { csrf, event: own.id }, maxRedirects: 0 });
    t.equal(reported.status(), 303, 'the own sign-in may be reported');
    t.match(reported.headers().location, /\/security\/report\?token=/, 'to the report page');
    t.equal((await server.app.keryu.services.users.findUserById(victim.id))?.passwordResetRequired, false, 'the victim is untouched');
    const bad = await page.request.get(`${server.origin}/account/activity?cursor=bogus`);
    t.equal(bad.status(), 400, 'an altered cursor is a 400 page');
  });
});
