/**
 * Prometheus metrics: every security counter moves by exactly what a flow should add (and nothing else
 * moves), request durations are named by route template, and no label value ever holds a person, an
 * address or a secret. The scrape goes through the real `/metrics` listener and a Prometheus text parser.
 */
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import * as client from 'openid-client';
import t, { type Test } from 'tap';
import { listenForMetrics } from '../../src/plugins/metrics.js';
import { api, NO_RATE_LIMITS, seedAuthUser, type Pair } from '../helpers/auth.js';
import { challengeFor, enrolTotpFor, isPair, pairFor, startMfaServer, verify, wrongCode } from '../helpers/mfa.js';
import { discover, loginWithCode, seedClient } from '../helpers/oidc.js';
import { waitFor } from '../helpers/replicas.js';
import { startServer, type TestServer } from '../helpers/server.js';

async function scraper(t: Test, server: TestServer) {
  const metrics = server.app.keryu.metrics;
  if (!metrics) throw new Error('metrics are off');
  const listener = await listenForMetrics(metrics, { port: 0, host: '127.0.0.1' });
  t.teardown(() => listener.close());
  return async (): Promise<ParsedFamily[]> => {
    const res = await fetch(`http://127.0.0.1:${listener.port}/metrics`);
    if (res.status !== 200) throw new Error(`scrape: ${res.status}`);
    if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? '')) throw new Error('not the text exposition format');
    return parsePrometheusTextFormat(await res.text());
  };
}

/** Every keryu_*_total series as `name{a="x",b="y"}` → value. */
function counters(families: ParsedFamily[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const family of families) {
    if (family.type !== 'COUNTER' || !family.name.startsWith('keryu_')) continue;
    for (const sample of family.metrics) {
      const labels = Object.entries(sample.labels ?? {})
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      out.set(labels ? `${family.name}{${labels}}` : family.name, Number(sample.value));
    }
  }
  return out;
}

/** Runs `action` and returns how each counter moved (series that did not move are left out). */
function deltaOf(scrape: () => Promise<ParsedFamily[]>) {
  return async (action: () => Promise<unknown>): Promise<Record<string, number>> => {
    const before = counters(await scrape());
    await action();
    const after = counters(await scrape());
    const moved: Record<string, number> = {};
    for (const [series, value] of after) {
      const change = value - (before.get(series) ?? 0);
      if (change !== 0) moved[series] = change;
    }
    return moved;
  };
}

const login = (channel: string, result: string) => `keryu_login_attempts_total{channel="${channel}",result="${result}"}`;
const issued = (grant: string) => `keryu_tokens_issued_total{grant_type="${grant}"}`;
const mfa = (method: string, result: string) => `keryu_mfa_challenges_total{method="${method}",result="${result}"}`;

t.test('each flow moves exactly its counters', async (t) => {
  const { server, clock } = await startMfaServer(t, { LOGIN_LOCK_AFTER: '3', LOGIN_DELAY_AFTER: '10', REFRESH_RETRY_WINDOW: '0' });
  const scrape = await scraper(t, server);
  const delta = deltaOf(scrape);
  await seedAuthUser(server, 'alice@example.com');

  let pair: Pair | undefined;
  t.same(await delta(async () => (pair = await pairFor(server, 'alice@example.com'))), { [login('api', 'success')]: 1, [issued('first_party_login')]: 1 }, 'API login');
  t.same(await delta(() => api(server, 'POST', '/api/auth/login/', { body: { email: 'alice@example.com', password: 'not the password' } })), { [login('api', 'failure')]: 1 }, 'wrong password');

  let refreshed: Pair | undefined;
  t.same(
    await delta(async () => (refreshed = (await api<Pair>(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair!.refresh_token } })).body)),
    { [issued('first_party_refresh')]: 1 },
    'first-party refresh',
  );
  t.same(
    await delta(() => api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: pair!.refresh_token } })),
    { keryu_refresh_reuse_detected_total: 1 },
    'a used refresh token presented again',
  );
  pair = await pairFor(server, 'alice@example.com');
  t.same(
    await delta(async () => t.equal((await api(server, 'POST', '/api/auth/tokens/', { token: pair!.access_token, body: { name: 'ci' } })).status, 201)),
    { [issued('personal_token')]: 1 },
    'personal token',
  );
  t.ok(refreshed?.access_token);

  await seedAuthUser(server, 'bob@example.com');
  const wrong = () => api(server, 'POST', '/api/auth/login/', { body: { email: 'bob@example.com', password: 'not the password' } });
  t.same(await delta(async () => {
    for (let i = 0; i < 3; i++) await wrong();
  }), { [login('api', 'failure')]: 3, keryu_lockouts_total: 1 }, 'the third failure locks');
  t.same(await delta(wrong), { [login('api', 'locked')]: 1 }, 'an attempt while locked');

  const carol = await seedAuthUser(server, 'carol@example.com');
  const totp = await enrolTotpFor(server, carol, clock);
  let challenge = await challengeFor(server, 'carol@example.com');
  t.same(await delta(() => challengeFor(server, 'carol@example.com').then((c) => (challenge = c))), { [login('api', 'challenged')]: 1 }, 'a login that needs a second factor');
  t.same(await delta(async () => verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: wrongCode(await totp()) })), { [mfa('otp', 'failed')]: 1 }, 'a wrong code');
  t.same(
    await delta(async () => t.ok(isPair((await verify(server, { challenge_id: challenge.challenge_id, method: 'totp', code: await totp() })).body))),
    { [mfa('otp', 'passed')]: 1, [login('api', 'success')]: 1, [issued('first_party_login')]: 1 },
    'the right code completes the login',
  );
  clock.advance(30);
  const stale = await challengeFor(server, 'carol@example.com');
  clock.advance(301);
  t.same(await delta(async () => verify(server, { challenge_id: stale.challenge_id, method: 'totp', code: await totp() })), { [mfa('unknown', 'expired')]: 1 }, 'an expired challenge');

  const machine = await seedClient(server, { grant_types: ['client_credentials'], redirect_uris: [], post_logout_redirect_uris: [], scope: undefined });
  const machineConfig = await discover(server, machine);
  t.same(await delta(() => client.clientCredentialsGrant(machineConfig)), { [issued('client_credentials')]: 1 }, 'client credentials');

  const web = await seedClient(server);
  const webConfig = await discover(server, web);
  let refreshToken: string | undefined;
  t.same(
    await delta(async () => (refreshToken = (await loginWithCode(server, webConfig)).tokens.refresh_token)),
    { [login('browser', 'success')]: 1, [issued('authorization_code')]: 1 },
    'browser sign-in and code exchange',
  );
  t.same(await delta(() => client.refreshTokenGrant(webConfig, refreshToken!)), { [issued('refresh_token')]: 1 }, 'refresh token grant');

  // The text parser drops a histogram's labels, so label values are read from the registry itself.
  const labelled = await server.app.keryu.metrics!.registry.getMetricsAsJSON();
  const routes = new Set(labelled.find((m) => m.name === 'http_request_duration_seconds')?.values.map((v) => String(v.labels.route)));
  for (const route of ['/api/auth/login/', '/api/auth/refresh/', '/api/auth/tokens/', '/interaction/:uid', '/interaction/:uid/login', '/oidc/token', '/oidc/auth', '/oidc/auth/:uid', '/oidc/.well-known/openid-configuration']) {
    t.ok(routes.has(route), `durations of ${route}`);
  }
  t.notOk([...routes].some((r) => r === 'undefined' || /[0-9a-f]{8}-|[A-Za-z0-9_-]{21,}/.test(r)), 'no raw URL (uids, tokens) as a route');
  const names = new Set((await scrape()).map((f) => f.name));
  for (const name of ['keryu_build_info', 'process_cpu_user_seconds_total', 'nodejs_eventloop_lag_seconds', 'keryu_audit_queue_depth', 'keryu_audit_write_failures_total', 'keryu_db_pool_connections', 'keryu_active_sessions', 'keryu_signing_key_age_seconds', 'keryu_rate_limited_total']) {
    t.ok(names.has(name), `${name} is exported`);
  }

  await server.app.keryu.metrics!.sample();
  const sessions = Number((await scrape()).find((f) => f.name === 'keryu_active_sessions')?.metrics[0]?.value);
  t.ok(sessions >= 3, `active sessions counted from the database after a sample (${sessions})`);

  t.test('no label value holds an email, an address, an id or a token', async (t) => {
    const suspicious = [
      [/@/, 'email'],
      [/^\d{1,3}(\.\d{1,3}){3}$/, 'IPv4'],
      [/^[0-9a-f]{0,4}(:[0-9a-f]{0,4}){2,7}$/i, 'IPv6'],
      [/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i, 'UUID'],
      [/^[A-Za-z0-9_-]{20,}(\.[A-Za-z0-9_-]+)*$/, 'token'],
      [/^eyJ/, 'JWT'],
    ] as const;
    let checked = 0;
    for (const metric of await server.app.keryu.metrics!.registry.getMetricsAsJSON()) {
      for (const sample of metric.values) {
        for (const [label, value] of Object.entries(sample.labels)) {
          checked++;
          for (const [pattern, what] of suspicious) if (pattern.test(String(value))) t.fail(`${metric.name}{${label}="${value}"} looks like a ${what}`);
        }
      }
    }
    t.ok(checked > 50, `${checked} label values checked`);
  });
});

t.test('a request refused by a rate limit is counted by limit, and as a refused sign-in', async (t) => {
  const server = await startServer({ env: { ...NO_RATE_LIMITS, RATE_LIMIT_AUTH: '2' } });
  t.teardown(() => server.close());
  const delta = deltaOf(await scraper(t, server));
  const attempt = () => api(server, 'POST', '/api/auth/login/', { body: { email: 'nobody@example.com', password: 'whatever it is' } });
  t.same(await delta(async () => {
    for (let i = 0; i < 3; i++) await attempt();
  }), { [login('api', 'failure')]: 2, 'keryu_rate_limited_total{limit="auth-ip"}': 1, [login('api', 'rate_limited')]: 1 });
});

t.test('background jobs report their last success; signing keys their age', async (t) => {
  const startedAt = Date.now() / 1000;
  const server = await startServer({ env: { CLEANUP_INTERVAL: '1' } });
  t.teardown(() => server.close());
  const scrape = await scraper(t, server);
  const gauge = async (name: string) => {
    const samples = (await scrape()).find((f) => f.name === name)?.metrics ?? [];
    return new Map(samples.map((m) => [Object.values(m.labels ?? {}).join(','), Number(m.value)]));
  };
  const jobs = await waitFor(async () => {
    const seen = await gauge('keryu_job_last_success_timestamp_seconds');
    return seen.has('cleanup') && seen.has('key_refresh') ? seen : undefined;
  }, 30_000, 'a cleanup run and a key poll');
  for (const job of ['cleanup', 'key_refresh']) {
    const at = jobs.get(job) ?? 0;
    t.ok(at >= startedAt && at <= Date.now() / 1000 + 1, `${job}: a Unix timestamp from this run`);
  }
  await server.app.keryu.metrics!.sample();
  const ages = await gauge('keryu_signing_key_age_seconds');
  t.same([...ages.keys()].sort(), ['ES256', 'RS256'], 'one age per signing algorithm');
  for (const [alg, age] of ages) t.ok(age >= 0 && age < 600, `${alg} key signs since ${age} s (generated at start-up)`);
});

t.test('METRICS_PORT=0 turns metrics off', async (t) => {
  const server = await startServer({ env: { METRICS_PORT: '0' } });
  t.teardown(() => server.close());
  t.equal(server.app.keryu.metrics, undefined, 'nothing is collected');
  t.equal((await fetch(`${server.origin}/metrics`)).status, 404, 'and nothing is served on the public port');
});
