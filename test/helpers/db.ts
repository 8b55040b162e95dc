/**
 * Databases for tests. Every test file gets a database of its own, so files run concurrently without
 * seeing each other's rows: a fresh PostgreSQL database on the server named by TEST_DATABASE_URL, or an
 * in-memory PGlite when it is unset. `createDatabase` is the one place that creates and drops a PostgreSQL
 * database, on the shared server or on a fault test's own cluster.
 *
 * A migrated database is copied from a template (CREATE DATABASE ... TEMPLATE) instead of migrating each
 * one, which costs a fraction of running the migrations. The template is named after a digest of the
 * migration files, so a changed or added migration builds a new one; it is built once per server, under
 * an advisory lock, and nothing connects to it afterwards (PostgreSQL refuses to copy a database in use).
 *
 * Test databases are an installation whose built-in `admin` role does not require MFA (`testInstallation`):
 * a new installation's admin requires it, which only the tests of that default and of MFA want (they make
 * their own installation, or set the role's `mfa_required`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { openDatabase, type Database } from '../../src/db/client.js';
import { migrationsFolder, runMigrations } from '../../src/db/migrate.js';
import { ensureBuiltins } from '../../src/services/rbac/builtins.js';

/** What the template holds besides the migrations; a change here must name a new template. */
const TEMPLATE_FIXTURE = 'builtins with admin mfa_required=false';

/** Migrates, then creates the built-in roles as an installation whose admin signs in with a password alone. */
export async function testInstallation(database: Database): Promise<void> {
  await runMigrations(database);
  await ensureBuiltins(database.db, { adminMfaRequired: false });
}

export interface TestDatabase {
  database: Database;
  /** The connection URL, when the test runs on PostgreSQL (child processes can share it). */
  url: string | undefined;
  kind: 'postgres' | 'pglite';
  drop(): Promise<void>;
}

export interface CreatedDatabase {
  name: string;
  url: string;
  /** Drops the database, ending any session still connected to it. */
  drop(): Promise<void>;
}

export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined;
export const onPostgres = testDatabaseUrl !== undefined;

/** Runs `work` on a one-connection session to the server's maintenance database, then closes it. */
async function withServer<T>(serverUrl: string, work: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(serverUrl, { max: 1, onnotice: () => {} });
  try {
    return await work(sql);
  } finally {
    await sql.end();
  }
}

/**
 * Creates a database on the PostgreSQL server at `serverUrl`: empty (what `create database` gives), or a
 * copy of `template`. The name is random unless given.
 */
export async function createDatabase(serverUrl: string, options: { name?: string; template?: string } = {}): Promise<CreatedDatabase> {
  const name = options.name ?? `keryu_test_${randomBytes(6).toString('hex')}`;
  await withServer(serverUrl, (sql) => sql.unsafe(`create database ${name}${options.template ? ` template ${options.template}` : ''}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withServer(serverUrl, (sql) => sql.unsafe(`drop database if exists ${name} with (force)`)).then(() => undefined),
  };
}

/** The name of the template holding the current migrations: a digest of every file they are read from. */
function templateName(): string {
  const digest = createHash('sha256');
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else digest.update(entry.name).update(readFileSync(path));
    }
  };
  walk(migrationsFolder);
  digest.update(TEMPLATE_FIXTURE);
  return `keryu_template_${digest.digest('hex').slice(0, 16)}`;
}

const templates = new Map<string, Promise<string>>();

/** The migrated template on the server at `serverUrl`, built on first use by whichever test process gets there first. */
export function migratedTemplate(serverUrl: string): Promise<string> {
  let template = templates.get(serverUrl);
  if (!template) {
    template = buildTemplate(serverUrl);
    templates.set(serverUrl, template);
  }
  return template;
}

async function buildTemplate(serverUrl: string): Promise<string> {
  const name = templateName();
  await withServer(serverUrl, async (sql) => {
    const ready = async () => (await sql`select datistemplate from pg_database where datname = ${name}`)[0]?.datistemplate === true;
    if (await ready()) return;
    // One builder at a time across processes; the others wait here and then find it ready.
    await sql`select pg_advisory_lock(hashtext(${name}))`;
    try {
      if (await ready()) return;
      // A build that died half-way left a database not marked as template: start over.
      await sql.unsafe(`drop database if exists ${name} with (force)`);
      await sql.unsafe(`create database ${name}`);
      const url = new URL(serverUrl);
      url.pathname = `/${name}`;
      const database = await openDatabase({ kind: 'postgres', url: url.toString(), poolSize: 1 });
      try {
        await testInstallation(database);
      } finally {
        await database.close();
      }
      // Marked last: only a complete template is ever copied.
      await sql.unsafe(`alter database ${name} is_template true`);
    } finally {
      await sql`select pg_advisory_unlock(hashtext(${name}))`;
    }
  });
  return name;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  if (!testDatabaseUrl) {
    const database = await openDatabase({ kind: 'pglite', dir: 'memory://' });
    await testInstallation(database);
    return { database, url: undefined, kind: 'pglite', drop: () => database.close() };
  }
  const created = await createDatabase(testDatabaseUrl, { template: await migratedTemplate(testDatabaseUrl) });
  // A test database outlives no crash of the server: its commits need not wait for the WAL flush (a few ms
  // each on this disk, thousands of commits in the suite). Every session on it, the server processes' too,
  // takes the setting; what other sessions see is unchanged (the commit is visible at once either way).
  await withServer(testDatabaseUrl, (sql) => sql.unsafe(`alter database ${created.name} set synchronous_commit = off`));
  // Connecting (TCP, start-up, the server's first ReadyForQuery) may take 10 s here, not the product's 2 s: with
  // three test files, Chromium and child servers on two cores, a test process or a new server backend can be off
  // the CPU that long (a CI run failed on it once). Outage tests open their own databases with their own timeouts.
  const database = await openDatabase({ kind: 'postgres', url: created.url, poolSize: 5, connectTimeoutSeconds: 10 });
  return {
    database,
    url: created.url,
    kind: 'postgres',
    async drop() {
      await database.close();
      await created.drop();
    },
  };
}
