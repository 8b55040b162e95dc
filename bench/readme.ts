/**
 * `npm run bench:readme`: rewrites the README's performance block (between `<!-- bench:start -->` and
 * `<!-- bench:end -->`) from the last full run's results (bench/results/latest.json, auth-latest.json,
 * decisions.json), so the published figures are always ones a run printed. Refuses smoke results and runs
 * that had failures.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const results = join(root, 'bench', 'results');

/** Keycloak's published sizing guide, per vCPU, for context (keycloak.org, "Concepts for sizing CPU and memory resources"). */
const KEYCLOAK_PER_VCPU = { clientCredentials: 120, passwordLogins: 15 };
/** Below this share of busy CPU before the run, the machine counts as idle (the bench itself, a shell, a timer). */
const IDLE_BEFORE_START = 0.1;

interface Stats {
  rps: number;
  p50: number;
  p99: number;
}
interface Run {
  stats: Stats;
  rssPeakMiB?: number;
  cpu?: { serverSeconds?: number; postgresSeconds?: number };
}
interface TokenReport {
  date: string;
  machine: { cpu: string; cores: number; memoryGiB: number; node: string; postgres: string; busyBeforeStart?: number };
  versions: { oidcProvider: string };
  settings: { durationSeconds: number; connections: number; warmupSeconds: number; keryuEntry: string; limits?: string; smoke?: boolean };
  rss: Record<string, { idleMiB?: number; peakMiB?: number }>;
  results: Array<{ scenario: string; keryu?: Run & { stats: Stats & { responses: number } }; bare?: Run & { stats: Stats & { responses: number } }; ratio?: number; target?: number }>;
  failedScenarios?: string[];
  scaleOut?: {
    one: { rps: number; postgresShare?: number; serverSeconds: number; responses: number; cpu: { postgresSeconds?: number } };
    two: { rps: number; perReplicaRps: number[]; postgresShare?: number; serverSeconds: number; responses: number; cpu: { postgresSeconds?: number } };
    factor: number;
  };
}
interface AuthReport {
  smoke?: boolean;
  argon2_verify_per_s: number;
  login: { rps: number; p50_ms: number; p99_ms: number; ratio_to_argon2: number; non2xx: number; errors: number };
  refresh: { rps: number; p50_ms: number; p99_ms: number; non2xx: number; errors: number };
  rss?: { idleMiB?: number; peakMiB?: number };
}
interface DecisionsReport {
  smoke?: boolean;
  requests_per_second: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  cold_check_ms: number;
  errors: number;
  rss?: { idleMiB?: number; peakMiB?: number };
  server_cpu_ms_per_check?: number;
  checks_per_server_cpu_second?: number;
}

const TITLES: Record<string, string> = {
  discovery: 'discovery',
  jwks: 'JWKS',
  client_credentials: 'client credentials (opaque)',
  introspection: 'introspection',
  code_exchange: 'authorization-code exchange',
  refresh: 'refresh (rotating)',
};

const pct = (x: number | undefined) => (x === undefined ? '-' : `${(x * 100).toFixed(0)} %`);
const ms = (seconds: number | undefined, responses: number) => (seconds === undefined || !responses ? '-' : ((seconds * 1000) / responses).toFixed(2));

async function json<T>(file: string): Promise<T> {
  return JSON.parse(await readFile(join(results, file), 'utf8')) as T;
}

function block(tokens: TokenReport, auth: AuthReport, decisions: DecisionsReport): string {
  const m = tokens.machine;
  const s = tokens.settings;
  const lines: string[] = [];
  lines.push(
    `Latest run: ${tokens.date.slice(0, 10)}, ${m.cpu}, ${m.cores} cores shared by the servers, PostgreSQL ` +
      `(${m.postgres.split(' ').slice(0, 2).join(' ')}) and the load generator, ${m.memoryGiB} GiB; Node ${m.node}; oidc-provider ${tokens.versions.oidcProvider}; ` +
      `${s.durationSeconds} s per scenario after ${s.warmupSeconds} s warm-up, ${s.connections} connections; keryu-auth as ${s.keryuEntry}; ${s.limits ?? ''}.` +
      (m.busyBeforeStart === undefined
        ? ''
        : m.busyBeforeStart < IDLE_BEFORE_START
          ? ` The machine was idle before the run started (${pct(m.busyBeforeStart)} busy); absolute figures still move by 2× between runs on shared cores: read the ratios, measured side by side.`
          : ` The machine was ${pct(m.busyBeforeStart)} busy with other work before the run started, so absolute figures are low and noisy: read the ratios, measured side by side.`),
  );
  lines.push('');
  lines.push('| scenario | keryu req/s | p50 ms | p99 ms | RSS peak MiB | bare req/s | p50 ms | p99 ms | keryu/bare (target) | server CPU ms/req keryu + PostgreSQL / bare |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of tokens.results) {
    const k = r.keryu;
    const b = r.bare;
    const cpu =
      k && b
        ? `${ms(k.cpu?.serverSeconds, k.stats.responses)} + ${ms(k.cpu?.postgresSeconds, k.stats.responses)} / ${ms(b.cpu?.serverSeconds, b.stats.responses)}`
        : '-';
    lines.push(
      `| ${TITLES[r.scenario] ?? r.scenario} | ${k ? k.stats.rps.toFixed(0) : '-'} | ${k?.stats.p50 ?? '-'} | ${k?.stats.p99 ?? '-'} | ${k?.rssPeakMiB ?? '-'} | ` +
        `${b ? b.stats.rps.toFixed(0) : '-'} | ${b?.stats.p50 ?? '-'} | ${b?.stats.p99 ?? '-'} | ${pct(r.ratio)}${r.target ? ` (${pct(r.target)}${r.ratio !== undefined && r.ratio >= r.target ? ' ✓' : ' ✗'})` : ''} | ${cpu} |`,
    );
  }
  lines.push('');
  const rss = (name: string, r?: { idleMiB?: number; peakMiB?: number }) => `${name} ${r?.idleMiB ?? '?'} MiB idle, ${r?.peakMiB ?? '?'} MiB peak`;
  lines.push(`Resident memory over the whole token run: ${rss('keryu-auth', tokens.rss.keryu)}; ${rss('bare provider', tokens.rss.bare)} (target: keryu-auth below 150 MB under load).`);
  const so = tokens.scaleOut;
  if (so) {
    lines.push('');
    lines.push(
      `Scale-out (client credentials, the same ${s.connections} connections round-robin over the replicas, one PostgreSQL, everything on the same ${m.cores} cores): ` +
        `one replica ${so.one.rps.toFixed(0)} req/s (PostgreSQL ${pct(so.one.postgresShare)} of busy CPU, ${ms(so.one.cpu.postgresSeconds, so.one.responses)} ms per grant); ` +
        `two replicas ${so.two.rps.toFixed(0)} req/s (${so.two.perReplicaRps.map((x) => x.toFixed(0)).join(' + ')}; PostgreSQL ${pct(so.two.postgresShare)}, ${ms(so.two.cpu.postgresSeconds, so.two.responses)} ms per grant): ` +
        `${so.factor.toFixed(2)}× one replica. On one 2-core machine a second replica only competes for the same cores; ` +
        `for sizing, count keryu-auth CPU (${ms(so.one.serverSeconds, so.one.responses)} ms per grant) and PostgreSQL CPU per grant separately.`,
    );
  }
  lines.push('');
  const cc = tokens.results.find((r) => r.scenario === 'client_credentials')?.keryu;
  const ccPerVcpu = cc?.cpu?.serverSeconds && cc.stats.responses ? cc.stats.responses / (cc.cpu.serverSeconds + (cc.cpu.postgresSeconds ?? 0)) : undefined;
  lines.push(
    `First-party API (\`bench/auth.ts\`): argon2id verification bound ${auth.argon2_verify_per_s}/s on ${m.cores} cores (OWASP parameters); ` +
      `password login ${auth.login.rps}/s (p50 ${auth.login.p50_ms} ms, p99 ${auth.login.p99_ms} ms) = ${pct(auth.login.ratio_to_argon2)} of that bound (target 85 %); ` +
      `rotating refresh ${auth.refresh.rps}/s (p50 ${auth.refresh.p50_ms} ms, p99 ${auth.refresh.p99_ms} ms; target 1,000/s); ${rss('RSS', auth.rss)}.`,
  );
  lines.push(
    `Decisions (\`bench/decisions.ts\`, server pinned to one core): ${decisions.requests_per_second} checks/s (p50 ${decisions.latency_p50_ms} ms, p99 ${decisions.latency_p99_ms} ms; ` +
      `target 20,000)${decisions.server_cpu_ms_per_check === undefined ? '' : `, ${decisions.server_cpu_ms_per_check} ms of server CPU per check (${decisions.checks_per_server_cpu_second} checks per CPU-second)`}, ` +
      `cold resolution ${decisions.cold_check_ms} ms; ${rss('RSS', decisions.rss)}.`,
  );
  lines.push('');
  lines.push(
    `For context, Keycloak's published sizing: ${KEYCLOAK_PER_VCPU.clientCredentials} client-credentials grants and ${KEYCLOAK_PER_VCPU.passwordLogins} password logins per second per vCPU. ` +
      `Here, per CPU-second actually spent (keryu-auth + PostgreSQL): ${ccPerVcpu === undefined ? '?' : ccPerVcpu.toFixed(0)} client-credentials grants; ` +
      `password logins are bound by argon2id at about ${(auth.argon2_verify_per_s / m.cores).toFixed(0)} per core.`,
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const tokens = await json<TokenReport>('latest.json');
  const auth = await json<AuthReport>('auth-latest.json');
  const decisions = await json<DecisionsReport>('decisions.json');
  if (tokens.settings.smoke || auth.smoke || decisions.smoke) throw new Error('smoke results are not published');
  if (tokens.failedScenarios?.length) throw new Error(`the last run had failures (${tokens.failedScenarios.join(', ')}): not published`);
  if (auth.login.non2xx + auth.login.errors + auth.refresh.non2xx + auth.refresh.errors + decisions.errors > 0) throw new Error('the last auth or decisions run had failures: not published');
  const readmePath = join(root, 'README.md');
  const readme = await readFile(readmePath, 'utf8');
  const start = readme.indexOf('<!-- bench:start -->');
  const end = readme.indexOf('<!-- bench:end -->');
  if (start < 0 || end < start) throw new Error('README.md has no <!-- bench:start --> ... <!-- bench:end --> block');
  const updated = `${readme.slice(0, start)}<!-- bench:start -->\n${block(tokens, auth, decisions)}\n${readme.slice(end)}`;
  await writeFile(readmePath, updated);
  process.stdout.write('README.md performance block rewritten from bench/results\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:readme failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
