/**
 * Runs the alert work every ALERT_INTERVAL seconds on each replica: evaluate new audit events (one replica
 * at a time, see services/alerts), deliver what is due (claimed with SKIP LOCKED, so replicas share the
 * work without sending anything twice), and once an hour run the compliance report, whose failing checks
 * raise `compliance_failed` (at most once a day per check).
 */
import type { AlertService } from '../services/alerts/service.js';

/** The compliance report reads every client and admin: hourly is often enough for checks that change slowly. */
export const COMPLIANCE_EVERY_SECONDS = 3600;

export interface AlertJobDeps {
  alerts: AlertService;
  /** Runs the compliance report and raises its failures (absent: no periodic compliance run). */
  compliance?: () => Promise<unknown>;
  log: { info(o: object, m: string): void; error(o: object, m: string): void };
}

/** One pass: evaluation, then delivery (so a new alert goes out in the same pass). */
export async function runAlertJobs(deps: AlertJobDeps): Promise<void> {
  const evaluated = await deps.alerts.evaluate();
  if (evaluated.raised.length) deps.log.info({ alerts: evaluated.raised.map((a) => ({ id: a.id, type: a.type })) }, 'alerts raised');
  const delivered = await deps.alerts.deliver();
  if (delivered.delivered + delivered.failed > 0) deps.log.info({ delivered }, 'alert deliveries');
}

export function scheduleAlertJobs(deps: AlertJobDeps, intervalSeconds: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let sinceCompliance = COMPLIANCE_EVERY_SECONDS; // first pass runs it
  const next = () => {
    if (stopped) return;
    // Jitter so replicas do not all wake together.
    const delay = intervalSeconds * 1000 * (0.8 + Math.random() * 0.4);
    timer = setTimeout(() => {
      const work = async () => {
        await runAlertJobs(deps);
        sinceCompliance += intervalSeconds;
        if (deps.compliance && sinceCompliance >= COMPLIANCE_EVERY_SECONDS) {
          sinceCompliance = 0;
          await deps.compliance();
        }
      };
      work()
        .catch((err: unknown) => deps.log.error({ err }, 'alert job failed'))
        .finally(next);
    }, delay);
    timer.unref();
  };
  next();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
