/**
 * The client pages of the admin console in headless Chromium: an administrator registers a service client,
 * reads its secret once on the answer to the POST and uses it with openid-client (client credentials), edits
 * its redirect URIs and grant types, gives its service account a role and takes it back, rotates the secret
 * (the old one works during the grace period, then is refused), and deletes it after a page counting what
 * goes (its live tokens are gone). Bad metadata (wildcard or plain-http redirect URI, a public client
 * without PKCE) shows the field's error and writes nothing.
 * Hostile: a delegated administrator without auth.clients.manage finds no "Clients" in the navigation and
 * gets 403 on every page and action; one with it cannot give a client a role above hers, nor take over the
 * secret of a client holding one; forms without or with a wrong CSRF token answer 403 and change nothing;
 * unknown client ids answer 404; the built-in account client cannot be deleted.
 */
import tap from 'tap';
import * as client from 'openid-client';
import type { Page } from 'playwright-core';
import { csrfOf, postForm, startAdminConsole } from '../helpers/admin.js';
import { SKIP_WITHOUT_CHROMIUM } from '../helpers/chromium.js';
import { discover, oauthError } from '../helpers/oidc.js';
import { operator } from '../helpers/rbac.js';

/** Seconds a replaced secret keeps working in this test (the default is a day). */
const GRACE = 600;

tap.test('admin console: clients', { skip: SKIP_WITHOUT_CHROMIUM }, async (t) => {
  const console = await startAdminConsole(t, { env: { CLIENT_SECRET_GRACE_PERIOD: String(GRACE) } });
  const { server, admin, clock } = console;
  const { clientAdmin, clientUsage, rbac } = server.app.keryu.services;
  const origin = server.origin;

  const main = async (page: Page) => (await page.textContent('main')) ?? '';
  const exists = (clientId: string) => clientAdmin.getClient(clientId).then(() => true, () => false);
  const clientCredentials = (clientId: string, clientSecret: string) => discover(server, { clientId, clientSecret }).then((config) => client.clientCredentialsGrant(config));
  const postedTo = (path: string) => (r: { request(): { method(): string }; url(): string }) => r.request().method() === 'POST' && new URL(r.url()).pathname === path;

  await rbac.createPermission({ codename: 'reports.read', name: 'Read reports' }, operator);
  await rbac.createRole({ name: 'reports-reader', permissions: ['reports.read'] }, operator);

  t.test('register a service client, use its secret, edit it, give it a role, rotate its secret, delete it', async (t) => {
    const page = await console.signIn(t, admin);
    await Promise.all([page.waitForURL(`${origin}/admin/clients`), page.getByRole('navigation', { name: 'Admin console' }).getByRole('link', { name: 'Clients' }).click()]);
    t.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Clients');
    await console.check(t, page, 'clients');

    await Promise.all([page.waitForURL(`${origin}/admin/clients/new`), page.getByRole('link', { name: 'Register a client' }).click()]);
    await console.check(t, page, 'client-new');
    await page.getByLabel('Client id').fill('reports-service');
    await page.getByLabel('Type', { exact: true }).selectOption('client_secret_basic');
    await page.getByLabel('Name shown to users').fill('Reports service');
    await page.getByLabel(/^Authorization code/).uncheck();
    await page.getByLabel(/^Refresh token/).uncheck();
    await page.getByLabel(/^Client credentials/).check();
    const [answer] = await Promise.all([page.waitForResponse(postedTo('/admin/clients')), page.getByRole('button', { name: 'Register client' }).click()]);
    await page.waitForLoadState();
    t.equal(answer.status(), 201, 'the POST itself answers with the secret (no redirect to a page that could show it again)');
    t.equal(answer.headers()['cache-control'], 'no-store', 'and is not cached');
    const secret = await page.getByLabel('Client secret of reports-service').inputValue();
    t.ok(secret.length >= 43, 'a generated secret of 256 bits is shown');
    t.match(await main(page), /shown only this once/);
    await console.check(t, page, 'client-secret');

    const tokens = await clientCredentials('reports-service', secret);
    t.ok(tokens.access_token, 'openid-client gets a token with the secret (client credentials)');
    t.same((await clientAdmin.getClient('reports-service')).metadata.grant_types, ['client_credentials'], 'the grant types chosen');

    await Promise.all([page.waitForURL(`${origin}/admin/clients/reports-service`), page.getByRole('link', { name: 'Done' }).click()]);
    t.notOk((await page.content()).includes(secret), 'the client\'s page never shows the secret');
    await console.check(t, page, 'client');
    await page.goto(`${origin}/admin/clients`);
    t.match(await main(page), /Reports service/, 'the list shows the client');
    t.notOk((await page.content()).includes(secret), 'and not its secret');
    await page.getByLabel('Client id or name').fill('reports');
    await Promise.all([page.waitForURL(/search=reports/), page.getByRole('button', { name: 'Search' }).click()]);
    t.same(await page.locator('ul.items h3').allTextContents(), ['Reports service'], 'a search by name finds it alone');
    await page.goto(`${origin}/admin/clients?search=no-such-thing`);
    t.match(await main(page), /No client/, 'and a search for nothing finds nothing');
    await page.goto(`${origin}/admin/clients/reports-service`);
    await Promise.all([page.waitForURL(/\/admin\/audit\?client_id=reports-service/), page.getByRole('link', { name: 'Audit events of this client' }).click()]);
    t.match(await main(page), /client\.created/, 'its audit events are one link away');

    // Edit: a redirect URI and the authorization code grant.
    await page.goto(`${origin}/admin/clients/reports-service`);
    await page.getByLabel('Redirect URIs, one per line').fill('https://reports.example.com/callback\nhttp://127.0.0.1:8080/callback');
    await page.getByLabel(/^Authorization code/).check();
    await Promise.all([page.waitForURL(/done=updated/), page.getByRole('button', { name: 'Save changes' }).click()]);
    t.match(await page.getByRole('status').textContent(), /saved/);
    const edited = (await clientAdmin.getClient('reports-service')).metadata;
    t.same(edited.redirect_uris, ['https://reports.example.com/callback', 'http://127.0.0.1:8080/callback'], 'the redirect URIs saved');
    t.same(edited.grant_types, ['authorization_code', 'client_credentials'], 'the grant types saved');
    t.equal(edited.client_name, 'Reports service', 'the rest kept');

    // A bad redirect URI on edit: the field's error, nothing written.
    await page.getByLabel('Redirect URIs, one per line').fill('https://*.example.com/callback');
    const [refused] = await Promise.all([page.waitForResponse(postedTo('/admin/clients/reports-service')), page.getByRole('button', { name: 'Save changes' }).click()]);
    await page.waitForLoadState();
    t.equal(refused.status(), 400);
    t.match(await page.locator('#redirect_uris-error').textContent(), /wildcard/, 'the error is on the redirect URIs');
    t.equal(await page.getByLabel('Redirect URIs, one per line').getAttribute('aria-invalid'), 'true');
    t.equal(await page.getByLabel('Redirect URIs, one per line').inputValue(), 'https://*.example.com/callback', 'what was typed is shown again');
    await console.check(t, page, 'client-invalid');
    t.same((await clientAdmin.getClient('reports-service')).metadata, edited, 'nothing written');

    // The service account's role.
    await page.goto(`${origin}/admin/clients/reports-service`);
    await page.getByLabel('Role', { exact: true }).selectOption('reports-reader');
    await Promise.all([page.waitForURL(/done=role-given/), page.getByRole('button', { name: 'Give role' }).click()]);
    t.same((await clientAdmin.listClientRoles('reports-service')).map((r) => r.role), ['reports-reader'], 'the role given');
    t.match(await main(page), /reports-reader/);
    await Promise.all([page.waitForURL(/done=role-removed/), page.getByRole('button', { name: 'Remove the role reports-reader' }).click()]);
    t.same(await clientAdmin.listClientRoles('reports-service'), [], 'and taken back');

    // Rotation: a confirmation, the new secret once, the old one during the grace period only.
    await Promise.all([page.waitForURL(/\/secret$/), page.getByRole('link', { name: 'Rotate the secret' }).click()]);
    t.match(await main(page), /keeps working for 10 minutes/, 'the grace period is stated');
    await console.check(t, page, 'client-rotate');
    const [rotation] = await Promise.all([page.waitForResponse(postedTo('/admin/clients/reports-service/secret')), page.getByRole('button', { name: 'Rotate secret' }).click()]);
    await page.waitForLoadState();
    t.equal(rotation.headers()['cache-control'], 'no-store');
    const rotated = await page.getByLabel('Client secret of reports-service').inputValue();
    t.not(rotated, secret, 'a new secret');
    t.match(await main(page), /previous secret keeps working until/);
    t.ok((await clientCredentials('reports-service', rotated)).access_token, 'the new secret works');
    t.ok((await clientCredentials('reports-service', secret)).access_token, 'the old one too, during the grace period');
    clock.advance(GRACE + 1);
    t.equal((await oauthError(clientCredentials('reports-service', secret))).error, 'invalid_client', 'the old secret is refused after the grace period');
    const live = await clientCredentials('reports-service', rotated);
    t.ok(live.access_token, 'the new one still works');

    // Deletion: a page counting what goes, then the client and its tokens are gone.
    await page.goto(`${origin}/admin/clients/reports-service`);
    await Promise.all([page.waitForURL(/\/delete$/), page.getByRole('link', { name: 'Delete the client' }).click()]);
    const consequences = await main(page);
    t.match(consequences, /[1-9]\d* stored tokens? issued to it/, 'the live tokens are counted');
    t.match(consequences, /0 grants/, 'and its grants');
    await console.check(t, page, 'client-delete');
    await Promise.all([page.waitForURL(`${origin}/admin/clients?done=deleted`), page.getByRole('button', { name: 'Delete client' }).click()]);
    t.notOk(await exists('reports-service'), 'the client is gone');
    t.same(await clientUsage.countClientUsage('reports-service'), { grants: 0, accounts: 0, tokens: 0 }, 'with its tokens');
    t.equal((await oauthError(clientCredentials('reports-service', rotated))).error, 'invalid_client', 'its secret no longer works');
    t.notMatch(await main(page), /Reports service/, 'and the list no longer shows it');
  });

  t.test('bad metadata on registration shows the field\'s error and writes nothing', async (t) => {
    const page = await console.signIn(t, admin, { path: '/admin/clients/new' });
    const cases = [
      { id: 'wild', redirect: 'https://*.example.com/cb', field: 'redirect_uris', message: /wildcard/ },
      { id: 'plain-http', redirect: 'http://app.example.com/cb', field: 'redirect_uris', message: /https/ },
      { id: 'public-no-pkce', redirect: 'https://app.example.com/cb', field: 'require_pkce', message: /PKCE/, public: true },
    ];
    for (const c of cases) {
      await page.goto(`${origin}/admin/clients/new`);
      await page.getByLabel('Client id').fill(c.id);
      if (c.public) {
        await page.getByLabel('Type', { exact: true }).selectOption('none');
        await page.getByLabel(/^Require PKCE/).uncheck();
      }
      await page.getByLabel('Redirect URIs, one per line').fill(c.redirect);
      const [answer] = await Promise.all([page.waitForResponse(postedTo('/admin/clients')), page.getByRole('button', { name: 'Register client' }).click()]);
      await page.waitForLoadState();
      t.equal(answer.status(), 400, `${c.id}: 400`);
      t.match(await page.locator(`#${c.field}-error`).textContent(), c.message, `${c.id}: the error names the field`);
      t.equal(await page.getByLabel('Client id').inputValue(), c.id, `${c.id}: the form keeps what was typed`);
      t.notOk(await exists(c.id), `${c.id}: nothing written`);
    }
    await console.check(t, page, 'client-new-invalid');
  });

  t.test('without JavaScript: a public client is registered (no secret to show) and deleted', async (t) => {
    const page = await console.signIn(t, admin, { path: '/admin/clients/new', javaScriptEnabled: false });
    await page.getByLabel('Client id').fill('spa');
    await page.getByLabel('Type', { exact: true }).selectOption('none');
    await page.getByLabel('Redirect URIs, one per line').fill('https://spa.example.com/callback');
    const [answer] = await Promise.all([page.waitForResponse(postedTo('/admin/clients')), page.getByRole('button', { name: 'Register client' }).click()]);
    await page.waitForURL(`${origin}/admin/clients/spa?done=created`);
    t.equal(answer.status(), 303, 'a client without a secret: 303 to its page');
    t.match(await page.getByRole('status').textContent(), /registered/);
    t.equal(await page.getByRole('link', { name: 'Rotate the secret' }).count(), 0, 'a public client has no secret to rotate');
    t.equal((await page.request.get(`${origin}/admin/clients/spa/secret`)).status(), 404, 'nor a rotation page');
    const stored = await clientAdmin.getClient('spa');
    t.equal(stored.hasSecret, false);
    t.equal(stored.metadata.token_endpoint_auth_method, 'none');
    t.equal(stored.metadata.require_pkce, undefined, 'PKCE left at its default (required)');
    await page.getByRole('link', { name: 'Delete the client' }).click();
    await Promise.all([page.waitForURL(`${origin}/admin/clients?done=deleted`), page.getByRole('button', { name: 'Delete client' }).click()]);
    t.notOk(await exists('spa'), 'deleted');
  });

  t.test('hostile: permissions, escalation, CSRF and ids', async (t) => {
    const { clientSecret: victimSecret } = await clientAdmin.createClient({ client_id: 'victim', grant_types: ['client_credentials'] }, operator);
    const { clientSecret: poweredSecret } = await clientAdmin.createClient({ client_id: 'powered', grant_types: ['client_credentials'] }, operator);
    await rbac.assignClientRole('powered', 'admin', operator);
    const victimBefore = await clientAdmin.getClient('victim');

    // Without auth.clients.manage: no navigation entry, 403 on every page and action.
    const helpdesk = await console.delegatedAdmin('helpdesk@example.com', ['auth.users.manage']);
    const helpdeskPage = await console.signIn(t, helpdesk);
    t.equal(await helpdeskPage.getByRole('navigation', { name: 'Admin console' }).getByRole('link', { name: 'Clients' }).count(), 0, 'no "Clients" in the navigation');
    const csrf = await csrfOf(helpdeskPage);
    for (const path of ['/admin/clients', '/admin/clients/new', '/admin/clients/victim', '/admin/clients/victim/secret', '/admin/clients/victim/delete']) {
      t.equal((await helpdeskPage.request.get(`${origin}${path}`, { maxRedirects: 0 })).status(), 403, `GET ${path}: 403`);
    }
    t.equal((await postForm(helpdeskPage, server, '/admin/clients', { csrf, client_id: 'sneaky', grant_types: 'client_credentials' })).status, 403, 'registering: 403');
    const rotateAttempt = await postForm(helpdeskPage, server, '/admin/clients/victim/secret', { csrf });
    t.equal(rotateAttempt.status, 403, 'rotating: 403');
    t.equal((await postForm(helpdeskPage, server, '/admin/clients/victim/delete', { csrf })).status, 403, 'deleting: 403');
    t.notOk(await exists('sneaky'), 'nothing registered');
    t.same(await clientAdmin.getClient('victim'), victimBefore, 'the client unchanged');

    // With auth.clients.manage but not admin: no role above hers, no takeover of a powerful client's secret.
    const delegate = await console.delegatedAdmin('clients-admin@example.com', ['auth.clients.manage']);
    const page = await console.signIn(t, delegate, { path: '/admin/clients/victim' });
    t.equal(await page.getByRole('navigation', { name: 'Admin console' }).getByRole('link', { name: 'Clients' }).count(), 1, 'auth.clients.manage shows the page');
    await page.getByLabel('Role', { exact: true }).selectOption('admin');
    const [given] = await Promise.all([page.waitForResponse(postedTo('/admin/clients/victim/roles')), page.getByRole('button', { name: 'Give role' }).click()]);
    await page.waitForLoadState();
    t.equal(given.status(), 403, 'giving the client `admin` is refused');
    t.ok(await page.getByRole('alert').isVisible(), 'and said on the page');
    t.same(await clientAdmin.listClientRoles('victim'), [], 'no role given');
    const takeover = await postForm(page, server, '/admin/clients/powered/secret', { csrf: await csrfOf(page) });
    t.equal(takeover.status, 403, 'rotating the secret of a client holding `admin`: 403');
    t.ok((await clientCredentials('powered', poweredSecret!)).access_token, 'its secret unchanged');
    t.equal((await postForm(page, server, '/admin/clients/powered/delete', { csrf: await csrfOf(page) })).status, 403, 'deleting it: 403');
    t.ok(await exists('powered'), 'it still exists');

    // CSRF: missing or wrong token, 403 and nothing changed.
    const adminPage = await console.signIn(t, admin, { path: '/admin/clients/victim' });
    const good = await csrfOf(adminPage);
    for (const forged of [undefined, 'forged', `${good.slice(0, -1)}${good.endsWith('x') ? 'y' : 'x'}`]) {
      const field: Record<string, string> = forged === undefined ? {} : { csrf: forged };
      const label = forged === undefined ? 'without' : 'with a wrong';
      t.equal((await postForm(adminPage, server, '/admin/clients', { ...field, client_id: 'csrf-made', grant_types: 'client_credentials' })).status, 403, `registering ${label} CSRF token: 403`);
      t.equal((await postForm(adminPage, server, '/admin/clients/victim', { ...field, redirect_uris: 'https://evil.example/cb', grant_types: 'authorization_code' })).status, 403, `editing ${label} CSRF token: 403`);
      t.equal((await postForm(adminPage, server, '/admin/clients/victim/roles', { ...field, role: 'reports-reader' })).status, 403, `giving a role ${label} CSRF token: 403`);
      t.equal((await postForm(adminPage, server, '/admin/clients/victim/secret', field)).status, 403, `rotating ${label} CSRF token: 403`);
      t.equal((await postForm(adminPage, server, '/admin/clients/victim/delete', field)).status, 403, `deleting ${label} CSRF token: 403`);
    }
    t.notOk(await exists('csrf-made'), 'nothing registered');
    t.same(await clientAdmin.getClient('victim'), victimBefore, 'the client unchanged (metadata, secret)');
    t.same(await clientAdmin.listClientRoles('victim'), [], 'no role given');
    t.ok((await clientCredentials('victim', victimSecret!)).access_token, 'its secret still works');

    // Unknown ids: 404 everywhere, nothing created.
    for (const id of ['no-such-client', 'bad%20id', encodeURIComponent('../victim')]) {
      for (const path of [`/admin/clients/${id}`, `/admin/clients/${id}/secret`, `/admin/clients/${id}/delete`]) {
        t.equal((await adminPage.request.get(`${origin}${path}`)).status(), 404, `GET ${path}: 404`);
      }
      for (const [path, form] of [[`/admin/clients/${id}`, { grant_types: 'client_credentials' }], [`/admin/clients/${id}/secret`, {}], [`/admin/clients/${id}/delete`, {}], [`/admin/clients/${id}/roles`, { role: 'reports-reader' }], [`/admin/clients/${id}/roles/remove`, { role: 'reports-reader' }]] as const) {
        t.equal((await postForm(adminPage, server, path, { csrf: good, ...form })).status, 404, `POST ${path}: 404`);
      }
    }
    t.notOk(await exists('no-such-client'), 'nothing created by a POST to an unknown id');
    const builtIn = await postForm(adminPage, server, '/admin/clients/keryu-account/delete', { csrf: good });
    t.equal(builtIn.status, 409, 'the account pages\' own client cannot be deleted');
    t.ok(await exists('keryu-account'), 'and still exists');
  });
});
