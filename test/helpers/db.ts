/**
 * An isolated database per test: a fresh PostgreSQL database on the server named by TEST_DATABASE_URL, or
 * an in-memory PGlite when it is unset. Migrations are applied; `drop()` removes everything.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { openDatabase, type Database } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';

export interface TestDatabase {
  database: Database;
  /** The connection URL, when the test runs on PostgreSQL (child processes can share it). */
  url: string | undefined;
  kind: 'postgres' | 'pglite';
  drop(): Promise<void>;
}

export const testDatabaseUrl = process.env.TEST_DATABASE_URL || undefined;
export const onPostgres = testDatabaseUrl !== undefined;

export async function createTestDatabase(): Promise<TestDatabase> {
  if (!testDatabaseUrl) {
    const database = await openDatabase({ kind: 'pglite', dir: 'memory://' });
    await runMigrations(database);
    return { database, url: undefined, kind: 'pglite', drop: () => database.close() };
  }
  const name = `keryu_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(testDatabaseUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(testDatabaseUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({ kind: 'postgres', url: url.toString(), poolSize: 5 });
  await runMigrations(database);
  return {
    database,
    url: url.toString(),
    kind: 'postgres',
    async drop() {
      await database.close();
      const cleanup = postgres(testDatabaseUrl, { max: 1, onnotice: () => {} });
      await cleanup.unsafe(`drop database if exists ${name} with (force)`);
      await cleanup.end();
    },
  };
}
