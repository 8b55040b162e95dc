/**
 * `npm run bench:decisions`: authorization decisions per second through HTTP on loopback, warm cache.
 *
 * Scenario (issue 5): a user holding 20 roles in a 5-deep hierarchy (5 levels of 4 roles, each inheriting from
 * two roles of the level above: diamonds everywhere), 10,000 object grants in the database (2,000 to the user,
 * 2,000 to roles it holds, 6,000 to 100 other users). A relying service (service account with auth.check,
 * JWT access token for the API audience) asks single checks about the user: a permission inherited from the top
 * of the hierarchy, an object grant, and a denial, in rotation. keryu-auth runs as one process pinned to one
 * core (taskset), autocannon runs in this process on the other core(s). Target: ≥ 20,000 checks/s.
 * The caller is a service account (a client holding a role), the one kind of client that gets client-credentials
 * tokens for the built-in API resource `<issuer origin>/api`; it asks for the `auth.check` scope (API scopes are
 * named after the auth.* permissions they delegate). Request rate limits are off (stated in the output); any
 * answer that is not 2xx fails the run (exit status 1).
 *
 * Also measured: the latency of one cold effective-permission resolution (one recursive query).
 *
 * Environment: BENCH_DURATION (s, default 10; `--smoke`: 1), BENCH_CONNECTIONS (default 32), BENCH_DATABASE_URL
 * (default postgres://postgres@127.0.0.1:5432/test), BENCH_CORE (CPU for the server, default 0),
 * BENCH_KERYU_<NAME>=value (passed to the server as <NAME>), BENCH_CPU_PROF=1 (runs the server under --cpu-prof;
 * the profile lands in bench/results/profiles/ and its summary is printed).
 * Results: bench/results/decisions.json.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import postgres from 'postgres';
import { stringify } from 'yaml';
import { freePort } from '../test/helpers/server.js';
import { countPostgresDatabase, cpuSnapshot, cpuUse } from './lib/cpu.js';
import { formatProfileSummary, latestProfile, summarizeProfile } from './lib/cpuprofile.js';
import { formatRss, rssMiB, sampleRssPeak } from './lib/rss.js';
import { durationSeconds, KERYU_ENTRY, KERYU_ENTRY_NOTE, keryuExtraEnv, LIMITS_NOTE, SMOKE, THROUGHPUT_LIMITS } from './lib/settings.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = process.env;
const duration = durationSeconds(10);
const connections = Number(env.BENCH_CONNECTIONS ?? 32);
const adminUrl = env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const core = env.BENCH_CORE ?? '0';
const SECRET = 'bench-secret-0123456789abcdef0123456789abcdef';
const CLIENT_SECRET = 'bench-client-secret-0123456789abcdef0123';
const CPU_PROF = env.BENCH_CPU_PROF === '1';
const profileDir = join(root, 'bench', 'results', 'profiles');

function bootstrapDocument() {
  const levels = 5;
  const perLevel = 4;
  const roleName = (level: number, i: number) => `r${level}-${i}`;
  const permissions = [];
  const roles = [];
  for (let level = levels - 1; level >= 0; level--) {
    for (let i = 0; i < perLevel; i++) {
      const perms = [`app.l${level}.r${i}.read`, `app.l${level}.r${i}.write`];
      permissions.push(...perms.map((codename) => ({ codename, name: codename })));
      roles.push({
        name: roleName(level, i),
        permissions: perms,
        parents: level === levels - 1 ? [] : [roleName(level + 1, i), roleName(level + 1, (i + 1) % perLevel)],
        level: (levels - level) * 10,
      });
    }
  }
  permissions.push({ codename: 'documents.edit', name: 'Edit documents' });
  roles.push({ name: 'checker', permissions: ['auth.check'] });
  const allRoles = roles.filter((r) => r.name !== 'checker').map((r) => r.name);
  return {
    permissions,
    roles,
    users: [{ email: 'bench@example.com', password: 'bench password long enough', roles: allRoles }],
    // A service account: its role is what lets it obtain tokens for the built-in API resource.
    clients: [{ client_id: 'relying-service', client_secret: CLIENT_SECRET, grant_types: ['client_credentials'], roles: ['checker'] }],
  };
}

async function main() {
  const dbName = `keryu_bench_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${dbName}`);
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const dir = await mkdtemp(join(tmpdir(), 'keryu-bench-'));
  let child: ChildProcess | undefined;
  const started = Date.now();
  // Wall-clock times of the load and of the server's exit, so the profile summary covers the load only.
  let load: { start: number; end: number } | undefined;
  let exitedAt = 0;
  try {
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const issuer = `${origin}/oidc`;
    const apiAudience = `${origin}/api`;
    const bootstrap = join(dir, 'bootstrap.yaml');
    await writeFile(bootstrap, stringify(bootstrapDocument()));

    const pin = existsSync('/usr/bin/taskset') ? ['taskset', '-c', core] : [];
    const profileArgs = CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
    const argv = [...pin, process.execPath, ...profileArgs, ...KERYU_ENTRY];
    child = spawn(argv[0] as string, argv.slice(1), {
      cwd: root,
      env: {
        PATH: env.PATH,
        NODE_ENV: 'production',
        PORT: String(port),
        HOST: '127.0.0.1',
        ISSUER: issuer,
        DATABASE_URL: url.toString(),
        KERYU_SECRET: SECRET,
        KERYU_BOOTSTRAP: bootstrap,
        LOG_LEVEL: 'warn',
        // Decisions are measured; the new-device and new-IP checks of the sign-in (a code by email) are off.
        DEVICE_VERIFICATION: 'off',
        IP_VERIFICATION: 'off',
        // Metrics on, as deployed, each process on a port of its own (two servers run at once in some scenarios).
        METRICS_PORT: String(await freePort()),
        ...THROUGHPUT_LIMITS,
        ...keryuExtraEnv(),
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error('server exited');
      if (Date.now() > deadline) throw new Error('server did not become ready');
      try {
        if ((await fetch(`${origin}/readyz`)).ok) break;
      } catch {
        // not yet
      }
      await new Promise((r) => setTimeout(r, 200));
    }

    // 10,000 object grants: 2,000 to the user, 2,000 to its roles, 6,000 to 100 other users.
    const db = postgres(url.toString(), { max: 1, onnotice: () => {} });
    const [user] = await db<{ id: string }[]>`select id from users where email = 'bench@example.com'`;
    if (!user) throw new Error('bench user missing');
    await db`insert into users (email) select 'other' || g || '@example.com' from generate_series(1, 100) g`;
    const [perm] = await db<{ id: string }[]>`select id from permissions where codename = 'documents.edit'`;
    await db`insert into object_grants (user_id, permission_id, object_type, object_id)
             select ${user.id}, ${perm!.id}, 'document', g::text from generate_series(1, 2000) g`;
    await db`insert into object_grants (role_id, permission_id, object_type, object_id)
             select r.id, ${perm!.id}, 'project', r.name || '-' || g from roles r cross join generate_series(1, 100) g where r.name like 'r%'`;
    await db`insert into object_grants (user_id, permission_id, object_type, object_id)
             select u.id, ${perm!.id}, 'document', 'o' || g from users u cross join generate_series(1, 60) g where u.email like 'other%'`;
    const [{ n: grants } = { n: 0 }] = await db<{ n: number }[]>`select count(*)::int as n from object_grants`;
    await db`select pg_notify('keryu_rbac', 'bench seed')`;

    // One cold resolution, timed from here through the API (includes HTTP; the query dominates).
    const form = new URLSearchParams({ grant_type: 'client_credentials', resource: apiAudience, scope: 'auth.check' });
    const tokenRes = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`relying-service:${CLIENT_SECRET}`).toString('base64')}` },
      body: form,
    });
    const tokenBody = (await tokenRes.json()) as { access_token?: string; scope?: string };
    const token = tokenBody.access_token;
    if (!tokenRes.ok || !token || token.split('.').length !== 3) throw new Error(`expected a JWT access token, got ${tokenRes.status} ${JSON.stringify(tokenBody)}`);
    const check = async (body: unknown) => {
      const res = await fetch(`${origin}/api/auth/check/`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`scenario broken: /api/auth/check/ answered ${res.status}: ${await res.text()}`);
      return (await res.json()) as { allowed: boolean; explanation?: string };
    };
    await check({ permission: 'app.l0.r0.read' }); // warms the caller's own entry
    const bodies = [
      { subject: user.id, permission: 'app.l4.r2.write' },
      { subject: user.id, permission: 'documents.edit', object: { type: 'document', id: '1717' } },
      { subject: user.id, permission: 'documents.delete' },
    ];
    const coldStart = performance.now();
    const first = await check({ ...bodies[0], explain: true });
    const coldMs = performance.now() - coldStart;
    if (!first.allowed) throw new Error(`scenario broken: ${JSON.stringify(first)}`);
    const second = await check(bodies[1]);
    const third = await check(bodies[2]);
    if (!second.allowed || third.allowed) throw new Error('scenario broken: grant or denial');
    console.log(`seeded: 20 roles in 5 levels, ${grants} object grants; cold check ${coldMs.toFixed(1)} ms; ${first.explanation}`);

    const idleMiB = await rssMiB(child.pid);
    const peak = sampleRssPeak(child.pid);
    countPostgresDatabase(dbName);
    const cpuBefore = await cpuSnapshot(child.pid, true);
    const loadStart = Date.now();
    const result = await autocannon({
      url: `${origin}/api/auth/check/`,
      connections,
      duration,
      requests: bodies.map((b) => ({ method: 'POST' as const, path: '/api/auth/check/', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(b) })),
    });
    load = { start: loadStart, end: Date.now() };
    const cpu = cpuUse(cpuBefore, await cpuSnapshot(child.pid, true));
    const perCheckMs = (seconds: number | undefined) => (seconds === undefined ? undefined : +((seconds * 1000) / Math.max(result.requests.total, 1)).toFixed(3));
    const rss = { idleMiB, peakMiB: await peak.stop() };
    const non2xx = result.non2xx + result.errors + result.timeouts;
    const summary = {
      smoke: SMOKE,
      limits: LIMITS_NOTE,
      rss,
      scenario: 'POST /api/auth/check/ (single checks: inherited permission 5 levels up, object grant, denial), warm cache, JWT caller with auth.check',
      server_core: pin.length ? core : 'unpinned',
      cpus: cpus().length,
      connections,
      duration_s: duration,
      object_grants: grants,
      requests_per_second: Math.round(result.requests.average),
      latency_p50_ms: result.latency.p50,
      latency_p99_ms: result.latency.p99,
      errors: non2xx,
      cold_check_ms: Number(coldMs.toFixed(1)),
      // CPU per check, from /proc: unlike req/s, it holds when other work shares the machine. One core's capacity
      // is 1000 / server_cpu_ms_per_check (the server alone, PostgreSQL is idle on a warm cache).
      server_cpu_ms_per_check: perCheckMs(cpu.serverSeconds),
      postgres_cpu_ms_per_check: perCheckMs(cpu.postgresSeconds),
      checks_per_server_cpu_second: cpu.serverSeconds ? Math.round(result.requests.total / cpu.serverSeconds) : undefined,
      machine_busy: cpu.machineBusy,
      target_rps: 20_000,
      at: new Date().toISOString(),
    };
    await mkdir(join(root, 'bench', 'results'), { recursive: true });
    await writeFile(join(root, 'bench', 'results', SMOKE ? 'decisions-smoke.json' : 'decisions.json'), `${JSON.stringify(summary, null, 2)}\n`);
    console.log(JSON.stringify(summary, null, 2));
    console.log(`keryu-auth: ${KERYU_ENTRY_NOTE}; ${LIMITS_NOTE}; ${formatRss(rss)}${SMOKE ? ' — SMOKE RUN (figures not meaningful)' : ''}`);
    await db.end();
    if (non2xx) {
      console.log(`FAIL: ${non2xx} checks were not answered 2xx (status ${JSON.stringify(result.statusCodeStats)}); the figures above are not valid`);
      process.exitCode = 1;
    }
  } finally {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGTERM');
      await exited;
      exitedAt = Date.now();
    }
    await admin.unsafe(`drop database if exists ${dbName} with (force)`);
    await admin.end();
    await rm(dir, { recursive: true, force: true });
  }
  // The profile is written when the server exits.
  const profile = CPU_PROF ? await latestProfile(profileDir, started, child?.pid) : undefined;
  const window = load && exitedAt ? { fromEndMs: exitedAt - load.start, toEndMs: exitedAt - load.end } : undefined;
  if (profile) console.log(formatProfileSummary(profile, summarizeProfile(JSON.parse(await readFile(profile, 'utf8')), root, 30, window)));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 2;
});
