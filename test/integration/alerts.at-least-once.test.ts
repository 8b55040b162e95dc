/**
 * Alert delivery loses nothing and sends nothing twice: a receiver that is down, then failing, gets every
 * alert once it is back (under the same ids); deliveries past ALERT_RETRY_MAX_AGE fail and are audited;
 * two replicas sharing the outbox never send the same alert twice. Retries are driven by the injectable
 * clock, not by waiting.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'drizzle-orm';
import t from 'tap';
import { selectRows } from '../../src/db/client.js';
import type { AlertCandidate } from '../../src/services/alerts/catalogue.js';
import { api, manualClock, seedAuthUser } from '../helpers/auth.js';
import { createTestDatabase } from '../helpers/db.js';
import { waitFor } from '../helpers/replicas.js';
import { startServer, type TestServer } from '../helpers/server.js';
import { startWebhookReceiver } from '../helpers/webhook-receiver.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

const candidates = (prefix: string, n: number): AlertCandidate[] =>
  Array.from({ length: n }, (_, i) => ({
    type: 'audit_tampering',
    groupKey: `${prefix}-${i}`,
    dedupeKey: `test:${prefix}:${i}`,
    summary: `test alert ${i}`,
    details: { n: i },
    eventIds: [],
  }));

async function drain(server: TestServer) {
  const totals = { delivered: 0, retrying: 0, failed: 0 };
  for (;;) {
    const r = await server.app.keryu.services.alerts.deliver();
    totals.delivered += r.delivered;
    totals.retrying += r.retrying;
    totals.failed += r.failed;
    if (r.delivered + r.retrying + r.failed === 0) return totals;
  }
}

t.test('a receiver down, then answering 500, gets every alert once it is back', async (t) => {
  const receiver = await startWebhookReceiver(SECRET);
  const clock = manualClock();
  const server = await startServer({ clock, env: { ALERT_INTERVAL: '0', ALERT_WEBHOOK_URL: receiver.url, ALERT_WEBHOOK_SECRET: SECRET, ALERT_RETRY_BASE: '10' } });
  t.teardown(async () => {
    await server.close();
    await receiver.close();
  });
  const alerts = server.app.keryu.services.alerts;

  await receiver.down();
  const raised = await alerts.raise(candidates('down', 5));
  t.equal(raised.length, 5);
  t.same(await alerts.raise(candidates('down', 5)), [], 'raising the same alerts again adds nothing');
  t.same(await drain(server), { delivered: 0, retrying: 5, failed: 0 }, 'down: every delivery scheduled for a retry');
  t.same(await drain(server), { delivered: 0, retrying: 0, failed: 0 }, 'nothing is due before the backoff');

  // A login is not slowed or blocked by a receiver that is down: delivery is off the request path.
  await seedAuthUser(server);
  t.equal((await api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: TEST_PASSWORD } })).status, 200);

  await receiver.up();
  receiver.error();
  clock.advance(10);
  t.same(await drain(server), { delivered: 0, retrying: 5, failed: 0 }, 'answering 500: retried again');
  clock.advance(10);
  t.same(await drain(server), { delivered: 0, retrying: 0, failed: 0 }, 'the second retry waits twice as long');

  await receiver.up();
  clock.advance(10);
  t.same(await drain(server), { delivered: 5, retrying: 0, failed: 0 });
  t.same(receiver.rejected, []);
  t.same(receiver.received.map((r) => r.id).sort(), raised.map((a) => a.id).sort(), 'every alert, each once, under its stable id');
  clock.advance(86_400);
  t.same(await drain(server), { delivered: 0, retrying: 0, failed: 0 }, 'delivered alerts are not sent again');

  const listed = await alerts.list({ limit: 10 });
  t.same(
    listed.items.map((a) => a.deliveries.map((d) => [d.state, d.attempts, d.last_error])),
    Array.from({ length: 5 }, () => [['delivered', 3, null]]),
  );
  const audited = await selectRows<{ n: number }>(server.db.database.db, sql`select count(*)::int as n from audit_events where type = 'alert.delivered'`);
  t.equal(audited[0]?.n, 5, 'each delivery audited');
});

t.test('a delivery still failing after ALERT_RETRY_MAX_AGE is given up and audited', async (t) => {
  const receiver = await startWebhookReceiver(SECRET);
  const clock = manualClock();
  const server = await startServer({ clock, env: { ALERT_INTERVAL: '0', ALERT_WEBHOOK_URL: receiver.url, ALERT_WEBHOOK_SECRET: SECRET, ALERT_RETRY_BASE: '60' } });
  t.teardown(async () => {
    await server.close();
    await receiver.close();
  });
  receiver.error();
  const [alert] = await server.app.keryu.services.alerts.raise(candidates('gone', 1));
  let attempts = 0;
  let failed = 0;
  // An hour at most between retries: a day of retrying is about thirty attempts.
  for (let hour = 0; hour <= 25 && !failed; hour++) {
    const r = await drain(server);
    attempts += r.retrying + r.failed;
    failed += r.failed;
    clock.advance(3600);
  }
  t.equal(failed, 1, 'given up');
  t.ok(attempts > 5, `retried with backoff (${attempts} attempts)`);
  const [view] = (await server.app.keryu.services.alerts.list({ limit: 1 })).items;
  t.equal(view?.deliveries[0]?.state, 'failed');
  t.equal(view?.deliveries[0]?.last_error, 'answered HTTP 500');
  const audited = await selectRows<{ details: { alert_id: string; reason: string } }>(server.db.database.db, sql`select details from audit_events where type = 'alert.delivery_failed'`);
  t.same(audited.map((r) => [r.details.alert_id, r.details.reason]), [[alert?.id, 'answered HTTP 500']]);
});

t.test('two replicas never deliver the same alert twice', async (t) => {
  const receiver = await startWebhookReceiver(SECRET);
  const db = await createTestDatabase();
  const env = { ALERT_INTERVAL: '0', ALERT_WEBHOOK_URL: receiver.url, ALERT_WEBHOOK_SECRET: SECRET };
  const a = await startServer({ db, env });
  const b = await startServer({ db, env });
  t.teardown(async () => {
    await a.close();
    await b.close();
    await db.drop();
    await receiver.close();
  });
  const raised = await a.app.keryu.services.alerts.raise(candidates('replicas', 60));
  t.equal(raised.length, 60);
  const [ra, rb] = await Promise.all([drain(a), drain(b)]);
  t.equal(ra.delivered + rb.delivered, 60);
  t.same(receiver.rejected, []);
  const ids = receiver.received.map((r) => r.id);
  t.equal(new Set(ids).size, ids.length, 'no id twice');
  t.same([...ids].sort(), raised.map((x) => x.id).sort(), 'every alert delivered');

  // Evaluation: both replicas at once, one evaluates, the events are judged once.
  await a.app.keryu.services.alerts.evaluate();
  for (let i = 0; i < 5; i++) await a.app.keryu.services.audit.record({ type: 'audit.seal_broken', outcome: 'failure', actor: { type: 'system' }, details: { problem: 'seal_changed', seal: i, source: 'verify' } });
  const both = await Promise.all([a.app.keryu.services.alerts.evaluate(), b.app.keryu.services.alerts.evaluate()]);
  const again = await Promise.all([a.app.keryu.services.alerts.evaluate(), b.app.keryu.services.alerts.evaluate()]);
  t.equal([...both, ...again].reduce((n, r) => n + r.raised.length, 0), 5, 'five events, five alerts');
});

t.test('webhooks follow no redirect', async (t) => {
  const receiver = await startWebhookReceiver(SECRET);
  let redirected = 0;
  const redirector = createServer((_req, res) => {
    redirected++;
    res.writeHead(307, { location: receiver.url }).end();
  });
  await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
  const port = (redirector.address() as AddressInfo).port;
  const server = await startServer({ env: { ALERT_INTERVAL: '0', ALERT_WEBHOOK_URL: `http://127.0.0.1:${port}/hook`, ALERT_WEBHOOK_SECRET: SECRET } });
  t.teardown(async () => {
    await server.close();
    await receiver.close();
    await new Promise<void>((resolve) => redirector.close(() => resolve()));
  });
  await server.app.keryu.services.alerts.raise(candidates('redirect', 1));
  t.same(await drain(server), { delivered: 0, retrying: 1, failed: 0 });
  t.equal(redirected, 1);
  t.same(receiver.received, [], 'the redirect target got nothing');
  const [view] = (await server.app.keryu.services.alerts.list({ limit: 1 })).items;
  t.equal(view?.deliveries[0]?.last_error, 'answered HTTP 307');
});

t.test('the running server evaluates and delivers on its own (ALERT_INTERVAL)', async (t) => {
  const receiver = await startWebhookReceiver(SECRET);
  const server = await startServer({ env: { ALERT_INTERVAL: '1', ALERT_WEBHOOK_URL: receiver.url, ALERT_WEBHOOK_SECRET: SECRET } });
  t.teardown(async () => {
    await server.close();
    await receiver.close();
  });
  await server.app.keryu.services.audit.record({ type: 'audit.seal_broken', outcome: 'failure', actor: { type: 'system' }, details: { problem: 'seal_changed', message: 'seal 9 rewritten', seal: 9, source: 'seal' } });
  const got = await waitFor(async () => receiver.received.find((r) => r.body.type === 'audit_tampering'), 20_000, 'the audit_tampering webhook');
  t.equal(got.body.severity, 'critical');
  t.match(String(got.body.summary), /seal 9 rewritten/);
});
