/**
 * The rate-limit store (Redis) fails under two replicas and returns. While it is up a limit holds across the
 * replicas (shared counters); while it is down each replica counts in its own memory, so a limit of L holds
 * per replica (at most 2 × L here) and is never lifted; the fallback shows in a metric; once Redis is back the
 * counters are shared again. Runs on a Redis of its own on a spare port (the shared one is never stopped).
 */
import { randomInt } from 'node:crypto';
import t from 'tap';
import { api } from '../helpers/auth.js';
import { createTestDatabase } from '../helpers/db.js';
import { redisBinary, startRedisServer } from '../helpers/fault-servers.js';
import { startServer, type TestServer } from '../helpers/server.js';

const bin = redisBinary();
const LIMIT = 4;
const freshIp = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;

async function fallbackGauge(server: TestServer): Promise<number | undefined> {
  const metric = await server.app.keryu.metrics?.registry.getSingleMetric('keryu_rate_limit_store_fallback')?.get();
  return metric?.values[0]?.value;
}

t.test('Redis down and back: limits hold per replica, never lifted, and are shared again', { skip: bin ? false : 'redis-server is not installed' }, async (t) => {
  const redis = await startRedisServer(bin!);
  const db = await createTestDatabase();
  const env = { RATE_LIMIT_AUTH: String(LIMIT), RATE_LIMIT_WINDOW: '60', TRUST_PROXY: 'true', REDIS_URL: redis.url, METRICS_PORT: '9464' };
  const a = await startServer({ env, db });
  const b = await startServer({ env, db });
  t.teardown(async () => {
    await Promise.allSettled([a.close(), b.close()]);
    await redis.stop();
    await db.drop();
  });
  const hit = (server: TestServer, ip: string) => api(server, 'POST', '/api/auth/refresh/', { body: { refresh_token: 'krt_x' }, headers: { 'x-forwarded-for': ip } });

  /** Requests alternate between the replicas until one is refused; returns how many were let through. */
  async function allowedAcross(ip: string): Promise<number> {
    for (let n = 0; n < 4 * LIMIT; n++) {
      if ((await hit(n % 2 ? b : a, ip)).status === 429) return n;
    }
    return Infinity;
  }

  const first = await allowedAcross(freshIp());
  t.equal(first, LIMIT, 'Redis up: the limit holds across both replicas');
  t.equal(await fallbackGauge(a), 0, 'the fallback gauge is 0 while Redis answers');

  await redis.stop();
  const ip = freshIp();
  let throughA = 0;
  while (throughA <= 4 * LIMIT && (await hit(a, ip)).status !== 429) throughA++;
  let throughB = 0;
  while (throughB <= 4 * LIMIT && (await hit(b, ip)).status !== 429) throughB++;
  t.equal(throughA, LIMIT, 'Redis down: replica A still refuses beyond the limit (counting in its memory)');
  t.equal(throughB, LIMIT, 'and so does replica B: at most 2 × L across two replicas, never unlimited');
  t.equal(await fallbackGauge(a), 1, 'the fallback gauge is 1 while Redis is down');

  await redis.start();
  const deadline = Date.now() + 20_000;
  while (((await fallbackGauge(a)) !== 0 || (await fallbackGauge(b)) !== 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  t.equal(await fallbackGauge(a), 0, 'Redis back: replica A counts in Redis again');
  t.equal(await fallbackGauge(b), 0, 'and so does replica B');
  t.equal(await allowedAcross(freshIp()), LIMIT, 'the limit holds across both replicas again');
});
