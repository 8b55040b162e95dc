/**
 * Opens the database: PostgreSQL through the `postgres` driver when a URL is given, otherwise embedded
 * PGlite. Both speak the same drizzle schema, so nothing above this module knows which one it has.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import type { SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
/** A transaction handle; query functions accept `Db | Tx` so callers decide the transaction boundary. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export type DatabaseTarget = { kind: 'postgres'; url: string; poolSize?: number } | { kind: 'pglite'; dir: string };

export interface Database {
  readonly db: Db;
  readonly target: DatabaseTarget;
  /** The embedded instance, when there is one (the migrator needs it). */
  readonly pglite?: PGlite;
  close(): Promise<void>;
}

export function databaseTarget(config: { databaseUrl?: string | undefined; databasePoolSize: number; dataDir: string }): DatabaseTarget {
  return config.databaseUrl
    ? { kind: 'postgres', url: config.databaseUrl, poolSize: config.databasePoolSize }
    : { kind: 'pglite', dir: join(config.dataDir, 'pglite') };
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  if (target.kind === 'postgres') {
    const client = postgres(target.url, {
      max: target.poolSize ?? 10,
      onnotice: () => {},
      // Identifies our connections in pg_stat_activity.
      connection: { application_name: 'keryu-auth' },
    });
    const db = drizzlePostgres(client, { schema }) as unknown as Db;
    return { db, target, close: () => client.end({ timeout: 5 }) };
  }
  if (!target.dir.startsWith('memory://')) await mkdir(target.dir, { recursive: true });
  const pglite = new PGlite(target.dir);
  const db = drizzlePglite(pglite, { schema }) as unknown as Db;
  return { db, target, pglite, close: () => pglite.close() };
}

/**
 * Runs raw SQL and returns its rows. The two drivers shape raw results differently (postgres-js: an array;
 * PGlite: `{ rows }`); everything else goes through the query builder, which hides that.
 */
export async function selectRows<T extends Record<string, unknown>>(db: DbOrTx, query: SQL): Promise<T[]> {
  const result: unknown = await db.execute(query);
  return (Array.isArray(result) ? result : ((result as { rows?: unknown[] }).rows ?? [])) as T[];
}
