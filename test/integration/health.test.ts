/**
 * Probes of a running app: `/healthz` never depends on the database; `/readyz` reports the database when
 * it cannot be reached and `draining` once shutdown began.
 */
import t from 'tap';
import { createTestDatabase } from '../helpers/db.js';
import { startServer } from '../helpers/server.js';

t.test('ready, then draining', async (t) => {
  const server = await startServer();
  t.teardown(() => server.close());
  const ready = await fetch(`${server.origin}/readyz`);
  t.equal(ready.status, 200);
  t.same(await ready.json(), { status: 'ready' });
  t.equal(ready.headers.get('cache-control'), 'no-store', 'a probe answer is never cached on the way');
  server.app.keryu.drain();
  const draining = await fetch(`${server.origin}/readyz`);
  t.equal(draining.status, 503);
  t.same(await draining.json(), { status: 'unready', failing: ['draining'] });
  t.equal((await fetch(`${server.origin}/healthz`)).status, 200, 'still alive');
  t.equal((await fetch(`${server.issuer}/.well-known/openid-configuration`)).status, 200, 'and still serving');
});

t.test('a database that cannot be reached makes the replica unready, not dead', async (t) => {
  const db = await createTestDatabase();
  const server = await startServer({ db });
  t.teardown(async () => {
    await server.close();
    await db.drop();
  });
  t.equal((await fetch(`${server.origin}/readyz`)).status, 200);
  await db.database.close();
  // The answer before the outage may be reused for up to a second; the next one reports it.
  let body: unknown;
  for (let i = 0; i < 100 && !body; i++) {
    const res = await fetch(`${server.origin}/readyz`);
    if (res.status === 503) body = await res.json();
    else await new Promise((r) => setTimeout(r, 50));
  }
  t.same(body, { status: 'unready', failing: ['database'] });
  const live = await fetch(`${server.origin}/healthz`);
  t.equal(live.status, 200, 'liveness does not touch the database');
  t.same(await live.json(), { status: 'ok' });
});
