/** Readiness checks: the failing list, and the cache that keeps probes from piling up on the database. */
import t from 'tap';
import { providerRouteOf } from '../../src/oidc/routes.js';
import { cachedCheck, createReadiness } from '../../src/services/readiness.js';

t.test('ready when every check passes; otherwise the failing ones, by name', async (t) => {
  let database = true;
  const readiness = createReadiness([
    { name: 'draining', passes: () => true },
    { name: 'database', passes: async () => database },
    {
      name: 'keys',
      passes: () => {
        throw new Error('no ES256 signing key');
      },
    },
  ]);
  t.same(await readiness.evaluate(), { ready: false, failing: ['keys'] }, 'a throwing check fails');
  database = false;
  t.same(await readiness.evaluate(), { ready: false, failing: ['database', 'keys'] });
  t.same(await createReadiness([{ name: 'database', passes: async () => true }]).evaluate(), { ready: true });
});

t.test('a cached check runs at most one round trip at a time and reuses its answer', async (t) => {
  let now = 0;
  let calls = 0;
  let release: (ok: boolean) => void = () => {};
  const check = cachedCheck(
    () => {
      calls++;
      return new Promise<boolean>((resolve) => (release = resolve));
    },
    { cacheMs: 1000, timeoutMs: 60_000, now: () => now },
  );
  const probes = Array.from({ length: 50 }, () => check());
  t.equal(calls, 1, '50 concurrent probes, one round trip');
  release(true);
  t.same(await Promise.all(probes), Array(50).fill(true));
  now = 999;
  t.equal(await check(), true);
  t.equal(calls, 1, 'answered from the cache within a second');
  now = 1000;
  const next = check();
  release(false);
  t.equal(await next, false);
  t.equal(calls, 2, 'asked again after a second');
});

t.test('a round trip slower than the timeout answers "failing"; it is not started again meanwhile', async (t) => {
  // The check's timer does not hold the process open (a server does); here something else must.
  const keepAlive = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(keepAlive));
  let calls = 0;
  const check = cachedCheck(
    () => {
      calls++;
      return new Promise<boolean>(() => {});
    },
    { cacheMs: 1000, timeoutMs: 10 },
  );
  t.equal(await check(), false, 'timed out');
  t.equal(await check(), false);
  t.equal(calls, 1, 'the hanging round trip is shared, not repeated');
});

t.test('a rejected round trip counts as failing', async (t) => {
  const check = cachedCheck(() => Promise.reject(new Error('connection refused')), { cacheMs: 1000, timeoutMs: 1000 });
  t.equal(await check(), false);
});

t.test('provider requests are named by the provider route, never the raw URL', async (t) => {
  t.equal(providerRouteOf('/oidc', '/oidc/token'), '/oidc/token');
  t.equal(providerRouteOf('/oidc', '/oidc/token/introspection?x=1'), '/oidc/token/introspection');
  t.equal(providerRouteOf('/oidc', '/oidc/auth/b2ZmZXJzLXVpZC1vZi10aGUtaW50ZXJhY3Rpb24'), '/oidc/auth/:uid');
  t.equal(providerRouteOf('/oidc', '/oidc/device/auth'), '/oidc/device/auth', 'an exact route before a template');
  t.equal(providerRouteOf('/oidc', '/oidc/device/ABCD-EFGH'), '/oidc/device/:userCode');
  t.equal(providerRouteOf('/oidc', '/oidc/reg/client-with-secret-looking-id'), '/oidc/reg/:clientId');
  t.equal(providerRouteOf('/oidc', '/oidc/unknown/alice@example.com'), '/oidc/*', 'an unknown path under the issuer');
  t.equal(providerRouteOf('/oidc', '/api/users/'), undefined, 'not a provider path');
  t.equal(providerRouteOf('', '/token'), '/token', 'issuer at the root');
  t.equal(providerRouteOf('', '/nothing/here'), undefined);
});
