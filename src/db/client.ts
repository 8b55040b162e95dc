/**
 * Opens the database: PostgreSQL through the `postgres` driver when a URL is given, otherwise embedded
 * PGlite. Both speak the same drizzle schema, so nothing above this module knows which one it has.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql, type SQL } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { preparingEveryQuery } from './prepared-statements.js';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
export type Db = PgDatabase<PgQueryResultHKT, Schema>;
/** A transaction handle; query functions accept `Db | Tx` so callers decide the transaction boundary. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type DbOrTx = Db | Tx;

export type DatabaseTarget =
  | { kind: 'postgres'; url: string; poolSize?: number; connectTimeoutSeconds?: number; statementTimeoutSeconds?: number }
  | { kind: 'pglite'; dir: string };

/** Defaults when a target does not say (tests, tools): a dead server is noticed in seconds, never waited on. */
const CONNECT_TIMEOUT_SECONDS = 2;

export interface Database {
  readonly db: Db;
  readonly target: DatabaseTarget;
  /** The embedded instance, when there is one (the migrator needs it). */
  readonly pglite?: PGlite;
  /**
   * Subscribes to a NOTIFY channel. `onUp` runs once the subscription is live (again, after a lost
   * connection); `onDown` as soon as it is lost, so callers stop trusting what notifications keep fresh.
   * Send with `notify(tx, channel, payload)` inside the writing transaction: delivery follows the commit.
   */
  listen(channel: string, handlers: ListenHandlers): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

export interface ListenHandlers {
  onNotify(payload: string): void;
  onUp(): void;
  onDown(): void;
}

/** Reconnect back-off for a lost LISTEN connection: fast first (a blip), capped so a dead server is not hammered. */
const LISTEN_RETRY_MS = { first: 100, max: 2000 };

/**
 * LISTEN on one dedicated connection per process, shared by every channel and subscriber (postgres-js' built-in
 * `listen` reconnects silently, but we must know when notifications may have been missed). After a lost
 * connection every channel is listened to again and every subscriber told `onUp`.
 */
function postgresListener(url: string) {
  const subscriptions = new Set<{ channel: string; handlers: ListenHandlers }>();
  const quote = (channel: string) => `"${channel.replace(/"/g, '""')}"`;
  let client: ReturnType<typeof postgres> | undefined;
  let up = false;
  let connecting: Promise<void> | undefined;
  let retry: NodeJS.Timeout | undefined;
  let delay = LISTEN_RETRY_MS.first;

  function open(): ReturnType<typeof postgres> {
    const connection = postgres(url, {
      max: 1,
      idle_timeout: 0,
      connect_timeout: CONNECT_TIMEOUT_SECONDS,
      keep_alive: 10,
      max_lifetime: null,
      fetch_types: false,
      onnotice: () => {},
      connection: { application_name: 'keryu-auth-listen' },
      // Supported by postgres-js (its own `listen` uses it) but missing from its type definitions.
      ...({
        onnotify: (channel: string, payload: string) => {
          for (const s of subscriptions) if (s.channel === channel) s.handlers.onNotify(payload);
        },
      } as object),
      onclose: () => {
        if (client !== connection) return;
        if (up) {
          up = false;
          for (const s of subscriptions) s.handlers.onDown();
        }
        schedule();
      },
    });
    return connection;
  }
  function connect(): Promise<void> {
    connecting ??= (async () => {
      retry = undefined;
      const connection = client;
      if (!connection || up) return;
      try {
        for (const channel of new Set([...subscriptions].map((s) => s.channel))) await connection.unsafe(`listen ${quote(channel)}`);
        if (client !== connection) return;
        up = true;
        delay = LISTEN_RETRY_MS.first;
        for (const s of subscriptions) s.handlers.onUp();
      } catch {
        schedule();
      }
    })().finally(() => (connecting = undefined));
    return connecting;
  }
  function schedule() {
    if (!client || retry) return;
    retry = setTimeout(() => void connect(), delay);
    delay = Math.min(delay * 2, LISTEN_RETRY_MS.max);
  }

  return async (channel: string, handlers: ListenHandlers): Promise<() => Promise<void>> => {
    const subscription = { channel, handlers };
    const newChannel = ![...subscriptions].some((s) => s.channel === channel);
    subscriptions.add(subscription);
    client ??= open();
    await connecting;
    if (!up) {
      await connect();
    } else if (newChannel) {
      try {
        await client.unsafe(`listen ${quote(channel)}`);
        handlers.onUp();
      } catch {
        // The connection went away meanwhile: onclose reports it down, and the reconnect listens to every channel.
      }
    } else {
      handlers.onUp();
    }
    return async () => {
      if (!subscriptions.delete(subscription)) return;
      if (subscriptions.size > 0) return;
      // The last subscriber left: close the connection (without reporting it down).
      const connection = client;
      client = undefined;
      up = false;
      if (retry) clearTimeout(retry);
      retry = undefined;
      await connection?.end({ timeout: 1 });
    };
  };
}

/**
 * Sends a NOTIFY on `channel` (the other half of `Database.listen`). Inside a transaction it is delivered when
 * the transaction commits, and not at all if it rolls back, so listeners never act on a change that did not happen.
 */
export async function notify(db: DbOrTx, channel: string, payload: string): Promise<void> {
  await db.execute(sql`select pg_notify(${channel}, ${payload})`);
}

export function databaseTarget(config: {
  databaseUrl?: string | undefined;
  databasePoolSize: number;
  databaseConnectTimeout?: number;
  databaseStatementTimeout?: number;
  dataDir: string;
}): DatabaseTarget {
  return config.databaseUrl
    ? {
        kind: 'postgres',
        url: config.databaseUrl,
        poolSize: config.databasePoolSize,
        ...(config.databaseConnectTimeout !== undefined ? { connectTimeoutSeconds: config.databaseConnectTimeout } : {}),
        ...(config.databaseStatementTimeout !== undefined ? { statementTimeoutSeconds: config.databaseStatementTimeout } : {}),
      }
    : { kind: 'pglite', dir: join(config.dataDir, 'pglite') };
}

export async function openDatabase(target: DatabaseTarget): Promise<Database> {
  if (target.kind === 'postgres') {
    const client = postgres(target.url, {
      max: target.poolSize ?? 10,
      onnotice: () => {},
      // Bounded waits, so a database that is down or unreachable is a quick, retryable refusal (503) rather
      // than requests queued behind connection attempts: each attempt gives up after the connect timeout
      // and fails every query waiting for it; a half-open connection (a server gone without closing) is
      // found by TCP keep-alive; a statement the server cannot finish is cancelled by the server.
      connect_timeout: target.connectTimeoutSeconds ?? CONNECT_TIMEOUT_SECONDS,
      // Queries wait for their connection's reconnect delay; the driver's default grows to 20 s (the hang an
      // outage used to cause, lasting beyond the database's return). Capped at half a second instead.
      backoff: (attempt: number) => Math.min(0.05 * 2 ** attempt, 0.5),
      keep_alive: 10,
      // Idle connections are closed, so the pool after an outage is rebuilt from fresh connections.
      idle_timeout: 30,
      connection: {
        // Identifies our connections in pg_stat_activity.
        application_name: 'keryu-auth',
        ...(target.statementTimeoutSeconds ? { statement_timeout: target.statementTimeoutSeconds * 1000 } : {}),
      },
    });
    const db = drizzlePostgres(preparingEveryQuery(client), { schema }) as unknown as Db;
    const listeners: Array<() => Promise<void>> = [];
    const listen = postgresListener(target.url);
    return {
      db,
      target,
      async listen(channel, handlers) {
        const stop = await listen(channel, handlers);
        listeners.push(stop);
        return stop;
      },
      async close() {
        await Promise.all(listeners.splice(0).map((stop) => stop()));
        await client.end({ timeout: 5 });
      },
    };
  }
  if (!target.dir.startsWith('memory://')) await mkdir(target.dir, { recursive: true });
  const pglite = new PGlite(target.dir);
  const db = drizzlePglite(pglite, { schema }) as unknown as Db;
  return {
    db,
    target,
    pglite,
    // One process owns an embedded database, so its notifications are never lost.
    async listen(channel, handlers) {
      const unsubscribe = await pglite.listen(channel, (payload) => handlers.onNotify(payload));
      handlers.onUp();
      return unsubscribe;
    },
    close: () => pglite.close(),
  };
}

/**
 * Runs raw SQL and returns its rows. The two drivers shape raw results differently (postgres-js: an array;
 * PGlite: `{ rows }`); everything else goes through the query builder, which hides that.
 */
export async function selectRows<T extends Record<string, unknown>>(db: DbOrTx, query: SQL): Promise<T[]> {
  const result: unknown = await db.execute(query);
  return (Array.isArray(result) ? result : ((result as { rows?: unknown[] }).rows ?? [])) as T[];
}
