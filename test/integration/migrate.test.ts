/**
 * Migrations across replicas: several processes starting together on a fresh database apply each
 * migration exactly once (the advisory lock in runMigrations), and MIGRATE_ON_START=false never touches
 * the schema: a server started that way on an empty database stays alive and unready (no crash loop) until
 * the migrations Job has applied them, then starts.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { openDatabase, type Database } from '../../src/db/client.js';
import { migrationsFolder, runMigrations } from '../../src/db/migrate.js';
import { onPostgres } from '../helpers/db.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { createEmptyDatabase, waitFor } from '../helpers/replicas.js';

const SKIP = onPostgres ? false : 'needs PostgreSQL (TEST_DATABASE_URL)';

interface Journal {
  entries: Array<{ idx: number; tag: string; when: number }>;
}

async function migrationFiles() {
  const files = (await readdir(migrationsFolder)).filter((f) => f.endsWith('.sql')).sort();
  const journal = JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as Journal;
  return { files, journal };
}

/** What a migration run leaves behind: the bookkeeping rows and our tables. */
async function inspect(url: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const [{ exists } = { exists: false }] = await sql<Array<{ exists: boolean }>>`
      select to_regclass('drizzle.__drizzle_migrations') is not null as exists`;
    const migrations = exists
      ? await sql<Array<{ hash: string; created_at: string }>>`select hash, created_at from drizzle.__drizzle_migrations order by created_at`
      : [];
    const tables = await sql<Array<{ table_name: string }>>`
      select table_name from information_schema.tables where table_schema = 'public' order by table_name`;
    return { bookkeeping: exists, migrations: [...migrations], tables: tables.map((r) => r.table_name) };
  } finally {
    await sql.end();
  }
}

t.test('runMigrations from 4 connections at once applies each migration once', { skip: SKIP }, async (t) => {
  const empty = await createEmptyDatabase();
  const databases: Database[] = [];
  t.teardown(async () => {
    try {
      await Promise.allSettled(databases.map((d) => d.close()));
    } finally {
      await empty.drop();
    }
  });
  for (let i = 0; i < 4; i++) databases.push(await openDatabase({ kind: 'postgres', url: empty.url, poolSize: 1 }));

  const results = await Promise.allSettled(databases.map((d) => runMigrations(d)));
  t.same(
    results.map((r) => (r.status === 'fulfilled' ? 'ok' : String((r.reason as Error).message))),
    ['ok', 'ok', 'ok', 'ok'],
    'all four concurrent runs succeed',
  );

  const { files, journal } = await migrationFiles();
  t.equal(journal.entries.length, files.length, 'the journal lists every migration file');
  const after = await inspect(empty.url);
  t.equal(after.migrations.length, files.length, `one bookkeeping row per migration file (${files.length})`);
  t.equal(new Set(after.migrations.map((m) => m.hash)).size, files.length, 'no migration recorded twice');
  t.same(
    after.migrations.map((m) => Number(m.created_at)),
    journal.entries.map((e) => e.when),
    'the rows are the journal entries, in order',
  );
  for (const table of ['users', 'clients', 'resource_servers', 'signing_keys', 'oidc_payloads', 'oidc_revoked_grants', 'audit_events']) {
    t.ok(after.tables.includes(table), `table ${table} exists`);
  }

  // Running again (a later start) finds nothing to do.
  await runMigrations(databases[0]!);
  t.equal((await inspect(empty.url)).migrations.length, files.length, 'a second run adds nothing');
});

t.test('MIGRATE_ON_START=false waits, unready, for the migrations Job, then starts', { skip: SKIP }, async (t) => {
  const empty = await createEmptyDatabase();
  let server: ServerProcess | undefined;
  t.teardown(async () => {
    try {
      await server?.stop();
    } finally {
      await empty.drop();
    }
  });

  server = await startServerProcess({ databaseUrl: empty.url, env: { MIGRATE_ON_START: 'false' }, until: 'live' });
  const waiting = server;
  t.equal((await fetch(`${waiting.origin}/healthz`)).status, 200, 'alive: liveness never restarts a replica waiting for its schema');
  const unready = await fetch(`${waiting.origin}/readyz`);
  t.equal(unready.status, 503, 'but not ready');
  t.same(await unready.json(), { status: 'unready', failing: ['migrations'] }, 'and it says why');
  t.match(waiting.output(), /the database schema is not current and MIGRATE_ON_START=false: run \\"keryu migrate\\"/, 'the log names the cause, the setting and what to do');

  const untouched = await inspect(empty.url);
  t.equal(untouched.bookkeeping, false, 'no drizzle migrations table was created');
  t.same(untouched.tables, [], 'no table was created');

  // The migrations Job runs (in another process: here, another connection).
  const job = await openDatabase({ kind: 'postgres', url: empty.url, poolSize: 1 });
  try {
    await runMigrations(job);
  } finally {
    await job.close();
  }
  await waitFor(async () => ((await fetch(`${waiting.origin}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined), 30_000, 'readiness after the migrations');
  t.equal(waiting.child.exitCode, null, 'the same process, never restarted');
  const discovery = await fetch(`${waiting.issuer}/.well-known/openid-configuration`);
  t.equal(discovery.status, 200, 'and it serves');
  await waiting.stop();
  t.equal(waiting.child.exitCode, 0, 'SIGTERM ends it cleanly');
  server = undefined;
});

t.test('MIGRATE_ON_START=true (the default) migrates an empty database at start-up', { skip: SKIP }, async (t) => {
  const empty = await createEmptyDatabase();
  t.teardown(() => empty.drop());
  const server = await startServerProcess({ databaseUrl: empty.url });
  t.teardown(() => server.stop());
  const ready = await fetch(`${server.origin}/readyz`);
  t.equal(ready.status, 200, 'with migrations on start, the server starts');
  const { files } = await migrationFiles();
  t.equal((await inspect(empty.url)).migrations.length, files.length, 'and applied every migration');
});
