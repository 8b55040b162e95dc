/**
 * Healing after a whole-database outage: once PostgreSQL is back, both replicas serve decisions again without
 * a restart, their LISTEN connections for the decision cache reconnect, and a revocation made on one replica is
 * seen by a decision on the other. Runs on a cluster of its own on a spare port (the shared server is never
 * stopped).
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import t from 'tap';
import { openDatabase } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';
import { createClusterDatabase, postgresBinaries, startPostgresCluster } from '../helpers/fault-servers.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { apiClient, serviceAccount, userWithToken } from '../helpers/rbac.js';
import { startServer, type TestServer } from '../helpers/server.js';

const bin = postgresBinaries();

async function until(fn: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await fn().catch(() => false)) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 50));
  }
  return Number.POSITIVE_INFINITY;
}

t.test('after PostgreSQL returns, replicas serve decisions again and the LISTEN connections reconnect', { skip: bin ? false : 'needs the PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql)' }, async (t) => {
  const cluster = await startPostgresCluster(bin!);
  const url = await createClusterDatabase(cluster, `keryu_heal_${randomBytes(4).toString('hex')}`);
  const database = await openDatabase({ kind: 'postgres', url, poolSize: 5 });
  await runMigrations(database);
  const running: { a?: TestServer; b?: ServerProcess } = {};
  t.teardown(async () => {
    await Promise.allSettled([running.a?.close(), running.b?.stop()]);
    await cluster.remove();
  });
  const serverA = (running.a = await startServer({ db: { database, url, kind: 'postgres', drop: () => database.close() } }));
  const b = (running.b = await startServerProcess({ databaseUrl: url, issuer: serverA.issuer }));

  const root = await serviceAccount(serverA, ['admin']);
  await root.api('POST', '/api/auth/permissions/', { name: 'Edit', codename: 'documents.edit' });
  const editor = await root.api('POST', '/api/auth/roles/', { name: 'editor', permissions: ['documents.edit'] });
  const alice = await userWithToken(serverA, 'alice@example.com', ['editor']);
  const onB = apiClient(b.origin, alice.token);
  const allowedOnB = async () => (await onB('POST', '/api/auth/check/', { permission: 'documents.edit' })).body.allowed === true;
  t.equal(await allowedOnB(), true, 'allowed on B (and cached there)');

  await cluster.stop();
  await new Promise((r) => setTimeout(r, 1500));
  const whileDown = await onB('POST', '/api/auth/check/', { permission: 'documents.edit' });
  t.equal(whileDown.status, 503, 'a decision that needs the database is refused with 503 while it is down');
  await cluster.start();

  t.ok((await until(allowedOnB, 15_000)) < 15_000, 'B decides again after the database returns, without a restart');
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  t.teardown(() => admin.end());
  const listening = async () =>
    (await admin<Array<{ n: number }>>`select count(*)::int as n from pg_stat_activity where application_name = 'keryu-auth-listen' and datname = current_database()`)[0]?.n === 2;
  t.ok((await until(listening, 15_000)) < 15_000, 'both replicas LISTEN again');

  t.equal((await root.api('DELETE', `/api/auth/users/${alice.user.id}/roles/${editor.body.id}/`)).status, 204, 'revoked on A');
  t.ok((await until(async () => !(await allowedOnB()), 2000)) < 2000, 'a decision on B sees the revocation (the notification arrived)');
});
