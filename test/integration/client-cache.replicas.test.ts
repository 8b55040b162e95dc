/**
 * Client metadata is cached in each replica; a change made anywhere reaches every replica through LISTEN/NOTIFY:
 * a rotated secret stops working and a deleted client stops authenticating on a second server process within a
 * second, also right after the notification connection was lost (the cache is bypassed until it is back).
 * One LISTEN connection per replica carries both the authorization and the client channels.
 * PostgreSQL only: PGlite is single-process.
 */
import t from 'tap';
import postgres from 'postgres';
import { bootstrapSchema } from '../../src/services/bootstrap.js';
import { onPostgres } from '../helpers/db.js';
import { seedClient } from '../helpers/oidc.js';
import { startServerProcess } from '../helpers/process.js';
import { tokenRequest } from '../helpers/replicas.js';
import { startServer } from '../helpers/server.js';

async function until(fn: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await fn()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 25));
  }
  return Number.POSITIVE_INFINITY;
}

t.test('client changes reach every replica through the cache', { skip: onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL): PGlite is single-process' }, async (t) => {
  const a = await startServer();
  t.teardown(() => a.close());
  const b = await startServerProcess({ databaseUrl: a.db.url as string, issuer: a.issuer });
  t.teardown(() => b.stop());
  const admin = postgres(a.db.url as string, { max: 1, onnotice: () => {} });
  t.teardown(() => admin.end());

  const declared = { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined };
  const seeded = await seedClient(a, declared);
  const clientId = seeded.clientId;
  const oldSecret = seeded.clientSecret as string;
  const grant = async (secret: string) => (await tokenRequest(b, { clientId, clientSecret: secret }, { grant_type: 'client_credentials' })).status;

  t.equal(await grant(oldSecret), 200, 'B issues a token (and caches the client)');
  t.equal(await grant(oldSecret), 200, 'again, from the cache');
  const listeners = async () =>
    (await admin<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where application_name = 'keryu-auth-listen' and datname = current_database()`)[0]?.n;
  t.equal(await listeners(), 2, 'one LISTEN connection per replica, shared by the authorization and client channels');

  // Rotate the secret through the bootstrap path (an operator redeploying with a new secret), on replica A.
  const newSecret = 'a-rotated-client-secret-0123456789abcdefghij';
  const rotate = async (secret: string) =>
    a.app.keryu.services.bootstrap.applyBootstrap(bootstrapSchema.parse({ clients: [{ client_id: clientId, client_secret: secret, ...declared }] }), { type: 'system' }, 'test');
  t.same((await rotate(newSecret)).clients, { [clientId]: 'updated' });
  const rotated = await until(async () => (await grant(oldSecret)) === 401, 1000);
  t.ok(rotated < 1000, `B refused the old secret within ${rotated} ms`);
  t.equal(await grant(newSecret), 200, 'B accepts the new secret');

  // Lose every notification connection and rotate at once: B must not keep answering from a stale entry.
  const killed = await admin`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'keryu-auth-listen' and datname = current_database()`;
  t.equal(killed.length, 2, 'both replicas lost their LISTEN connection');
  t.same((await rotate(oldSecret)).clients, { [clientId]: 'updated' });
  const afterLoss = await until(async () => (await grant(newSecret)) === 401, 1000);
  t.ok(afterLoss < 1000, `no stale secret after a lost connection (${afterLoss} ms)`);
  t.equal(await grant(oldSecret), 200, 'the secret rotated back works');
  t.ok((await until(async () => (await listeners()) === 2, 3000)) < 3000, 'both replicas listen again');

  // An operator deletes the client with SQL: every replica stops authenticating it.
  t.equal(await grant(oldSecret), 200, 'cached again on B');
  await admin`delete from clients where client_id = ${clientId}`;
  const deleted = await until(async () => (await grant(oldSecret)) === 401, 1000);
  t.ok(deleted < 1000, `B refused the deleted client within ${deleted} ms`);
});
