/**
 * What every bench program sets explicitly instead of inheriting a default that changes under it.
 *
 * Throughput scenarios run with keryu-auth's request rate limits off: they measure the work per request, and a
 * load generator on one address is exactly what the per-IP and per-client limits exist to stop (they answer 429
 * within a second). Each program prints `LIMITS_NOTE` so a reader knows what was measured. Brute-force
 * protection and every other check stay on.
 *
 * Smoke mode (`--smoke` or BENCH_SMOKE=1): about a second per scenario and small pools, so CI proves every
 * scenario still runs clean (non-2xx fails the run) without asserting figures a shared machine cannot keep.
 */
export const SMOKE = process.argv.includes('--smoke') || process.env.BENCH_SMOKE === '1';

export const THROUGHPUT_LIMITS: Readonly<Record<string, string>> = {
  RATE_LIMIT_AUTH: '0',
  RATE_LIMIT_OIDC: '0',
  RATE_LIMIT_CLIENT: '0',
  // Expired-row clean-up is background work that would land in one scenario's figures and not another's.
  CLEANUP_INTERVAL: '0',
};

export const LIMITS_NOTE =
  'request rate limits off for throughput (RATE_LIMIT_AUTH=0, RATE_LIMIT_OIDC=0, RATE_LIMIT_CLIENT=0; brute-force protection on), CLEANUP_INTERVAL=0';

/** Extra keryu-auth settings for experiments: BENCH_KERYU_DATABASE_POOL_SIZE=4 → DATABASE_POOL_SIZE=4 (wins over the above). */
export function keryuExtraEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).flatMap(([k, v]) => (k.startsWith('BENCH_KERYU_') && k !== 'BENCH_KERYU_DIST' && v !== undefined ? [[k.slice('BENCH_KERYU_'.length), v]] : [])),
  );
}

/** Seconds from BENCH_DURATION, or 1 in smoke mode. */
export function durationSeconds(fallback: number): number {
  if (SMOKE) return 1;
  const raw = process.env.BENCH_DURATION;
  const n = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`BENCH_DURATION must be a positive number (got "${raw}")`);
  return n;
}

/** BENCH_KERYU_DIST=1: the built server (`npm run build` first), as `npm start` runs it; otherwise src/ under tsx. */
export const USE_DIST = process.env.BENCH_KERYU_DIST === '1';
export const KERYU_ENTRY: readonly string[] = USE_DIST ? ['dist/server.js'] : ['--import', 'tsx', 'src/server.ts'];
export const KERYU_ENTRY_NOTE = USE_DIST ? 'node dist/server.js' : 'node --import tsx src/server.ts (tsx adds memory; BENCH_KERYU_DIST=1 for the built server)';
