/**
 * The client management API (auth.clients.manage): register, list, show, replace, delete; the secret shown
 * once and usable with openid-client's client credentials grant; bad metadata answers 400 naming the field
 * and writes nothing; unknown ids 404; the permission is required; everything audited; no secret in any view.
 */
import { sql } from 'drizzle-orm';
import * as client from 'openid-client';
import { clients } from '../../src/db/schema/index.js';
import t from 'tap';
import { auditLog } from '../helpers/mfa.js';
import { discover, seedClient } from '../helpers/oidc.js';
import { userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';
import { NO_RATE_LIMITS } from '../helpers/auth.js';

const machine = { grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' };
const webApp = (id: string) => ({
  client_id: id,
  client_name: 'Web app',
  redirect_uris: ['https://app.example.com/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  scope: 'openid profile',
});

t.test('client management API', async (t) => {
  const server = await startServer({ env: NO_RATE_LIMITS });
  t.teardown(() => server.close());
  const { api } = await userWithToken(server, 'admin@example.com', ['admin']);
  const clientCount = async () => (await server.app.keryu.database.db.select({ n: sql<number>`count(*)::int` }).from(clients))[0]?.n;

  t.test('create, use the secret with openid-client, read, list, replace, delete', async (t) => {
    const created = await api('POST', '/api/auth/clients/', { client_id: 'billing-sync', client_name: 'Billing sync', ...machine });
    t.equal(created.status, 201);
    t.equal(created.body.client_id, 'billing-sync');
    t.type(created.body.client_secret, 'string', 'the generated secret is shown once');
    t.ok(created.body.client_secret.length >= 43, '256 bits, base64url');
    t.equal(created.body.client_secret_expires_at, 0);
    t.equal(created.body.has_secret, true);
    t.same(created.body.grant_types, ['client_credentials'], 'RFC 7591 names');
    t.equal(created.body.token_endpoint_auth_method, 'client_secret_basic');
    t.match(created.headers.get('cache-control') ?? '', /no-store/, 'an answer with a secret is not cached');

    const config = await discover(server, { clientId: 'billing-sync', clientSecret: created.body.client_secret });
    const tokens = await client.clientCredentialsGrant(config);
    t.ok(tokens.access_token, 'openid-client obtains a token with the secret the API showed');

    const shown = await api('GET', '/api/auth/clients/billing-sync/');
    t.equal(shown.status, 200);
    t.equal(shown.body.client_name, 'Billing sync');
    t.notOk('client_secret' in shown.body, 'the secret is never shown again');
    t.notOk(JSON.stringify(shown.body).includes(created.body.client_secret), 'nor anything containing it');

    const listed = await api('GET', '/api/auth/clients/?search=billing');
    t.equal(listed.status, 200);
    t.same(
      listed.body.items.map((c: { client_id: string }) => c.client_id),
      ['billing-sync'],
    );
    t.notOk(JSON.stringify(listed.body).match(/client_secret"|digest/), 'a listing holds no secret and no digest');

    const replaced = await api('PUT', '/api/auth/clients/billing-sync/', { client_name: 'Billing sync v2', ...machine, scope: 'openid' });
    t.equal(replaced.status, 200, JSON.stringify(replaced.body));
    t.equal(replaced.body.client_name, 'Billing sync v2');
    t.notOk('client_secret' in replaced.body, 'a confidential client keeps its secret: none shown');
    t.ok(await client.clientCredentialsGrant(config), 'the secret still works after the update');

    const secretInUpdate = await api('PUT', '/api/auth/clients/billing-sync/', { ...machine, client_secret: 'x'.repeat(40) });
    t.equal(secretInUpdate.status, 400, 'a secret never travels in an update');

    t.equal((await api('DELETE', '/api/auth/clients/billing-sync/')).status, 204);
    t.equal((await api('GET', '/api/auth/clients/billing-sync/')).status, 404);
    t.equal((await api('DELETE', '/api/auth/clients/billing-sync/')).status, 404, 'deleting twice: 404');

    const events = (await auditLog(server)).filter((e) => e.subjectId === 'billing-sync');
    t.same(
      events.map((e) => `${e.type}:${e.outcome}`),
      ['client.created:success', 'client.updated:success', 'client.updated:failure', 'client.deleted:success'],
      'every change audited',
    );
    t.notOk(JSON.stringify(events).includes(created.body.client_secret), 'the audit log never holds the secret');
  });

  t.test('a public client, and one turned confidential, get a secret exactly when one is created', async (t) => {
    const spa = await api('POST', '/api/auth/clients/', { ...webApp('spa'), token_endpoint_auth_method: 'none' });
    t.equal(spa.status, 201, JSON.stringify(spa.body));
    t.notOk('client_secret' in spa.body, 'a public client has no secret');
    t.equal(spa.body.has_secret, false);
    t.equal((await api('POST', '/api/auth/clients/spa/secret/')).status, 400, 'nothing to rotate');

    const confidential = await api('PUT', '/api/auth/clients/spa/', { ...webApp('spa'), client_id: undefined, token_endpoint_auth_method: 'client_secret_basic' });
    t.equal(confidential.status, 200, JSON.stringify(confidential.body));
    t.type(confidential.body.client_secret, 'string', 'a client made confidential gets a secret, shown once');
    t.equal(confidential.body.has_secret, true);
  });

  t.test('bad metadata: 400 naming the field, nothing written, audited as a failure', async (t) => {
    const before = await clientCount();
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['wildcard redirect', { ...webApp('bad-1'), redirect_uris: ['https://*.example.com/callback'] }, /^redirect_uris\.0: .*wildcard/],
      ['http outside loopback', { ...webApp('bad-2'), redirect_uris: ['http://app.example.com/callback'] }, /^redirect_uris\.0: .*https/],
      ['a fragment', { ...webApp('bad-3'), redirect_uris: ['https://app.example.com/callback#x'] }, /^redirect_uris\.0: .*fragment/],
      ['public client without PKCE', { ...webApp('bad-4'), token_endpoint_auth_method: 'none', require_pkce: false }, /^require_pkce: /],
      ['unknown field', { ...webApp('bad-5'), redirect_uri: 'https://app.example.com/cb' }, /redirect_uri/],
      ['post-logout wildcard', { ...webApp('bad-6'), post_logout_redirect_uris: ['https://app.example.com/*'] }, /^post_logout_redirect_uris\.0: /],
    ];
    for (const [what, body, message] of cases) {
      const res = await api('POST', '/api/auth/clients/', body);
      t.equal(res.status, 400, `${what}: 400`);
      t.equal(res.body.error, 'invalid_request', what);
      t.match(res.body.message, message, `${what}: the message names the field (${res.body.message})`);
    }
    t.equal(await clientCount(), before, 'no client was written');

    // The same rules on replace: the stored client is left as it was.
    await api('POST', '/api/auth/clients/', webApp('good-web'));
    const badUpdate = await api('PUT', '/api/auth/clients/good-web/', { ...webApp('x'), client_id: undefined, redirect_uris: ['http://evil.example.net/cb'] });
    t.equal(badUpdate.status, 400);
    t.match(badUpdate.body.message, /^redirect_uris\.0: /);
    t.same((await api('GET', '/api/auth/clients/good-web/')).body.redirect_uris, ['https://app.example.com/callback'], 'unchanged');

    const failures = (await auditLog(server)).filter((e) => e.type === 'client.created' && e.outcome === 'failure');
    t.equal(failures.length, cases.length, 'each refused registration is audited as a failure');
    t.ok(failures.some((e) => (e.details as { field?: string }).field === 'redirect_uris.0'), 'with the field it failed on');
  });

  t.test('the same rules as the bootstrap file and the CLI', async (t) => {
    await t.rejects(
      server.app.keryu.services.clients.createClient({ ...webApp('cli-wild'), redirect_uris: ['https://*.example.com/cb'] } as never, { type: 'cli' }),
      /wildcard/,
      'the CLI path refuses a wildcard too',
    );
  });

  t.test('unknown ids answer 404 and change nothing', async (t) => {
    for (const [method, path] of [
      ['GET', '/api/auth/clients/no-such-client/'],
      ['PUT', '/api/auth/clients/no-such-client/'],
      ['DELETE', '/api/auth/clients/no-such-client/'],
      ['POST', '/api/auth/clients/no-such-client/secret/'],
      ['GET', '/api/auth/clients/no-such-client/roles/'],
      ['POST', '/api/auth/clients/no-such-client/roles/'],
      ['DELETE', '/api/auth/clients/no-such-client/roles/00000000-0000-4000-8000-000000000000/'],
      ['GET', '/api/auth/clients/..%2Fusers/'],
    ] as const) {
      const body = method === 'PUT' ? { ...machine } : method === 'POST' && path.endsWith('roles/') ? { role: 'admin' } : undefined;
      t.equal((await api(method, path, body)).status, 404, `${method} ${path}`);
    }
  });

  t.test('registering an id that exists: 409, the existing client untouched', async (t) => {
    const first = await api('POST', '/api/auth/clients/', { client_id: 'twice', ...machine });
    const second = await api('POST', '/api/auth/clients/', { client_id: 'twice', ...machine });
    t.equal(second.status, 409);
    const config = await discover(server, { clientId: 'twice', clientSecret: first.body.client_secret });
    t.ok(await client.clientCredentialsGrant(config), 'the first secret still works');
  });

  t.test('the built-in account client cannot be changed or deleted', async (t) => {
    t.equal((await api('DELETE', '/api/auth/clients/keryu-account/')).status, 409);
    t.equal((await api('POST', '/api/auth/clients/keryu-account/secret/')).status, 409);
  });

  t.test('pagination with a cursor', async (t) => {
    for (const i of [1, 2, 3]) await seedClient(server, { client_id: `paged-${i}` });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: Array<{ client_id: string }>; next_cursor: string | null } } = await api('GET', `/api/auth/clients/?search=paged-&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      t.equal(page.status, 200);
      seen.push(...page.body.items.map((c) => c.client_id));
      cursor = page.body.next_cursor;
    } while (cursor);
    t.same(seen, ['paged-3', 'paged-2', 'paged-1'], 'newest first, every client once');
    t.equal((await api('GET', '/api/auth/clients/?cursor=bm90LWEtY3Vyc29y')).status, 400, 'a forged cursor: 400');
  });

  t.test('without auth.clients.manage: 403; without a token: 401', async (t) => {
    const { api: bob } = await userWithToken(server, 'bob@example.com', []);
    const before = await clientCount();
    t.equal((await bob('GET', '/api/auth/clients/')).status, 403);
    const refused = await bob('POST', '/api/auth/clients/', { client_id: 'bobs', ...machine });
    t.equal(refused.status, 403);
    t.equal(refused.body.required, 'auth.clients.manage');
    t.equal((await bob('POST', '/api/auth/clients/keryu-account/secret/')).status, 403);
    t.equal(await clientCount(), before, 'nothing written');
    const anonymous = await fetch(`${server.origin}/api/auth/clients/`);
    t.equal(anonymous.status, 401);
  });
});
