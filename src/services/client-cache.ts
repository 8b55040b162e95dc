/**
 * Client metadata cached in each replica, so the token, introspection and revocation endpoints stop asking
 * the database for their client on every request.
 *
 * Consistency contract (the same as the authorization cache, services/rbac/cache.ts): a trigger on `clients`
 * sends a NOTIFY on CLIENTS_CHANNEL naming the client for every update and delete, whoever makes them; it is
 * delivered on commit to every replica, which drops that entry (an empty payload drops everything). So a
 * rotated secret, a changed redirect URI or a deleted client takes effect everywhere within the notification's
 * delivery time.
 * - A load that started before an invalidation is used for its own request but never stored (generation check).
 * - While the notification connection is down the cache is bypassed: every lookup reads the database, because
 *   a cache that may have missed a notification is known to be stale. It is used again, empty, once LISTEN is back.
 * - Only clients that exist are stored (an unknown id is looked up each time), so requests naming random
 *   client ids cannot fill memory; the size is bounded anyway.
 */
import type { Database } from '../db/client.js';
import type { ClientAuthRecord, ClientQueries } from '../queries/clients.js';

export const CLIENTS_CHANNEL = 'keryu_clients';

/** Beyond this many clients the oldest entry is evicted (Map keeps insertion order). */
const MAX_ENTRIES = 10_000;

export interface ClientMetadataCache {
  /** Client queries whose lookups by client id are answered from the cache (the rest pass through). */
  readonly queries: ClientQueries;
  /** Drops one client's entry, or every entry when no id is given. */
  invalidate(clientId?: string): void;
  /** Whether notifications are flowing (when false, every lookup goes to the database). */
  readonly live: boolean;
  setLive(live: boolean): void;
  readonly size: number;
}

/** A stored record is shared by every request that reads it: nothing may change it in place. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

export function createClientMetadataCache(queries: ClientQueries): ClientMetadataCache {
  const entries = new Map<string, ClientAuthRecord>();
  const pending = new Map<string, Promise<ClientAuthRecord | undefined>>();
  let generation = 0;
  let live = false;

  function clear() {
    generation++;
    entries.clear();
    pending.clear();
  }

  function record(clientId: string): Promise<ClientAuthRecord | undefined> {
    if (!live) return queries.findClientAuthRecord(clientId);
    const hit = entries.get(clientId);
    if (hit) return Promise.resolve(hit);
    const inflight = pending.get(clientId);
    if (inflight) return inflight;
    const started = generation;
    const promise = queries.findClientAuthRecord(clientId).then(
      (found) => {
        if (pending.get(clientId) === promise) pending.delete(clientId);
        if (found && live && generation === started) {
          if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
          entries.set(clientId, deepFreeze(found));
        }
        return found;
      },
      (err: unknown) => {
        if (pending.get(clientId) === promise) pending.delete(clientId);
        throw err;
      },
    );
    pending.set(clientId, promise);
    return promise;
  }

  return {
    queries: {
      ...queries,
      findClientAuthRecord: record,
      findClientMetadataById: async (clientId) => (await record(clientId))?.metadata,
      findClientSecretDigestById: async (clientId) => (await record(clientId))?.digest,
    },
    invalidate(clientId) {
      if (clientId === undefined || clientId === '') return clear();
      generation++;
      entries.delete(clientId);
      pending.delete(clientId);
    },
    get live() {
      return live;
    },
    setLive(value) {
      // Whatever was cached before the connection dropped may have missed notifications.
      clear();
      live = value;
    },
    get size() {
      return entries.size;
    },
  };
}

/**
 * Keeps the cache in step with every replica's changes through the database's LISTEN/NOTIFY subscription
 * (the same mechanism as the authorization cache). While the subscription is down the cache is not used.
 */
export async function syncClientMetadataCache(
  cache: ClientMetadataCache,
  database: Pick<Database, 'listen'>,
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
): Promise<() => Promise<void>> {
  let wasDown = false;
  const stop = await database.listen(CLIENTS_CHANNEL, {
    onNotify: (clientId) => cache.invalidate(clientId),
    onUp: () => {
      cache.setLive(true);
      if (wasDown) log.info({ channel: CLIENTS_CHANNEL }, 'client change notifications restored; client cache live again');
    },
    onDown: () => {
      wasDown = true;
      cache.setLive(false);
      log.warn({ channel: CLIENTS_CHANNEL }, 'client change notifications lost; reading clients from the database until they return');
    },
  });
  return async () => {
    cache.setLive(false);
    await stop();
  };
}
