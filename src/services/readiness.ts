/**
 * Readiness: may this replica receive traffic? A small list of named checks, each answering true or
 * false; the replica is ready when all pass. Checks that cost a round trip are wrapped in `cachedCheck`,
 * so however many probes arrive, at most one such round trip is in flight and its answer is reused for a
 * second. A later check (Redis, SMTP, ...) is one more entry in the list.
 */
import type { Db } from '../db/client.js';
import { createHealthQueries } from '../queries/health.js';

export type ReadinessCheckName = 'database' | 'migrations' | 'keys' | 'draining';

export interface ReadinessCheck {
  name: ReadinessCheckName;
  /** True when this check passes. Throwing or rejecting counts as failing. */
  passes(): boolean | Promise<boolean>;
}

export type ReadinessReport = { ready: true } | { ready: false; failing: ReadinessCheckName[] };

export interface Readiness {
  evaluate(): Promise<ReadinessReport>;
}

export function createReadiness(checks: readonly ReadinessCheck[]): Readiness {
  return {
    async evaluate() {
      const results = await Promise.all(
        checks.map(async (check) => {
          try {
            return (await check.passes()) ? undefined : check.name;
          } catch {
            return check.name;
          }
        }),
      );
      const failing = results.filter((name): name is ReadinessCheckName => name !== undefined);
      return failing.length ? { ready: false, failing } : { ready: true };
    },
  };
}

/** A probe that waits longer than this on the database is answered "not ready" (kubelet's probe timeout is 1 s). */
export const DATABASE_CHECK_TIMEOUT_MS = 800;
/** How long one database answer is reused: probes from every kubelet and load balancer share it. */
export const DATABASE_CHECK_CACHE_MS = 1000;

/**
 * Reuses an answer for `cacheMs` and shares the one in flight; an answer that takes longer than
 * `timeoutMs` counts as failing (the round trip itself is left to finish, never started twice).
 */
export function cachedCheck(passes: () => Promise<boolean>, options: { cacheMs: number; timeoutMs: number; now?: () => number }): () => Promise<boolean> {
  const now = options.now ?? (() => performance.now());
  let last: { at: number; ok: boolean } | undefined;
  let inFlight: Promise<boolean> | undefined;
  return () => {
    if (last && now() - last.at < options.cacheMs) return Promise.resolve(last.ok);
    inFlight ??= passes()
      .catch(() => false)
      .then((ok) => {
        last = { at: now(), ok };
        inFlight = undefined;
        return ok;
      });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), options.timeoutMs);
      timer.unref();
    });
    return Promise.race([inFlight, timeout]).finally(() => clearTimeout(timer));
  };
}

/** The database answers `select 1` in time. */
export function databaseCheck(db: Db): ReadinessCheck {
  const health = createHealthQueries(db);
  const passes = cachedCheck(
    async () => {
      await health.pingDatabase();
      return true;
    },
    { cacheMs: DATABASE_CHECK_CACHE_MS, timeoutMs: DATABASE_CHECK_TIMEOUT_MS },
  );
  return { name: 'database', passes };
}
