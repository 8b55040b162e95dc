/**
 * Request rate limits (@fastify/rate-limit), shared by every replica through Redis when REDIS_URL is set
 * (per-process memory otherwise):
 * - `/api/auth/` endpoints: RATE_LIMIT_AUTH requests per client IP per window;
 * - the provider's token endpoint and every form of the login interaction: RATE_LIMIT_OIDC per client IP, and the
 *   token endpoint also RATE_LIMIT_CLIENT per OAuth client (identified from HTTP Basic client
 *   authentication; a client authenticating in the body is limited by IP only, because the provider
 *   parses its own body after this hook).
 * Over the limit: 429 `too_many_requests` with Retry-After. This is the coarse outer layer; password
 * guessing is handled by the per-identifier brute-force protection (services/brute-force.ts).
 * The hook runs in onRequest, before the provider middleware, so it sees provider paths too.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';

export interface RateLimitOptions {
  windowSeconds: number;
  auth: number;
  oidc: number;
  client: number;
  redisUrl?: string | undefined;
  issuerPath: string;
  /** Called for each request a limit refuses, with the limit's name (metrics count them). */
  onLimited?: ((limit: string, request: FastifyRequest) => void) | undefined;
}

type Limiter = (request: FastifyRequest) => Promise<{ isAllowed: boolean; isExceeded?: boolean; ttlInSeconds?: number }>;

function basicClientId(header: string | undefined): string | undefined {
  const match = header ? /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header) : null;
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, colon)).slice(0, 200);
  } catch {
    return undefined;
  }
}

export async function registerRateLimits(app: FastifyInstance, options: RateLimitOptions): Promise<void> {
  const redis = options.redisUrl ? new Redis(options.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: false }) : undefined;
  if (redis) {
    redis.on('error', (err: unknown) => app.log.warn({ err }, 'rate-limit store (Redis) error'));
    app.addHook('onClose', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
  }
  // Limits are applied by the hook below; nothing is limited implicitly. A store outage lets requests through
  // (skipOnError) rather than taking sign-in down: brute-force protection does not depend on this store.
  await app.register(rateLimit, { global: false, ...(redis ? { redis } : {}), nameSpace: 'keryu-rl:', skipOnError: true });

  const windowMs = options.windowSeconds * 1000;
  const limiter = (max: number, prefix: string, key: (request: FastifyRequest) => string | undefined): Limiter | undefined => {
    if (max <= 0) return undefined;
    const create = app.createRateLimit as unknown as (o: object) => Limiter;
    const limit = create({ max, timeWindow: windowMs, keyGenerator: (request: FastifyRequest) => `${prefix}:${key(request) ?? ''}` });
    return async (request) => {
      if (key(request) === undefined) return { isAllowed: true };
      const result = await limit(request);
      if (result.isExceeded) options.onLimited?.(prefix, request);
      return result;
    };
  };

  const authIp = limiter(options.auth, 'auth-ip', (r) => r.ip);
  const oidcIp = limiter(options.oidc, 'oidc-ip', (r) => r.ip);
  const oidcClient = limiter(options.client, 'oidc-client', (r) => basicClientId(r.headers.authorization));
  const tokenPath = `${options.issuerPath}/token`;

  function limitersFor(request: FastifyRequest): Limiter[] {
    const path = (request.url.split('?')[0] ?? '').replace(/\/+$/, '');
    if (path.startsWith('/api/auth/') || path === '/api/auth') return authIp ? [authIp] : [];
    if (request.method !== 'POST') return [];
    if (path === tokenPath) return [oidcIp, oidcClient].filter((l): l is Limiter => Boolean(l));
    // Every form of the login interaction (password, codes, resends, enrolment), like the JSON API.
    if (path.startsWith('/interaction/')) return oidcIp ? [oidcIp] : [];
    return [];
  }

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    for (const limit of limitersFor(request)) {
      const result = await limit(request);
      if (result.isExceeded) {
        const retryAfter = Math.max(1, result.ttlInSeconds ?? options.windowSeconds);
        return reply
          .code(429)
          .header('retry-after', String(retryAfter))
          .send({ error: 'too_many_requests', message: 'too many requests; slow down', retry_after: retryAfter });
      }
    }
    return undefined;
  });
}
