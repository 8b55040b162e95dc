/** One autocannon run over loopback, summarised. */
import autocannon from 'autocannon';

export interface LoadOptions {
  url: string;
  method: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** A fixed body; or `next` for a fresh body per request (pooled scenarios). */
  body?: string;
  next?: () => string;
  connections: number;
  /** Seconds; the run ends at this time even when `amount` is not reached. */
  duration: number;
  /** At most this many requests (pooled scenarios: the pool size). */
  amount?: number;
  /** Every response body, e.g. to collect the refresh tokens a code exchange issues. */
  onBody?: (status: number, body: string) => void;
  /** A 2xx body that fails this check counts as an error (mismatch). */
  verifyBody?: (body: string) => boolean;
}

export interface LoadStats {
  /** Completed responses per second, from the first request to the last response. */
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
  max: number;
  /** Completed responses (any status). */
  responses: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  mismatches: number;
  statusCodes: Record<string, number>;
  seconds: number;
  /** Set when `amount` ended the run before `duration` did. */
  endedByAmount: boolean;
  amount?: number;
}

/** non-2xx responses plus socket errors, timeouts and body mismatches. */
export function failures(s: LoadStats): number {
  return s.non2xx + s.errors + s.timeouts + s.mismatches;
}

export async function runLoad(options: LoadOptions): Promise<LoadStats> {
  const headers = { ...options.headers };
  const requests: autocannon.Request[] | undefined =
    options.next || options.onBody
      ? [
          {
            method: options.method,
            headers,
            ...(options.body !== undefined ? { body: options.body } : {}),
            ...(options.next ? { setupRequest: (req: autocannon.Request) => ({ ...req, body: options.next!() }) } : {}),
            ...(options.onBody ? { onResponse: (status: number, body: string) => options.onBody!(status, body) } : {}),
          },
        ]
      : undefined;

  const started = performance.now();
  let last = started;
  let responses = 0;
  let stopTimer: NodeJS.Timeout | undefined;

  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.url,
        method: options.method,
        headers,
        ...(options.body !== undefined ? { body: options.body } : {}),
        connections: options.connections,
        ...(options.amount !== undefined ? { amount: options.amount } : { duration: options.duration }),
        ...(requests ? { requests } : {}),
        ...(options.verifyBody ? { verifyBody: options.verifyBody as (body: autocannon.Request['body']) => boolean } : {}),
        timeout: 10,
      },
      (err, res) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(res)),
    );
    instance.on('response', () => {
      responses++;
      last = performance.now();
    });
    // With `amount`, autocannon ignores `duration`: stop it ourselves.
    if (options.amount !== undefined) stopTimer = setTimeout(() => instance.stop(), options.duration * 1000);
  });
  clearTimeout(stopTimer);

  const seconds = Math.max((last - started) / 1000, 0.001);
  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = stat.count ?? 0;
  return {
    rps: responses / seconds,
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    mean: result.latency.mean,
    max: result.latency.max,
    responses,
    non2xx: result.non2xx,
    errors: result.errors - result.timeouts,
    timeouts: result.timeouts,
    mismatches: result.mismatches,
    statusCodes,
    seconds,
    endedByAmount: options.amount !== undefined && responses >= options.amount,
    ...(options.amount !== undefined ? { amount: options.amount } : {}),
  };
}
