/**
 * Reading the audit log: GET /api/auth/audit/ (filters, pagination, 400 naming the parameter, 403), one
 * event, seals on items, exports (NDJSON with seals, CSV safe for spreadsheets), and that reading is audited.
 * Runs on PostgreSQL and on PGlite.
 */
import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { sealAll } from '../helpers/audit.js';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

t.test('list, filter, page, show and export the audit log', async (t) => {
  const server = await startServer({ env: { AUDIT_SEAL_INTERVAL: '0' } });
  t.teardown(() => server.close());
  const { db } = server.db.database;
  const { api, token, clientId } = await serviceAccount(server, ['admin']);

  await db.insert(auditEvents).values([
    { type: 'login', outcome: 'failure', actorType: 'anonymous', subjectType: 'user', subjectId: 'u-1', ip: '203.0.113.7', occurredAt: new Date('2026-01-01T10:00:00Z'), details: { reason: 'bad_password' } },
    { type: 'login.locked', outcome: 'failure', actorType: 'system', subjectType: 'user', subjectId: 'u-1', ip: '203.0.113.8', occurredAt: new Date('2026-01-01T10:01:00Z') },
    { type: 'login.challenge', outcome: 'success', actorType: 'user', actorId: 'u-2', clientId: 'app-1', ip: '2001:db8::1', occurredAt: new Date('2026-01-01T10:02:00Z') },
    // A spreadsheet would run these as formulas.
    { type: 'user.updated', outcome: 'success', actorType: 'user', actorId: '=HYPERLINK("http://evil")', userAgent: '+cmd', requestId: '@SUM(1)', occurredAt: new Date('2026-01-02T10:00:00Z'), details: { name: '-2+3' } },
  ]);
  await server.app.keryu.services.audit.flush();

  const all = await api('GET', '/api/auth/audit/?limit=2');
  t.equal(all.status, 200, JSON.stringify(all.body));
  t.equal(all.body.items.length, 2);
  t.equal(all.headers.get('cache-control'), 'no-store');
  const first = all.body.items[0];
  t.match(first, { id: String, type: String, outcome: String, at: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, actor: { type: String }, details: Object, seal: null });
  t.ok('client_id' in first && 'ip' in first && 'user_agent' in first && 'request_id' in first && 'subject' in first, 'every member present');
  t.type(all.body.next_cursor, 'string');

  // Page through everything: newest first, no row twice, none missing.
  const seen: string[] = [];
  let cursor: string | null = null;
  let previousAt = '9999';
  do {
    const page: { status: number; body: { items: Array<{ id: string; at: string }>; next_cursor: string | null } } = await api('GET', `/api/auth/audit/?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
    t.equal(page.status, 200);
    for (const item of page.body.items) {
      t.ok(item.at <= previousAt, 'newest first');
      previousAt = item.at;
      seen.push(item.id);
    }
    cursor = page.body.next_cursor;
  } while (cursor);
  t.equal(new Set(seen).size, seen.length, 'no row twice');
  t.ok(seen.length >= 4);

  const types = async (query: string) => ((await api('GET', `/api/auth/audit/?${query}`)).body.items as Array<{ type: string }>).map((i) => i.type).sort();
  t.same(await types('type=login'), ['login'], 'an exact type');
  t.same(await types('type=login.*'), ['login.challenge', 'login.locked'], 'a prefix form');
  t.same(await types('type=login&type=login.locked'), ['login', 'login.locked'], 'repeatable');
  t.same(await types('type=login.*&outcome=failure'), ['login.locked']);
  t.same(await types('subject_id=u-1'), ['login', 'login.locked']);
  t.same(await types('actor_id=u-2'), ['login.challenge']);
  t.same(await types('client_id=app-1'), ['login.challenge']);
  t.same(await types('ip=203.0.113.7'), ['login']);
  t.same(await types('ip=203.0.113.0/24'), ['login', 'login.locked'], 'a network');
  t.same(await types('ip=2001:db8::/32'), ['login.challenge'], 'IPv6');
  t.same(await types('from=2026-01-01T10:00:30Z&to=2026-01-01T10:02:00Z'), ['login.locked'], 'from inclusive, to exclusive');
  t.same(await types('from=2026-01-01T11:00:00%2B01:00&to=2026-01-01T11:01:00%2B01:00'), ['login'], 'offsets');

  const bad = async (query: string, parameter: string) => {
    const res = await api('GET', `/api/auth/audit/?${query}`);
    t.equal(res.status, 400, `${query} → 400`);
    t.equal(res.body.error, 'invalid_request');
    t.match(res.body.message, new RegExp(`^${parameter}\\b`), `${query} names ${parameter}: ${res.body.message}`);
  };
  await bad('type=nope', 'type');
  await bad('type=login&type=nope.*', 'type');
  await bad('from=yesterday', 'from');
  await bad('to=2026-01-01', 'to');
  await bad('from=2026-13-01T00:00:00Z', 'from');
  await bad('from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'from');
  await bad('ip=300.1.1.1', 'ip');
  await bad('ip=10.0.0.0/33', 'ip');
  await bad('cursor=abc', 'cursor');
  const badOutcome = await api('GET', '/api/auth/audit/?outcome=maybe');
  t.equal(badOutcome.status, 400);
  t.match(badOutcome.body.message, /outcome/);

  const one = await api('GET', `/api/auth/audit/${first.id}/`);
  t.equal(one.status, 200);
  t.same(one.body, first, 'one event, as listed');
  t.equal((await api('GET', '/api/auth/audit/00000000-0000-4000-8000-000000000000/')).status, 404);
  t.equal((await api('GET', '/api/auth/audit/not-an-id/')).status, 404);

  // Sealed rows show their seal.
  await sealAll(db, server.app.keryu.services.auditSeals);
  const verified = await server.app.keryu.services.auditSeals.verifyChain();
  t.match(verified, { ok: true, problem: undefined, last: { digest: /^[0-9a-f]{64}$/ } }, 'the chain verifies (on this database kind too)');
  const after = await api('GET', `/api/auth/audit/${first.id}/`);
  t.match(after.body.seal, { id: Number }, 'a sealed row names its seal');
  const seals = await api('GET', '/api/auth/audit/seals/');
  t.equal(seals.status, 200);
  t.match(seals.body.items[0], { id: Number, count: Number, digest: /^[0-9a-f]{64}$/, kid: String, signature: String });
  t.equal(seals.body.items.at(-1).previous_digest, null, 'the first seal has no predecessor');
  const keys = await fetch(`${server.origin}/api/auth/audit/keys/`);
  t.equal(keys.status, 200, 'public keys need no token');
  const jwks = (await keys.json()) as { keys: Array<Record<string, unknown>> };
  t.match(jwks.keys[0], { kty: 'EC', crv: 'P-256', alg: 'ES256', kid: seals.body.items[0].kid });
  t.notOk('d' in (jwks.keys[0] ?? {}), 'no private member');

  // Exports.
  const csv = await fetch(`${server.origin}/api/auth/audit/export/?format=csv&type=user.updated`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(csv.status, 200);
  t.match(csv.headers.get('content-type'), /^text\/csv/);
  t.match(csv.headers.get('content-disposition'), /^attachment; filename="audit-.*\.csv"$/);
  const csvText = await csv.text();
  const [header, row] = csvText.trim().split('\r\n');
  t.equal(header, 'id,at,type,outcome,actor_type,actor_id,subject_type,subject_id,client_id,ip,user_agent,request_id,details,seal_id');
  t.match(row, /,"'=HYPERLINK\(""http:\/\/evil""\)",/, 'a formula becomes text');
  t.match(row, /,"'\+cmd",/);
  t.match(row, /,"'@SUM\(1\)",/);
  t.notMatch(row, /,[=+\-@]/, 'no cell starts with a formula character');

  const ndjson = await fetch(`${server.origin}/api/auth/audit/export/?type=login.*`, { headers: { authorization: `Bearer ${token}` } });
  t.equal(ndjson.status, 200);
  t.match(ndjson.headers.get('content-type'), /^application\/x-ndjson/);
  const records = (await ndjson.text()).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.match(records[0], { record: 'export', version: 1, complete: false, filters: { type: 'login.*' } });
  t.same(records.filter((r) => r.record === 'event').map((r) => r.type).sort(), ['login.challenge', 'login.locked']);
  const exportedSeals = records.filter((r) => r.record === 'seal');
  t.ok(exportedSeals.length >= 1, 'the seals that vouch for them');
  for (const event of records.filter((r) => r.record === 'event')) t.ok(exportedSeals.some((s) => s.id === (event.seal as { id: number }).id), 'each event\'s seal is in the file');
  t.equal((await fetch(`${server.origin}/api/auth/audit/export/?from=nope`, { headers: { authorization: `Bearer ${token}` } })).status, 400);
  t.equal((await fetch(`${server.origin}/api/auth/audit/export/?format=xml`, { headers: { authorization: `Bearer ${token}` } })).status, 400);

  // Reading and exporting are audited, with the filters.
  await server.app.keryu.services.audit.flush();
  const reads = await api('GET', `/api/auth/audit/?type=audit.*&actor_id=${encodeURIComponent(clientId)}&limit=200`);
  const logged = reads.body.items as Array<{ type: string; details: Record<string, unknown> }>;
  t.ok(logged.some((e) => e.type === 'audit.read' && (e.details.filters as Record<string, unknown>)?.subject_id === 'u-1'), 'a read with its filters');
  t.ok(logged.some((e) => e.type === 'audit.read' && e.details.event === first.id), 'a single event read');
  t.ok(logged.some((e) => e.type === 'audit.exported' && e.details.format === 'csv' && (e.details.filters as Record<string, unknown>)?.type === 'user.updated'), 'an export with its filters');
});

t.test('reading the audit log needs auth.audit.read', async (t) => {
  const server = await startServer({ env: { AUDIT_SEAL_INTERVAL: '0' } });
  t.teardown(() => server.close());
  // A user with no roles (a client without roles cannot obtain an API token at all).
  const { api } = await userWithToken(server, 'nobody@example.com');
  for (const path of ['/api/auth/audit/', '/api/auth/audit/seals/', '/api/auth/audit/export/', '/api/auth/audit/00000000-0000-4000-8000-000000000000/']) {
    const res = await api('GET', path);
    t.equal(res.status, 403, path);
    t.equal(res.body.required, 'auth.audit.read');
  }
  t.equal((await fetch(`${server.origin}/api/auth/audit/`)).status, 401, 'no token');
});
