/**
 * Consistency across replicas: a revocation made through one server process stops being allowed on a second
 * process within one second (LISTEN/NOTIFY), also after the notification connection was lost and came back.
 * PostgreSQL only: PGlite is single-process.
 */
import t from 'tap';
import postgres from 'postgres';
import { onPostgres } from '../helpers/db.js';
import { startServerProcess } from '../helpers/process.js';
import { apiClient, serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer } from '../helpers/server.js';

async function until(fn: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await fn()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
  return Number.POSITIVE_INFINITY;
}

t.test('a revoked permission stops being allowed on another replica within a second', { skip: onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL): PGlite is single-process' }, async (t) => {
  const a = await startServer();
  t.teardown(() => a.close());
  const b = await startServerProcess({ databaseUrl: a.db.url as string, issuer: a.issuer });
  t.teardown(() => b.stop());

  const root = await serviceAccount(a, ['admin']);
  await root.api('POST', '/api/auth/permissions/', { name: 'Edit', codename: 'documents.edit' });
  const editor = await root.api('POST', '/api/auth/roles/', { name: 'editor', permissions: ['documents.edit'] });
  const alice = await userWithToken(a, 'alice@example.com', ['editor']);
  const onB = apiClient(b.origin, alice.token);
  const allowedOnB = async () => (await onB('POST', '/api/auth/check/', { permission: 'documents.edit' })).body.allowed === true;

  t.equal(await allowedOnB(), true, 'allowed on B (and now cached there)');
  t.equal(await allowedOnB(), true, 'from the cache');

  t.equal((await root.api('DELETE', `/api/auth/users/${alice.user.id}/roles/${editor.body.id}/`)).status, 204);
  const elapsed = await until(async () => !(await allowedOnB()), 1000);
  t.ok(elapsed < 1000, `B stopped allowing within ${elapsed} ms`);

  // Lose every notification connection, change something at once, and B must still not answer stale.
  t.equal((await root.api('POST', `/api/auth/users/${alice.user.id}/roles/`, { role: 'editor' })).status, 201);
  t.ok((await until(allowedOnB, 1000)) < 1000, 'granted again, seen on B');
  const admin = postgres(a.db.url as string, { max: 1, onnotice: () => {} });
  t.teardown(() => admin.end());
  const killed = await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'keryu-auth-listen' and datname = current_database()`;
  t.ok(killed.length >= 2, 'both replicas lost their LISTEN connection');
  t.equal((await root.api('DELETE', `/api/auth/users/${alice.user.id}/roles/${editor.body.id}/`)).status, 204);
  const afterLoss = await until(async () => !(await allowedOnB()), 1000);
  t.ok(afterLoss < 1000, `no stale answer after a lost connection (${afterLoss} ms)`);
  await new Promise((r) => setTimeout(r, 500));
  const back = await admin`select count(*)::int as n from pg_stat_activity where application_name = 'keryu-auth-listen' and datname = current_database()`;
  t.equal(back[0]?.n, 2, 'both replicas listen again');
  t.equal((await root.api('POST', `/api/auth/users/${alice.user.id}/roles/`, { role: 'editor' })).status, 201);
  t.ok((await until(allowedOnB, 1000)) < 1000, 'notifications flow again after the reconnect');
});
