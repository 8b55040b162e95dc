/**
 * The audit log pages of the admin console in headless Chromium: filtering by type, outcome, IP network and
 * time range through the form (the filters land in the URL), cursor paging through more than a page of
 * events, one event in full (its details shown as text, never as markup), and the CSV and NDJSON exports
 * downloaded through the page's links with the session cookie, holding exactly the events the filters match.
 * Hostile: a delegated administrator without auth.audit.read finds no "Audit log" in the navigation and gets
 * 403 on the pages and the export; no session, no export; an unknown or malformed event id answers 404; a
 * bad filter answers 400 naming it and lists nothing.
 */
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import tap from 'tap';
import type { Page } from 'playwright-core';
import { startAdminConsole } from '../helpers/admin.js';
import { SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import type { AuditEvent } from '../../src/services/audit.js';

tap.test('admin console: the audit log', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const console = await startAdminConsole(t);
  const { server, admin } = console;
  const { audit } = server.app.keryu.services;
  const origin = server.origin;

  // Events with known facts, written by the real audit service (explicit times make the time filter exact).
  const record = (event: Partial<AuditEvent> & Pick<AuditEvent, 'type'>, ip: string, at: string) =>
    audit.record({ outcome: 'success', actor: { type: 'anonymous' }, ...event, context: { ip, userAgent: 'audit-test', requestId: randomUUID() }, occurredAt: new Date(at) });
  const probed = { type: 'user', id: randomUUID() };
  for (let i = 0; i < 3; i++) await record({ type: 'login', outcome: 'failure', subject: probed, clientId: 'audit-web', details: { reason: 'wrong_password', note: '<script>alert(1)</script>' } }, '203.0.113.7', `2026-02-10T10:0${i}:00Z`);
  await record({ type: 'login', outcome: 'success', subject: probed, clientId: 'audit-web' }, '203.0.113.7', '2026-02-10T11:00:00Z');
  await record({ type: 'login', outcome: 'failure', subject: probed }, '198.51.100.1', '2026-02-10T12:00:00Z');
  // More than a page of one client's events, half of them in the same instant (the paging key's tie-break).
  for (let i = 0; i < 55; i++) await record({ type: 'token.created', clientId: 'pager-client', details: { n: i } }, '192.0.2.1', i < 28 ? '2026-01-05T08:00:00Z' : `2026-01-${String(6 + (i % 20)).padStart(2, '0')}T09:00:00Z`);

  const rows = (page: Page) => page.locator('table.list tbody tr');
  const main = async (page: Page) => (await page.textContent('main')) ?? '';

  t.test('filter through the form, page through the results, open an event', async (t) => {
    const page = await console.signIn(t, admin);
    await Promise.all([page.waitForURL(`${origin}/admin/audit`), page.getByRole('navigation', { name: 'Admin console' }).getByRole('link', { name: 'Audit log' }).click()]);
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Audit log');
    await console.check(t, page, 'audit');

    await page.getByLabel('Event type').fill('login');
    await page.getByLabel('Outcome').selectOption('failure');
    await page.getByLabel('IP address or network').fill('203.0.113.0/24');
    await Promise.all([page.waitForURL(/outcome=failure/), page.getByRole('button', { name: 'Filter' }).click()]);
    const url = new URL(page.url());
    t.equal(url.searchParams.get('type'), 'login', 'the type is in the URL');
    t.equal(url.searchParams.get('outcome'), 'failure', 'the outcome is in the URL');
    t.equal(url.searchParams.get('ip'), '203.0.113.0/24', 'the network is in the URL');
    t.equal(await rows(page).count(), 3, 'exactly the three failed logins from that network');
    for (const text of await rows(page).allTextContents()) t.match(text, /login[\s\S]*failure[\s\S]*203\.0\.113\.7/, 'each row is one of them');
    t.equal(await page.getByLabel('IP address or network').inputValue(), '203.0.113.0/24', 'the form shows the filter again');
    await console.check(t, page, 'audit-filtered');

    // One event in full.
    await Promise.all([page.waitForURL(/\/admin\/audit\/[0-9a-f-]{36}$/), rows(page).first().getByRole('link').click()]);
    const detail = await main(page);
    t.match(detail, /Audit event login/);
    t.match(detail, /203\.0\.113\.7/, 'its address');
    t.match(detail, /audit-web/, 'its client');
    t.match(detail, /audit-test/, 'its user agent');
    t.match(detail, /"reason": "wrong_password"/, 'its details');
    t.match(detail, /<script>alert\(1\)<\/script>/, 'markup in the details is shown as text');
    t.equal(await page.locator('main script').count(), 0, 'and never becomes an element');
    await console.check(t, page, 'audit-event');
    await Promise.all([page.waitForURL(`${origin}/admin/audit`), page.getByRole('link', { name: 'Back to the audit log' }).click()]);

    // A time range through the datetime fields (UTC), and a client: only January's events of pager-client.
    await page.goto(`${origin}/admin/audit?client_id=pager-client`);
    await page.getByLabel('From (UTC, inclusive)').fill('2026-01-06T00:00');
    await page.getByLabel('Until (UTC, exclusive)').fill('2026-01-10T00:00');
    await Promise.all([page.waitForURL(/from=/), page.getByRole('button', { name: 'Filter' }).click()]);
    t.equal(new URL(page.url()).searchParams.get('from'), '2026-01-06T00:00', 'the range is in the URL');
    // Events 0..27 are on January 5; event i ≥ 28 is on day 6 + (i % 20): days 6..9 are events 40..43.
    t.equal(await rows(page).count(), 4, 'only the events inside the range');

    // Paging: 55 events, 50 a page, the next page by cursor, nothing twice, nothing missed.
    await page.goto(`${origin}/admin/audit?client_id=pager-client`);
    const first = await rows(page).locator('a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    t.equal(first.length, 50, 'a full first page');
    await Promise.all([page.waitForURL(/cursor=/), page.getByRole('link', { name: 'Older' }).click()]);
    t.ok(new URL(page.url()).searchParams.get('cursor'), 'the next page is addressed by its cursor');
    t.equal(new URL(page.url()).searchParams.get('client_id'), 'pager-client', 'and keeps the filter');
    const second = await rows(page).locator('a').evaluateAll((links) => links.map((a) => a.getAttribute('href')));
    t.equal(second.length, 5, 'the rest on the second page');
    t.equal(new Set([...first, ...second]).size, 55, 'every event once');
    t.equal(await page.getByRole('link', { name: 'Older' }).count(), 0, 'no page after the last');
    await Promise.all([page.waitForURL((u) => !u.searchParams.has('cursor')), page.getByRole('link', { name: 'Newest' }).click()]);
    t.equal(await rows(page).count(), 50, 'and back to the first page');
  });

  t.test('the exports honour the filters and are downloaded through the page\'s links', async (t) => {
    const page = await console.signIn(t, admin, { path: '/admin/audit?type=login&outcome=failure&ip=203.0.113.0%2F24' });
    const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download CSV' }).click()]);
    t.match(csvDownload.suggestedFilename(), /^audit-.*\.csv$/, 'a CSV file');
    const csv = (await readFile((await csvDownload.path())!, 'utf8')).trimEnd().split('\r\n');
    t.match(csv[0], /^id,at,type,outcome,/, 'with its header');
    t.equal(csv.length, 4, 'and the three matching events');
    for (const line of csv.slice(1)) t.match(line, /,login,failure,.*203\.0\.113\.7/, 'each one matching');

    const href = await page.getByRole('link', { name: 'Download NDJSON' }).getAttribute('href');
    t.match(href, /^\/admin\/audit\/export\?/, 'the NDJSON link is a page route');
    const response = await page.request.get(`${origin}${href}`);
    t.equal(response.status(), 200);
    t.equal(response.headers()['content-type'], 'application/x-ndjson');
    t.equal(response.headers()['cache-control'], 'no-store', 'audit data is never cached');
    t.match(response.headers()['content-disposition'], /^attachment; filename="audit-.*\.ndjson"$/);
    const records = (await response.text()).trimEnd().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    t.same(records[0]?.filters, { type: 'login', outcome: 'failure', ip: '203.0.113.0/24' }, 'the export states its filters');
    const events = records.filter((r) => r.record === 'event');
    t.equal(events.length, 3, 'the three matching events');
    t.ok(events.every((e) => e.type === 'login' && e.outcome === 'failure' && e.ip === '203.0.113.7'), 'and only them');

    const exported = await server.app.keryu.services.auditLog.listEvents({ type: 'audit.exported', actor_id: admin.user.id, limit: 10 }, { audit: { type: 'system' } });
    t.same(exported.items.map((e) => e.details.format).sort(), ['csv', 'ndjson'], 'both exports were audited as the administrator\'s');
  });

  t.test('a bad filter answers 400 naming it and lists nothing', async (t) => {
    const page = await console.signIn(t, admin, { path: '/admin/audit' });
    const bad = await page.goto(`${origin}/admin/audit?ip=not-an-address`);
    t.equal(bad?.status(), 400);
    t.match(await page.getByRole('alert').textContent(), /^ip: /, 'the error names the field');
    t.equal(await rows(page).count(), 0, 'no event listed');
    t.equal(await page.getByRole('link', { name: 'Download CSV' }).count(), 0, 'and no export of a refused filter offered');
    t.equal(await page.getByLabel('IP address or network').inputValue(), 'not-an-address', 'the form shows what was asked, to correct it');
    t.equal((await page.goto(`${origin}/admin/audit?type=nope`))?.status(), 400, 'an unknown type: 400');
    t.match(await page.getByRole('alert').textContent(), /unknown event type/);
    t.equal((await page.goto(`${origin}/admin/audit?from=yesterday`))?.status(), 400, 'a time that is no time: 400');
    t.equal((await page.goto(`${origin}/admin/audit/export?format=xml`))?.status(), 400, 'an unknown export format: 400');
    await console.check(t, page, 'audit-bad-filter');
  });

  t.test('hostile: permissions, sessions and ids', async (t) => {
    const [someEvent] = (await server.app.keryu.services.auditLog.listEvents({ client_id: 'audit-web', limit: 1 }, { audit: { type: 'system' } })).items;

    const helpdesk = await console.delegatedAdmin('helpdesk@example.com', ['auth.users.manage']);
    const page = await console.signIn(t, helpdesk);
    const nav = page.getByRole('navigation', { name: 'Admin console' });
    t.equal(await nav.getByRole('link', { name: 'Audit log' }).count(), 0, 'no "Audit log" in the navigation without auth.audit.read');
    for (const path of ['/admin/audit', `/admin/audit/${someEvent!.id}`, '/admin/audit/export?format=csv', '/admin/audit/export?format=ndjson']) {
      const response = await page.request.get(`${origin}${path}`, { maxRedirects: 0 });
      t.equal(response.status(), 403, `${path}: 403`);
      t.notMatch(await response.text(), /audit-web|203\.0\.113/, 'and no audit data');
    }

    const auditor = await console.delegatedAdmin('auditor@example.com', ['auth.audit.read']);
    const auditorPage = await console.signIn(t, auditor);
    t.equal(await auditorPage.getByRole('navigation', { name: 'Admin console' }).getByRole('link', { name: 'Audit log' }).count(), 1, 'auth.audit.read alone shows the page');
    t.equal(await auditorPage.getByRole('navigation', { name: 'Admin console' }).getByRole('link', { name: 'Clients' }).count(), 0, 'and not the clients');
    t.equal((await auditorPage.request.get(`${origin}/admin/audit/${someEvent!.id}`)).status(), 200, 'an auditor reads an event');
    t.equal((await auditorPage.request.get(`${origin}/admin/audit/${randomUUID()}`)).status(), 404, 'an unknown event: 404');
    t.equal((await auditorPage.request.get(`${origin}/admin/audit/not-an-id`)).status(), 404, 'an id that is no id: 404');

    const anonymous = await fetch(`${origin}/admin/audit/export?format=csv`, { redirect: 'manual' });
    t.equal(anonymous.status, 303, 'no session: sent to sign in');
    t.notMatch(await anonymous.text(), /audit-web/, 'with no audit data');
  });
});
