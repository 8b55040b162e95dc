/**
 * Alerts: each rule fires on its trigger and not below its threshold; deliveries reach a real webhook
 * receiver (signatures checked with the standardwebhooks package) and the SMTP sink; the list API.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import t from 'tap';
import { selectRows } from '../../src/db/client.js';
import { api, NO_RATE_LIMITS, seedAuthUser } from '../helpers/auth.js';
import { serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { startSmtpServer } from '../helpers/smtp.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { sealAll } from '../helpers/audit.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

type Alert = { id: string; type: string; severity: string; summary: string; details: Record<string, unknown>; events: string[]; deliveries: Array<{ channel: string; state: string; attempts: number }> };

async function raisedTypes(server: TestServer): Promise<string[]> {
  const { raised } = await server.app.keryu.services.alerts.evaluate();
  return raised.map((a) => a.type);
}

const failLogin = (server: TestServer, email: string, ip: string) =>
  api(server, 'POST', '/api/auth/login/', { body: { email, password: 'not the password' }, headers: { 'x-forwarded-for': ip } });

t.test('every rule fires on its trigger, not below it, and every alert arrives signed and by email', async (t) => {
  const receiver = await startWebhookReceiver(SECRET);
  const smtp = await startSmtpServer();
  const server = await startServer({
    env: {
      ...NO_RATE_LIMITS,
      TRUST_PROXY: 'true',
      ALERT_INTERVAL: '0',
      ALERT_WEBHOOK_URL: receiver.url,
      ALERT_WEBHOOK_SECRET: SECRET,
      ALERT_EMAIL: 'soc@example.com, oncall@example.com',
      SMTP_URL: smtp.url,
      LOGIN_DELAY_AFTER: '1000',
      LOGIN_LOCK_AFTER: '3',
      ALERT_STUFFING_FAILURES: '6',
      ALERT_STUFFING_ACCOUNTS: '3',
    },
  });
  t.teardown(async () => {
    await server.close();
    await receiver.close();
    await smtp.close();
  });
  const services = server.app.keryu.services;
  await services.alerts.evaluate(); // sets the cursor

  await t.test('account_locked: at the lock, not before', async (t) => {
    const user = await seedAuthUser(server, 'locked@example.com');
    await failLogin(server, user.email, '198.51.100.1');
    await failLogin(server, user.email, '198.51.100.1');
    t.same(await raisedTypes(server), [], 'two failures: nothing');
    await failLogin(server, user.email, '198.51.100.1');
    t.same(await raisedTypes(server), ['account_locked'], 'the third locks');
    t.same(await raisedTypes(server), [], 'evaluating again raises nothing new');
  });

  await t.test('credential_stuffing: failures across identifiers from one /24, not below either threshold', async (t) => {
    // Six failures for one identifier from one network: enough failures, too few identifiers.
    for (let i = 0; i < 6; i++) await failLogin(server, 'single@example.com', '192.0.2.10');
    t.same(await raisedTypes(server), ['account_locked'], 'one identifier is not stuffing (it is locked)');
    // Five failures across three identifiers: too few failures.
    for (let i = 0; i < 5; i++) await failLogin(server, `victim${i % 3}@example.com`, '203.0.113.5');
    t.same(await raisedTypes(server), [], 'below ALERT_STUFFING_FAILURES');
    // The sixth, from another address in the same /24.
    await failLogin(server, 'victim9@example.com', '203.0.113.77');
    const raised = (await services.alerts.evaluate()).raised;
    t.same(raised.map((a) => a.type), ['credential_stuffing']);
    t.equal(raised[0]?.details.network, '203.0.113.0/24');
    t.equal(raised[0]?.details.failures, 6);
    t.equal(raised[0]?.details.identifiers, 4);
    await failLogin(server, 'victim10@example.com', '203.0.113.78');
    t.same(await raisedTypes(server), [], 'one alert per network per window');
  });

  await t.test('token_reuse_detected, compromise_reported, audit_tampering from their audit events', async (t) => {
    await services.audit.record({ type: 'token.reuse_detected', outcome: 'failure', actor: { type: 'anonymous' }, subject: { type: 'session', id: 's1' }, details: { user_id: 'u1', refresh_token: 'rt-SECRET-VALUE' } });
    await services.audit.record({ type: 'account.compromise_reported', outcome: 'failure', actor: { type: 'anonymous' }, details: { reason: 'invalid_link' } });
    t.same(await raisedTypes(server), ['token_reuse_detected'], 'a refused report link is not a report');
    await services.audit.record({ type: 'account.compromise_reported', outcome: 'success', actor: { type: 'user', id: 'u2' }, subject: { type: 'user', id: 'u2' } });
    await services.audit.record({ type: 'audit.seal_broken', outcome: 'failure', actor: { type: 'system' }, details: { problem: 'row_changed', message: 'row 7 changed', seal: 42, source: 'seal' } });
    const raised = (await services.alerts.evaluate()).raised;
    t.same(raised.map((a) => [a.type, a.severity]).sort(), [['audit_tampering', 'critical'], ['compromise_reported', 'high']]);
  });

  await t.test('mfa_reset_by_admin on an administrator reset only', async (t) => {
    const user = await seedAuthUser(server, 'phone-lost@example.com');
    await services.audit.record({ type: 'mfa.factor_removed', outcome: 'success', actor: { type: 'user', id: user.id }, subject: { type: 'user', id: user.id }, details: { factor_id: 'f1' } });
    t.same(await raisedTypes(server), [], 'a user removing their own factor');
    await services.factors.resetAll(user, { type: 'cli' });
    t.same(await raisedTypes(server), ['mfa_reset_by_admin']);
  });

  await t.test('privilege_granted: an auth.* role assigned, a role edited to hold one; not a product role', async (t) => {
    const admin = await serviceAccount(server, ['admin']);
    const user = await seedAuthUser(server, 'promoted@example.com');
    t.equal((await admin.api('POST', '/api/auth/permissions/', { name: 'Read documents', codename: 'docs.read' })).status, 201);
    const role = await admin.api('POST', '/api/auth/roles/', { name: 'readers', permissions: ['docs.read'] });
    t.equal(role.status, 201);
    const assigned = await admin.api('POST', `/api/auth/users/${user.id}/roles/`, { role: 'readers' });
    t.equal(assigned.status, 201);
    t.same(await raisedTypes(server), [], 'a product permission is not a privilege');
    const edited = await admin.api('PUT', `/api/auth/roles/${role.body.id}/`, { name: 'readers', permissions: ['docs.read', 'auth.users.manage'] });
    t.equal(edited.status, 200, JSON.stringify(edited.body));
    t.same(await raisedTypes(server), ['privilege_granted'], 'a role edit gives its holders auth.users.manage');
    const other = await seedAuthUser(server, 'promoted2@example.com');
    t.equal((await admin.api('POST', `/api/auth/users/${other.id}/roles/`, { role: 'admin' })).status, 201);
    const raised = (await services.alerts.evaluate()).raised;
    t.same(raised.map((a) => a.type), ['privilege_granted']);
    t.ok((raised[0]?.details.permissions as string[]).includes('auth.superuser'));
  });

  await t.test('deliveries: every alert reaches the receiver once, signed, and each address by email', async (t) => {
    let round = await services.alerts.deliver();
    while (round.delivered + round.retrying > 0) round = await services.alerts.deliver();
    const listed = await userWithToken(server, 'auditor@example.com', ['admin']);
    const all: Alert[] = [];
    let cursor: string | null = null;
    do {
      const page: { status: number; body: { items: Alert[]; next_cursor: string | null } } = await listed.api('GET', `/api/auth/alerts/?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      t.equal(page.status, 200);
      all.push(...page.body.items);
      cursor = page.body.next_cursor;
    } while (cursor);
    t.same(all.map((a) => a.type).sort(), ['account_locked', 'account_locked', 'audit_tampering', 'compromise_reported', 'credential_stuffing', 'mfa_reset_by_admin', 'privilege_granted', 'privilege_granted', 'token_reuse_detected']);
    t.same(receiver.rejected, [], 'every signature verified');
    t.same(receiver.received.map((r) => r.id).sort(), all.map((a) => a.id).sort(), 'each alert once, under its stable id');
    for (const a of all) t.same(a.deliveries.map((d) => [d.channel, d.state, d.attempts]), [['webhook', 'delivered', 1], ['email', 'delivered', 1], ['email', 'delivered', 1]]);
    const body = receiver.received.find((r) => r.body.type === 'token_reuse_detected')?.body;
    t.same(Object.keys(body ?? {}).sort(), ['at', 'details', 'events', 'id', 'severity', 'summary', 'type']);
    for (const r of receiver.received) {
      t.notMatch(r.raw, /rt-SECRET-VALUE|not the password|correct horse/, `${String(r.body.type)}: no secret in the alert`);
    }
    await smtp.waitFor(all.length * 2);
    t.equal(smtp.messages.filter((m) => m.to.includes('soc@example.com')).length, all.length);
    t.ok(smtp.messages.some((m) => /Every second factor of user/.test(m.text)), 'a plain-language summary');
    const events = await listed.api('GET', '/api/auth/alerts/?type=credential_stuffing');
    t.equal(events.body.items.length, 1, 'filter by type');

    const nobody = await userWithToken(server, 'nobody@example.com');
    const refused = await nobody.api('GET', '/api/auth/alerts/');
    t.equal(refused.status, 403);
    t.equal(refused.body.required, 'auth.audit.read');
    t.equal((await api(server, 'GET', '/api/auth/alerts/')).status, 401);
    t.equal((await listed.api('GET', '/api/auth/alerts/?type=nope')).status, 400);
  });
  void TEST_PASSWORD;
});

t.test('rate_limit_exceeded: one alert per limit and key per window, not one per request', async (t) => {
  const server = await startServer({ env: { ALERT_INTERVAL: '0', RATE_LIMIT_AUTH: '2', TRUST_PROXY: 'true' } });
  t.teardown(() => server.close());
  await server.app.keryu.services.alerts.evaluate();
  const hit = (ip: string) => api(server, 'GET', '/api/auth/alerts/', { headers: { 'x-forwarded-for': ip } });
  await hit('198.51.100.7');
  await hit('198.51.100.7');
  t.same(await raisedTypes(server), [], 'at the limit: nothing');
  for (let i = 0; i < 5; i++) t.equal((await hit('198.51.100.7')).status, 429);
  await hit('198.51.100.8');
  await hit('198.51.100.8');
  await hit('198.51.100.8');
  // The refusal's audit event is written by the batched audit queue: let it land before evaluating.
  await server.app.keryu.services.audit.flush();
  const raised = (await server.app.keryu.services.alerts.evaluate()).raised;
  t.same(raised.map((a) => [a.type, a.details.source]).sort(), [['rate_limit_exceeded', '198.51.100.7'], ['rate_limit_exceeded', '198.51.100.8']]);
  const audited = await selectRows<{ n: number }>(server.db.database.db, sql`select count(*)::int as n from audit_events where type = 'rate_limit.exceeded'`);
  t.equal(audited[0]?.n, 2, 'one audit event per limit and key per window, not one per refused request');
});

t.test('signing_key_overdue once a day per key', async (t) => {
  const server = await startServer({ env: { ALERT_INTERVAL: '0', SIGNING_KEY_MAX_AGE: '0' } });
  t.teardown(() => server.close());
  const first = await raisedTypes(server);
  t.ok(first.length >= 1 && first.every((type) => type === 'signing_key_overdue'), 'each signing key is overdue');
  t.same(await raisedTypes(server), [], 'not again the same day');
});

t.test('audit_digest: once a day the newest seal digest goes to every channel (a copy outside the database)', async (t) => {
  const receiver = await startWebhookReceiver(SECRET);
  t.teardown(() => receiver.close());
  const server = await startServer({ env: { ALERT_INTERVAL: '0', AUDIT_SEAL_INTERVAL: '0', ALERT_WEBHOOK_URL: receiver.url, ALERT_WEBHOOK_SECRET: SECRET } });
  t.teardown(() => server.close());
  const { alerts, auditSeals } = server.app.keryu.services;
  t.same(await raisedTypes(server), [], 'no seal yet: no digest');
  await seedAuthUser(server);
  await sealAll(server.db.database.db, auditSeals);
  const seal = await auditSeals.lastSeal();
  t.ok(seal, 'sealed');
  const { raised } = await alerts.evaluate();
  const digest = raised.find((a) => a.type === 'audit_digest');
  t.ok(digest, 'the digest is raised');
  t.match(digest?.details, { seal: seal?.id, digest: seal?.digest });
  t.match(digest?.summary, seal?.digest ?? 'missing');
  await alerts.deliver();
  t.ok(receiver.received.some((r) => r.body.type === 'audit_digest'), 'delivered to the webhook, signed');
  t.same((await alerts.evaluate()).raised.filter((a) => a.type === 'audit_digest'), [], 'once a day');
});
