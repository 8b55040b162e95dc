/**
 * Request rate limits (@fastify/rate-limit), shared by every replica through Redis when REDIS_URL is set
 * (per-process memory otherwise, and while Redis is unavailable):
 * - `/api/auth/` endpoints: RATE_LIMIT_AUTH requests per client IP per window;
 * - the provider's token endpoint and every form of the login interaction: RATE_LIMIT_OIDC per client IP, and the
 *   token endpoint also RATE_LIMIT_CLIENT per OAuth client (identified from HTTP Basic client
 *   authentication; a client authenticating in the body is limited by IP only, because the provider
 *   parses its own body after this hook).
 * Over the limit: 429 `too_many_requests` with Retry-After (thrown, rendered by the error handler in the route's
 * shape: a page on the login forms, OAuth JSON at the token endpoint). This is the coarse outer layer; password
 * guessing is handled by the per-identifier brute-force protection (services/brute-force.ts).
 * The hook runs in onRequest, before the provider middleware, so it sees provider paths too.
 *
 * A limit must not be skippable by spelling a path differently. Our own routes are chosen by the route
 * Fastify matched (its router decodes percent-encoding, so `/api/%61uth/login/` is `/api/auth/login/`);
 * the provider's paths, which no Fastify route matches, are compared after the normalisation that covers
 * every spelling the provider (or a proxy in front of it) may accept: percent-decoded, any case (its
 * router is case-insensitive), dot segments resolved, repeated and trailing slashes dropped. Clients are
 * counted by `clientAddressKey` (an IPv6 client by its /64), OAuth clients by the client id the provider
 * authenticates (RFC 6749 §2.3.1 decoding).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../errors/index.js';
import { basicClientCredentials } from '../lib/client-basic-auth.js';
import { clientAddressKey } from '../lib/network.js';
import { fallbackStore } from './rate-limit-store.js';

export interface RateLimitOptions {
  windowSeconds: number;
  auth: number;
  oidc: number;
  client: number;
  redisUrl?: string | undefined;
  issuerPath: string;
  /** Called for each request a limit refuses, with the limit's name (metrics count them). */
  onLimited?: ((limit: string, request: FastifyRequest) => void) | undefined;
  /**
   * Told once per limit and key per window on this replica (the first refused request), never per request:
   * the audit event behind the `rate_limit_exceeded` alert.
   */
  onExceeded?: (exceeded: { limit: string; source: string; max: number; window_seconds: number; path: string }, request: FastifyRequest) => void;
  /** Called when counting moves to this process's memory (Redis unavailable: true) and back to Redis (false). */
  onStoreFallback?: ((active: boolean) => void) | undefined;
}

/** How long start-up waits for Redis before counting in memory until it is ready. */
const REDIS_READY_WAIT_MS = 2000;

type Limiter = ((request: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded?: boolean; ttlInSeconds?: number }>) & { limitName?: string; max?: number; keyOf?: (request: FastifyRequest) => string | undefined };

/**
 * The path as the provider's router would match it, in one canonical spelling (see the header). Percent-
 * decoding repeats (bounded) so a double-encoded path cannot slip past a proxy that decodes once.
 */
export function canonicalPath(url: string): string {
  let path = url.split('?')[0] ?? '';
  for (let round = 0; round < 3 && path.includes('%'); round++) {
    try {
      path = decodeURIComponent(path);
    } catch {
      break;
    }
  }
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  return `/${segments.join('/')}`.toLowerCase();
}

export async function registerRateLimits(app: FastifyInstance, options: RateLimitOptions): Promise<void> {
  // The client library is loaded only when Redis is configured (a replica without it does not carry it in memory).
  const redis = options.redisUrl
    ? new (await import('ioredis')).Redis(options.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false })
    : undefined;
  if (redis) {
    redis.on('error', (err: unknown) => app.log.debug({ err }, 'rate-limit store (Redis) error'));
    // Start on the shared counters when Redis answers soon; otherwise start counting in memory (and switch
    // to Redis when it is ready) rather than delaying start-up.
    await Promise.race([once(redis, 'ready'), sleep(REDIS_READY_WAIT_MS)]).catch(() => {});
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
  }
  // Limits are applied by the hook below; nothing is limited implicitly. A Redis outage neither takes sign-in
  // down nor lifts the limits: counting moves to this process's memory until Redis returns (rate-limit-store.ts).
  const store = redis ? fallbackStore({ redis, nameSpace: 'keryu-rl:', log: app.log, onFallback: options.onStoreFallback }) : undefined;
  await app.register(rateLimit, { global: false, ...(store ? { store } : {}), skipOnError: false });

  const windowMs = options.windowSeconds * 1000;
  const limiter = (max: number, prefix: string, key: (request: FastifyRequest) => string | undefined): Limiter | undefined => {
    if (max <= 0) return undefined;
    const create = app.createRateLimit as unknown as (o: object) => Limiter;
    const limit = create({ max, timeWindow: windowMs, keyGenerator: (request: FastifyRequest) => `${prefix}:${key(request) ?? ''}` });
    const run: Limiter = async (request) => (key(request) === undefined ? { isAllowed: true } : limit(request));
    return Object.assign(run, { limitName: prefix, max, keyOf: key });
  };
  /** Until when each limit and key was last reported (bounded: expired entries go when it grows). */
  const reported = new Map<string, number>();
  const reportExceeded = (limit: Limiter, request: FastifyRequest, ttlSeconds: number) => {
    if (!options.onExceeded) return;
    const key = limit.keyOf?.(request) ?? '';
    const id = `${limit.limitName}:${key}`;
    const now = Date.now();
    if ((reported.get(id) ?? 0) > now) return;
    if (reported.size > 10_000) for (const [k, until] of reported) if (until <= now) reported.delete(k);
    reported.set(id, now + ttlSeconds * 1000);
    options.onExceeded({ limit: limit.limitName ?? 'unknown', source: key, max: limit.max ?? 0, window_seconds: options.windowSeconds, path: canonicalPath(request.url) }, request);
  };

  const authIp = limiter(options.auth, 'auth-ip', (r) => clientAddressKey(r.ip));
  const oidcIp = limiter(options.oidc, 'oidc-ip', (r) => clientAddressKey(r.ip));
  const oidcClient = limiter(options.client, 'oidc-client', (r) => basicClientCredentials(r.headers.authorization)?.id.slice(0, 200));
  const tokenPath = canonicalPath(`${options.issuerPath}/token`);

  function limitersFor(request: FastifyRequest): Limiter[] {
    // The pattern of the route Fastify matched; undefined for the provider's paths (served by middleware) and 404s.
    const route = request.routeOptions.url;
    if (route?.startsWith('/api/auth/')) return authIp ? [authIp] : [];
    if (request.method !== 'POST') return [];
    // Every form of the login interaction (password, codes, resends, enrolment), like the JSON API.
    if (route?.startsWith('/interaction/')) return oidcIp ? [oidcIp] : [];
    if (route === undefined && canonicalPath(request.url) === tokenPath) return [oidcIp, oidcClient].filter((l): l is Limiter => Boolean(l));
    return [];
  }

  app.addHook('onRequest', async (request: FastifyRequest) => {
    for (const limit of limitersFor(request)) {
      const result = await limit(request);
      if (result.isExceeded) {
        const retryAfter = Math.max(1, result.ttlInSeconds ?? options.windowSeconds);
        options.onLimited?.(limit.limitName ?? 'unknown', request);
        reportExceeded(limit, request, retryAfter);
        throw new AppError('too_many_requests', 'too many requests; slow down', { extra: { retry_after: retryAfter } });
      }
    }
  });
}
