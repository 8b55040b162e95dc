/**
 * Applies the SQL migrations in drizzle/. On PostgreSQL the run holds a session-level advisory lock, so
 * replicas starting together apply each migration once; the others wait and then find nothing to do.
 */
import { fileURLToPath } from 'node:url';
import { sql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import { selectRows, type Database } from './client.js';

export const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Arbitrary but fixed: the advisory lock key that serializes migrations ("keryu" in ASCII). */
export const MIGRATION_LOCK_KEY = 0x6b65727975;

export async function runMigrations(database: Database): Promise<void> {
  const { target } = database;
  if (target.kind === 'pglite') {
    // PGlite is single-process: no other replica can race us.
    if (!database.pglite) throw new Error('embedded database handle missing');
    await migratePglite(drizzlePglite(database.pglite), { migrationsFolder });
    return;
  }
  // A dedicated single connection: an advisory lock belongs to the session that took it.
  const client = postgres(target.url, { max: 1, onnotice: () => {} });
  try {
    await client`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`;
    try {
      await migratePostgres(drizzlePostgres(client), { migrationsFolder });
    } finally {
      await client`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`;
    }
  } finally {
    await client.end({ timeout: 5 });
  }
}

/**
 * How many of this release's migrations the database has not applied yet (0 = the schema is current).
 * Follows drizzle's own rule: a migration is applied when the newest bookkeeping row is at least as new
 * as its folder timestamp. A newer release's migrations already applied (rolling upgrade) count as current.
 */
export async function countPendingMigrations(database: Database): Promise<number> {
  const migrations = readMigrationFiles({ migrationsFolder });
  const [table] = await selectRows<{ exists: boolean }>(database.db, sql`select to_regclass('drizzle.__drizzle_migrations') is not null as exists`);
  if (!table?.exists) return migrations.length;
  const [last] = await selectRows<{ created_at: string | null }>(database.db, sql`select max(created_at)::text as created_at from drizzle.__drizzle_migrations`);
  const appliedUpTo = last?.created_at ? Number(last.created_at) : -Infinity;
  return migrations.filter((m) => m.folderMillis > appliedUpTo).length;
}
