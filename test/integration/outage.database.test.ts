/**
 * PostgreSQL stops under a steady client-credentials load and starts again. The replica answers every
 * request (no hang): 200, or 503 with Retry-After and the OAuth error `temporarily_unavailable`; `/readyz`
 * names `database` while it is down and `/healthz` stays 200; discovery and JWKS keep working. After the
 * database returns the replica serves again without a restart, and every grant that was answered 200 has
 * its `oidc.grant` audit event.
 *
 * Runs on a cluster of its own on a spare port (the shared server is never stopped).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import t from 'tap';
import { createClusterDatabase, postgresBinaries, startPostgresCluster, type PostgresCluster } from '../helpers/fault-servers.js';
import { startServerProcess, type ServerProcess } from '../helpers/process.js';
import { REDIRECT_URI } from '../helpers/oidc.js';
import { basicAuth, cliEnv, endpoint, keryuJson } from '../helpers/replicas.js';
import { TEST_PASSWORD } from '../helpers/defaults.js';

const bin = postgresBinaries();
const SKIP = bin ? false : 'needs the PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql)';
const machine = { clientId: 'svc', clientSecret: 's'.repeat(40) };
/** Generous: "no hang" means an answer long before a caller or load balancer would give up. */
const ANSWER_WITHIN_MS = 5000;

interface Answer {
  status: number | 'timeout' | 'network';
  ms: number;
  retryAfter: string | null;
  error?: unknown;
  phase: 'up' | 'down' | 'back';
}

t.test('a database outage under load: fast 503s, no hang, recovery, no lost audit event', { skip: SKIP }, async (t) => {
  const cluster: PostgresCluster = await startPostgresCluster(bin!);
  const dir = await mkdtemp(join(tmpdir(), 'keryu-outage-'));
  let replica: ServerProcess | undefined;
  t.teardown(async () => {
    try {
      await replica?.stop();
    } finally {
      await cluster.remove();
      await rm(dir, { recursive: true, force: true });
    }
  });
  const url = await createClusterDatabase(cluster, `keryu_outage_${randomBytes(4).toString('hex')}`);
  const env = cliEnv(url);
  await keryuJson(['migrate'], env);
  const file = join(dir, 'bootstrap.json');
  await writeFile(
    file,
    JSON.stringify({
      clients: [
        { client_id: machine.clientId, client_secret: machine.clientSecret, grant_types: ['client_credentials'] },
        { client_id: 'web', client_secret: 'w'.repeat(40), redirect_uris: [REDIRECT_URI], grant_types: ['authorization_code'], scope: 'openid' },
      ],
      users: [{ email: 'alice@example.com', password: TEST_PASSWORD, email_verified: true }],
    }),
  );
  await keryuJson(['bootstrap', file], env);
  // The limits are not under test here: the load must reach the database.
  replica = await startServerProcess({ databaseUrl: url, env: { RATE_LIMIT_OIDC: '0', RATE_LIMIT_CLIENT: '0', RATE_LIMIT_AUTH: '0' } });
  const server = replica;

  // A browser in the middle of a sign-in: its login page needs the database once it is down.
  const challenge = createHash('sha256').update('v'.repeat(43)).digest('base64url');
  const started = await fetch(
    endpoint(server, `/auth?${new URLSearchParams({ client_id: 'web', response_type: 'code', scope: 'openid', redirect_uri: REDIRECT_URI, code_challenge: challenge, code_challenge_method: 'S256' })}`),
    { redirect: 'manual', headers: { accept: 'text/html' } },
  );
  const interactionUrl = new URL(started.headers.get('location') ?? '', server.origin).href;
  const interactionCookies = started.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');

  let phase: Answer['phase'] = 'up';
  const answers: Answer[] = [];
  let loading = true;
  async function caller() {
    while (loading) {
      const started = performance.now();
      const at = phase;
      try {
        const res = await fetch(endpoint(server, '/token'), {
          method: 'POST',
          headers: { authorization: basicAuth(machine.clientId, machine.clientSecret), 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials',
          signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
        });
        const body = (await res.json()) as { error?: unknown };
        answers.push({ status: res.status, ms: performance.now() - started, retryAfter: res.headers.get('retry-after'), error: body.error, phase: at });
        // A refused caller backs off a little, as a client honouring Retry-After would (but not for a whole second).
        if (res.status === 503) await new Promise((r) => setTimeout(r, 50));
      } catch (err) {
        answers.push({ status: (err as Error).name === 'TimeoutError' ? 'timeout' : 'network', ms: performance.now() - started, retryAfter: null, phase: at });
      }
    }
  }
  /** First-party sign-ins alongside: each 200 must have its `login` success event too. */
  const logins: Answer[] = [];
  async function signer() {
    while (loading) {
      const started = performance.now();
      const at = phase;
      try {
        const res = await fetch(`${server.origin}/api/auth/login/`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'alice@example.com', password: TEST_PASSWORD }),
          signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
        });
        const body = (await res.json()) as { error?: unknown };
        logins.push({ status: res.status, ms: performance.now() - started, retryAfter: res.headers.get('retry-after'), error: body.error, phase: at });
        if (res.status === 503) await new Promise((r) => setTimeout(r, 50));
      } catch (err) {
        logins.push({ status: (err as Error).name === 'TimeoutError' ? 'timeout' : 'network', ms: performance.now() - started, retryAfter: null, phase: at });
      }
    }
  }
  const callers = [...Array.from({ length: 8 }, () => caller()), signer(), signer()];
  await new Promise((r) => setTimeout(r, 1500));

  phase = 'down';
  await cluster.stop();
  const probeStarted = performance.now();
  const ready = await fetch(`${server.origin}/readyz`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
  const readyMs = performance.now() - probeStarted;
  const readyBody = (await ready.json()) as { failing?: string[] };
  const health = await fetch(`${server.origin}/healthz`, { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
  const discovery = await fetch(endpoint(server, '/.well-known/openid-configuration'), { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
  const jwks = await fetch(endpoint(server, '/jwks'), { signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
  // A JSON API that needs the database, and a browser at the authorization endpoint.
  const login = await fetch(`${server.origin}/api/auth/login/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: 'nobody@example.com', password: 'not the password' }),
    signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
  });
  const loginBody = (await login.json()) as { error?: string };
  const authorize = await fetch(endpoint(server, `/auth?client_id=${machine.clientId}&response_type=code&scope=openid&redirect_uri=https%3A%2F%2Fapp.example.test%2Fcb`), {
    headers: { accept: 'text/html' },
    signal: AbortSignal.timeout(ANSWER_WITHIN_MS),
  });
  const authorizePage = await authorize.text();
  const interaction = await fetch(interactionUrl, { headers: { accept: 'text/html', cookie: interactionCookies }, signal: AbortSignal.timeout(ANSWER_WITHIN_MS) });
  const interactionPage = await interaction.text();
  await new Promise((r) => setTimeout(r, 4000));

  await cluster.start();
  phase = 'back';
  const backAt = performance.now();
  let recoveredMs: number | undefined;
  while (recoveredMs === undefined && performance.now() - backAt < 30_000) {
    await new Promise((r) => setTimeout(r, 100));
    if (answers.some((a) => a.phase === 'back' && a.status === 200)) recoveredMs = performance.now() - backAt;
  }
  await new Promise((r) => setTimeout(r, 1000));
  loading = false;
  await Promise.all(callers);

  const down = answers.filter((a) => a.phase === 'down');
  const summary = (list: Answer[]) => {
    const counts: Record<string, number> = {};
    for (const a of list) counts[String(a.status)] = (counts[String(a.status)] ?? 0) + 1;
    return counts;
  };
  t.comment(`answers up ${JSON.stringify(summary(answers.filter((a) => a.phase === 'up')))}, down ${JSON.stringify(summary(down))}, back ${JSON.stringify(summary(answers.filter((a) => a.phase === 'back')))}`);
  t.comment(`slowest answer while down: ${Math.round(Math.max(0, ...down.map((a) => a.ms)))} ms; /readyz answered in ${Math.round(readyMs)} ms; recovered ${Math.round(recoveredMs ?? -1)} ms after the database started`);

  t.ok(down.length > 0, 'requests were made while the database was down');
  t.same(answers.filter((a) => typeof a.status !== 'number'), [], 'every request got an answer (no timeout, no dropped connection)');
  t.same(answers.filter((a) => a.status !== 200 && a.status !== 503), [], 'every answer is a 200 or a 503: never a 500');
  const refused = answers.filter((a) => a.status === 503);
  t.ok(refused.length > 0, 'the outage was refused with 503');
  t.ok(refused.every((a) => a.retryAfter !== null && Number(a.retryAfter) > 0), 'every 503 says when to retry (Retry-After)');
  t.ok(refused.every((a) => a.error === 'temporarily_unavailable'), 'every 503 is the OAuth error temporarily_unavailable (RFC 6749 §4.1.2.1)');

  t.equal(ready.status, 503, '/readyz answers 503 while the database is down');
  t.ok(readyBody.failing?.includes('database'), '/readyz names the database');
  t.equal(health.status, 200, '/healthz stays 200');
  t.equal(discovery.status, 200, 'discovery is served without the database');
  t.equal(jwks.status, 200, 'JWKS is served from the loaded keys');
  t.equal(login.status, 503, 'a JSON API needing the database answers 503');
  t.equal(loginBody.error, 'service_unavailable', 'with the JSON error service_unavailable');
  t.ok(Number(login.headers.get('retry-after')) > 0, 'and Retry-After');
  t.equal(authorize.status, 503, 'a browser at the authorization endpoint gets 503');
  t.match(authorize.headers.get('content-type'), /text\/html/, 'as a page');
  t.match(authorizePage, /Temporarily unavailable/, 'saying the service is temporarily unavailable');
  t.ok(Number(authorize.headers.get('retry-after')) > 0, 'with Retry-After');
  t.match(interactionUrl, /\/interaction\//, 'the browser had reached the login page before the outage');
  t.equal(interaction.status, 503, 'the login page answers 503 while the database is down');
  t.match(interactionPage, /Temporarily unavailable/, 'as a plain page');
  t.ok(Number(interaction.headers.get('retry-after')) > 0, 'with Retry-After');
  t.ok(recoveredMs !== undefined, 'grants succeed again after the database returns, without a restart');

  // A graceful stop flushes the audit queue; then every 200 must have its event.
  await server.stop();
  replica = undefined;
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const [row] = await sql<Array<{ n: string }>>`select count(*)::text as n from audit_events where type = 'oidc.grant' and outcome = 'success'`;
  const [signIns] = await sql<Array<{ n: string }>>`select count(*)::text as n from audit_events where type = 'login' and outcome = 'success'`;
  await sql.end();
  const granted = answers.filter((a) => a.status === 200).length;
  t.equal(Number(row?.n), granted, `every one of the ${granted} successful grants has its oidc.grant audit event`);
  t.comment(`sign-ins: ${JSON.stringify(summary(logins))}`);
  t.same(logins.filter((a) => a.status !== 200 && a.status !== 503), [], 'every sign-in was answered 200 or 503 (no hang, never a 500)');
  t.ok(logins.filter((a) => a.status === 503).every((a) => a.error === 'service_unavailable' && Number(a.retryAfter) > 0), 'refused sign-ins are service_unavailable with Retry-After');
  const signedIn = logins.filter((a) => a.status === 200).length;
  t.ok(signedIn > 0, 'sign-ins succeeded');
  // A sign-in whose session was stored but whose event met the outage is answered 503 (its caller cannot
  // know the event is safe) and its event is still written once the database returns: so at least one event
  // per 200, and never more than the sign-ins that reached the database.
  t.ok(Number(signIns?.n) >= signedIn, `every one of the ${signedIn} successful sign-ins has its login audit event (${signIns?.n} events)`);
  t.ok(Number(signIns?.n) <= logins.filter((a) => a.status === 200 || a.status === 503).length, 'and no event without a sign-in');
});
