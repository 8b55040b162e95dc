/**
 * Runs the audit sealing every `intervalSeconds` on each replica (with jitter, so replicas do not all wake
 * together). Each seal is made under a transaction-level advisory lock, so only one replica seals at a time
 * and the chain never forks; the others find the lock taken and try again at their next turn.
 */
import type { AuditSealService } from '../services/audit-seal/service.js';

/** Starts the schedule; the returned function stops it and waits for a run in progress. */
export function scheduleAuditSealing(seals: Pick<AuditSealService, 'sealPending'>, intervalSeconds: number, log: { error(o: object, m: string): void }): () => Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const next = () => {
    if (stopped) return;
    const delay = intervalSeconds * 1000 * (0.8 + Math.random() * 0.4);
    timer = setTimeout(() => {
      running = seals
        .sealPending()
        .then(() => undefined)
        .catch((err: unknown) => log.error({ err }, 'audit sealing failed'))
        .finally(() => {
          running = undefined;
          next();
        });
    }, delay);
    timer.unref();
  };
  next();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await running;
  };
}
