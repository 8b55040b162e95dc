/**
 * `npm run bench`: keryu-auth on PostgreSQL against a bare oidc-provider (the floor), same scenarios,
 * same load, same run. Both servers are separate processes; the load comes from autocannon over loopback.
 *
 * Environment:
 *   BENCH_DURATION            seconds per measured scenario (default 10)
 *   BENCH_CONNECTIONS         concurrent connections (default 10)
 *   BENCH_WARMUP              seconds of unmeasured warm-up per scenario and server (default 1)
 *   BENCH_DATABASE_URL        PostgreSQL server for the throw-away bench database
 *                             (default postgres://postgres@127.0.0.1:5432/test)
 *   BENCH_SCENARIOS           comma-separated subset (discovery,jwks,client_credentials,introspection,code_exchange,refresh,scale_out)
 *   BENCH_SERVERS             comma-separated subset of keryu,bare (default both)
 *   BENCH_KERYU_DIST=1        run dist/server.js instead of src/server.ts under tsx
 *   BENCH_KERYU_<NAME>=value  passed to keryu-auth as <NAME> (e.g. BENCH_KERYU_DATABASE_POOL_SIZE=4), for experiments
 *   BENCH_WAIT_QUIET          wait up to this many seconds for the machine to be idle (< 15 % busy) before starting
 *   BENCH_SOURCE_DIR          another checkout to start keryu-auth from (A/B experiments; seeding uses this one)
 *   BENCH_CPU_PROF=1          run keryu-auth under --cpu-prof; the profile and its summary land in bench/results/profiles/
 *   BENCH_MAX_POOL            upper bound on pre-issued codes / refresh tokens per server (default 40000)
 *   BENCH_ACQUIRE_CONCURRENCY parallel browsers obtaining codes and refresh tokens (default 16)
 *   BENCH_CODE_SECONDS        time budget for pre-issuing codes per server (default 40, at most 50: codes live 60 s)
 *   BENCH_REFRESH_SECONDS     time budget for pre-issuing extra refresh tokens per server (default 25)
 *
 *   --smoke / BENCH_SMOKE=1   about a second per scenario, small pools: proves the bench runs (CI), figures not meaningful
 *
 * Request rate limits are off for every scenario (see lib/settings.ts; stated in the output).
 * `scale_out` starts a second keryu-auth replica on the same database and compares client-credentials
 * throughput of one replica against both (connections split round-robin), with PostgreSQL's CPU share.
 *
 * Exit status: 1 when either server answered anything but 2xx (or a socket error / timeout / wrong body) in
 * any scenario, warm-ups included, 2 when the bench itself failed.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, freemem, platform, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { runCli } from '../src/cli.js';
import { TEST_PASSWORD as PASSWORD } from '../test/helpers/defaults.js';
import { Browser } from '../test/helpers/oidc.js';
import { countPostgresDatabase, cpuSnapshot, cpuUse, machineLoad, type CpuUse } from './lib/cpu.js';
import { formatProfileSummary, latestProfile, summarizeProfile } from './lib/cpuprofile.js';
import {
  acquire,
  basicAuth,
  codeExchangeBody,
  discoverTarget,
  obtainCode,
  obtainRefreshToken,
  REDIRECT_URI,
  refreshBody,
  tokenRequest,
  type Target,
} from './lib/flows.js';
import { failures, runLoad, type LoadStats } from './lib/load.js';
import { freePort, startProcess, type ManagedProcess } from './lib/processes.js';
import { formatRss, rssMiB, sampleRssPeak, type RssFigures } from './lib/rss.js';
import { KERYU_ENTRY, KERYU_ENTRY_NOTE, keryuExtraEnv, LIMITS_NOTE, SMOKE, THROUGHPUT_LIMITS, USE_DIST } from './lib/settings.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const resultsDir = join(root, 'bench', 'results');
const env = process.env;

function numberEnv(name: string, fallback: number, min = 1): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number >= ${min} (got "${raw}")`);
  return n;
}

const DURATION = SMOKE ? 1 : numberEnv('BENCH_DURATION', 10);
const CONNECTIONS = Math.floor(numberEnv('BENCH_CONNECTIONS', 10));
const WARMUP = SMOKE ? 0 : numberEnv('BENCH_WARMUP', 1, 0);
const MAX_POOL = SMOKE ? 100 : Math.floor(numberEnv('BENCH_MAX_POOL', 40_000));
const ACQUIRE_CONCURRENCY = Math.floor(numberEnv('BENCH_ACQUIRE_CONCURRENCY', 16));
const SERVER_URL = env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
const CPU_PROF = env.BENCH_CPU_PROF === '1';
const KERYU_DIR = env.BENCH_SOURCE_DIR || root;
const KERYU_EXTRA_ENV = keryuExtraEnv(env);

/**
 * Codes live 60 s (both servers). The run uses them oldest first and faster than they were obtained, so the
 * oldest code's age at use is about the acquisition time: that, plus a margin, must stay under 60 s.
 */
const CODE_TTL = 60;
const CODE_MARGIN = 10;
/**
 * Pools are sized from a measured rate times these factors, so the run normally ends on time, not on an
 * empty pool. Codes: from a short warm-up (cold JIT, easily disturbed), so with a wide margin; the time
 * budget below caps it. Refresh tokens: from the 10-second code exchange run, a steadier rate.
 */
const CODE_POOL_FACTOR = 2;
const REFRESH_POOL_FACTOR = 1.3;
/**
 * Time budgets for pre-issuing, per server, that keep the whole bench near five minutes: codes go through
 * login/consent (keryu-auth: 4 requests and several database writes each), a refresh token needs a code.
 * A pool that the budget cuts short ends its run early; the report says so.
 */
const CODE_ACQUIRE_SECONDS = SMOKE ? 5 : Math.min(numberEnv('BENCH_CODE_SECONDS', 40), CODE_TTL - CODE_MARGIN);
const REFRESH_TOPUP_SECONDS = SMOKE ? 5 : numberEnv('BENCH_REFRESH_SECONDS', 25, 0);
/** Codes / refresh tokens used by one pooled warm-up. */
const WARMUP_POOL = SMOKE ? 20 : Math.max(CONNECTIONS * 50, 500);

const SCENARIOS = ['discovery', 'jwks', 'client_credentials', 'introspection', 'code_exchange', 'refresh', 'scale_out'] as const;
type ScenarioId = (typeof SCENARIOS)[number];
const selectedScenarios = new Set<ScenarioId>(
  env.BENCH_SCENARIOS ? (env.BENCH_SCENARIOS.split(',').map((s) => s.trim()) as ScenarioId[]) : SCENARIOS,
);
for (const s of selectedScenarios) if (!SCENARIOS.includes(s)) throw new Error(`BENCH_SCENARIOS: unknown scenario ${s}`);
const SERVERS = ['keryu', 'bare'] as const;
type ServerName = (typeof SERVERS)[number];
const selectedServers = (env.BENCH_SERVERS ? env.BENCH_SERVERS.split(',').map((s) => s.trim()) : [...SERVERS]) as ServerName[];
for (const s of selectedServers) if (!SERVERS.includes(s)) throw new Error(`BENCH_SERVERS: unknown server ${s}`);

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

// ---------------------------------------------------------------------------------------------------------
// Clean-up: every resource registers how to release it; released in reverse order, once, on any exit path.

const cleanups: Array<{ name: string; run: () => Promise<void> }> = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length) {
      const step = cleanups.pop()!;
      try {
        await step.run();
      } catch (err) {
        log(`clean-up of ${step.name} failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------------------
// Set-up

async function createDatabase(): Promise<{ url: string; name: string; postgresVersion: string }> {
  const name = `keryu_bench_${randomBytes(6).toString('hex')}`;
  const admin = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
  let postgresVersion = '';
  try {
    const [row] = await admin<{ version: string }[]>`select version()`;
    postgresVersion = row?.version ?? '';
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end();
  }
  cleanups.push({
    name: `database ${name}`,
    run: async () => {
      const sql = postgres(SERVER_URL, { max: 1, onnotice: () => {} });
      try {
        await sql.unsafe(`drop database if exists ${name} with (force)`);
        log(`dropped database ${name}`);
      } finally {
        await sql.end();
      }
    },
  });
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), name, postgresVersion };
}

async function cli(args: string[], cliEnv: Record<string, string>, stdin = ''): Promise<unknown> {
  let out = '';
  let err = '';
  const code = await runCli([...args, '--json'], {
    env: cliEnv,
    stdin: Readable.from(stdin ? [Buffer.from(stdin)] : []),
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
  });
  if (code !== 0) throw new Error(`keryu ${args.slice(0, 2).join(' ')} failed (${code}): ${err}`);
  return JSON.parse(out.trim().split('\n').pop() ?? 'null');
}

const CLIENT_ID = 'bench-client';
const EMAIL = 'bench@example.com';

function keryuEnvironment(databaseUrl: string, secret: string, port: number): Record<string, string> {
  return {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://127.0.0.1:${port}/oidc`,
    DATABASE_URL: databaseUrl,
    KERYU_SECRET: secret,
    LOG_LEVEL: 'warn',
    // The password step and token endpoints are measured; the new-device and new-IP checks (a code by email) are off.
    DEVICE_VERIFICATION: 'off',
    IP_VERIFICATION: 'off',
    ...THROUGHPUT_LIMITS,
    ...KERYU_EXTRA_ENV,
  };
}

/** One keryu-auth process on an already seeded database (a second replica shares the database and secret). */
async function spawnKeryu(keryuEnv: Record<string, string>, name: string, clientSecret: string): Promise<{ target: Target; process: ManagedProcess }> {
  const origin = `http://127.0.0.1:${keryuEnv.PORT}`;
  const profileArgs = CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', join(resultsDir, 'profiles')] : [];
  const proc = await startProcess({
    name,
    args: [...profileArgs, ...KERYU_ENTRY],
    cwd: KERYU_DIR,
    // Metrics on, as deployed, each replica on a port of its own (BENCH_KERYU_METRICS_PORT=0 turns them off).
    env: { PATH: env.PATH, METRICS_PORT: String(await freePort()), ...keryuEnv },
    readyUrl: `${origin}/readyz`,
  });
  cleanups.push({ name: `${name} process`, run: () => proc.stop() });
  const target = await discoverTarget({ name: 'keryu', origin, issuer: `${origin}/oidc`, clientId: CLIENT_ID, clientSecret, credentials: { email: EMAIL, password: PASSWORD } });
  return { target, process: proc };
}

async function startKeryu(
  databaseUrl: string,
  secret: string,
  clientSecret: string,
): Promise<{ target: Target; process: ManagedProcess; userId: string; env: Record<string, string> }> {
  const keryuEnv = keryuEnvironment(databaseUrl, secret, await freePort());
  // Seed through the real CLI, in-process, with the server's environment.
  await cli(['migrate'], keryuEnv);
  await cli(
    [
      'client', 'create', '--client-id', CLIENT_ID, '--name', 'Bench client', '--redirect-uri', REDIRECT_URI,
      '--grant-type', 'client_credentials', '--grant-type', 'authorization_code', '--grant-type', 'refresh_token',
      '--scope', 'openid offline_access', '--secret-stdin',
    ],
    keryuEnv,
    clientSecret,
  );
  const user = (await cli(['user', 'create', '--email', EMAIL, '--name', 'Bench User', '--email-verified', '--password-stdin'], keryuEnv, PASSWORD)) as {
    id: string;
  };
  const started = await spawnKeryu(keryuEnv, 'keryu-auth', clientSecret);
  return { ...started, userId: user.id, env: keryuEnv };
}

async function startBare(clientSecret: string, accountId: string): Promise<{ target: Target; process: ManagedProcess }> {
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const proc = await startProcess({
    name: 'bare oidc-provider',
    args: ['--import', 'tsx', 'bench/bare-provider.ts'],
    cwd: root,
    env: {
      PATH: env.PATH,
      NODE_ENV: 'production',
      PORT: String(port),
      BENCH_CLIENT_ID: CLIENT_ID,
      BENCH_CLIENT_SECRET: clientSecret,
      BENCH_REDIRECT_URI: REDIRECT_URI,
      BENCH_ACCOUNT_ID: accountId,
    },
    readyUrl: `${origin}/.well-known/openid-configuration`,
  });
  cleanups.push({ name: 'bare oidc-provider process', run: () => proc.stop() });
  const target = await discoverTarget({ name: 'bare', origin, issuer: origin, clientId: CLIENT_ID, clientSecret });
  return { target, process: proc };
}

// ---------------------------------------------------------------------------------------------------------
// Scenarios

interface ServerRun {
  stats: LoadStats;
  /** CPU seconds during the measured run: the server, PostgreSQL (keryu only), the bench (autocannon). */
  cpu?: CpuUse;
  warmup?: LoadStats;
  /** Pooled scenarios: how many codes / refresh tokens were pre-issued and how long that took. */
  pool?: { wanted: number; obtained: number; acquireSeconds: number; limitedByTime: boolean };
  /** Highest resident memory of the server during the measured run. */
  rssPeakMiB?: number;
}

interface ServerState {
  target: Target;
  pid: number | undefined;
  /** keryu-auth: also count the local PostgreSQL processes' CPU time. */
  usesPostgres: boolean;
  /** Browsers keep their session cookie, so only the first code per browser goes through the login form. */
  browsers: Browser[];
  /** Refresh tokens collected from code exchanges, unused. */
  refreshTokens: string[];
  introspectionToken?: string;
  codeRate?: number;
  /** Resident memory before any load, and the highest seen over the whole bench. */
  rss: RssFigures;
}

const formHeaders = (t: Target) => ({ authorization: basicAuth(t), 'content-type': 'application/x-www-form-urlencoded' });

const REFRESH_TOKEN_IN_BODY = /"refresh_token":"([^"]+)"/;

async function simpleScenario(id: ScenarioId, s: ServerState, seconds: number): Promise<LoadStats> {
  const t = s.target;
  const base = { connections: CONNECTIONS, duration: seconds };
  switch (id) {
    case 'discovery':
      return runLoad({ ...base, url: t.endpoints.discovery, method: 'GET' });
    case 'jwks':
      return runLoad({ ...base, url: t.endpoints.jwks, method: 'GET' });
    case 'client_credentials':
      return runLoad({ ...base, url: t.endpoints.token, method: 'POST', headers: formHeaders(t), body: 'grant_type=client_credentials' });
    case 'introspection': {
      s.introspectionToken ??= String((await tokenRequest(t, 'grant_type=client_credentials')).access_token);
      return runLoad({
        ...base,
        url: t.endpoints.introspection,
        method: 'POST',
        headers: formHeaders(t),
        body: new URLSearchParams({ token: s.introspectionToken }).toString(),
        // A 200 that says "active": false would be a failure that the status code hides.
        verifyBody: (body) => body.includes('"active":true'),
      });
    }
    default:
      throw new Error(`not a simple scenario: ${id}`);
  }
}

/** Runs `pool` (FIFO) through the token endpoint: at most DURATION seconds, at most the pool. */
async function pooledRun(s: ServerState, bodies: string[], seconds: number, collectRefreshTokens: boolean): Promise<LoadStats> {
  const t = s.target;
  if (bodies.length === 0) throw new Error(`${t.name}: no codes or refresh tokens were obtained`);
  let next = 0;
  // autocannon asks exactly `amount` bodies; the last entry is repeated only if it asks more (it does not).
  return runLoad({
    url: t.endpoints.token,
    method: 'POST',
    headers: formHeaders(t),
    connections: Math.min(CONNECTIONS, bodies.length),
    duration: seconds,
    amount: bodies.length,
    next: () => bodies[Math.min(next++, bodies.length - 1)]!,
    ...(collectRefreshTokens
      ? {
          onBody: (status: number, body: string) => {
            if (status !== 200) return;
            const m = REFRESH_TOKEN_IN_BODY.exec(body);
            if (m?.[1]) s.refreshTokens.push(m[1]);
          },
        }
      : {}),
  });
}

/** The measured part of a scenario, with the CPU time each process spent on it and the server's peak memory. */
async function measured(s: ServerState, run: () => Promise<LoadStats>): Promise<{ stats: LoadStats; cpu: CpuUse; rssPeakMiB?: number }> {
  const before = await cpuSnapshot(s.pid, s.usesPostgres);
  const rss = sampleRssPeak(s.pid);
  const stats = await run();
  const cpu = cpuUse(before, await cpuSnapshot(s.pid, s.usesPostgres));
  const rssPeakMiB = await rss.stop();
  return { stats, cpu, ...(rssPeakMiB !== undefined ? { rssPeakMiB } : {}) };
}

async function acquireCodes(s: ServerState, count: number, deadline: number) {
  return acquire({ count, concurrency: ACQUIRE_CONCURRENCY, deadline, browsers: s.browsers, once: (b) => obtainCode(s.target, b) });
}

async function codeScenario(s: ServerState): Promise<ServerRun> {
  const name = s.target.name;
  // Warm-up: a small pool, which also tells how fast this server exchanges codes.
  const warmCodes = await acquireCodes(s, WARMUP_POOL, Date.now() + 30_000);
  const warmup = await pooledRun(s, warmCodes.items.map(codeExchangeBody), 60, true);
  const wanted = Math.min(MAX_POOL, Math.max(WARMUP_POOL, Math.ceil(warmup.rps * DURATION * CODE_POOL_FACTOR)));
  const window = CODE_ACQUIRE_SECONDS;
  log(`${name} code_exchange: warm-up ${warmup.rps.toFixed(0)} req/s; obtaining ${wanted} codes (at most ${window} s)`);
  const before = await cpuSnapshot(s.pid, s.usesPostgres);
  const codes = await acquireCodes(s, wanted, Date.now() + window * 1000);
  const used = cpuUse(before, await cpuSnapshot(s.pid, s.usesPostgres));
  const perCode = (x: number | undefined) => (x === undefined ? '?' : ((x * 1000) / Math.max(codes.items.length, 1)).toFixed(2));
  log(
    `${name} code_exchange: ${codes.items.length} codes in ${codes.seconds.toFixed(1)} s (${(codes.items.length / codes.seconds).toFixed(0)}/s; ` +
      `CPU ms per code: server ${perCode(used.serverSeconds)}, postgres ${perCode(used.postgresSeconds)}, bench ${perCode(used.benchSeconds)}, other ${perCode(used.otherSeconds)})`,
  );
  // Past the code lifetime, the newest codes could expire before their turn.
  const run = await measured(s, () => pooledRun(s, codes.items.map(codeExchangeBody), Math.min(DURATION, window), true));
  s.codeRate = run.stats.rps;
  return {
    ...run,
    warmup,
    pool: { wanted, obtained: codes.items.length, acquireSeconds: codes.seconds, limitedByTime: codes.timedOut },
  };
}

async function topUpRefreshTokens(s: ServerState, count: number, seconds: number): Promise<{ seconds: number; timedOut: boolean }> {
  const missing = count - s.refreshTokens.length;
  if (missing <= 0) return { seconds: 0, timedOut: false };
  const started = performance.now();
  const got = await acquire({
    count: missing,
    concurrency: ACQUIRE_CONCURRENCY,
    deadline: Date.now() + seconds * 1000,
    browsers: s.browsers,
    once: (b) => obtainRefreshToken(s.target, b),
  });
  s.refreshTokens.push(...got.items);
  return { seconds: (performance.now() - started) / 1000, timedOut: got.timedOut };
}

async function refreshScenario(s: ServerState): Promise<ServerRun> {
  const name = s.target.name;
  // Normally the code exchange scenario left plenty of refresh tokens; this is for BENCH_SCENARIOS=refresh.
  let acquireSeconds = (await topUpRefreshTokens(s, WARMUP_POOL, 120)).seconds;
  const warmup = await pooledRun(s, s.refreshTokens.splice(0, WARMUP_POOL).map(refreshBody), 60, false);
  // A refresh does about the work of a code exchange: size from whichever rate is higher.
  const rate = Math.max(warmup.rps, s.codeRate ?? 0);
  const wanted = Math.min(MAX_POOL, Math.max(WARMUP_POOL, Math.ceil(rate * DURATION * REFRESH_POOL_FACTOR)));
  log(`${name} refresh: warm-up ${warmup.rps.toFixed(0)} req/s; pool ${s.refreshTokens.length}, want ${wanted}`);
  const topUp = await topUpRefreshTokens(s, wanted, REFRESH_TOPUP_SECONDS);
  acquireSeconds += topUp.seconds;
  const tokens = s.refreshTokens.splice(0, wanted);
  const run = await measured(s, () => pooledRun(s, tokens.map(refreshBody), DURATION, false));
  return { ...run, warmup, pool: { wanted, obtained: tokens.length, acquireSeconds, limitedByTime: topUp.timedOut } };
}

async function runScenario(id: ScenarioId, s: ServerState): Promise<ServerRun> {
  if (id === 'code_exchange') return codeScenario(s);
  if (id === 'refresh') return refreshScenario(s);
  const warmup = WARMUP > 0 ? await simpleScenario(id, s, WARMUP) : undefined;
  const run = await measured(s, () => simpleScenario(id, s, DURATION));
  return { ...run, ...(warmup ? { warmup } : {}) };
}

interface ScaleOutRun {
  /** Combined figures: responses per second summed over the replicas; latency of the first replica's load. */
  rps: number;
  perReplicaRps: number[];
  responses: number;
  failed: number;
  statusCodes: Record<string, number>[];
  cpu: CpuUse;
  /** CPU seconds of every keryu-auth replica together. */
  serverSeconds: number;
  /** PostgreSQL's share of all busy CPU time on the machine during the run (0..1). */
  postgresShare?: number;
  rssPeakMiB: (number | undefined)[];
}

/**
 * Client credentials against one replica, then the same number of connections split round-robin over two
 * replicas of the same database (no proxy: the load generator is the balancer).
 */
async function scaleOutRun(replicas: ServerState[]): Promise<ScaleOutRun> {
  const [first] = replicas;
  if (!first) throw new Error('scale_out: no replica');
  const before = await Promise.all(replicas.map((r, i) => cpuSnapshot(r.pid, i === 0)));
  const samplers = replicas.map((r) => sampleRssPeak(r.pid));
  const runs = await Promise.all(
    replicas.map((r, i) =>
      runLoad({
        url: r.target.endpoints.token,
        method: 'POST',
        headers: formHeaders(r.target),
        body: 'grant_type=client_credentials',
        connections: Math.floor(CONNECTIONS / replicas.length) + (i < CONNECTIONS % replicas.length ? 1 : 0),
        duration: DURATION,
      }),
    ),
  );
  const after = await Promise.all(replicas.map((r, i) => cpuSnapshot(r.pid, i === 0)));
  const rssPeakMiB = await Promise.all(samplers.map((sampler) => sampler.stop()));
  const uses = replicas.map((_, i) => cpuUse(before[i]!, after[i]!));
  const cpu = uses[0]!;
  const serverSeconds = uses.reduce((sum, u) => sum + (u.serverSeconds ?? 0), 0);
  // The first snapshot counts every process: its busy total is the machine's, whatever the replica count.
  const busy = (cpu.serverSeconds ?? 0) + (cpu.postgresSeconds ?? 0) + cpu.benchSeconds + (cpu.otherSeconds ?? 0);
  return {
    rps: runs.reduce((sum, r) => sum + r.rps, 0),
    perReplicaRps: runs.map((r) => r.rps),
    responses: runs.reduce((sum, r) => sum + r.responses, 0),
    failed: runs.reduce((sum, r) => sum + failures(r), 0),
    statusCodes: runs.map((r) => r.statusCodes),
    cpu,
    serverSeconds,
    ...(cpu.postgresSeconds !== undefined && busy > 0 ? { postgresShare: cpu.postgresSeconds / busy } : {}),
    rssPeakMiB,
  };
}

interface ScaleOutResult {
  one: ScaleOutRun;
  two: ScaleOutRun;
  /** Two replicas' combined throughput over one replica's. */
  factor: number;
}

async function scaleOutScenario(replicas: [ServerState, ServerState]): Promise<ScaleOutResult> {
  // The second replica has just started: long enough a warm-up for its JIT to settle.
  if (WARMUP > 0) await Promise.all(replicas.map((r) => simpleScenario('client_credentials', r, Math.max(WARMUP, 3))));
  const one = await scaleOutRun([replicas[0]]);
  const two = await scaleOutRun(replicas);
  return { one, two, factor: one.rps > 0 ? two.rps / one.rps : 0 };
}

function scaleOutLines(r: ScaleOutResult, cores: number): string[] {
  const pct = (x: number | undefined) => (x === undefined ? '?' : `${(x * 100).toFixed(0)} %`);
  const perRequest = (seconds: number | undefined, run: ScaleOutRun) =>
    seconds === undefined ? '?' : ((seconds * 1000) / Math.max(run.responses, 1)).toFixed(2);
  const line = (label: string, run: ScaleOutRun) =>
    `  ${label}: ${run.rps.toFixed(0)} req/s (${run.perReplicaRps.map((x) => x.toFixed(0)).join(' + ')}), ${run.failed} failed; ` +
    `PostgreSQL ${pct(run.postgresShare)} of busy CPU; CPU ms per request: keryu ${perRequest(run.serverSeconds, run)}, ` +
    `postgres ${perRequest(run.cpu.postgresSeconds, run)}; RSS peak ${run.rssPeakMiB.map((m) => `${m ?? '?'} MiB`).join(', ')}`;
  return [
    `Scale-out (client credentials, ${CONNECTIONS} connections round-robin, one PostgreSQL, all on ${cores} shared cores):`,
    line('1 replica ', r.one),
    line('2 replicas', r.two),
    `  combined throughput: ${r.factor.toFixed(2)}× one replica`,
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Report

const TITLES: Record<ScenarioId, string> = {
  discovery: 'discovery',
  jwks: 'jwks',
  client_credentials: 'client credentials',
  introspection: 'introspection',
  code_exchange: 'code exchange',
  refresh: 'refresh (rotating)',
  scale_out: 'scale-out',
};

/** The team's targets: keryu-auth at least this share of the bare provider's throughput. */
const TARGETS: Partial<Record<ScenarioId, number>> = { client_credentials: 0.6, introspection: 0.6, code_exchange: 0.5, refresh: 0.5 };

interface ScenarioResult {
  id: ScenarioId;
  keryu?: ServerRun;
  bare?: ServerRun;
  ratio?: number;
  target?: number;
  meetsTarget?: boolean;
}

function table(results: ScenarioResult[]): string {
  const header = ['scenario', 'keryu req/s', 'p50 ms', 'p99 ms', 'RSS MiB', 'errors', 'bare req/s', 'p50 ms', 'p99 ms', 'RSS MiB', 'errors', 'keryu/bare'];
  const cells = (r?: ServerRun) =>
    r
      ? [r.stats.rps.toFixed(0), r.stats.p50.toFixed(0), r.stats.p99.toFixed(0), String(r.rssPeakMiB ?? '?'), String(failures(r.stats))]
      : ['-', '-', '-', '-', '-'];
  const rows = results.map((r) => [
    TITLES[r.id],
    ...cells(r.keryu),
    ...cells(r.bare),
    r.ratio === undefined ? '-' : `${(r.ratio * 100).toFixed(0)} %${r.target ? (r.meetsTarget ? ' ✓' : ` ✗ (target ${r.target * 100} %)`) : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => `| ${row.map((c, i) => (i === 0 || i === row.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** CPU milliseconds per request: server, PostgreSQL, load generator. */
function cpuPerRequest(run: ServerRun): string | undefined {
  const c = run.cpu;
  if (!c || run.stats.responses === 0) return undefined;
  const ms = (seconds: number | undefined) => (seconds === undefined ? '?' : ((seconds * 1000) / run.stats.responses).toFixed(2));
  const busy = c.machineBusy !== undefined ? `, machine ${(c.machineBusy * 100).toFixed(0)} % busy` : '';
  return `server ${ms(c.serverSeconds)}${c.postgresSeconds !== undefined ? ` + postgres ${ms(c.postgresSeconds)}` : ''} (bench ${ms(c.benchSeconds)}, other ${ms(c.otherSeconds)}${busy})`;
}

function cpuTable(results: ScenarioResult[]): string[] {
  const out = ['CPU ms per request (from /proc; 2 cores shared by server, PostgreSQL and autocannon):'];
  for (const r of results) {
    const k = r.keryu && cpuPerRequest(r.keryu);
    const b = r.bare && cpuPerRequest(r.bare);
    if (k || b) out.push(`  ${TITLES[r.id].padEnd(19)} keryu ${k ?? '-'} | bare ${b ?? '-'}`);
  }
  return out;
}

function notes(results: ScenarioResult[]): string[] {
  const out: string[] = [];
  for (const r of results) {
    for (const name of SERVERS) {
      const run = r[name];
      if (!run) continue;
      const s = run.stats;
      if (run.pool) {
        const ended = s.endedByAmount ? `pool used up after ${s.seconds.toFixed(1)} s` : `ran ${s.seconds.toFixed(1)} s`;
        out.push(
          `${TITLES[r.id]} / ${name}: pool ${run.pool.obtained} pre-issued (wanted ${run.pool.wanted}${run.pool.limitedByTime ? ', cut by the time budget' : ''}, ${run.pool.acquireSeconds.toFixed(1)} s to obtain); ${ended}, ${s.responses} requests`,
        );
      }
      if (failures(s) > 0) {
        out.push(`${TITLES[r.id]} / ${name}: ${failures(s)} failed: status ${JSON.stringify(s.statusCodes)}, errors ${s.errors}, timeouts ${s.timeouts}, wrong bodies ${s.mismatches}`);
      }
      if (run.warmup && failures(run.warmup) > 0) out.push(`${TITLES[r.id]} / ${name} (warm-up): ${failures(run.warmup)} failed: status ${JSON.stringify(run.warmup.statusCodes)}`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = Date.now();
  const scenarioIds = SCENARIOS.filter((s) => selectedScenarios.has(s));
  log(`duration ${DURATION} s, ${CONNECTIONS} connections, warm-up ${WARMUP} s; scenarios ${scenarioIds.join(', ')}; servers ${selectedServers.join(', ')}`);

  // Anything else running makes every number below smaller and noisier: measure it, warn, record it.
  let idleLoad = await machineLoad(1000);
  const quietDeadline = Date.now() + numberEnv('BENCH_WAIT_QUIET', 0, 0) * 1000;
  const waitStarted = Date.now();
  while (idleLoad !== undefined && idleLoad > 0.15 && Date.now() < quietDeadline) {
    log(`machine ${(idleLoad * 100).toFixed(0)} % busy; waiting for it to be idle`);
    idleLoad = await machineLoad(5000);
  }
  const waitedSeconds = Math.round((Date.now() - waitStarted) / 1000);
  const benchStarted = Date.now();
  if (idleLoad !== undefined && idleLoad > 0.15) {
    log(`WARNING: the machine is ${(idleLoad * 100).toFixed(0)} % busy before the bench starts; results will be disturbed`);
  }

  const db = await createDatabase();
  log(`created database ${db.name}`);
  countPostgresDatabase(db.name);
  const secret = randomBytes(32).toString('base64url');
  const clientSecret = randomBytes(32).toString('base64url');

  const keryu = await startKeryu(db.url, secret, clientSecret);
  log(`keryu-auth ready at ${keryu.target.issuer} (${USE_DIST ? 'dist/server.js' : 'tsx src/server.ts'}${CPU_PROF ? ', --cpu-prof' : ''})`);
  const bare = selectedServers.includes('bare') ? await startBare(clientSecret, keryu.userId) : undefined;
  if (bare) log(`bare oidc-provider ready at ${bare.target.issuer}`);

  const newState = async (target: Target, pid: number | undefined, usesPostgres: boolean): Promise<ServerState> => {
    const idleMiB = await rssMiB(pid);
    return { target, pid, usesPostgres, browsers: [], refreshTokens: [], rss: idleMiB !== undefined ? { idleMiB } : {} };
  };
  const states: Partial<Record<ServerName, ServerState>> = {};
  if (selectedServers.includes('keryu')) states.keryu = await newState(keryu.target, keryu.process.child.pid, true);
  if (bare) states.bare = await newState(bare.target, bare.process.child.pid, false);
  // Peak memory over the whole bench (warm-ups and pre-issuing included), per server.
  const peakSamplers = Object.values(states).map((state) => ({ state, sampler: sampleRssPeak(state.pid) }));

  const results: ScenarioResult[] = [];
  let scaleOut: ScaleOutResult | undefined;
  for (const id of scenarioIds) {
    if (id === 'scale_out') {
      if (!states.keryu) continue;
      log('scale-out: starting a second keryu-auth replica on the same database…');
      const second = await spawnKeryu(keryuEnvironment(db.url, secret, await freePort()), 'keryu-auth replica 2', clientSecret);
      scaleOut = await scaleOutScenario([states.keryu, await newState(second.target, second.process.child.pid, true)]);
      log(`scale-out: 1 replica ${scaleOut.one.rps.toFixed(0)} req/s, 2 replicas ${scaleOut.two.rps.toFixed(0)} req/s (${scaleOut.factor.toFixed(2)}×)`);
      await second.process.stop();
      continue;
    }
    const result: ScenarioResult = { id };
    for (const name of selectedServers) {
      const state = states[name];
      if (!state) continue;
      log(`${TITLES[id]}: ${name}…`);
      const run = await runScenario(id, state);
      result[name] = run;
      log(`${TITLES[id]}: ${name} ${run.stats.rps.toFixed(0)} req/s, p50 ${run.stats.p50} ms, p99 ${run.stats.p99} ms, ${failures(run.stats)} failed`);
    }
    if (result.keryu && result.bare && result.bare.stats.rps > 0) {
      result.ratio = result.keryu.stats.rps / result.bare.stats.rps;
      const target = TARGETS[id];
      if (target !== undefined) {
        result.target = target;
        result.meetsTarget = result.ratio >= target;
      }
    }
    results.push(result);
  }

  for (const { state, sampler } of peakSamplers) {
    const peakMiB = await sampler.stop();
    if (peakMiB !== undefined) state.rss.peakMiB = peakMiB;
  }
  const failedRun = (run: ServerRun | undefined) => Boolean(run && (failures(run.stats) > 0 || (run.warmup && failures(run.warmup) > 0)));
  const failedScenarios = [
    ...results.flatMap((r) => SERVERS.filter((name) => failedRun(r[name])).map((name) => `${r.id} (${name})`)),
    ...(scaleOut && scaleOut.one.failed + scaleOut.two.failed > 0 ? ['scale_out (keryu)'] : []),
  ];

  // Stop the servers now (a --cpu-prof profile is written on exit), before the report.
  const keryuLog = keryu.process.output().trim();
  await cleanup();
  let profile: { file: string; summary: ReturnType<typeof summarizeProfile> } | undefined;
  if (CPU_PROF) {
    const file = await latestProfile(join(resultsDir, 'profiles'), started, keryu.process.child.pid);
    if (file) profile = { file, summary: summarizeProfile(JSON.parse(await readFile(file, 'utf8')), KERYU_DIR) };
  }

  const machine = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    freeMemoryGiB: +(freemem() / 2 ** 30).toFixed(1),
    os: `${platform()} ${release()}`,
    node: process.version,
    postgres: db.postgresVersion,
    busyBeforeStart: idleLoad === undefined ? undefined : +idleLoad.toFixed(3),
  };
  const versions = {
    oidcProvider: (JSON.parse(await readFile(join(root, 'node_modules/oidc-provider/package.json'), 'utf8')) as { version: string }).version,
    autocannon: (JSON.parse(await readFile(join(root, 'node_modules/autocannon/package.json'), 'utf8')) as { version: string }).version,
  };
  const report = {
    date: new Date(started).toISOString(),
    totalSeconds: Math.round((Date.now() - benchStarted) / 1000),
    waitedForQuietSeconds: waitedSeconds,
    machine,
    versions,
    settings: {
      durationSeconds: DURATION,
      connections: CONNECTIONS,
      warmupSeconds: WARMUP,
      keryuEntry: KERYU_ENTRY_NOTE,
      ...(KERYU_DIR !== root ? { keryuSourceDir: KERYU_DIR } : {}),
      keryuDatabase: 'postgresql',
      keryuExtraEnv: KERYU_EXTRA_ENV,
      limits: LIMITS_NOTE,
      smoke: SMOKE,
      cpuProfile: CPU_PROF,
    },
    rss: Object.fromEntries(Object.entries(states).map(([name, state]) => [name, state.rss])),
    ...(scaleOut ? { scaleOut } : {}),
    results: results.map((r) => ({
      scenario: r.id,
      keryu: r.keryu,
      bare: r.bare,
      ratio: r.ratio === undefined ? undefined : +r.ratio.toFixed(3),
      target: r.target,
      meetsTarget: r.meetsTarget,
    })),
    failedScenarios,
    ...(profile ? { profile: { file: profile.file, ...profile.summary } } : {}),
  };

  await mkdir(resultsDir, { recursive: true });
  const json = `${JSON.stringify(report, null, 2)}\n`;
  // A smoke run's figures mean nothing: it never replaces the last real run.
  await writeFile(join(resultsDir, SMOKE ? 'smoke-latest.json' : 'latest.json'), json);
  if (!SMOKE) await writeFile(join(resultsDir, `${report.date.replace(/[:.]/g, '-')}.json`), json);

  const out = process.stdout;
  out.write(
    `\nkeryu-auth (PostgreSQL) vs bare oidc-provider ${versions.oidcProvider} — ${DURATION} s per scenario, ${CONNECTIONS} connections${SMOKE ? ' — SMOKE RUN (figures not meaningful)' : ''}\n`,
  );
  out.write(`${machine.cpu}, ${machine.cores} cores, node ${machine.node}, ${report.date}\n`);
  out.write(`keryu-auth: ${KERYU_ENTRY_NOTE}; ${LIMITS_NOTE}${Object.keys(KERYU_EXTRA_ENV).length ? `; extra ${JSON.stringify(KERYU_EXTRA_ENV)}` : ''}\n\n`);
  out.write(`${table(results)}\n\n`);
  for (const n of notes(results)) out.write(`  ${n}\n`);
  for (const [name, state] of Object.entries(states)) out.write(`  ${name}: ${formatRss(state.rss)} (whole bench)\n`);
  out.write(`\n${cpuTable(results).join('\n')}\n`);
  if (scaleOut) out.write(`\n${scaleOutLines(scaleOut, machine.cores).join('\n')}\n`);
  out.write(`\nresults: bench/results/${SMOKE ? 'smoke-latest' : 'latest'}.json (total ${report.totalSeconds} s)\n`);
  if (keryuLog) out.write(`\nkeryu-auth logged (LOG_LEVEL=warn), last lines:\n${keryuLog.split('\n').slice(-10).join('\n')}\n`);
  if (profile) out.write(`\n${formatProfileSummary(profile.file, profile.summary)}\n`);
  if (failedScenarios.length) {
    out.write(`\nFAIL: non-2xx answers (or failed requests) in: ${failedScenarios.join(', ')}; the figures above are not valid\n`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    log(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanup();
    process.exitCode = 2;
  },
);
