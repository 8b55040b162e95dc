/**
 * The in-process cache of effective permissions that decisions are answered from.
 *
 * Consistency contract: every change to roles, permissions, assignments or grants sends a NOTIFY on
 * RBAC_CHANNEL inside its transaction (so it is delivered on commit, to every replica including this one);
 * a notification clears the whole cache. Changes are rare and the cache refills with one query per subject,
 * so clearing everything is simpler and safer than computing who is affected.
 * - A load that started before an invalidation is used for its own request but never stored (generation check).
 * - While the notification connection is down the cache is bypassed: every decision resolves from the database,
 *   because a cache that may have missed a notification is known to be stale. It is used again once LISTEN is back.
 * - An assignment with `expires_at` bounds its entry's lifetime, so expiry needs no job and no notification.
 *   Expiry is judged by the injected clock (in the query too), so tests move time instead of sleeping; an entry
 *   that never expires skips the clock, keeping a cache hit free of allocations.
 */
import type { DbOrTx } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { resolveSubject, type Effective, type SubjectRef } from './effective.js';

export const RBAC_CHANNEL = 'keryu_rbac';

/** Bounds memory: beyond this many subjects the oldest entry is evicted (Map keeps insertion order). */
const MAX_ENTRIES = 50_000;

export interface DecisionCache {
  get(subject: SubjectRef): Promise<Effective>;
  /** Drops everything (a notification arrived, or this process changed something). */
  invalidate(): void;
  /** Whether notifications are flowing (when false, every lookup goes to the database). */
  readonly live: boolean;
  setLive(live: boolean): void;
  readonly size: number;
}

export function createDecisionCache(deps: { db: DbOrTx; clock: Clock }): DecisionCache {
  const { clock } = deps;
  const resolve = (subject: SubjectRef) => resolveSubject(deps.db, subject, { at: clock() });
  const entries = new Map<string, Effective>();
  const pending = new Map<string, Promise<Effective>>();
  let generation = 0;
  let live = false;

  function load(key: string, subject: SubjectRef): Promise<Effective> {
    const inflight = pending.get(key);
    if (inflight) return inflight;
    const started = generation;
    const promise = resolve(subject).then(
      (effective) => {
        if (pending.get(key) === promise) pending.delete(key);
        if (live && generation === started) {
          if (entries.size >= MAX_ENTRIES) entries.delete(entries.keys().next().value as string);
          entries.set(key, effective);
        }
        return effective;
      },
      (err: unknown) => {
        if (pending.get(key) === promise) pending.delete(key);
        throw err;
      },
    );
    pending.set(key, promise);
    return promise;
  }

  return {
    get(subject) {
      if (!live) return resolve(subject);
      const key = `${subject.kind}:${subject.id}`;
      const hit = entries.get(key);
      if (hit && (hit.validUntil === Number.POSITIVE_INFINITY || hit.validUntil > clock().getTime())) return Promise.resolve(hit);
      if (hit) entries.delete(key);
      return load(key, subject);
    },
    invalidate() {
      generation++;
      entries.clear();
      pending.clear();
    },
    get live() {
      return live;
    },
    setLive(value) {
      // Whatever was cached before the connection dropped may have missed notifications.
      generation++;
      entries.clear();
      pending.clear();
      live = value;
    },
    get size() {
      return entries.size;
    },
  };
}

/**
 * Keeps a cache in step with every replica's changes through LISTEN/NOTIFY. While the subscription is down the
 * cache is not used at all (see the header); it becomes live again, empty, once the subscription is back.
 */
export async function syncDecisionCache(
  cache: DecisionCache,
  database: { listen(channel: string, handlers: { onNotify(payload: string): void; onUp(): void; onDown(): void }): Promise<() => Promise<void>> },
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
): Promise<() => Promise<void>> {
  let wasDown = false;
  const stop = await database.listen(RBAC_CHANNEL, {
    onNotify: () => cache.invalidate(),
    onUp: () => {
      cache.setLive(true);
      if (wasDown) log.info({ channel: RBAC_CHANNEL }, 'authorization change notifications restored; decision cache live again');
    },
    onDown: () => {
      wasDown = true;
      cache.setLive(false);
      log.warn({ channel: RBAC_CHANNEL }, 'authorization change notifications lost; answering decisions from the database until they return');
    },
  });
  return async () => {
    cache.setLive(false);
    await stop();
  };
}
