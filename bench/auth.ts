/**
 * `npm run bench:auth`: the first-party auth API under load, on the local PostgreSQL, over loopback.
 *  1. The bare cost of argon2id verification on this machine (OWASP parameters, as many at once as there
 *     are cores): the upper bound for password logins.
 *  2. Password login through POST /api/auth/login/ (target ≥ 85 % of that bound).
 *  3. Refresh through POST /api/auth/refresh/ (target ≥ 1,000/s): every request rotates its session's
 *     token, so each connection chains the refresh token its last answer returned.
 * The server runs as its own process (src/server.ts under tsx), request rate limits off (this measures the
 * work, not the limiter; stated in the output). BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres)
 * names a server where a scratch database is created and dropped. BENCH_DURATION seconds per scenario (default
 * 10), `--smoke` one second; BENCH_KERYU_<NAME>=value passed to the server as <NAME>. Prints the server's RSS idle
 * and peak. Exit status 1 when any answer was not 2xx. Results: bench/results/auth-latest.json. BENCH_CPU_PROF=1
 * profiles the server (the whole run: read the refresh phase from its last seconds).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { hash, verify } from '@node-rs/argon2';
import autocannon from 'autocannon';
import postgres from 'postgres';
import { runCli } from '../src/cli.js';
import { ARGON2_PARAMS } from '../src/services/password.js';
import { freePort } from '../test/helpers/server.js';
import { formatRss, rssMiB, sampleRssPeak } from './lib/rss.js';
import { durationSeconds, KERYU_ENTRY, KERYU_ENTRY_NOTE, keryuExtraEnv, LIMITS_NOTE, SMOKE, THROUGHPUT_LIMITS } from './lib/settings.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const DURATION = durationSeconds(10);
const cores = availableParallelism();
const SECRET = randomBytes(32).toString('base64url');
const PASSWORD = 'a long passphrase for the benchmark';


async function argon2Bound(seconds: number): Promise<number> {
  const stored = await hash(PASSWORD, ARGON2_PARAMS);
  const deadline = Date.now() + seconds * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: cores }, async () => {
      while (Date.now() < deadline) {
        await verify(stored, PASSWORD);
        count++;
      }
    }),
  );
  return count / seconds;
}

function run(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

const summary = (r: autocannon.Result) => ({
  rps: Math.round(r.requests.average),
  p50_ms: r.latency.p50,
  p99_ms: r.latency.p99,
  non2xx: r.non2xx,
  errors: r.errors,
  total: r.requests.total,
});

async function main(): Promise<void> {
  const name = `keryu_bench_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const databaseUrl = url.toString();
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const env = {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    DATABASE_POOL_SIZE: '20',
    KERYU_SECRET: SECRET,
    LOG_LEVEL: 'warn',
    // The password step and token endpoints are measured; the new-device and new-IP checks (a code by email) are off.
    DEVICE_VERIFICATION: 'off',
    IP_VERIFICATION: 'off',
    // Metrics on, as deployed, each process on a port of its own (two servers run at once in some scenarios).
    METRICS_PORT: String(await freePort()),
    ...THROUGHPUT_LIMITS,
    ...keryuExtraEnv(),
  };
  const quiet = { write: () => true };
  let child: ReturnType<typeof spawn> | undefined;
  try {
    const created = await runCli(['user', 'create', '--email', 'bench@example.com', '--password-stdin'], {
      env,
      stdin: (await import('node:stream')).Readable.from([PASSWORD]),
      stdout: quiet,
      stderr: process.stderr,
    });
    if (created !== 0) throw new Error('could not create the benchmark user');

    // BENCH_CPU_PROF=1: the server runs under --cpu-prof; the profile is written to bench/results/profiles/ when it exits.
    const profileArgs = process.env.BENCH_CPU_PROF === '1' ? ['--cpu-prof', '--cpu-prof-dir', `${root}bench/results/profiles`] : [];
    child = spawn(process.execPath, [...profileArgs, ...KERYU_ENTRY], { cwd: root, env, stdio: ['ignore', 'ignore', 'inherit'] });
    for (let i = 0; ; i++) {
      if (i > 300) throw new Error('server did not start');
      if (await fetch(`${origin}/readyz`).then((r) => r.ok, () => false)) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    const idleMiB = await rssMiB(child.pid);
    const peak = sampleRssPeak(child.pid);
    process.stdout.write(`keryu-auth: ${KERYU_ENTRY_NOTE}; ${LIMITS_NOTE}${SMOKE ? ' — SMOKE RUN (figures not meaningful)' : ''}\n`);
    process.stdout.write(`argon2id bound (${cores} cores) ...\n`);
    const bound = await argon2Bound(Math.min(DURATION, 5));

    const loginBody = JSON.stringify({ email: 'bench@example.com', password: PASSWORD });
    // Warm-up (JIT, connection pool, zxcvbn-free path), then measure.
    const warmup = await run({
      url: `${origin}/api/auth/login/`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: loginBody,
      connections: cores * 2,
      duration: SMOKE ? 1 : 2,
    });
    process.stdout.write('login ...\n');
    const login = await run({
      url: `${origin}/api/auth/login/`,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: loginBody,
      connections: cores * 4,
      duration: DURATION,
    });

    // One session per connection (and spares): each refresh answer gives the token for the next request.
    const connections = 32;
    const pool: string[] = [];
    for (let i = 0; i < connections * 2; i++) {
      const res = await fetch(`${origin}/api/auth/login/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: loginBody });
      if (!res.ok) throw new Error(`login for the refresh pool answered ${res.status}: ${await res.text()}`);
      pool.push(((await res.json()) as { refresh_token: string }).refresh_token);
    }
    process.stdout.write('refresh ...\n');
    const refresh = await run({
      url: origin,
      connections,
      duration: DURATION,
      requests: [
        {
          method: 'POST',
          path: '/api/auth/refresh/',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => ({ ...req, body: JSON.stringify({ refresh_token: pool.shift() ?? 'krt_pool-empty' }) }),
          onResponse: (status, body) => {
            if (status === 200) pool.push((JSON.parse(body) as { refresh_token: string }).refresh_token);
          },
        },
      ],
    });

    const loginResult = summary(login);
    const refreshResult = summary(refresh);
    const rss = { idleMiB, peakMiB: await peak.stop() };
    const results = {
      at: new Date().toISOString(),
      cores,
      duration_s: DURATION,
      smoke: SMOKE,
      limits: LIMITS_NOTE,
      rss,
      argon2_verify_per_s: Math.round(bound),
      login: { ...loginResult, ratio_to_argon2: Number((loginResult.rps / bound).toFixed(3)), target_ratio: 0.85 },
      refresh: { ...refreshResult, target_rps: 1000 },
    };
    await mkdir(new URL('./results/', import.meta.url), { recursive: true });
    await writeFile(new URL(SMOKE ? './results/auth-smoke.json' : './results/auth-latest.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
    const mark = (ok: boolean) => (ok ? 'ok' : 'BELOW TARGET');
    process.stdout.write(
      [
        `argon2id verify (bare, ${cores} at once): ${results.argon2_verify_per_s}/s`,
        `login   ${loginResult.rps} req/s  p50 ${loginResult.p50_ms} ms  p99 ${loginResult.p99_ms} ms  non-2xx ${loginResult.non2xx}  = ${(results.login.ratio_to_argon2 * 100).toFixed(1)} % of the argon2 bound (target 85 %: ${mark(results.login.ratio_to_argon2 >= 0.85)})`,
        `refresh ${refreshResult.rps} req/s  p50 ${refreshResult.p50_ms} ms  p99 ${refreshResult.p99_ms} ms  non-2xx ${refreshResult.non2xx}  (target 1000/s: ${mark(refreshResult.rps >= 1000)})`,
        `keryu-auth ${formatRss(rss)}`,
        '',
      ].join('\n'),
    );
    const checked: Array<[string, autocannon.Result]> = [
      ['login warm-up', warmup],
      ['login', login],
      ['refresh', refresh],
    ];
    const failed = checked.filter(([, r]) => r.non2xx + r.errors + r.timeouts > 0);
    if (failed.length) {
      for (const [name, r] of failed) {
        process.stdout.write(`FAIL: ${name}: non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts} (status ${JSON.stringify(r.statusCodeStats)})\n`);
      }
      process.stdout.write('FAIL: the figures above are not valid\n');
      process.exitCode = 1;
    }
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:auth failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(2);
});
