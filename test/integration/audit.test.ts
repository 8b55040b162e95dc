import t from 'tap';
import { auditEvents } from '../../src/db/schema/index.js';
import { createAuditService } from '../../src/services/audit.js';
import { createTestDatabase } from '../helpers/db.js';

t.test('audit events are stored with their context, in batches, and are append-only', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const errors: unknown[] = [];
  const audit = createAuditService({ db: db.database.db, log: { error: (obj) => errors.push(obj) } });

  await Promise.all(
    Array.from({ length: 25 }, (_, i) =>
      audit.record({
        type: 'login',
        outcome: i % 2 ? 'failure' : 'success',
        actor: { type: 'user', id: `u${i}` },
        context: { ip: i === 0 ? 'not-an-ip' : '127.0.0.1', userAgent: 'tap', requestId: `r${i}` },
        details: { password: 'secret-value' },
      }),
    ),
  );
  const rows = await db.database.db.select().from(auditEvents);
  t.equal(rows.length, 25);
  t.equal(errors.length, 0);
  t.ok(rows.every((r) => (r.details as { password?: string }).password === '[redacted]'), 'secrets stripped before storage');
  t.equal(rows.filter((r) => r.ip === null).length, 1, 'an invalid IP is stored as null, not a failed batch');

  const failure = (p: Promise<unknown>) =>
    p.then(
      () => 'succeeded',
      (err: Error & { cause?: Error }) => `${err.message} ${err.cause?.message ?? ''}`,
    );
  t.match(await failure(db.database.db.update(auditEvents).set({ type: 'tampered' })), /append-only/, 'UPDATE refused');
  t.match(await failure(db.database.db.delete(auditEvents)), /append-only/, 'DELETE refused');
  t.equal((await db.database.db.select().from(auditEvents)).length, 25);
});

t.test('observers see every recorded event and every failed write; a faulty observer costs nothing', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const audit = createAuditService({ db: db.database.db, log: { error: () => {} } });
  const seen: string[] = [];
  const failed: number[] = [];
  audit.observe({
    recorded() {
      throw new Error('a broken observer');
    },
  });
  const stop = audit.observe({ recorded: (e) => seen.push(e.type), writeFailed: (n) => failed.push(n) });
  const event = { type: 'login', outcome: 'success', actor: { type: 'system' } } as const;
  const pending = audit.record(event);
  t.equal(audit.queueDepth(), 1, 'queued until the next tick');
  await pending;
  t.equal(audit.queueDepth(), 0);
  t.same(seen, ['login'], 'the event was seen, and stored despite the broken observer');

  // A constraint violation: the write of the batch fails.
  await t.rejects(audit.record({ ...event, actor: { type: 'system' }, details: { x: '\u0000' } }));
  t.same(failed, [1], 'one failed write of one event');
  stop();
  await audit.record(event);
  t.same(seen, ['login', 'login'], 'a removed observer sees nothing more');
});

t.test('events whose write meets an unavailable database are held and written once it answers; beyond the bound the oldest are dropped and counted', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  // The database refuses connections for the first writes (as postgres-js reports it), then answers again.
  let refusals = 3;
  const real = db.database.db;
  const flaky = new Proxy(real, {
    get(target, key, receiver) {
      // The audit writer's one statement goes through execute().
      if (key === 'execute' && refusals > 0) {
        refusals--;
        return () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }));
      }
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  const errors: object[] = [];
  const audit = createAuditService({ db: flaky, log: { error: (obj) => errors.push(obj) } });
  const failed: number[] = [];
  audit.observe({ writeFailed: (n) => failed.push(n) });
  const event = { type: 'oidc.grant', outcome: 'success', actor: { type: 'client', id: 'svc' } } as const;
  const outcomes = await Promise.allSettled([audit.record(event), audit.record(event)]);
  t.same(outcomes.map((o) => o.status), ['rejected', 'rejected'], 'a recorder awaiting its event learns at once that it is not stored yet');
  t.same(failed, [2], 'the failed write is counted once per event, not once per retry');
  await audit.flush();
  t.equal(refusals, 0, 'the write was retried until the database answered');
  t.equal((await real.select().from(auditEvents)).length, 2, 'both events were written once the database answered');

  // A bound of 3 held events: a longer outage drops the oldest, counted and logged.
  refusals = 1_000_000;
  const bounded = createAuditService({ db: flaky, log: { error: (obj) => errors.push(obj) }, maxHeld: 3 });
  const dropped: number[] = [];
  bounded.observe({ dropped: (n) => dropped.push(n) });
  await Promise.allSettled(Array.from({ length: 5 }, () => bounded.record(event)));
  t.equal(bounded.queueDepth(), 3, 'no more than the bound is held');
  t.equal(dropped.reduce((a, b) => a + b, 0), 2, 'the two oldest were dropped and counted');
  t.ok(errors.some((e) => 'held' in e && !('err' in e)), 'and the drop was logged');
  refusals = 0;
  await bounded.flush();
  t.equal((await real.select().from(auditEvents)).length, 5, 'the held three were written once the database answered');
});
